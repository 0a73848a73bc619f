//! [`ByteVocab`]: token id ↔ bytes with a sorted index (see the module header for complexities).

use crate::error::{CoreError, Result};

/// What a token id holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Ordinary token: its bytes match byte queries.
    Bytes = 0,
    /// No bytes (a gap in the id space); never matches.
    Missing = 1,
    /// Special/control token: keeps its bytes for display but never matches a byte query.
    Special = 2,
}

impl TokenKind {
    /// Kind from the stored flags (bit 0 missing, bit 1 special; special wins).
    fn from_u8(x: u8) -> Option<Self> {
        match x {
            0 => Some(TokenKind::Bytes),
            1 => Some(TokenKind::Missing),
            2 | 3 => Some(TokenKind::Special),
            _ => None,
        }
    }
}

/// Number of entries of the bucket table: bucket keys 0 ..= 65 793 (see [`bucket_key`]).
const N_BUCKETS: usize = 2 + 256 * 257 + 1;

/// Order-preserving key of a token's first two bytes: "" < "a" < "a\0" < ... < "a\xff" < "b" < ...
#[inline]
fn bucket_key(t: &[u8]) -> usize {
    match t.len() {
        0 => 0,
        1 => 1 + t[0] as usize * 257,
        _ => 2 + t[0] as usize * 257 + t[1] as usize,
    }
}

/// Serialization magic of [`ByteVocab::to_bytes`], version 1.
const MAGIC: &[u8; 8] = b"SFVOCAB1";

/// Token id ↔ bytes with a lexicographically sorted index.
///
/// Ordinary tokens are sorted by (bytes, id): the tokens whose bytes start with a prefix are one
/// contiguous range of [`ByteVocab::sorted_ids`], and within it the tokens equal to the prefix come
/// first. Missing and special ids follow all ordinary ones (ascending id), so `sorted_ids` is a
/// permutation of `0..len` while byte queries only ever return ordinary tokens.
///
/// Memory, for n tokens of B bytes in total: B + 4(n+1) (offsets) + 4n (sorted) + 4n (rank)
/// + 4n (key4) + n (kinds) + 4·65 794 (bucket table) bytes; see [`ByteVocab::index_bytes`].
#[derive(Debug, Clone)]
pub struct ByteVocab {
    /// Token bytes, concatenated in sorted order.
    sdata: Vec<u8>,
    /// `sdata[soff[r]..soff[r+1]]` are the bytes of the token at sorted position r.
    soff: Vec<u32>,
    /// Sorted position → id.
    sorted: Vec<u32>,
    /// Id → sorted position.
    rank: Vec<u32>,
    /// Id → flags: bit 0 missing (no bytes), bit 1 special; 0 = ordinary.
    kinds: Vec<u8>,
    /// Number of ordinary (matching) tokens: they occupy sorted positions `0..n_match`.
    n_match: usize,
    /// Longest ordinary token, in bytes.
    max_len: usize,
    /// `bucket[k]` = first sorted position whose bucket key is >= k (over ordinary tokens).
    bucket: Vec<u32>,
    /// Per ordinary sorted position: bytes 2..6 as a big-endian u32 (zero-padded), so the search
    /// inside a bucket runs over one contiguous array; non-decreasing along the sorted order.
    key4: Vec<u32>,
}

/// Sort item of the build: the bucket-local key, the id and the token length (which fills what
/// would be padding, so the pass after sorting needs no random reads of the offsets).
#[derive(Clone, Copy)]
struct SortItem {
    key: u64,
    id: u32,
    len: u32,
}

/// Big-endian u64 of `t[2..10]`, zero-padded (the high half is [`key4`]), for a token `t` of
/// `len` bytes whose first 16 bytes (anything after `len`) are `w`: one load and a mask instead
/// of a byte loop.
#[inline]
fn key8_masked(w: &[u8; 16], len: usize) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&w[2..10]);
    let keep = len.saturating_sub(2).min(8) as u32;
    // keep in 1..=8 shifts by 56..=0 bits; keep = 0 (a shift by 64) keeps nothing.
    let mask = if keep == 0 { 0 } else { u64::MAX << (64 - 8 * keep) };
    u64::from_be_bytes(k) & mask
}

