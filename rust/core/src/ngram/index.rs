//! N-gram overlap index for decontamination: which n-grams (default 13 words, as in GPT-3's and
//! later benchmark-contamination studies) of a document also occur in a reference set.
//!
//! Text is normalized in one pass (lowercase; words are maximal runs of alphanumeric characters, so
//! punctuation and whitespace separate words), or split on whitespace only. ASCII is classified 8 bytes
//! at a time (SWAR) and each word is hashed to 64 bits straight from the text; n-gram hashes roll in
//! O(1) per position (polynomial hash mod 2^64 of the word hashes, then `fmix64`). The reference set is
//! a hash map from n-gram hash to the reference ids, fronted by a blocked Bloom filter (one u64 read per
//! lookup) so that the common miss does not probe the map.
//! Time O(bytes) to build and scan; memory ~20 bytes per distinct reference n-gram in the map plus 2-4
//! in the filter (~24 in all). Two distinct n-grams collide with probability ~2^-64 per pair.

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

/// The high bit of every byte of a u64 (SWAR byte masks keep their flags there).
const HIGHS: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;
/// Lowercases every ASCII letter of an 8-byte chunk of alphanumerics (digits already have bit 5 set).
const LOWER8: u64 = 0x2020_2020_2020_2020;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

/// Flags (high bit of each byte) of the bytes of `x`, all below 128, that lie in `lo..=hi`.
#[inline]
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    (x.wrapping_add(ONES * (0x80 - lo as u64)) & !x.wrapping_add(ONES * (0x7F - hi as u64))) & HIGHS
}

/// Flags of the ASCII word bytes of an 8-byte chunk: alphanumerics when normalizing, else everything but
/// the six ASCII characters for which `char::is_whitespace` holds. Bytes >= 128 are never flagged.
#[inline]
const fn word_bytes(v: u64, normalize: bool) -> u64 {
    let x = v & !HIGHS;
    let flags = if normalize {
        in_range(x, b'0', b'9') | in_range(x | LOWER8, b'a', b'z')
    } else {
        !(in_range(x, b'\t', b'\r') | in_range(x, b' ', b' ')) & HIGHS
    };
    flags & !v
}

/// The 8 bytes at `i` (little-endian); past the end of `b` they read as spaces, a separator in both modes.
#[inline]
fn load8(b: &[u8], i: usize) -> u64 {
    if let Some(s) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        return u64::from_le_bytes(a);
    }
    let rest = b.len().saturating_sub(i);
    let spaces = LOWER8 & !low_bytes(rest);
    if rest == 0 {
        return spaces;
    }
    if let Some(s) = b.get(b.len().wrapping_sub(8)..) {
        // The last 8 bytes of `b`, shifted down to start at `i` (no variable-length copy).
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        return (u64::from_le_bytes(a) >> (8 * (8 - rest))) | spaces;
    }
    b[i..].iter().rev().fold(0u64, |x, &c| (x << 8) | c as u64) | spaces
}

#[inline]
fn low_bytes(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

#[inline]
fn hash_step(h: u64, chunk: u64) -> u64 {
    (h ^ chunk).wrapping_mul(WK).rotate_left(29)
}

/// Hash of the word `bytes[start..end]`, each 8-byte chunk OR-ed with `or` (`LOWER8` lowercases an ASCII
/// alphanumeric word in place), so it equals [`word_hash`] of the lowercased bytes. Up to 8 bytes a word
/// is one bijective step, so short words of equal length never collide.
#[inline]
fn slice_hash(bytes: &[u8], start: usize, end: usize, or: u64) -> u64 {
    let mut h = (end - start) as u64 ^ SEED;
    let mut i = start;
    while i + 8 < end {
        h = hash_step(h, load8(bytes, i) | or);
        i += 8;
    }
    fmix64(hash_step(h, (load8(bytes, i) | or) & low_bytes(end - i)))
}

/// Hash of a word from its bytes (lowercased when normalizing): the word hash of [`words`].
pub fn word_hash(w: &[u8]) -> u64 {
    slice_hash(w, 0, w.len(), 0)
}

#[inline]
fn is_word_char(c: char, normalize: bool) -> bool {
    if normalize {
        c.is_alphanumeric()
    } else {
        !c.is_whitespace()
    }
}

/// Split `text` into words with character spans. `normalize`: lowercase and keep alphanumeric runs only;
/// otherwise words are the whitespace-separated pieces, unchanged. A word's hash is [`word_hash`] of
/// its (lowercased) UTF-8 bytes.
///
/// ASCII is classified 8 bytes at a time (SWAR range tests; run ends found by trailing-zero counts), and
/// a word of ASCII bytes is hashed straight from the text (lowercased by one OR per 8 bytes). A word
/// holding other characters is decoded, classified by `char` methods and lowercased by
/// `char::to_lowercase`. Spans count characters, not bytes.
pub fn words(text: &str, normalize: bool) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    for_each_word(text, normalize, |w| out.push(w));
    out
}

