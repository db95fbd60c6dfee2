//! MaxScore (Turtle & Flood, "Query evaluation: strategies and optimizations", IP&M 1995),
//! document-at-a-time as in PISA's `maxscore_query`.
//!
//! Terms are sorted by their upper bound. The longest prefix whose bounds sum to at most the
//! current threshold is *non-essential*: a document found only in those lists cannot enter the
//! top-k, so candidates are drawn from the essential lists alone and the non-essential lists
//! are only probed (`seek`) for candidates, highest bound first, stopping as soon as the
//! partial score plus the remaining bounds cannot beat the threshold.

use super::common::{open_cursors, Evaluator};
use super::plan::Plan;
use super::topk::TopK;
use super::Kind;
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Exact top-`k` by MaxScore.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
) -> Vec<(u32, K::S)> {
    let mut cs = open_cursors(v, arrays, plan);
    cs.sort_by(|a, b| a.ub.partial_cmp(&b.ub).unwrap_or(std::cmp::Ordering::Equal).then(a.qi.cmp(&b.qi)));
    let n = cs.len();
    // prefix[i] = sum of bounds of cs[0..=i]
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
        // A document outside the allowed set is dropped before its non-essential lists are read.
        let mut pruned = plan.allowed.as_ref().is_some_and(|a| !a.contains(cur));
        for i in (0..first_ess).rev() {
            if pruned {
                break;
            }
            if K::prune(score + prefix[i], thr, plan.slack) {
                pruned = true;
                break;
            }
            let c = &mut cs[i];
            if c.cur.seek(cur) == cur {
                let s = c.score();
                ev.add(&mut score, c.qi, s);
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