/// Big-endian u32 of `t[2..6]`, zero-padded: `t < p` whenever `key4(t) < key4(p)` (same first 2 bytes).
#[inline]
fn key4(t: &[u8]) -> u32 {
    let mut k = [0u8; 4];
    if t.len() > 2 {
        let m = (t.len() - 2).min(4);
        k[..m].copy_from_slice(&t[2..2 + m]);
    }
    u32::from_be_bytes(k)
}

impl ByteVocab {
    /// Build from per-id tokens (`None` = missing id) and special ids.
    pub fn from_tokens<'a, I>(tokens: I, special_ids: &[u32]) -> Result<Self>
    where
        I: IntoIterator<Item = Option<&'a [u8]>>,
    {
        let mut data = Vec::new();
        let mut offsets = vec![0u64];
        let mut kinds = Vec::new();
        for t in tokens {
            match t {
                Some(b) => {
                    data.extend_from_slice(b);
                    kinds.push(TokenKind::Bytes as u8);
                }
                None => kinds.push(TokenKind::Missing as u8),
            }
            offsets.push(data.len() as u64);
        }
        Self::from_parts(data, &offsets, kinds, special_ids)
    }

    /// Build from the concatenated bytes in id order, `offsets` (len n+1, non-decreasing, from 0 to
    /// `data.len()`), kinds per id (0 ordinary, 1 missing; missing ids must have empty bytes) and
    /// special ids (marked special, bytes kept).
    pub fn from_parts(
        data: Vec<u8>,
        offsets: &[u64],
        mut kinds: Vec<u8>,
        special_ids: &[u32],
    ) -> Result<Self> {
        let n = kinds.len();
        if n == 0 {
            return Err(CoreError::invalid("tokens", "the vocabulary must not be empty"));
        }
        if n >= u32::MAX as usize {
            return Err(CoreError::limit("tokens", u32::MAX as u64 - 1, "too many tokens for 32-bit ids"));
        }
        if data.len() >= u32::MAX as usize {
            return Err(CoreError::limit(
                "tokens",
                u32::MAX as u64 - 1,
                "total token bytes must fit in 32-bit offsets",
            ));
        }
        if offsets.len() != n + 1 || offsets[0] != 0 || offsets[n] != data.len() as u64 {
            return Err(CoreError::invalid("offsets", "must have len n+1 and run from 0 to len(data)"));
        }
        for (i, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(CoreError::invalid("offsets", format!("decreasing at token {i}")));
            }
            if kinds[i] > 3 {
                return Err(CoreError::invalid("kinds", format!("unknown kind {} at {i}", kinds[i])));
            }
            if kinds[i] & 1 == 1 && w[1] != w[0] {
                return Err(CoreError::invalid("tokens", format!("missing token {i} has bytes")));
            }
        }
        for &s in special_ids {
            if s as usize >= n {
                return Err(CoreError::out_of_range(
                    "special_ids",
                    s,
                    format!("ids must lie in [0, {n}) for a vocabulary of {n} tokens"),
                ));
            }
            kinds[s as usize] |= TokenKind::Special as u8;
        }
        let tok = |i: u32| {
            let i = i as usize;
            &data[offsets[i] as usize..offsets[i + 1] as usize]
        };

