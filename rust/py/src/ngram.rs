//! Python bindings of `stepfuse_core::ngram`: conversion and GIL release only.

use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use stepfuse_core::ngram::{count::DEFAULT_CHUNK, estimate_mkn, estimate_mle, Kind, NGramCounts, NGramLM};
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

/// Register this area's classes and functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNGramCounts>()?;
    m.add_class::<PyNGramLM>()?;
    Ok(())
}
