//! The exception family of the native module and the one gate every call goes through.

use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyKeyError, PyKeyboardInterrupt, PyOSError, PyPermissionError,
    PyValueError,
};
use pyo3::prelude::*;
use sparsedex_core::Error;

pyo3::create_exception!(sparsedex._core, SparsedexError, PyException, "Base class of sparsedex errors.");
pyo3::create_exception!(
    sparsedex._core,
    CorruptIndexError,
    SparsedexError,
    "An index file is truncated, corrupted, of another format version, or not an index file."
);
pyo3::create_exception!(
    sparsedex._core,
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
        Error::Cancelled => PyKeyboardInterrupt::new_err("cancelled"),
        Error::Io { ref source, ref context } => {
            // An error the core made up from a kind alone (a refusal, not a failed system call)
            // reads as its context: its source would only add "entity already exists".
            let msg = if source.raw_os_error().is_none() && source.get_ref().is_none() {
                context.clone()
            } else {
                e.to_string()
            };
            // EMFILE / ENFILE (the same numbers on Linux and macOS): say what holds the files
            // and what to do (helper-92: a commit out of descriptors said only "Too many open
            // files" about CURRENT)
            #[cfg(unix)]
            if let Some(code @ (23 | 24)) = source.raw_os_error() {
                return PyOSError::new_err((
                    code,
                    format!(
                        "{msg} (an open index holds two files per segment): raise the limit (ulimit -n), \
                         merge segments (merge()), or open fewer handles"
                    ),
                ));
            }
            // A failed system call keeps its errno (helper-114: a commit past the file size
            // limit raised an OSError whose errno was None, "File too large (os error 27)" only
            // in its text, so `e.errno in (ENOSPC, EFBIG)` missed it); OSError(errno, msg)
            // picks the matching subclass itself.
            if let Some(code) = source.raw_os_error() {
                // EFBIG (27 on Linux and macOS): a write past the process's file size limit
                #[cfg(unix)]
                let msg = if code == 27 { format!("{msg} (the process's file size limit: ulimit -f)") } else { msg };
                return match source.kind() {
                    std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err((code, msg)),
                    std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err((code, msg)),
                    std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err((code, msg)),
                    _ => PyOSError::new_err((code, msg)),
                };
            }
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(msg),
                _ => PyOSError::new_err(msg),
            }
        }
    }
}

/// Run `f` without the interpreter lock, turning core errors (and, defensively, panics) into
/// Python exceptions. A panic is a bug; it must still never reach users as PanicException.
pub fn enter<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    // parallel work below runs on a pool of this process even in a fork() child (core `par`)
    let r = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sparsedex_core::par::run(f))));
    outcome(r)
}

/// How often [`enter_long`] looks for a pending signal while the call runs.
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// [`enter`] for calls that can take seconds to minutes (builds with BP reordering, merges,
/// reorders, calibrations): on the main thread, `f` runs on a thread of its own while this one
/// checks for signals every 50 ms (Python runs its signal handlers only on the main thread,
/// and only when it holds the interpreter lock). When a handler raises (Ctrl-C:
/// KeyboardInterrupt), the call is cancelled ([`sparsedex_core::cancel`]): it stops at its
/// next check, cleans up as after any error, and the handler's exception is raised. A call
/// that finished before its next check keeps its effects, and the exception is still raised
/// (as Python raises it after a C call that returns). Elsewhere than on the main thread, this
/// is [`enter`]. Costs a thread start (tens of microseconds), so not for single searches
/// (see [`enter_search`]); batch searches always run under it (a batch may take minutes, and
/// its queries check the call's token: until stop 58 Ctrl-C waited for the whole batch).
pub fn enter_long<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    if !is_main_thread(py) {
        return enter(py, f);
    }
    let token = sparsedex_core::cancel::Token::new();
    let (r, raised) = py.detach(|| {
        std::thread::scope(|s| {
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let token = &token;
            let worker = s.spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sparsedex_core::cancel::scope(token, || sparsedex_core::par::run(f))
                }));
                let _ = done_tx.send(());
                r
            });
            let mut raised = None;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(SIGNAL_POLL) {
                if raised.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        token.cancel();
                        raised = Some(e);
                    }
                }
            }
            let r = worker.join().unwrap_or_else(Err);
            (r, raised)
        })
    });
    if let Some(e) = raised {
        return Err(e);
    }
    outcome(r)
}

