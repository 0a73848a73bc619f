//! Byte-level token mapping (GFD §3, "Let's Fuse Step by Step"): token id ↔ bytes, a
//! lexicographically sorted index so that "tokens extending a byte prefix" is one contiguous range.
//!
//! * [`ByteVocab`]: every token's bytes in one buffer laid out in sorted order, the sorted
//!   permutation, its inverse, and a table of the 65 794 one- and two-byte buckets.
//!   Build is O(n + total bytes) (LSD radix sort on an 8-byte key, ties fixed by full comparison);
//!   `prefix_range` is O(log n · |prefix|) (two binary searches inside one two-byte bucket);
//!   `prefixes_of(data)` is O(L log n) byte comparisons for L = min(|data|, max_token_len).
//!   Memory: 13 bytes per token + the token bytes + 263 KB of bucket table
//!   (≈ 3.3 MB for 150k tokens of 7 bytes on average).
//! * [`covers`]: the cover encodings of a byte string (Phan et al. 2024, "Exact byte-level
//!   probabilities from tokenized language models"), enumerated as a prefix tree of partial covers,
//!   and the bookkeeping of GFD's canonical-boundary approximation for beam search.

mod covers;
mod index;

pub use covers::{gfd_layout, gfd_score, logsumexp, range_logsumexp, CoverTree, GfdLayout, NONE};
pub use index::{ByteVocab, TokenKind};
