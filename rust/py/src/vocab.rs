//! Python bindings of `stepfuse_core::vocab`: the `ByteVocab` index (`_core.ByteVocab`), cover
//! trees and GFD bookkeeping. The public Python class `stepfuse.ByteVocab` wraps this one.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple};
use stepfuse_core::vocab::{self as core, ByteVocab};
use stepfuse_core::CoreError;

use crate::convert::{bytes_arg, int_array};
use crate::errors::{invalid, invalid_type, Error, PyRes};

type I32Array<'py> = Bound<'py, PyArray1<i32>>;
type I64Array<'py> = Bound<'py, PyArray1<i64>>;
type F64Array<'py> = Bound<'py, PyArray1<f64>>;

/// Immutable byte vocabulary index (see `stepfuse.ByteVocab` for the documented API).
#[pyclass(name = "ByteVocab", module = "stepfuse._core", frozen)]
pub struct PyByteVocab {
    /// Shared so other bindings can hold the index without copying it.
    pub inner: Arc<ByteVocab>,
}

fn ids_i32(v: Vec<u32>) -> Vec<i32> {
    // ok: ids are < len(vocab) < u32::MAX and vocabularies with ids above i32::MAX are rejected at build.
    v.into_iter().map(|x| x as i32).collect()
}

/// Bytes of sequence items concatenated in order, with offsets (len n+1) and a kind per item.
#[derive(Default)]
struct Concat {
    offsets: Vec<u64>,
    data: Vec<u8>,
    kinds: Vec<u8>,
}

impl Concat {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Concat { offsets, data: Vec::with_capacity(n * 8), kinds: Vec::with_capacity(n) }
    }

    /// Appends `item`: bytes or bytearray, or `None` (a missing id) when `allow_none`.
    fn push_any(&mut self, item: &Bound<'_, PyAny>, arg: &str, i: usize, allow_none: bool) -> PyRes<()> {
        if allow_none && item.is_none() {
            self.kinds.push(core::TokenKind::Missing as u8);
        } else if let Ok(b) = item.cast::<PyBytes>() {
            self.data.extend_from_slice(b.as_bytes());
            self.kinds.push(core::TokenKind::Bytes as u8);
        } else if let Ok(b) = item.cast::<PyByteArray>() {
            self.data.extend_from_slice(&b.to_vec());
            self.kinds.push(core::TokenKind::Bytes as u8);
        } else {
            let t = item.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            let want = if allow_none { "bytes or None" } else { "bytes" };
            return Err(invalid_type(&format!("{arg}[{i}]"), format!("must be {want}, got {t}")));
        }
        self.offsets.push(self.data.len() as u64);
        Ok(())
    }
}

