//! Thin PyO3 bindings of `sparsedex-core`: numpy in, numpy out, errors mapped to Python
//! exceptions, the interpreter released for every piece of real work.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization};
use sparsedex_core::index::{ExternalIds, ImpactKind, Index};
use sparsedex_core::reorder::{BpOptions, BpWeighting, Reorder};
use sparsedex_core::search::{self, Algorithm, DocSet, QueryRef};
use sparsedex_core::Error;
use std::path::PathBuf;
use std::sync::Arc;

pyo3::create_exception!(_core, SparsedexError, PyException, "Base class of sparsedex errors.");
pyo3::create_exception!(
    _core,
    CorruptIndexError,
    SparsedexError,
    "An index file is truncated, corrupted, of another format version, or not an index file."
);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::InvalidDocument { .. } | Error::InvalidQuery { .. } | Error::InvalidArgument(_) => {
            PyValueError::new_err(e.to_string())
        }
        Error::Corrupt(_) | Error::UnsupportedVersion { .. } => CorruptIndexError::new_err(e.to_string()),
        Error::Io { ref source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(e.to_string()),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(e.to_string()),
            _ => PyOSError::new_err(e.to_string()),
        },
    }
}

/// Run `f` without the interpreter lock, turning core errors (and, defensively, panics) into
/// Python exceptions. A panic is a bug; it must still never reach users as PanicException.
fn enter<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    let r = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match r {
        Ok(r) => r.map_err(to_py),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(SparsedexError::new_err(format!("internal error (please report it): {msg}")))
        }
    }
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous 1-d array")))
}

/// Term ids and weights (or doc ids and scores) as numpy arrays.
type Vec1<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);
/// A batch of hits: ids `[nq, k]` and scores `[nq, k]`.
type Hits2<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);
/// CSR arrays.
type Csr1<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);

fn doc_set(a: &Option<PyReadonlyArray1<'_, u64>>, n_docs: u32) -> PyResult<Option<DocSet>> {
    match a {
        None => Ok(None),
        Some(a) => DocSet::from_words(slice(a, "allowed")?.to_vec(), n_docs).map(Some).map_err(to_py),
    }
}

fn parse_algo(s: &str) -> PyResult<Algorithm> {
    s.parse().map_err(to_py)
}

/// An immutable index over sparse vectors (the low-level engine behind `sparsedex.VectorIndex`).
#[pyclass(frozen, name = "Index", module = "sparsedex._core")]
struct PyIndex {
    inner: Arc<Index>,
}

