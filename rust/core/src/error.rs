//! The one error type of the core. Every variant names the argument (or file) at fault and the
//! constraint it broke, so the message is actionable from Python. `rust/py` maps each variant to
//! one class of `stepfuse.errors` through a single `From<CoreError> for PyErr`.

use thiserror::Error;

/// Result alias used throughout the core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Errors produced by the core. Variant → Python class:
/// `InvalidArgument` → `InvalidArgumentError` (ValueError), `OutOfRange` → `OutOfRangeError`,
/// `NonFinite` → `NonFiniteError`, `LimitExceeded` → `LimitExceededError`,
/// `Format` → `FormatError`, `InvalidType` → `InvalidTypeError` (TypeError), `Io` → `StepfuseIOError` (OSError).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// A value breaks a documented constraint (empty where non-empty is required, bad shape, ...).
    #[error("{arg}: {msg}")]
    InvalidArgument { arg: String, msg: String },
    /// An index or id lies outside its valid range.
    #[error("{arg}: {value} is out of range ({msg})")]
    OutOfRange { arg: String, value: i128, msg: String },
    /// NaN where a number is required, or +inf where only finite values or -inf make sense.
    #[error("{arg}: {msg}")]
    NonFinite { arg: String, msg: String },
    /// A configured cap (max_nodes, max_covers, memory bound, ...) would be exceeded.
    #[error("{what} exceeds the limit of {limit} ({msg})")]
    LimitExceeded { what: String, limit: u64, msg: String },
    /// A file or byte buffer is malformed; `location` is e.g. "line 12" or "byte offset 4096".
    #[error("{source_name}: {location}: {msg}")]
    Format { source_name: String, location: String, msg: String },
    /// A value of the wrong kind (float ids, non-bytes token, ...).
    #[error("{arg}: {msg}")]
    InvalidType { arg: String, msg: String },
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

impl CoreError {
    /// `InvalidArgument` for `arg` with message `msg`.
    pub fn invalid(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        CoreError::InvalidArgument { arg: arg.into(), msg: msg.into() }
    }

    /// `OutOfRange` for `arg` holding `value`; `msg` states the valid range.
    pub fn out_of_range(arg: impl Into<String>, value: impl Into<i128>, msg: impl Into<String>) -> Self {
        CoreError::OutOfRange { arg: arg.into(), value: value.into(), msg: msg.into() }
    }

    /// `NonFinite` for `arg`.
    pub fn non_finite(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        CoreError::NonFinite { arg: arg.into(), msg: msg.into() }
    }

    /// `LimitExceeded` for `what` against `limit`.
    pub fn limit(what: impl Into<String>, limit: u64, msg: impl Into<String>) -> Self {
        CoreError::LimitExceeded { what: what.into(), limit, msg: msg.into() }
    }

    /// `Format` error in `source_name` at `location` (e.g. "line 3", "byte offset 17").
    pub fn format(
        source_name: impl Into<String>,
        location: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        CoreError::Format { source_name: source_name.into(), location: location.into(), msg: msg.into() }
    }

    /// `InvalidType` for `arg`.
    pub fn invalid_type(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        CoreError::InvalidType { arg: arg.into(), msg: msg.into() }
    }

    /// `Io` error on `path`.
    pub fn io(path: impl Into<String>, err: &std::io::Error) -> Self {
        CoreError::Io { path: path.into(), msg: err.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_argument_and_constraint() {
        let e = CoreError::out_of_range("ids", 70000, "vocabulary has 50257 tokens");
        assert_eq!(e.to_string(), "ids: 70000 is out of range (vocabulary has 50257 tokens)");
        let e = CoreError::format("model.arpa", "line 12", "expected 3 fields");
        assert_eq!(e.to_string(), "model.arpa: line 12: expected 3 fields");
        let e = CoreError::limit("max_covers", 10, "data has too many cover encodings");
        assert!(e.to_string().starts_with("max_covers exceeds the limit of 10"));
    }
}
