//! sparsedex-core: a compressed inverted index for learned sparse vectors (SPLADE, BM25,
//! any non-negative sparse weights) with exact top-k traversal.
//!
//! Layers, bottom up:
//! - [`cancel`]: cooperative cancellation of long calls.
//! - [`codec`]: 128-value blocks of bit-packed integers, SIMD decoding with a scalar twin.
//! - [`container`]: the versioned, checksummed file image every index lives in (memory or mmap).
//! - [`fs`]: the one atomic, durable file write.
//! - [`vectors`]: the vector contract (validation of documents and queries).
//! - [`index`]: quantization, the builder and the immutable [`index::Index`].
//! - [`postings`]: cursors over block-compressed posting lists with block-max metadata.
//! - [`reorder`]: document orders (signature sort, recursive graph bisection) that make
//!   blocks of neighbouring ids hold similar documents.
//! - [`search`]: the exhaustive oracle and the dynamic-pruning algorithms.
//! - [`store`]: the segment lifecycle: commits, deletions, merges, snapshots, garbage collection.
//! - [`synth`]: a seedable synthetic corpus that looks like SPLADE output, for benches and tests.
#![warn(missing_docs)]
// `!(a > b)` on floats is deliberate (false for NaN); cursors have `next` like tantivy's DocSet.
#![allow(
    clippy::neg_cmp_op_on_partial_ord,
    clippy::should_implement_trait,
    clippy::large_enum_variant,
    clippy::type_complexity
)]

pub mod cancel;
pub mod codec;
pub mod container;
pub mod error;
pub mod fs;
pub mod index;
pub mod par;
pub mod postings;
pub mod reorder;
pub mod search;
pub mod store;
pub mod synth;
pub mod vectors;

pub use error::{Error, Result};
