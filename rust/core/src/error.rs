//! The one error type of the core. Every fallible public function returns [`Result`].

/// Everything that can go wrong in the core. Messages name what is wrong (which document,
/// which field, which file) so that the bindings can pass them on unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document given to the builder breaks the vector contract.
    #[error("document {doc}: {msg}")]
    InvalidDocument {
        /// Position of the document in the input (0-based).
        doc: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// A query breaks the vector contract.
    #[error("query{}: {msg}", .query.map(|q| format!(" {q}")).unwrap_or_default())]
    InvalidQuery {
        /// Position of the query in a batch, if it came from one.
        query: Option<usize>,
        /// What is wrong with it.
        msg: String,
    },
    /// An argument other than a vector is out of range (k, scale, shapes...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A document id (or another named thing) that is not there.
    #[error("{0}")]
    NotFound(String),
    /// The index directory was changed by someone else meanwhile (another writer committed
    /// without the caller holding the writer lock), or an operation came in the wrong order.
    #[error("{0}")]
    Conflict(String),
    /// A file (or in-memory image) is truncated, corrupted or not an index file.
    #[error("corrupt index file: {0}")]
    Corrupt(String),
    /// The file was written by a format version this build cannot read.
    #[error("unsupported index format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version found in the file header.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// An operating-system I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The call was cancelled (a Ctrl-C in Python, see [`crate::cancel`]).
    #[error("cancelled")]
    Cancelled,
}

/// Result alias of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with what was being done (and on which path).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}
