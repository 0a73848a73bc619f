//! Answer voting over sampled solutions: majority vote (self-consistency, Wang et al.), weighted
//! vote (scores summed per answer, Li et al. / Snell et al.), and complexity-based vote (Fu et al.:
//! vote among the `top` chains with the most reasoning steps). One hash-map pass per problem:
//! O(n) expected time for n answers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::{CoreError, Result};

/// A small multiplicative hasher for short answer strings (not DoS-resistant; keys are model outputs
/// tallied per problem, and a collision only costs time, never a wrong tally).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.0 =
            (self.0.rotate_left(5) ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56)).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The winner of one problem's vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Winner {
    /// Index (into the flat answer list) of the first answer equal to the winning key; -1 when the
    /// problem has no votable answer.
    pub index: i64,
    /// Total weight of the winning key.
    pub weight: f64,
    /// Number of votes for the winning key.
    pub count: u32,
}

/// Vote per problem. `keys[i]` is the canonical answer of candidate `i` (None: no answer, skipped);
/// candidates of problem `g` are `offsets[g]..offsets[g+1]`. `weights` (default 1) must be finite.
/// With `complexity` and `top`, only the `top` candidates with the largest complexity per problem
/// vote (ties: earlier candidate). Winner: largest total weight, then most votes, then earliest.
pub fn vote<S: AsRef<str>>(
    keys: &[Option<S>],
    weights: Option<&[f64]>,
    offsets: &[i64],
    complexity: Option<&[f64]>,
    top: Option<usize>,
) -> Result<Vec<Winner>> {
    let n = keys.len();
    if offsets.is_empty() || offsets[0] != 0 || offsets[offsets.len() - 1] != n as i64 {
        return Err(CoreError::invalid(
            "offsets",
            format!(
                "must start at 0 and end at len(answers) ({n}), got {:?}..{:?}",
                offsets.first(),
                offsets.last()
            ),
        ));
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(CoreError::invalid("offsets", "must be non-decreasing"));
    }
    if let Some(w) = weights {
        if w.len() != n {
            return Err(CoreError::invalid("weights", format!("length {} != len(answers) ({n})", w.len())));
        }
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(CoreError::non_finite("weights", format!("weights[{i}] = {} must be finite", w[i])));
        }
    }
    if let Some(c) = complexity {
        if c.len() != n {
            return Err(CoreError::invalid(
                "complexity",
                format!("length {} != len(answers) ({n})", c.len()),
            ));
        }
        if let Some(i) = c.iter().position(|x| x.is_nan()) {
            return Err(CoreError::non_finite("complexity", format!("complexity[{i}] is NaN")));
        }
    }
    if top == Some(0) {
        return Err(CoreError::invalid("top", "must be >= 1"));
    }
    let mut out = Vec::with_capacity(offsets.len() - 1);
    let mut tally: HashMap<&str, (f64, u32, usize), BuildHasherDefault<FxHasher>> = HashMap::default();
    let mut order: Vec<usize> = Vec::new();
    for w in offsets.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        tally.clear();
        order.clear();
        order.extend((a..b).filter(|&i| keys[i].is_some()));
        if let (Some(c), Some(t)) = (complexity, top) {
            order.sort_by(|&x, &y| c[y].total_cmp(&c[x]).then(x.cmp(&y)));
            order.truncate(t);
            order.sort_unstable();
        }
        for &i in &order {
            if let Some(k) = &keys[i] {
                let wt = weights.map_or(1.0, |w| w[i]);
                let e = tally.entry(k.as_ref()).or_insert((0.0, 0, i));
                e.0 += wt;
                e.1 += 1;
            }
        }
        let mut best: Option<(f64, u32, usize)> = None;
        for &(wt, cnt, first) in tally.values() {
            let better = match best {
                None => true,
                Some((bw, bc, bf)) => wt > bw || (wt == bw && (cnt > bc || (cnt == bc && first < bf))),
            };
            if better {
                best = Some((wt, cnt, first));
            }
        }
        out.push(match best {
            Some((weight, count, first)) => Winner { index: first as i64, weight, count },
            None => Winner { index: -1, weight: 0.0, count: 0 },
        });
    }
    Ok(out)
}
