//! Criterion benchmarks of `stepfuse_core::search` (filled in with the area).

use criterion::{criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    c.bench_function("search/noop", |b| b.iter(|| std::hint::black_box(0u64)));
}

criterion_group!(group, benches);
criterion_main!(group);
