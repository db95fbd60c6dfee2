//! `_core.Index`: one immutable engine segment.

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedex_core::index::build::{build_with, BuildOptions, Built};
use sparsedex_core::index::{ExternalIds, Id, IdsInput, ImpactKind, Index};
use sparsedex_core::search::{self, QueryRef};
use std::path::PathBuf;
use std::sync::Arc;

use crate::convert::{
    csr, doc_set, id_of, id_to_py, ids_input, quantization, slice, Csr1, Hits2, PyBm25Stats, ReorderArg, Vec1,
};
use crate::error::{enter, enter_long, enter_search, to_py};

/// An immutable index over sparse vectors: one engine segment (the low-level engine behind
/// `sparsedex.VectorIndex` and every segment of a store).
#[pyclass(frozen, name = "Index", module = "sparsedex._core")]
pub struct PyIndex {
    pub inner: Arc<Index>,
}

/// The build shared by `Index.build` and `Index.build_with_order`.
#[allow(clippy::too_many_arguments)]
fn build_index(
    py: Python<'_>,
    indptr: PyReadonlyArray1<'_, u64>,
    indices: PyReadonlyArray1<'_, u32>,
    values: PyReadonlyArray1<'_, f32>,
    n_terms: Option<u32>,
    quant: &str,
    scale: Option<f32>,
    ids_int: Option<PyReadonlyArray1<'_, i64>>,
    ids_str: Option<Vec<String>>,
    store_vectors: bool,
    reorder: ReorderArg,
    bm25: Option<(f32, f32)>,
    doc_len: Option<PyReadonlyArray1<'_, u32>>,
) -> PyResult<Built> {
    let reorder = reorder.parse()?;
    let quantization = quantization(quant, scale, bm25)?;
    let docs = csr(&indptr, &indices, &values)?;
    let ids_i = match &ids_int {
        Some(a) => Some(slice(a, "ids_int")?),
        None => None,
    };
    let lens = match &doc_len {
        Some(a) => Some(slice(a, "doc_len")?),
        None => None,
    };
    let ids = ids_input(ids_i, ids_str.as_deref())?;
    let opts = BuildOptions { n_terms, quantization, store_vectors, reorder };
    enter_long(py, || {
        // Without ids, a reordered index keeps the input row numbers as its ids (what
        // `VectorIndex` reports as ids).
        let rows: Vec<i64>;
        let ids = match ids {
            IdsInput::None if reorder.is_some() => {
                rows = (0..docs.indptr.len().saturating_sub(1) as i64).collect();
                IdsInput::Int(&rows)
            }
            other => other,
        };
        build_with(docs, ids, lens, &opts)
    })
}