#[pymethods]
impl PyIndex {
    /// Build from CSR arrays (indptr u64, indices u32, values f32). `reorder`: "bp",
    /// "signature", "none", True (the default order) or False (none).
    #[staticmethod]
    #[pyo3(signature = (indptr, indices, values, *, n_terms=None, quantization="u8", scale=None, ids_int=None, ids_str=None, store_vectors=true, reorder=ReorderArg::Bool(true)),
        text_signature = "(indptr, indices, values, *, n_terms=None, quantization=\"u8\", scale=None, ids_int=None, ids_str=None, store_vectors=True, reorder=True)")]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, u64>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
        n_terms: Option<u32>,
        quantization: &str,
        scale: Option<f32>,
        ids_int: Option<PyReadonlyArray1<'_, i64>>,
        ids_str: Option<Vec<String>>,
        store_vectors: bool,
        reorder: ReorderArg,
    ) -> PyResult<Self> {
        let reorder = reorder.parse()?;
        let quantization = match quantization {
            "u8" => Quantization::U8 { scale },
            "float" | "f32" => {
                if scale.is_some() {
                    return Err(PyValueError::new_err("scale only applies to quantization='u8'"));
                }
                Quantization::F32
            }
            other => return Err(PyValueError::new_err(format!("quantization must be 'u8' or 'float', got '{other}'"))),
        };
        let csr = CsrRef {
            indptr: slice(&indptr, "indptr")?,
            indices: slice(&indices, "indices")?,
            values: slice(&values, "values")?,
        };
        let ids_i = match &ids_int {
            Some(a) => Some(slice(a, "ids")?),
            None => None,
        };
        let opts = BuildOptions { n_terms, quantization, store_vectors, reorder };
        let ids_s = ids_str.as_deref();
        let index = enter(py, || {
            let ids = match (ids_i, ids_s) {
                (Some(i), _) => IdsInput::Int(i),
                (None, Some(s)) => IdsInput::Str(s),
                (None, None) => IdsInput::None,
            };
            build(csr, ids, &opts)
        })?;
        Ok(PyIndex { inner: Arc::new(index) })
    }

    /// Open an index file (memory-mapped; every checksum verified).
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let index = enter(py, || Index::open(&path))?;
        Ok(PyIndex { inner: Arc::new(index) })
    }

    /// Write the index to a file, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        enter(py, move || inner.save(&path))
    }

    /// Exact top-k of one query: (doc ids uint32, scores float32), best first. `allowed`: a
    /// uint64 bitset over internal doc ids (bit d%64 of word d//64); only those documents can
    /// be returned.
    #[pyo3(signature = (indices, values, k=10, algorithm="auto", allowed=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        algorithm: &str,
        allowed: Option<PyReadonlyArray1<'py, u64>>,
    ) -> PyResult<Vec1<'py>> {
        let algo = parse_algo(algorithm)?;
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let inner = &self.inner;
        let allowed = doc_set(&allowed, inner.n_docs())?;
        let hits = enter(py, || search::search_filtered(inner, q, k, algo, allowed.as_ref()))?;
        let docs: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
        Ok((docs.into_pyarray(py), scores.into_pyarray(py)))
    }

    /// Exact top-k of a CSR batch of queries, on all cores (or `threads`). Returns
    /// (doc ids int64 [nq, c], scores float32 [nq, c]) with c = min(k, number of documents);
    /// missing hits are -1 / NaN.
    #[pyo3(signature = (indptr, indices, values, k=10, algorithm="auto", threads=None, allowed=None))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, u64>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        algorithm: &str,
        threads: Option<usize>,
        allowed: Option<PyReadonlyArray1<'py, u64>>,
    ) -> PyResult<Hits2<'py>> {
        let algo = parse_algo(algorithm)?;
        let csr = CsrRef {
            indptr: slice(&indptr, "indptr")?,
            indices: slice(&indices, "indices")?,
            values: slice(&values, "values")?,
        };
        let inner = &self.inner;
        // Columns: k, or the number of documents if that is smaller (no more hits can exist).
        let k = search::effective_k(inner, k).map_err(to_py)?;
        let allowed = doc_set(&allowed, inner.n_docs())?;
        let (docs, scores, nq) = enter(py, || {
            let res = search::search_batch(inner, csr, k, algo, threads, allowed.as_ref())?;
            let nq = res.len();
            let mut docs = vec![-1i64; nq * k];
            let mut scores = vec![f32::NAN; nq * k];
            for (i, hits) in res.iter().enumerate() {
                for (j, h) in hits.iter().enumerate() {
                    docs[i * k + j] = h.doc as i64;
                    scores[i * k + j] = h.score;
                }
            }
            Ok((docs, scores, nq))
        })?;
        let docs = docs.into_pyarray(py).reshape([nq, k])?;
        let scores = scores.into_pyarray(py).reshape([nq, k])?;
        Ok((docs, scores))
    }

    /// Per-term breakdown of a document's score for a query: list of
    /// (term, query weight, stored weight, contribution); contributions sum to the score.
    fn explain(
        &self,
        py: Python<'_>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
        doc: u32,
    ) -> PyResult<Vec<(u32, f32, f32, f32)>> {
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let inner = &self.inner;
        let parts = enter(py, || sparsedex_core::search::explain::explain(inner, q, doc))?;
        Ok(parts.into_iter().map(|p| (p.term, p.query_weight, p.doc_weight, p.contribution)).collect())
    }

    /// The stored vector of internal doc `doc`: (indices uint32, values float32).
    fn get<'py>(&self, py: Python<'py>, doc: u32) -> PyResult<Vec1<'py>> {
        let v = self.inner.view();
        let f = v.forward.ok_or_else(|| {
            PyValueError::new_err("this index was built with store_vectors=False: vectors are not stored")
        })?;
        if doc >= v.n_docs {
            return Err(PyValueError::new_err(format!(
                "document {doc} is out of range (the index has {} documents)",
                v.n_docs
            )));
        }
        let (a, b) = (f.indptr[doc as usize] as usize, f.indptr[doc as usize + 1] as usize);
        Ok((f.terms[a..b].to_vec().into_pyarray(py), f.values[a..b].to_vec().into_pyarray(py)))
    }

    /// All stored vectors as CSR arrays in internal doc order: (indptr uint64, indices uint32,
    /// values float32).
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Csr1<'py>> {
        let v = self.inner.view();
        let f = v.forward.ok_or_else(|| {
            PyValueError::new_err("this index was built with store_vectors=False: vectors are not stored")
        })?;
        Ok((f.indptr.to_vec().into_pyarray(py), f.terms.to_vec().into_pyarray(py), f.values.to_vec().into_pyarray(py)))
    }

    /// External ids stored with the index: None, an int64 array, or a list of str.
    fn ids<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(match self.inner.view().ids {
            ExternalIds::None => None,
            ExternalIds::Int(a) => Some(a.to_vec().into_pyarray(py).into_any()),
            ExternalIds::Str { offsets, bytes } => {
                let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
                for w in offsets.windows(2) {
                    let s = std::str::from_utf8(&bytes[w[0] as usize..w[1] as usize])
                        .map_err(|_| CorruptIndexError::new_err("stored string ids are not valid UTF-8"))?;
                    out.push(s.to_string());
                }
                Some(out.into_pyobject(py)?.into_any())
            }
        })
    }

    /// Counts and sizes.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("documents", s.n_docs)?;
        d.set_item("vocabulary", s.n_terms)?;
        d.set_item("terms", s.n_nonempty_terms)?;
        d.set_item("postings", s.n_postings)?;
        d.set_item("blocks", s.n_blocks)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("postings_bytes", s.postings_bytes)?;
        d.set_item("vectors_bytes", s.forward_bytes)?;
        d.set_item(
            "quantization",
            match s.kind {
                ImpactKind::U8 => "u8",
                ImpactKind::F32 => "float",
            },
        )?;
        d.set_item("scale", s.scale)?;
        d.set_item("simd", sparsedex_core::codec::kernel_name())?;
        Ok(d)
    }

    /// Number of documents.
    fn __len__(&self) -> usize {
        self.inner.n_docs() as usize
    }

    /// Vocabulary size.
    #[getter]
    fn n_terms(&self) -> u32 {
        self.inner.view().n_terms
    }

    /// Whether the original vectors are stored.
    #[getter]
    fn has_vectors(&self) -> bool {
        self.inner.view().forward.is_some()
    }
}

