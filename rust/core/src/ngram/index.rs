//! N-gram overlap index for decontamination: which n-grams (default 13 words, as in GPT-3's and
//! later benchmark-contamination studies) of a document also occur in a reference set.
//!
//! Text is normalized in one pass (lowercase; words are maximal runs of alphanumeric characters, so
//! punctuation and whitespace separate words), or split on whitespace only. Each word is hashed to 64
//! bits as it is read, n-gram hashes roll in O(1) per position (polynomial hash mod 2^64 of the word
//! hashes, then `fmix64`), and the reference set is a hash map from n-gram hash to the reference ids.
//! Time O(bytes) to build and scan; memory ~20 bytes per distinct reference n-gram. Two distinct
//! n-grams collide with probability ~2^-64 per pair.

use rayon::prelude::*;

use super::norepeat::IdMap;
use super::table::fmix64;
use crate::{CoreError, Result};

const P: u64 = 0x9E37_79B9_7F4A_7C15 | 1;
const WK: u64 = 0x517C_C1B7_2722_0A95;

/// A word of a normalized document: hash and character span `[start, end)` in the original text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub hash: u64,
    pub start: u64,
    pub end: u64,
}

#[inline]
fn mix_char(h: u64, c: u32) -> u64 {
    (h.rotate_left(5) ^ c as u64).wrapping_mul(WK)
}

/// Split `text` into words with character spans. `normalize`: lowercase and keep alphanumeric runs only;
/// otherwise words are the whitespace-separated pieces, unchanged.
pub fn words(text: &str, normalize: bool) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    let mut h = 0u64;
    let mut start = 0u64;
    let mut inside = false;
    let mut pos = 0u64;
    for c in text.chars() {
        let keep = if normalize { c.is_alphanumeric() } else { !c.is_whitespace() };
        if keep {
            if !inside {
                inside = true;
                start = pos;
                h = 0;
            }
            if normalize {
                if c.is_ascii() {
                    h = mix_char(h, c.to_ascii_lowercase() as u32);
                } else {
                    for l in c.to_lowercase() {
                        h = mix_char(h, l as u32);
                    }
                }
            } else {
                h = mix_char(h, c as u32);
            }
        } else if inside {
            inside = false;
            out.push(Word { hash: fmix64(h), start, end: pos });
        }
        pos += 1;
    }
    if inside {
        out.push(Word { hash: fmix64(h), start, end: pos });
    }
    out
}

/// The normalized words themselves (for inspection and tests).
pub fn normalized_strings(text: &str, normalize: bool) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    words(text, normalize)
        .iter()
        .map(|w| {
            let s: String = chars[w.start as usize..w.end as usize].iter().collect();
            if normalize {
                s.chars().flat_map(|c| c.to_lowercase()).collect()
            } else {
                s
            }
        })
        .collect()
}

fn id_words(ids: &[u64]) -> Vec<Word> {
    ids.iter()
        .enumerate()
        .map(|(i, &x)| Word { hash: fmix64(x ^ 0x5555_5555_5555_5555), start: i as u64, end: i as u64 + 1 })
        .collect()
}

/// Rolling n-gram hashes of a word sequence (one per start position).
fn ngram_hashes(ws: &[Word], n: usize) -> Vec<u64> {
    if ws.len() < n || n == 0 {
        return Vec::new();
    }
    let pn = (1..n).fold(1u64, |a, _| a.wrapping_mul(P));
    let mut h = ws[..n].iter().fold(0u64, |a, w| a.wrapping_mul(P).wrapping_add(w.hash));
    let mut out = Vec::with_capacity(ws.len() - n + 1);
    out.push(fmix64(h));
    for i in n..ws.len() {
        h = h.wrapping_sub(ws[i - n].hash.wrapping_mul(pn)).wrapping_mul(P).wrapping_add(ws[i].hash);
        out.push(fmix64(h));
    }
    out
}

/// Overlap of one document with the reference set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocScan {
    /// Number of the document's n-gram positions whose n-gram occurs in the reference.
    pub overlap: u64,
    /// Number of n-gram positions in the document.
    pub total: u64,
    /// Sorted ids of the reference documents sharing at least one n-gram.
    pub refs: Vec<u32>,
    /// Merged spans `[start, end)` covered by matched n-grams (characters for text, tokens for ids).
    pub spans: Vec<(u64, u64)>,
}

