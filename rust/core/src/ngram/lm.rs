//! The queryable n-gram language model: dense unigrams plus one compact hash table per higher order
//! (see [`super::table`]), batched scoring with rayon.
//!
//! Backoff scoring (Katz form of an ARPA model): `ln p(w | c) = ln p(w | c_m) + Σ_{j>m} bo(c_j)` where
//! `c_m` is the longest context suffix with `(c_m, w)` stored and `c_j` runs over the longer stored context
//! suffixes. Interpolated MLE: `p(w | c) = Σ_n λ_n p_MLE(w | c_{n-1}) / Σ_n λ_n`, both sums over the
//! orders whose context `c_{n-1}` was seen (the unigram's empty context always is); zero mass gives −inf.
//! Cost per query: one hash probe per context order and at most one per n-gram order.

// Loops over orders index several parallel per-order arrays at once; ranges read clearer than zips.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use super::count::{key_id, low_mask, pack, Specials};
use super::estimate::{Kind, Levels};
use super::table::{step, Buf, Table};
use crate::{CoreError, Result};

/// Largest supported order (ids pack into 128-bit keys with at least one bit each).
pub const MAX_ORDER: usize = 128;

/// An n-gram language model over ids `0 .. vocab_size` plus `<unk>`, `<s>`, `</s>`
/// (ids `vocab_size`, `vocab_size + 1`, `vocab_size + 2`). Immutable and `Sync`.
#[derive(Clone, Debug)]
pub struct NGramLM {
    pub(crate) order: usize,
    pub(crate) vocab_size: u32,
    pub(crate) bits: u32,
    pub(crate) kind: Kind,
    pub(crate) seed: u64,
    pub(crate) uni_prob: Buf<f32>,
    pub(crate) uni_bo: Buf<f32>,
    pub(crate) uni_present: Buf<u8>,
    /// Index `n - 2` holds order `n`.
    pub(crate) tables: Vec<Table>,
    /// Sorted packed n-gram keys per order `n >= 2` (index `n - 2`), kept for ARPA output and dense
    /// `next_logprobs`; `None` for binaries saved without them.
    pub(crate) keys: Option<Vec<Buf<u128>>>,
    pub(crate) discounts: Vec<[f64; 3]>,
}

const SEED0: u64 = 0x243F_6A88_85A3_08D3;