/// Names of the traversal algorithms, in the order the benchmarks report them.
/// A set of allowed internal doc ids of one index (bit d%64 of word d//64), built once and
/// reused across searches.
#[pyclass(frozen, name = "DocSet", module = "sparsedex._core")]
struct PyDocSet {
    inner: DocSet,
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

    /// Number of documents in the set.
    fn __len__(&self) -> usize {
        self.inner.len() as usize
    }
}

/// The indexes and allowed sets behind the Python objects (shared, not copied), so that the
/// search can run without the interpreter.
fn shared(
    indexes: &[Bound<'_, PyIndex>],
    allowed: &[Option<Bound<'_, PyDocSet>>],
) -> (Vec<Arc<Index>>, Vec<Option<DocSet>>) {
    (
        indexes.iter().map(|b| b.get().inner.clone()).collect(),
        allowed.iter().map(|a| a.as_ref().map(|d| d.get().inner.clone())).collect(),
    )
}

fn segments_of<'a>(indexes: &'a [Arc<Index>], allowed: &'a [Option<DocSet>]) -> PyResult<Vec<search::Segment<'a>>> {
    if indexes.len() != allowed.len() {
        return Err(PyValueError::new_err(format!(
            "{} indexes but {} allowed sets: give one (or None) per index",
            indexes.len(),
            allowed.len()
        )));
    }
    Ok(indexes.iter().zip(allowed).map(|(ix, a)| search::Segment { index: ix, allowed: a.as_ref() }).collect())
}

/// Exact global top-k of one query over several indexes (segments), each restricted to its
/// allowed set (None: every document): (segment positions uint32, internal docs uint32,
/// scores float32), best first; ties go to the earlier segment, then the earlier document.
#[pyfunction]
#[pyo3(signature = (indexes, allowed, indices, values, k=10, algorithm="auto"))]
#[allow(clippy::type_complexity)]
fn search_segments<'py>(
    py: Python<'py>,
    indexes: Vec<Bound<'py, PyIndex>>,
    allowed: Vec<Option<Bound<'py, PyDocSet>>>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    k: usize,
    algorithm: &str,
) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>)> {
    let algo = parse_algo(algorithm)?;
    let (ixs, sets) = shared(&indexes, &allowed);
    let segs = segments_of(&ixs, &sets)?;
    let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
    let hits = enter(py, || search::search_segments(&segs, q, k, algo))?;
    let a: Vec<u32> = hits.iter().map(|h| h.segment).collect();
    let d: Vec<u32> = hits.iter().map(|h| h.doc).collect();
    let v: Vec<f32> = hits.iter().map(|h| h.score).collect();
    Ok((a.into_pyarray(py), d.into_pyarray(py), v.into_pyarray(py)))
}

