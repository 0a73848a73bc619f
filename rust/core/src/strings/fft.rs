//! FFT correlation (Fischer–Paterson / Abrahamson) for frequent ("heavy") symbols: the matches of
//! symbol `c` at every shift are the cross-correlation of the 0/1 indicators of `c` in the text
//! and the pattern. The text is cut into blocks of `N` (power of two, >= 2m) positions giving
//! `N - m + 1` shifts each, so every transform has bounded length and the f64 results (integers
//! <= m, rounding error ~1e-16·m·log N) round exactly. Spectra of all heavy symbols of a block are
//! summed before one inverse transform: cost per block (|H| + 1)·N log N.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::alphabet::Relabeled;
use crate::{CoreError, Result};

/// Bytes of pattern spectra held at once (symbols are processed in batches that fit).
const SPECTRA_BYTES: usize = 64 << 20;

/// FFT length for pattern length `m` and text length `n`: a power of two >= 2m, about 8m when the
/// text is long enough (shifts per block ≈ 7/8 of N), at most 2^20 unless m forces more.
pub(crate) fn fft_len(m: usize, n: usize) -> usize {
    let min = (2 * m).next_power_of_two().max(64);
    let target = (8 * m).next_power_of_two().clamp(1024, 1 << 20);
    target.min(n.next_power_of_two()).max(min)
}

fn fft_err(e: realfft::FftError) -> CoreError {
    CoreError::invalid("fft", format!("transform failed: {e}"))
}

/// Real forward/inverse transforms of one length, with the helpers the drivers share.
pub(crate) struct Correlator {
    pub n_fft: usize,
    pub m: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
}

/// Per-thread buffers of a [`Correlator`].
pub(crate) struct Scratch {
    pub real: Vec<f64>,
    pub spec: Vec<Complex<f64>>,
    pub acc: Vec<Complex<f64>>,
    fwd_scratch: Vec<Complex<f64>>,
    inv_scratch: Vec<Complex<f64>>,
}

impl Correlator {
    pub fn new(m: usize, n: usize) -> Correlator {
        let n_fft = fft_len(m, n);
        let mut planner = RealFftPlanner::<f64>::new();
        let fwd = planner.plan_fft_forward(n_fft);
        let inv = planner.plan_fft_inverse(n_fft);
        Correlator { n_fft, m, fwd, inv }
    }

    /// Shifts produced per block.
    pub fn block_shifts(&self) -> usize {
        self.n_fft - self.m + 1
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            real: vec![0.0; self.n_fft],
            spec: self.fwd.make_output_vec(),
            acc: self.fwd.make_output_vec(),
            fwd_scratch: self.fwd.make_scratch_vec(),
            inv_scratch: self.inv.make_scratch_vec(),
        }
    }

    /// Spectrum of the reversed pattern values `v(j)` (placed at `m - 1 - j`).
    pub fn pattern_spectrum(&self, v: impl Fn(usize) -> f64) -> Result<Vec<Complex<f64>>> {
        let mut x = vec![0.0; self.n_fft];
        for j in 0..self.m {
            x[self.m - 1 - j] = v(j);
        }
        let mut out = self.fwd.make_output_vec();
        self.fwd.process(&mut x, &mut out).map_err(fft_err)?;
        Ok(out)
    }

    /// `s.spec = FFT(s.real)` (destroys `s.real`).
    pub fn forward(&self, s: &mut Scratch) -> Result<()> {
        self.fwd.process_with_scratch(&mut s.real, &mut s.spec, &mut s.fwd_scratch).map_err(fft_err)
    }

    /// `s.real = IFFT(s.acc) / N`, i.e. the correlation values at `s.real[shift + m - 1]`.
    pub fn inverse_acc(&self, s: &mut Scratch) -> Result<()> {
        let last = s.acc.len() - 1;
        s.acc[0].im = 0.0;
        s.acc[last].im = 0.0;
        self.inv.process_with_scratch(&mut s.acc, &mut s.real, &mut s.inv_scratch).map_err(fft_err)?;
        let scale = 1.0 / self.n_fft as f64;
        for v in s.real.iter_mut() {
            *v *= scale;
        }
        Ok(())
    }
}

