//! Python bindings of `stepfuse_core::ngram`: conversion and GIL release only.

use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyReadwriteArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use stepfuse_core::ngram::index::{normalized_strings, Doc, DocScan, NGramIndex};
use stepfuse_core::ngram::norepeat::NoRepeatBatch;
use stepfuse_core::ngram::{
    arpa, binary, count::DEFAULT_CHUNK, estimate_mkn, estimate_mle, Kind, NGramCounts, NGramLM,
};
use stepfuse_core::CoreError;

use crate::convert::int_array;
use crate::errors::{invalid, PyRes};

fn non_negative(x: i64, arg: &str) -> PyRes<usize> {
    if x < 0 {
        return Err(CoreError::out_of_range(arg, x, "must be >= 0").into());
    }
    Ok(x as usize)
}

fn vocab_arg(x: i64) -> PyRes<u32> {
    if x < 0 || x > (u32::MAX - 3) as i64 {
        return Err(CoreError::out_of_range("vocab_size", x, "must lie in [0, 2^32 - 4]").into());
    }
    Ok(x as u32)
}

fn array2<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyRes<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((rows, cols), v).map_err(|e| invalid("output", e.to_string()))?;
    Ok(a.into_pyarray(py))
}

fn owned2(a: &PyReadonlyArray2<'_, i64>, arg: &str) -> PyRes<(Vec<i64>, usize, usize)> {
    let shape = a.shape();
    let (r, c) = (shape[0], shape[1]);
    let v = match a.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => a.as_array().iter().copied().collect(),
    };
    if v.len() != r * c {
        return Err(invalid(arg, "unexpected array size"));
    }
    Ok((v, r, c))
}

/// N-gram ids `[M, n]` and their counts `[M]`.
type NGramArrays<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray1<u64>>);

/// Counts of orders 1..N (see `stepfuse.ngram.NGramCounts`).
#[pyclass(frozen, module = "stepfuse._core", name = "_NGramCounts")]
pub struct PyNGramCounts {
    inner: NGramCounts,
}

#[pymethods]
impl PyNGramCounts {
    /// Count a flat id array split by `offsets` (S+1 entries).
    #[staticmethod]
    #[pyo3(signature = (tokens, offsets, order, vocab_size, chunk = DEFAULT_CHUNK as i64))]
    fn count(
        py: Python<'_>,
        tokens: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        order: i64,
        vocab_size: i64,
        chunk: i64,
    ) -> PyRes<Self> {
        let order = non_negative(order, "order")?;
        let v = vocab_arg(vocab_size)?;
        let chunk = non_negative(chunk, "chunk")?;
        let toks = int_array(tokens, "sentences")?.to_u32_ids("sentences", Some(v as u64 + 1))?;
        let offs = int_array(offsets, "offsets")?.to_i64("offsets")?;
        let offs: Vec<usize> = offs.iter().map(|&x| non_negative(x, "offsets")).collect::<PyRes<_>>()?;
        let inner = py.detach(|| NGramCounts::count(&toks, &offs, order, v, chunk))?;
        Ok(PyNGramCounts { inner })
    }

    /// Sum with another counting of the same order and vocabulary.
    fn merge(&self, py: Python<'_>, other: &PyNGramCounts) -> PyRes<Self> {
        let inner = py.detach(|| self.inner.merge(&other.inner))?;
        Ok(PyNGramCounts { inner })
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.order()
    }

    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.vocab_size()
    }

    #[getter]
    fn tokens(&self) -> u64 {
        self.inner.tokens()
    }

    #[getter]
    fn sentences(&self) -> u64 {
        self.inner.sentences()
    }

    /// Number of distinct n-grams of order `n`.
    fn num_ngrams(&self, n: i64) -> PyRes<usize> {
        Ok(self.inner.level(non_negative(n, "n")?)?.len())
    }

    /// The distinct n-grams of order `n` as `uint32 [M, n]` and their counts `uint64 [M]`.
    fn ngrams<'py>(&self, py: Python<'py>, n: i64) -> PyRes<NGramArrays<'py>> {
        let n = non_negative(n, "n")?;
        let (ids, counts) = py.detach(|| self.inner.ngrams(n))?;
        let m = counts.len();
        Ok((array2(py, ids, m, n)?, Array1::from_vec(counts).into_pyarray(py)))
    }
}

