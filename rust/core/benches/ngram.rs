//! Criterion benchmarks of `stepfuse_core::ngram`: counting, estimation + hashing, batched scoring.

use criterion::{criterion_group, criterion_main, Criterion};
use stepfuse_core::ngram::{count::DEFAULT_CHUNK, estimate_mkn, NGramCounts, NGramLM};

fn corpus(t: usize, v: u32) -> (Vec<u32>, Vec<usize>) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let toks = (0..t)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // roughly Zipfian: the square of a uniform skews toward small ids
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            ((u * u * u) * v as f64) as u32
        })
        .collect();
    (toks, (0..=t / 25).map(|i| i * 25).collect())
}

fn benches(c: &mut Criterion) {
    let (toks, offs) = corpus(200_000, 32_000);
    c.bench_function("ngram/count-200k-o5", |b| {
        b.iter(|| NGramCounts::count(&toks, &offs, 5, 32_000, DEFAULT_CHUNK).map(|c| c.tokens()))
    });
    let counts = match NGramCounts::count(&toks, &offs, 5, 32_000, DEFAULT_CHUNK) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    c.bench_function("ngram/estimate-mkn-200k-o5", |b| {
        b.iter(|| {
            estimate_mkn(&counts, Some([0.5, 1.0, 1.5])).and_then(NGramLM::from_levels).map(|m| m.order())
        })
    });
    let lm = match estimate_mkn(&counts, Some([0.5, 1.0, 1.5])).and_then(NGramLM::from_levels) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let ctx: Vec<i64> = toks[..40_000].iter().map(|&x| x as i64).collect();
    let q: Vec<i64> = toks[40_000..50_000].iter().map(|&x| x as i64).collect();
    c.bench_function("ngram/score-10k-queries-o5", |b| b.iter(|| lm.score_batch(&ctx, 10_000, 4, &q, 1)));
}

criterion_group!(group, benches);
criterion_main!(group);
