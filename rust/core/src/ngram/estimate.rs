//! Estimation of the model from counts.
//!
//! **Modified Kneser–Ney** (Chen & Goodman 1998 §3; estimation as in Heafield et al. 2013, KenLM
//! `lmplz`): adjusted counts `a(g)` are raw counts at the highest order and for n-grams that start with
//! `<s>`, and continuation counts `N1+(• g)` otherwise. Per order, discounts come from the counts of
//! adjusted counts `t_k`: `Y = t1 / (t1 + 2 t2)`, `D_k = k − (k+1) Y t_{k+1} / t_k` for k = 1, 2, 3+.
//! `u(w|c) = (a(cw) − D(a(cw))) / Σ_x a(cx)`, `γ(c) = (D1 N1(c•) + D2 N2(c•) + D3 N3+(c•)) / Σ_x a(cx)`,
//! and `p(w|c) = u(w|c) + γ(c) p(w|c')` with `c'` the context without its first word. Unigrams
//! interpolate with the uniform distribution over the vocabulary: user ids `0..V`, `</s>` and `<unk>`
//! (`<s>` is excluded from unigram sums and written with log-probability 0, as `lmplz` writes it).
//!
//! **Interpolated MLE** (Superposed Decoding's filter): stored probabilities are the maximum-likelihood
//! conditionals `c(cw) / Σ_x c(cx)`; the backoff slot of an n-gram marks whether it was seen as a
//! context (0) or not (−inf). Scoring mixes the orders with fixed weights (see `lm.rs`).

use rayon::prelude::*;

use super::count::{key_id, low_mask, NGramCounts, Run, Specials};
use crate::{CoreError, Result};

/// How the model scores (chosen at training or read from a file).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Backoff form, as in an ARPA file (modified Kneser–Ney, or anything read from ARPA).
    Backoff,
    /// Fixed interpolation weights, one per order (index 0 = unigram), over MLE conditionals.
    InterpolatedMle(Vec<f64>),
}

/// Estimated model before hashing: natural-log values, n-grams of order >= 2 as sorted packed keys.
#[derive(Clone, Debug)]
pub struct Levels {
    pub order: usize,
    pub vocab_size: u32,
    pub bits: u32,
    pub kind: Kind,
    /// Dense over all ids `0 .. vocab_size + 3`.
    pub uni_prob: Vec<f32>,
    pub uni_bo: Vec<f32>,
    /// 1 when the unigram is part of the model (written to ARPA).
    pub uni_present: Vec<u8>,
    /// Index `n - 2` holds order `n`.
    pub keys: Vec<Vec<u128>>,
    pub prob: Vec<Vec<f32>>,
    /// Empty for the highest order.
    pub bo: Vec<Vec<f32>>,
    /// Discounts `[D1, D2, D3+]` per order (modified Kneser–Ney only).
    pub discounts: Vec<[f64; 3]>,
}

/// Discounts from counts of adjusted counts `t[1..=4]`; `None` when they cannot be estimated (as `lmplz`,
/// any `D_k` not finite or outside `[0, k]`).
pub fn discounts_from(t: &[u64; 5]) -> Option<[f64; 3]> {
    let t1 = t[1] as f64;
    let t2 = t[2] as f64;
    let y = t1 / (t1 + 2.0 * t2);
    let mut d = [0.0; 3];
    for k in 1..=3 {
        let dk = k as f64 - (k as f64 + 1.0) * y * t[k + 1] as f64 / t[k] as f64;
        if !dk.is_finite() || dk < 0.0 || dk > k as f64 {
            return None;
        }
        d[k - 1] = dk;
    }
    Some(d)
}

struct Groups {
    /// Context keys of the groups (sorted).
    ctx: Vec<u128>,
    /// Per group: γ (MKN) or 1 (MLE marks).
    gamma: Vec<f64>,
}

fn err_internal(msg: &str) -> CoreError {
    CoreError::invalid(
        "counts",
        format!("inconsistent n-gram counts ({msg}); were they built by NGramCounts?"),
    )
}

fn check_nonempty(c: &NGramCounts) -> Result<()> {
    if c.tokens() == 0 {
        return Err(CoreError::invalid("sentences", "empty corpus: no tokens to train on"));
    }
    Ok(())
}

