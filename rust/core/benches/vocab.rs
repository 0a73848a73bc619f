//! Criterion benchmarks of `stepfuse_core::vocab` (filled in with the area).

use criterion::{criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    c.bench_function("vocab/noop", |b| b.iter(|| std::hint::black_box(0u64)));
}

criterion_group!(group, benches);
criterion_main!(group);