/// Concatenates a sequence of bytes objects (and `None` where `allow_none`) in one pass; `arg`
/// names the sequence in errors. A `list` is read in place (no iterator, no reference counting
/// per item, exact `bytes` read straight from the object); anything else goes through the
/// iterator protocol.
fn concat_bytes(obj: &Bound<'_, PyAny>, arg: &str, allow_none: bool) -> PyRes<Concat> {
    let want = if allow_none { "bytes or None" } else { "bytes objects" };
    if obj.cast::<PyBytes>().is_ok() || obj.is_instance_of::<PyString>() {
        return Err(invalid_type(arg, format!("must be a sequence of {want}, not a single bytes/str")));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let n = list.len();
        let mut out = Concat::with_capacity(n);
        let none = obj.py().None();
        let mut i = 0;
        // The length is re-read after the slow path only: it may run Python code (a bytearray's
        // buffer, an error's type name) that could shrink the list; the fast path runs none.
        let mut len = n;
        while i < len {
            // SAFETY: the GIL is held (we hold `obj: Bound`), the list is a real list and
            // i < len(list) was checked just above with no Python code run since, so the item
            // pointer is valid; PyList_GetItem returns a borrowed reference (the list keeps the
            // item alive) and sets an exception instead of reading out of bounds.
            let p = unsafe { ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t) };
            if p.is_null() {
                return Err(PyErr::fetch(obj.py()).into());
            }
            // SAFETY: `p` is a valid object (above); PyBytes_CheckExact only reads its type.
            if unsafe { ffi::PyBytes_CheckExact(p) } != 0 {
                // SAFETY: `p` is an exact bytes object, so PyBytes_AsStringAndSize (one call
                // instead of AsString + Size) stores its internal buffer and size; with a size
                // pointer given it does not reject embedded NULs and cannot fail. bytes are
                // immutable and the list keeps `p` alive while we copy, with
                // the GIL held and no Python code run before the slice is dropped.
                let b = unsafe {
                    let mut ptr: *mut std::ffi::c_char = std::ptr::null_mut();
                    let mut size: ffi::Py_ssize_t = 0;
                    if ffi::PyBytes_AsStringAndSize(p, &mut ptr, &mut size) != 0 || ptr.is_null() || size < 0
                    {
                        return Err(PyErr::fetch(obj.py()).into());
                    }
                    std::slice::from_raw_parts(ptr.cast::<u8>().cast_const(), size as usize)
                };
                out.data.extend_from_slice(b);
                out.kinds.push(core::TokenKind::Bytes as u8);
                out.offsets.push(out.data.len() as u64);
            } else if allow_none && p == none.as_ptr() {
                out.kinds.push(core::TokenKind::Missing as u8);
                out.offsets.push(out.data.len() as u64);
            } else {
                // SAFETY: `p` is a valid borrowed reference under the GIL (above); the new
                // Bound takes its own reference.
                let item = unsafe { Bound::from_borrowed_ptr(obj.py(), p) };
                out.push_any(&item, arg, i, allow_none)?;
                len = list.len();
            }
            i += 1;
        }
        return Ok(out);
    }
    let it = obj.try_iter().map_err(|_| invalid_type(arg, format!("must be a sequence of {want}")))?;
    let mut out = Concat::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in it.enumerate() {
        out.push_any(&item?, arg, i, allow_none)?;
    }
    Ok(out)
}

/// Concatenate a sequence of bytes objects into (offsets, data); `arg` names the sequence.
fn bytes_list(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<(Vec<u64>, Vec<u8>)> {
    let c = concat_bytes(obj, arg, false)?;
    Ok((c.offsets, c.data))
}

fn csr<'py>(py: Python<'py>, offsets: Vec<u64>, ids: Vec<u32>) -> (I64Array<'py>, I32Array<'py>) {
    let off: Vec<i64> = offsets.into_iter().map(|x| x as i64).collect();
    (off.into_pyarray(py), ids_i32(ids).into_pyarray(py))
}

fn id_arg(v: &ByteVocab, i: i64, arg: &str) -> PyRes<u32> {
    if i < 0 || i as u64 >= v.len() as u64 {
        return Err(Error::Core(CoreError::out_of_range(
            arg,
            i,
            format!("ids must lie in [0, {}) for this vocabulary", v.len()),
        )));
    }
    Ok(i as u32)
}

/// View a 2-D float32 C-contiguous array (rows, cols) as a flat slice copy-free.
fn f32_matrix<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyRes<PyReadonlyArray2<'py, f32>> {
    let a: PyReadonlyArray2<'py, f32> =
        obj.extract().map_err(|_| invalid_type(arg, "must be a 2-D float32 numpy array"))?;
    if !a.is_c_contiguous() {
        return Err(invalid(arg, "must be C-contiguous"));
    }
    Ok(a)
}

