//! Allowed-document sets and exact search over several engine segments at once.

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sparsedex_core::index::Index;
use sparsedex_core::search::{self, DocSet, QueryRef};
use std::path::PathBuf;
use std::sync::Arc;

use crate::convert::{algorithm, csr, matrices, slice, Csr1, PyBm25Stats, SegHits1, SegHits2, Vec1};
use crate::error::{enter, enter_long, enter_search, to_py};
use crate::index::PyIndex;

/// A set of allowed internal doc ids of one index (bit d%64 of word d//64), built once and
/// reused across searches.
#[pyclass(frozen, name = "DocSet", module = "sparsedex._core")]
pub struct PyDocSet {
    pub inner: DocSet,
}

#[pymethods]
impl PyDocSet {
    /// From uint64 words over an index of `n_docs` documents (exactly ceil(n_docs/64) words;
    /// bits past n_docs are ignored).
    #[new]
    fn new(words: PyReadonlyArray1<'_, u64>, n_docs: u32) -> PyResult<Self> {
        let inner = DocSet::from_words(slice(&words, "words")?.to_vec(), n_docs).map_err(to_py)?;
        Ok(PyDocSet { inner })
    }

    /// The words (uint64).
    fn words<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.words().to_vec().into_pyarray(py)
    }

    /// Number of documents in the set.
    fn __len__(&self) -> usize {
        self.inner.len() as usize
    }
}

/// The indexes and allowed sets behind the Python objects (shared, not copied), so that the
/// search can run without the interpreter.
type Shared = (Vec<Arc<Index>>, Vec<Option<DocSet>>);

fn shared(indexes: &[Bound<'_, PyIndex>], allowed: &[Option<Bound<'_, PyDocSet>>]) -> PyResult<Shared> {
    if indexes.len() != allowed.len() {
        return Err(PyValueError::new_err(format!(
            "{} indexes but {} allowed sets: give one (or None) per index",
            indexes.len(),
            allowed.len()
        )));
    }
    Ok((
        indexes.iter().map(|b| b.get().inner.clone()).collect(),
        allowed.iter().map(|a| a.as_ref().map(|d| d.get().inner.clone())).collect(),
    ))
}

fn segments_of<'a>(indexes: &'a [Arc<Index>], allowed: &'a [Option<DocSet>]) -> Vec<search::Segment<'a>> {
    indexes.iter().zip(allowed).map(|(ix, a)| search::Segment { index: ix, allowed: a.as_ref() }).collect()
}

/// Exact global top-k of one query over several indexes (segments), each restricted to its
/// allowed set (None: every document): (segment positions uint32, internal docs uint32,
/// scores float32), best first; ties go to the earlier segment, then the earlier document.
/// BM25 segments are scored under `stats` (every document of the segments when None); u8
/// segments return `scores` ("vectors": float32 dot products of the stored vectors, the exact
/// float top-k; "impacts": the 8-bit scores).
#[pyfunction]
#[pyo3(signature = (indexes, allowed, indices, values, k=10, algorithm="auto", stats=None, target_recall=None, scores="vectors"))]
#[allow(clippy::too_many_arguments)]
pub fn search_segments<'py>(
    py: Python<'py>,
    indexes: Vec<Bound<'py, PyIndex>>,
    allowed: Vec<Option<Bound<'py, PyDocSet>>>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    k: usize,
    algorithm: &str,
    stats: Option<Bound<'py, PyBm25Stats>>,
    target_recall: Option<f64>,
    scores: &str,
) -> PyResult<SegHits1<'py>> {
    let algo = crate::convert::algorithm(algorithm, target_recall)?;
    let scores = crate::convert::scores(scores)?;
    let (ixs, sets) = shared(&indexes, &allowed)?;
    let segs = segments_of(&ixs, &sets);
    let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
    let stats = stats.map(|s| s.get().inner.clone());
    let hits = enter_search(py, algo, q.terms.len(), || {
        search::search_segments_scores(&segs, q, k, algo, stats.as_ref(), scores)
    })?;
    let a: Vec<u32> = hits.iter().map(|h| h.segment).collect();
    let d: Vec<u32> = hits.iter().map(|h| h.doc).collect();
    let v: Vec<f32> = hits.iter().map(|h| h.score).collect();
    Ok((a.into_pyarray(py), d.into_pyarray(py), v.into_pyarray(py)))
}

