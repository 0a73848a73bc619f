use proptest::prelude::*;

use super::*;

fn tree_with_root(seed: u64) -> (SearchTree, u32) {
    let mut t = SearchTree::new(seed, 1 << 20).unwrap();
    let r = t.add_roots(1, &[], &[]).unwrap()[0];
    (t, r)
}

fn uniform(t: &mut SearchTree, nodes: &[u32], k: usize) -> Vec<u32> {
    let offsets: Vec<i64> = (0..=nodes.len()).map(|i| (i * k) as i64).collect();
    let priors = vec![1.0 / k as f32; nodes.len() * k];
    t.expand(nodes, &offsets, &priors, &ChildData::default()).unwrap()
}

#[test]
fn hot_state_is_32_bytes() {
    let (t, _) = tree_with_root(0);
    assert_eq!(t.hot_bytes_per_node(), 32);
}

#[test]
fn select_returns_distinct_leaves_and_backup_clears_pending() {
    let (mut t, r) = tree_with_root(1);
    uniform(&mut t, &[r], 4);
    t.backup(&[r], &[0.5]).unwrap();
    let p = SelectParams::default();
    let (leaves, off) = t.select(&[r], 10, &p).unwrap();
    assert_eq!(off, vec![0, 4]);
    let mut s = leaves.clone();
    s.sort();
    s.dedup();
    assert_eq!(s.len(), 4);
    assert_eq!(t.pending()[r as usize], 4);
    // nothing left to select until a backup
    let (more, _) = t.select(&[r], 3, &p).unwrap();
    assert!(more.is_empty());
    t.backup(&leaves, &[0.1, 0.2, 0.3, 0.4]).unwrap();
    assert!(t.pending().iter().all(|&x| x == 0));
    assert_eq!(t.visits()[r as usize], 5);
}

#[test]
fn errors_leave_tree_unchanged() {
    let (mut t, r) = tree_with_root(2);
    let before = t.clone();
    assert!(t.expand(&[r], &[0, 2], &[0.5, f32::NAN], &ChildData::default()).is_err());
    assert!(t.expand(&[r], &[0, 0], &[], &ChildData::default()).is_err());
    assert!(t.expand(&[r, r], &[0, 1, 2], &[0.5, 0.5], &ChildData::default()).is_err());
    assert!(t.backup(&[r], &[f64::INFINITY]).is_err());
    assert!(t.backup(&[r, 7], &[0.0, 0.0]).is_err());
    assert_eq!(t, before);
    let mut small = SearchTree::new(0, 3).unwrap();
    let r = small.add_roots(1, &[], &[]).unwrap()[0];
    let e = small.expand(&[r], &[0, 3], &[0.3; 3], &ChildData::default()).unwrap_err();
    assert!(e.to_string().contains("max_nodes"), "{e}");
}

/// `expand` marks nodes in their child counts to find repeats: every error path must undo the marks.
#[test]
fn expand_duplicate_and_capacity_errors_undo_marks() {
    let mut t = SearchTree::new(5, 200).unwrap();
    let roots = t.add_roots(40, &[], &[]).unwrap();
    let before = t.clone();
    let data = ChildData::default();
    let mut nodes = roots.clone();
    nodes[30] = roots[7]; // long list: the smallest repeated id is named
    nodes[31] = roots[3];
    let off: Vec<i64> = (0..=40).collect();
    let e = t.expand(&nodes, &off, &[0.5; 40], &data).unwrap_err();
    assert!(e.to_string().contains(&format!("node {} appears twice", roots[3])), "{e}");
    assert_eq!(t, before);
    let e = t.expand(&[roots[2], roots[5], roots[2]], &[0, 1, 2, 3], &[0.5; 3], &data).unwrap_err();
    assert!(e.to_string().contains(&format!("node {} appears twice", roots[2])), "{e}");
    assert_eq!(t, before);
    let off: Vec<i64> = (0..=40).map(|i| i * 5).collect();
    let e = t.expand(&roots, &off, &[0.5; 200], &data).unwrap_err();
    assert!(e.to_string().contains("max_nodes"), "{e}");
    assert_eq!(t, before);
    let kids = t.expand(&roots, &(0..=40).collect::<Vec<i64>>(), &[0.5; 40], &data).unwrap();
    assert_eq!(kids, (40..80).collect::<Vec<u32>>());
    assert!(roots.iter().all(|&r| t.child_counts()[r as usize] == 1));
}