#[pymethods]
impl PyByteVocab {
    #[new]
    #[pyo3(signature = (tokens, special_ids = None))]
    fn new(py: Python<'_>, tokens: &Bound<'_, PyAny>, special_ids: Option<&Bound<'_, PyAny>>) -> PyRes<Self> {
        let Concat { offsets, data, kinds } = concat_bytes(tokens, "tokens", true)?;
        if kinds.len() > i32::MAX as usize {
            return Err(invalid("tokens", "more than 2^31 - 1 tokens"));
        }
        let n = kinds.len() as u64;
        let special = match special_ids {
            // An empty tuple/list (the Python default) needs no numpy round trip.
            Some(s) if !s.is_none() && !s.len().is_ok_and(|l| l == 0) => {
                int_array(s, "special_ids")?.to_u32_ids("special_ids", Some(n.max(1)))?
            }
            _ => Vec::new(),
        };
        let v = py.detach(|| ByteVocab::from_parts(data, &offsets, kinds, &special))?;
        Ok(PyByteVocab { inner: Arc::new(v) })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn max_token_len(&self) -> usize {
        self.inner.max_token_len()
    }

    #[getter]
    fn n_match(&self) -> usize {
        self.inner.n_match()
    }

    #[getter]
    fn index_bytes(&self) -> usize {
        self.inner.index_bytes()
    }

    #[getter]
    fn sorted_ids<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.sorted_ids().to_vec()).into_pyarray(py)
    }

    #[getter]
    fn ranks<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.ranks().to_vec()).into_pyarray(py)
    }

    fn token_bytes<'py>(&self, py: Python<'py>, i: i64) -> PyRes<Option<Bound<'py, PyBytes>>> {
        let id = id_arg(&self.inner, i, "i")?;
        if self.inner.is_missing(id) {
            return Ok(None);
        }
        Ok(self.inner.token_bytes(id).map(|b| PyBytes::new(py, b)))
    }

    /// Byte length of every id (0 for missing ids), int32[len].
    #[getter]
    fn token_lengths<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        let v = &self.inner;
        (0..v.len() as u32)
            .map(|i| v.token_bytes(i).map_or(0, |b| b.len() as i32))
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }

    /// Concatenated bytes of `ids` (missing ids contribute nothing; specials only if asked).
    #[pyo3(signature = (ids, skip_special = true))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        skip_special: bool,
    ) -> PyRes<Bound<'py, PyBytes>> {
        let v = &self.inner;
        let ids = int_array(ids, "ids")?.to_u32_ids("ids", Some(v.len() as u64))?;
        let out = py.detach(|| {
            let mut out = Vec::new();
            for &i in &ids {
                if skip_special && v.kind(i) == Some(core::TokenKind::Special) {
                    continue;
                }
                out.extend_from_slice(v.token_bytes(i).unwrap_or(&[]));
            }
            out
        });
        Ok(PyBytes::new(py, &out))
    }

    fn is_special(&self, i: i64) -> PyRes<bool> {
        let id = id_arg(&self.inner, i, "i")?;
        Ok(self.inner.kind(id) == Some(core::TokenKind::Special))
    }

    #[pyo3(signature = (prefix, strict = false))]
    fn prefix_range(&self, prefix: &Bound<'_, PyAny>, strict: bool) -> PyRes<(usize, usize)> {
        let p = bytes_arg(prefix, "prefix")?;
        Ok(self.inner.prefix_range(&p, strict))
    }

    #[pyo3(signature = (prefixes, strict = false))]
    fn prefix_ranges<'py>(
        &self,
        py: Python<'py>,
        prefixes: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyRes<(I32Array<'py>, I32Array<'py>)> {
        let (off, data) = bytes_list(prefixes, "prefixes")?;
        let v = &self.inner;
        let (lo, hi): (Vec<i32>, Vec<i32>) = py.detach(|| {
            off.windows(2)
                .map(|w| {
                    let (l, h) = v.prefix_range(&data[w[0] as usize..w[1] as usize], strict);
                    (l as i32, h as i32)
                })
                .unzip()
        });
        Ok((lo.into_pyarray(py), hi.into_pyarray(py)))
    }

    #[pyo3(signature = (prefix, strict = false))]
    fn extending<'py>(
        &self,
        py: Python<'py>,
        prefix: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyRes<I32Array<'py>> {
        let p = bytes_arg(prefix, "prefix")?;
        let v = &self.inner;
        let ids = py.detach(|| v.extending(&p, strict));
        Ok(ids_i32(ids).into_pyarray(py))
    }

    #[pyo3(signature = (prefixes, strict = false))]
    fn extending_batch<'py>(
        &self,
        py: Python<'py>,
        prefixes: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyRes<(I64Array<'py>, I32Array<'py>)> {
        let (off, data) = bytes_list(prefixes, "prefixes")?;
        let v = &self.inner;
        let (o, ids) = py.detach(|| {
            let mut o = vec![0u64];
            let mut ids = Vec::new();
            for w in off.windows(2) {
                let (lo, hi) = v.prefix_range(&data[w[0] as usize..w[1] as usize], strict);
                let s = ids.len();
                ids.extend_from_slice(&v.sorted_ids()[lo..hi]);
                ids[s..].sort_unstable();
                o.push(ids.len() as u64);
            }
            (o, ids)
        });
        Ok(csr(py, o, ids))
    }

    fn prefixes_of<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyRes<I32Array<'py>> {
        let d = bytes_arg(data, "data")?;
        let v = &self.inner;
        let ids = py.detach(|| v.prefixes_of(&d));
        Ok(ids_i32(ids).into_pyarray(py))
    }

    fn prefixes_of_batch<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyRes<(I64Array<'py>, I32Array<'py>)> {
        let (off, bytes) = bytes_list(data, "data")?;
        let v = &self.inner;
        let (o, ids) = py.detach(|| {
            let mut o = vec![0u64];
            let mut ids = Vec::new();
            for w in off.windows(2) {
                let s = ids.len();
                v.for_each_prefix(&bytes[w[0] as usize..w[1] as usize], |_, lo, hi| {
                    ids.extend_from_slice(&v.sorted_ids()[lo..hi])
                });
                ids[s..].sort_unstable();
                o.push(ids.len() as u64);
            }
            (o, ids)
        });
        Ok(csr(py, o, ids))
    }

    fn ids_of<'py>(&self, py: Python<'py>, b: &Bound<'py, PyAny>) -> PyRes<I32Array<'py>> {
        let d = bytes_arg(b, "b")?;
        Ok(ids_i32(self.inner.ids_of(&d)).into_pyarray(py))
    }

    fn greedy_tokenize<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyRes<(I32Array<'py>, usize)> {
        let d = bytes_arg(data, "data")?;
        let v = &self.inner;
        let (ids, used) = py.detach(|| v.greedy_tokenize(&d));
        Ok((ids_i32(ids).into_pyarray(py), used))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let v = &self.inner;
        let b = py.detach(|| v.to_bytes());
        PyBytes::new(py, &b)
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyRes<Self> {
        let d = bytes_arg(data, "data")?;
        let v = py.detach(|| ByteVocab::from_bytes(&d))?;
        Ok(PyByteVocab { inner: Arc::new(v) })
    }

    /// Partial covers of `data`: (parent, token, pos, lo, hi, level_offsets, path_offsets, path_ids).
    fn cover_tree<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        max_nodes: usize,
    ) -> PyRes<Bound<'py, PyTuple>> {
        let d = bytes_arg(data, "data")?;
        let v = &self.inner;
        let (t, (po, pi)) = py.detach(|| -> PyRes<_> {
            let t = core::CoverTree::build(v, &d, max_nodes)?;
            let p = t.paths();
            Ok((t, p))
        })?;
        let sent = |x: Vec<u32>| -> Vec<i32> {
            x.into_iter().map(|y| if y == core::NONE { -1 } else { y as i32 }).collect()
        };
        let lev: Vec<i64> = t.level_offsets.into_iter().map(|x| x as i64).collect();
        let (po, pi) = csr(py, po, pi);
        let items: Vec<Bound<'py, PyAny>> = vec![
            sent(t.parent).into_pyarray(py).into_any(),
            sent(t.token).into_pyarray(py).into_any(),
            ids_i32(t.pos).into_pyarray(py).into_any(),
            ids_i32(t.lo).into_pyarray(py).into_any(),
            ids_i32(t.hi).into_pyarray(py).into_any(),
            lev.into_pyarray(py).into_any(),
            po.into_any(),
            pi.into_any(),
        ];
        Ok(PyTuple::new(py, items)?)
    }

    /// `log Σ_{r in lo[i]..hi[i]} exp(logprobs[rows[i], sorted_ids[r]])` per query (float64).
    fn range_logsumexp<'py>(
        &self,
        py: Python<'py>,
        logprobs: &Bound<'py, PyAny>,
        rows: &Bound<'py, PyAny>,
        lo: &Bound<'py, PyAny>,
        hi: &Bound<'py, PyAny>,
    ) -> PyRes<F64Array<'py>> {
        let a = f32_matrix(logprobs, "logprobs")?;
        let shape = a.shape();
        let (r, c) = (shape[0], shape[1]);
        let n = self.inner.len();
        if c < n {
            return Err(invalid(
                "logprobs",
                format!("must have >= {n} columns (the vocabulary size), got {c}"),
            ));
        }
        let rows = int_array(rows, "rows")?.to_u32_ids("rows", Some(r as u64))?;
        let lo = int_array(lo, "lo")?.to_u32_ids("lo", Some(n as u64 + 1))?;
        let hi = int_array(hi, "hi")?.to_u32_ids("hi", Some(n as u64 + 1))?;
        if lo.len() != rows.len() || hi.len() != rows.len() {
            return Err(invalid("lo", "rows, lo and hi must have the same length"));
        }
        let sl = a.as_slice().map_err(|_| invalid("logprobs", "must be C-contiguous"))?;
        let v = &self.inner;
        let out = py.detach(|| core::range_logsumexp(v.sorted_ids(), sl, c, &rows, &lo, &hi, "logprobs"))?;
        Ok(out.into_pyarray(py))
    }

    /// Lay out one GFD step for several beams (see `stepfuse.vocab.gfd_prepare`).
    fn gfd_layout(
        &self,
        py: Python<'_>,
        trailing: &Bound<'_, PyAny>,
        tokens: &Bound<'_, PyAny>,
        window: usize,
    ) -> PyRes<PyGfdLayout> {
        let (toff, tdata) = bytes_list(trailing, "trailing")?;
        let it =
            tokens.try_iter().map_err(|_| invalid_type("tokens", "must be a sequence of id sequences"))?;
        let mut ko = vec![0u64];
        let mut kids: Vec<u32> = Vec::new();
        for (i, item) in it.enumerate() {
            let ids =
                int_array(&item?, &format!("tokens[{i}]"))?.to_u32_ids(&format!("tokens[{i}]"), None)?;
            kids.extend_from_slice(&ids);
            ko.push(kids.len() as u64);
        }
        let v = &self.inner;
        let lay = py.detach(|| core::gfd_layout(v, &toff, &tdata, &ko, &kids, window))?;
        Ok(PyGfdLayout { inner: lay })
    }

    /// Score a GFD layout from model rows: (logprob[B], committed_logprob[B]) as float64.
    fn gfd_score<'py>(
        &self,
        py: Python<'py>,
        layout: &PyGfdLayout,
        logprobs: &Bound<'py, PyAny>,
    ) -> PyRes<(F64Array<'py>, F64Array<'py>)> {
        let a = f32_matrix(logprobs, "logprobs")?;
        let c = a.shape()[1];
        let sl = a.as_slice().map_err(|_| invalid("logprobs", "must be C-contiguous"))?;
        let v = &self.inner;
        let lay = &layout.inner;
        let (lp, com) = py.detach(|| core::gfd_score(v, lay, sl, c, "logprobs"))?;
        Ok((lp.into_pyarray(py), com.into_pyarray(py)))
    }
}

