//! The exhaustive term-at-a-time scorer: the oracle every other algorithm is checked against.
//!
//! Every posting of every query term is decoded and added into a dense accumulator array
//! (one slot per document), terms in canonical order (ascending term id); then one pass over
//! the accumulators collects the top-k. The inner loop is a plain gather-free multiply-add
//! over each decoded block.

use super::common::for_each_posting;
use super::plan::Plan;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::index::{ImpactArrays, IndexView};

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
        for_each_posting(v, arrays, pt.term, |d, imp| {
            if let Some(a) = acc.get_mut(d as usize) {
                *a += K::mul(w, imp);
            }
        });
    }
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor);
    let mut thr = top.threshold();
    // One pass collects the top-k and clears the accumulators for the next query.
    for (d, a) in acc.iter_mut().enumerate() {
        let s = std::mem::take(a);
        if s > thr {
            top.push(d as u32, s);
            thr = top.threshold();
        }
    }
    top.into_sorted()
}