impl NGramLM {
    /// Hash the estimated levels into tables (retrying seeds on a fingerprint collision).
    pub fn from_levels(lv: Levels) -> Result<NGramLM> {
        let ids = lv.vocab_size as usize + 3;
        if lv.uni_prob.len() != ids || lv.uni_bo.len() != ids || lv.uni_present.len() != ids {
            return Err(CoreError::invalid("levels", "unigram arrays must cover vocab_size + 3 ids"));
        }
        for attempt in 0..64u64 {
            let seed = SEED0.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut tables = Vec::with_capacity(lv.keys.len());
            let mut ok = true;
            for (i, keys) in lv.keys.iter().enumerate() {
                let n = i + 2;
                let bits = lv.bits;
                let h: Vec<u64> = keys
                    .par_iter()
                    .map(|&k| (0..n).rev().fold(seed, |h, j| step(h, key_id(k, n, j, bits))))
                    .collect();
                match Table::build(&h, &lv.prob[i], &lv.bo[i])? {
                    Some(t) => tables.push(t),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Ok(NGramLM {
                    order: lv.order,
                    vocab_size: lv.vocab_size,
                    bits: lv.bits,
                    kind: lv.kind,
                    seed,
                    uni_prob: Buf::Owned(lv.uni_prob),
                    uni_bo: Buf::Owned(lv.uni_bo),
                    uni_present: Buf::Owned(lv.uni_present),
                    tables,
                    keys: Some(lv.keys.into_iter().map(Buf::Owned).collect()),
                    discounts: lv.discounts,
                });
            }
        }
        Err(CoreError::limit("hash seeds", 64, "could not find a collision-free hash seed"))
    }

    /// Highest order.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of user token ids.
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// The special ids.
    pub fn specials(&self) -> Specials {
        Specials { unk: self.vocab_size, bos: self.vocab_size + 1, eos: self.vocab_size + 2 }
    }

    /// Scoring kind.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Discounts per order (modified Kneser–Ney models trained here; empty otherwise).
    pub fn discounts(&self) -> &[[f64; 3]] {
        &self.discounts
    }

    /// Number of stored n-grams of order `n` (unigrams: the ones present in the model).
    pub fn count(&self, n: usize) -> usize {
        match n {
            1 => self.uni_present.as_slice().iter().filter(|&&x| x != 0).count(),
            n if n >= 2 && n <= self.order => self.tables[n - 2].len(),
            _ => 0,
        }
    }

    /// Bytes of the hash layout: dense unigram arrays plus every table.
    pub fn hash_nbytes(&self) -> usize {
        9 * self.uni_prob.len() + self.tables.iter().map(Table::nbytes).sum::<usize>()
    }

    /// Whether the sorted n-gram keys are available (ARPA output, dense `next_logprobs`).
    pub fn has_ngrams(&self) -> bool {
        self.keys.is_some()
    }

    fn num_ids(&self) -> u64 {
        self.vocab_size as u64 + 3
    }

    /// The usable context of one row: the last `order - 1` ids, cut at the rightmost negative id.
    fn row_context(&self, row: &[i64], buf: &mut [u32; MAX_ORDER]) -> Result<usize> {
        let take = row.len().min(self.order - 1);
        let mut len = 0;
        for &x in row[row.len() - take..].iter().rev() {
            if x < 0 {
                break;
            }
            if x as u64 >= self.num_ids() {
                return Err(CoreError::out_of_range(
                    "contexts",
                    x,
                    format!(
                        "ids must lie in [0, vocab_size + 3 = {}) or be negative (padding)",
                        self.num_ids()
                    ),
                ));
            }
            len += 1;
        }
        let start = row.len() - len;
        for (i, &x) in row[start..].iter().enumerate() {
            buf[i] = x as u32;
        }
        Ok(len)
    }

    /// Look up the stored context suffixes of `ctx`: returns how many (`found`) and fills their
    /// backoffs `bo[1..=found]`.
    #[inline]
    fn contexts(&self, ctx: &[u32], bo: &mut [f32; MAX_ORDER]) -> usize {
        let l = ctx.len();
        let mle = matches!(self.kind, Kind::InterpolatedMle(_));
        let mut hc = self.seed;
        let mut found = 0;
        let uni_bo = self.uni_bo.as_slice();
        for m in 1..=l {
            let x = ctx[l - m];
            hc = step(hc, x);
            let b = if m == 1 {
                uni_bo.get(x as usize).copied().unwrap_or(f32::NEG_INFINITY)
            } else {
                let t = &self.tables[m - 2];
                match t.find(hc) {
                    Some(i) => t.bo.as_slice().get(i).copied().unwrap_or(0.0),
                    None => break,
                }
            };
            if mle && !b.is_finite() {
                break;
            }
            bo[m] = b;
            found = m;
        }
        found
    }

    /// Natural-log probabilities of `tokens` after the context `ctx` (already cut to at most
    /// `order - 1` valid ids).
    pub fn score_context(&self, ctx: &[u32], tokens: &[u32], out: &mut [f32]) {
        // Issue every probe of this query before reading any, so their cache misses overlap.
        if tokens.len() <= 4 {
            self.prefetch(ctx, tokens, false);
            self.prefetch(ctx, tokens, true);
        }
        self.score_context_now(ctx, tokens, out);
    }

    /// Prefetch the directory slots (`buckets == false`) or the buckets of every probe of a query.
    #[inline]
    fn prefetch(&self, ctx: &[u32], tokens: &[u32], buckets: bool) {
        let l = ctx.len();
        let go = |t: &Table, h: u64| if buckets { t.prefetch_bucket(h) } else { t.prefetch_dir(h) };
        let mut hc = self.seed;
        for m in 1..=l {
            hc = step(hc, ctx[l - m]);
            if m >= 2 {
                go(&self.tables[m - 2], hc);
            }
        }
        for &w in tokens {
            let mut hw = step(self.seed, w);
            for m in 1..=l {
                hw = step(hw, ctx[l - m]);
                go(&self.tables[m - 1], hw);
            }
        }
    }

    fn score_context_now(&self, ctx: &[u32], tokens: &[u32], out: &mut [f32]) {
        let mut bo = [0f32; MAX_ORDER];
        let found = self.contexts(ctx, &mut bo);
        let l = ctx.len();
        let uni = self.uni_prob.as_slice();
        let mut hws = [0u64; MAX_ORDER];
        match &self.kind {
            Kind::Backoff => {
                let mut acc = [0f32; MAX_ORDER];
                for m in (0..found).rev() {
                    acc[m] = acc[m + 1] + bo[m + 1];
                }
                for (o, &w) in out.iter_mut().zip(tokens) {
                    let mut hw = step(self.seed, w);
                    for m in 1..=found {
                        hw = step(hw, ctx[l - m]);
                        hws[m] = hw;
                    }
                    let mut res = None;
                    for m in (1..=found).rev() {
                        let t = &self.tables[m - 1];
                        if let Some(i) = t.find(hws[m]) {
                            res = Some(t.prob.as_slice()[i] + acc[m]);
                            break;
                        }
                    }
                    *o = res.unwrap_or_else(|| {
                        uni.get(w as usize).copied().unwrap_or(f32::NEG_INFINITY) + acc[0]
                    });
                }
            }
            Kind::InterpolatedMle(lambda) => {
                for (o, &w) in out.iter_mut().zip(tokens) {
                    let mut num =
                        lambda[0] * (uni.get(w as usize).copied().unwrap_or(f32::NEG_INFINITY) as f64).exp();
                    let mut den = lambda[0];
                    let mut hw = step(self.seed, w);
                    for m in 1..=found {
                        hw = step(hw, ctx[l - m]);
                        den += lambda[m];
                        let t = &self.tables[m - 1];
                        if let Some(i) = t.find(hw) {
                            num += lambda[m] * (t.prob.as_slice()[i] as f64).exp();
                        }
                    }
                    *o = if num > 0.0 && den > 0.0 { (num / den).ln() as f32 } else { f32::NEG_INFINITY };
                }
            }
        }
    }

    fn check_tokens(&self, tokens: &[i64]) -> Result<Vec<u32>> {
        let n = self.num_ids();
        tokens
            .iter()
            .map(|&t| {
                if t < 0 || t as u64 >= n {
                    Err(CoreError::out_of_range(
                        "tokens",
                        t,
                        format!("ids must lie in [0, vocab_size + 3 = {n})"),
                    ))
                } else {
                    Ok(t as u32)
                }
            })
            .collect()
    }

    /// Score `b` rows: `contexts` is `[b, l]` row-major (negative = padding; only the last `order - 1`
    /// columns are used), `tokens` is `[b, k]`. Returns `[b, k]` natural-log probabilities.
    pub fn score_batch(
        &self,
        contexts: &[i64],
        b: usize,
        l: usize,
        tokens: &[i64],
        k: usize,
    ) -> Result<Vec<f32>> {
        if contexts.len() != b * l {
            return Err(CoreError::invalid(
                "contexts",
                format!("expected {b}x{l} values, got {}", contexts.len()),
            ));
        }
        if tokens.len() != b * k {
            return Err(CoreError::invalid(
                "tokens",
                format!("expected {b}x{k} values, got {}", tokens.len()),
            ));
        }
        let toks = self.check_tokens(tokens)?;
        let mut out = vec![0f32; b * k];
        if b == 0 || k == 0 {
            return Ok(out);
        }
        // Rows go in groups of G: the probes of the whole group are prefetched in two rounds
        // (directory slots, then buckets) before any is read, so cache misses of different rows overlap.
        const G: usize = 8;
        let run = |(g, o): (usize, &mut [f32])| -> Result<()> {
            let r0 = g * G;
            let rows = o.len() / k;
            let mut bufs = [[0u32; MAX_ORDER]; G];
            let mut lens = [0usize; G];
            for i in 0..rows {
                let r = r0 + i;
                lens[i] = self.row_context(&contexts[r * l..(r + 1) * l], &mut bufs[i])?;
            }
            if k <= 4 {
                for round in [false, true] {
                    for i in 0..rows {
                        let r = r0 + i;
                        self.prefetch(&bufs[i][..lens[i]], &toks[r * k..(r + 1) * k], round);
                    }
                }
            }
            for (i, oi) in o.chunks_mut(k).enumerate() {
                let r = r0 + i;
                self.score_context_now(&bufs[i][..lens[i]], &toks[r * k..(r + 1) * k], oi);
            }
            Ok(())
        };
        if b * k < 512 {
            out.chunks_mut(k * G).enumerate().try_for_each(run)?;
        } else {
            out.par_chunks_mut(k * G).enumerate().with_min_len((256 / (k * G)).max(1)).try_for_each(run)?;
        }
        Ok(out)
    }

    /// Log-probabilities of every user id `0 .. vocab_size` after each of `b` contexts (`[b, l]`,
    /// negative = padding). Returns `[b, vocab_size]`. `</s>` and `<unk>` are not included.
    pub fn next_logprobs(&self, contexts: &[i64], b: usize, l: usize) -> Result<Vec<f32>> {
        if contexts.len() != b * l {
            return Err(CoreError::invalid(
                "contexts",
                format!("expected {b}x{l} values, got {}", contexts.len()),
            ));
        }
        let v = self.vocab_size as usize;
        let mut out = vec![0f32; b * v];
        if v == 0 {
            return Ok(out);
        }
        let all: Vec<u32> = (0..self.vocab_size).collect();
        out.par_chunks_mut(v).enumerate().try_for_each(|(r, o)| -> Result<()> {
            let mut buf = [0u32; MAX_ORDER];
            let len = self.row_context(&contexts[r * l..(r + 1) * l], &mut buf)?;
            match &self.keys {
                Some(keys) => self.dense_row(&buf[..len], keys, o),
                None => self.score_context(&buf[..len], &all, o),
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Dense distribution of one row using the sorted keys to enumerate each context's followers.
    fn dense_row(&self, ctx: &[u32], keys: &[Buf<u128>], out: &mut [f32]) {
        let mut bo = [0f32; MAX_ORDER];
        let found = self.contexts(ctx, &mut bo);
        let l = ctx.len();
        let v = self.vocab_size as usize;
        let uni = &self.uni_prob.as_slice()[..v];
        let bits = self.bits;
        let idmask = low_mask(1, bits);
        let followers = |m: usize| -> &[u128] {
            let ck = pack(&ctx[l - m..], bits);
            let ks = keys[m - 1].as_slice();
            let lo = ks.partition_point(|&k| (k >> bits) < ck);
            let hi = ks.partition_point(|&k| (k >> bits) <= ck);
            &ks[lo..hi]
        };
        let hash_of = |w: u32, m: usize| (1..=m).fold(step(self.seed, w), |h, j| step(h, ctx[l - j]));
        match &self.kind {
            Kind::Backoff => {
                let mut acc = [0f32; MAX_ORDER];
                for m in (0..found).rev() {
                    acc[m] = acc[m + 1] + bo[m + 1];
                }
                for (o, &p) in out.iter_mut().zip(uni) {
                    *o = p + acc[0];
                }
                for m in 1..=found {
                    let t = &self.tables[m - 1];
                    for &k in followers(m) {
                        let w = (k & idmask) as u32;
                        if (w as usize) < v {
                            if let Some(i) = t.find(hash_of(w, m)) {
                                out[w as usize] = t.prob.as_slice()[i] + acc[m];
                            }
                        }
                    }
                }
            }
            Kind::InterpolatedMle(lambda) => {
                let mut num: Vec<f64> = uni.iter().map(|&p| lambda[0] * (p as f64).exp()).collect();
                let mut den = lambda[0];
                for m in 1..=found {
                    den += lambda[m];
                    let t = &self.tables[m - 1];
                    for &k in followers(m) {
                        let w = (k & idmask) as u32;
                        if (w as usize) < v {
                            if let Some(i) = t.find(hash_of(w, m)) {
                                num[w as usize] += lambda[m] * (t.prob.as_slice()[i] as f64).exp();
                            }
                        }
                    }
                }
                for (o, &x) in out.iter_mut().zip(&num) {
                    *o = if x > 0.0 && den > 0.0 { (x / den).ln() as f32 } else { f32::NEG_INFINITY };
                }
            }
        }
    }

    /// Probability and backoff (natural log) of a stored n-gram, or `None`. Unigrams always resolve.
    pub fn entry(&self, ids: &[u32]) -> Option<(f32, f32)> {
        match ids.len() {
            0 => None,
            1 => {
                let w = ids[0] as usize;
                Some((*self.uni_prob.as_slice().get(w)?, *self.uni_bo.as_slice().get(w)?))
            }
            n if n <= self.order => {
                let t = &self.tables[n - 2];
                let h = ids.iter().rev().fold(self.seed, |h, &x| step(h, x));
                let i = t.find(h)?;
                Some((t.prob.as_slice()[i], t.bo.as_slice().get(i).copied().unwrap_or(0.0)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::count::NGramCounts;
    use super::super::estimate::{estimate_mkn, estimate_mle};
    use super::*;

    fn corpus() -> (Vec<u32>, Vec<usize>) {
        let sents: Vec<Vec<u32>> =
            (0..200u32).map(|i| (0..(i % 7 + 1)).map(|j| (i * 7 + j * 3) % 11).collect()).collect();
        let mut off = vec![0];
        let mut toks = vec![];
        for s in &sents {
            toks.extend(s);
            off.push(toks.len());
        }
        (toks, off)
    }

    #[test]
    fn distributions_sum_to_one() {
        let (t, o) = corpus();
        let c = NGramCounts::count(&t, &o, 3, 11, 64).unwrap();
        let fallback = Some([0.5, 1.0, 1.5]);
        for lm in [
            NGramLM::from_levels(estimate_mkn(&c, fallback).unwrap()).unwrap(),
            NGramLM::from_levels(estimate_mle(&c, &[0.2, 0.3, 0.5]).unwrap()).unwrap(),
        ] {
            let sp = lm.specials();
            // every id but <s> is a possible next token
            let cands: Vec<i64> = (0..14).filter(|&x| x != sp.bos as i64).collect();
            for ctx in [vec![-1, -1], vec![-1, sp.bos as i64], vec![3, 5], vec![sp.bos as i64, 0], vec![9, 9]]
            {
                let s = lm.score_batch(&ctx, 1, 2, &cands, cands.len()).unwrap();
                let total: f64 = s.iter().map(|&x| (x as f64).exp()).sum();
                assert!((total - 1.0).abs() < 1e-5, "{ctx:?}: {total}");
                let dense = lm.next_logprobs(&ctx, 1, 2).unwrap();
                for w in 0..11 {
                    assert!((dense[w] - s[w]).abs() < 1e-5 || (dense[w] == s[w]));
                }
            }
        }
    }

    #[test]
    fn rejects_bad_ids() {
        let (t, o) = corpus();
        let c = NGramCounts::count(&t, &o, 2, 11, 64).unwrap();
        let lm = NGramLM::from_levels(estimate_mle(&c, &[0.5, 0.5]).unwrap()).unwrap();
        assert!(lm.score_batch(&[1], 1, 1, &[14], 1).is_err());
        assert!(lm.score_batch(&[99], 1, 1, &[1], 1).is_err());
        assert!(lm.score_batch(&[1], 1, 1, &[-1], 1).is_err());
        assert!(lm.score_batch(&[1, 2], 1, 1, &[1], 1).is_err());
    }
}
