//! Incremental no-repeat-n-gram blocking (the rule of `NoRepeatNGramLogitsProcessor`): after a sequence
//! `x_1..x_L` with `L >= n`, token `t` is banned when `(x_{L-n+2}, .., x_L, t)` already occurs in it.
//!
//! Each sequence keeps its history and a hash map from the hash of every (n−1)-gram prefix to the
//! positions where it starts and the token that followed. Appending a token is O(n); listing the banned
//! tokens is O(n + number of earlier occurrences of the current prefix), verified against the history
//! so hash collisions never ban a wrong token.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::table::{fmix64, step};
use crate::{CoreError, Result};

/// Pass-through hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// A hash map keyed by pre-mixed u64 hashes.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

const SEED: u64 = 0x0A1B_2C3D_4E5F_6071;

/// The distinct tokens that followed one (n−1)-gram prefix, and where that prefix first occurs.
#[derive(Clone, Debug)]
struct Followers {
    start: u32,
    next: Vec<u32>,
}

/// No-repeat state of one sequence.
#[derive(Clone, Debug)]
pub struct NoRepeat {
    n: usize,
    hist: Vec<u32>,
    /// prefix hash -> one entry per distinct prefix with that hash (almost always one)
    map: IdMap<Vec<Followers>>,
}

impl NoRepeat {
    /// Empty state for n-grams of size `n >= 1`.
    pub fn new(n: usize) -> Result<Self> {
        if n < 1 {
            return Err(CoreError::invalid("n", format!("must be >= 1, got {n}")));
        }
        Ok(NoRepeat { n, hist: Vec::new(), map: IdMap::default() })
    }

    fn prefix_hash(&self, start: usize) -> u64 {
        fmix64(self.hist[start..start + self.n - 1].iter().fold(SEED, |h, &x| step(h, x)))
    }

    /// Append one token.
    pub fn push(&mut self, t: u32) -> Result<()> {
        if self.hist.len() >= u32::MAX as usize {
            return Err(CoreError::limit("history length", u32::MAX as u64, "sequence too long"));
        }
        self.hist.push(t);
        let l = self.hist.len();
        if l >= self.n {
            let start = l - self.n;
            let k = self.n - 1;
            let h = self.prefix_hash(start);
            let hist = &self.hist;
            let list = self.map.entry(h).or_default();
            match list
                .iter_mut()
                .find(|f| hist[f.start as usize..f.start as usize + k] == hist[start..start + k])
            {
                Some(f) => {
                    if !f.next.contains(&t) {
                        f.next.push(t);
                    }
                }
                None => list.push(Followers { start: start as u32, next: vec![t] }),
            }
        }
        Ok(())
    }

    /// Append several tokens.
    pub fn extend(&mut self, ts: &[u32]) -> Result<()> {
        self.hist.reserve(ts.len());
        ts.iter().try_for_each(|&t| self.push(t))
    }

    /// The history so far.
    pub fn history(&self) -> &[u32] {
        &self.hist
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.hist.clear();
        self.map.clear();
    }

    /// Append to `out` the tokens (below `limit`) that would complete an n-gram already seen.
    pub fn banned(&self, limit: u32, out: &mut Vec<u32>) {
        let l = self.hist.len();
        if l < self.n {
            return;
        }
        let start = l + 1 - self.n;
        let prefix = &self.hist[start..];
        if let Some(list) = self.map.get(&self.prefix_hash(start)) {
            let k = self.n - 1;
            if let Some(f) =
                list.iter().find(|f| &self.hist[f.start as usize..f.start as usize + k] == prefix)
            {
                out.extend(f.next.iter().copied().filter(|&t| t < limit));
            }
        }
    }
}

/// Most rows a batch may have: far above any decoding batch, far below what would exhaust memory.
pub const MAX_BATCH: usize = 1 << 24;

/// `batch` empty states, or an error (never an allocation panic) when `batch` is absurd.
fn empty_rows(n: usize, batch: usize) -> Result<Vec<NoRepeat>> {
    let one = NoRepeat::new(n)?;
    if batch > MAX_BATCH {
        return Err(CoreError::limit("batch", MAX_BATCH as u64, format!("got {batch} rows")));
    }
    let mut rows = Vec::new();
    rows.try_reserve_exact(batch).map_err(|e| {
        CoreError::limit("batch", MAX_BATCH as u64, format!("cannot allocate {batch} rows: {e}"))
    })?;
    rows.resize(batch, one);
    Ok(rows)
}

/// No-repeat states of a batch of sequences.
#[derive(Clone, Debug)]
pub struct NoRepeatBatch {
    n: usize,
    rows: Vec<NoRepeat>,
}

impl NoRepeatBatch {
    /// `batch` empty sequences.
    pub fn new(n: usize, batch: usize) -> Result<Self> {
        Ok(NoRepeatBatch { n, rows: empty_rows(n, batch)? })
    }

    /// Batch size.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// n-gram size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// One state.
    pub fn row(&self, i: usize) -> Result<&NoRepeat> {
        self.rows.get(i).ok_or_else(|| {
            CoreError::out_of_range("row", i as i128, format!("batch has {} rows", self.rows.len()))
        })
    }

