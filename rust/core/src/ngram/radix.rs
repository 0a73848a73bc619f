//! MSD radix sort of packed n-gram keys (Knuth, TAOCP vol. 3, §5.2.5; McIlroy, Bostic & McIlroy 1993).
//!
//! Most-significant digit first, out of place: a counting-sort pass on the top digit (11 bits, 8 for
//! short ranges), then every sub-range recursively, down to ranges of fewer than 64 keys, which a
//! comparison sort finishes. Digits equal in every key of a range cost one histogram pass. Time
//! O(n · min(b / 11, log n / 8 + 1)) for `n` keys of `b` bits; extra memory one buffer of `n` keys
//! (reused by the caller) plus 16 KiB of stack per recursion level (at most `b / 8` levels).

/// Bits per digit.
pub(crate) const DIGIT: u32 = 11;
const RADIX: usize = 1 << DIGIT;

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

macro_rules! radix_key {
    ($t:ty) => {
        impl RadixKey for $t {
            const BITS: u32 = <$t>::BITS;
            #[inline]
            fn digit(self, shift: u32) -> usize {
                (self >> shift) as usize & (RADIX - 1)
            }
            #[inline]
            fn from_wide(x: u128) -> Self {
                x as $t
            }
            #[inline]
            fn wide(self) -> u128 {
                self as u128
            }
        }
    };
}
radix_key!(u64);
radix_key!(u128);

/// Reusable scratch space of one sorting thread.
#[derive(Default)]
pub(crate) struct Scratch<K> {
    tmp: Vec<K>,
}

/// Sort `keys` (values in the low `used_bits` bits) by most-significant digit first: one counting
/// sort pass on the top digit, then each sub-range on its own, recursively, until ranges are small
/// enough for a comparison sort. Digits equal in every key of a range cost one histogram pass.
pub(crate) fn msd_sort<K: RadixKey>(keys: &mut [K], used_bits: u32, scratch: &mut Scratch<K>) {
    let n = keys.len();
    if n < MSD_SMALL {
        keys.sort_unstable();
        return;
    }
    scratch.tmp.clear();
    scratch.tmp.resize(n, K::default());
    msd_rec(keys, &mut scratch.tmp[..n], used_bits.min(K::BITS));
}

/// Below this many keys `msd_sort` uses a comparison sort.
const MSD_SMALL: usize = 64;

fn msd_rec<K: RadixKey>(keys: &mut [K], tmp: &mut [K], mut bits: u32) {
    let n = keys.len();
    if n < MSD_SMALL {
        keys.sort_unstable();
        return;
    }
    // narrower digits for short ranges keep the histogram small next to the data
    let width = if n >= 1 << 14 { DIGIT } else { 8 };
    let mut hist = [0usize; RADIX];
    let (d, shift) = loop {
        if bits == 0 {
            return;
        }
        let d = bits.min(width);
        let shift = bits - d;
        let h = &mut hist[..1 << d];
        h.fill(0);
        for &k in keys.iter() {
            h[k.digit(shift) & ((1 << d) - 1)] += 1;
        }
        if h[keys[0].digit(shift) & ((1 << d) - 1)] != n {
            break (d, shift);
        }
        bits = shift; // every key has this digit
    };
    let h = &mut hist[..1 << d];
    let mut sum = 0;
    for c in h.iter_mut() {
        let x = *c;
        *c = sum;
        sum += x;
    }
    for &k in keys.iter() {
        let x = k.digit(shift) & ((1 << d) - 1);
        tmp[h[x]] = k;
        h[x] += 1;
    }
    keys.copy_from_slice(tmp);
    // each counter now holds the end of its digit's range
    let mut start = 0;
    for &end in h.iter() {
        if end - start > 1 {
            msd_rec(&mut keys[start..end], &mut tmp[start..end], shift);
        }
        start = end;
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
        for n in [0usize, 1, 5, 63, 64, 383, 5000, 20_000] {
            for used in [1u32, 11, 15, 22, 45, 60, 64] {
                let mask = if used == 64 { u64::MAX } else { (1u64 << used) - 1 };
                let mut a: Vec<u64> = (0..n).map(|_| xorshift(&mut x) & mask).collect();
                let mut b = a.clone();
                msd_sort(&mut a, used, &mut s64);
                b.sort_unstable();
                assert_eq!(a, b);
            }
            for used in [3u32, 64, 79, 100, 128] {
                let mask = if used == 128 { u128::MAX } else { (1u128 << used) - 1 };
                let mut a: Vec<u128> = (0..n)
                    .map(|_| (((xorshift(&mut x) as u128) << 64) | xorshift(&mut x) as u128) & mask)
                    .collect();
                let mut b = a.clone();
                msd_sort(&mut a, used, &mut s128);
                b.sort_unstable();
                assert_eq!(a, b);
            }
        }
        // constant digits are skipped, duplicates kept
        let mut a: Vec<u64> = (0..30_000u64).map(|i| (7 << 40) | (i * 31 % 17)).collect();
        let mut b = a.clone();
        msd_sort(&mut a, 64, &mut s64);
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
