//! Boundary conversions shared by every area: integer numpy arrays of any dtype (or sequences),
//! byte strings, float arrays. Each helper names the argument in its error, never reinterprets a
//! dtype, and never truncates silently.

#![allow(dead_code)]
// helpers are used by whichever areas need them
// The dtype macro expands one body for every integer type: a cast is a no-op for some of them.
#![allow(clippy::unnecessary_cast)]

use numpy::{PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors::{invalid, invalid_type, PyRes};

/// A 1-D integer array of any numpy integer dtype, viewed without copying.
pub enum IntArray<'py> {
    I8(PyReadonlyArray1<'py, i8>),
    I16(PyReadonlyArray1<'py, i16>),
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
    U8(PyReadonlyArray1<'py, u8>),
    U16(PyReadonlyArray1<'py, u16>),
    U32(PyReadonlyArray1<'py, u32>),
    U64(PyReadonlyArray1<'py, u64>),
}

macro_rules! each_int_array {
    ($arr:expr, $v:ident => $body:expr) => {
        match $arr {
            IntArray::I8($v) => $body,
            IntArray::I16($v) => $body,
            IntArray::I32($v) => $body,
            IntArray::I64($v) => $body,
            IntArray::U8($v) => $body,
            IntArray::U16($v) => $body,
            IntArray::U32($v) => $body,
            IntArray::U64($v) => $body,
        }
    };
}

/// Turn `obj` (numpy array, bytes, or a Python sequence of ints) into a 1-D numpy array object.
fn as_ndarray<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyRes<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(invalid_type(arg, "must be an integer array or sequence, got str"));
    }
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,)).map_err(|e| {
        invalid_type(arg, format!("must be an integer array or sequence of ints ({})", e.value(py)))
    })?;
    // An empty Python list becomes float64 in numpy; treat it as an empty int64 array.
    let size: usize = arr.getattr("size")?.extract()?;
    let arr = if size == 0 { np.call_method1("zeros", (arr.getattr("shape")?, "int64"))? } else { arr };
    arr.cast_into::<PyUntypedArray>().map_err(|_| invalid_type(arg, "must be array-like"))
}

/// View `obj` as a 1-D integer array of its own dtype. Floats, bools, objects and ndim != 1 are
/// rejected with an error naming `arg`.
pub fn int_array<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyRes<IntArray<'py>> {
    let arr = as_ndarray(obj, arg)?;
    if arr.ndim() != 1 {
        return Err(invalid(arg, format!("must be 1-D, got ndim={}", arr.ndim())));
    }
    let dtype = arr.dtype();
    let kind = dtype.kind();
    let size = dtype.itemsize();
    let any = arr.as_any();
    let out = match (kind, size) {
        (b'i', 1) => IntArray::I8(any.extract()?),
        (b'i', 2) => IntArray::I16(any.extract()?),
        (b'i', 4) => IntArray::I32(any.extract()?),
        (b'i', 8) => IntArray::I64(any.extract()?),
        (b'u', 1) => IntArray::U8(any.extract()?),
        (b'u', 2) => IntArray::U16(any.extract()?),
        (b'u', 4) => IntArray::U32(any.extract()?),
        (b'u', 8) => IntArray::U64(any.extract()?),
        _ => {
            let name: String = dtype.str()?.extract().unwrap_or_else(|_| "unknown".to_string());
            return Err(invalid_type(arg, format!("must have an integer dtype, got {name}")));
        }
    };
    Ok(out)
}

impl IntArray<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        each_int_array!(self, a => a.len())
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy into token ids: every value must lie in `0..bound` (or `0..=u32::MAX` when `bound` is None).
    pub fn to_u32_ids(&self, arg: &str, bound: Option<u64>) -> PyRes<Vec<u32>> {
        let limit = bound.unwrap_or(u32::MAX as u64 + 1);
        each_int_array!(self, a => {
            let view = a.as_array();
            let mut out = Vec::with_capacity(view.len());
            for &x in view.iter() {
                let v = x as i128;
                if v < 0 || v as u128 >= limit as u128 {
                    return Err(crate::errors::Error::Core(stepfuse_core::CoreError::out_of_range(
                        arg,
                        v,
                        match bound {
                            Some(b) => format!("ids must lie in [0, {b})"),
                            None => "ids must lie in [0, 2^32)".to_string(),
                        },
                    )));
                }
                out.push(v as u32);
            }
            Ok(out)
        })
    }

    /// Copy into i64; u64 values above i64::MAX are rejected.
    pub fn to_i64(&self, arg: &str) -> PyRes<Vec<i64>> {
        each_int_array!(self, a => {
            let view = a.as_array();
            let mut out = Vec::with_capacity(view.len());
            for &x in view.iter() {
                let v = x as i128;
                if v > i64::MAX as i128 {
                    return Err(crate::errors::Error::Core(stepfuse_core::CoreError::out_of_range(
                        arg, v, "values must fit in int64",
                    )));
                }
                out.push(v as i64);
            }
            Ok(out)
        })
    }

    /// Copy into u64 symbols for equality-only algorithms: distinct values stay distinct
    /// (signed values are mapped by two's complement, which is injective within one dtype).
    pub fn to_u64_symbols(&self) -> Vec<u64> {
        each_int_array!(self, a => a.as_array().iter().map(|&x| widen_bits(x as i64)).collect())
    }
}

/// Borrow the content of a `bytes` or `bytearray` argument (copied to an owned Vec so the GIL can be
/// released). `str` is rejected: the caller must choose an encoding.
pub fn bytes_arg(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(invalid_type(arg, "must be bytes, got str (encode it, e.g. s.encode('utf-8'))"));
    }
    let tname = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    Err(invalid_type(arg, format!("must be bytes or bytearray, got {tname}")))
}

/// Two's-complement reinterpretation of an already sign-extended value (injective).
fn widen_bits(x: i64) -> u64 {
    x as u64
}