/// A queryable n-gram LM (see `stepfuse.ngram.NGramLM`).
#[pyclass(frozen, module = "stepfuse._core", name = "_NGramLM")]
pub struct PyNGramLM {
    inner: NGramLM,
}

#[pymethods]
impl PyNGramLM {
    /// Estimate from counts: smoothing "modified_kneser_ney" or "interpolated_mle".
    #[staticmethod]
    #[pyo3(signature = (counts, smoothing, weights = None, discount_fallback = None))]
    fn train(
        py: Python<'_>,
        counts: &PyNGramCounts,
        smoothing: &str,
        weights: Option<Vec<f64>>,
        discount_fallback: Option<(f64, f64, f64)>,
    ) -> PyRes<Self> {
        let c = &counts.inner;
        let inner = match smoothing {
            "modified_kneser_ney" => {
                if let Some((a, b, d)) = discount_fallback {
                    if ![a, b, d].iter().all(|x| x.is_finite() && *x >= 0.0) {
                        return Err(invalid(
                            "discount_fallback",
                            "must be three finite non-negative discounts",
                        ));
                    }
                }
                let fb = discount_fallback.map(|(a, b, d)| [a, b, d]);
                py.detach(|| NGramLM::from_levels(estimate_mkn(c, fb)?))?
            }
            "interpolated_mle" => {
                let n = c.order();
                let w = weights.unwrap_or_else(|| vec![1.0 / n as f64; n]);
                py.detach(|| NGramLM::from_levels(estimate_mle(c, &w)?))?
            }
            other => {
                return Err(invalid(
                    "smoothing",
                    format!("must be 'modified_kneser_ney' or 'interpolated_mle', got {other:?}"),
                ))
            }
        };
        Ok(PyNGramLM { inner })
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.order()
    }

    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.vocab_size()
    }

    /// "backoff" or "interpolated_mle".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind() {
            Kind::Backoff => "backoff",
            Kind::InterpolatedMle(_) => "interpolated_mle",
        }
    }

    /// Interpolation weights (interpolated MLE), else None.
    #[getter]
    fn weights(&self) -> Option<Vec<f64>> {
        match self.inner.kind() {
            Kind::Backoff => None,
            Kind::InterpolatedMle(w) => Some(w.clone()),
        }
    }

    /// Modified Kneser–Ney discounts (D1, D2, D3+) per order, when trained here.
    #[getter]
    fn discounts(&self) -> Vec<(f64, f64, f64)> {
        self.inner.discounts().iter().map(|d| (d[0], d[1], d[2])).collect()
    }

    /// Bytes of the hash layout.
    #[getter]
    fn hash_nbytes(&self) -> usize {
        self.inner.hash_nbytes()
    }

    /// Whether the sorted n-gram list is kept.
    #[getter]
    fn has_ngrams(&self) -> bool {
        self.inner.has_ngrams()
    }

    /// Stored n-grams of order n.
    fn count(&self, n: i64) -> PyRes<usize> {
        Ok(self.inner.count(non_negative(n, "n")?))
    }

    /// (ln prob, ln backoff) of a stored n-gram, or None.
    fn entry(&self, ngram: &Bound<'_, PyAny>) -> PyRes<Option<(f32, f32)>> {
        let ids = int_array(ngram, "ngram")?.to_u32_ids("ngram", Some(self.inner.vocab_size() as u64 + 3))?;
        Ok(self.inner.entry(&ids))
    }

    /// Natural-log probabilities `float32 [B, K]` of `tokens int64 [B, K]` after `contexts int64 [B, L]`.
    fn score<'py>(
        &self,
        py: Python<'py>,
        contexts: PyReadonlyArray2<'py, i64>,
        tokens: PyReadonlyArray2<'py, i64>,
    ) -> PyRes<Bound<'py, PyArray2<f32>>> {
        let (c, b, l) = owned2(&contexts, "contexts")?;
        let (t, bt, k) = owned2(&tokens, "tokens")?;
        if bt != b {
            return Err(invalid("tokens", format!("must have one row per context row ({bt} != {b})")));
        }
        let out = py.detach(|| self.inner.score_batch(&c, b, l, &t, k))?;
        array2(py, out, b, k)
    }

    /// Write an ARPA file; `words[i]` is the string of user id i.
    fn write_arpa(&self, py: Python<'_>, path: &str, words: Vec<String>) -> PyRes<()> {
        py.detach(|| -> stepfuse_core::Result<()> {
            let f = std::fs::File::create(path).map_err(|e| CoreError::io(path, &e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            arpa::write_arpa(&self.inner, &words, &mut w, path)?;
            std::io::Write::flush(&mut w).map_err(|e| CoreError::io(path, &e))
        })?;
        Ok(())
    }

    /// Read an ARPA file: (model, words of the user ids).
    #[staticmethod]
    fn read_arpa(py: Python<'_>, path: &str) -> PyRes<(Self, Vec<String>)> {
        let (inner, words) = py.detach(|| -> stepfuse_core::Result<_> {
            let f = std::fs::File::open(path).map_err(|e| CoreError::io(path, &e))?;
            arpa::read_arpa(std::io::BufReader::with_capacity(1 << 20, f), path)
        })?;
        Ok((PyNGramLM { inner }, words))
    }

    /// Read ARPA text held in memory (e.g. decompressed): (model, words).
    #[staticmethod]
    fn read_arpa_bytes(py: Python<'_>, data: &Bound<'_, PyAny>, name: &str) -> PyRes<(Self, Vec<String>)> {
        let bytes = crate::convert::bytes_arg(data, "data")?;
        let (inner, words) = py.detach(|| arpa::read_arpa(&bytes[..], name))?;
        Ok((PyNGramLM { inner }, words))
    }

    /// Save the binary hash layout (plus `extra` bytes; `ngrams` keeps the sorted n-gram list).
    fn save(&self, py: Python<'_>, path: &str, extra: &Bound<'_, PyAny>, ngrams: bool) -> PyRes<()> {
        let extra = crate::convert::bytes_arg(extra, "extra")?;
        py.detach(|| -> stepfuse_core::Result<()> {
            let f = std::fs::File::create(path).map_err(|e| CoreError::io(path, &e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            binary::save(&self.inner, &extra, ngrams, &mut w, path)?;
            std::io::Write::flush(&mut w).map_err(|e| CoreError::io(path, &e))
        })?;
        Ok(())
    }

    /// Load a binary model (memory-mapped or copied): (model, extra bytes).
    #[staticmethod]
    fn load<'py>(py: Python<'py>, path: &str, mmap: bool) -> PyRes<(Self, Bound<'py, PyBytes>)> {
        let (inner, extra) = py.detach(|| binary::load(path, mmap))?;
        Ok((PyNGramLM { inner }, PyBytes::new(py, &extra)))
    }

    /// Natural-log probabilities `float32 [B, vocab_size]` after each context row of `int64 [B, L]`.
    fn next_logprobs<'py>(
        &self,
        py: Python<'py>,
        contexts: PyReadonlyArray2<'py, i64>,
    ) -> PyRes<Bound<'py, PyArray2<f32>>> {
        let (c, b, l) = owned2(&contexts, "contexts")?;
        let out = py.detach(|| self.inner.next_logprobs(&c, b, l))?;
        array2(py, out, b, self.inner.vocab_size() as usize)
    }
}

