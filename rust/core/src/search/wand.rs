//! WAND (Broder, Carmel, Herscovici, Soffer, Zien, "Efficient query evaluation using a
//! two-level retrieval process", CIKM 2003), as in PISA's `wand_query`.
//!
//! Cursors are kept sorted by current doc id. The *pivot* is the first cursor at which the
//! running sum of list upper bounds could beat the threshold; no document before the pivot's
//! doc can enter the top-k. If the first cursor already sits on the pivot doc, the document is
//! scored fully; otherwise one cursor before the pivot is moved to the pivot doc.

use super::common::{open_cursors, Evaluator, TermCursor};
use super::plan::Plan;
use super::topk::TopK;
use super::Kind;
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Restore doc order after cursor `i` moved forward.
#[inline]
pub(crate) fn bubble<K: Kind>(cs: &mut [TermCursor<'_, K>], mut i: usize) {
    while i + 1 < cs.len() && cs[i].cur.doc() > cs[i + 1].cur.doc() {
        cs.swap(i, i + 1);
        i += 1;
    }
}

/// Restore doc order after every cursor in `0..m` moved forward.
#[inline]
pub(crate) fn resort<K: Kind>(cs: &mut [TermCursor<'_, K>], m: usize) {
    for i in (0..m).rev() {
        bubble(cs, i);
    }
}

/// Find the pivot: the first position whose cumulative bound may beat `thr`.
#[inline]
pub(crate) fn find_pivot<K: Kind>(cs: &[TermCursor<'_, K>], thr: K::S, slack: f32) -> Option<usize> {
    let mut ub = K::S::default();
    for (p, c) in cs.iter().enumerate() {
        if c.cur.doc() == TERMINATED {
            return None;
        }
        ub += c.ub;
        if !K::prune(ub, thr, slack) {
            return Some(p);
        }
    }
    None
}

/// Score the document `d` on which the first `m` cursors sit; advances them. Returns the exact score.
#[inline]
pub(crate) fn score_prefix<K: Kind>(cs: &mut [TermCursor<'_, K>], d: u32, ev: &mut Evaluator<K>) -> (K::S, usize) {
    let mut score = K::S::default();
    let mut m = 0;
    while m < cs.len() && cs[m].cur.doc() == d {
        let s = cs[m].score();
        ev.add(&mut score, cs[m].qi, s);
        cs[m].cur.next();
        m += 1;
    }
    (ev.finish(score), m)
}

/// Exact top-`k` by WAND.
pub fn search<K: Kind>(v: &IndexView<'_>, arrays: &ImpactArrays<'_, K::Imp>, plan: &Plan<K>, k: usize) -> Vec<(u32, K::S)> {
    let mut cs = open_cursors(v, arrays, plan);
    cs.sort_by_key(|c| c.cur.doc());
    let mut top = TopK::new(k);
    let mut ev = Evaluator::<K>::new(cs.len());
    let mut thr = top.threshold();
    while let Some(pivot) = find_pivot(&cs, thr, plan.slack) {
        let pd = cs[pivot].cur.doc();
        if cs[0].cur.doc() == pd {
            let (score, m) = score_prefix(&mut cs, pd, &mut ev);
            if top.push(pd, score) {
                thr = top.threshold();
            }
            resort(&mut cs, m);
        } else {
            let mut i = pivot;
            while cs[i].cur.doc() == pd {
                i -= 1;
            }
            cs[i].cur.seek(pd);
            bubble(&mut cs, i);
        }
    }
    top.into_sorted()
}
