//! Sumsets A + B = {a + b} of integer (multi)sets, with optional multiplicities
//! |{(i, j): a_i + b_j = s}|. Values are shifted by their minima so the sums live in [0, U).
//! Engines (`Auto` compares their estimated costs):
//! - `Pairs`: enumerate the pairs tile by tile over the sum range (a tile of 2^18 bits / 2^14
//!   counters stays in cache; per tile and value a ∈ A the matching b's are one binary-searched
//!   run of sorted B): O(|A||B| + U/64 + tiles·|A| log|B|), parallel over tiles;
//! - `Radix`: all pair sums into one array, LSD radix sort, run-length: O(|A||B|·passes), any U
//!   (the sparse path for universes above 1e8);
//! - `Fft`: real FFT convolution of the count vectors with rounding, exact while the rounding
//!   error bound ‖f_A‖₂‖f_B‖₂·N log2 N·2⁻⁵⁰ stays below 1/4 (checked): O(U log U);
//! - `ShiftOr`: OR (or add) the bitmap (counts) of the larger set shifted by each value of the
//!   smaller one: O(min(|A|,|B|)·U/64) — for a tiny set against a dense one.

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

use crate::{CoreError, Result};

/// Engine for [`sumset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumsetMethod {
    Auto,
    Pairs,
    Radix,
    Fft,
    ShiftOr,
}

impl SumsetMethod {
    /// Parse `"auto"`, `"pairs"`, `"radix"`, `"fft"` or `"shift_or"`.
    pub fn parse(s: &str) -> Result<SumsetMethod> {
        Ok(match s {
            "auto" => SumsetMethod::Auto,
            "pairs" => SumsetMethod::Pairs,
            "radix" => SumsetMethod::Radix,
            "fft" => SumsetMethod::Fft,
            "shift_or" => SumsetMethod::ShiftOr,
            _ => {
                return Err(CoreError::invalid(
                    "method",
                    format!("unknown method {s:?} (expected auto, pairs, radix, fft or shift_or)"),
                ))
            }
        })
    }
}

/// Sorted distinct sums and, when asked, how many pairs give each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sumset {
    pub sums: Vec<i64>,
    pub counts: Option<Vec<u64>>,
}

/// Largest sum range the tiled pair engine accepts (bits scanned).
const PAIRS_MAX_U: u128 = 1 << 32;
/// Largest sum range for FFT convolution (memory ≈ 32 bytes per position).
pub const FFT_MAX_U: u128 = 1 << 25;
/// Largest sum range for shift-OR (bits) and shift-add (counters).
const SHIFT_MAX_U: u128 = 1 << 32;
const SHIFT_ADD_MAX_U: u128 = 1 << 25;
/// Most distinct pairs the enumerating engines will materialize at once (radix) or visit.
pub const MAX_PAIRS: u128 = 1 << 31;

const TILE_BITS: u64 = 1 << 18;
const TILE_COUNTS: u64 = 1 << 14;

/// Distinct values (offset by the minimum) with their multiplicities.
struct Dist {
    vals: Vec<u64>,
    cnts: Vec<u64>,
}

fn distinct(x: &[i64], min: i64) -> Dist {
    let mut v: Vec<u64> = x.iter().map(|&a| (a as i128 - min as i128) as u64).collect();
    v.sort_unstable();
    let mut vals = Vec::new();
    let mut cnts = Vec::new();
    for a in v {
        if vals.last() == Some(&a) {
            if let Some(c) = cnts.last_mut() {
                *c += 1;
            }
        } else {
            vals.push(a);
            cnts.push(1);
        }
    }
    Dist { vals, cnts }
}

fn range_of(d: &Dist) -> u64 {
    d.vals.last().copied().unwrap_or(0)
}

