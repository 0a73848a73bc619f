//! The single conversion from the core's [`CoreError`] to the Python classes of `stepfuse.errors`.
//! The classes are defined in Python (so users can import and subclass them) and imported lazily.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stepfuse_core::CoreError;

pyo3::import_exception!(stepfuse.errors, InvalidArgumentError);
pyo3::import_exception!(stepfuse.errors, OutOfRangeError);
pyo3::import_exception!(stepfuse.errors, NonFiniteError);
pyo3::import_exception!(stepfuse.errors, LimitExceededError);
pyo3::import_exception!(stepfuse.errors, FormatError);
pyo3::import_exception!(stepfuse.errors, InvalidTypeError);
pyo3::import_exception!(stepfuse.errors, StepfuseIOError);

/// Error type of every binding: wraps a [`CoreError`] or an already-built [`PyErr`], so `?` works
/// on both inside `#[pyfunction]`s returning `Result<T, Error>`.
#[derive(Debug)]
pub enum Error {
    Core(CoreError),
    Py(PyErr),
}

/// Result type of the bindings.
pub type PyRes<T> = Result<T, Error>;

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Self {
        Error::Core(e)
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error::Py(e)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Py(e) => e,
            Error::Core(e) => {
                let msg = e.to_string();
                match e {
                    CoreError::InvalidArgument { .. } => InvalidArgumentError::new_err(msg),
                    CoreError::OutOfRange { .. } => OutOfRangeError::new_err(msg),
                    CoreError::NonFinite { .. } => NonFiniteError::new_err(msg),
                    CoreError::LimitExceeded { .. } => LimitExceededError::new_err(msg),
                    CoreError::Format { .. } => FormatError::new_err(msg),
                    CoreError::InvalidType { .. } => InvalidTypeError::new_err(msg),
                    CoreError::Io { .. } => StepfuseIOError::new_err(msg),
                }
            }
        }
    }
}

/// Shorthand for an `InvalidArgumentError` raised from binding code.
pub fn invalid(arg: &str, msg: impl Into<String>) -> Error {
    Error::Core(CoreError::invalid(arg, msg))
}

/// Shorthand for an `InvalidTypeError` raised from binding code.
pub fn invalid_type(arg: &str, msg: impl Into<String>) -> Error {
    Error::Core(CoreError::invalid_type(arg, msg))
}

/// Raise the Python exception that `kind` maps to (test hook: proves the one conversion end to end).
#[pyfunction]
pub fn _raise_core_error(kind: &str, arg: &str, msg: &str) -> PyResult<()> {
    let e = match kind {
        "invalid" => CoreError::invalid(arg, msg),
        "out_of_range" => CoreError::out_of_range(arg, -1, msg),
        "non_finite" => CoreError::non_finite(arg, msg),
        "limit" => CoreError::limit(arg, 1, msg),
        "format" => CoreError::format(arg, "line 1", msg),
        "type" => CoreError::invalid_type(arg, msg),
        "io" => CoreError::Io { path: arg.to_string(), msg: msg.to_string() },
        other => return Err(PyValueError::new_err(format!("kind: unknown error kind {other:?}"))),
    };
    Err(Error::Core(e).into())
}
