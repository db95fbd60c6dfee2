//! Block-Max WAND (Ding & Suel, "Faster top-k document retrieval using block-max indexes",
//! SIGIR 2011), as in PISA's `block_max_wand_query`.
//!
//! WAND's pivot is found with whole-list bounds; then the pivot is checked again with the
//! block maxima of the blocks that would hold the pivot doc. If even those cannot beat the
//! threshold, every document up to the end of the shortest of those blocks is skipped at once.

use super::common::{open_cursors, Evaluator};
use super::plan::Plan;
use super::topk::TopK;
use super::wand::{bubble, find_pivot, resort, score_prefix};
use super::Kind;
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Exact top-`k` by Block-Max WAND.
pub fn search<K: Kind>(v: &IndexView<'_>, arrays: &ImpactArrays<'_, K::Imp>, plan: &Plan<K>, k: usize) -> Vec<(u32, K::S)> {
    let mut cs = open_cursors(v, arrays, plan);
    cs.sort_by_key(|c| c.cur.doc());
    let n = cs.len();
    let mut top = TopK::new(k);
    let mut ev = Evaluator::<K>::new(n);
    let mut thr = top.threshold();
    while let Some(mut pivot) = find_pivot(&cs, thr, plan.slack) {
        let pd = cs[pivot].cur.doc();
        while pivot + 1 < n && cs[pivot + 1].cur.doc() == pd {
            pivot += 1;
        }
        let mut block_ub = K::S::default();
        let mut next = TERMINATED;
        for c in cs[..=pivot].iter_mut() {
            let (m, last) = c.cur.block_max_for(pd);
            block_ub += K::mul(c.w, m);
            next = next.min(last);
        }
        if !K::prune(block_ub, thr, plan.slack) {
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
        } else {
            // Skip past the shortest block (or to the next cursor's doc), moving the list with
            // the largest bound, which is the most likely to skip far.
            let mut target = next.saturating_add(1);
            if pivot + 1 < n && cs[pivot + 1].cur.doc() < target {
                target = cs[pivot + 1].cur.doc();
            }
            if target <= pd {
                target = pd + 1;
            }
            let mut best = pivot;
            for i in 0..pivot {
                if cs[i].ub > cs[best].ub {
                    best = i;
                }
            }
            cs[best].cur.seek(target);
            bubble(&mut cs, best);
        }
    }
    top.into_sorted()
}