#[test]
fn json_round_trip_is_exact() {
    let (mut t, r) = tree_with_root(3);
    let kids = uniform(&mut t, &[r], 3);
    t.backup(&kids, &[0.1, 1.0 / 3.0, 0.7]).unwrap();
    t.push(&kids, &[0.3, 0.1, 0.3]).unwrap();
    let _ = t.select(&[r], 2, &SelectParams::default()).unwrap();
    let s = t.to_json().unwrap();
    let u = SearchTree::from_json(&s).unwrap();
    assert_eq!(t, u);
    assert!(SearchTree::from_json("{\"seed\": 1}").is_err());
    assert!(
        SearchTree::from_json(&s.replace("\"parent\":[4294967295,0", "\"parent\":[4294967295,2")).is_err()
    );
}

#[test]
fn frontier_pops_in_priority_order_with_ties_by_key() {
    let (mut t, r) = tree_with_root(4);
    let kids = uniform(&mut t, &[r], 6);
    t.push(&kids, &[0.5, 0.9, 0.1, 0.9, f64::NEG_INFINITY, 0.5]).unwrap();
    let (out, off) = t.pop_best(&[r], 10).unwrap();
    assert_eq!(off, vec![0, 6]);
    assert_eq!(out[4], kids[2]);
    assert_eq!(out[5], kids[4]);
    let keys = t.tie_keys();
    let first_two = [kids[1], kids[3]];
    let expect = if keys[kids[1] as usize] < keys[kids[3] as usize] { first_two } else { [kids[3], kids[1]] };
    assert_eq!(&out[..2], &expect);
}

#[test]
fn votes() {
    let keys: Vec<Option<String>> = ["a", "b", "b", "a", "c"].iter().map(|s| Some(s.to_string())).collect();
    let w = vote(&keys, None, &[0, 5], None, None).unwrap();
    assert_eq!(w[0], Winner { index: 0, weight: 2.0, count: 2 });
    let wts = [0.1, 0.2, 0.2, 0.1, 0.9];
    let w = vote(&keys, Some(&wts), &[0, 3, 5], None, None).unwrap();
    assert_eq!(w[0].index, 1);
    assert_eq!(w[1].index, 4);
    let cx = [1.0, 5.0, 4.0, 1.0, 1.0];
    let w = vote(&keys, None, &[0, 5], Some(&cx), Some(2)).unwrap();
    assert_eq!(w[0].index, 1);
    assert!(vote(&keys, None, &[0, 4], None, None).is_err());
}

