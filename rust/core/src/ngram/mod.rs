//! N-gram engine: counting, modified Kneser–Ney estimation (Chen & Goodman; Heafield et al. 2013),
//! ARPA I/O, batched scoring, no-repeat-ngram masks, n-gram overlap index for decontamination.
