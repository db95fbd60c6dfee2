//! Development tooling exposed for benchmarks: the synthetic corpus and the document order.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::convert::csr;
use crate::error::enter;

/// A seeded synthetic corpus shaped like SPLADE output on MS MARCO (see the core crate's
/// `synth` module for the model). Returns (doc_indptr, doc_indices, doc_values, q_indptr,
/// q_indices, q_values) as uint64 / uint32 / float32 arrays.
#[pyfunction]
#[pyo3(signature = (n_docs, n_queries=1000, seed=42, *, vocab_size=30522, doc_nnz=120.0, query_nnz=45.0, n_topics=1000))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn synthetic_corpus<'py>(
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

/// The document order `VectorIndex.build(reorder=True)` uses: `order[new_position] = input_row`
/// (documents sorted by their two most distinctive heavy terms). For giving other engines the
/// same order in side-by-side benchmarks. Any term ids; `n_terms` (if given) bounds them.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, n_terms=None))]
pub fn similarity_order<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, u64>,
    indices: PyReadonlyArray1<'py, u32>,
    values: PyReadonlyArray1<'py, f32>,
    n_terms: Option<u32>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let docs = csr(&indptr, &indices, &values)?;
    let order = enter(py, || sparsedex_core::index::build::similarity_order(docs, n_terms))?;
    Ok(order.into_pyarray(py))
}
