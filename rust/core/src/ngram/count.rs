//! Sort-based n-gram counting over packed keys: one sort serves every order.
//!
//! Every sentence is padded as `<s> w1 .. wk </s>` (one `<s>`, one `</s>`, as KenLM's `lmplz` does) and
//! every window of length `n` inside a padded sentence is an n-gram occurrence. An n-gram of ids is
//! packed into one `u128` key, first id in the high bits, so numeric order is lexicographic order and
//! the n-grams sharing a context are contiguous.
//!
//! Each stream position is keyed by its window of the highest order N (ids past the sentence's `</s>`
//! are never read as n-gram ids). The keys are split by their top digit into buckets (one parallel
//! counting-sort pass), each bucket is LSD radix sorted on the remaining bits (in `u64` when they fit),
//! and one linear scan of the sorted keys emits the k-grams of every order k <= N as the runs of equal
//! top k ids. Time O(T · N · bits / 11) for T tokens, no hashing, no per-order re-sort. Streams longer
//! than `chunk` positions are cut at sentence ends, counted piece by piece and merged.
//!
//! Peak memory per stream position: 4 bytes (stream) + 8 bytes (bucket keys; 16 when the low part of a
//! key needs more than 64 bits) + 8 (16) bytes per position of the largest bucket per thread (radix
//! scratch), plus the result itself: 24 bytes per distinct n-gram of each order. Orders 1-6 of 10^7
//! Zipf tokens (V = 32k): ~1.3 GB peak, of which ~1 GB is the result; first-touch page faults on it
//! cost about as much as the sort (transparent huge pages cut that but made a process's first count
//! ~1 s slower, so they are not requested).

use rayon::prelude::*;

use super::radix::{msd_sort, RadixKey, Scratch};
use crate::{CoreError, Result};

/// Default number of stream positions (tokens plus two per sentence) sorted at once: a corpus up to
/// this size is counted with one sort; a longer one in sentence-aligned pieces that are merged.
pub const DEFAULT_CHUNK: usize = 1 << 24;

/// The ids `<unk>`, `<s>`, `</s>` take in a vocabulary of `vocab_size` user tokens: the three ids just
/// after it (`vocab_size`, `vocab_size + 1`, `vocab_size + 2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Specials {
    pub unk: u32,
    pub bos: u32,
    pub eos: u32,
}

impl Specials {
    /// Special ids for `vocab_size` user tokens; fails when they do not fit in `u32`.
    pub fn new(vocab_size: u32) -> Result<Self> {
        if vocab_size > u32::MAX - 3 {
            return Err(CoreError::out_of_range("vocab_size", vocab_size, "must be at most 2^32 - 4"));
        }
        Ok(Specials { unk: vocab_size, bos: vocab_size + 1, eos: vocab_size + 2 })
    }
}

/// Bits per id needed to pack ids `0 .. vocab_size + 3`.
pub fn id_bits(vocab_size: u32) -> u32 {
    let max_id = vocab_size as u64 + 2;
    (64 - max_id.leading_zeros()).max(1)
}

/// Check that `order` n-grams of a `vocab_size` vocabulary pack into 128 bits.
pub fn check_packable(order: usize, vocab_size: u32) -> Result<u32> {
    if order < 1 {
        return Err(CoreError::invalid("order", format!("must be >= 1, got {order}")));
    }
    let bits = id_bits(vocab_size);
    if order as u64 * bits as u64 > 128 {
        return Err(CoreError::limit(
            "order * bits per id",
            128,
            format!(
                "order {order} with {bits}-bit ids (vocab_size={vocab_size}) does not pack into 128 bits"
            ),
        ));
    }
    Ok(bits)
}

/// Mask of the low `n` ids of a key.
#[inline]
pub fn low_mask(n: usize, bits: u32) -> u128 {
    let b = n as u32 * bits;
    if b >= 128 {
        u128::MAX
    } else {
        (1u128 << b) - 1
    }
}

/// Id at position `i` (0 = first) of an `n`-gram key.
#[inline]
pub fn key_id(key: u128, n: usize, i: usize, bits: u32) -> u32 {
    let shift = (n - 1 - i) as u32 * bits;
    ((key >> shift) & ((1u128 << bits) - 1)) as u32
}

/// Pack ids into a key (first id highest).
#[inline]
pub fn pack(ids: &[u32], bits: u32) -> u128 {
    ids.iter().fold(0u128, |k, &x| (k << bits) | x as u128)
}

