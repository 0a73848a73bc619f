//! Text-to-pattern Hamming distances (Chan, Jin, Vassilevska Williams, Xu, "Faster Algorithms for
//! Text-to-Pattern Hamming Distances"), k-mismatch, approximate distances and sumsets.
//!
//! Symbols are arbitrary `u64`s, relabelled once to dense ids ([`alphabet`]). The exact distances
//! come from one of four engines, chosen per call (or per symbol) by a cost model:
//! - [`count`]: blocked SIMD counting, O(n·m) at 16–64 lanes per instruction;
//! - [`marking`]: sparse marking through pattern occurrence lists, O(Σ_c occ_T(c)·occ_P(c));
//! - [`fft`]: FFT correlation per frequent symbol, O(n log m) each (Fischer–Paterson);
//! - [`bitpar`]: bit planes and popcount for small alphabets, O(n·m·log σ / 64).
//!
//! `Auto` splits symbols into heavy (FFT) and light (marking) by their individual costs — the
//! heavy/light split of the paper with the threshold set by measured constants — and compares the
//! total against whole-text counting and bit-parallel counting.

pub mod alphabet;
pub mod approx;
pub mod bitpar;
pub mod count;
pub mod fft;
pub mod kmismatch;
pub mod marking;
pub mod sumset;

pub use alphabet::Relabeled;
pub use approx::hamming_distances_approx;
pub use sumset::{sumset, Sumset, SumsetMethod};

use crate::{CoreError, Result};

/// Measured cost constants (nanoseconds, one core) of the engines, used by `Auto`.
pub(crate) mod cost {
    /// Counting, per (shift × pattern position), by id width in bytes.
    pub const COUNT_NS: [f64; 3] = [0.018, 0.042, 0.07];
    /// Bit-parallel, per (shift × pattern word): a fixed part and a part per bit plane.
    pub const BITPAR_NS: f64 = 0.1;
    pub const BITPAR_PLANE_NS: f64 = 0.6;
    /// Marking, per increment, and per scanned text position.
    pub const MARK_NS: f64 = 2.0;
    pub const SCAN_NS: f64 = 3.0;
    /// FFT, per block and symbol, per N·log2 N; plus per-position indicator work.
    pub const FFT_NS: f64 = 0.45;
    pub const FFT_POS_NS: f64 = 1.0;
    /// k-mismatch filter: per text position (window hashing), per compared position when verifying.
    pub const FILTER_NS: f64 = 1.5;
    /// Relabelling, per text position.
    pub const RELABEL_NS: f64 = 8.0;
    pub const VERIFY_NS: f64 = 0.5;
}

/// Engine for exact distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Cost model: per-symbol marking/FFT split, whole-text counting, or bit-parallel.
    Auto,
    /// Blocked SIMD counting.
    Counting,
    /// Sparse marking for every symbol.
    Marking,
    /// FFT correlation for every symbol.
    Fft,
    /// Bit-parallel over bit planes of ids.
    BitParallel,
}

impl Method {
    /// Parse a method name (`"auto"`, `"counting"`, `"marking"`, `"fft"`, `"bitparallel"`).
    pub fn parse(s: &str) -> Result<Method> {
        Ok(match s {
            "auto" => Method::Auto,
            "counting" => Method::Counting,
            "marking" => Method::Marking,
            "fft" => Method::Fft,
            "bitparallel" => Method::BitParallel,
            _ => {
                return Err(CoreError::invalid(
                    "method",
                    format!("unknown method {s:?} (expected auto, counting, marking, fft or bitparallel)"),
                ))
            }
        })
    }
}

/// What `Auto` decided, with its estimated cost in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Counting {
        est_ns: f64,
    },
    BitParallel {
        est_ns: f64,
    },
    /// Per-symbol split: `fft` symbols by correlation, `marked[c]` by marking.
    Split {
        fft: Vec<u32>,
        marked: Vec<bool>,
        est_ns: f64,
    },
}

impl Plan {
    pub fn est_ns(&self) -> f64 {
        match self {
            Plan::Counting { est_ns } | Plan::BitParallel { est_ns } | Plan::Split { est_ns, .. } => *est_ns,
        }
    }

    /// One-line description, e.g. `"split(fft=3, marking=980)"`.
    pub fn describe(&self) -> String {
        match self {
            Plan::Counting { .. } => "counting".into(),
            Plan::BitParallel { .. } => "bitparallel".into(),
            Plan::Split { fft, marked, .. } => {
                format!("split(fft={}, marking={})", fft.len(), marked.iter().filter(|&&b| b).count())
            }
        }
    }
}