/// Oracle: brute-force PUCT/UCT choice over children, recomputed from scratch.
fn oracle_select(t: &SearchTree, root: u32, p: &SelectParams, inflight: &[u32]) -> Option<u32> {
    fn available(t: &SearchTree, n: u32, inflight: &[u32]) -> bool {
        let cnt = t.child_counts()[n as usize] as u32;
        if cnt == 0 {
            return !inflight.contains(&n);
        }
        let s = t.child_starts()[n as usize];
        (s..s + cnt).any(|c| available(t, c, inflight))
    }
    let mut node = root;
    if !available(t, node, inflight) {
        return None;
    }
    loop {
        let cnt = t.child_counts()[node as usize] as u32;
        if cnt == 0 {
            return Some(node);
        }
        let s = t.child_starts()[node as usize];
        let np = t.visits()[node as usize] as f64 + t.pending()[node as usize] as f64;
        let mut best: Option<(f64, u32, u32)> = None;
        for c in s..s + cnt {
            if !available(t, c, inflight) {
                continue;
            }
            let pend = t.pending()[c as usize] as f64;
            let nc = t.visits()[c as usize] as f64 + pend;
            let q = if nc > 0.0 { (t.value_sums()[c as usize] - p.virtual_loss * pend) / nc } else { p.fpu };
            let sc = match p.policy {
                Policy::Puct => q + (p.c * np.sqrt()) * t.priors()[c as usize] as f64 / (1.0 + nc),
                Policy::Uct => {
                    if nc > 0.0 {
                        q + p.c * (np.max(1.0).ln() / nc).sqrt()
                    } else {
                        f64::INFINITY
                    }
                }
            };
            let k = t.tie_keys()[c as usize];
            if best.is_none_or(|(bs, bk, bn)| sc > bs || (sc == bs && (k, c) < (bk, bn))) {
                best = Some((sc, k, c));
            }
        }
        node = best?.2;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn select_matches_oracle(
        seed in 0u64..1000,
        steps in proptest::collection::vec((1usize..4, 1usize..4, 0.0f64..1.0), 1..12),
        uct in any::<bool>(),
        c in 0.0f64..3.0,
        vl in 0.0f64..2.0,
    ) {
        let (mut t, r) = tree_with_root(seed);
        let p = SelectParams { policy: if uct { Policy::Uct } else { Policy::Puct }, c, virtual_loss: vl, fpu: 0.25 };
        for (n, k, v) in steps {
            // oracle picks sequentially with the same in-flight bookkeeping
            let mut oracle = t.clone();
            let mut inflight = Vec::new();
            let mut expect = Vec::new();
            for _ in 0..n {
                match oracle_select(&oracle, r, &p, &inflight) {
                    Some(l) => {
                        let mut x = l;
                        while x != NO_PARENT { oracle.pending_mut_for_test(x); x = oracle.parents()[x as usize]; }
                        inflight.push(l);
                        expect.push(l);
                    }
                    None => break,
                }
            }
            let (leaves, _) = t.select(&[r], n, &p).unwrap();
            prop_assert_eq!(&leaves, &expect);
            let fresh: Vec<u32> = leaves.iter().copied().filter(|&l| !t.is_terminal(l)).collect();
            if !fresh.is_empty() {
                let offsets: Vec<i64> = (0..=fresh.len()).map(|i| (i * k) as i64).collect();
                let priors: Vec<f32> = (0..fresh.len() * k).map(|j| ((j * 7 + 3) % 5) as f32 / 5.0).collect();
                t.expand(&fresh, &offsets, &priors, &ChildData::default()).unwrap();
            }
            let vals: Vec<f64> = leaves.iter().enumerate().map(|(i, _)| (v + i as f64 * 0.1).fract()).collect();
            // oracle backup: visits/value along the path
            let mut before = t.clone();
            t.backup(&leaves, &vals).unwrap();
            for (&l, &x) in leaves.iter().zip(&vals) {
                let mut y = l;
                while y != NO_PARENT { before.oracle_backup_for_test(y, x); y = before.parents()[y as usize]; }
            }
            prop_assert_eq!(t.visits(), before.visits());
            prop_assert_eq!(t.value_sums(), before.value_sums());
            prop_assert!(t.pending().iter().all(|&q| q == 0));
        }
    }

    #[test]
    fn top_k_matches_sort(scores in proptest::collection::vec(-3i32..3, 0..40), k in 0usize..6) {
        let (mut t, r) = tree_with_root(9);
        let n = scores.len().max(1);
        let kids = uniform(&mut t, &[r], n);
        let nodes: Vec<u32> = kids[..scores.len()].to_vec();
        let s: Vec<f64> = scores.iter().map(|&x| x as f64).collect();
        let got = t.top_k(&nodes, &s, k, None).unwrap();
        let keys = t.tie_keys();
        let mut idx: Vec<usize> = (0..nodes.len()).collect();
        idx.sort_by(|&a, &b| s[b].partial_cmp(&s[a]).unwrap().then(keys[nodes[a] as usize].cmp(&keys[nodes[b] as usize])));
        idx.truncate(k);
        prop_assert_eq!(got, idx);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn vote_matches_counting_oracle(
        answers in proptest::collection::vec(proptest::option::of(0u8..4), 0..24),
        cut in 0usize..24,
    ) {
        let keys: Vec<Option<String>> = answers.iter().map(|a| a.map(|x| x.to_string())).collect();
        let cut = cut.min(keys.len());
        let offsets = [0, cut as i64, keys.len() as i64];
        let weights: Vec<f64> = (0..keys.len()).map(|i| ((i * 37) % 11) as f64 / 4.0).collect();
        let got = vote(&keys, Some(&weights), &offsets, None, None).unwrap();
        for (g, w) in offsets.windows(2).enumerate() {
            let (a, b) = (w[0] as usize, w[1] as usize);
            // oracle: total weight, count and first index per key; winner by (weight, count, -first)
            let mut best: Option<(f64, u32, usize)> = None;
            for i in a..b {
                let Some(k) = &keys[i] else { continue };
                if keys[a..i].iter().any(|x| x.as_ref() == Some(k)) {
                    continue;
                }
                let same: Vec<usize> = (a..b).filter(|&j| keys[j].as_ref() == Some(k)).collect();
                let wt: f64 = same.iter().map(|&j| weights[j]).sum();
                let cand = (wt, same.len() as u32, i);
                if best.is_none_or(|(bw, bc, bf)| wt > bw || (wt == bw && (cand.1 > bc || (cand.1 == bc && i < bf)))) {
                    best = Some(cand);
                }
            }
            match best {
                None => prop_assert_eq!(got[g].index, -1),
                Some((wt, c, i)) => {
                    prop_assert_eq!(got[g].index, i as i64);
                    prop_assert_eq!(got[g].count, c);
                    prop_assert!((got[g].weight - wt).abs() < 1e-9);
                }
            }
        }
    }
}
