//! Python bindings of `stepfuse_core::fusion`.

use pyo3::prelude::*;

/// Register this area's classes and functions on the extension module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
