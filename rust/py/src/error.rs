//! The exception family of the native module and the one gate every call goes through.

use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyKeyError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;
use sparsedex_core::Error;

pyo3::create_exception!(_core, SparsedexError, PyException, "Base class of sparsedex errors.");
pyo3::create_exception!(
    _core,
    CorruptIndexError,
    SparsedexError,
    "An index file is truncated, corrupted, of another format version, or not an index file."
);
pyo3::create_exception!(
    _core,
    ConflictError,
    SparsedexError,
    "The index was changed by another writer meanwhile, or a call came in the wrong order."
);

/// A core error as the Python exception users see: bad input is a `ValueError`, a missing id a
/// `KeyError`, a corrupt file [`CorruptIndexError`], I/O errors the matching `OSError`.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::InvalidDocument { .. } | Error::InvalidQuery { .. } | Error::InvalidArgument(_) => {
            PyValueError::new_err(e.to_string())
        }
        Error::NotFound(_) => PyKeyError::new_err(e.to_string()),
        Error::Conflict(_) => ConflictError::new_err(e.to_string()),
        Error::Corrupt(_) | Error::UnsupportedVersion { .. } => CorruptIndexError::new_err(e.to_string()),
        Error::Io { ref source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(e.to_string()),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(e.to_string()),
            std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(e.to_string()),
            _ => PyOSError::new_err(e.to_string()),
        },
    }
}

/// Run `f` without the interpreter lock, turning core errors (and, defensively, panics) into
/// Python exceptions. A panic is a bug; it must still never reach users as PanicException.
pub fn enter<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    // parallel work below runs on a pool of this process even in a fork() child (core `par`)
    let r = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sparsedex_core::par::run(f))));
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

/// Called by Python in a `fork()` child (`os.register_at_fork(after_in_child=...)`): the
/// engine's parallel work then runs on a thread pool of the child, not on the parent's pool,
/// whose threads the child does not have (it would wait for them forever).
#[pyfunction]
pub fn _after_fork() {
    sparsedex_core::par::note_fork();
}