        // Ordinary ids sorted by (bytes, id): one counting pass by two-byte bucket (which also gives
        // the bucket table), then each bucket sorted by (bytes 2..10 as a u64, id) and runs of equal
        // keys (tokens sharing 10 bytes, or zero-padding ties) fixed by full comparison.
        let mut counts = vec![0u32; N_BUCKETS + 1];
        for i in 0..n {
            if kinds[i] == TokenKind::Bytes as u8 {
                counts[bucket_key(tok(i as u32)) + 1] += 1;
            }
        }
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        let n_match = counts[N_BUCKETS] as usize;
        // The source carries BLOCK bytes of zero slack so that every token's first BLOCK bytes can
        // be read as one fixed-size block (keys below, the byte layout further down).
        const BLOCK: usize = 16;
        let total = data.len();
        let mut src = data;
        src.resize(total + BLOCK, 0);
        let mut fill = counts.clone();
        let mut pairs = vec![SortItem { key: 0, id: 0, len: 0 }; n_match];
        for i in 0..n {
            if kinds[i] == TokenKind::Bytes as u8 {
                let (o, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                let len = e - o;
                let mut w = [0u8; BLOCK];
                w.copy_from_slice(&src[o..o + BLOCK]); // fixed size: one 16-byte load
                let slot = &mut fill[bucket_key(&w[..len.min(2)])];
                pairs[*slot as usize] = SortItem { key: key8_masked(&w, len), id: i as u32, len: len as u32 };
                *slot += 1;
            }
        }
        drop(fill);
        let tok = |i: u32| {
            let i = i as usize;
            &src[offsets[i] as usize..offsets[i + 1] as usize]
        };
        for k in 0..N_BUCKETS {
            let (s, e) = (counts[k] as usize, counts[k + 1] as usize);
            if e - s > 1 {
                let run = &mut pairs[s..e];
                // Keys only: equal keys are re-sorted below by (bytes, id) anyway.
                run.sort_unstable_by_key(|p| p.key);
                let mut a = 0;
                while a < run.len() {
                    let mut b = a + 1;
                    while b < run.len() && run[b].key == run[a].key {
                        b += 1;
                    }
                    if b - a > 1 {
                        run[a..b].sort_unstable_by(|x, y| tok(x.id).cmp(tok(y.id)).then(x.id.cmp(&y.id)));
                    }
                    a = b;
                }
            }
        }

        // One sequential pass over the sorted items gives sorted ids, keys, ranks and the sorted
        // offsets (lengths travel with the items, so no random reads of `offsets`).
        let mut sorted: Vec<u32> = Vec::with_capacity(n);
        let mut key4s: Vec<u32> = Vec::with_capacity(n_match);
        let mut soff: Vec<u32> = Vec::with_capacity(n + 1);
        let mut rank = vec![0u32; n];
        let mut p = 0u32;
        let mut max_len = 0u32;
        soff.push(0);
        for (r, it) in pairs.iter().enumerate() {
            sorted.push(it.id);
            key4s.push((it.key >> 32) as u32);
            max_len = max_len.max(it.len);
            p += it.len;
            soff.push(p);
            rank[it.id as usize] = r as u32;
        }
        drop(pairs);
        for i in 0..n {
            if kinds[i] != TokenKind::Bytes as u8 {
                rank[i] = sorted.len() as u32;
                sorted.push(i as u32);
                p += (offsets[i + 1] - offsets[i]) as u32;
                soff.push(p);
            }
        }
        kinds.shrink_to_fit();

        // Lay the bytes out in sorted order. Short tokens are moved as one fixed 16-byte block (both
        // buffers carry 16 bytes of slack and later tokens overwrite the excess), which avoids a
        // variable-length copy call per token. (Writing in id order at the sorted offsets instead,
        // with exact-length moves, measured no faster.)
        let mut sdata = vec![0u8; total + BLOCK];
        for (r, &id) in sorted.iter().enumerate() {
            let o = offsets[id as usize] as usize;
            let (d, de) = (soff[r] as usize, soff[r + 1] as usize);
            if de - d <= BLOCK {
                sdata[d..d + BLOCK].copy_from_slice(&src[o..o + BLOCK]);
            } else {
                sdata[d..de].copy_from_slice(&src[o..o + (de - d)]);
            }
        }
        sdata.truncate(total);
        sdata.shrink_to_fit();
        drop(src);
        let max_len = max_len as usize;

        Ok(ByteVocab { sdata, soff, sorted, rank, kinds, n_match, max_len, bucket: counts, key4: key4s })
    }

    /// Number of ids (ordinary, missing and special).
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether there are no ids (never true: construction rejects an empty vocabulary).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Number of ordinary tokens (those that match byte queries).
    pub fn n_match(&self) -> usize {
        self.n_match
    }

    /// Longest ordinary token in bytes (0 if there is none).
    pub fn max_token_len(&self) -> usize {
        self.max_len
    }

    /// Sorted position → id: ordinary tokens by (bytes, id), then the rest by id.
    pub fn sorted_ids(&self) -> &[u32] {
        &self.sorted
    }

    /// Id → sorted position (inverse of [`Self::sorted_ids`]).
    pub fn ranks(&self) -> &[u32] {
        &self.rank
    }