fn ids_u32(v: &[i64], arg: &str) -> PyRes<Vec<u32>> {
    v.iter()
        .map(|&x| {
            if x < 0 || x > u32::MAX as i64 {
                Err(CoreError::out_of_range(arg, x, "token ids must lie in [0, 2^32)").into())
            } else {
                Ok(x as u32)
            }
        })
        .collect()
}

/// Two int64 arrays (rows, columns).
type PairI64<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Incremental no-repeat-n-gram states of a batch (see `stepfuse.ngram.NoRepeatNGram`).
#[pyclass(module = "stepfuse._core", name = "_NoRepeatNGram")]
pub struct PyNoRepeat {
    inner: NoRepeatBatch,
}

#[pymethods]
impl PyNoRepeat {
    #[new]
    fn new(n: i64, batch_size: i64) -> PyRes<Self> {
        let n = non_negative(n, "n")?;
        let b = non_negative(batch_size, "batch_size")?;
        Ok(PyNoRepeat { inner: NoRepeatBatch::new(n, b)? })
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    #[getter]
    fn batch_size(&self) -> usize {
        self.inner.len()
    }

    /// Append one token per row.
    fn update(&mut self, tokens: &Bound<'_, PyAny>) -> PyRes<()> {
        let t = int_array(tokens, "tokens")?.to_u32_ids("tokens", None)?;
        Ok(self.inner.update(&t)?)
    }

    /// Append tokens to one row.
    fn extend_row(&mut self, row: i64, tokens: &Bound<'_, PyAny>) -> PyRes<()> {
        let r = non_negative(row, "row")?;
        let t = int_array(tokens, "tokens")?.to_u32_ids("tokens", None)?;
        Ok(self.inner.extend_row(r, &t)?)
    }

    /// Make the states equal to `input_ids int64 [B, L]` (extending rows that grew, rebuilding others).
    fn sync(&mut self, py: Python<'_>, input_ids: PyReadonlyArray2<'_, i64>) -> PyRes<()> {
        let (v, b, l) = owned2(&input_ids, "input_ids")?;
        let ids = ids_u32(&v, "input_ids")?;
        let inner = &mut self.inner;
        py.detach(|| inner.sync(&ids, b, l))?;
        Ok(())
    }

    /// Banned (rows, cols) as int64 arrays, tokens below `limit`.
    fn banned<'py>(&self, py: Python<'py>, limit: i64) -> PyRes<PairI64<'py>> {
        let lim = non_negative(limit, "limit")?.min(u32::MAX as usize) as u32;
        let (r, c) = self.inner.banned(lim);
        Ok((Array1::from_vec(r).into_pyarray(py), Array1::from_vec(c).into_pyarray(py)))
    }

    /// Set banned entries of a C-contiguous float32 `[B, V]` numpy array to -inf in place.
    fn apply_f32(&self, mut logits: PyReadwriteArray2<'_, f32>) -> PyRes<()> {
        let v = logits.shape()[1];
        let s = logits.as_slice_mut().map_err(|_| invalid("logits", "must be C-contiguous"))?;
        Ok(self.inner.apply_f32(s, v)?)
    }

    /// History of one row (uint32).
    fn history<'py>(&self, py: Python<'py>, row: i64) -> PyRes<Bound<'py, PyArray1<u32>>> {
        let r = self.inner.row(non_negative(row, "row")?)?;
        Ok(Array1::from_vec(r.history().to_vec()).into_pyarray(py))
    }
}

