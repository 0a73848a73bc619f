//! Sort-based n-gram counting over packed keys.
//!
//! Every sentence is padded as `<s> w1 .. wk </s>` (one `<s>`, one `</s>`, as KenLM's `lmplz` does) and
//! every window of length `n` inside a padded sentence is an n-gram occurrence. An n-gram of ids is
//! packed into one `u128` key, first id in the high bits, so numeric order is lexicographic order and
//! the n-grams sharing a context are contiguous. Counting is memory-bounded: the stream is cut into
//! chunks of `chunk` windows, each chunk is sorted and run-length encoded on its own (rayon), and the
//! sorted runs are merged pairwise. Time O(T log C) per order for T tokens and chunk size C; memory
//! O(C · threads + distinct n-grams).

use rayon::prelude::*;

use crate::{CoreError, Result};

/// Default number of windows one counting task sorts at a time.
pub const DEFAULT_CHUNK: usize = 1 << 20;

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
    /// itself (`<unk>`).
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
        let mut stream = Vec::with_capacity(tokens.len() + 2 * sentences);
        for w in offsets.windows(2) {
            stream.push(sp.bos);
            stream.extend_from_slice(&tokens[w[0]..w[1]]);
            stream.push(sp.eos);
        }
        let chunk = chunk.max(1);
        let levels = (1..=order).map(|n| count_order(&stream, n, bits, sp.eos, chunk)).collect();
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

/// Count the windows of length `n` of the padded `stream` that stay inside one sentence (no `</s>`
/// before the window's last position).
fn count_order(stream: &[u32], n: usize, bits: u32, eos: u32, chunk: usize) -> Run {
    if stream.len() < n {
        return Run::default();
    }
    let ends = n - 1..stream.len();
    let starts: Vec<usize> = ends.clone().step_by(chunk).collect();
    starts
        .par_iter()
        .map(|&s| {
            let e = (s + chunk).min(stream.len());
            let mut keys = Vec::with_capacity(e - s);
            'win: for end in s..e {
                let win = &stream[end + 1 - n..=end];
                let mut k = 0u128;
                for (i, &x) in win.iter().enumerate() {
                    if x == eos && i + 1 < n {
                        continue 'win;
                    }
                    k = (k << bits) | x as u128;
                }
                keys.push(k);
            }
            keys.sort_unstable();
            Run::from_sorted(&keys)
        })
        .reduce(Run::default, |a, b| Run::merge(&a, &b))
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
                                    order in 1usize..5, chunk in 1usize..7) {
            let (toks, off) = flat(&sents);
            let c = NGramCounts::count(&toks, &off, order, 6, chunk).unwrap();
            let want = brute(&sents, order, 6);
            for n in 1..=order {
                let (ids, counts) = c.ngrams(n).unwrap();
                let got: HashMap<Vec<u32>, u64> = ids.chunks(n).map(|x| x.to_vec()).zip(counts).collect();
                proptest::prop_assert_eq!(&got, &want[n - 1]);
            }
            // merging two halves equals counting the whole
            let h = sents.len() / 2;
            let (t1, o1) = flat(&sents[..h]);
            let (t2, o2) = flat(&sents[h..]);
            let a = NGramCounts::count(&t1, &o1, order, 6, chunk).unwrap();
            let b = NGramCounts::count(&t2, &o2, order, 6, chunk).unwrap();
            proptest::prop_assert_eq!(a.merge(&b).unwrap(), c);
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