/// Add the matches of every symbol in `syms` (pattern ids, distinct) at every shift into `out`.
pub fn add_fft_matches(r: &Relabeled, syms: &[u32], out: &mut [u32]) -> Result<()> {
    if out.is_empty() || syms.is_empty() {
        return Ok(());
    }
    let m = r.pattern.len();
    let n = r.text.len();
    let cor = Correlator::new(m, n);
    let n_fft = cor.n_fft;
    let l = cor.block_shifts();
    let batch = (SPECTRA_BYTES / ((n_fft / 2 + 1) * 16)).max(1);
    let mut local = vec![u32::MAX; r.sigma as usize + 1];
    for batch_syms in syms.chunks(batch) {
        for (i, &c) in batch_syms.iter().enumerate() {
            local[c as usize] = i as u32;
        }
        // Pattern positions per batch symbol (CSR), then one spectrum per symbol.
        let mut pos_off = vec![0usize; batch_syms.len() + 1];
        for &c in &r.pattern {
            let k = local[c as usize];
            if k != u32::MAX {
                pos_off[k as usize + 1] += 1;
            }
        }
        for i in 0..batch_syms.len() {
            pos_off[i + 1] += pos_off[i];
        }
        let mut fill = pos_off.clone();
        let mut pos = vec![0usize; pos_off[batch_syms.len()]];
        for (j, &c) in r.pattern.iter().enumerate() {
            let k = local[c as usize];
            if k != u32::MAX {
                pos[fill[k as usize]] = j;
                fill[k as usize] += 1;
            }
        }
        let spectra: Vec<Vec<Complex<f64>>> = (0..batch_syms.len())
            .into_par_iter()
            .map(|i| {
                let js = &pos[pos_off[i]..pos_off[i + 1]];
                let mut x = vec![0.0; n_fft];
                for &j in js {
                    x[m - 1 - j] = 1.0;
                }
                let mut y = vec![Complex::new(0.0, 0.0); n_fft / 2 + 1];
                cor.fwd.process(&mut x, &mut y).map_err(fft_err)?;
                Ok(y)
            })
            .collect::<Result<_>>()?;
        let local_ref = &local;
        out.par_chunks_mut(l)
            .enumerate()
            .map_init(
                || (cor.scratch(), vec![0usize; batch_syms.len() + 1], Vec::<usize>::new()),
                |(s, cnt, bucket), (b, o)| -> Result<()> {
                    let s0 = b * l;
                    let win = &r.text[s0..(s0 + n_fft).min(n)];
                    // Bucket the window's positions by batch symbol (counting sort).
                    cnt.iter_mut().for_each(|x| *x = 0);
                    for &c in win {
                        let k = local_ref[c as usize];
                        if k != u32::MAX {
                            cnt[k as usize + 1] += 1;
                        }
                    }
                    for i in 0..batch_syms.len() {
                        cnt[i + 1] += cnt[i];
                    }
                    bucket.resize(cnt[batch_syms.len()], 0);
                    let mut fill = cnt.clone();
                    for (p, &c) in win.iter().enumerate() {
                        let k = local_ref[c as usize];
                        if k != u32::MAX {
                            bucket[fill[k as usize]] = p;
                            fill[k as usize] += 1;
                        }
                    }
                    s.acc.iter_mut().for_each(|z| *z = Complex::new(0.0, 0.0));
                    let mut any = false;
                    for (i, y) in spectra.iter().enumerate() {
                        let ps = &bucket[cnt[i]..cnt[i + 1]];
                        if ps.is_empty() || pos_off[i] == pos_off[i + 1] {
                            continue;
                        }
                        any = true;
                        s.real.iter_mut().for_each(|x| *x = 0.0);
                        for &p in ps {
                            s.real[p] = 1.0;
                        }
                        cor.forward(s)?;
                        for ((a, x), y) in s.acc.iter_mut().zip(&s.spec).zip(y) {
                            *a += x * y;
                        }
                    }
                    if !any {
                        return Ok(());
                    }
                    cor.inverse_acc(s)?;
                    for (o, v) in o.iter_mut().zip(&s.real[m - 1..]) {
                        *o += v.round().max(0.0) as u32;
                    }
                    Ok(())
                },
            )
            .collect::<Result<Vec<()>>>()?;
        for &c in batch_syms {
            local[c as usize] = u32::MAX;
        }
    }
    Ok(())
}