/// Scan results of a batch as flat columns: overlap u64 [D], total u64 [D], reference-id offsets
/// u64 [D + 1] into reference ids u32 [R], span offsets u64 [D + 1] into spans u64 [S, 2]. Document d
/// owns `refs[ref_offsets[d]..ref_offsets[d + 1]]` and likewise for spans.
type ScanColumns<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray2<u64>>,
);

/// The columns of [`ScanColumns`] as owned vectors (spans flattened row-major).
struct Columns {
    overlap: Vec<u64>,
    total: Vec<u64>,
    ref_offsets: Vec<u64>,
    refs: Vec<u32>,
    span_offsets: Vec<u64>,
    spans: Vec<u64>,
}

fn columns(res: Vec<DocScan>) -> Columns {
    let d = res.len();
    let mut c = Columns {
        overlap: Vec::with_capacity(d),
        total: Vec::with_capacity(d),
        ref_offsets: Vec::with_capacity(d + 1),
        refs: Vec::new(),
        span_offsets: Vec::with_capacity(d + 1),
        spans: Vec::new(),
    };
    c.ref_offsets.push(0);
    c.span_offsets.push(0);
    for r in res {
        c.overlap.push(r.overlap);
        c.total.push(r.total);
        c.refs.extend_from_slice(&r.refs);
        c.ref_offsets.push(c.refs.len() as u64);
        c.spans.extend(r.spans.iter().flat_map(|&(a, b)| [a, b]));
        c.span_offsets.push(c.spans.len() as u64 / 2);
    }
    c
}