    /// Append one token to every row (`tokens.len() == batch`).
    pub fn update(&mut self, tokens: &[u32]) -> Result<()> {
        if tokens.len() != self.rows.len() {
            return Err(CoreError::invalid(
                "tokens",
                format!("need one token per row ({}), got {}", self.rows.len(), tokens.len()),
            ));
        }
        self.rows.iter_mut().zip(tokens).try_for_each(|(r, &t)| r.push(t))
    }

    /// Append tokens to one row.
    pub fn extend_row(&mut self, row: usize, tokens: &[u32]) -> Result<()> {
        let b = self.rows.len();
        let r = self
            .rows
            .get_mut(row)
            .ok_or_else(|| CoreError::out_of_range("row", row as i128, format!("batch has {b} rows")))?;
        r.extend(tokens)
    }

    /// Make the rows equal to `ids` (`[batch, len]` row-major): rows whose history is a prefix of the new
    /// row are extended, others (e.g. reordered beams) rebuilt; the batch is resized when needed.
    pub fn sync(&mut self, ids: &[u32], batch: usize, len: usize) -> Result<()> {
        if ids.len() != batch * len {
            return Err(CoreError::invalid(
                "input_ids",
                format!("expected {batch}x{len} values, got {}", ids.len()),
            ));
        }
        if self.rows.len() != batch {
            self.rows = empty_rows(self.n, batch)?;
        }
        let work = |(i, r): (usize, &mut NoRepeat)| -> Result<()> {
            let row = &ids[i * len..(i + 1) * len];
            let h = r.hist.len();
            if h <= len && r.hist[..] == row[..h] {
                r.extend(&row[h..])
            } else {
                r.clear();
                r.extend(row)
            }
        };
        if batch * len > 1 << 16 {
            self.rows.par_iter_mut().enumerate().try_for_each(work)
        } else {
            self.rows.iter_mut().enumerate().try_for_each(work)
        }
    }

    /// Banned (row, token) pairs over the batch, tokens below `limit`.
    pub fn banned(&self, limit: u32) -> (Vec<i64>, Vec<i64>) {
        let mut rows = Vec::new();
        let mut cols = Vec::new();
        let mut buf = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            buf.clear();
            r.banned(limit, &mut buf);
            rows.extend(std::iter::repeat_n(i as i64, buf.len()));
            cols.extend(buf.iter().map(|&t| t as i64));
        }
        (rows, cols)
    }

    /// Set banned entries of row-major `logits [batch, vocab]` to −inf in place.
    pub fn apply_f32(&self, logits: &mut [f32], vocab: usize) -> Result<()> {
        if logits.len() != self.rows.len() * vocab {
            return Err(CoreError::invalid(
                "logits",
                format!("expected {}x{vocab} values, got {}", self.rows.len(), logits.len()),
            ));
        }
        let limit = vocab.min(u32::MAX as usize) as u32;
        let mut buf = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            buf.clear();
            r.banned(limit, &mut buf);
            for &t in &buf {
                logits[i * vocab + t as usize] = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn absurd_batch_is_an_error_not_a_panic() {
        for batch in [MAX_BATCH + 1, usize::MAX / 2, usize::MAX] {
            let e = NoRepeatBatch::new(3, batch).unwrap_err();
            assert!(matches!(e, CoreError::LimitExceeded { .. }), "{e}");
        }
        let mut b = NoRepeatBatch::new(3, 2).unwrap();
        assert!(b.sync(&[], usize::MAX, 0).is_err());
        assert_eq!(NoRepeatBatch::new(3, 0).unwrap().len(), 0);
    }

    fn brute(seq: &[u32], n: usize) -> BTreeSet<u32> {
        let l = seq.len();
        let mut out = BTreeSet::new();
        if l < n {
            return out;
        }
        let prefix = &seq[l + 1 - n..];
        for w in seq.windows(n) {
            if &w[..n - 1] == prefix {
                out.insert(w[n - 1]);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn matches_brute_force(seq in proptest::collection::vec(0u32..5, 0..40), n in 1usize..5) {
            let mut s = NoRepeat::new(n).unwrap();
            for (i, &t) in seq.iter().enumerate() {
                let mut got = Vec::new();
                s.banned(u32::MAX, &mut got);
                let got: BTreeSet<u32> = got.into_iter().collect();
                proptest::prop_assert_eq!(got, brute(&seq[..i], n));
                s.push(t).unwrap();
            }
        }
    }

    #[test]
    fn sync_rebuilds_reordered_rows() {
        let mut b = NoRepeatBatch::new(2, 2).unwrap();
        b.sync(&[1, 2, 1, 3, 4, 3], 2, 3).unwrap();
        assert_eq!(b.banned(10), (vec![0, 1], vec![2, 4]));
        b.sync(&[3, 4, 3, 3, 1, 2, 1, 2], 2, 4).unwrap();
        assert_eq!(b.banned(10), (vec![0, 0, 1], vec![4, 3, 1]));
        assert!(NoRepeat::new(0).is_err());
    }
}