/// Estimated cost (ns) of each engine, `None` where it does not apply.
fn costs(a: &Dist, b: &Dist, u: u128, mult: bool) -> [Option<f64>; 4] {
    let pairs = a.vals.len() as f64 * b.vals.len() as f64;
    let uf = u as f64;
    let (small, large) = if a.vals.len() <= b.vals.len() { (a, b) } else { (b, a) };
    let tile = if mult { TILE_COUNTS } else { TILE_BITS } as f64;
    let tiles = (uf / tile).ceil();
    let pairs_tiled = (u <= PAIRS_MAX_U && (pairs as u128) <= MAX_PAIRS * 8).then(|| {
        pairs * 1.0 + if mult { uf * 0.5 } else { uf / 64.0 * 1.5 } + tiles * small.vals.len() as f64 * 25.0
    });
    let radix = ((pairs as u128) <= MAX_PAIRS).then(|| {
        let passes = ((128 - u.leading_zeros()) as f64 / 11.0).ceil().max(1.0);
        pairs * (3.0 + passes * if mult { 4.0 } else { 2.5 })
    });
    let fft = (u <= FFT_MAX_U).then(|| {
        let n = fft_size(u as usize) as f64;
        3.0 * n * n.log2() * 1.0 + n * 6.0
    });
    let shift = if mult {
        (u <= SHIFT_ADD_MAX_U).then(|| small.vals.len() as f64 * (range_of(large) as f64 + 1.0) * 0.3 + uf)
    } else {
        (u <= SHIFT_MAX_U).then(|| small.vals.len() as f64 * uf / 64.0 * 0.7 + uf / 64.0 * 2.0)
    };
    [pairs_tiled, radix, fft, shift]
}

/// Sumset of `a` and `b` (any order, duplicates allowed; multiplicities count index pairs).
pub fn sumset(a: &[i64], b: &[i64], multiplicities: bool, method: SumsetMethod) -> Result<Sumset> {
    if a.is_empty() || b.is_empty() {
        return Ok(Sumset { sums: Vec::new(), counts: multiplicities.then(Vec::new) });
    }
    let (amin, amax) = (a.iter().copied().min().unwrap_or(0), a.iter().copied().max().unwrap_or(0));
    let (bmin, bmax) = (b.iter().copied().min().unwrap_or(0), b.iter().copied().max().unwrap_or(0));
    for s in [amin as i128 + bmin as i128, amax as i128 + bmax as i128] {
        if s < i64::MIN as i128 || s > i64::MAX as i128 {
            return Err(CoreError::out_of_range("a + b", s, "sums must fit in int64"));
        }
    }
    let da = distinct(a, amin);
    let db = distinct(b, bmin);
    let u = range_of(&da) as u128 + range_of(&db) as u128 + 1;
    let c = costs(&da, &db, u, multiplicities);
    let method = match method {
        SumsetMethod::Auto => {
            let names = [SumsetMethod::Pairs, SumsetMethod::Radix, SumsetMethod::Fft, SumsetMethod::ShiftOr];
            let mut best = (f64::INFINITY, SumsetMethod::Radix);
            for (cost, name) in c.iter().zip(names) {
                if let Some(x) = cost {
                    if *x < best.0 {
                        best = (*x, name);
                    }
                }
            }
            best.1
        }
        m => m,
    };
    let limit = |what: &str, lim: u128| {
        CoreError::limit(what, lim.min(u64::MAX as u128) as u64, "choose another method (or method=\"auto\")")
    };
    let (offs, counts) = match method {
        SumsetMethod::Pairs => {
            if c[0].is_none() {
                return Err(limit("sum range for method=\"pairs\"", PAIRS_MAX_U));
            }
            if !multiplicities {
                let base = amin as i128 + bmin as i128;
                return Ok(Sumset { sums: pairs_tiled_set(&da, &db, u as u64, base), counts: None });
            }
            pairs_tiled(&da, &db, u as u64, multiplicities)
        }
        SumsetMethod::Radix => {
            if c[1].is_none() {
                return Err(limit("distinct pairs for method=\"radix\"", MAX_PAIRS));
            }
            radix(&da, &db, u as u64, multiplicities)
        }
        SumsetMethod::Fft => {
            if c[2].is_none() {
                return Err(limit("sum range for method=\"fft\"", FFT_MAX_U));
            }
            fft_conv(&da, &db, u as usize)?
        }
        SumsetMethod::ShiftOr | SumsetMethod::Auto => {
            if c[3].is_none() {
                return Err(limit("sum range for method=\"shift_or\"", SHIFT_MAX_U));
            }
            shift(&da, &db, u as usize, multiplicities)
        }
    };
    let base = amin as i128 + bmin as i128;
    let sums = offs.into_iter().map(|o| (base + o as i128) as i64).collect();
    Ok(Sumset { sums, counts: multiplicities.then_some(counts) })
}

