//! Byte-level token mapping (GFD §3, "Let's Fuse Step by Step"): token id ↔ bytes, a
//! lexicographically sorted index so that "tokens extending a byte prefix" is one contiguous range.
//!
//! * [`ByteVocab`]: every token's bytes in one buffer laid out in sorted order, the sorted
//!   permutation, its inverse, a 4-byte search key per token and a table of the 65 794 one- and
//!   two-byte buckets.
//!   Build is O(n log b + total bytes) for buckets of b tokens (a counting pass by the first two
//!   bytes, then each bucket sorted on an inline 8-byte key, ties fixed by full comparison);
//!   `prefix_range` is O(log n + |prefix| log k) for a range of k tokens (a binary search over the
//!   contiguous keys of one two-byte bucket, then gallops with full comparisons);
//!   `prefixes_of(data)` is O(L log n) byte comparisons for L = min(|data|, max_token_len).
//!   Memory: 17 bytes per token + the token bytes + 263 KB of bucket table
//!   (≈ 3.9 MB for 150k tokens of 7 bytes on average).
//! * [`covers`]: the cover encodings of a byte string (Phan et al. 2024, "Exact byte-level
//!   probabilities from tokenized language models"), enumerated as a prefix tree of partial covers,
//!   and the bookkeeping of GFD's canonical-boundary approximation for beam search.

mod covers;
mod index;

pub use covers::{gfd_layout, gfd_score, logsumexp, range_logsumexp, CoverTree, GfdLayout, NONE};
pub use index::{ByteVocab, TokenKind};
