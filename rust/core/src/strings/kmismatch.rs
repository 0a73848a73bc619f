//! k-mismatch by filter and verification (sampled pigeonhole). With L = ⌊(m+1)/(k+2)⌋, every
//! alignment covers at least k + 1 disjoint text windows starting at multiples of L, so an
//! alignment with <= k mismatches matches one of them exactly against the pattern substring at
//! the same place. The text windows at multiples of L (n/L of them) are hashed and looked up among
//! the hashes of all m − L + 1 pattern substrings of length L; every hit proposes a shift, which is
//! verified by a chunked, early-exit comparison that stops after k + 1 mismatches. Hashes only
//! propose candidates, so the result is exact whatever the collisions. Expected work
//! O(n + cand·min(m, k·σ/(σ−1))) against O(n·m) for the full computation; when a
//! sample of candidates says verification would cost more than the full plan (periodic or
//! low-entropy text), `Auto` falls back to the full distances clamped at k + 1.

use rayon::prelude::*;

/// Shifts per parallel task.
const TASK: usize = 1 << 15;
/// Odd multiplier of the polynomial rolling hash (arithmetic mod 2^64).
const BASE: u64 = 0x9E37_79B9_7F4A_7C15 | 1;

/// A symbol the filter can hash and compare: dense ids or raw 64-bit symbols (no relabelling).
pub(crate) trait Sym: Copy + PartialEq + Send + Sync {
    fn key(self) -> u64;
}

impl Sym for u32 {
    #[inline]
    fn key(self) -> u64 {
        self as u64 + 1
    }
}

impl Sym for u64 {
    #[inline]
    fn key(self) -> u64 {
        self.wrapping_add(1)
    }
}

/// Early-exit comparison of the pattern at shift `s`: returns (min(distance, k+1), positions examined).
#[inline]
pub(crate) fn verify<T: Sym>(text: &[T], pat: &[T], s: usize, k: usize) -> (u32, usize) {
    let m = pat.len();
    let win = &text[s..s + m];
    let mut mism = 0usize;
    let mut j = 0;
    while j < m {
        let e = (j + 64).min(m);
        mism += win[j..e].iter().zip(&pat[j..e]).map(|(a, b)| (a != b) as usize).sum::<usize>();
        if mism > k {
            return (k as u32 + 1, e);
        }
        j = e;
    }
    (mism as u32, m)
}

/// Hashes of every length-L pattern substring: open addressing from hash to the run of offsets.
struct PieceTable {
    slots: Vec<(u64, u32, u32)>, // (hash, start in `offsets`, count); count 0 = empty
    offsets: Vec<u32>,
    mask: usize,
}

impl PieceTable {
    fn new<T: Sym>(pat: &[T], l: usize) -> PieceTable {
        let top = BASE.wrapping_pow(l as u32 - 1);
        let mut h = hash(&pat[..l]);
        let mut hp: Vec<(u64, u32)> = Vec::with_capacity(pat.len() - l + 1);
        for o in 0..=pat.len() - l {
            hp.push((h, o as u32));
            if o + l < pat.len() {
                h = roll(h, pat[o], pat[o + l], top);
            }
        }
        hp.sort_unstable();
        let cap = (2 * hp.len()).next_power_of_two().max(8);
        let mut slots = vec![(0u64, 0u32, 0u32); cap];
        let offsets: Vec<u32> = hp.iter().map(|x| x.1).collect();
        let mut i = 0;
        while i < hp.len() {
            let mut e = i;
            while e < hp.len() && hp[e].0 == hp[i].0 {
                e += 1;
            }
            let mut s = slot(hp[i].0, cap);
            while slots[s].2 != 0 {
                s = (s + 1) & (cap - 1);
            }
            slots[s] = (hp[i].0, i as u32, (e - i) as u32);
            i = e;
        }
        PieceTable { slots, offsets, mask: cap - 1 }
    }

    #[inline]
    fn get(&self, h: u64) -> &[u32] {
        let mut s = slot(h, self.mask + 1);
        loop {
            let (key, start, count) = self.slots[s];
            if count == 0 {
                return &[];
            }
            if key == h {
                return &self.offsets[start as usize..(start + count) as usize];
            }
            s = (s + 1) & self.mask;
        }
    }
}