fn push_bits(bits: &[u64], base: u64, out: &mut Vec<u64>) {
    for (w, &x) in bits.iter().enumerate() {
        let mut x = x;
        while x != 0 {
            out.push(base + w as u64 * 64 + x.trailing_zeros() as u64);
            x &= x - 1;
        }
    }
}

/// Bitmap of the sums in `lo..hi` (offsets), pairs enumerated value by value of the smaller set.
fn tile_bitmap(a: &Dist, b: &Dist, lo: u64, hi: u64) -> Vec<u64> {
    let mut bits = vec![0u64; (hi - lo).div_ceil(64) as usize];
    let bmax = range_of(b);
    let a_from = a.vals.partition_point(|&x| x + bmax < lo);
    for &x in &a.vals[a_from..] {
        if x >= hi {
            break;
        }
        let from = b.vals.partition_point(|&y| x + y < lo);
        let base = x.wrapping_sub(lo);
        for &y in &b.vals[from..] {
            let o = base.wrapping_add(y) as usize;
            if o >= (hi - lo) as usize {
                break;
            }
            bits[o >> 6] |= 1 << (o & 63);
        }
    }
    bits
}

/// Set-only tiled engine: tile bitmaps in parallel, then every tile writes its sums (plus `base`)
/// straight into its slice of the one output array.
fn pairs_tiled_set(a: &Dist, b: &Dist, u: u64, base: i128) -> Vec<i64> {
    let (a, b) = if a.vals.len() <= b.vals.len() { (a, b) } else { (b, a) };
    let tiles = u.div_ceil(TILE_BITS);
    let maps: Vec<(Vec<u64>, usize)> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let lo = t * TILE_BITS;
            let bits = tile_bitmap(a, b, lo, (lo + TILE_BITS).min(u));
            let ones = bits.iter().map(|w| w.count_ones() as usize).sum();
            (bits, ones)
        })
        .collect();
    let mut out = vec![0i64; maps.iter().map(|m| m.1).sum()];
    let mut slices = Vec::with_capacity(maps.len());
    let mut rest = &mut out[..];
    for (_, ones) in &maps {
        let (head, tail) = rest.split_at_mut(*ones);
        slices.push(head);
        rest = tail;
    }
    slices.into_par_iter().zip(maps.par_iter()).enumerate().for_each(|(t, (dst, (bits, _)))| {
        // Every sum fits in i64 (checked by the caller), so tile-relative arithmetic does too.
        let lo = (base + (t as u64 * TILE_BITS) as i128) as i64;
        let mut k = 0;
        for (w, &x) in bits.iter().enumerate() {
            let mut x = x;
            let wlo = lo.wrapping_add((w * 64) as i64);
            while x != 0 {
                dst[k] = wlo.wrapping_add(x.trailing_zeros() as i64);
                k += 1;
                x &= x - 1;
            }
        }
    });
    out
}