#[pymethods]
impl PyIndex {
    /// Build from CSR arrays (indptr uint64, indices uint32, values float32). `n_terms`: the
    /// vocabulary size (term ids must be below it; any u32 otherwise). `quantization`: "u8"
    /// (impacts round(w * scale), scale 255 / max weight unless given) or "float". `bm25`:
    /// (k1, b) for an index of term frequencies (whole numbers) with document lengths
    /// `doc_len` (default: the sums of the term frequencies), scored at query time; "u8" then
    /// means integer scores. Ids: `ids_int` (int64) or `ids_str`, unique; without ids a
    /// reordered index keeps the input row numbers as ids. `reorder`: the document order,
    /// "bp" (recursive graph bisection: Dhulipala et al., KDD 2016; Mackenzie et al., TKDE
    /// 2023), "signature" (sort by each document's two heaviest distinctive terms), "none",
    /// True (the default, "bp") or False ("none"); ids are kept whatever the order.
    #[staticmethod]
    #[pyo3(signature = (indptr, indices, values, *, n_terms=None, quantization="u8", scale=None, ids_int=None, ids_str=None, store_vectors=true, reorder=ReorderArg::Bool(true), bm25=None, doc_len=None),
        text_signature = "(indptr, indices, values, *, n_terms=None, quantization='u8', scale=None, ids_int=None, ids_str=None, store_vectors=True, reorder=True, bm25=None, doc_len=None)")]
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
        bm25: Option<(f32, f32)>,
        doc_len: Option<PyReadonlyArray1<'_, u32>>,
    ) -> PyResult<Self> {
        let b = build_index(
            py,
            indptr,
            indices,
            values,
            n_terms,
            quantization,
            scale,
            ids_int,
            ids_str,
            store_vectors,
            reorder,
            bm25,
            doc_len,
        )?;
        Ok(PyIndex { inner: Arc::new(b.index) })
    }

    /// `build`, also returning the order documents were stored in: `order[internal_doc] =
    /// input_row` (uint32).
    #[staticmethod]
    #[pyo3(signature = (indptr, indices, values, *, n_terms=None, quantization="u8", scale=None, ids_int=None, ids_str=None, store_vectors=true, reorder=ReorderArg::Bool(true), bm25=None, doc_len=None),
        text_signature = "(indptr, indices, values, *, n_terms=None, quantization='u8', scale=None, ids_int=None, ids_str=None, store_vectors=True, reorder=True, bm25=None, doc_len=None)")]
    #[allow(clippy::too_many_arguments)]
    fn build_with_order<'py>(
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, u64>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        n_terms: Option<u32>,
        quantization: &str,
        scale: Option<f32>,
        ids_int: Option<PyReadonlyArray1<'py, i64>>,
        ids_str: Option<Vec<String>>,
        store_vectors: bool,
        reorder: ReorderArg,
        bm25: Option<(f32, f32)>,
        doc_len: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<(Self, Bound<'py, PyArray1<u32>>)> {
        let b = build_index(
            py,
            indptr,
            indices,
            values,
            n_terms,
            quantization,
            scale,
            ids_int,
            ids_str,
            store_vectors,
            reorder,
            bm25,
            doc_len,
        )?;
        Ok((PyIndex { inner: Arc::new(b.index) }, b.order.into_pyarray(py)))
    }

    /// Open an index file (memory-mapped; every checksum verified).
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let index = enter(py, || Index::open(&path))?;
        Ok(PyIndex { inner: Arc::new(index) })
    }

    /// Calibrate approximate search on `queries` (CSR: indptr uint64, indices uint32,
    /// values float32; external term ids), replacing any calibration. False (nothing done)
    /// for an index searched exactly by approximate searches (no stored vectors, or fewer than
    /// 8,192 documents). ValueError naming a malformed query.
    fn calibrate(
        &self,
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, u64>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<bool> {
        use sparsedex_core::search::approx::{calibrate, calibrates};
        let index = &*self.inner;
        if !calibrates(index) {
            return Ok(false);
        }
        let q = csr(&indptr, &indices, &values)?;
        let c = enter_long(py, || calibrate::calibrate_with(index, Some(q), 0x5eed))?;
        calibrate::set(index, c);
        Ok(true)
    }

    /// Write the index to a file, atomically and durably.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        enter(py, move || inner.save(&path))
    }

    /// Exact top-k of one query: (doc ids uint32, scores float32), best first. `allowed`: a
    /// uint64 bitset over internal doc ids (bit d%64 of word d//64); only those documents can
    /// be returned. BM25 indexes: scored under `stats` (the index's own when None).
    /// A u8 index returns `scores`: "vectors" (float32 dot products of the stored vectors,
    /// the exact float top-k; the default) or "impacts" (the 8-bit scores).
    #[pyo3(signature = (indices, values, k=10, algorithm="auto", allowed=None, stats=None, target_recall=None, scores="vectors"))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        algorithm: &str,
        allowed: Option<PyReadonlyArray1<'py, u64>>,
        stats: Option<Bound<'py, PyBm25Stats>>,
        target_recall: Option<f64>,
        scores: &str,
    ) -> PyResult<Vec1<'py>> {
        let algo = crate::convert::algorithm(algorithm, target_recall)?;
        let score_kind = crate::convert::scores(scores)?;
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let inner = &self.inner;
        let allowed = doc_set(&allowed, inner.n_docs())?;
        let stats = stats.map(|s| s.get().inner.clone());
        let hits = enter_search(py, algo, q.terms.len(), || {
            search::search_with_scores(inner, q, k, algo, allowed.as_ref(), stats.as_ref(), score_kind)
        })?;
        let docs: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
        Ok((docs.into_pyarray(py), scores.into_pyarray(py)))
    }

    /// Exact top-k of a CSR batch of queries, on all cores (or `threads`). Returns
    /// (doc ids int64 [nq, c], scores float32 [nq, c]) with c = min(k, number of documents);
    /// missing hits are -1 / NaN. BM25: `stats` must cover every term of the batch.
    #[pyo3(signature = (indptr, indices, values, k=10, algorithm="auto", threads=None, allowed=None, stats=None, target_recall=None, scores="vectors"))]
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
        stats: Option<Bound<'py, PyBm25Stats>>,
        target_recall: Option<f64>,
        scores: &str,
    ) -> PyResult<Hits2<'py>> {
        let algo = crate::convert::algorithm(algorithm, target_recall)?;
        let score_kind = crate::convert::scores(scores)?;
        let queries = csr(&indptr, &indices, &values)?;
        let inner = &self.inner;
        let k = search::effective_k(inner, k).map_err(to_py)?;
        let allowed = doc_set(&allowed, inner.n_docs())?;
        let stats = stats.map(|s| s.get().inner.clone());
        let (docs, scores, nq) = enter_long(py, || {
            let res = search::search_batch_scores(
                inner,
                queries,
                k,
                algo,
                threads,
                allowed.as_ref(),
                stats.as_ref(),
                score_kind,
            )?;
            let (_, docs, scores) = crate::convert::matrices(&res, k, |h| (-1, h.doc as i64, h.score));
            Ok((docs, scores, res.len()))
        })?;
        Ok((docs.into_pyarray(py).reshape([nq, k])?, scores.into_pyarray(py).reshape([nq, k])?))
    }

    /// Per-term breakdown of a document's score for a query: list of
    /// (term, query weight, stored weight, contribution); contributions sum to the score.
    /// BM25: the query weight is idf * qtf and the stored weight the BM25 document weight.
    /// `scores` as in `search` (u8 indexes: "vectors" explains the float scores from the
    /// stored weights, "impacts" the 8-bit scores).
    #[pyo3(signature = (indices, values, doc, stats=None, scores="vectors"))]
    fn explain(
        &self,
        py: Python<'_>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
        doc: u32,
        stats: Option<Bound<'_, PyBm25Stats>>,
        scores: &str,
    ) -> PyResult<Vec<(u32, f32, f32, f32)>> {
        let scores = crate::convert::scores(scores)?;
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let inner = &self.inner;
        let stats = stats.map(|s| s.get().inner.clone());
        let parts =
            enter(py, || search::explain::explain_scored_as(inner, q, doc, stats.as_ref(), scores).map(|(p, _)| p))?;
        Ok(parts.into_iter().map(|p| (p.term, p.query_weight, p.doc_weight, p.contribution)).collect())
    }

    /// The stored vector of internal doc `doc`: (term ids uint32 ascending, values float32).
    fn get<'py>(&self, py: Python<'py>, doc: u32) -> PyResult<Vec1<'py>> {
        let inner = &self.inner;
        let (t, v) = enter(py, || inner.vector(doc))?;
        Ok((t.into_pyarray(py), v.into_pyarray(py)))
    }

    /// All stored vectors as CSR arrays in internal doc order: (indptr uint64, term ids uint32,
    /// values float32).
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Csr1<'py>> {
        let inner = &self.inner;
        let (p, t, v) = enter(py, || inner.vectors())?;
        Ok((p.into_pyarray(py), t.into_pyarray(py), v.into_pyarray(py)))
    }

    /// External ids stored with the index: None, an int64 array, or a list of str.
    fn ids<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let n = self.inner.n_docs();
        Ok(match self.inner.view().ids {
            ExternalIds::None => None,
            ExternalIds::Int { ids, .. } => Some(ids.to_vec().into_pyarray(py).into_any()),
            ids @ ExternalIds::Str { .. } => {
                let out: Vec<&str> = (0..n).map(|d| if let Some(Id::Str(s)) = ids.get(d) { s } else { "" }).collect();
                Some(out.into_pyobject(py)?.into_any())
            }
        })
    }

    /// The id of internal doc `doc` (its row number when the index stores no ids).
    fn id<'py>(&self, py: Python<'py>, doc: u32) -> PyResult<Bound<'py, PyAny>> {
        let id = self.inner.id(doc).ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!(
                "document {doc} is out of range ({} documents)",
                self.inner.n_docs()
            ))
        })?;
        id_to_py(py, id)
    }

    /// The internal doc whose id is `id` (int or str), or None: a binary search.
    fn locate(&self, id: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        let id = id_of(id)?;
        Ok(self.inner.locate(id.as_id()))
    }

    /// BM25 statistics of every document of this index for `terms` (uint32).
    fn bm25_stats(&self, terms: PyReadonlyArray1<'_, u32>) -> PyResult<PyBm25Stats> {
        let inner = search::Bm25Stats::of_indexes(&[&self.inner], slice(&terms, "terms")?);
        Ok(PyBm25Stats { inner, words: None })
    }

    /// The race behind algorithm="auto" on this segment: (leader's name or None during the
    /// warm-up, [(candidate, median time ratio to the leader on the same queries)]).
    fn auto_standing(&self) -> (Option<&'static str>, Vec<(&'static str, f32)>) {
        self.inner.auto_standing()
    }

    /// Counts and sizes.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("documents", s.n_docs)?;
        d.set_item("vocabulary", s.vocabulary)?;
        d.set_item("terms", s.n_terms)?;
        d.set_item("postings", s.n_postings)?;
        d.set_item("blocks", s.n_blocks)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("postings_bytes", s.postings_bytes)?;
        d.set_item("derived_bytes", s.derived_bytes)?;
        d.set_item("vectors_bytes", s.forward_bytes)?;
        let v = self.inner.view();
        let quant = match (s.kind, v.bm25) {
            (ImpactKind::U8, _) => "u8",
            (ImpactKind::F32, _) => "float",
            (ImpactKind::Bm25, Some(m)) if m.params.quantized => "u8",
            (ImpactKind::Bm25, _) => "float",
        };
        d.set_item("quantization", quant)?;
        d.set_item("scale", s.scale)?;
        if let Some(m) = v.bm25 {
            d.set_item("bm25", (m.params.k1, m.params.b))?;
            d.set_item("total_length", m.total_len)?;
        }
        d.set_item("simd", sparsedex_core::codec::kernel_name())?;
        Ok(d)
    }

    /// Number of documents.
    fn __len__(&self) -> usize {
        self.inner.n_docs() as usize
    }

    /// Vocabulary size: the declared one, or the largest term id + 1.
    #[getter]
    fn vocabulary(&self) -> u64 {
        self.inner.stats().vocabulary
    }

    /// Alias of `vocabulary` (kept for older callers).
    #[getter]
    fn n_terms(&self) -> u64 {
        self.vocabulary()
    }

    /// The external term ids this segment holds postings for, ascending (uint32 array): its
    /// term dictionary. Segments of one index hold different terms; `info()` counts their union.
    fn term_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.view().term_ids.to_vec().into_pyarray(py)
    }

    /// Whether the original vectors are stored.
    #[getter]
    fn has_vectors(&self) -> bool {
        self.inner.view().forward.is_some()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// Merge the live documents of `indexes` (each restricted to its `live` set, None: all) into
/// one index, from their stored vectors: returns (index, member position uint32, member doc
/// uint32) with the origin of every merged document. `quantization`/`scale` as in `build`
/// (default: the first member's kind and scale; a shared u8 `scale` the merged weights do not
/// fit is replaced by their own grid); BM25 members keep their parameters. `reorder` as in
/// `Index.build`: the members' orders concatenated are the starting order BP refines.
#[pyfunction]
#[pyo3(signature = (indexes, live, quantization=None, scale=None, reorder=ReorderArg::Bool(true)),
    text_signature = "(indexes, live, quantization=None, scale=None, reorder=True)")]