/// Unpack an `n`-gram key into `out[..n]`.
#[inline]
pub fn unpack(key: u128, n: usize, bits: u32, out: &mut [u32]) {
    for (i, o) in out.iter_mut().enumerate().take(n) {
        *o = key_id(key, n, i, bits);
    }
}

/// Sorted distinct keys with their counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    pub keys: Vec<u128>,
    pub counts: Vec<u64>,
}

impl Run {
    /// Run-length encode already sorted keys.
    pub fn from_sorted(keys: &[u128]) -> Run {
        let mut out = Run::default();
        for &k in keys {
            match out.keys.last() {
                Some(&last) if last == k => {
                    if let Some(c) = out.counts.last_mut() {
                        *c += 1;
                    }
                }
                _ => {
                    out.keys.push(k);
                    out.counts.push(1);
                }
            }
        }
        out
    }

    /// Merge two sorted runs, adding the counts of equal keys.
    pub fn merge(a: &Run, b: &Run) -> Run {
        let mut out = Run {
            keys: Vec::with_capacity(a.keys.len() + b.keys.len()),
            counts: Vec::with_capacity(a.keys.len() + b.keys.len()),
        };
        let (mut i, mut j) = (0, 0);
        while i < a.keys.len() && j < b.keys.len() {
            let (ka, kb) = (a.keys[i], b.keys[j]);
            if ka < kb {
                out.keys.push(ka);
                out.counts.push(a.counts[i]);
                i += 1;
            } else if kb < ka {
                out.keys.push(kb);
                out.counts.push(b.counts[j]);
                j += 1;
            } else {
                out.keys.push(ka);
                out.counts.push(a.counts[i] + b.counts[j]);
                i += 1;
                j += 1;
            }
        }
        out.keys.extend_from_slice(&a.keys[i..]);
        out.counts.extend_from_slice(&a.counts[i..]);
        out.keys.extend_from_slice(&b.keys[j..]);
        out.counts.extend_from_slice(&b.counts[j..]);
        out
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// N-gram counts of orders `1..=order` over sentences padded with `<s>`/`</s>`. Mergeable: counting
/// shards separately and merging gives the counts of the whole corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NGramCounts {
    order: usize,
    vocab_size: u32,
    bits: u32,
    levels: Vec<Run>,
    tokens: u64,
    sentences: u64,
}

impl NGramCounts {
    /// Count orders `1..=order` of `sentences` given as a flat id array and `offsets` (length S+1,
    /// non-decreasing, `offsets[S] == tokens.len()`). Ids must be `< vocab_size`, or `vocab_size`
    /// itself (`<unk>`). At most `chunk` stream positions (about that many tokens) are sorted at once.
    pub fn count(
        tokens: &[u32],
        offsets: &[usize],
        order: usize,
        vocab_size: u32,
        chunk: usize,
    ) -> Result<NGramCounts> {
        let bits = check_packable(order, vocab_size)?;
        let sp = Specials::new(vocab_size)?;
        check_offsets(offsets, tokens.len())?;
        if let Some((i, &x)) = tokens.par_iter().enumerate().find_any(|(_, &x)| x > sp.unk) {
            return Err(CoreError::out_of_range(
                "sentences",
                x,
                format!("token at flat position {i}: ids must lie in [0, vocab_size={vocab_size}] (vocab_size is <unk>)"),
            ));
        }
        let sentences = offsets.len().saturating_sub(1);
        let levels = count_pieces(tokens, offsets, order, bits, sp, chunk.max(1));
        Ok(NGramCounts {
            order,
            vocab_size,
            bits,
            levels,
            tokens: tokens.len() as u64,
            sentences: sentences as u64,
        })
    }

    /// Build from already counted levels (used by tests and deserialisation).
    pub fn from_levels(
        order: usize,
        vocab_size: u32,
        levels: Vec<Run>,
        tokens: u64,
        sentences: u64,
    ) -> Result<Self> {
        let bits = check_packable(order, vocab_size)?;
        if levels.len() != order {
            return Err(CoreError::invalid("levels", format!("need {order} levels, got {}", levels.len())));
        }
        Ok(NGramCounts { order, vocab_size, bits, levels, tokens, sentences })
    }

