//! Cover encodings of a byte string and GFD bookkeeping over sorted-id ranges.
//!
//! A *cover* of `data` (Phan et al. 2024) is a token sequence t1..tk whose first k−1 tokens spell a
//! proper prefix of `data` exactly and whose last token's bytes start with the rest of `data`.
//! Covers partition the event "the output bytes start with `data`", so
//! `P(data) = Σ_covers P(t1..tk)`. The first k−1 tokens form a *partial cover*; partial covers form
//! a prefix tree ([`CoverTree`]) whose nodes each need one model row (the next-token distribution
//! after the node's tokens) and contribute `P(node) · Σ_{t extends data[pos..]} P(t | node)`.

use super::index::ByteVocab;
use crate::error::{CoreError, Result};

/// Sentinel for "no token" / "no parent".
pub const NONE: u32 = u32::MAX;

/// The partial covers of `data`, in breadth-first order (node 0 is the empty sequence).
///
/// Only nodes from which some cover can still be completed are kept. `level_offsets[d]..level_offsets[d+1]`
/// are the nodes of depth d, so a model can be called once per level.
#[derive(Debug, Clone, Default)]
pub struct CoverTree {
    /// Parent node (NONE for the root).
    pub parent: Vec<u32>,
    /// Token leading from the parent to this node (NONE for the root).
    pub token: Vec<u32>,
    /// Bytes of `data` spelled by the node's tokens (< |data|).
    pub pos: Vec<u32>,
    /// Sorted-id range of the tokens that start with `data[pos..]` (the covers ending here).
    pub lo: Vec<u32>,
    /// End of that range.
    pub hi: Vec<u32>,
    /// Node ranges per depth.
    pub level_offsets: Vec<u32>,
}

impl CoverTree {
    /// Enumerate the partial covers of non-empty `data`; more than `max_nodes` nodes is an error.
    /// Time O(|data| · L log n) for the per-position matches plus O(nodes) for the tree.
    pub fn build(v: &ByteVocab, data: &[u8], max_nodes: usize) -> Result<Self> {
        let n = data.len();
        let mut tree = CoverTree::default();
        if n == 0 {
            return Ok(tree);
        }
        // Per position: tokens spelling data[p..p+len] with p+len < n (children), and the range of
        // tokens covering the rest (terminal). `reach[p]`: a cover can be completed from p.
        let mut children: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
        let mut ranges = vec![(0usize, 0usize); n];
        let mut reach = vec![false; n];
        for p in (0..n).rev() {
            ranges[p] = v.prefix_range(&data[p..], false);
            let mut kids = Vec::new();
            v.for_each_prefix(&data[p..], |len, lo, hi| {
                if p + len < n && reach[p + len] {
                    for &id in &v.sorted_ids()[lo..hi] {
                        kids.push((id, p + len));
                    }
                }
            });
            reach[p] = ranges[p].0 < ranges[p].1 || !kids.is_empty();
            children[p] = kids;
        }
        tree.level_offsets.push(0);
        if !reach[0] {
            tree.level_offsets.push(0);
            return Ok(tree);
        }
        let push = |tree: &mut CoverTree, parent: u32, token: u32, p: usize| {
            tree.parent.push(parent);
            tree.token.push(token);
            tree.pos.push(p as u32);
            tree.lo.push(ranges[p].0 as u32);
            tree.hi.push(ranges[p].1 as u32);
        };
        push(&mut tree, NONE, NONE, 0);
        let mut start = 0;
        loop {
            let end = tree.parent.len();
            tree.level_offsets.push(end as u32);
            if start == end {
                break;
            }
            for node in start..end {
                let p = tree.pos[node] as usize;
                for &(id, q) in &children[p] {
                    if tree.parent.len() >= max_nodes {
                        return Err(CoreError::limit(
                            "max_covers",
                            max_nodes as u64,
                            format!(
                                "data of {n} bytes has more partial cover encodings than that; \
                                 raise max_covers or use mode='gfd'"
                            ),
                        ));
                    }
                    push(&mut tree, node as u32, id, q);
                }
            }
            start = end;
        }
        // The loop pushed one empty trailing level; drop it.
        tree.level_offsets.pop();
        Ok(tree)
    }