/// Modified Kneser–Ney estimation, with `lmplz`'s conventions. `fallback` replaces the discounts of an
/// order whose counts of counts cannot give them (`lmplz --discount_fallback`); without it that is an error.
pub fn estimate_mkn(c: &NGramCounts, fallback: Option<[f64; 3]>) -> Result<Levels> {
    check_nonempty(c)?;
    let big_n = c.order();
    let bits = c.bits();
    let v = c.vocab_size();
    let sp = Specials::new(v)?;
    let ids = v as usize + 3;

    // Adjusted counts.
    let mut adj: Vec<Vec<u64>> = Vec::with_capacity(big_n);
    for n in 1..=big_n {
        let run = c.level(n)?;
        if n == big_n {
            adj.push(run.counts.clone());
            continue;
        }
        let hi = c.level(n + 1)?;
        let mask = low_mask(n, bits);
        let mut suf: Vec<u128> = hi.keys.par_iter().map(|k| k & mask).collect();
        suf.par_sort_unstable();
        let cont = Run::from_sorted(&suf);
        let a: Vec<u64> = run
            .keys
            .par_iter()
            .zip(run.counts.par_iter())
            .map(|(&k, &raw)| {
                if key_id(k, n, 0, bits) == sp.bos {
                    raw
                } else {
                    match cont.keys.binary_search(&k) {
                        Ok(i) => cont.counts[i],
                        Err(_) => raw,
                    }
                }
            })
            .collect();
        adj.push(a);
    }

    // Discounts per order.
    let mut discounts = Vec::with_capacity(big_n);
    for n in 1..=big_n {
        let keys = &c.level(n)?.keys;
        let mut t = [0u64; 5];
        for (&k, &a) in keys.iter().zip(&adj[n - 1]) {
            if n == 1 && k as u32 == sp.bos {
                continue;
            }
            if (1..=4).contains(&a) {
                t[a as usize] += 1;
            }
        }
        let d = match (discounts_from(&t), fallback) {
            (Some(d), _) => d,
            (None, Some(f)) => f,
            (None, None) => {
                return Err(CoreError::invalid(
                    "sentences",
                    format!(
                        "cannot estimate modified Kneser-Ney discounts for order {n} from counts of counts \
                         t1..t4 = {:?} (corpus too small or too regular); pass discount_fallback",
                        &t[1..]
                    ),
                ))
            }
        };
        discounts.push(d);
    }

    // Uninterpolated probabilities and per-context gammas.
    let mut u: Vec<Vec<f64>> = Vec::with_capacity(big_n);
    let mut groups: Vec<Groups> = Vec::with_capacity(big_n);
    let mut entry_gamma: Vec<Vec<f64>> = Vec::with_capacity(big_n);
    for n in 1..=big_n {
        let keys = &c.level(n)?.keys;
        let a = &adj[n - 1];
        let d = discounts[n - 1];
        let disc = |x: u64| match x {
            0 => 0.0,
            1 => d[0],
            2 => d[1],
            _ => d[2],
        };
        let mut un = vec![0.0f64; keys.len()];
        let mut eg = vec![0.0f64; keys.len()];
        let mut g = Groups { ctx: Vec::new(), gamma: Vec::new() };
        let mut s = 0;
        while s < keys.len() {
            let ctx = if n == 1 { 0 } else { keys[s] >> bits };
            let mut e = s;
            let (mut total, mut n1, mut n2, mut n3) = (0u64, 0u64, 0u64, 0u64);
            while e < keys.len() && (n == 1 || keys[e] >> bits == ctx) {
                if !(n == 1 && keys[e] as u32 == sp.bos) {
                    total += a[e];
                    match a[e] {
                        0 => {}
                        1 => n1 += 1,
                        2 => n2 += 1,
                        _ => n3 += 1,
                    }
                }
                e += 1;
            }
            let tot = total as f64;
            let gamma =
                if total == 0 { 1.0 } else { (d[0] * n1 as f64 + d[1] * n2 as f64 + d[2] * n3 as f64) / tot };
            for i in s..e {
                if !(n == 1 && keys[i] as u32 == sp.bos) && total > 0 {
                    un[i] = (a[i] as f64 - disc(a[i])) / tot;
                }
                eg[i] = gamma;
            }
            g.ctx.push(ctx);
            g.gamma.push(gamma);
            s = e;
        }
        u.push(un);
        groups.push(g);
        entry_gamma.push(eg);
    }

    // Interpolation.
    let gamma0 = groups[0].gamma.first().copied().unwrap_or(1.0);
    let uniform = gamma0 / (v as f64 + 2.0);
    let mut p1 = vec![uniform; ids];
    p1[sp.bos as usize] = 1.0;
    let mut uni_present = vec![0u8; ids];
    for (i, &k) in c.level(1)?.keys.iter().enumerate() {
        let w = k as usize;
        if w < ids {
            uni_present[w] = 1;
            if w != sp.bos as usize {
                p1[w] += u[0][i];
            }
        }
    }
    for s in [sp.unk, sp.bos, sp.eos] {
        uni_present[s as usize] = 1;
    }
    let mut probs: Vec<Vec<f64>> = Vec::with_capacity(big_n);
    probs.push(Vec::new());
    for n in 2..=big_n {
        let keys = &c.level(n)?.keys;
        let lower_keys = if n > 2 { Some(&c.level(n - 1)?.keys) } else { None };
        let lower = &probs[n - 2];
        let mask = low_mask(n - 1, bits);
        let p: Result<Vec<f64>> = keys
            .par_iter()
            .enumerate()
            .map(|(i, &k)| {
                let s = k & mask;
                let pl = match lower_keys {
                    None => p1.get(s as usize).copied().ok_or_else(|| err_internal("unigram id"))?,
                    Some(lk) => match lk.binary_search(&s) {
                        Ok(j) => lower[j],
                        Err(_) => return Err(err_internal("missing suffix n-gram")),
                    },
                };
                Ok(u[n - 1][i] + entry_gamma[n - 1][i] * pl)
            })
            .collect();
        probs.push(p?);
    }

    // Backoffs: γ of the n-gram as a context one order up, else 1.
    let backoff_of = |n: usize, k: u128| -> f64 {
        match groups.get(n) {
            Some(g) => match g.ctx.binary_search(&k) {
                Ok(j) => g.gamma[j],
                Err(_) => 1.0,
            },
            None => 1.0,
        }
    };
    let mut uni_bo = vec![0.0f32; ids];
    if big_n > 1 {
        for (w, b) in uni_bo.iter_mut().enumerate() {
            *b = backoff_of(1, w as u128).ln() as f32;
        }
    }
    let uni_prob: Vec<f32> = p1.iter().map(|&p| p.ln() as f32).collect();
    let mut keys_out = Vec::new();
    let mut prob_out = Vec::new();
    let mut bo_out = Vec::new();
    for n in 2..=big_n {
        let keys = c.level(n)?.keys.clone();
        prob_out.push(probs[n - 1].par_iter().map(|&p| p.ln() as f32).collect());
        bo_out.push(if n == big_n {
            Vec::new()
        } else {
            keys.par_iter().map(|&k| backoff_of(n, k).ln() as f32).collect()
        });
        keys_out.push(keys);
    }
    Ok(Levels {
        order: big_n,
        vocab_size: v,
        bits,
        kind: Kind::Backoff,
        uni_prob,
        uni_bo,
        uni_present,
        keys: keys_out,
        prob: prob_out,
        bo: bo_out,
        discounts,
    })
}

