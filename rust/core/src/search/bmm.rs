//! Block-Max MaxScore: MaxScore (Turtle & Flood 1995) whose non-essential probing is bounded
//! by block maxima instead of list maxima (Chakrabarti et al., "Interval-based pruning for
//! top-k processing over compressed lists", ICDE 2011; PISA's `block_max_maxscore_query`).
//!
//! As in MaxScore, candidates come from the essential lists. Before probing the non-essential
//! lists, the candidate's partial score plus the block maxima of the blocks that would hold it
//! (read without decoding) must beat the threshold; while probing, the remaining block maxima
//! bound the rest.

use super::common::{open_cursors, Evaluator};
use super::plan::Plan;
use super::topk::TopK;
use super::Kind;
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Exact top-`k` by Block-Max MaxScore.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
) -> Vec<(u32, K::S)> {
    let mut cs = open_cursors(v, arrays, plan);
    cs.sort_by(|a, b| a.ub.partial_cmp(&b.ub).unwrap_or(std::cmp::Ordering::Equal).then(a.qi.cmp(&b.qi)));
    let n = cs.len();
    let mut prefix = Vec::with_capacity(n);
    let mut acc = K::S::default();
    for c in &cs {
        acc += c.ub;
        prefix.push(acc);
    }
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    let mut ev = Evaluator::<K>::new(n);
    let mut thr = top.threshold();
    let mut first_ess = 0;
    while first_ess < n && K::prune(prefix[first_ess], thr, plan.slack) {
        first_ess += 1; // a floor carried over from other segments prunes from the start
    }
    // bm_prefix[i] = sum of the block maxima of non-essential lists 0..=i for the candidate.
    let mut bm_prefix = vec![K::S::default(); n];
    let mut cur = cs.iter().map(|c| c.cur.doc()).min().unwrap_or(TERMINATED);
    let mut stop = crate::cancel::Ticker::new(plan.terms.len()); // Ctrl-C on a long query (see the binding)
    while cur != TERMINATED && first_ess < n {
        if stop.stopped() {
            break;
        }
        let mut score = K::S::default();
        let mut next = TERMINATED;
        for c in cs[first_ess..].iter_mut() {
            if c.cur.doc() == cur {
                let s = c.score();
                ev.add(&mut score, c.qi, s);
                c.cur.next();
            }
            next = next.min(c.cur.doc());
        }
        let mut pruned = first_ess > 0 && K::prune(score + prefix[first_ess - 1], thr, plan.slack);
        if !pruned && first_ess > 0 {
            let mut a = K::S::default();
            for i in 0..first_ess {
                let c = &mut cs[i];
                let (m, _) = if c.cur.doc() > cur { (Default::default(), 0) } else { c.cur.block_max_for(cur) };
                a += K::mul(c.w, m);
                bm_prefix[i] = a;
            }
            for i in (0..first_ess).rev() {
                if K::prune(score + bm_prefix[i], thr, plan.slack) {
                    pruned = true;
                    break;
                }
                let c = &mut cs[i];
                if c.cur.seek(cur) == cur {
                    let s = c.score();
                    ev.add(&mut score, c.qi, s);
                }
            }
        }
        if pruned {
            ev.discard();
        } else {
            let exact = ev.finish(score);
            if top.push(cur, exact) {
                thr = top.threshold();
                while first_ess < n && K::prune(prefix[first_ess], thr, plan.slack) {
                    first_ess += 1;
                }
            }
        }
        cur = next;
    }
    top.into_sorted()
}
