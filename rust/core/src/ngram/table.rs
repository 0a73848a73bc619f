//! The compact hash layout of one order of an n-gram model.
//!
//! Each n-gram is hashed to 64 bits by folding its ids from the last to the first
//! (`h = step(.. step(step(seed, w_n), w_{n-1}) .., w_1)`), so a query extends both the context hash and
//! the n-gram hash by one id per order. The final hash `f = fmix64(h)` picks one of `2^b` buckets by its
//! top `b` bits (`2^b ≈ M / 16` for `M` entries) and its next 32 bits are the stored fingerprint.
//! Entries are sorted by `f`, so a bucket is a contiguous sorted run found through a directory of
//! `2^b + 1` offsets; a lookup reads one directory pair and scans ~8-16 fingerprints in one or two
//! cache lines.
//!
//! Bytes per stored n-gram: 4 (fingerprint) + 4 (f32 log-probability) + 4 (f32 backoff, orders below the
//! highest only) + at most 4·(M/16 + 2)/M (directory) — 8.25 at the highest order and 12.25 below
//! it (≈ 12 or less over a whole model, since the highest orders hold most n-grams).
//! Build-time collisions of the `b + 32` identifying bits among stored n-grams are detected and the model
//! is rehashed with the next seed, so every stored n-gram is found exactly. A query for an absent
//! n-gram matches a stored fingerprint with probability about `16 · 2^-32` (KenLM's probing tables
//! accept a 64-bit hash in the same way).

use std::sync::Arc;

use rayon::prelude::*;