/// `search_segments` for a CSR batch of queries, on all cores (or `threads`): (segment
/// positions int64 [nq, k], internal docs int64 [nq, k], scores float32 [nq, k]), -1 / NaN
/// where a query has fewer hits.
#[pyfunction]
#[pyo3(signature = (indexes, allowed, indptr, indices, values, k=10, algorithm="auto", threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn search_segments_batch<'py>(
    py: Python<'py>,
    indexes: Vec<Bound<'py, PyIndex>>,
    allowed: Vec<Option<Bound<'py, PyDocSet>>>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    k: usize,
    algorithm: &str,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>)> {
    let algo = parse_algo(algorithm)?;
    if k == 0 {
        return Err(PyValueError::new_err("k must be at least 1"));
    }
    let (ixs, sets) = shared(&indexes, &allowed);
    let segs = segments_of(&ixs, &sets)?;
    let total: u64 = ixs.iter().map(|ix| ix.n_docs() as u64).sum();
    let k = k.min(total.max(1) as usize);
    let csr = CsrRef {
        indptr: slice(&indptr, "indptr")?,
        indices: slice(&indices, "indices")?,
        values: slice(&values, "values")?,
    };
    let (sg, docs, scores, nq) = enter(py, || {
        let res = search::search_segments_batch(&segs, csr, k, algo, threads)?;
        let nq = res.len();
        let mut sg = vec![-1i64; nq * k];
        let mut docs = vec![-1i64; nq * k];
        let mut scores = vec![f32::NAN; nq * k];
        for (i, hits) in res.iter().enumerate() {
            for (j, h) in hits.iter().enumerate() {
                sg[i * k + j] = h.segment as i64;
                docs[i * k + j] = h.doc as i64;
                scores[i * k + j] = h.score;
            }
        }
        Ok((sg, docs, scores, nq))
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
fn clean_csr<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    n_terms: Option<u32>,
) -> PyResult<Csr1<'py>> {
    let csr = CsrRef {
        indptr: slice(&indptr, "indptr")?,
        indices: slice(&indices, "indices")?,
        values: slice(&values, "values")?,
    };
    let (p, t, v) = enter(py, || sparsedex_core::index::build::clean_csr(csr, n_terms))?;
    Ok((p.into_pyarray(py), t.into_pyarray(py), v.into_pyarray(py)))
}

#[pyfunction]
fn algorithms() -> Vec<&'static str> {
    Algorithm::ALL.iter().map(|a| a.name()).collect()
}