/// Interpolated MLE: conditionals `c(cw)/Σ_x c(cx)` per order, and context marks, for fixed `weights`
/// (one per order, non-negative, finite, positive sum).
pub fn estimate_mle(c: &NGramCounts, weights: &[f64]) -> Result<Levels> {
    check_nonempty(c)?;
    let big_n = c.order();
    if weights.len() != big_n {
        return Err(CoreError::invalid(
            "weights",
            format!("need one weight per order ({big_n}), got {}", weights.len()),
        ));
    }
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
        return Err(CoreError::invalid("weights", "must be finite, non-negative, with a positive sum"));
    }
    let bits = c.bits();
    let v = c.vocab_size();
    let sp = Specials::new(v)?;
    let ids = v as usize + 3;
    let mut probs: Vec<Vec<f32>> = Vec::with_capacity(big_n);
    let mut ctxs: Vec<Vec<u128>> = Vec::with_capacity(big_n);
    for n in 1..=big_n {
        let run = c.level(n)?;
        let keys = &run.keys;
        let mut p = vec![f32::NEG_INFINITY; keys.len()];
        let mut cx = Vec::new();
        let mut s = 0;
        while s < keys.len() {
            let ctx = if n == 1 { 0 } else { keys[s] >> bits };
            let mut e = s;
            let mut total = 0u64;
            while e < keys.len() && (n == 1 || keys[e] >> bits == ctx) {
                if !(n == 1 && keys[e] as u32 == sp.bos) {
                    total += run.counts[e];
                }
                e += 1;
            }
            for i in s..e {
                if !(n == 1 && keys[i] as u32 == sp.bos) && total > 0 {
                    p[i] = (run.counts[i] as f64 / total as f64).ln() as f32;
                }
            }
            cx.push(ctx);
            s = e;
        }
        probs.push(p);
        ctxs.push(cx);
    }
    let is_ctx = |n: usize, k: u128| -> f32 {
        match ctxs.get(n) {
            Some(cx) if cx.binary_search(&k).is_ok() => 0.0,
            _ => f32::NEG_INFINITY,
        }
    };
    let mut uni_prob = vec![f32::NEG_INFINITY; ids];
    let mut uni_present = vec![0u8; ids];
    for (i, &k) in c.level(1)?.keys.iter().enumerate() {
        if let Some(slot) = uni_prob.get_mut(k as usize) {
            *slot = probs[0][i];
            uni_present[k as usize] = 1;
        }
    }
    let uni_bo: Vec<f32> =
        (0..ids).map(|w| if big_n > 1 { is_ctx(1, w as u128) } else { f32::NEG_INFINITY }).collect();
    let mut keys_out = Vec::new();
    let mut prob_out = Vec::new();
    let mut bo_out = Vec::new();
    for n in 2..=big_n {
        let keys = c.level(n)?.keys.clone();
        bo_out.push(if n == big_n { Vec::new() } else { keys.par_iter().map(|&k| is_ctx(n, k)).collect() });
        prob_out.push(std::mem::take(&mut probs[n - 1]));
        keys_out.push(keys);
    }
    Ok(Levels {
        order: big_n,
        vocab_size: v,
        bits,
        kind: Kind::InterpolatedMle(weights.to_vec()),
        uni_prob,
        uni_bo,
        uni_present,
        keys: keys_out,
        prob: prob_out,
        bo: bo_out,
        discounts: Vec::new(),
    })
}
