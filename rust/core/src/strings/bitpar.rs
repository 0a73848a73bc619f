//! Bit-parallel counting for small alphabets: ids (pattern symbols and the "other" sentinel) are
//! written as b = ⌈log2(σ+1)⌉ bit planes; a pattern position mismatches when any plane differs, so
//! the distance at shift i is Σ_k popcount(OR_p (T_p[i+64k..] ^ P_p[k])) over ⌈m/64⌉ words.
//! Work n·⌈m/64⌉·(b + 1) word operations (vectorized over k).

use super::alphabet::Relabeled;
use rayon::prelude::*;

/// Planes above which the method is never worth it (σ + 1 > 2^MAX_PLANES).
pub(crate) const MAX_PLANES: u32 = 8;

/// Shifts per parallel task.
const TASK: usize = 1 << 14;

/// Bit planes needed for the ids present: `0..sigma`, plus the sentinel `sigma` when the text
/// holds symbols outside the pattern.
pub(crate) fn planes(r: &Relabeled) -> u32 {
    let top = if r.text_counts[r.sigma as usize] > 0 { r.sigma } else { r.sigma.saturating_sub(1) };
    (32 - top.leading_zeros()).max(1)
}

#[inline(always)]
fn kernel(tp: &[Vec<u64>], pp: &[Vec<u64>], last_mask: u64, start: usize, out: &mut [u32]) {
    let kw = pp[0].len();
    let mut diff = vec![0u64; kw];
    for (x, o) in out.iter_mut().enumerate() {
        let i = start + x;
        let q = i >> 6;
        let off = (i & 63) as u32;
        diff.iter_mut().for_each(|d| *d = 0);
        for (t, p) in tp.iter().zip(pp) {
            let lo = &t[q..q + kw];
            let hi = &t[q + 1..q + 1 + kw];
            if off == 0 {
                for ((d, &a), &b) in diff.iter_mut().zip(lo).zip(p) {
                    *d |= a ^ b;
                }
            } else {
                for (((d, &a), &h), &b) in diff.iter_mut().zip(lo).zip(hi).zip(p) {
                    *d |= ((a >> off) | (h << (64 - off))) ^ b;
                }
            }
        }
        diff[kw - 1] &= last_mask;
        *o = diff.iter().map(|d| d.count_ones()).sum();
    }
}

fn run(tp: &[Vec<u64>], pp: &[Vec<u64>], last_mask: u64, start: usize, out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,popcnt")]
        fn avx2(tp: &[Vec<u64>], pp: &[Vec<u64>], last_mask: u64, start: usize, out: &mut [u32]) {
            kernel(tp, pp, last_mask, start, out)
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports AVX2 and POPCNT (checked just above).
            return unsafe { avx2(tp, pp, last_mask, start, out) };
        }
    }
    kernel(tp, pp, last_mask, start, out)
}

fn to_planes(ids: &[u32], planes: u32, words: usize) -> Vec<Vec<u64>> {
    (0..planes)
        .map(|p| {
            let mut w = vec![0u64; words];
            for (i, &x) in ids.iter().enumerate() {
                w[i >> 6] |= (((x >> p) & 1) as u64) << (i & 63);
            }
            w
        })
        .collect()
}

/// Hamming distance at every shift, bit-parallel (any alphabet; fast when σ is small).
pub fn bitparallel_distances(r: &Relabeled) -> Vec<u32> {
    let mut out = vec![0u32; r.shifts()];
    if out.is_empty() {
        return out;
    }
    let m = r.pattern.len();
    let b = planes(r);
    let kw = m.div_ceil(64);
    let tp = to_planes(&r.text, b, r.text.len().div_ceil(64) + 2);
    let pp = to_planes(&r.pattern, b, kw);
    let last_mask = if m % 64 == 0 { u64::MAX } else { (1u64 << (m % 64)) - 1 };
    if out.len() > TASK {
        out.par_chunks_mut(TASK).enumerate().for_each(|(i, o)| run(&tp, &pp, last_mask, i * TASK, o));
    } else {
        run(&tp, &pp, last_mask, 0, &mut out);
    }
    out
}
