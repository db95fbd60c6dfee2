//! Development tooling exposed for benchmarks: the synthetic corpus and the document order.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sparsedex_core::reorder::{BpOptions, BpWeighting};

use crate::convert::{csr, slice};
use crate::error::{enter, enter_long};

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

/// The signature order (`Index.build(reorder="signature")`): `order[new_position] = input_row`
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

/// The document order of recursive graph bisection (`Index.build(reorder="bp")`; Dhulipala et
/// al., KDD 2016; Mackenzie et al., TKDE 2023): `order[new_position] = input_row`, uint32. Any
/// term ids; `n_terms` (if given) bounds them. Options as the core's `BpOptions` (None keeps
/// the default): `weighting` is "uniform", "impact" or "levelsN" (N >= 1 nested weight levels
/// per term); `init` (uint32, a permutation of the rows) is the starting order instead of the
/// input order. For benchmarks and for giving other engines the same order.
#[pyfunction]
#[pyo3(signature = (indptr, indices, values, n_terms=None, *, init=None, leaf_size=None, align=None, max_depth=None,
    max_iterations=None, deep_iterations=None, deep_size=None, min_swap_fraction=None, min_df=None,
    max_df_fraction=None, weighting=None, min_weight_ratio=None))]
#[allow(clippy::too_many_arguments)]
pub fn bp_order<'py>(
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
    let d = BpOptions::default();
    let o = BpOptions {
        leaf_size: leaf_size.unwrap_or(d.leaf_size),
        align: align.unwrap_or(d.align),
        max_depth: max_depth.unwrap_or(d.max_depth),
        max_iterations: max_iterations.unwrap_or(d.max_iterations),
        deep_iterations: deep_iterations.unwrap_or(d.deep_iterations),
        deep_size: deep_size.unwrap_or(d.deep_size),
        min_swap_fraction: min_swap_fraction.unwrap_or(d.min_swap_fraction),
        min_df: min_df.unwrap_or(d.min_df),
        max_df_fraction: max_df_fraction.unwrap_or(d.max_df_fraction),
        min_weight_ratio: min_weight_ratio.unwrap_or(d.min_weight_ratio),
        weighting: match weighting {
            None => d.weighting,
            Some("uniform") => BpWeighting::Uniform,
            Some("impact") => BpWeighting::Impact,
            Some(w) if w.strip_prefix("levels").and_then(|l| l.parse::<u8>().ok()).is_some_and(|l| l >= 1) => {
                BpWeighting::Levels(w[6..].parse().unwrap_or(1))
            }
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "weighting must be 'uniform', 'impact' or 'levelsN' (N from 1 to 255), got '{other}'"
                )))
            }
        },
    };
    let docs = csr(&indptr, &indices, &values)?;
    let init = match &init {
        Some(a) => Some(slice(a, "init")?),
        None => None,
    };
    let order = enter_long(py, || sparsedex_core::index::build::bp_order_csr(docs, n_terms, init, &o))?;
    Ok(order.into_pyarray(py))
}