fn scan_out(py: Python<'_>, c: Columns) -> PyRes<ScanColumns<'_>> {
    let k = c.spans.len() / 2;
    Ok((
        Array1::from_vec(c.overlap).into_pyarray(py),
        Array1::from_vec(c.total).into_pyarray(py),
        Array1::from_vec(c.ref_offsets).into_pyarray(py),
        Array1::from_vec(c.refs).into_pyarray(py),
        Array1::from_vec(c.span_offsets).into_pyarray(py),
        array2(py, c.spans, k, 2)?,
    ))
}

/// The UTF-8 of each text, borrowed from the str objects (which `texts` keeps alive): no copy.
fn borrow_texts<'a>(texts: &'a [Bound<'_, PyString>]) -> PyRes<Vec<&'a str>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.to_str()
                .map_err(|_| invalid("texts", format!("text {i} is not valid Unicode (a lone surrogate?)")))
        })
        .collect()
}

fn id_docs(docs: &Bound<'_, PyAny>) -> PyRes<Vec<Vec<u64>>> {
    let mut out = Vec::new();
    for d in docs.try_iter()? {
        out.push(int_array(&d?, "docs")?.to_u64_symbols());
    }
    Ok(out)
}

/// Reference n-gram set for decontamination (see `stepfuse.ngram.NGramIndex`).
#[pyclass(module = "stepfuse._core", name = "_NGramIndex")]
pub struct PyNGramIndex {
    inner: NGramIndex,
}

#[pymethods]
impl PyNGramIndex {
    #[new]
    fn new(n: i64, normalize: bool) -> PyRes<Self> {
        Ok(PyNGramIndex { inner: NGramIndex::new(non_negative(n, "n")?, normalize)? })
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    #[getter]
    fn normalize(&self) -> bool {
        self.inner.normalize()
    }

    #[getter]
    fn num_ngrams(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn num_docs(&self) -> u64 {
        self.inner.num_docs()
    }

    /// Add reference texts with ids `first_id ..`.
    fn add_texts(&mut self, py: Python<'_>, texts: Vec<Bound<'_, PyString>>, first_id: u32) -> PyRes<()> {
        let texts = borrow_texts(&texts)?;
        let inner = &mut self.inner;
        py.detach(|| {
            let docs: Vec<Doc<'_>> = texts.iter().map(|t| Doc::Text(t)).collect();
            inner.add(&docs, first_id)
        })?;
        Ok(())
    }

    /// Add reference token-id documents with ids `first_id ..`.
    fn add_ids(&mut self, py: Python<'_>, docs: &Bound<'_, PyAny>, first_id: u32) -> PyRes<()> {
        let ids = id_docs(docs)?;
        let inner = &mut self.inner;
        py.detach(|| {
            let docs: Vec<Doc<'_>> = ids.iter().map(|t| Doc::Ids(t)).collect();
            inner.add(&docs, first_id)
        })?;
        Ok(())
    }

    /// Scan texts (borrowed, not copied, while the GIL is released): flat result columns.
    fn scan_texts<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        spans: bool,
    ) -> PyRes<ScanColumns<'py>> {
        let strs = borrow_texts(&texts)?;
        let cols = py.detach(|| {
            let docs: Vec<Doc<'_>> = strs.iter().map(|t| Doc::Text(t)).collect();
            columns(self.inner.scan(&docs, spans))
        });
        scan_out(py, cols)
    }

    /// Scan token-id documents: flat result columns.
    fn scan_ids<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'_, PyAny>,
        spans: bool,
    ) -> PyRes<ScanColumns<'py>> {
        let ids = id_docs(docs)?;
        let cols = py.detach(|| {
            let docs: Vec<Doc<'_>> = ids.iter().map(|t| Doc::Ids(t)).collect();
            columns(self.inner.scan(&docs, spans))
        });
        scan_out(py, cols)
    }
}

/// Words of `text` as the index sees them (lowercased alphanumeric runs, or whitespace pieces).
#[pyfunction]
#[pyo3(signature = (text, normalize = true))]
fn ngram_words(text: &str, normalize: bool) -> Vec<String> {
    normalized_strings(text, normalize)
}

/// Register this area's classes and functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNGramCounts>()?;
    m.add_class::<PyNGramLM>()?;
    m.add_class::<PyNoRepeat>()?;
    m.add_class::<PyNGramIndex>()?;
    m.add_function(wrap_pyfunction!(ngram_words, m)?)?;
    Ok(())
}
