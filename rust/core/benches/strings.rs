//! Criterion benchmarks of `stepfuse_core::strings`: the blocked counting kernel at each id width,
//! and the auto plan on uniform text (n = 2^18, m = 512, so a run stays short on small machines).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stepfuse_core::strings::{count, distances_ids, Method, Relabeled};

fn text(n: usize, sigma: u64, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % sigma
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let (n, m) = (1 << 18, 512);
    let mut g = c.benchmark_group("strings/counting");
    g.sample_size(10);
    g.throughput(Throughput::Elements(((n - m + 1) * m) as u64));
    // sigma picks the id width: u8 (< 256 pattern symbols), u16, u32.
    for sigma in [16u64, 1 << 16, 1 << 40] {
        let t = text(n, sigma, 7);
        let p: Vec<u64> = if sigma > 1 << 20 {
            (0..m as u64).map(|i| i * (1 << 30)).collect()
        } else {
            t[100..100 + m].to_vec()
        };
        let r = Relabeled::new(&t, &p);
        g.bench_with_input(BenchmarkId::new("sigma_p", r.sigma), &r, |b, r| {
            b.iter(|| count::count_matches(r))
        });
    }
    g.finish();
    let t = text(n, 1 << 16, 9);
    let r = Relabeled::new(&t, &t[1000..1000 + m]);
    c.bench_function("strings/auto-uniform", |b| b.iter(|| distances_ids(&r, Method::Auto)));
}

criterion_group!(group, benches);
criterion_main!(group);
