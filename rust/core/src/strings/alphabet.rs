//! Relabelling of arbitrary 64-bit symbols to dense ids: the pattern's distinct symbols become
//! `0..sigma` (in order of first appearance) and every text symbol absent from the pattern becomes
//! the sentinel `sigma`, which matches nothing. Hamming distances are invariant under this map.

use rayon::prelude::*;

/// Text positions per rayon task when mapping in parallel.
const PAR_CHUNK: usize = 1 << 16;

/// Symbol → id map over the pattern's alphabet: a direct table for small values, else an
/// open-addressing hash table with multiplicative hashing (8 + 4 bytes per slot, load <= 1/2).
enum SymbolMap {
    Direct(Vec<u32>),
    Hashed { keys: Vec<u64>, vals: Vec<u32>, shift: u32 },
}

const EMPTY: u32 = u32::MAX;
const DIRECT_LIMIT: u64 = 1 << 20;

#[inline]
fn slot(x: u64, shift: u32) -> usize {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

impl SymbolMap {
    fn build(pattern: &[u64]) -> (SymbolMap, Vec<u32>, u32) {
        let max = pattern.iter().copied().max().unwrap_or(0);
        let mut ids = Vec::with_capacity(pattern.len());
        let mut sigma: u32 = 0;
        if max < DIRECT_LIMIT {
            let mut table = vec![EMPTY; max as usize + 1];
            for &x in pattern {
                let e = &mut table[x as usize];
                if *e == EMPTY {
                    *e = sigma;
                    sigma += 1;
                }
                ids.push(*e);
            }
            // Absent symbols read as the sentinel directly.
            for e in table.iter_mut().filter(|e| **e == EMPTY) {
                *e = sigma;
            }
            return (SymbolMap::Direct(table), ids, sigma);
        }
        let cap = (2 * pattern.len()).next_power_of_two().max(16);
        let bits = cap.trailing_zeros();
        let shift = 64 - bits;
        let mut keys = vec![0u64; cap];
        let mut vals = vec![EMPTY; cap];
        for &x in pattern {
            let mut s = slot(x, shift);
            loop {
                if vals[s] == EMPTY {
                    keys[s] = x;
                    vals[s] = sigma;
                    ids.push(sigma);
                    sigma += 1;
                    break;
                }
                if keys[s] == x {
                    ids.push(vals[s]);
                    break;
                }
                s = (s + 1) & (cap - 1);
            }
        }
        (SymbolMap::Hashed { keys, vals, shift }, ids, sigma)
    }

    #[inline]
    fn get(&self, x: u64, sentinel: u32) -> u32 {
        match self {
            SymbolMap::Direct(t) => {
                if x < t.len() as u64 {
                    t[x as usize]
                } else {
                    sentinel
                }
            }
            SymbolMap::Hashed { keys, vals, shift } => {
                let mask = keys.len() - 1;
                let mut s = slot(x, *shift);
                loop {
                    let v = vals[s];
                    if v == EMPTY {
                        return sentinel;
                    }
                    if keys[s] == x {
                        return v;
                    }
                    s = (s + 1) & mask;
                }
            }
        }
    }
}

/// Text and pattern over dense ids. `sigma` = number of distinct pattern symbols; text symbols
/// outside the pattern are `sigma`. `text_counts[c]` / `pat_counts[c]` count id `c` (`c <= sigma`).
#[derive(Debug, Clone)]
pub struct Relabeled {
    pub text: Vec<u32>,
    pub pattern: Vec<u32>,
    pub sigma: u32,
    pub text_counts: Vec<u64>,
    pub pat_counts: Vec<u64>,
}

impl Relabeled {
    /// Relabel `text` and `pattern` (any 64-bit symbols) to dense ids.
    pub fn new(text: &[u64], pattern: &[u64]) -> Relabeled {
        let (map, pat, sigma) = SymbolMap::build(pattern);
        let mut t = vec![0u32; text.len()];
        if text.len() >= 2 * PAR_CHUNK {
            t.par_chunks_mut(PAR_CHUNK).zip(text.par_chunks(PAR_CHUNK)).for_each(|(o, i)| {
                for (o, &x) in o.iter_mut().zip(i) {
                    *o = map.get(x, sigma);
                }
            });
        } else {
            for (o, &x) in t.iter_mut().zip(text) {
                *o = map.get(x, sigma);
            }
        }
        Self::from_ids(t, pat, sigma)
    }

    /// Wrap already-dense ids (`pattern` ids < sigma, `text` ids <= sigma).
    pub fn from_ids(text: Vec<u32>, pattern: Vec<u32>, sigma: u32) -> Relabeled {
        let mut text_counts = vec![0u64; sigma as usize + 1];
        for &x in &text {
            text_counts[x as usize] += 1;
        }
        let mut pat_counts = vec![0u64; sigma as usize + 1];
        for &x in &pattern {
            pat_counts[x as usize] += 1;
        }
        Relabeled { text, pattern, sigma, text_counts, pat_counts }
    }

    /// Number of alignments (shifts), `n - m + 1`; 0 when the pattern is longer than the text.
    pub fn shifts(&self) -> usize {
        (self.text.len() + 1).saturating_sub(self.pattern.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabels_small_and_huge_symbols() {
        for base in [0u64, 1 << 40, u64::MAX - 10] {
            let pat: Vec<u64> = [3, 1, 3, 7].iter().map(|&x| base.wrapping_add(x)).collect();
            let text: Vec<u64> = [1, 2, 3, 7, 9].iter().map(|&x| base.wrapping_add(x)).collect();
            let r = Relabeled::new(&text, &pat);
            assert_eq!(r.pattern, vec![0, 1, 0, 2]);
            assert_eq!(r.text, vec![1, 3, 0, 2, 3]);
            assert_eq!(r.sigma, 3);
            assert_eq!(r.text_counts, vec![1, 1, 1, 2]);
        }
    }
}
