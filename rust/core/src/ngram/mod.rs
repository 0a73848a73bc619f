//! N-gram engine: counting, modified Kneser–Ney estimation (Chen & Goodman; Heafield et al. 2013),
//! ARPA I/O, batched scoring, no-repeat-ngram masks, n-gram overlap index for decontamination.
//!
//! Ids: user tokens are `0 .. vocab_size`; `<unk>`, `<s>`, `</s>` are `vocab_size`, `+1`, `+2`
//! ([`Specials`]). Counting radix-sorts the packed highest-order window of every position once and
//! reads every order off that sorted array; the model stores dense unigrams and one compact hash table
//! per higher order (≤ 12.25 bytes per n-gram below the top order, ≤ 8.25 at it), and a query costs at
//! most two hash probes per order.

pub mod arpa;
pub mod binary;
pub mod count;
pub mod estimate;
pub mod index;
pub mod lm;
pub mod norepeat;
mod radix;
pub mod table;

pub use count::{NGramCounts, Specials};
pub use estimate::{estimate_mkn, estimate_mle, Kind, Levels};
pub use lm::NGramLM;