    /// Number of nodes (model rows).
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no nodes (empty data, or no cover exists).
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Token paths of all nodes as CSR (offsets len nodes+1, ids).
    pub fn paths(&self) -> (Vec<u64>, Vec<u32>) {
        let mut offsets = vec![0u64];
        let mut ids: Vec<u32> = Vec::new();
        let mut starts: Vec<usize> = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let p = self.parent[i];
            let s = ids.len();
            if p != NONE {
                let ps = starts[p as usize];
                let pe = offsets[p as usize + 1] as usize;
                ids.extend_from_within(ps..pe);
                ids.push(self.token[i]);
            }
            starts.push(s);
            offsets.push(ids.len() as u64);
        }
        (offsets, ids)
    }
}

/// `log Σ_{r in lo..hi} exp(lp[row, sorted[r]])` for each query, over a row-major `[rows, cols]`
/// array. Empty ranges give -inf; NaN or +inf among the entries read is a `NonFinite` error naming
/// `arg`. Every id must be < `cols` (the caller checks `cols >= vocab size`).
pub fn range_logsumexp(
    sorted: &[u32],
    lp: &[f32],
    cols: usize,
    rows: &[u32],
    lo: &[u32],
    hi: &[u32],
    arg: &str,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut buf: Vec<f32> = Vec::new();
    for ((&row, &l), &h) in rows.iter().zip(lo).zip(hi) {
        let base = row as usize * cols;
        let (l, h) = (l as usize, h as usize);
        if h > sorted.len() || l > h || base + cols > lp.len() {
            return Err(CoreError::invalid(arg, "row or range outside the array"));
        }
        let row_vals = &lp[base..base + cols];
        // Gather once into a contiguous buffer, then max and sum run over it.
        buf.clear();
        buf.extend(sorted[l..h].iter().map(|&id| row_vals[id as usize]));
        if buf.iter().fold(false, |bad, &x| bad | x.is_nan() | (x == f32::INFINITY)) {
            return Err(CoreError::non_finite(arg, format!("row {row} holds NaN or +inf in the range")));
        }
        let m = buf.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if m == f32::NEG_INFINITY {
            out.push(f64::NEG_INFINITY);
            continue;
        }
        let s: f64 = buf.iter().map(|&x| (x - m).exp() as f64).sum();
        out.push(m as f64 + s.ln());
    }
    Ok(out)
}

/// Row layout of one step of GFD's canonical-boundary approximation for several beams.
///
/// For beam b with trailing bytes T (|T| = n) and canonical tokens t1..tk spelling T[..used]:
/// boundaries are the positions pos_j = |t1..tj| < n (j = 0..=k). Row j of the beam is the model
/// input `context + t1..tj`; its extension term is `log P(t1..tj) + log Σ_{t extends T[pos_j..]} P(t)`.
/// The first `n_commit[b]` tokens are committed: the smallest j with n − pos_j ≤ window (but at most
/// the last boundary), so the kept trailing bytes are at most `window` long.
#[derive(Debug, Clone, Default)]
pub struct GfdLayout {
    /// Canonical tokens actually used per beam (CSR; the tokenizer's, or greedy when invalid).
    pub tok_offsets: Vec<u64>,
    /// Token ids of that CSR.
    pub tok_ids: Vec<u32>,
    /// Rows per beam (CSR offsets, len B+1); row j of beam b is `context_b + tokens_b[..j]`.
    pub row_offsets: Vec<u64>,
    /// Per row: the next canonical token t_{j+1} (NONE for the beam's last row).
    pub row_next: Vec<u32>,
    /// Per row: sorted-id range of the tokens extending T[pos_j..].
    pub row_lo: Vec<u32>,
    /// End of that range.
    pub row_hi: Vec<u32>,
    /// Per beam: number of tokens to commit.
    pub n_commit: Vec<u32>,
    /// Per beam: bytes those tokens spell (the new trailing bytes are T[commit_bytes..]).
    pub commit_bytes: Vec<u32>,
    /// Per beam: whether the given tokens were invalid and greedy longest-match was used.
    pub fell_back: Vec<bool>,
}

