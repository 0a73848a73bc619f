//! Batched byte-prefix log-probability bookkeeping over sorted-vocabulary ranges for Generative
//! Fusion Decoding.
