//! The rule behind [`Algorithm::Auto`](super::Algorithm::Auto).
//!
//! Measured with `benches/auto_rule.py` on the synthetic SPLADE-like corpus at 100k and 1M
//! documents (see benches/README.md):
//! - a filter that leaves documents whose stored vectors hold fewer entries than the query's
//!   posting lists (and the index stores vectors): score those documents one by one
//!   ([`super::forward`]);
//! - a query whose lists hold fewer postings than 5% of the documents: MaxScore (the
//!   exhaustive scorer's pass over every accumulator would dominate);
//! - an index (segment) of fewer than 32,768 documents, or a filter that leaves fewer than
//!   1/8 of the documents: the exhaustive scorer;
//! - otherwise block-max pruning, which gives up for the exhaustive scorer as soon as its
//!   first batch shows that more than 1/8 of the doc blocks would have to be scored.

use super::plan::Plan;
use super::{bmp, exhaustive, forward, maxscore, Kind, Scratch};
use crate::index::{ImpactArrays, IndexView};

/// Below this many documents (small segments) auto scores exhaustively: block-max pruning's
/// per-term setup costs more than it saves (measured with benches/updates.py: 10 segments of
/// 10k documents, 0.43 ms exhaustive against 0.65 ms with bmp).
const SMALL_INDEX: u32 = 1 << 15;

/// Auto scores allowed documents from their stored vectors when their entries number fewer
/// than this many times the query's postings. Measured at 1M synthetic documents with a
/// random filter: a stored entry costs ~1.3-1.6 ns (documents far apart, prefetched), a
/// posting of the exhaustive scorer ~0.8 ns; at 1% selectivity the forward scorer takes
/// 1.45 ms against 1.75 ms, at 2% 3.8 ms against 1.7 ms.
const FORWARD_RATIO: f64 = 0.6;

/// Exact top-`k` of `plan` by the algorithm the rule picks.
pub(crate) fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let postings: u64 = plan.terms.iter().map(|pt| v.df(pt.term)).sum();
    if let (Some(allowed), Some(fwd)) = (&plan.allowed, &v.forward) {
        // Expected stored entries of the allowed documents.
        let entries = (allowed.len() as f64) * (fwd.terms.len() as f64) / (v.n_docs.max(1) as f64);
        if entries < FORWARD_RATIO * postings as f64 {
            return forward::search::<K>(v, fwd, plan, k, &mut scratch.table);
        }
    }
    if postings * 20 < v.n_docs as u64 {
        return maxscore::search::<K>(v, arrays, plan, k);
    }
    // A filter leaving under 1/8 of the documents keeps the threshold low for long: block-max
    // pruning scores most blocks anyway (at 1M documents and 1% selectivity, 4 ms against
    // 1.75 ms exhaustive).
    let narrow = plan.allowed.as_ref().is_some_and(|a| a.len() * 8 < v.n_docs as u64);
    if v.n_docs < SMALL_INDEX || narrow {
        return exhaustive::search::<K>(v, arrays, plan, k, scratch);
    }
    match bmp::search_or_give_up::<K>(v, arrays, plan, k, scratch, Some(0.125)) {
        Some(r) => r,
        None => exhaustive::search::<K>(v, arrays, plan, k, scratch),
    }
}