fn fft_blocks(r: &Relabeled) -> (f64, f64) {
    let m = r.pattern.len();
    let n_fft = fft::fft_len(m, r.text.len());
    let blocks = r.shifts().div_ceil(n_fft - m + 1) as f64;
    let per_sym = n_fft as f64 * ((n_fft as f64).log2() * cost::FFT_NS + cost::FFT_POS_NS);
    (blocks, per_sym)
}

/// The cost model behind `Auto`.
pub fn plan(r: &Relabeled) -> Plan {
    let shifts = r.shifts() as f64;
    let m = r.pattern.len();
    let counting = shifts * m as f64 * cost::COUNT_NS[count::id_width(r.sigma).trailing_zeros() as usize];
    let b = bitpar::planes(r);
    let bitp = if b <= bitpar::MAX_PLANES {
        shifts * m.div_ceil(64) as f64 * (cost::BITPAR_NS + b as f64 * cost::BITPAR_PLANE_NS)
    } else {
        f64::INFINITY
    };
    let (blocks, fft_sym) = fft_blocks(r);
    let mut split = r.text.len() as f64 * cost::SCAN_NS;
    let mut fft_syms = Vec::new();
    let mut marked = vec![false; r.sigma as usize + 1];
    let counts = r.text_counts.iter().zip(&r.pat_counts);
    for (c, (flag, (&a, &p))) in marked.iter_mut().zip(counts).enumerate().take(r.sigma as usize) {
        if a == 0 {
            continue;
        }
        let mark = a as f64 * p as f64 * cost::MARK_NS;
        let f = blocks * fft_sym;
        if mark <= f {
            *flag = true;
            split += mark;
        } else {
            fft_syms.push(c as u32);
            split += f;
        }
    }
    if !fft_syms.is_empty() {
        split += blocks * fft_sym; // the inverse transform per block
    }
    let best = counting.min(bitp).min(split);
    if best == split {
        Plan::Split { fft: fft_syms, marked, est_ns: split }
    } else if best == bitp {
        Plan::BitParallel { est_ns: bitp }
    } else {
        Plan::Counting { est_ns: counting }
    }
}

fn to_distances(m: usize, mut matches: Vec<u32>) -> Vec<u32> {
    for x in matches.iter_mut() {
        *x = m as u32 - *x;
    }
    matches
}

fn run_split(r: &Relabeled, fft_syms: &[u32], marked: &[bool]) -> Result<Vec<u32>> {
    let mut matches = vec![0u32; r.shifts()];
    marking::add_marked_matches(r, marked, &mut matches);
    fft::add_fft_matches(r, fft_syms, &mut matches)?;
    Ok(to_distances(r.pattern.len(), matches))
}

/// Exact distances over relabelled ids with the given engine.
pub fn distances_ids(r: &Relabeled, method: Method) -> Result<Vec<u32>> {
    if r.shifts() == 0 {
        return Ok(Vec::new());
    }
    let m = r.pattern.len();
    match method {
        Method::Counting => Ok(to_distances(m, count::count_matches(r))),
        Method::BitParallel => Ok(bitpar::bitparallel_distances(r)),
        Method::Marking => {
            let mut all = vec![true; r.sigma as usize + 1];
            all[r.sigma as usize] = false;
            run_split(r, &[], &all)
        }
        Method::Fft => {
            let syms: Vec<u32> = (0..r.sigma).filter(|&c| r.text_counts[c as usize] > 0).collect();
            run_split(r, &syms, &vec![false; r.sigma as usize + 1])
        }
        Method::Auto => match plan(r) {
            Plan::Counting { .. } => distances_ids(r, Method::Counting),
            Plan::BitParallel { .. } => distances_ids(r, Method::BitParallel),
            Plan::Split { fft, marked, .. } => run_split(r, &fft, &marked),
        },
    }
}

fn check_pattern(pattern: &[u64]) -> Result<()> {
    if pattern.is_empty() {
        return Err(CoreError::invalid("pattern", "must not be empty"));
    }
    if pattern.len() >= u32::MAX as usize {
        return Err(CoreError::limit("pattern length", u32::MAX as u64 - 1, "distances are stored as u32"));
    }
    Ok(())
}

