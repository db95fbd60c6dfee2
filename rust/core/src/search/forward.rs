//! Scoring the allowed documents one by one from their stored vectors: the fastest exact
//! plan when a filter leaves few documents (cost proportional to the allowed documents'
//! lengths, not to the query's posting lists).
//!
//! Each allowed document's stored terms (ascending term id) are looked up in a dense table of
//! query weights, and its impacts are re-derived from the stored weights exactly as the
//! builder derived them, so the scores are the oracle's: integers for the quantized kind, and
//! for floats the same products summed in the same canonical (ascending term) order.

use super::plan::Plan;
use super::topk::TopK;
use super::{DocSet, Kind};
use crate::index::{Forward, IndexView};

/// Exact top-`k` of the documents in `allowed`, scored from the forward vectors.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    fwd: &Forward<'_>,
    plan: &Plan<K>,
    k: usize,
    allowed: &DocSet,
    table: &mut Vec<Option<K::W>>,
) -> Vec<(u32, K::S)> {
    let mut top = TopK::with_allowed(k, Some(allowed), plan.floor);
    if plan.terms.is_empty() {
        return Vec::new();
    }
    let nt = v.n_terms as usize;
    if table.len() != nt {
        table.clear();
        table.resize(nt, None);
    }
    for pt in &plan.terms {
        table[pt.term as usize] = Some(pt.w);
    }
    let n = v.n_docs as usize;
    for (wi, &word) in allowed.words().iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let d = wi * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if d >= n {
                break;
            }
            let (a, b) = (fwd.indptr[d] as usize, fwd.indptr[d + 1] as usize);
            let mut s = K::S::default();
            for (&t, &x) in fwd.terms[a..b].iter().zip(&fwd.values[a..b]) {
                if let Some(Some(w)) = table.get(t as usize) {
                    s += K::mul(*w, K::impact_of(x, v.scale));
                }
            }
            top.push(d as u32, s);
        }
    }
    for pt in &plan.terms {
        table[pt.term as usize] = None;
    }
    top.into_sorted()
}
