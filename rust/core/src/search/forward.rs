//! Scoring the allowed documents one by one from their stored vectors: the fastest exact
//! plan when a filter leaves few documents (cost proportional to the allowed documents'
//! lengths, not to the query's posting lists).
//!
//! Each allowed document's stored terms (ascending term id) are looked up in a dense table of
//! query weights, and its impacts are re-derived from the stored weights exactly as the
//! builder derived them, so the scores are the oracle's: exact sums for the quantized kinds
//! and float BM25, and for float vectors the same products summed in the same canonical
//! (ascending term) order.

use super::plan::Plan;
use super::topk::TopK;
use super::Kind;
use crate::index::{Forward, FwdTerms, IndexView, TermId};

/// Exact top-`k` of the plan's allowed documents (none without an allowed set), scored
/// from the forward vectors.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    fwd: &Forward<'_>,
    plan: &Plan<K>,
    k: usize,
    table: &mut Vec<u32>,
) -> Vec<(u32, K::S)> {
    let Some(allowed) = plan.allowed.as_ref() else {
        return Vec::new();
    };
    let mut top = TopK::with_allowed(k, Some(allowed), plan.floor).with_ties(plan.ties.as_ref());
    if plan.terms.is_empty() {
        return Vec::new();
    }
    let nt = v.n_terms as usize;
    // All u32::MAX between searches: a table left longer by a segment with more terms serves.
    if table.len() < nt {
        table.resize(nt, u32::MAX);
    }
    for (i, pt) in plan.terms.iter().enumerate() {
        table[pt.term as usize] = i as u32;
    }
    let n = v.n_docs as usize;
    let mut docs: Vec<u32> = Vec::with_capacity(allowed.len() as usize);
    for (wi, &word) in allowed.words().iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let d = wi * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if d < n {
                docs.push(d as u32);
            }
        }
    }
    // The allowed documents' vectors lie far apart: fetch a few documents ahead.
    const AHEAD: usize = 6;
    for &d in docs.iter().take(AHEAD) {
        prefetch_row(fwd, d as usize);
    }
    for (i, &d) in docs.iter().enumerate() {
        if let Some(&next) = docs.get(i + AHEAD) {
            prefetch_row(fwd, next as usize);
        }
        let d = d as usize;
        let (a, b) = (fwd.indptr[d] as usize, fwd.indptr[d + 1] as usize);
        let dl = v.doc_len.map_or(0, |l| l[d]);
        let values = &fwd.values[a..b];
        let s = match fwd.terms {
            FwdTerms::U16(t) => score_row(v, plan, table, &t[a..b], values, dl),
            FwdTerms::U32(t) => score_row(v, plan, table, &t[a..b], values, dl),
        };
        top.push(d as u32, s);
    }
    for pt in &plan.terms {
        table[pt.term as usize] = u32::MAX;
    }
    top.into_sorted()
}

/// The score of one stored row (`terms`, `values`) through the plan-position `table`.
#[inline(always)]
fn score_row<K: Kind, T: TermId>(
    v: &IndexView<'_>,
    plan: &Plan<K>,
    table: &[u32],
    terms: &[T],
    values: &[f32],
    dl: u32,
) -> K::S {
    let mut s = K::S::default();
    for (&t, &x) in terms.iter().zip(values) {
        if let Some(pt) = table.get(t.into() as usize).and_then(|&i| plan.terms.get(i as usize)) {
            s += K::mul(pt.w, K::impact_of(x, dl, v.scale));
        }
    }
    s
}

/// Ask the CPU to start loading where document `d`'s stored row lies (its `indptr` entries),
/// so that a later [`prefetch_row`] of `d` does not wait for them: candidates' rows are far
/// apart, and so are their `indptr` entries (a miss there stalled the row prefetch itself).
#[inline(always)]
pub(crate) fn prefetch_start(fwd: &Forward<'_>, d: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = fwd.indptr.get(d) {
        // Only `indptr[d]`: prefetching `indptr[d + 1]` too (the next cache line for one `d`
        // in eight) made the rerank 10-18% slower on debian (approx_grid, b0.7 r6.5 / r25).
        // SAFETY: prefetching is a hint and never faults; the address is inside `indptr`.
        unsafe { std::arch::x86_64::_mm_prefetch((x as *const u64).cast::<i8>(), std::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (fwd, d);
}

/// Ask the CPU to start loading document `d`'s stored terms and weights.
#[inline(always)]
pub(crate) fn prefetch_row(fwd: &Forward<'_>, d: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let (a, b) = (fwd.indptr[d] as usize, fwd.indptr[d + 1] as usize);
        let (t, tbytes) = match fwd.terms {
            FwdTerms::U16(x) => (x[a..b].as_ptr() as *const i8, (b - a) * 2),
            FwdTerms::U32(x) => (x[a..b].as_ptr() as *const i8, (b - a) * 4),
        };
        let w = fwd.values[a..b].as_ptr() as *const i8;
        let bytes = (b - a) * 4;
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetching is a hint and never faults; the addresses lie inside the
            // two slices (off < their byte length).
            unsafe {
                if off < tbytes {
                    std::arch::x86_64::_mm_prefetch(t.add(off), std::arch::x86_64::_MM_HINT_T0);
                }
                std::arch::x86_64::_mm_prefetch(w.add(off), std::arch::x86_64::_MM_HINT_T0);
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (fwd, d);
}