/// Query terms from which a document-at-a-time search runs under [`enter_long`], so that
/// Ctrl-C stops it (helper-119: `bmw` took 143 s on a query of 150,000 terms and ignored
/// SIGINT). Shorter queries take milliseconds, less than [`enter_long`]'s thread start would
/// be worth.
const LONG_QUERY_TERMS: usize = 256;

/// Run the search `f` with `algo` of a query of `terms` terms: under [`enter_long`] when it
/// may take long enough to be worth making interruptible (a document-at-a-time algorithm and
/// at least [`LONG_QUERY_TERMS`] terms; the search loops check the call's token), else under
/// [`enter`].
pub fn enter_search<T: Send>(
    py: Python<'_>,
    algo: sparsedex_core::search::Algorithm,
    terms: usize,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    if algo.is_document_at_a_time() && terms >= LONG_QUERY_TERMS {
        enter_long(py, f)
    } else {
        enter(py, f)
    }
}

/// Whether this is the interpreter's main thread (the one signal handlers run on).
fn is_main_thread(py: Python<'_>) -> bool {
    let ident = |t: &Bound<'_, PyAny>| t.getattr("ident").and_then(|i| i.extract::<u64>());
    py.import("threading")
        .and_then(|m| Ok(m.call_method0("get_ident")?.extract::<u64>()? == ident(&m.call_method0("main_thread")?)?))
        .unwrap_or(false)
}

/// A call's result, or its error or panic, as Python sees it.
fn outcome<T>(r: std::thread::Result<Result<T, Error>>) -> PyResult<T> {
    match r {
        Ok(r) => r.map_err(to_py),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
            let at = at.map(|a| format!(" (at {a})")).unwrap_or_default();
            Err(SparsedexError::new_err(format!("internal error (please report it): {msg}{at}")))
        }
    }
}

/// Where the last engine panic happened (`file:line:column`), for the error that reports it.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Install the process's panic hook (at module import): an engine panic is caught at the
/// binding ([`outcome`]) and becomes a `SparsedexError` whose message says what and where, so
/// Rust's default report on stderr ("thread '<unnamed>' panicked at ...") is not printed as
/// well (helper-90). With `SPARSEDEX_BACKTRACE` set, the default report (and its backtrace,
/// as `RUST_BACKTRACE` asks) is printed too. Not with `RUST_BACKTRACE` alone: many shells of Rust
/// developers set it, and a panic the bindings turn into an error (a search over files copied
/// under an open index, reported as `CorruptIndexError`) printed a report there (helper-111).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{}:{}", l.file(), l.line()));
        }
        if std::env::var_os("SPARSEDEX_BACKTRACE").is_some() {
            default(info);
        }
    }));
}

/// Called by Python in a `fork()` child (`os.register_at_fork(after_in_child=...)`): the
/// engine's parallel work then runs on a thread pool of the child, not on the parent's pool,
/// whose threads the child does not have (it would wait for them forever).
#[pyfunction]
pub fn _after_fork() {
    sparsedex_core::par::note_fork();
}

/// A cancellation token for the long calls of one Python thread (a background merge thread):
/// `install()` on that thread makes its engine calls check it; `cancel()` from any thread makes
/// the running or next call raise KeyboardInterrupt("cancelled") at its next check (core
/// `cancel`).
#[pyclass(module = "sparsedex._core", name = "CancelToken")]
pub struct PyCancelToken {
    inner: sparsedex_core::cancel::Token,
}

#[pymethods]
impl PyCancelToken {
    #[new]
    fn new() -> Self {
        PyCancelToken { inner: sparsedex_core::cancel::Token::new() }
    }

    /// Make this the calling thread's token (its engine calls check it).
    fn install(&self) {
        sparsedex_core::cancel::set_current(Some(self.inner.clone()));
    }

    /// Remove the calling thread's token.
    #[staticmethod]
    fn uninstall() {
        sparsedex_core::cancel::set_current(None);
    }

    /// Ask the calls checking this token to stop.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}
