//! Thin PyO3 bindings of `sparsedex-core`: numpy in, numpy out, errors mapped to Python
//! exceptions ([`error`]), the interpreter released for every piece of real work. One file per
//! concept: [`index`] (one engine segment), [`segments`] (allowed sets, search over several
//! segments), [`store`] (the segment lifecycle), [`convert`], [`dev`] (benchmark tooling).

mod convert;
mod dev;
mod error;
mod index;
mod segments;
mod store;

/// The native module.
#[pyo3::pymodule]
mod _core {
    #[pymodule_export]
    use super::convert::PyBm25Stats;
    #[pymodule_export]
    use super::dev::{bp_order, similarity_order, synthetic_corpus};
    #[pymodule_export]
    use super::error::{_after_fork, ConflictError, CorruptIndexError, PyCancelToken, SparsedexError};
    #[pymodule_export]
    use super::index::{merge, PyIndex};
    #[pymodule_export]
    use super::segments::{
        algorithm_name, algorithms, calibration_counters, clean_csr, distinct_queries, clean_row, row_is_clean, search_segments,
        search_segments_batch, simd_kernel, write_atomically, PyDocSet,
    };
    #[pymodule_export]
    use super::store::{
        index_dir_may_hold, is_our_current, PyPendingCalibration, PyPreparedMerge, PyPreparedSave, PyReservation,
        PySnapshot, PyStore,
    };
    /// Calibration queries a query-length bucket needs before approximate search uses its
    /// points (`search::approx::calibrate::MIN_BUCKET_QUERIES`).
    #[pymodule_export]
    const MIN_BUCKET_QUERIES: usize = sparsedex_core::search::approx::calibrate::MIN_BUCKET_QUERIES;

    #[pymodule_init]
    fn init(_m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        super::error::install_panic_hook();
        Ok(())
    }
}