/// `search_segments` for a CSR batch of queries, on all cores (or `threads`): (segment
/// positions int64 [nq, k], internal docs int64 [nq, k], scores float32 [nq, k]), -1 / NaN
/// where a query has fewer hits; k is capped at the number of documents.
#[pyfunction]
#[pyo3(signature = (indexes, allowed, indptr, indices, values, k=10, algorithm="auto", threads=None, stats=None, target_recall=None, scores="vectors"))]
#[allow(clippy::too_many_arguments)]
pub fn search_segments_batch<'py>(
    py: Python<'py>,
    indexes: Vec<Bound<'py, PyIndex>>,
    allowed: Vec<Option<Bound<'py, PyDocSet>>>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    k: usize,
    algorithm: &str,
    threads: Option<usize>,
    stats: Option<Bound<'py, PyBm25Stats>>,
    target_recall: Option<f64>,
    scores: &str,
) -> PyResult<SegHits2<'py>> {
    let algo = crate::convert::algorithm(algorithm, target_recall)?;
    let score_kind = crate::convert::scores(scores)?;
    let (ixs, sets) = shared(&indexes, &allowed)?;
    let segs = segments_of(&ixs, &sets);
    let k = search::effective_k_segments(&segs, k).map_err(to_py)?;
    let queries = csr(&indptr, &indices, &values)?;
    let stats = stats.map(|s| s.get().inner.clone());
    let (sg, docs, scores, nq) = enter_long(py, || {
        let res = search::search_segments_batch_scores(&segs, queries, k, algo, threads, stats.as_ref(), score_kind)?;
        let (sg, docs, scores) = matrices(&res, k, |h| (h.segment as i64, h.doc as i64, h.score));
        Ok((sg, docs, scores, res.len()))
    })?;
    Ok((
        sg.into_pyarray(py).reshape([nq, k])?,
        docs.into_pyarray(py).reshape([nq, k])?,
        scores.into_pyarray(py).reshape([nq, k])?,
    ))
}

/// Validate CSR document rows as the index builder does (errors name the document) and
/// return them cleaned: zero weights dropped, rows sorted by term id.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, n_terms=None))]
pub fn clean_csr<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    n_terms: Option<u32>,
) -> PyResult<Csr1<'py>> {
    let docs = csr(&indptr, &indices, &values)?;
    let (p, t, v) = enter(py, || sparsedex_core::vectors::clean_csr(docs, n_terms))?;
    Ok((p.into_pyarray(py), t.into_pyarray(py), v.into_pyarray(py)))
}

/// The number of distinct queries among CSR `queries` as a calibration on them counts them: a
/// copy, or a scaled copy (the same terms, weights in the same proportions), counts once
/// (`search::approx::calibrate::distinct_queries`). ValueError naming a malformed query.
#[pyfunction]
pub fn distinct_queries(
    py: Python<'_>,
    indptr: PyReadonlyArray1<'_, u64>,
    indices: PyReadonlyArray1<'_, u32>,
    values: PyReadonlyArray1<'_, f32>,
) -> PyResult<usize> {
    let q = csr(&indptr, &indices, &values)?;
    Ok(enter(py, || sparsedex_core::search::approx::calibrate::distinct_queries(q))?)
}

/// Whether one vector already meets the vector contract as the engine stores it: weights
/// positive, finite and at most 1e14, term ids strictly ascending and below `n_terms` when
/// given. One pass, no copies, so that a caller can skip its own checks (which name what is
/// wrong) for the common, clean vector; False says only that those checks must run.
#[pyfunction]
#[pyo3(signature = (indices, values, n_terms=None))]
pub fn row_is_clean(
    indices: PyReadonlyArray1<'_, u32>,
    values: PyReadonlyArray1<'_, f32>,
    n_terms: Option<u32>,
) -> bool {
    match (indices.as_slice(), values.as_slice()) {
        (Ok(i), Ok(v)) => {
            use sparsedex_core::vectors::{row_is_clean_within, MAX_WEIGHT};
            row_is_clean_within(i, v, n_terms, MAX_WEIGHT)
        }
        _ => false, // not contiguous or not aligned: the caller's checks run
    }
}

