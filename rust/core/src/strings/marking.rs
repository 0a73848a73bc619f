//! Sparse marking: for every text position `t` holding symbol `c`, add one to every shift `t - j`
//! with `P[j] = c`, using the pattern's occurrence lists. Work Σ_c occ_T(c)·occ_P(c), which is
//! n·m/σ on uniform text — the "light symbol" half of the heavy/light split.

use super::alphabet::Relabeled;
use rayon::prelude::*;

/// Shifts per parallel task.
const TASK: usize = 1 << 15;

/// Occurrence lists of the selected pattern symbols in CSR form, stored as `m - 1 - j` so that
/// text position `t` marks buffer slot `t - s0 + (m - 1 - j)`.
struct Occurrences {
    offsets: Vec<u32>,
    items: Vec<u32>,
}

impl Occurrences {
    fn new(r: &Relabeled, selected: &[bool]) -> Occurrences {
        let sigma = r.sigma as usize;
        let m = r.pattern.len();
        let mut offsets = vec![0u32; sigma + 2];
        for &c in &r.pattern {
            if selected[c as usize] {
                offsets[c as usize + 1] += 1;
            }
        }
        for c in 0..=sigma {
            offsets[c + 1] += offsets[c];
        }
        let mut fill = offsets.clone();
        let mut items = vec![0u32; offsets[sigma + 1] as usize];
        for (j, &c) in r.pattern.iter().enumerate() {
            if selected[c as usize] {
                items[fill[c as usize] as usize] = (m - 1 - j) as u32;
                fill[c as usize] += 1;
            }
        }
        Occurrences { offsets, items }
    }

    #[inline]
    fn list(&self, c: u32) -> &[u32] {
        let c = c as usize;
        &self.items[self.offsets[c] as usize..self.offsets[c + 1] as usize]
    }
}

/// Add, for every selected symbol `c` (`selected[c]`, length `sigma + 1`), its matches at every
/// shift into `out` (length `n - m + 1`).
pub fn add_marked_matches(r: &Relabeled, selected: &[bool], out: &mut [u32]) {
    if out.is_empty() || !selected.iter().any(|&s| s) {
        return;
    }
    let occ = Occurrences::new(r, selected);
    let m = r.pattern.len();
    let task = |s0: usize, o: &mut [u32]| {
        let s1 = s0 + o.len();
        let mut buf = vec![0u32; (s1 - s0) + 2 * m];
        for (t, &c) in r.text[s0..s1 + m - 1].iter().enumerate() {
            let b = &mut buf[t..];
            for &off in occ.list(c) {
                b[off as usize] += 1;
            }
        }
        for (o, &b) in o.iter_mut().zip(&buf[m - 1..]) {
            *o += b;
        }
    };
    if out.len() > TASK {
        out.par_chunks_mut(TASK).enumerate().for_each(|(i, o)| task(i * TASK, o));
    } else {
        task(0, out);
    }
}