#[inline]
fn slot(h: u64, cap: usize) -> usize {
    ((h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 32) as usize & (cap - 1)
}

fn hash<T: Sym>(xs: &[T]) -> u64 {
    xs.iter().fold(0u64, |h, &x| h.wrapping_mul(BASE).wrapping_add(x.key()))
}

#[inline]
fn roll<T: Sym>(h: u64, out: T, inn: T, top: u64) -> u64 {
    h.wrapping_sub(out.key().wrapping_mul(top)).wrapping_mul(BASE).wrapping_add(inn.key())
}

/// Candidate shifts of one task as a bitmap over `s0..s0+len`: text windows at multiples of L
/// looked up among all pattern substrings of length L.
fn candidates<T: Sym>(t: &[T], m: usize, table: &PieceTable, l: usize, s0: usize, len: usize) -> Vec<u64> {
    let mut bits = vec![0u64; len.div_ceil(64)];
    let last = (s0 + len - 1 + m - l).min(t.len() - l); // last window start (inclusive)
    let mut pos = s0.div_ceil(l) * l;
    while pos <= last {
        for &o in table.get(hash(&t[pos..pos + l])) {
            let o = o as usize;
            if pos >= s0 + o && pos - o < s0 + len {
                let s = pos - o - s0;
                bits[s >> 6] |= 1 << (s & 63);
            }
        }
        pos += l;
    }
    bits
}

fn set_bits(bits: &[u64]) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(w, &b)| {
        let mut b = b;
        std::iter::from_fn(move || {
            if b == 0 {
                return None;
            }
            let i = b.trailing_zeros() as usize;
            b &= b - 1;
            Some(w * 64 + i)
        })
    })
}

/// Candidate shifts of the whole text and the estimated cost of verifying them.
pub(crate) struct Filter<'a, T: Sym> {
    text: &'a [T],
    pat: &'a [T],
    k: usize,
    bitmaps: Vec<Vec<u64>>,
    /// Estimated nanoseconds of the filter including verification.
    pub est_ns: f64,
}

/// Run the filter (hashing + lookups) and estimate the verification cost from a sample of up to
/// 256 candidates; `None` when k >= m (no pieces).
pub(crate) fn filter<'a, T: Sym>(text: &'a [T], pat: &'a [T], k: usize) -> Option<Filter<'a, T>> {
    let m = pat.len();
    let shifts = (text.len() + 1).saturating_sub(m);
    // Windows at multiples of L inside any m consecutive positions: at least ⌊(m+1)/L⌋ - 1 >= k + 1.
    let l = (m + 1) / (k.saturating_add(2));
    if l == 0 || shifts == 0 {
        return None;
    }
    let table = PieceTable::new(pat, l);
    let tasks: Vec<(usize, usize)> =
        (0..shifts).step_by(TASK).map(|s0| (s0, TASK.min(shifts - s0))).collect();
    let bitmaps: Vec<Vec<u64>> =
        tasks.par_iter().map(|&(s0, len)| candidates(text, m, &table, l, s0, len)).collect();
    let total: usize = bitmaps.iter().flatten().map(|b| b.count_ones() as usize).sum();
    let mut examined = 0usize;
    let mut sampled = 0usize;
    'outer: for (i, bits) in bitmaps.iter().enumerate() {
        for s in set_bits(bits) {
            examined += verify(text, pat, i * TASK + s, k).1;
            sampled += 1;
            if sampled == 256 {
                break 'outer;
            }
        }
    }
    let per = if sampled == 0 { 0.0 } else { examined as f64 / sampled as f64 };
    let est_ns =
        text.len() as f64 * super::cost::FILTER_NS + total as f64 * (20.0 + per * super::cost::VERIFY_NS);
    Some(Filter { text, pat, k, bitmaps, est_ns })
}

impl<T: Sym> Filter<'_, T> {
    /// Verify every candidate: `min(distance, k + 1)` at every shift.
    pub(crate) fn verify_all(self) -> Vec<u32> {
        let shifts = (self.text.len() + 1).saturating_sub(self.pat.len());
        let cap = (self.k.min(u32::MAX as usize - 1) + 1) as u32;
        let mut out = vec![cap; shifts];
        out.par_chunks_mut(TASK).zip(self.bitmaps.par_iter()).enumerate().for_each(|(i, (o, bits))| {
            let s0 = i * TASK;
            for s in set_bits(bits) {
                o[s] = verify(self.text, self.pat, s0 + s, self.k).0;
            }
        });
        out
    }
}