/// Lay out one GFD step (see [`GfdLayout`]). `trailing` and `tokens` are CSR (offsets + flat data).
pub fn gfd_layout(
    v: &ByteVocab,
    trail_offsets: &[u64],
    trail: &[u8],
    tok_offsets: &[u64],
    toks: &[u32],
    window: usize,
) -> Result<GfdLayout> {
    let b = trail_offsets.len().saturating_sub(1);
    if tok_offsets.len() != b + 1 {
        return Err(CoreError::invalid("tokens", format!("need one token list per beam ({b} beams)")));
    }
    let mut out = GfdLayout { tok_offsets: vec![0], row_offsets: vec![0], ..Default::default() };
    for i in 0..b {
        let (s, e) = (trail_offsets[i] as usize, trail_offsets[i + 1] as usize);
        let (ts, te) = (tok_offsets[i] as usize, tok_offsets[i + 1] as usize);
        if s > e || e > trail.len() || ts > te || te > toks.len() {
            return Err(CoreError::invalid("trailing", "offsets outside the data"));
        }
        let t = &trail[s..e];
        let n = t.len();
        // Validate the given canonical tokens: ordinary, non-empty, spelling a prefix of T.
        let given = &toks[ts..te];
        let mut used = 0usize;
        // An empty token list for non-empty bytes means "no tokenizer": use greedy.
        let mut ok = !given.is_empty() || n == 0;
        for &id in given {
            match (v.kind(id), v.token_bytes(id)) {
                (Some(super::TokenKind::Bytes), Some(tb)) if !tb.is_empty() && t[used..].starts_with(tb) => {
                    used += tb.len();
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        let ids: Vec<u32> = if ok {
            given.to_vec()
        } else {
            let (g, u) = v.greedy_tokenize(t);
            used = u;
            g
        };
        out.fell_back.push(!ok);
        // Boundaries pos_j < n.
        let mut pos = vec![0usize];
        for &id in &ids {
            let l = v.token_bytes(id).map_or(0, <[u8]>::len);
            let next = pos[pos.len() - 1] + l;
            pos.push(next);
        }
        debug_assert_eq!(pos[pos.len() - 1], used);
        let n_rows = if n == 0 { 0 } else { pos.iter().filter(|&&p| p < n).count() };
        for j in 0..n_rows {
            let (lo, hi) = v.prefix_range(&t[pos[j]..], false);
            out.row_next.push(if j + 1 < n_rows { ids[j] } else { NONE });
            out.row_lo.push(lo as u32);
            out.row_hi.push(hi as u32);
        }
        let m =
            if n_rows == 0 { 0 } else { (0..n_rows).find(|&j| n - pos[j] <= window).unwrap_or(n_rows - 1) };
        out.n_commit.push(m as u32);
        out.commit_bytes.push(pos[m] as u32);
        out.tok_ids.extend_from_slice(&ids);
        out.tok_offsets.push(out.tok_ids.len() as u64);
        let last = out.row_offsets[out.row_offsets.len() - 1];
        out.row_offsets.push(last + n_rows as u64);
    }
    Ok(out)
}

/// Score a [`GfdLayout`] from the model rows `lp` (`[rows, cols]`, row-major; any NaN or +inf
/// is a `NonFinite` error naming the row): returns per beam (log P(T | context) under the approximation, log P(committed tokens | context)).
pub fn gfd_score(
    v: &ByteVocab,
    layout: &GfdLayout,
    lp: &[f32],
    cols: usize,
    arg: &str,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n_rows = layout.row_lo.len();
    if cols < v.len() || lp.len() != n_rows * cols {
        return Err(CoreError::invalid(
            arg,
            format!(
                "must have shape [{n_rows}, >= {}], got {} values with {cols} columns",
                v.len(),
                lp.len()
            ),
        ));
    }
    let consistent = layout.row_offsets.len() == layout.n_commit.len() + 1
        && layout.row_offsets.last().is_some_and(|&e| e as usize == n_rows)
        && layout.row_offsets.windows(2).all(|w| w[0] <= w[1])
        && layout.row_next.len() == n_rows
        && layout.row_hi.len() == n_rows
        && layout.row_next.iter().all(|&t| t == NONE || (t as usize) < v.len())
        && layout.row_lo.iter().zip(&layout.row_hi).all(|(&l, &h)| l <= h && h as usize <= v.n_match());
    if !consistent {
        return Err(CoreError::invalid("layout", "does not belong to this vocabulary"));
    }
    if let Some(row) = first_bad_row(lp, cols) {
        return Err(CoreError::non_finite(
            arg,
            format!("row {row} holds NaN or +inf (log-probabilities must be <= 0)"),
        ));
    }
    let rows: Vec<u32> = (0..n_rows as u32).collect();
    let terms = range_logsumexp(v.sorted_ids(), lp, cols, &rows, &layout.row_lo, &layout.row_hi, arg)?;
    let b = layout.n_commit.len();
    let mut logp = Vec::with_capacity(b);
    let mut committed = Vec::with_capacity(b);
    for i in 0..b {
        let (rs, re) = (layout.row_offsets[i] as usize, layout.row_offsets[i + 1] as usize);
        let m = layout.n_commit[i] as usize;
        let mut acc = 0f64;
        let mut com = 0f64;
        let mut vals = Vec::with_capacity(re - rs);
        for r in rs..re {
            if r - rs == m {
                com = acc;
            }
            vals.push(acc + terms[r]);
            let nt = layout.row_next[r];
            if nt != NONE {
                let x = lp[r * cols + nt as usize];
                if x.is_nan() || x == f32::INFINITY {
                    return Err(CoreError::non_finite(
                        arg,
                        format!("row {r} holds NaN or +inf (token {nt})"),
                    ));
                }
                acc += x as f64;
            }
        }
        logp.push(if re == rs { 0.0 } else { logsumexp(&vals) });
        committed.push(com);
    }
    Ok((logp, committed))
}

/// First row of a row-major `[_, cols]` array holding NaN or +inf (branch-free scan per row).
pub fn first_bad_row(lp: &[f32], cols: usize) -> Option<usize> {
    lp.chunks(cols.max(1))
        .position(|row| row.iter().fold(false, |bad, &x| bad | x.is_nan() | (x == f32::INFINITY)))
}

/// `log Σ exp(x)` in f64; -inf for an empty slice or all -inf.
pub fn logsumexp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vocab(tokens: &[Vec<u8>]) -> ByteVocab {
        ByteVocab::from_tokens(tokens.iter().map(|t| Some(&t[..])), &[]).unwrap()
    }

    /// Brute force: all token sequences (up to depth |data|) that are covers of data.
    fn brute_covers(tokens: &[Vec<u8>], data: &[u8]) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut stack: Vec<(Vec<u32>, usize)> = vec![(vec![], 0)];
        while let Some((seq, p)) = stack.pop() {
            for (id, t) in tokens.iter().enumerate() {
                let rest = &data[p..];
                if !t.is_empty() && t.starts_with(rest) {
                    let mut s = seq.clone();
                    s.push(id as u32);
                    out.push(s);
                } else if !t.is_empty() && t.len() < rest.len() && rest.starts_with(t) {
                    let mut s = seq.clone();
                    s.push(id as u32);
                    stack.push((s, p + t.len()));
                }
            }
        }
        out.sort();
        out
    }

    proptest! {
        #[test]
        fn tree_enumerates_exactly_the_covers(
            tokens in prop::collection::vec(prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 0..4), 1..8),
            data in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 1..7),
        ) {
            let v = vocab(&tokens);
            let tree = CoverTree::build(&v, &data, 100_000).unwrap();
            let (off, ids) = tree.paths();
            let mut got = Vec::new();
            for i in 0..tree.len() {
                let path = &ids[off[i] as usize..off[i + 1] as usize];
                for r in tree.lo[i]..tree.hi[i] {
                    let mut s = path.to_vec();
                    s.push(v.sorted_ids()[r as usize]);
                    got.push(s);
                }
            }
            got.sort();
            prop_assert_eq!(got, brute_covers(&tokens, &data));
            // levels are contiguous by depth
            for d in 0..tree.level_offsets.len() - 1 {
                for i in tree.level_offsets[d]..tree.level_offsets[d + 1] {
                    prop_assert_eq!(off[i as usize + 1] - off[i as usize], d as u64);
                }
            }
        }
    }

    #[test]
    fn max_nodes_is_enforced() {
        let v = vocab(&[b"a".to_vec(), b"aa".to_vec()]);
        let e = CoverTree::build(&v, &[b'a'; 40], 1000).unwrap_err();
        assert!(e.to_string().starts_with("max_covers exceeds the limit of 1000"));
    }

    #[test]
    fn gfd_layout_commits_to_window() {
        let v = vocab(&[b"a".to_vec(), b"b".to_vec(), b"ab".to_vec()]);
        let t = b"ababa";
        let lay = gfd_layout(&v, &[0, 5], t, &[0, 3], &[2, 2, 0], 2).unwrap();
        assert!(!lay.fell_back[0]);
        assert_eq!(lay.row_offsets, vec![0, 3]);
        assert_eq!(lay.n_commit, vec![2]);
        assert_eq!(lay.commit_bytes, vec![4]);
        // invalid tokens fall back to greedy
        let lay = gfd_layout(&v, &[0, 5], t, &[0, 1], &[1], 2).unwrap();
        assert!(lay.fell_back[0]);
        assert_eq!(lay.tok_ids, vec![2, 2, 0]);
    }
}
