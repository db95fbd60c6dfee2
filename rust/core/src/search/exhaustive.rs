//! The exhaustive term-at-a-time scorer: the oracle every other algorithm is checked against.
//!
//! Every posting of every query term is decoded and added into a dense accumulator array
//! (one slot per document), terms in canonical order (ascending term id); then one pass over
//! the accumulators collects the top-k and clears them (into a heap, or for k >= 32 into a
//! buffer with linear selections, [`Gather`]). Both loops are kernels of the impact
//! kind ([`Kind::accumulate`], [`Kind::drain_above`]): for u8 impacts, a 16-lane gather / add
//! / scatter per decoded block and a 16-lane threshold scan where the CPU has AVX-512, scalar
//! loops elsewhere (see [`super::kernels`]).

use super::kernels::for_each_block;
use super::plan::Plan;
use super::topk::{Gather, TopK};
use super::{Kind, Scratch};
use crate::index::{ImpactArrays, IndexView};

/// From this k on (and below a quarter of the documents, where a buffer of 4k gains nothing),
/// the drain gathers into a buffer ([`Gather`]) instead of a heap: the approximate search's
/// candidate stage (k' = 15..250) offered thousands of documents to a heap of k' (its pushes
/// were 16% of an approximate search's time on WordNet glosses).
const GATHER_K: usize = 32;

/// Exact top-`k` by scoring every posting.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    let acc = super::zeroed_acc::<K>(scratch, n);
    for pt in &plan.terms {
        let w = pt.w;
        for_each_block(v, arrays, pt.term, |docs, imps| K::accumulate(acc, docs, imps, w));
    }
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    // One pass collects the top-k and clears the accumulators for the next query.
    if k >= GATHER_K && k.saturating_mul(4) < n {
        let mut g = Gather::new(top);
        K::drain_above(acc, g.threshold(), |d, s| g.offer(d, s));
        return g.finish().into_sorted();
    }
    let thr = top.threshold();
    K::drain_above(acc, thr, |d, s| {
        top.push(d, s);
        top.threshold()
    });
    top.into_sorted()
}