use crate::{CoreError, Result};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Extend an n-gram hash by one id (to the left).
#[inline]
pub fn step(h: u64, x: u32) -> u64 {
    let h = (h ^ (x as u64)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// MurmurHash3's 64-bit finaliser.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Hash of an n-gram (ids in reading order) under `seed`.
#[inline]
pub fn ngram_hash(seed: u64, ids: &[u32]) -> u64 {
    ids.iter().rev().fold(seed, |h, &x| step(h, x))
}

/// Plain-old-data element types a [`Buf`] can view in a memory map.
pub trait Pod: Copy + Send + Sync + 'static {}
impl Pod for u8 {}
impl Pod for u32 {}
impl Pod for f32 {}
impl Pod for u64 {}
impl Pod for u128 {}

/// An array owned in memory or viewed inside a read-only memory map.
#[derive(Clone, Debug)]
pub enum Buf<T: Pod> {
    Owned(Vec<T>),
    Mapped { map: Arc<memmap2::Mmap>, offset: usize, len: usize },
}

impl<T: Pod> Default for Buf<T> {
    fn default() -> Self {
        Buf::Owned(Vec::new())
    }
}

impl<T: Pod> Buf<T> {
    /// View `len` elements at byte `offset` of `map`; checks bounds and alignment.
    pub fn mapped(map: Arc<memmap2::Mmap>, offset: usize, len: usize, what: &str) -> Result<Self> {
        let size = std::mem::size_of::<T>();
        let end = len.checked_mul(size).and_then(|b| b.checked_add(offset));
        match end {
            Some(e) if e <= map.len() => {}
            _ => {
                return Err(CoreError::format(
                    "binary model",
                    format!("byte offset {offset}"),
                    format!("{what}: {len} elements run past the end of the file ({} bytes)", map.len()),
                ))
            }
        }
        if (map.as_ptr() as usize + offset) % std::mem::align_of::<T>() != 0 {
            return Err(CoreError::format(
                "binary model",
                format!("byte offset {offset}"),
                format!("{what}: misaligned"),
            ));
        }
        Ok(Buf::Mapped { map, offset, len })
    }

    /// The elements.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match self {
            Buf::Owned(v) => v,
            Buf::Mapped { map, offset, len } => {
                // SAFETY: `mapped` checked that `offset + len * size_of::<T>()` lies inside the map and that
                // the start is aligned for `T`; `T` is plain old data (every bit pattern is valid) and the map
                // is read-only and kept alive by the `Arc` for as long as `self`.
                unsafe { std::slice::from_raw_parts(map.as_ptr().add(*offset) as *const T, *len) }
            }
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Buf::Owned(v) => v.len(),
            Buf::Mapped { len, .. } => *len,
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One order's hash table (see the module header for the layout).
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub(crate) b: u32,
    pub(crate) dir: Buf<u32>,
    pub(crate) fp: Buf<u32>,
    pub(crate) prob: Buf<f32>,
    /// Empty at the highest order.
    pub(crate) bo: Buf<f32>,
}

/// Directory bits for `m` entries: about 16 entries per bucket.
pub fn bucket_bits(m: usize) -> u32 {
    let per = (m / 16).max(1) as u64;
    (63 - per.leading_zeros()).min(32)
}

#[inline]
fn split(f: u64, b: u32) -> (usize, u32) {
    let bucket = if b == 0 { 0 } else { (f >> (64 - b)) as usize };
    let fp = ((f << b) >> 32) as u32;
    (bucket, fp)
}

impl Table {
    /// Build from pre-final hashes `h[i]`; returns `None` when two entries share their identifying bits
    /// (the caller retries with another seed). `bo` is empty at the highest order.
    pub fn build(h: &[u64], prob: &[f32], bo: &[f32]) -> Result<Option<Table>> {
        let m = h.len();
        if m > u32::MAX as usize {
            return Err(CoreError::limit("n-grams per order", u32::MAX as u64, format!("got {m}")));
        }
        let b = bucket_bits(m);
        let mut order: Vec<(u64, u32)> =
            h.par_iter().enumerate().map(|(i, &x)| (fmix64(x), i as u32)).collect();
        order.par_sort_unstable();
        let ident = |f: u64| if b + 32 >= 64 { f } else { f >> (32 - b) };
        if order.windows(2).any(|w| ident(w[0].0) == ident(w[1].0)) {
            return Ok(None);
        }
        let nb = 1usize << b;
        let mut dir = vec![0u32; nb + 1];
        let mut fp = Vec::with_capacity(m);
        for &(f, _) in &order {
            let (bucket, x) = split(f, b);
            dir[bucket + 1] += 1;
            fp.push(x);
        }
        for i in 0..nb {
            dir[i + 1] += dir[i];
        }
        let p: Vec<f32> = order.iter().map(|&(_, i)| prob[i as usize]).collect();
        let o: Vec<f32> =
            if bo.is_empty() { Vec::new() } else { order.iter().map(|&(_, i)| bo[i as usize]).collect() };
        Ok(Some(Table {
            b,
            dir: Buf::Owned(dir),
            fp: Buf::Owned(fp),
            prob: Buf::Owned(p),
            bo: Buf::Owned(o),
        }))
    }

    /// Entry index of the n-gram with pre-final hash `h`, if stored.
    #[inline]
    pub fn find(&self, h: u64) -> Option<usize> {
        let (bucket, x) = split(fmix64(h), self.b);
        let dir = self.dir.as_slice();
        let lo = *dir.get(bucket)? as usize;
        let hi = *dir.get(bucket + 1)? as usize;
        let fps = self.fp.as_slice().get(lo..hi)?;
        for (i, &y) in fps.iter().enumerate() {
            if y >= x {
                return if y == x { Some(lo + i) } else { None };
            }
        }
        None
    }

    /// Number of stored n-grams.
    pub fn len(&self) -> usize {
        self.fp.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.fp.is_empty()
    }

    /// Bytes of the hash layout (directory, fingerprints, probabilities, backoffs).
    pub fn nbytes(&self) -> usize {
        4 * (self.dir.len() + self.fp.len() + self.prob.len() + self.bo.len())
    }

    /// Validate a table read from a file: directory monotone and consistent with the entry count.
    pub fn validate(&self, top: bool, what: &str) -> Result<()> {
        let dir = self.dir.as_slice();
        let m = self.fp.len();
        let bad = |msg: String| CoreError::format("binary model", what.to_string(), msg);
        if self.b > 32 || dir.len() != (1usize << self.b) + 1 {
            return Err(bad(format!("directory has {} entries for {} bucket bits", dir.len(), self.b)));
        }
        if dir[0] != 0 || dir[dir.len() - 1] as usize != m || dir.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("directory offsets are not a non-decreasing partition of the entries".into()));
        }
        if self.prob.len() != m || (top && !self.bo.is_empty()) || (!top && self.bo.len() != m) {
            return Err(bad("array lengths disagree".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_entry_and_rejects_others() {
        let n = 5000usize;
        let h: Vec<u64> = (0..n as u32).map(|i| ngram_hash(7, &[i, i * 3 + 1])).collect();
        let prob: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let t = Table::build(&h, &prob, &[]).unwrap().unwrap();
        for (i, &hi) in h.iter().enumerate() {
            let e = t.find(hi).unwrap();
            assert_eq!(t.prob.as_slice()[e], i as f32);
        }
        let misses = (0..n as u32).filter(|&i| t.find(ngram_hash(7, &[i, i * 3 + 2])).is_some()).count();
        assert_eq!(misses, 0);
        assert!(t.nbytes() as f64 / n as f64 <= 8.5);
    }

    #[test]
    fn empty_table() {
        let t = Table::build(&[], &[], &[]).unwrap().unwrap();
        assert_eq!(t.find(3), None);
        t.validate(true, "t").unwrap();
    }
}