/// Which SIMD kernel the codec uses on this machine.
#[pyfunction]
fn simd_kernel() -> &'static str {
    sparsedex_core::codec::kernel_name()
}

/// A seeded synthetic corpus shaped like SPLADE output on MS MARCO (see the core crate's
/// `synth` module for the model). Returns (doc_indptr, doc_indices, doc_values, q_indptr,
/// q_indices, q_values) as uint64 / uint32 / float32 arrays.
#[pyfunction]
#[pyo3(signature = (n_docs, n_queries=1000, seed=42, *, vocab_size=30522, doc_nnz=120.0, query_nnz=45.0, n_topics=1000))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn synthetic_corpus<'py>(
    py: Python<'py>,
    n_docs: usize,
    n_queries: usize,
    seed: u64,
    vocab_size: u32,
    doc_nnz: f64,
    query_nnz: f64,
    n_topics: usize,
) -> PyResult<(
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
)> {
    use sparsedex_core::synth::{try_generate, SynthParams};
    let p = SynthParams { n_docs, n_queries, seed, vocab_size, doc_nnz, query_nnz, n_topics, ..SynthParams::default() };
    let (d, q) = enter(py, || try_generate(&p))?;
    Ok((
        d.indptr.into_pyarray(py),
        d.indices.into_pyarray(py),
        d.values.into_pyarray(py),
        q.indptr.into_pyarray(py),
        q.indices.into_pyarray(py),
        q.values.into_pyarray(py),
    ))
}

/// The signature order (`Index.build(reorder="signature")`): `order[new_position] = input_row`
/// (documents sorted by their two most distinctive heavy terms). For giving other engines the
/// same order in side-by-side benchmarks.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, n_terms=None))]
fn similarity_order<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    n_terms: Option<u32>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let csr = CsrRef {
        indptr: slice(&indptr, "indptr")?,
        indices: slice(&indices, "indices")?,
        values: slice(&values, "values")?,
    };
    let order = enter(py, || {
        sparsedex_core::index::build::check_csr(&csr, "documents")?;
        let nt = n_terms.unwrap_or_else(|| csr.indices.iter().copied().max().map_or(0, |m| m + 1));
        if let Some(&t) = csr.indices.iter().find(|&&t| t >= nt) {
            return Err(Error::InvalidArgument(format!("term id {t} is out of range (vocabulary size {nt})")));
        }
        Ok(sparsedex_core::index::build::similarity_order(csr.indptr, csr.indices, csr.values, nt))
    })?;
    Ok(order.into_pyarray(py))
}

/// The `reorder` argument: a bool (True: the default order) or a name.
#[derive(FromPyObject)]
enum ReorderArg {
    Bool(bool),
    Name(String),
}

impl ReorderArg {
    fn parse(self) -> PyResult<Reorder> {
        match self {
            ReorderArg::Bool(b) => Ok(Reorder::from(b)),
            ReorderArg::Name(s) => s.parse().map_err(to_py),
        }
    }
}

/// Document order by recursive graph bisection (Dhulipala et al., KDD 2016; Mackenzie et
/// al., TKDE 2023): `order[new_position] = input_row`, uint32. Options as the core's
/// `BpOptions` (None keeps a default); `weighting` is "uniform", "impact" or "levelsN"
/// (N nested weight levels per term); `init` (uint32
/// permutation) is the starting order instead of the input order.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, n_terms=None, *, init=None, leaf_size=None, align=None, max_depth=None,
    max_iterations=None, deep_iterations=None, deep_size=None, min_swap_fraction=None, min_df=None,
    max_df_fraction=None, weighting=None, min_weight_ratio=None))]
