//! Python bindings of `stepfuse_core::strings`: symbol conversion (bytes or integer arrays of any
//! dtype), GIL release, numpy out.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use stepfuse_core::strings::{self as core, KMethod, Method, SumsetMethod};

use crate::convert::{bytes_arg, int_array, IntArray};
use crate::errors::{invalid, PyRes};

/// Symbols of one argument, and whether they came from a signed dtype.
struct Symbols {
    vals: Vec<u64>,
    signed: bool,
}

fn symbols(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Symbols> {
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        let b = bytes_arg(obj, arg)?;
        return Ok(Symbols { vals: b.into_iter().map(u64::from).collect(), signed: false });
    }
    let a = int_array(obj, arg)?;
    let signed = matches!(a, IntArray::I8(_) | IntArray::I16(_) | IntArray::I32(_) | IntArray::I64(_));
    Ok(Symbols { vals: a.to_u64_symbols(), signed })
}

/// Two's-complement symbols of a signed array can collide with values >= 2^63 of an unsigned one;
/// in that (rare) case both are mapped through their true integer values to dense ids.
fn harmonize(a: Symbols, b: Symbols) -> (Vec<u64>, Vec<u64>) {
    let high = |s: &Symbols| s.vals.iter().any(|&x| x >> 63 == 1);
    if a.signed == b.signed || !high(&a) || !high(&b) {
        return (a.vals, b.vals);
    }
    let wide = |s: &Symbols| -> Vec<i128> {
        s.vals.iter().map(|&x| if s.signed { x as i64 as i128 } else { x as i128 }).collect()
    };
    let (wa, wb) = (wide(&a), wide(&b));
    let mut all: Vec<i128> = wa.iter().chain(&wb).copied().collect();
    all.sort_unstable();
    all.dedup();
    let id = |v: &i128| all.partition_point(|x| x < v) as u64;
    (wa.iter().map(id).collect(), wb.iter().map(id).collect())
}

fn nonneg(x: i64, arg: &str) -> PyRes<usize> {
    usize::try_from(x).map_err(|_| invalid(arg, format!("must be >= 0, got {x}")))
}

fn to_i32(d: Vec<u32>) -> Vec<i32> {
    d.into_iter().map(|x| x.min(i32::MAX as u32) as i32).collect()
}

/// Hamming distance of `pattern` against every window of `text` (int32; k+1 caps when k is given).
#[pyfunction]
#[pyo3(signature = (text, pattern, k=None, method="auto"))]
fn hamming_distances<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    pattern: &Bound<'py, PyAny>,
    k: Option<i64>,
    method: &str,
) -> PyRes<Bound<'py, PyArray1<i32>>> {
    let (t, p) = harmonize(symbols(text, "text")?, symbols(pattern, "pattern")?);
    if p.len() > i32::MAX as usize {
        return Err(invalid("pattern", "longer than 2^31 - 1"));
    }
    let k = k.map(|k| nonneg(k, "k")).transpose()?;
    let kmethod = match (k, method) {
        (Some(_), "filter") => Some(KMethod::Filter),
        (Some(_), "auto") => Some(KMethod::Auto),
        (Some(_), m) => Some(KMethod::Full(Method::parse(m)?)),
        (None, "filter") => return Err(invalid("method", "\"filter\" needs k")),
        (None, _) => None,
    };
    let meth = if kmethod.is_none() { Method::parse(method)? } else { Method::Auto };
    let d = py.detach(move || match (k, kmethod) {
        (Some(k), Some(km)) => core::k_mismatch(&t, &p, k, km),
        _ => core::hamming_distances(&t, &p, meth),
    })?;
    Ok(to_i32(d).into_pyarray(py))
}

/// The engine `method="auto"` would use, e.g. "split(fft=3, marking=980)".
#[pyfunction]
fn hamming_plan(py: Python<'_>, text: &Bound<'_, PyAny>, pattern: &Bound<'_, PyAny>) -> PyRes<String> {
    let (t, p) = harmonize(symbols(text, "text")?, symbols(pattern, "pattern")?);
    if p.is_empty() {
        return Err(invalid("pattern", "must not be empty"));
    }
    Ok(py.detach(move || {
        if p.len() > t.len() {
            "empty".to_string()
        } else {
            core::plan(&core::Relabeled::new(&t, &p)).describe()
        }
    }))
}

/// (1 ± eps)-approximate distances (float64), exactly 0 where the distance is 0.
#[pyfunction]
#[pyo3(signature = (text, pattern, eps, seed, delta=0.01))]
fn hamming_distances_approx<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    pattern: &Bound<'py, PyAny>,
    eps: f64,
    seed: u64,
    delta: f64,
) -> PyRes<Bound<'py, PyArray1<f64>>> {
    let (t, p) = harmonize(symbols(text, "text")?, symbols(pattern, "pattern")?);
    let d = py.detach(move || core::hamming_distances_approx(&t, &p, eps, seed, delta))?;
    Ok(d.into_pyarray(py))
}

type SumsetOut<'py> = (Bound<'py, PyArray1<i64>>, Option<Bound<'py, PyArray1<i64>>>);

/// Sorted distinct sums of `a` and `b` (int64) and, with `multiplicities`, their pair counts.
#[pyfunction]
#[pyo3(signature = (a, b, multiplicities=false, method="auto"))]
fn sumset<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    multiplicities: bool,
    method: &str,
) -> PyRes<SumsetOut<'py>> {
    let a = int_array(a, "a")?.to_i64("a")?;
    let b = int_array(b, "b")?.to_i64("b")?;
    let meth = SumsetMethod::parse(method)?;
    let r = py.detach(move || core::sumset(&a, &b, multiplicities, meth))?;
    let counts = r.counts.map(|c| c.into_iter().map(|x| x.min(i64::MAX as u64) as i64).collect::<Vec<_>>());
    Ok((r.sums.into_pyarray(py), counts.map(|c| c.into_pyarray(py))))
}

/// Smallest period at which the last `window` tokens repeat with <= `max_mismatch` mismatches.
#[pyfunction]
fn find_repetition(
    py: Python<'_>,
    tokens: &Bound<'_, PyAny>,
    window: i64,
    max_mismatch: i64,
) -> PyRes<Option<usize>> {
    let t = symbols(tokens, "tokens")?.vals;
    let w = nonneg(window, "window")?;
    let k = nonneg(max_mismatch, "max_mismatch")?;
    Ok(py.detach(move || core::find_repetition(&t, w, k))?)
}

/// Register this area's functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hamming_distances, m)?)?;
    m.add_function(wrap_pyfunction!(hamming_plan, m)?)?;
    m.add_function(wrap_pyfunction!(hamming_distances_approx, m)?)?;
    m.add_function(wrap_pyfunction!(sumset, m)?)?;
    m.add_function(wrap_pyfunction!(find_repetition, m)?)?;
    Ok(())
}