/// Reference n-gram set (see the module header).
#[derive(Clone, Debug)]
pub struct NGramIndex {
    n: usize,
    normalize: bool,
    first: IdMap<u32>,
    more: IdMap<Vec<u32>>,
    docs: u64,
}

/// A reference document: text or token ids.
pub enum Doc<'a> {
    Text(&'a str),
    Ids(&'a [u64]),
}

impl NGramIndex {
    /// Empty index of `n`-grams.
    pub fn new(n: usize, normalize: bool) -> Result<Self> {
        if n < 1 {
            return Err(CoreError::invalid("n", format!("must be >= 1, got {n}")));
        }
        Ok(NGramIndex { n, normalize, first: IdMap::default(), more: IdMap::default(), docs: 0 })
    }

    /// n-gram size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Whether text is normalized.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// Distinct reference n-grams.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// Whether no n-gram is indexed.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Reference documents added.
    pub fn num_docs(&self) -> u64 {
        self.docs
    }

    fn doc_words(&self, d: &Doc<'_>) -> Vec<Word> {
        match d {
            Doc::Text(t) => words(t, self.normalize),
            Doc::Ids(ids) => id_words(ids),
        }
    }

    /// Add a batch of reference documents with ids `first_id ..` (hashing in parallel).
    pub fn add(&mut self, docs: &[Doc<'_>], first_id: u32) -> Result<()> {
        if first_id as u64 + docs.len() as u64 > u32::MAX as u64 {
            return Err(CoreError::limit("reference documents", u32::MAX as u64, "too many"));
        }
        let hashes: Vec<Vec<u64>> =
            docs.par_iter().map(|d| ngram_hashes(&self.doc_words(d), self.n)).collect();
        for (i, hs) in hashes.into_iter().enumerate() {
            let id = first_id + i as u32;
            for h in hs {
                match self.first.get(&h) {
                    None => {
                        self.first.insert(h, id);
                    }
                    Some(&f) if f == id => {}
                    Some(_) => {
                        let v = self.more.entry(h).or_default();
                        if v.last() != Some(&id) {
                            v.push(id);
                        }
                    }
                }
            }
        }
        self.docs += docs.len() as u64;
        Ok(())
    }

    /// Overlap of one document.
    pub fn scan_one(&self, d: &Doc<'_>, spans: bool) -> DocScan {
        let ws = self.doc_words(d);
        let hs = ngram_hashes(&ws, self.n);
        let mut out = DocScan { total: hs.len() as u64, ..DocScan::default() };
        for (i, h) in hs.iter().enumerate() {
            if let Some(&f) = self.first.get(h) {
                out.overlap += 1;
                out.refs.push(f);
                if let Some(m) = self.more.get(h) {
                    out.refs.extend_from_slice(m);
                }
                if spans {
                    let (s, e) = (ws[i].start, ws[i + self.n - 1].end);
                    match out.spans.last_mut() {
                        Some(last) if s <= last.1 => last.1 = last.1.max(e),
                        _ => out.spans.push((s, e)),
                    }
                }
            }
        }
        out.refs.sort_unstable();
        out.refs.dedup();
        out
    }

    /// Scan a batch of documents in parallel.
    pub fn scan(&self, docs: &[Doc<'_>], spans: bool) -> Vec<DocScan> {
        docs.par_iter().with_min_len(4).map(|d| self.scan_one(d, spans)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_spans() {
        assert_eq!(
            normalized_strings("Hello, World! it's 2x-ÉTÉ", true),
            vec!["hello", "world", "it", "s", "2x", "été"]
        );
        assert_eq!(normalized_strings("  a,b  C ", false), vec!["a,b", "C"]);
        let mut idx = NGramIndex::new(2, true).unwrap();
        idx.add(&[Doc::Text("the quick brown fox"), Doc::Text("brown fox jumps")], 0).unwrap();
        let r = idx.scan_one(&Doc::Text("A QUICK brown, Fox!"), true);
        assert_eq!((r.overlap, r.total), (2, 3));
        assert_eq!(r.refs, vec![0, 1]);
        assert_eq!(r.spans, vec![(2, 18)]);
        let none = idx.scan_one(&Doc::Text("fox"), true);
        assert_eq!((none.overlap, none.total), (0, 0));
    }
}
