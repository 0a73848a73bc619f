//! Criterion benchmarks of `stepfuse_core::vocab`: build, prefix ranges, prefixes_of, cover trees
//! on a synthetic 150k-token vocabulary with BPE-like byte lengths.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use stepfuse_core::vocab::{ByteVocab, CoverTree};

/// Deterministic xorshift stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn synthetic(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed);
    let letters = b"etaoinshrdlcumwfgypbvkjxqz";
    let mut out: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut seen: std::collections::HashSet<Vec<u8>> = out.iter().cloned().collect();
    while out.len() < n {
        let len = 2 + (rng.next() % 5 + rng.next() % 5) as usize;
        let mut t = Vec::with_capacity(len + 1);
        if rng.next() % 10 < 6 {
            t.push(b' ');
        }
        for _ in 0..len {
            t.push(letters[(rng.next() % 26 * (rng.next() % 26) / 26) as usize]);
        }
        if seen.insert(t.clone()) {
            out.push(t);
        }
    }
    out
}

fn benches(c: &mut Criterion) {
    let toks = synthetic(150_000);
    let v = ByteVocab::from_tokens(toks.iter().map(|t| Some(&t[..])), &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(7);
    let queries: Vec<Vec<u8>> = (0..10_000)
        .map(|_| {
            let t = &toks[(rng.next() % toks.len() as u64) as usize];
            let k = t.len().div_ceil(2) + (rng.next() as usize % (t.len() / 2 + 1));
            t[..k.min(t.len())].to_vec()
        })
        .collect();
    let text: Vec<u8> =
        (0..20_000).flat_map(|_| toks[(rng.next() % toks.len() as u64) as usize].clone()).collect();

    c.bench_function("vocab/build-150k", |b| {
        b.iter(|| ByteVocab::from_tokens(black_box(&toks).iter().map(|t| Some(&t[..])), &[]))
    });
    c.bench_function("vocab/prefix_range-10k", |b| {
        b.iter(|| queries.iter().map(|q| v.prefix_range(black_box(q), false).1).sum::<usize>())
    });
    c.bench_function("vocab/prefixes_of-10k", |b| {
        b.iter(|| {
            (0..10_000).map(|i| v.prefixes_of(black_box(&text[i * 7..i * 7 + 40])).len()).sum::<usize>()
        })
    });
    c.bench_function("vocab/cover_tree-24-bytes", |b| {
        b.iter(|| CoverTree::build(&v, black_box(&text[100..124]), 1 << 20).map(|t| t.len()))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