#[allow(clippy::too_many_arguments)]
fn bp_order<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    n_terms: Option<u32>,
    init: Option<PyReadonlyArray1<'py, u32>>,
    leaf_size: Option<usize>,
    align: Option<usize>,
    max_depth: Option<u32>,
    max_iterations: Option<u32>,
    deep_iterations: Option<u32>,
    deep_size: Option<usize>,
    min_swap_fraction: Option<f64>,
    min_df: Option<u32>,
    max_df_fraction: Option<f64>,
    weighting: Option<&str>,
    min_weight_ratio: Option<f32>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let mut o = BpOptions::default();
    o.leaf_size = leaf_size.unwrap_or(o.leaf_size);
    o.align = align.unwrap_or(o.align);
    o.max_depth = max_depth.unwrap_or(o.max_depth);
    o.max_iterations = max_iterations.unwrap_or(o.max_iterations);
    o.deep_iterations = deep_iterations.unwrap_or(o.deep_iterations);
    o.deep_size = deep_size.unwrap_or(o.deep_size);
    o.min_swap_fraction = min_swap_fraction.unwrap_or(o.min_swap_fraction);
    o.min_df = min_df.unwrap_or(o.min_df);
    o.max_df_fraction = max_df_fraction.unwrap_or(o.max_df_fraction);
    o.min_weight_ratio = min_weight_ratio.unwrap_or(o.min_weight_ratio);
    o.weighting = match weighting {
        None => o.weighting,
        Some("uniform") => BpWeighting::Uniform,
        Some("impact") => BpWeighting::Impact,
        Some(w) if w.starts_with("levels") && w[6..].parse::<u8>().is_ok_and(|l| l >= 1) => {
            BpWeighting::Levels(w[6..].parse().unwrap_or(1))
        }
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "weighting must be 'uniform', 'impact' or 'levelsN' (N >= 1), got '{other}'"
            )))
        }
    };
    let csr = CsrRef {
        indptr: slice(&indptr, "indptr")?,
        indices: slice(&indices, "indices")?,
        values: slice(&values, "values")?,
    };
    let init = match &init {
        Some(a) => Some(slice(a, "init")?),
        None => None,
    };
    let order = enter(py, || {
        o.check()?;
        let n = sparsedex_core::index::build::check_csr(&csr, "documents")?;
        if n >= u32::MAX as usize {
            return Err(Error::InvalidArgument(format!("too many documents ({n})")));
        }
        let nt = n_terms.unwrap_or_else(|| csr.indices.iter().copied().max().map_or(0, |m| m + 1));
        if let Some(&t) = csr.indices.iter().find(|&&t| t >= nt) {
            return Err(Error::InvalidArgument(format!("term id {t} is out of range (vocabulary size {nt})")));
        }
        match init {
            None => Ok(sparsedex_core::reorder::bp_order(csr.indptr, csr.indices, csr.values, nt, &o)),
            Some(init) => {
                if init.len() != n {
                    return Err(Error::InvalidArgument(format!("init has {} entries for {n} documents", init.len())));
                }
                let mut seen = vec![false; n];
                for &d in init {
                    if d as usize >= n || std::mem::replace(&mut seen[d as usize], true) {
                        return Err(Error::InvalidArgument(format!("init is not a permutation of the rows (row {d})")));
                    }
                }
                Ok(sparsedex_core::reorder::bp_refine(csr.indptr, csr.indices, csr.values, nt, init, &o))
            }
        }
    })?;
    Ok(order.into_pyarray(py))
}

/// The native module.
#[pymodule]
mod _core {
    #[pymodule_export]
    use super::algorithms;
    #[pymodule_export]
    use super::bp_order;
    #[pymodule_export]
    use super::clean_csr;
    #[pymodule_export]
    use super::search_segments;
    #[pymodule_export]
    use super::search_segments_batch;
    #[pymodule_export]
    use super::simd_kernel;
    #[pymodule_export]
    use super::similarity_order;
    #[pymodule_export]
    use super::synthetic_corpus;
    #[pymodule_export]
    use super::CorruptIndexError;
    #[pymodule_export]
    use super::PyDocSet;
    #[pymodule_export]
    use super::PyIndex;
    #[pymodule_export]
    use super::SparsedexError;
}