/// Row layout of one GFD step (read-only arrays).
#[pyclass(name = "GfdLayout", module = "stepfuse._core", frozen)]
pub struct PyGfdLayout {
    inner: core::GfdLayout,
}

fn i64s<'py>(py: Python<'py>, x: &[u64]) -> I64Array<'py> {
    x.iter().map(|&v| v as i64).collect::<Vec<_>>().into_pyarray(py)
}

#[pymethods]
impl PyGfdLayout {
    #[getter]
    fn tok_offsets<'py>(&self, py: Python<'py>) -> I64Array<'py> {
        i64s(py, &self.inner.tok_offsets)
    }
    #[getter]
    fn tok_ids<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.tok_ids.clone()).into_pyarray(py)
    }
    #[getter]
    fn row_offsets<'py>(&self, py: Python<'py>) -> I64Array<'py> {
        i64s(py, &self.inner.row_offsets)
    }
    /// Next canonical token per row (-1 for a beam's last row).
    #[getter]
    fn row_next<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        self.inner
            .row_next
            .iter()
            .map(|&t| if t == core::NONE { -1 } else { t as i32 })
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }
    #[getter]
    fn row_lo<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.row_lo.clone()).into_pyarray(py)
    }
    #[getter]
    fn row_hi<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.row_hi.clone()).into_pyarray(py)
    }
    #[getter]
    fn n_commit<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.n_commit.clone()).into_pyarray(py)
    }
    #[getter]
    fn commit_bytes<'py>(&self, py: Python<'py>) -> I32Array<'py> {
        ids_i32(self.inner.commit_bytes.clone()).into_pyarray(py)
    }
    #[getter]
    fn fell_back(&self) -> Vec<bool> {
        self.inner.fell_back.clone()
    }
    #[getter]
    fn n_rows(&self) -> usize {
        self.inner.row_lo.len()
    }
}

/// Register this area's classes and functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyByteVocab>()?;
    m.add_class::<PyGfdLayout>()?;
    Ok(())
}