/// Hamming distance between `pattern` and every length-m window of `text` (`n - m + 1` values;
/// empty when the pattern is longer than the text).
pub fn hamming_distances(text: &[u64], pattern: &[u64], method: Method) -> Result<Vec<u32>> {
    check_pattern(pattern)?;
    if pattern.len() > text.len() {
        return Ok(Vec::new());
    }
    distances_ids(&Relabeled::new(text, pattern), method)
}

/// Engine for k-mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KMethod {
    /// Filter + verification on the raw symbols, falling back to the full `Auto` distances when
    /// the filter's estimated cost exceeds relabelling plus the full plan.
    Auto,
    /// Filter + verification always (full distances when k >= m, where no filter exists).
    Filter,
    /// The full distances with this engine, clamped.
    Full(Method),
}

fn clamp_k(d: Vec<u32>, k: usize) -> Vec<u32> {
    let cap = (k.min(u32::MAX as usize - 1) + 1) as u32;
    d.into_iter().map(|x| x.min(cap)).collect()
}

/// `min(distance, k + 1)` at every shift over dense ids.
pub fn k_mismatch_ids(r: &Relabeled, k: usize, method: KMethod) -> Result<Vec<u32>> {
    if r.shifts() == 0 {
        return Ok(Vec::new());
    }
    match method {
        KMethod::Full(meth) => Ok(clamp_k(distances_ids(r, meth)?, k)),
        KMethod::Filter | KMethod::Auto => {
            if let Some(f) = kmismatch::filter(&r.text, &r.pattern, k) {
                if method == KMethod::Filter || f.est_ns <= plan(r).est_ns() {
                    return Ok(f.verify_all());
                }
            }
            Ok(clamp_k(distances_ids(r, Method::Auto)?, k))
        }
    }
}

/// `min(HD, k + 1)` at every shift (see [`hamming_distances`]).
pub fn k_mismatch(text: &[u64], pattern: &[u64], k: usize, method: KMethod) -> Result<Vec<u32>> {
    check_pattern(pattern)?;
    if pattern.len() > text.len() {
        return Ok(Vec::new());
    }
    if let KMethod::Full(_) = method {
        return k_mismatch_ids(&Relabeled::new(text, pattern), k, method);
    }
    // The filter needs no relabelling; relabel only when the full computation may be cheaper.
    if let Some(f) = kmismatch::filter(text, pattern, k) {
        let relabel = text.len() as f64 * cost::RELABEL_NS;
        if method == KMethod::Filter || f.est_ns <= relabel + text.len() as f64 * cost::SCAN_NS {
            return Ok(f.verify_all());
        }
        let r = Relabeled::new(text, pattern);
        if f.est_ns <= relabel + plan(&r).est_ns() {
            return Ok(f.verify_all());
        }
        return Ok(clamp_k(distances_ids(&r, Method::Auto)?, k));
    }
    Ok(clamp_k(hamming_distances(text, pattern, Method::Auto)?, k))
}

/// Periods tried directly (early-exit comparison) before the k-mismatch search of the rest.
const DIRECT_PERIODS: usize = 64;

/// Smallest period `d >= 1` such that the last `window` tokens differ from the `window` tokens
/// `d` positions earlier in at most `max_mismatch` places; `None` if there is none (including
/// when `window >= tokens.len()`).
pub fn find_repetition(tokens: &[u64], window: usize, max_mismatch: usize) -> Result<Option<usize>> {
    if window == 0 {
        return Err(CoreError::invalid("window", "must be >= 1"));
    }
    let n = tokens.len();
    if window >= n {
        return Ok(None);
    }
    let pattern = &tokens[n - window..];
    let text = &tokens[..n - 1];
    let d_max = n - window;
    let direct = d_max.min(DIRECT_PERIODS);
    for d in 1..=direct {
        if (kmismatch::verify(text, pattern, n - window - d, max_mismatch).0 as usize) <= max_mismatch {
            return Ok(Some(d));
        }
    }
    if d_max == direct {
        return Ok(None);
    }
    // Shifts s = n - window - d for d > direct: the text ends at n - 1 - direct.
    let d = k_mismatch(&tokens[..n - 1 - direct], pattern, max_mismatch, KMethod::Auto)?;
    Ok(d.iter().rposition(|&x| (x as usize) <= max_mismatch).map(|s| n - window - s))
}

#[cfg(test)]
mod tests;
