//! Block-Max WAND (Ding & Suel, "Faster top-k document retrieval using block-max indexes",
//! SIGIR 2011), as in PISA's `block_max_wand_query`.
//!
//! WAND's pivot is found with whole-list bounds; then the pivot is checked again with the
//! block maxima of the blocks that would hold the pivot doc. If even those cannot beat the
//! threshold, every document up to the end of the shortest of those blocks is skipped at once.

use super::common::{open_cursors, Evaluator};
use super::plan::Plan;
use super::topk::TopK;
use super::wand::Sorted;
use super::Kind;
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Exact top-`k` by Block-Max WAND.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
) -> Vec<(u32, K::S)> {
    let mut cs = Sorted::new(open_cursors(v, arrays, plan));
    let n = cs.len();
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    let mut ev = Evaluator::<K>::new(n);
    let mut thr = top.threshold();
    let mut stop = crate::cancel::Ticker::new(plan.terms.len()); // Ctrl-C on a long query (see the binding)
    while let Some(mut pivot) = cs.find_pivot(thr, plan.slack) {
        if stop.stopped() {
            break;
        }
        let pd = cs.doc(pivot);
        while pivot + 1 < n && cs.doc(pivot + 1) == pd {
            pivot += 1;
        }
        let mut block_ub = K::S::default();
        let mut next = TERMINATED;
        for i in 0..=pivot {
            let c = cs.at(i);
            let (m, last) = c.cur.block_max_for(pd);
            block_ub += K::mul(c.w, m);
            next = next.min(last);
        }
        if !K::prune(block_ub, thr, plan.slack) {
            if cs.doc(0) == pd {
                let (score, m) = cs.score_prefix(pd, &mut ev);
                if top.push(pd, score) {
                    thr = top.threshold();
                }
                cs.resort(m);
            } else {
                let mut i = pivot;
                while cs.doc(i) == pd {
                    i -= 1;
                }
                cs.at(i).cur.seek(pd);
                cs.bubble(i);
            }
        } else {
            // Skip past the shortest block (or to the next cursor's doc), moving the list with
            // the largest bound, which is the most likely to skip far.
            let mut target = next.saturating_add(1);
            if pivot + 1 < n && cs.doc(pivot + 1) < target {
                target = cs.doc(pivot + 1);
            }
            if target <= pd {
                target = pd + 1;
            }
            let mut best = pivot;
            for i in 0..pivot {
                if cs.ub(i) > cs.ub(best) {
                    best = i;
                }
            }
            cs.at(best).cur.seek(target);
            cs.bubble(best);
        }
    }
    top.into_sorted()
}
