//! (1 ± eps)-approximate Hamming distances by random ±1 projections (Karloff-style): with a random
//! sign φ(c) per symbol, Z = m - Σ_j φ(T[i+j])·φ(P[j]) is unbiased for HD(i), and grouping the
//! mismatches by their symbol pair (pairwise independent signs) gives Var Z <= HD². Each Z is one
//! FFT correlation (n log m). We take the median of r group means of s samples each:
//! Chebyshev gives P(|mean − HD| > eps·HD) <= 1/(s·eps²) = 1/8 with s = ⌈8/eps²⌉, and Hoeffding
//! on the median gives failure <= exp(−2r(3/8)²) <= delta with r = ⌈ln(1/delta)/0.28125⌉ (odd),
//! per shift. Shifts with distance 0 are found exactly (KMP) and reported as 0; every other
//! estimate is clamped to [1, m], which never moves it away from the truth.

use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::alphabet::Relabeled;
use super::fft::Correlator;
use crate::{CoreError, Result};

/// Most projections (s·r) one call may use.
pub const MAX_PROJECTIONS: usize = 1 << 20;
/// Bytes of pattern spectra kept across blocks (beyond this they are recomputed per block).
const SPECTRA_BYTES: usize = 256 << 20;

/// (samples per group s, groups r) for the requested accuracy.
pub fn projection_counts(eps: f64, delta: f64) -> (usize, usize) {
    let s = (8.0 / (eps * eps)).ceil() as usize;
    let mut r = ((1.0 / delta).ln() / 0.28125).ceil().max(1.0) as usize;
    if r % 2 == 0 {
        r += 1;
    }
    (s, r)
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sign of id `c` in projection `p` (a hash of seed, p and c).
#[inline]
fn sign(seed: u64, p: usize, c: u32) -> f64 {
    let h = mix(mix(seed ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ c as u64);
    if h >> 63 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Shifts where the pattern occurs exactly (Knuth–Morris–Pratt).
fn exact_matches(text: &[u32], pat: &[u32]) -> Vec<bool> {
    let m = pat.len();
    let mut fail = vec![0usize; m];
    let mut k = 0;
    for i in 1..m {
        while k > 0 && pat[i] != pat[k] {
            k = fail[k - 1];
        }
        if pat[i] == pat[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut hit = vec![false; (text.len() + 1).saturating_sub(m)];
    let mut k = 0;
    for (i, &c) in text.iter().enumerate() {
        while k > 0 && c != pat[k] {
            k = fail[k - 1];
        }
        if c == pat[k] {
            k += 1;
        }
        if k == m {
            hit[i + 1 - m] = true;
            k = fail[k - 1];
        }
    }
    hit
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_unstable_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Approximate distances at every shift (see the module docs for the guarantee).
pub fn hamming_distances_approx(
    text: &[u64],
    pattern: &[u64],
    eps: f64,
    seed: u64,
    delta: f64,
) -> Result<Vec<f64>> {
    if pattern.is_empty() {
        return Err(CoreError::invalid("pattern", "must not be empty"));
    }
    if !(eps > 0.0 && eps < 1.0) {
        return Err(CoreError::invalid("eps", format!("must lie in (0, 1), got {eps}")));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(CoreError::invalid("delta", format!("must lie in (0, 1), got {delta}")));
    }
    let (s, r) = projection_counts(eps, delta);
    let total = s.saturating_mul(r);
    if total > MAX_PROJECTIONS {
        return Err(CoreError::limit(
            "projections",
            MAX_PROJECTIONS as u64,
            format!("eps={eps}, delta={delta} need {total}; raise eps or delta"),
        ));
    }
    if pattern.len() > text.len() {
        return Ok(Vec::new());
    }
    let rl = Relabeled::new(text, pattern);
    approx_ids(&rl, s, r, seed)
}

fn approx_ids(rl: &Relabeled, s: usize, r: usize, seed: u64) -> Result<Vec<f64>> {
    let m = rl.pattern.len();
    let n = rl.text.len();
    let total = s * r;
    let exact = exact_matches(&rl.text, &rl.pattern);
    let cor = Correlator::new(m, n);
    let n_fft = cor.n_fft;
    let l = cor.block_shifts();
    let keep = total * (n_fft / 2 + 1) * 16 <= SPECTRA_BYTES;
    let pat_spec = |p: usize| cor.pattern_spectrum(|j| sign(seed, p, rl.pattern[j]));
    let spectra: Vec<Vec<Complex<f64>>> =
        if keep { (0..total).into_par_iter().map(pat_spec).collect::<Result<_>>()? } else { Vec::new() };
    let mut out = vec![0.0f64; rl.shifts()];
    out.par_chunks_mut(l)
        .enumerate()
        .map_init(
            || (cor.scratch(), Vec::<f64>::new(), vec![0.0f64; r]),
            |(sc, est, groups), (b, o)| -> Result<()> {
                let s0 = b * l;
                let len = o.len();
                let win = &rl.text[s0..(s0 + n_fft).min(n)];
                // Per group, the running sum of its projections' estimates at every shift.
                est.clear();
                est.resize(r * len, 0.0);
                // `p` also seeds the signs and may recompute the spectrum: a range loop is clearest.
                #[allow(clippy::needless_range_loop)]
                for p in 0..total {
                    for (x, &c) in sc.real.iter_mut().zip(win) {
                        *x = sign(seed, p, c);
                    }
                    sc.real[win.len()..].iter_mut().for_each(|x| *x = 0.0);
                    cor.forward(sc)?;
                    let fresh;
                    let y = if keep {
                        &spectra[p]
                    } else {
                        fresh = pat_spec(p)?;
                        &fresh
                    };
                    for ((a, x), y) in sc.acc.iter_mut().zip(&sc.spec).zip(y) {
                        *a = x * y;
                    }
                    cor.inverse_acc(sc)?;
                    let g = p / s;
                    for (e, v) in est[g * len..(g + 1) * len].iter_mut().zip(&sc.real[m - 1..]) {
                        *e += m as f64 - v.round();
                    }
                }
                for (i, o) in o.iter_mut().enumerate() {
                    if exact[s0 + i] {
                        *o = 0.0;
                        continue;
                    }
                    for (g, slot) in groups.iter_mut().enumerate() {
                        *slot = est[g * len + i] / s as f64;
                    }
                    *o = median(groups).clamp(1.0, m as f64);
                }
                Ok(())
            },
        )
        .collect::<Result<Vec<()>>>()?;
    Ok(out)
}
