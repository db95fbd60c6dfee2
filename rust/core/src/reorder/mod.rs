//! Document reordering: which internal id each document gets.
//!
//! Two costs depend on the order of documents inside a segment. Posting lists store doc-id
//! gaps, so documents that share terms should get neighbouring ids (smaller gaps, fewer bits);
//! and block-max pruning ([`crate::search::bmp`]) bounds blocks of 64 consecutive ids, so
//! documents that *score alike* should share a block (tight bounds, few blocks scored).
//!
//! - [`Reorder::Signature`]: sort by each document's two most distinctive heavy terms
//!   ([`crate::index::build::similarity_order`]); linear plus a sort.
//! - [`Reorder::Bp`]: recursive graph bisection ([`bp`]; Dhulipala et al., "Compressing
//!   graphs and indexes with recursive graph bisection", KDD 2016, with the speed-ups studied by
//!   Mackenzie, Petri & Moffat, "Tradeoff options for bipartite graph partitioning", TKDE 2023),
//!   optionally impact-aware.
//! - [`cost`]: the log-gap cost both try to lower, to measure an order.
//!
//! Every function returns `order`, with `order[new_id] = input_row`, and is deterministic for
//! its input and options whatever the number of threads.

mod bisect;
pub mod bp;
pub mod cost;
#[cfg(test)]
mod tests;

pub use crate::index::Reorder;
pub use bp::{bp_order, bp_refine, BpOptions, BpWeighting};
pub use cost::log_gap_bits;