fn for_each_word(text: &str, normalize: bool, mut emit: impl FnMut(Word)) {
    let b = text.as_bytes();
    let or = if normalize { LOWER8 } else { 0 };
    let mut lowered: Vec<u8> = Vec::new();
    let (mut i, mut pos) = (0usize, 0u64); // byte index (always at a char boundary), char index
    while i < b.len() {
        let v = load8(b, i);
        let wb = word_bytes(v, normalize);
        let high = v & HIGHS;
        if wb & 0x80 != 0 {
            // An ASCII word byte at i. Common case: the word ends inside these 8 bytes at an ASCII
            // separator; hash it from `v` and jump to the next non-separator seen in `v`, if any.
            let stop = !wb & HIGHS;
            let len = (stop.trailing_zeros() / 8) as usize;
            if len < 8 {
                if high & (0x80 << (8 * len)) == 0 {
                    let hash = fmix64(hash_step(len as u64 ^ SEED, (v | or) & low_bytes(len)));
                    emit(Word { hash, start: pos, end: pos + len as u64 });
                    let next = (wb | high) & !low_bytes(len);
                    let k = if next == 0 { 8 } else { (next.trailing_zeros() / 8) as usize };
                    i += k;
                    pos += k as u64;
                    continue;
                }
            } else {
                // A longer ASCII run: its end is the first byte that is not an ASCII word byte.
                let mut j = i + 8;
                loop {
                    let stop = !word_bytes(load8(b, j), normalize) & HIGHS;
                    if stop != 0 {
                        j += (stop.trailing_zeros() / 8) as usize;
                        break;
                    }
                    j += 8;
                }
                let j = j.min(b.len());
                if j == b.len() || b[j] < 128 {
                    let end = pos + (j - i) as u64;
                    emit(Word { hash: slice_hash(b, i, j, or), start: pos, end });
                    (i, pos) = (j, end);
                    continue;
                }
            }
        } else if high & 0x80 != 0 {
            let ch = text.get(i..).and_then(|t| t.chars().next()).unwrap_or(char::REPLACEMENT_CHARACTER);
            if !is_word_char(ch, normalize) {
                i += ch.len_utf8();
                pos += 1;
                continue;
            }
        } else {
            // ASCII separators: skip to the next byte that is not one (8 bytes at a time).
            let other = (wb | high) >> 7;
            let k = if other == 0 { 8 } else { (other.trailing_zeros() / 8) as usize };
            i += k;
            pos += k as u64;
            continue;
        }
        // A word with a multi-byte character: walk it char by char from its start.
        let (start_byte, start) = (i, pos);
        lowered.clear();
        for ch in text.get(i..).unwrap_or("").chars() {
            if !is_word_char(ch, normalize) {
                break;
            }
            if normalize {
                for l in ch.to_lowercase() {
                    let mut enc = [0u8; 4];
                    lowered.extend_from_slice(l.encode_utf8(&mut enc).as_bytes());
                }
            }
            i += ch.len_utf8();
            pos += 1;
        }
        let hash = if normalize { word_hash(&lowered) } else { word_hash(&b[start_byte..i]) };
        emit(Word { hash, start, end: pos });
    }
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

/// Blocked Bloom filter over reference n-gram hashes, checked before the hash map so that the common
/// miss reads one 8-byte word: a hash picks one u64 block (multiply-shift of its top bits) and sets
/// [`Filter::K`] bits in it (6-bit fields of its low bits). Sized at 32 bits per n-gram and rebuilt at
/// twice the size once it falls below 16, so it takes 2-4 bytes per n-gram; false positives ~0.1-1 %,
/// never false negatives.
#[derive(Clone, Debug)]
struct Filter {
    blocks: Vec<u64>,
}

impl Filter {
    const K: u32 = 4;
    const MIN_BITS: usize = 16;

    fn with_capacity(ngrams: usize) -> Self {
        Filter { blocks: vec![0; (ngrams.saturating_mul(2 * Self::MIN_BITS) / 64).max(1)] }
    }

    #[inline]
    fn slot(&self, h: u64) -> (usize, u64) {
        let block = ((h as u128 * self.blocks.len() as u128) >> 64) as usize;
        let mut bits = 0u64;
        for k in 0..Self::K {
            bits |= 1u64 << ((h >> (6 * k)) & 63);
        }
        (block, bits)
    }

    fn insert(&mut self, h: u64) {
        let (b, bits) = self.slot(h);
        self.blocks[b] |= bits;
    }

    #[inline]
    fn may_contain(&self, h: u64) -> bool {
        let (b, bits) = self.slot(h);
        self.blocks[b] & bits == bits
    }

    /// Whether `ngrams` n-grams leave fewer than `MIN_BITS` bits each.
    fn too_full(&self, ngrams: usize) -> bool {
        ngrams.saturating_mul(Self::MIN_BITS) > self.blocks.len() * 64
    }

    fn bytes(&self) -> usize {
        self.blocks.len() * 8
    }
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
    filter: Filter,
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
        Ok(NGramIndex {
            n,
            normalize,
            first: IdMap::default(),
            more: IdMap::default(),
            filter: Filter::with_capacity(0),
            docs: 0,
        })
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

    /// Bytes of the n-gram filter (2-4 per distinct n-gram once there are more than a few).
    pub fn filter_bytes(&self) -> usize {
        self.filter.bytes()
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
                self.filter.insert(h);
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
        if self.filter.too_full(self.first.len()) {
            self.filter = Filter::with_capacity(self.first.len());
            for &h in self.first.keys() {
                self.filter.insert(h);
            }
        }
        self.docs += docs.len() as u64;
        Ok(())
    }

    /// Overlap of one document: roll the n-gram hashes over its words and look each up (filter first).
    pub fn scan_one(&self, d: &Doc<'_>, spans: bool) -> DocScan {
        let ws = self.doc_words(d);
        let n = self.n;
        let mut out = DocScan::default();
        if ws.len() < n {
            return out;
        }
        out.total = (ws.len() - n + 1) as u64;
        if self.first.is_empty() {
            return out;
        }
        let pn = (1..n).fold(1u64, |a, _| a.wrapping_mul(P));
        let mut h = ws[..n].iter().fold(0u64, |a, w| a.wrapping_mul(P).wrapping_add(w.hash));
        for i in 0..ws.len() - n + 1 {
            if i > 0 {
                h = h
                    .wrapping_sub(ws[i - 1].hash.wrapping_mul(pn))
                    .wrapping_mul(P)
                    .wrapping_add(ws[i + n - 1].hash);
            }
            let f = fmix64(h);
            if !self.filter.may_contain(f) {
                continue;
            }
            let Some(&first) = self.first.get(&f) else { continue };
            out.overlap += 1;
            out.refs.push(first);
            if let Some(m) = self.more.get(&f) {
                out.refs.extend_from_slice(m);
            }
            if spans {
                let (s, e) = (ws[i].start, ws[i + n - 1].end);
                match out.spans.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => out.spans.push((s, e)),
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
    use std::collections::{BTreeSet, HashSet};

    use proptest::prelude::*;

    use super::*;

    /// Oracle: words as (lowercased string, char start, char end), one char at a time.
    fn oracle_words(text: &str, normalize: bool) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut cur: Option<(String, u64)> = None;
        let mut n = 0u64;
        for (k, c) in text.chars().enumerate() {
            let k = k as u64;
            if is_word_char(c, normalize) {
                let (w, _) = cur.get_or_insert_with(|| (String::new(), k));
                if normalize {
                    w.extend(c.to_lowercase());
                } else {
                    w.push(c);
                }
            } else if let Some((w, s)) = cur.take() {
                out.push((w, s, k));
            }
            n = k + 1;
        }
        if let Some((w, s)) = cur {
            out.push((w, s, n));
        }
        out
    }

    /// Oracle: (overlap, total, sorted reference ids) of `doc` against `refs`, from string n-gram sets.
    fn oracle_scan(refs: &[&str], doc: &str, n: usize) -> (u64, u64, Vec<u32>) {
        let grams = |t: &str| -> Vec<Vec<String>> {
            let w: Vec<String> = oracle_words(t, true).into_iter().map(|x| x.0).collect();
            if w.len() < n {
                return Vec::new();
            }
            w.windows(n).map(|g| g.to_vec()).collect()
        };
        let sets: Vec<HashSet<Vec<String>>> = refs.iter().map(|r| grams(r).into_iter().collect()).collect();
        let d = grams(doc);
        let overlap = d.iter().filter(|g| sets.iter().any(|s| s.contains(*g))).count() as u64;
        let ids: BTreeSet<u32> =
            (0..refs.len() as u32).filter(|&j| d.iter().any(|g| sets[j as usize].contains(g))).collect();
        (overlap, d.len() as u64, ids.into_iter().collect())
    }

    /// Text with ASCII word bytes and separators, multi-byte letters (some that lowercase to ASCII or to
    /// two chars), non-letters and non-ASCII whitespace, in runs long enough to cross 8-byte chunks.
    fn text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "B",
            "z",
            "Z",
            "0",
            "9",
            "_",
            " ",
            "  ",
            "\t",
            "\n",
            "\x0b",
            ",",
            ".",
            "-",
            "\x1c",
            "\0",
            "\u{7f}",
            "é",
            "É",
            "ß",
            "\u{212a}",
            "\u{130}",
            "Σ",
            "’",
            "—",
            "\u{a0}",
            "\u{2003}",
            "\u{85}",
            "日本",
            "abcdefgh",
            "ABCDEFGHIJKLMNOPQ",
            "0123456789",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn words_match_the_oracle(t in text(), normalize in any::<bool>()) {
            let got = words(&t, normalize);
            let want = oracle_words(&t, normalize);
            prop_assert_eq!(got.len(), want.len());
            for (g, (w, s, e)) in got.iter().zip(&want) {
                prop_assert_eq!((g.start, g.end), (*s, *e));
                prop_assert_eq!(g.hash, word_hash(w.as_bytes()), "word {:?}", w);
            }
            prop_assert_eq!(normalized_strings(&t, normalize), want.into_iter().map(|x| x.0).collect::<Vec<_>>());
        }

        #[test]
        fn filter_has_no_false_negatives(hs in prop::collection::vec(any::<u64>(), 0..3000), cap in 0usize..500) {
            let mut f = Filter::with_capacity(cap);
            for &h in &hs {
                f.insert(h);
            }
            prop_assert!(hs.iter().all(|&h| f.may_contain(h)));
        }

        #[test]
        fn scan_matches_the_oracle(
            refs in prop::collection::vec("[ab ,É]{0,24}", 1..5),
            docs in prop::collection::vec("[ab ,É]{0,24}", 1..5),
            n in 1usize..4,
        ) {
            let mut idx = NGramIndex::new(n, true).unwrap();
            // Two batches, so the filter is also rebuilt between adds.
            let (r0, r1) = refs.split_at(refs.len() / 2);
            idx.add(&r0.iter().map(|t| Doc::Text(t)).collect::<Vec<_>>(), 0).unwrap();
            idx.add(&r1.iter().map(|t| Doc::Text(t)).collect::<Vec<_>>(), r0.len() as u32).unwrap();
            let refs: Vec<&str> = refs.iter().map(|s| s.as_str()).collect();
            for d in &docs {
                let r = idx.scan_one(&Doc::Text(d), true);
                prop_assert_eq!((r.overlap, r.total, r.refs), oracle_scan(&refs, d, n));
            }
        }
    }

    #[test]
    fn same_word_same_hash_on_every_path() {
        // Kelvin sign lowercases to ASCII 'k'; a word of 8 and of 9+ bytes; a word at the end of the text.
        let h = |t: &str| words(t, true).iter().map(|w| w.hash).collect::<Vec<_>>();
        assert_eq!(h("k \u{212a}"), vec![word_hash(b"k"); 2]);
        assert_eq!(h("abcdefgh, ABCDEFGH"), vec![word_hash(b"abcdefgh"); 2]);
        assert_eq!(h("Abcdefghijkl ABCDEFGHIJKL\u{e9}")[0], word_hash(b"abcdefghijkl"));
        assert_eq!(h("x ABCDEFGHIJKL")[1], word_hash(b"abcdefghijkl"));
        assert_ne!(word_hash(b"a"), word_hash(b"a\0"));
    }

    #[test]
    fn filter_takes_2_to_4_bytes_per_ngram() {
        let mut idx = NGramIndex::new(1, false).unwrap();
        for batch in 0..20u64 {
            let ids: Vec<u64> = (batch * 5000..(batch + 1) * 5000).collect();
            idx.add(&[Doc::Ids(&ids)], batch as u32).unwrap();
            let per = idx.filter_bytes() as f64 / idx.len() as f64;
            assert!((2.0..=4.0).contains(&per), "{per} bytes per n-gram at {}", idx.len());
        }
    }

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