    /// Sum of two countings of the same order and vocabulary (e.g. two shards of a corpus).
    pub fn merge(&self, other: &NGramCounts) -> Result<NGramCounts> {
        if self.order != other.order {
            return Err(CoreError::invalid(
                "other",
                format!("order differs ({} vs {})", self.order, other.order),
            ));
        }
        if self.vocab_size != other.vocab_size {
            return Err(CoreError::invalid(
                "other",
                format!("vocab_size differs ({} vs {})", self.vocab_size, other.vocab_size),
            ));
        }
        let levels =
            self.levels.par_iter().zip(other.levels.par_iter()).map(|(a, b)| Run::merge(a, b)).collect();
        Ok(NGramCounts {
            order: self.order,
            vocab_size: self.vocab_size,
            bits: self.bits,
            levels,
            tokens: self.tokens + other.tokens,
            sentences: self.sentences + other.sentences,
        })
    }

    /// Highest order counted.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of user token ids (specials come after).
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// Bits per id in the packed keys.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Tokens counted (without `<s>`/`</s>`).
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Sentences counted.
    pub fn sentences(&self) -> u64 {
        self.sentences
    }

    /// Sorted distinct `n`-grams (packed) and their counts; `n` in `1..=order`.
    pub fn level(&self, n: usize) -> Result<&Run> {
        if n < 1 || n > self.order {
            return Err(CoreError::out_of_range("n", n as i128, format!("must lie in [1, {}]", self.order)));
        }
        Ok(&self.levels[n - 1])
    }

