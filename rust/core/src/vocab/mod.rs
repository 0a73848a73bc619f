//! Byte-level token mapping (GFD §3, "Let's Fuse Step by Step"): token id ↔ bytes, a
//! lexicographically sorted index so that "tokens extending a byte prefix" is one contiguous range.