fn pairs_tiled(a: &Dist, b: &Dist, u: u64, mult: bool) -> (Vec<u64>, Vec<u64>) {
    let (a, b) = if a.vals.len() <= b.vals.len() { (a, b) } else { (b, a) };
    let tile = if mult { TILE_COUNTS } else { TILE_BITS };
    let tiles = u.div_ceil(tile);
    let parts: Vec<(Vec<u64>, Vec<u64>)> = (0..tiles)
        .into_par_iter()
        .map(|t| {
            let lo = t * tile;
            let hi = (lo + tile).min(u);
            let mut sums = Vec::new();
            let mut cnts = Vec::new();
            let mut bits = if mult { Vec::new() } else { vec![0u64; (hi - lo).div_ceil(64) as usize] };
            let mut acc = if mult { vec![0u64; (hi - lo) as usize] } else { Vec::new() };
            let bmax = range_of(b);
            let a_from = a.vals.partition_point(|&x| x + bmax < lo);
            for (&x, &cx) in a.vals[a_from..].iter().zip(&a.cnts[a_from..]) {
                if x >= hi {
                    break;
                }
                let from = b.vals.partition_point(|&y| x + y < lo);
                if mult {
                    for (&y, &cy) in b.vals[from..].iter().zip(&b.cnts[from..]) {
                        let s = x + y;
                        if s >= hi {
                            break;
                        }
                        acc[(s - lo) as usize] += cx * cy;
                    }
                } else {
                    let base = x.wrapping_sub(lo);
                    for &y in &b.vals[from..] {
                        let o = (base.wrapping_add(y)) as usize;
                        if o >= (hi - lo) as usize {
                            break;
                        }
                        bits[o >> 6] |= 1 << (o & 63);
                    }
                }
            }
            if mult {
                for (o, &c) in acc.iter().enumerate() {
                    if c != 0 {
                        sums.push(lo + o as u64);
                        cnts.push(c);
                    }
                }
            } else {
                sums.reserve_exact(bits.iter().map(|w| w.count_ones() as usize).sum());
                push_bits(&bits, lo, &mut sums);
            }
            (sums, cnts)
        })
        .collect();
    let mut sums = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut cnts = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
    for (s, c) in parts {
        sums.extend(s);
        cnts.extend(c);
    }
    (sums, cnts)
}

/// LSD radix sort of `keys` (< 2^bits) carrying `vals` along when given.
fn radix_sort(keys: &mut Vec<u64>, vals: &mut Option<Vec<u64>>, bits: u32) {
    const D: u32 = 11;
    let n = keys.len();
    let mut k2 = vec![0u64; n];
    let mut v2 = vals.as_ref().map(|_| vec![0u64; n]);
    let mut shift = 0;
    while shift < bits {
        let mut cnt = vec![0usize; (1 << D) + 1];
        for &k in keys.iter() {
            cnt[((k >> shift) & ((1 << D) - 1)) as usize + 1] += 1;
        }
        for i in 0..(1 << D) {
            cnt[i + 1] += cnt[i];
        }
        for i in 0..n {
            let d = ((keys[i] >> shift) & ((1 << D) - 1)) as usize;
            let p = cnt[d];
            cnt[d] += 1;
            k2[p] = keys[i];
            if let (Some(v), Some(v2)) = (vals.as_ref(), v2.as_mut()) {
                v2[p] = v[i];
            }
        }
        std::mem::swap(keys, &mut k2);
        if let (Some(v), Some(v2)) = (vals.as_mut(), v2.as_mut()) {
            std::mem::swap(v, v2);
        }
        shift += D;
    }
}

fn radix(a: &Dist, b: &Dist, u: u64, mult: bool) -> (Vec<u64>, Vec<u64>) {
    let total = a.vals.len() * b.vals.len();
    let mut keys = Vec::with_capacity(total);
    let mut vals = if mult { Some(Vec::with_capacity(total)) } else { None };
    for (&x, &cx) in a.vals.iter().zip(&a.cnts) {
        keys.extend(b.vals.iter().map(|&y| x + y));
        if let Some(v) = vals.as_mut() {
            v.extend(b.cnts.iter().map(|&cy| cx * cy));
        }
    }
    let bits = 64 - (u.saturating_sub(1)).leading_zeros();
    radix_sort(&mut keys, &mut vals, bits);
    let mut sums: Vec<u64> = Vec::new();
    let mut cnts: Vec<u64> = Vec::new();
    for (i, &k) in keys.iter().enumerate() {
        let c = vals.as_ref().map_or(0, |v| v[i]);
        if sums.last() == Some(&k) {
            if let Some(last) = cnts.last_mut() {
                *last += c;
            }
        } else {
            sums.push(k);
            cnts.push(c);
        }
    }
    if !mult {
        cnts.clear();
    }
    (sums, cnts)
}