/// One vector given with other dtypes (indices int32 / int64 / uint64, values float64 /
/// int32 / int64, as numpy makes them from Python lists and dicts and as fastembed returns
/// them), as uint32 / float32 arrays when, converted, it meets the vector contract as
/// [`row_is_clean`] checks it: every id fits 32 bits and is below `n_terms` when given, ids
/// strictly ascending, every weight, rounded to float32 as numpy's `astype` rounds it,
/// positive, finite and at most 1e14. None for anything else (other dtypes, arrays that are
/// not contiguous, or a vector that breaks the contract): the caller's checks, which name
/// what is wrong, run then. One pass, so that the common clean query skips a dozen numpy
/// calls on arrays of a few dozen entries.
#[pyfunction]
#[pyo3(signature = (indices, values, n_terms=None))]
// uint32 ids beside float64 weights, int64 ids beside float32 ones: each side converts its own
// dtype as well, where the conversion is the identity
#[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
pub fn clean_row<'py>(
    py: Python<'py>,
    indices: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    n_terms: Option<u32>,
) -> Option<Vec1<'py>> {
    use sparsedex_core::vectors::{row_is_clean_within, MAX_WEIGHT};
    macro_rules! convert {
        ($x:expr, $f:expr, $($t:ty),+) => {{
            let mut out = None;
            $(
                if out.is_none() {
                    if let Ok(a) = $x.cast::<PyArray1<$t>>() {
                        // an array borrowed mutably elsewhere, or not contiguous: None
                        out = Some(a.try_readonly().ok().and_then(|a| {
                            a.as_slice().ok().and_then(|s| s.iter().map(|&v| $f(v)).collect::<Option<Vec<_>>>())
                        }));
                    }
                }
            )+
            out.flatten()
        }};
    }
    let ids: Vec<u32> = convert!(indices, |v| u32::try_from(v).ok(), i64, i32, u64, u32)?;
    let ws: Vec<f32> = convert!(values, |v| Some(v as f32), f64, i64, i32, f32)?;
    row_is_clean_within(&ids, &ws, n_terms, MAX_WEIGHT).then(|| (ids.into_pyarray(py), ws.into_pyarray(py)))
}

/// Names of the traversal algorithms, in the order the benchmarks report them.
#[pyfunction]
pub fn algorithms() -> Vec<&'static str> {
    search::Algorithm::ALL.iter().map(|a| a.name()).collect()
}

/// Approximate-search calibrations in this process so far: (calibrations computed,
/// calibration files written, calibration files read). For tests: a reopened index whose
/// segments read their calibration files computes none.
#[pyfunction]
pub fn calibration_counters() -> (u64, u64, u64) {
    let (written, loaded) = sparsedex_core::search::approx::persist::counters();
    (sparsedex_core::search::approx::calibrate::calibrations_made(), written, loaded)
}

/// The canonical name of an algorithm name or alias (ValueError if unknown).
#[pyfunction]
pub fn algorithm_name(name: &str) -> PyResult<&'static str> {
    Ok(algorithm(name, None)?.name())
}

/// Which SIMD kernel the codec uses on this machine.
#[pyfunction]
pub fn simd_kernel() -> &'static str {
    sparsedex_core::codec::kernel_name()
}

/// Write `data` to `path` atomically and durably: a unique temporary file in the same
/// directory, fsync, rename over `path`, fsync the directory (the temporary file is removed on
/// error). The one atomic write of the package.
#[pyfunction]
pub fn write_atomically(py: Python<'_>, path: PathBuf, data: &[u8]) -> PyResult<()> {
    let data = data.to_vec();
    enter(py, move || sparsedex_core::fs::write_atomically(&path, &data))
}
