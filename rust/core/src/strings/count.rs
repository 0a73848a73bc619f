//! Blocked counting: for a register block of W consecutive shifts, loop over the pattern and add
//! `T[i+j..i+j+W] == P[j]` lane-wise into narrow counters (u8 / u16 / u32 picked from the alphabet
//! size, flushed into u32 before they can wrap). O(n·m) work at W·8/width lanes per instruction;
//! the loop body is plain Rust that LLVM vectorizes, compiled again with AVX2 / AVX-512BW and
//! selected at run time.

use super::alphabet::Relabeled;
use rayon::prelude::*;

/// Shifts per parallel task (a multiple of every block width).
const TASK: usize = 1 << 14;

macro_rules! counting_kernel {
    ($name:ident, $t:ty, $w:expr, $flush:expr) => {
        /// Matches of `pat` at shifts `start..start + out.len()`; `text` is padded by >= W symbols
        /// that match nothing.
        #[inline(always)]
        fn $name(text: &[$t], pat: &[$t], start: usize, out: &mut [u32]) {
            const W: usize = $w;
            let m = pat.len();
            let mut g = 0;
            while g < out.len() {
                let base = start + g;
                let mut tot = [0u32; W];
                let mut j0 = 0;
                while j0 < m {
                    let j1 = j0.saturating_add($flush).min(m);
                    let mut acc = [0 as $t; W];
                    for (j, &p) in pat.iter().enumerate().take(j1).skip(j0) {
                        let win = &text[base + j..base + j + W];
                        for l in 0..W {
                            acc[l] = acc[l].wrapping_add((win[l] == p) as $t);
                        }
                    }
                    for l in 0..W {
                        tot[l] += acc[l] as u32;
                    }
                    j0 = j1;
                }
                let take = (out.len() - g).min(W);
                out[g..g + take].copy_from_slice(&tot[..take]);
                g += W;
            }
        }
    };
}

counting_kernel!(kernel_u8, u8, 128, 255);
counting_kernel!(kernel_u16, u16, 64, 65535);
counting_kernel!(kernel_u32, u32, 32, usize::MAX);

macro_rules! dispatch {
    ($name:ident, $kernel:ident, $t:ty) => {
        fn $name(text: &[$t], pat: &[$t], start: usize, out: &mut [u32]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512bw")]
                fn wide(text: &[$t], pat: &[$t], start: usize, out: &mut [u32]) {
                    $kernel(text, pat, start, out)
                }
                #[target_feature(enable = "avx2")]
                fn avx2(text: &[$t], pat: &[$t], start: usize, out: &mut [u32]) {
                    $kernel(text, pat, start, out)
                }
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    // SAFETY: the CPU supports AVX-512BW (checked just above).
                    return unsafe { wide(text, pat, start, out) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2(text, pat, start, out) };
                }
            }
            $kernel(text, pat, start, out)
        }
    };
}

dispatch!(run_u8, kernel_u8, u8);
dispatch!(run_u16, kernel_u16, u16);
dispatch!(run_u32, kernel_u32, u32);

/// Bytes per id used by the counting kernel for an alphabet of `sigma` pattern symbols.
pub(crate) fn id_width(sigma: u32) -> usize {
    if sigma < 256 {
        1
    } else if sigma < 65536 {
        2
    } else {
        4
    }
}

fn narrow<T: Copy>(ids: &[u32], pad: usize, sentinel: T, f: impl Fn(u32) -> T) -> Vec<T> {
    let mut v: Vec<T> = ids.iter().map(|&x| f(x)).collect();
    v.resize(ids.len() + pad, sentinel);
    v
}

fn run_tasks<T: Sync>(text: &[T], pat: &[T], out: &mut [u32], f: fn(&[T], &[T], usize, &mut [u32])) {
    if out.len() > TASK {
        out.par_chunks_mut(TASK).enumerate().for_each(|(i, o)| f(text, pat, i * TASK, o));
    } else {
        f(text, pat, 0, out);
    }
}

/// Number of matching positions at every shift (`n - m + 1` values; empty if m > n).
pub fn count_matches(r: &Relabeled) -> Vec<u32> {
    let mut out = vec![0u32; r.shifts()];
    if out.is_empty() {
        return out;
    }
    const PAD: usize = 256;
    let s = r.sigma;
    match id_width(s) {
        1 => {
            let t = narrow(&r.text, PAD, s as u8, |x| x as u8);
            let p: Vec<u8> = r.pattern.iter().map(|&x| x as u8).collect();
            run_tasks(&t, &p, &mut out, run_u8);
        }
        2 => {
            let t = narrow(&r.text, PAD, s as u16, |x| x as u16);
            let p: Vec<u16> = r.pattern.iter().map(|&x| x as u16).collect();
            run_tasks(&t, &p, &mut out, run_u16);
        }
        _ => {
            let t = narrow(&r.text, PAD, s, |x| x);
            run_tasks(&t, &r.pattern, &mut out, run_u32);
        }
    }
    out
}