    /// The `n`-grams as a flat row-major id array (`len * n`) plus their counts.
    pub fn ngrams(&self, n: usize) -> Result<(Vec<u32>, Vec<u64>)> {
        let run = self.level(n)?;
        let mut ids = vec![0u32; run.len() * n];
        ids.par_chunks_mut(n.max(1))
            .zip(run.keys.par_iter())
            .for_each(|(out, &k)| unpack(k, n, self.bits, out));
        Ok((ids, run.counts.clone()))
    }
}

/// Validate sentence offsets against the token count.
pub fn check_offsets(offsets: &[usize], len: usize) -> Result<()> {
    if offsets.is_empty() {
        return Err(CoreError::invalid("offsets", "must hold at least one entry (0)"));
    }
    if offsets[0] != 0 || offsets[offsets.len() - 1] != len {
        return Err(CoreError::invalid(
            "offsets",
            format!("must start at 0 and end at the token count {len}"),
        ));
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(CoreError::invalid("offsets", "must be non-decreasing"));
    }
    Ok(())
}

/// Bits of the top digit that splits keys into independent buckets: at most one id (so buckets hold
/// distinct first ids), and when it lets the rest fit in 64 bits, just enough for that.
fn top_bits(w: u32, bits: u32) -> u32 {
    const TOP: u32 = 11;
    const TOP_MAX: u32 = 12;
    let base = bits.min(TOP).min(w);
    if w > 64 + base && w - 64 <= bits.min(TOP_MAX) {
        w - 64
    } else {
        base
    }
}

/// Sentence-aligned pieces of at most `chunk` stream positions (one sentence at least), counted one
/// after another and merged like a binary counter, so at most O(log pieces) partial results are held.
fn count_pieces(
    tokens: &[u32],
    offsets: &[usize],
    order: usize,
    bits: u32,
    sp: Specials,
    chunk: usize,
) -> Vec<Run> {
    let sentences = offsets.len().saturating_sub(1);
    let mut stack: Vec<(u32, Vec<Run>)> = Vec::new();
    let mut s = 0;
    while s < sentences {
        let mut e = s;
        let mut len = 0;
        while e < sentences {
            let l = offsets[e + 1] - offsets[e] + 2;
            if e > s && len + l > chunk {
                break;
            }
            len += l;
            e += 1;
        }
        let stream = padded_stream(tokens, &offsets[s..=e], sp, order);
        let mut top = (0, count_stream(&stream, len, order, bits, sp.eos));
        while let Some((rank, _)) = stack.last() {
            if *rank != top.0 {
                break;
            }
            if let Some((rank, below)) = stack.pop() {
                top = (rank + 1, merge_levels(&below, &top.1));
            }
        }
        stack.push(top);
        s = e;
    }
    let mut acc: Option<Vec<Run>> = None;
    while let Some((_, lv)) = stack.pop() {
        acc = Some(match acc {
            None => lv,
            Some(a) => merge_levels(&lv, &a),
        });
    }
    acc.unwrap_or_else(|| vec![Run::default(); order])
}

fn merge_levels(a: &[Run], b: &[Run]) -> Vec<Run> {
    a.par_iter().zip(b.par_iter()).map(|(x, y)| Run::merge(x, y)).collect()
}

/// `<s> w1 .. wk </s>` for every sentence of `offsets`, then `order` zeros so that every position
/// starts a full window (what follows a `</s>` inside a window is never read as part of an n-gram).
fn padded_stream(tokens: &[u32], offsets: &[usize], sp: Specials, order: usize) -> Vec<u32> {
    let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
    let mut stream = Vec::with_capacity(last - first + 2 * (offsets.len() - 1) + order);
    for w in offsets.windows(2) {
        stream.push(sp.bos);
        stream.extend_from_slice(&tokens[w[0]..w[1]]);
        stream.push(sp.eos);
    }
    stream.resize(stream.len() + order, 0);
    stream
}

/// The low `b` bits set.
#[inline]
fn low_bits(b: u32) -> u128 {
    if b >= 128 {
        u128::MAX
    } else {
        (1u128 << b) - 1
    }
}

/// Count every order of the first `positions` positions of a padded stream with one sort.
///
/// Position `p` is keyed by its maximal window `stream[p .. p + order]` packed first id highest, so
/// the keys sorted once list every order's n-grams in lexicographic order: the `k`-grams are the runs
/// of equal top `k` ids, among keys with no `</s>` in their first `k - 1` ids (a `k`-gram reaching past
/// its sentence holds a `</s>` before its last id, and so does every key sharing its top `k` ids).
fn count_stream(stream: &[u32], positions: usize, order: usize, bits: u32, eos: u32) -> Vec<Run> {
    let w = order as u32 * bits;
    let top = top_bits(w, bits);
    if w - top <= 64 {
        count_sorted::<u64>(stream, positions, order, bits, eos, top)
    } else {
        count_sorted::<u128>(stream, positions, order, bits, eos, top)
    }
}

fn count_sorted<K: RadixKey>(
    stream: &[u32],
    positions: usize,
    order: usize,
    bits: u32,
    eos: u32,
    top: u32,
) -> Vec<Run> {
    let w = order as u32 * bits;
    let r = w - top;
    let nb = 1usize << top;
    let (mask_w, mask_r) = (low_bits(w), low_bits(r));
    let parts = (2 * rayon::current_num_threads()).min(positions / 4096 + 1).max(1);
    let step = positions.div_ceil(parts);
    let ranges: Vec<(usize, usize)> =
        (0..parts).map(|i| (i * step, ((i + 1) * step).min(positions))).collect();
    // key at p = pack(stream[p .. p + order]); the next one shifts in stream[p + order]
    let first_key = |p: usize| pack(&stream[p..p + order], bits);

    // 1. histograms of the top digit, per part
    let hists: Vec<Vec<usize>> = ranges
        .par_iter()
        .map(|&(s, e)| {
            let mut h = vec![0usize; nb];
            if s < e {
                let mut key = first_key(s);
                for &next in &stream[s + order..e + order] {
                    h[(key >> r) as usize] += 1;
                    key = ((key << bits) | next as u128) & mask_w;
                }
            }
            h
        })
        .collect();

    // 2. scatter the low `r` bits into buckets (part c of bucket b at its own disjoint slice)
    let mut sorted: Vec<K> = vec![K::default(); positions];
    let mut bucket_len = vec![0usize; nb];
    {
        let mut dst: Vec<Vec<&mut [K]>> = (0..parts).map(|_| Vec::with_capacity(nb)).collect();
        let mut rest: &mut [K] = &mut sorted;
        for (b, len) in bucket_len.iter_mut().enumerate() {
            for (d, h) in dst.iter_mut().zip(&hists) {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(h[b]);
                d.push(head);
                rest = tail;
                *len += h[b];
            }
        }
        ranges.par_iter().zip(dst.into_par_iter()).for_each(|(&(s, e), mut d)| {
            let mut at = vec![0usize; nb];
            if s < e {
                let mut key = first_key(s);
                for &next in &stream[s + order..e + order] {
                    let b = (key >> r) as usize;
                    d[b][at[b]] = K::from_wide(key & mask_r);
                    at[b] += 1;
                    key = ((key << bits) | next as u128) & mask_w;
                }
            }
        });
    }

    // 3. sort each bucket and count its distinct n-grams per order
    let mut buckets: Vec<&mut [K]> = Vec::with_capacity(nb);
    let mut rest: &mut [K] = &mut sorted;
    for &len in &bucket_len {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        buckets.push(head);
        rest = tail;
    }
    buckets.par_iter_mut().for_each_init(Scratch::default, |scratch, keys| msd_sort(keys, r, scratch));
    let distinct: Vec<Vec<usize>> = buckets
        .par_iter()
        .enumerate()
        .map(|(b, keys)| {
            // table[m][v]: keys continuing orders 1..=m and valid for orders 1..=v (new runs m+1..=v)
            let side = order + 1;
            let mut table = vec![0usize; side * side];
            scan_runs(keys, (b as u128) << r, order, bits, eos, |_, lcp, valid| {
                table[lcp.min(valid) * side + valid] += 1;
            });
            let mut n = vec![0usize; order];
            for m in 0..side {
                for v in m + 1..side {
                    let c = table[m * side + v];
                    for x in &mut n[m..v] {
                        *x += c;
                    }
                }
            }
            n
        })
        .collect();

    // 4. write each bucket's runs into its slice of every order's output
    let mut levels: Vec<Run> = (0..order)
        .map(|k| {
            let t = distinct.iter().map(|d| d[k]).sum();
            Run { keys: vec![0u128; t], counts: vec![0u64; t] }
        })
        .collect();
    let mut sinks: Vec<Vec<(&mut [u128], &mut [u64])>> = (0..nb).map(|_| Vec::with_capacity(order)).collect();
    for (k, lv) in levels.iter_mut().enumerate() {
        let (mut ks, mut cs): (&mut [u128], &mut [u64]) = (&mut lv.keys, &mut lv.counts);
        for (sink, d) in sinks.iter_mut().zip(&distinct) {
            let (kh, kt) = std::mem::take(&mut ks).split_at_mut(d[k]);
            let (ch, ct) = std::mem::take(&mut cs).split_at_mut(d[k]);
            sink.push((kh, ch));
            ks = kt;
            cs = ct;
        }
    }
    buckets.par_iter().zip(sinks.into_par_iter()).enumerate().for_each(|(b, (keys, mut sink))| {
        let mut at = vec![0usize; order];
        scan_runs(keys, (b as u128) << r, order, bits, eos, |key, lcp, valid| {
            let m = lcp.min(valid);
            for ((_, cs), &i) in sink[..m].iter_mut().zip(&at[..m]) {
                if let Some(c) = cs.get_mut(i.wrapping_sub(1)) {
                    *c += 1;
                }
            }
            for (k, ((ks, cs), i)) in sink.iter_mut().zip(at.iter_mut()).enumerate().take(valid).skip(lcp) {
                if let (Some(x), Some(c)) = (ks.get_mut(*i), cs.get_mut(*i)) {
                    *x = key >> ((order - 1 - k) as u32 * bits);
                    *c = 1;
                }
                *i += 1;
            }
        });
    });
    levels
}

/// Walk the sorted low key parts of one bucket (top part `hi`) and call `f(key, lcp, valid)` for each:
/// the key shares its top `lcp` ids with the previous key (0 for the first), and its window is an
/// n-gram of orders `1..=valid` (up to and including its first `</s>`). So its `k`-gram continues the
/// previous key's run for `k <= min(lcp, valid)` and starts a new run for `lcp < k <= valid`.
#[inline]
fn scan_runs<K: RadixKey>(
    keys: &[K],
    hi: u128,
    order: usize,
    bits: u32,
    eos: u32,
    mut f: impl FnMut(u128, usize, usize),
) {
    let w = order as u32 * bits;
    // SWAR search for `</s>` in the fields (ids) of a key: `ones` has the low bit of every field
    let ones = (0..order).fold(0u128, |o, _| (o << bits) | 1);
    let high = ones << (bits - 1);
    let rest = high - ones;
    let pattern = ones * eos as u128;
    let not_last = low_bits(w) & !low_bits(bits);
    let mut prev: Option<u128> = None;
    for &lo in keys {
        let key = hi | lo.wide();
        let lcp = match prev {
            None => 0,
            Some(p) if p == key => order,
            Some(p) => ((p ^ key).leading_zeros() - (128 - w)) as usize / bits as usize,
        };
        prev = Some(key);
        let t = key ^ pattern;
        // top bit of each field set iff that field is not `</s>`; the last field never limits
        let nonzero = ((t & rest).wrapping_add(rest) | t) & high;
        let is_eos = !nonzero & high & not_last;
        let valid =
            if is_eos == 0 { order } else { ((is_eos.leading_zeros() - (128 - w)) / bits) as usize + 1 };
        f(key, lcp, valid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn brute(sents: &[Vec<u32>], order: usize, v: u32) -> Vec<HashMap<Vec<u32>, u64>> {
        let sp = Specials::new(v).unwrap();
        let mut out = vec![HashMap::new(); order];
        for s in sents {
            let mut t = vec![sp.bos];
            t.extend(s);
            t.push(sp.eos);
            for n in 1..=order {
                for w in t.windows(n) {
                    *out[n - 1].entry(w.to_vec()).or_insert(0) += 1;
                }
            }
        }
        out
    }

    fn flat(sents: &[Vec<u32>]) -> (Vec<u32>, Vec<usize>) {
        let mut off = vec![0];
        let mut toks = vec![];
        for s in sents {
            toks.extend(s);
            off.push(toks.len());
        }
        (toks, off)
    }

    proptest::proptest! {
        #[test]
        fn counts_match_brute_force(sents in proptest::collection::vec(proptest::collection::vec(0u32..6, 0..9), 0..7),
                                    order in 1usize..5, chunk in 1usize..7, wide in proptest::bool::ANY) {
            // a large vocabulary makes order >= 4 use 128-bit keys
            let v = if wide { 1 << 20 } else { 6 };
            let (toks, off) = flat(&sents);
            let c = NGramCounts::count(&toks, &off, order, v, chunk).unwrap();
            let want = brute(&sents, order, v);
            for n in 1..=order {
                let (ids, counts) = c.ngrams(n).unwrap();
                let got: HashMap<Vec<u32>, u64> = ids.chunks(n).map(|x| x.to_vec()).zip(counts).collect();
                proptest::prop_assert_eq!(&got, &want[n - 1]);
            }
            // merging two halves equals counting the whole
            let h = sents.len() / 2;
            let (t1, o1) = flat(&sents[..h]);
            let (t2, o2) = flat(&sents[h..]);
            let a = NGramCounts::count(&t1, &o1, order, v, chunk).unwrap();
            let b = NGramCounts::count(&t2, &o2, order, v, chunk).unwrap();
            proptest::prop_assert_eq!(a.merge(&b).unwrap(), c);
        }
    }

    #[test]
    fn narrow_and_wide_keys_agree() {
        // a long stream: 64-bit bucket keys (V=40) against 128-bit ones (V=2^30), and several pieces
        let toks: Vec<u32> = (0..20_000u32).map(|i| (i * 7919) % 301 % 37).collect();
        let offs: Vec<usize> = (0..=400).map(|i| i * 50).collect();
        let narrow = NGramCounts::count(&toks, &offs, 3, 40, 3000).unwrap();
        let wide = NGramCounts::count(&toks, &offs, 3, 1 << 30, 3000).unwrap();
        for n in 1..=3 {
            let (a, ca) = narrow.ngrams(n).unwrap();
            let (b, cb) = wide.ngrams(n).unwrap();
            let sp_n = Specials::new(40).unwrap();
            let sp_w = Specials::new(1 << 30).unwrap();
            let remap = |x: u32| {
                if x == sp_w.bos {
                    sp_n.bos
                } else if x == sp_w.eos {
                    sp_n.eos
                } else {
                    x
                }
            };
            let b: Vec<u32> = b.into_iter().map(remap).collect();
            let mut pa: Vec<(Vec<u32>, u64)> = a.chunks(n).map(|c| c.to_vec()).zip(ca).collect();
            let mut pb: Vec<(Vec<u32>, u64)> = b.chunks(n).map(|c| c.to_vec()).zip(cb).collect();
            pa.sort();
            pb.sort();
            assert_eq!(pa, pb);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(NGramCounts::count(&[7], &[0, 1], 2, 6, 4).is_err());
        assert!(NGramCounts::count(&[1], &[0, 1], 0, 6, 4).is_err());
        assert!(NGramCounts::count(&[1], &[0, 2], 2, 6, 4).is_err());
        assert!(NGramCounts::count(&[1], &[0, 1], 40, 6, 4).is_err());
    }
}
