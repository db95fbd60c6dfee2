//! PyO3 bindings (being written).
use pyo3::prelude::*;

/// The native module.
#[pymodule]
mod _core {}