#[allow(clippy::type_complexity)]
pub fn merge<'py>(
    py: Python<'py>,
    indexes: Vec<Bound<'py, PyIndex>>,
    live: Vec<Option<Bound<'py, crate::segments::PyDocSet>>>,
    quantization: Option<&str>,
    scale: Option<f32>,
    reorder: ReorderArg,
) -> PyResult<(PyIndex, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>)> {
    if indexes.len() != live.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{} indexes but {} live sets: give one (or None) per index",
            indexes.len(),
            live.len()
        )));
    }
    let q = match quantization {
        None => None,
        Some(q) => Some(crate::convert::quantization(q, scale, None)?),
    };
    let ixs: Vec<Arc<Index>> = indexes.iter().map(|b| b.get().inner.clone()).collect();
    let sets: Vec<_> = live.iter().map(|a| a.as_ref().map(|d| d.get().inner.clone())).collect();
    let opts = sparsedex_core::index::MergeOptions { quantization: q, reorder: reorder.parse()? };
    let m = enter_long(py, || {
        let members: Vec<(&Index, Option<&sparsedex_core::search::DocSet>)> =
            ixs.iter().zip(&sets).map(|(ix, s)| (&**ix, s.as_ref())).collect();
        sparsedex_core::index::merge(&members, &opts)
    })?;
    let (a, b): (Vec<u32>, Vec<u32>) = m.origin.into_iter().unzip();
    Ok((PyIndex { inner: Arc::new(m.index) }, a.into_pyarray(py), b.into_pyarray(py)))
}
