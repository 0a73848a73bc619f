//! Criterion benchmarks of `stepfuse_core::search`: null-evaluator MCTS (K=8 children per
//! expansion; simulations/s = select + expand + backup), top-k beam pruning, voting.

// ok: benchmark inputs are valid by construction, so a failure here is a bug worth a panic
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stepfuse_core::search::{vote, ChildData, SearchTree, SelectParams};

const K: usize = 8;

/// `sims` simulations on one root, `batch` leaves per select call, every leaf expanded with K
/// uniform children and backed up with a constant value (the null evaluator). The arena is cleared
/// and reused, as a server reuses it across problem batches.
fn null_mcts(t: &mut SearchTree, sims: usize, batch: usize) {
    t.clear();
    let root = t.add_roots(1, &[], &[]).unwrap()[0];
    let p = SelectParams::default();
    let priors = vec![1.0 / K as f32; batch * K];
    let offsets: Vec<i64> = (0..=batch).map(|i| (i * K) as i64).collect();
    let values = vec![0.0; batch];
    let data = ChildData::default();
    let mut done = 0;
    while done < sims {
        let (leaves, _) = t.select(&[root], batch.min(sims - done), &p).unwrap();
        let m = leaves.len();
        t.expand(&leaves, &offsets[..=m], &priors[..m * K], &data).unwrap();
        t.backup(&leaves, &values[..m]).unwrap();
        done += m;
    }
}

fn benches(c: &mut Criterion) {
    let sims = 20_000;
    let mut g = c.benchmark_group("search/mcts-null-K8");
    g.throughput(Throughput::Elements(sims as u64));
    for batch in [1usize, 16] {
        let mut t = SearchTree::new(0, (sims * K + 16) as u64).unwrap();
        null_mcts(&mut t, sims, batch); // grow the arena once
        g.bench_function(format!("leaf_batch={batch}"), |b| b.iter(|| null_mcts(&mut t, sims, batch)));
    }
    g.finish();

    let mut t = SearchTree::new(0, 1 << 20).unwrap();
    let roots = t.add_roots(256, &[], &[]).unwrap();
    let offsets: Vec<i64> = (0..=roots.len()).map(|i| (i * 64) as i64).collect();
    let kids = t.expand(&roots, &offsets, &vec![0.1; 256 * 64], &ChildData::default()).unwrap();
    let scores: Vec<f64> = (0..kids.len()).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
    let mut g = c.benchmark_group("search/beam-prune");
    g.throughput(Throughput::Elements(kids.len() as u64));
    g.bench_function("256x64-keep4", |b| b.iter(|| t.top_k(&kids, &scores, 4, None).unwrap()));
    g.finish();

    let keys: Vec<Option<String>> = (0..65_536).map(|i| Some(format!("{}", (i * 31) % 17))).collect();
    let off: Vec<i64> = (0..=256).map(|i| i * 256).collect();
    let mut g = c.benchmark_group("search/vote");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("256x256-majority", |b| {
        b.iter_batched(|| (), |_| vote(&keys, None, &off, None, None).unwrap(), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