/// Smallest even 2^i·3^j·5^k >= n (fast lengths for the mixed-radix FFT).
fn fft_size(n: usize) -> usize {
    let n = n.max(2);
    let mut best = n.next_power_of_two();
    let mut p5 = 1usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut x = p35 * 2;
            while x < n {
                x *= 2;
            }
            best = best.min(x);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

fn fft_conv(a: &Dist, b: &Dist, u: usize) -> Result<(Vec<u64>, Vec<u64>)> {
    let n = fft_size(u);
    let norm = |d: &Dist| d.cnts.iter().map(|&c| (c as f64) * (c as f64)).sum::<f64>().sqrt();
    let bound = norm(a) * norm(b) * n as f64 * (n as f64).log2() * f64::EPSILON / 4.0;
    if bound >= 0.25 {
        return Err(CoreError::limit(
            "FFT rounding error bound",
            0,
            format!("{bound:.3} >= 0.25 with these multiplicities; use method=\"radix\""),
        ));
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let err = |e: realfft::FftError| CoreError::invalid("fft", format!("transform failed: {e}"));
    // The two forward transforms run in parallel.
    let spectrum = |d: &Dist| -> Result<(Vec<f64>, Vec<Complex<f64>>)> {
        let mut x = vec![0.0f64; n];
        for (&v, &c) in d.vals.iter().zip(&d.cnts) {
            x[v as usize] = c as f64;
        }
        let mut f = fwd.make_output_vec();
        fwd.process(&mut x, &mut f).map_err(err)?;
        Ok((x, f))
    };
    let (ra, rb) = rayon::join(|| spectrum(a), || spectrum(b));
    let (mut x, mut fa) = ra?;
    let (_, fb) = rb?;
    for (p, q) in fa.iter_mut().zip(&fb) {
        *p *= q;
    }
    drop(fb);
    let last = fa.len() - 1;
    fa[0].im = 0.0;
    fa[last] = Complex::new(fa[last].re, 0.0);
    inv.process(&mut fa, &mut x).map_err(err)?;
    let scale = 1.0 / n as f64;
    let mut sums = Vec::new();
    let mut cnts = Vec::new();
    for (i, &v) in x[..u].iter().enumerate() {
        let c = (v * scale).round();
        if c >= 1.0 {
            sums.push(i as u64);
            cnts.push(c as u64);
        }
    }
    Ok((sums, cnts))
}

fn shift(a: &Dist, b: &Dist, u: usize, mult: bool) -> (Vec<u64>, Vec<u64>) {
    let (a, b) = if a.vals.len() <= b.vals.len() { (a, b) } else { (b, a) };
    let mut sums = Vec::new();
    let mut cnts = Vec::new();
    if mult {
        let rb = range_of(b) as usize + 1;
        let mut fb = vec![0u64; rb];
        for (&v, &c) in b.vals.iter().zip(&b.cnts) {
            fb[v as usize] = c;
        }
        let mut acc = vec![0u64; u];
        for (&x, &cx) in a.vals.iter().zip(&a.cnts) {
            for (o, &f) in acc[x as usize..x as usize + rb].iter_mut().zip(&fb) {
                *o += cx * f;
            }
        }
        for (i, &c) in acc.iter().enumerate() {
            if c != 0 {
                sums.push(i as u64);
                cnts.push(c);
            }
        }
    } else {
        let words = u.div_ceil(64) + 1;
        let mut bb = vec![0u64; words];
        for &v in &b.vals {
            bb[(v >> 6) as usize] |= 1 << (v & 63);
        }
        let mut acc = vec![0u64; words + 1];
        let bw = (range_of(b) as usize >> 6) + 1;
        for &x in &a.vals {
            let (q, r) = ((x >> 6) as usize, (x & 63) as u32);
            let dst = &mut acc[q..q + bw + 1];
            if r == 0 {
                for (d, &s) in dst.iter_mut().zip(&bb[..bw]) {
                    *d |= s;
                }
            } else {
                let mut carry = 0u64;
                for (d, &s) in dst.iter_mut().zip(&bb[..bw]) {
                    *d |= (s << r) | carry;
                    carry = s >> (64 - r);
                }
                dst[bw] |= carry;
            }
        }
        push_bits(&acc, 0, &mut sums);
    }
    (sums, cnts)
}
