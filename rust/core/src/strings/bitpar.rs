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

/// Distances at shifts `start..start + out.len()`. Shifts are taken by residue r = i mod 64: the
/// text planes are shifted by r once (funnel shift), after which every shift of that residue
/// reads `kw` aligned words per plane.
#[inline(always)]
fn kernel(tp: &[Vec<u64>], pp: &[Vec<u64>], last_mask: u64, start: usize, out: &mut [u32]) {
    let kw = pp[0].len();
    let planes = tp.len();
    let end = start + out.len();
    let q0 = start >> 6;
    let span = ((end - 1) >> 6) - q0 + kw;
    let mut shifted = vec![0u64; planes * span];
    let mut diff = vec![0u64; kw];
    for r in 0..64usize {
        let mut i = (start & !63) + r;
        if i < start {
            i += 64;
        }
        if i >= end {
            continue;
        }
        for (t, s) in tp.iter().zip(shifted.chunks_mut(span)) {
            let lo = &t[q0..q0 + span];
            if r == 0 {
                s.copy_from_slice(lo);
            } else {
                let hi = &t[q0 + 1..q0 + 1 + span];
                for ((d, &a), &h) in s.iter_mut().zip(lo).zip(hi) {
                    *d = (a >> r) | (h << (64 - r));
                }
            }
        }
        while i < end {
            let w = (i >> 6) - q0;
            let cnt = if planes == 1 {
                let s = &shifted[w..w + kw];
                let p = &pp[0];
                let body: u32 = s[..kw - 1].iter().zip(&p[..kw - 1]).map(|(a, b)| (a ^ b).count_ones()).sum();
                body + ((s[kw - 1] ^ p[kw - 1]) & last_mask).count_ones()
            } else {
                diff.iter_mut().for_each(|d| *d = 0);
                for (s, p) in shifted.chunks(span).zip(pp) {
                    for ((d, &a), &b) in diff.iter_mut().zip(&s[w..w + kw]).zip(p) {
                        *d |= a ^ b;
                    }
                }
                diff[kw - 1] &= last_mask;
                diff.iter().map(|d| d.count_ones()).sum()
            };
            out[i - start] = cnt;
            i += 64;
        }
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
