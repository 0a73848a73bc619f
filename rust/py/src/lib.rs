//! PyO3 bindings of `stepfuse-core`, built as the extension module `stepfuse._core`.
//!
//! This crate only converts: numpy in (readonly views), numpy out (`into_pyarray`), errors out
//! (one conversion in [`errors`]), with the GIL released around real work. No algorithm lives here.

use pyo3::prelude::*;

mod convert;
mod errors;
mod fusion;
mod ngram;
mod search;
mod strings;
mod vocab;

/// The extension module. Each area registers its own classes and functions.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(errors::_raise_core_error, m)?)?;
    vocab::register(m)?;
    fusion::register(m)?;
    search::register(m)?;
    ngram::register(m)?;
    strings::register(m)?;
    Ok(())
}