    /// Kind of `id`, or `None` when out of range.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).and_then(|&k| TokenKind::from_u8(k))
    }

    /// Whether `id` was given without bytes (also true for a missing id marked special).
    pub fn is_missing(&self, id: u32) -> bool {
        self.kinds.get(id as usize).is_some_and(|&k| k & 1 == 1)
    }

    /// Bytes stored for `id` (empty for missing ids), or `None` when out of range.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let r = *self.rank.get(id as usize)? as usize;
        Some(self.at(r))
    }

    /// Bytes of the token at sorted position `r` (r < len).
    #[inline]
    fn at(&self, r: usize) -> &[u8] {
        &self.sdata[self.soff[r] as usize..self.soff[r + 1] as usize]
    }

    /// Length of the token at sorted position `r`.
    #[inline]
    fn len_at(&self, r: usize) -> usize {
        (self.soff[r + 1] - self.soff[r]) as usize
    }

    /// Heap bytes used by the index (all buffers).
    pub fn index_bytes(&self) -> usize {
        self.sdata.capacity()
            + 4 * (self.soff.capacity()
                + self.sorted.capacity()
                + self.rank.capacity()
                + self.bucket.capacity()
                + self.key4.capacity())
            + self.kinds.capacity()
    }

    /// First position in `lo..hi` where `pred` turns false (pred must be monotone: true then false).
    #[inline]
    fn partition(&self, mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Like [`Self::partition`] but probing lo, lo+1, lo+3, ... first: O(log k) for an answer
    /// k positions after `lo` (answers are usually close: ranges of long prefixes are small).
    #[inline]
    fn gallop(&self, lo: usize, hi: usize, pred: impl Fn(usize) -> bool) -> usize {
        let mut step = 1usize;
        let mut start = lo;
        while start < hi && pred(start) {
            let next = start + step;
            if next >= hi || !pred(next) {
                return self.partition(start + 1, next.min(hi), pred);
            }
            start = next + 1;
            step *= 2;
        }
        start
    }

    /// `keys.partition_point(pred)` for a run that is usually short: the first 16 keys (one cache
    /// line from `lo` on, often already loaded by the lower-bound search) are checked before a
    /// binary search of the rest.
    #[inline]
    fn near_end(keys: &[u32], pred: impl Fn(u32) -> bool) -> usize {
        const NEAR: usize = 16;
        if keys.len() <= NEAR || !pred(keys[NEAR - 1]) {
            return keys[..keys.len().min(NEAR)].partition_point(|&k| pred(k));
        }
        NEAR + keys[NEAR..].partition_point(|&k| pred(k))
    }

    /// Sorted positions `(lo, hi)` of the ordinary tokens whose bytes start with `prefix`
    /// (`strict`: and are longer than it). Tokens equal to `prefix` come first in the range.
    pub fn prefix_range(&self, prefix: &[u8], strict: bool) -> (usize, usize) {
        let b = &self.bucket;
        let (mut lo, mut hi) = match prefix.len() {
            0 => (0, self.n_match),
            1 => {
                let k = 1 + prefix[0] as usize * 257;
                (b[k] as usize, b[k + 257] as usize)
            }
            _ => {
                let k = bucket_key(prefix);
                (b[k] as usize, b[k + 1] as usize)
            }
        };
        if prefix.len() > 2 && lo < hi {
            let rest = &prefix[2..];
            // Every token in lo..hi starts with prefix[..2]. Binary search on the contiguous key4
            // array first; tokens below the key are below the prefix, and the remaining ones
            // below the prefix share its key, so a gallop over full comparisons finishes.
            let q = key4(prefix);
            let k4 = &self.key4;
            lo += k4[lo..hi].partition_point(|&k| k < q);
            if rest.len() <= 4 && !rest.contains(&0) {
                // Zero-free short prefix: the keys alone decide. A token with key >= q starts with
                // or follows the prefix, and it starts with it iff its first |rest| key bytes match.
                let shift = 8 * (4 - rest.len()) as u32;
                hi = Self::near_end(&k4[lo..hi], |k| k >> shift == q >> shift) + lo;
            } else {
                if rest.len() >= 4 {
                    // A token starting with the prefix has exactly key q: cut the full
                    // comparisons below down to the (short) run of equal keys.
                    hi = Self::near_end(&k4[lo..hi], |k| k == q) + lo;
                }
                lo = self.gallop(lo, hi, |r| &self.at(r)[2..] < rest);
                hi = self.gallop(lo, hi, |r| self.at(r)[2..].starts_with(rest));
            }
        }
        if strict {
            let m = prefix.len();
            lo = self.gallop(lo, hi, |r| self.len_at(r) == m);
        }
        (lo, hi)
    }

    /// Ids (ascending) of the ordinary tokens whose bytes start with `prefix` (`strict`: longer).
    pub fn extending(&self, prefix: &[u8], strict: bool) -> Vec<u32> {
        let (lo, hi) = self.prefix_range(prefix, strict);
        let mut ids = self.sorted[lo..hi].to_vec();
        ids.sort_unstable();
        ids
    }

    /// Ids (ascending) of the ordinary tokens whose bytes equal `b`.
    pub fn ids_of(&self, b: &[u8]) -> Vec<u32> {
        let (lo, hi) = self.prefix_range(b, false);
        let m = b.len();
        let end = self.partition(lo, hi, |r| self.len_at(r) == m);
        // Equal bytes are ordered by id already.
        self.sorted[lo..end].to_vec()
    }

    /// Calls `f(len, lo, hi)` for every length `len >= 1` such that the ordinary tokens equal to
    /// `data[..len]` are the sorted positions `lo..hi` (non-empty), in increasing `len`.
    /// Walks at most `min(|data|, max_token_len)` bytes: depths 1-2 from the bucket table, then one
    /// range narrowed byte by byte.
    pub fn for_each_prefix(&self, data: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        let limit = data.len().min(self.max_len);
        if limit == 0 {
            return;
        }
        // Depths 1 and 2 come straight from the bucket table.
        let b = &self.bucket;
        let k1 = 1 + data[0] as usize * 257;
        if b[k1 + 1] > b[k1] {
            f(1, b[k1] as usize, b[k1 + 1] as usize);
        }
        if limit == 1 {
            return;
        }
        let k2 = k1 + 1 + data[1] as usize;
        let (mut lo, mut hi) = (b[k2] as usize, b[k2 + 1] as usize);
        let mut d = 2;
        // Invariant: lo..hi are the tokens starting with data[..d]; those equal to it come first.
        while lo < hi {
            let exact_end = self.gallop(lo, hi, |r| self.len_at(r) == d);
            if exact_end > lo {
                f(d, lo, exact_end);
            }
            if d == limit {
                break;
            }
            let c = data[d];
            lo = self.partition(exact_end, hi, |r| self.at(r)[d] < c);
            hi = self.partition(lo, hi, |r| self.at(r)[d] == c);
            d += 1;
        }
    }

    /// Ids (ascending) of the ordinary tokens whose bytes are a non-empty prefix of `data`.
    pub fn prefixes_of(&self, data: &[u8]) -> Vec<u32> {
        let mut ids = Vec::new();
        self.for_each_prefix(data, |_, lo, hi| ids.extend_from_slice(&self.sorted[lo..hi]));
        ids.sort_unstable();
        ids
    }

    /// Greedy longest-match tokenization: repeatedly take the longest ordinary token that is a
    /// prefix of the rest (smallest id among equal bytes). Stops early where no token matches;
    /// returns the ids and the number of bytes they cover.
    pub fn greedy_tokenize(&self, data: &[u8]) -> (Vec<u32>, usize) {
        let mut ids = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let mut best: Option<(usize, u32)> = None;
            self.for_each_prefix(&data[pos..], |len, lo, _| best = Some((len, self.sorted[lo])));
            match best {
                Some((len, id)) => {
                    ids.push(id);
                    pos += len;
                }
                None => break,
            }
        }
        (ids, pos)
    }

    /// Serialize: magic, n (u64 LE), kinds (n bytes), token lengths (n × u32 LE), bytes in id order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(16 + 5 * n + self.sdata.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&self.kinds);
        for id in 0..n as u32 {
            let r = self.rank[id as usize] as usize;
            out.extend_from_slice(&(self.len_at(r) as u32).to_le_bytes());
        }
        for id in 0..n {
            out.extend_from_slice(self.at(self.rank[id] as usize));
        }
        out
    }

    /// Inverse of [`Self::to_bytes`]; malformed input gives a `Format` error with the byte offset.
    pub fn from_bytes(buf: &[u8]) -> Result<Self> {
        let fmt = |at: usize, msg: &str| {
            CoreError::format("ByteVocab.from_bytes", format!("byte offset {at}"), msg)
        };
        if buf.len() < 16 || &buf[..8] != MAGIC {
            return Err(fmt(0, "not a serialized ByteVocab (bad magic or too short)"));
        }
        let mut n8 = [0u8; 8];
        n8.copy_from_slice(&buf[8..16]);
        let n = u64::from_le_bytes(n8);
        let rest = (buf.len() - 16) as u64;
        if n == 0 || n > rest / 5 {
            return Err(fmt(8, "token count is zero or larger than the buffer allows"));
        }
        let n = n as usize;
        let kinds = buf[16..16 + n].to_vec();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u64);
        let mut total = 0u64;
        let lens = &buf[16 + n..16 + 5 * n];
        for (i, c) in lens.chunks_exact(4).enumerate() {
            total += u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
            offsets.push(total);
            if TokenKind::from_u8(kinds[i]).is_none() {
                return Err(fmt(16 + i, "unknown token kind"));
            }
        }
        let body = &buf[16 + 5 * n..];
        if body.len() as u64 != total {
            return Err(fmt(16 + 5 * n, "token bytes do not match the stored lengths"));
        }
        // Kinds carry specials; from_parts treats kind 2 as special already.
        let specials: Vec<u32> = Vec::new();
        Self::from_parts(body.to_vec(), &offsets, kinds, &specials)
            .map_err(|e| fmt(16, &format!("inconsistent content: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vocab(tokens: &[Option<Vec<u8>>], special: &[u32]) -> ByteVocab {
        ByteVocab::from_tokens(tokens.iter().map(|t| t.as_deref()), special).unwrap()
    }

    fn matchable(tokens: &[Option<Vec<u8>>], special: &[u32]) -> Vec<(u32, Vec<u8>)> {
        tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| !special.contains(&(*i as u32)))
            .filter_map(|(i, t)| t.clone().map(|t| (i as u32, t)))
            .collect()
    }

    /// The matchable part of `v`'s sorted order as (bytes, id), and the oracle's: `sorted()` by (bytes, id).
    type Sorted = Vec<(Vec<u8>, u32)>;
    fn sorted_vs_oracle(v: &ByteVocab, m: &[(u32, Vec<u8>)]) -> (Sorted, Sorted) {
        let mut want: Sorted = m.iter().map(|(i, t)| (t.clone(), *i)).collect();
        want.sort();
        let got =
            v.sorted_ids()[..v.n_match()].iter().map(|&i| (v.token_bytes(i).unwrap().to_vec(), i)).collect();
        (got, want)
    }

    fn tokens_strategy() -> impl Strategy<Value = (Vec<Option<Vec<u8>>>, Vec<u32>)> {
        let byte = prop_oneof![Just(0u8), Just(0xffu8), Just(b'a'), Just(b'b'), any::<u8>()];
        let tok = prop::option::weighted(0.9, prop::collection::vec(byte, 0..12));
        prop::collection::vec(tok, 1..40).prop_flat_map(|toks| {
            let n = toks.len() as u32;
            (Just(toks), prop::collection::vec(0..n, 0..3))
        })
    }

    fn query_strategy() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![Just(0u8), Just(0xffu8), Just(b'a'), Just(b'b'), any::<u8>()];
        prop::collection::vec(byte, 0..14)
    }

    /// Large vocabularies over a 4-letter alphabet: many shared prefixes and ties, so the radix
    /// passes, the single-digit skips and the >= 8-byte tie fix-up all run.
    fn big_tokens_strategy() -> impl Strategy<Value = (Vec<Option<Vec<u8>>>, Vec<u32>)> {
        let byte = prop_oneof![Just(0u8), Just(0xffu8), Just(b'a'), Just(b'b')];
        let tok = prop::option::weighted(0.95, prop::collection::vec(byte, 0..20));
        prop::collection::vec(tok, 64..700).prop_flat_map(|toks| {
            let n = toks.len() as u32;
            (Just(toks), prop::collection::vec(0..n, 0..5))
        })
    }

    proptest! {
        #[test]
        fn queries_match_linear_scan((tokens, special) in tokens_strategy(), q in query_strategy()) {
            let v = vocab(&tokens, &special);
            let m = matchable(&tokens, &special);
            let ext: Vec<u32> = m.iter().filter(|(_, t)| t.starts_with(&q)).map(|p| p.0).collect();
            prop_assert_eq!(v.extending(&q, false), ext);
            let ext_s: Vec<u32> =
                m.iter().filter(|(_, t)| t.starts_with(&q) && t.len() > q.len()).map(|p| p.0).collect();
            prop_assert_eq!(v.extending(&q, true), ext_s);
            let pre: Vec<u32> =
                m.iter().filter(|(_, t)| !t.is_empty() && q.starts_with(t)).map(|p| p.0).collect();
            prop_assert_eq!(v.prefixes_of(&q), pre);
            let eq: Vec<u32> = m.iter().filter(|(_, t)| *t == q).map(|p| p.0).collect();
            prop_assert_eq!(v.ids_of(&q), eq);
            let (lo, hi) = v.prefix_range(&q, false);
            prop_assert_eq!(hi - lo, v.extending(&q, false).len());
            let max_len = m.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
            prop_assert_eq!(v.max_token_len(), max_len);
            // sorted_ids is a permutation; ordinary part sorted by (bytes, id)
            let mut perm = v.sorted_ids().to_vec();
            perm.sort_unstable();
            prop_assert_eq!(perm, (0..tokens.len() as u32).collect::<Vec<_>>());
            let (got, want) = sorted_vs_oracle(&v, &m);
            prop_assert_eq!(got, want);
            let back = ByteVocab::from_bytes(&v.to_bytes()).unwrap();
            prop_assert_eq!(back.sorted_ids(), v.sorted_ids());
            prop_assert_eq!(back.to_bytes(), v.to_bytes());
        }

        #[test]
        fn greedy_covers_a_prefix((tokens, special) in tokens_strategy(), q in query_strategy()) {
            let v = vocab(&tokens, &special);
            let (ids, used) = v.greedy_tokenize(&q);
            let cat: Vec<u8> = ids.iter().flat_map(|&i| v.token_bytes(i).unwrap().to_vec()).collect();
            prop_assert_eq!(&cat[..], &q[..used]);
        }

        #[test]
        fn from_bytes_never_panics(buf in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&buf);
            let _ = ByteVocab::from_bytes(&b);
            let _ = ByteVocab::from_bytes(&buf);
        }
    }

    proptest! {
        // Each case builds a vocabulary of hundreds of tokens: fewer cases keep the test short.
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn big_sorted_order_and_ranges_match_oracle(
            (tokens, special) in big_tokens_strategy(),
            qs in prop::collection::vec(prop::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), Just(b'a')], 0..12), 8),
        ) {
            let v = vocab(&tokens, &special);
            let m = matchable(&tokens, &special);
            let (got, want) = sorted_vs_oracle(&v, &m);
            prop_assert_eq!(got, want.clone());
            let rest: Vec<u32> = v.sorted_ids()[v.n_match()..].to_vec();
            let mut rest_want: Vec<u32> =
                (0..tokens.len() as u32).filter(|i| tokens[*i as usize].is_none() || special.contains(i)).collect();
            rest_want.dedup();
            prop_assert_eq!(rest, rest_want);
            for (r, &id) in v.sorted_ids().iter().enumerate() {
                prop_assert_eq!(v.ranks()[id as usize] as usize, r);
                let t = tokens[id as usize].as_deref().unwrap_or(&[]);
                prop_assert_eq!(v.token_bytes(id).unwrap(), t);
            }
            for q in qs.iter().chain(want.iter().map(|w| &w.0).take(20)) {
                // brute force: positions in the sorted oracle whose bytes start with q
                let pos: Vec<usize> = (0..want.len()).filter(|&r| want[r].0.starts_with(q)).collect();
                let (lo, hi) = v.prefix_range(q, false);
                prop_assert_eq!((lo..hi).collect::<Vec<_>>(), pos);
                let pos_s: Vec<usize> = (0..want.len())
                    .filter(|&r| want[r].0.starts_with(q) && want[r].0.len() > q.len())
                    .collect();
                let (lo, hi) = v.prefix_range(q, true);
                prop_assert_eq!((lo..hi).collect::<Vec<_>>(), pos_s);
            }
        }
    }

    #[test]
    fn empty_vocab_and_bad_special_are_errors() {
        assert!(ByteVocab::from_tokens(std::iter::empty(), &[]).is_err());
        let e = ByteVocab::from_tokens([Some(&b"a"[..])], &[3]).unwrap_err();
        assert!(e.to_string().starts_with("special_ids: 3 is out of range"));
    }

    #[test]
    fn memory_per_token_is_documented() {
        let toks: Vec<Vec<u8>> = (0..150_000u32).map(|i| format!("t{i:06}").into_bytes()).collect();
        let v = ByteVocab::from_tokens(toks.iter().map(|t| Some(&t[..])), &[]).unwrap();
        let bytes = v.index_bytes();
        let data: usize = toks.iter().map(|t| t.len()).sum();
        assert!(bytes <= data + 17 * 150_001 + 4 * N_BUCKETS + 64, "{bytes}");
        assert!(bytes < 4_000_000, "{bytes}");
    }
}
