//! stepfuse-core: the pure-Rust engine behind the `stepfuse` Python package.
//!
//! One module per area (see ARCHITECTURE.md): [`vocab`], [`fusion`], [`search`], [`ngram`], [`strings`].
//! Nothing here depends on Python; every fallible function returns [`Result`] with a [`CoreError`]
//! whose message names the argument and the constraint it broke.

pub mod error;
pub mod fusion;
pub mod ngram;
pub mod search;
pub mod strings;
pub mod vocab;

pub use error::{CoreError, Result};
