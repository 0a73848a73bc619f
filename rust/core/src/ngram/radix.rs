//! LSD radix sort of packed n-gram keys (Knuth, TAOCP vol. 3, §5.2.5).
//!
//! Least-significant-digit first with 11-bit digits: one read pass builds every digit's histogram,
//! then one stable scatter pass per digit, skipping digits that are equal in every key. Time
//! O(n · b / 11) for keys using `b` low bits; extra memory one buffer of `n` keys (reused by the caller)
//! plus `8 · 2^11` bytes of histogram per digit.

/// Bits per digit.
pub(crate) const DIGIT: u32 = 11;
const RADIX: usize = 1 << DIGIT;
/// Below this many keys a comparison sort beats the histogram set-up.
const SMALL: usize = 384;

/// Unsigned integer keys the radix sort handles.
pub(crate) trait RadixKey: Copy + Ord + Default + Send + Sync {
    /// Bits in the type.
    const BITS: u32;
    /// The digit of `DIGIT` bits at `shift` (`shift < Self::BITS`).
    fn digit(self, shift: u32) -> usize;
    /// The low `Self::BITS` bits of `x`.
    fn from_wide(x: u128) -> Self;
    /// The key widened to 128 bits.
    fn wide(self) -> u128;
}

impl RadixKey for u64 {
    const BITS: u32 = 64;
    #[inline]
    fn digit(self, shift: u32) -> usize {
        (self >> shift) as usize & (RADIX - 1)
    }
    #[inline]
    fn from_wide(x: u128) -> Self {
        x as u64
    }
    #[inline]
    fn wide(self) -> u128 {
        self as u128
    }
}

impl RadixKey for u128 {
    const BITS: u32 = 128;
    #[inline]
    fn digit(self, shift: u32) -> usize {
        (self >> shift) as usize & (RADIX - 1)
    }
    #[inline]
    fn from_wide(x: u128) -> Self {
        x
    }
    #[inline]
    fn wide(self) -> u128 {
        self
    }
}

/// Reusable scratch space of one sorting thread.
#[derive(Default)]
pub(crate) struct Scratch<K> {
    tmp: Vec<K>,
    hist: Vec<[usize; RADIX]>,
}

/// Sort `keys`, whose values use at most `used_bits` low bits, ascending.
pub(crate) fn radix_sort<K: RadixKey>(keys: &mut [K], used_bits: u32, scratch: &mut Scratch<K>) {
    let n = keys.len();
    if n < SMALL {
        keys.sort_unstable();
        return;
    }
    let passes = used_bits.min(K::BITS).div_ceil(DIGIT) as usize;
    let Scratch { tmp, hist } = scratch;
    hist.clear();
    hist.resize(passes, [0; RADIX]);
    for &k in keys.iter() {
        for (p, h) in hist.iter_mut().enumerate() {
            h[k.digit(p as u32 * DIGIT)] += 1;
        }
    }
    tmp.clear();
    tmp.resize(n, K::default());
    let mut in_tmp = false;
    for (p, h) in hist.iter_mut().enumerate() {
        let shift = p as u32 * DIGIT;
        if h[keys[0].digit(shift)] == n {
            continue; // every key has this digit
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            let x = *c;
            *c = sum;
            sum += x;
        }
        let (src, dst): (&[K], &mut [K]) = if in_tmp { (&tmp[..n], keys) } else { (keys, &mut tmp[..n]) };
        for &k in src {
            let d = k.digit(shift);
            dst[h[d]] = k;
            h[d] += 1;
        }
        in_tmp = !in_tmp;
    }
    if in_tmp {
        keys.copy_from_slice(&tmp[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn matches_std_sort() {
        let mut x: u64 = 12345;
        let mut s64 = Scratch::default();
        let mut s128 = Scratch::default();
        for n in [0usize, 1, 5, 383, 384, 5000] {
            for used in [1u32, 11, 15, 22, 45, 60, 64] {
                let mask = if used == 64 { u64::MAX } else { (1u64 << used) - 1 };
                let mut a: Vec<u64> = (0..n).map(|_| xorshift(&mut x) & mask).collect();
                let mut b = a.clone();
                radix_sort(&mut a, used, &mut s64);
                b.sort_unstable();
                assert_eq!(a, b);
            }
            for used in [3u32, 64, 79, 100, 128] {
                let mask = if used == 128 { u128::MAX } else { (1u128 << used) - 1 };
                let mut a: Vec<u128> = (0..n)
                    .map(|_| (((xorshift(&mut x) as u128) << 64) | xorshift(&mut x) as u128) & mask)
                    .collect();
                let mut b = a.clone();
                radix_sort(&mut a, used, &mut s128);
                b.sort_unstable();
                assert_eq!(a, b);
            }
        }
        // constant high digits are skipped, duplicates kept
        let mut a: Vec<u64> = (0..1000u64).map(|i| (7 << 40) | (i * 31 % 17)).collect();
        let mut b = a.clone();
        radix_sort(&mut a, 64, &mut s64);
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
