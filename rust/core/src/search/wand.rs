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

/// Cursors in doc order: `order[i]` indexes `cs`. Cursors are large (they hold a decoded
/// block), so the order is kept in a small index array rather than by moving cursors.
pub(crate) struct Sorted<'a, K: Kind> {
    pub cs: Vec<TermCursor<'a, K>>,
    pub order: Vec<usize>,
}

impl<'a, K: Kind> Sorted<'a, K> {
    pub fn new(cs: Vec<TermCursor<'a, K>>) -> Self {
        let mut order: Vec<usize> = (0..cs.len()).collect();
        order.sort_by_key(|&i| cs[i].cur.doc());
        Sorted { cs, order }
    }
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.order.len()
    }
    #[inline(always)]
    pub fn at(&mut self, i: usize) -> &mut TermCursor<'a, K> {
        &mut self.cs[self.order[i]]
    }
    #[inline(always)]
    pub fn doc(&self, i: usize) -> u32 {
        self.cs[self.order[i]].cur.doc()
    }
    #[inline(always)]
    pub fn ub(&self, i: usize) -> K::S {
        self.cs[self.order[i]].ub
    }
    /// Restore doc order after the cursor at position `i` moved forward.
    #[inline]
    pub fn bubble(&mut self, mut i: usize) {
        let o = self.order[i];
        let d = self.cs[o].cur.doc();
        while i + 1 < self.order.len() && d > self.cs[self.order[i + 1]].cur.doc() {
            self.order[i] = self.order[i + 1];
            i += 1;
        }
        self.order[i] = o;
    }
    /// Restore doc order after every cursor in positions `0..m` moved forward: each bubbled
    /// into place when they are few, else sorted and merged with the rest, in O(n + m log m).
    /// Bubbling many was O(m x n): a document holding every term of a query of 150,000 terms
    /// moved them all to the end, one at a time, 24 s in one step (helper-119). Either way a
    /// moved cursor goes before the unmoved ones on the same doc, and moved ones keep their
    /// order.
    #[inline]
    pub fn resort(&mut self, m: usize) {
        if m <= 16 {
            for i in (0..m).rev() {
                self.bubble(i);
            }
            return;
        }
        let cs = &self.cs;
        let doc = |o: usize| cs[o].cur.doc();
        let mut moved = self.order[..m].to_vec();
        moved.sort_by_key(|&o| doc(o)); // stable
        let rest = &self.order[m..];
        let mut out = Vec::with_capacity(self.order.len());
        let (mut a, mut b) = (0, 0);
        while a < moved.len() && b < rest.len() {
            if doc(rest[b]) < doc(moved[a]) {
                out.push(rest[b]);
                b += 1;
            } else {
                out.push(moved[a]);
                a += 1;
            }
        }
        out.extend_from_slice(&moved[a..]);
        out.extend_from_slice(&rest[b..]);
        self.order = out;
    }
    /// The first position whose cumulative bound may beat `thr`.
    #[inline]
    pub fn find_pivot(&self, thr: K::S, slack: f32) -> Option<usize> {
        let mut ub = K::S::default();
        for (p, &o) in self.order.iter().enumerate() {
            let c = &self.cs[o];
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
    /// Score doc `d`, on which the first `m` cursors sit, and advance them; returns the exact
    /// score and `m`.
    #[inline]
    pub fn score_prefix(&mut self, d: u32, ev: &mut Evaluator<K>) -> (K::S, usize) {
        let mut score = K::S::default();
        let mut m = 0;
        while m < self.order.len() && self.doc(m) == d {
            let c = &mut self.cs[self.order[m]];
            let s = c.score();
            ev.add(&mut score, c.qi, s);
            c.cur.next();
            m += 1;
        }
        (ev.finish(score), m)
    }
}

/// Exact top-`k` by WAND.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
) -> Vec<(u32, K::S)> {
    let mut cs = Sorted::new(open_cursors(v, arrays, plan));
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    let mut ev = Evaluator::<K>::new(cs.len());
    let mut thr = top.threshold();
    let mut stop = crate::cancel::Ticker::new(plan.terms.len()); // Ctrl-C on a long query (see the binding)
    while let Some(pivot) = cs.find_pivot(thr, plan.slack) {
        if stop.stopped() {
            break;
        }
        let pd = cs.doc(pivot);
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
    }
    top.into_sorted()
}
