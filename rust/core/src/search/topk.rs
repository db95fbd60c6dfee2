//! The top-k collector shared by every algorithm.
//!
//! Order: score descending, then doc id ascending. A document enters only if it beats the
//! current k-th entry under that order, so the collector's content does not depend on the
//! order in which documents are offered.

use super::DocSet;

/// Bounded collector of the best `k` (doc, score) pairs, optionally restricted to an
/// allowed-document set (a document outside it never enters, so every threshold derived from
/// the collector is a threshold of the allowed documents only).
pub struct TopK<S> {
    k: usize,
    /// Min-heap on "worse first": heap[0] is the current k-th best.
    heap: Vec<(S, u32)>,
    allowed: Option<DocSet>,
    /// A document must score above this to enter (zero, or a floor carried over from other
    /// segments of the same search).
    floor: S,
}

#[inline]
fn worse<S: PartialOrd>(a: &(S, u32), b: &(S, u32)) -> bool {
    // a is worse than b: lower score, or equal score and larger doc id.
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl<S: Copy + PartialOrd + Default> TopK<S> {
    /// Collector for the best `k` documents (k >= 1).
    pub fn new(k: usize) -> Self {
        TopK { k, heap: Vec::with_capacity(k.min(1 << 20)), allowed: None, floor: S::default() }
    }

    /// Collector for the best `k` documents of `allowed` (all documents when `None`) that
    /// score above `floor`.
    pub fn with_allowed(k: usize, allowed: Option<&DocSet>, floor: S) -> Self {
        TopK { k, heap: Vec::with_capacity(k.min(1 << 20)), allowed: allowed.cloned(), floor }
    }

    /// Score a document must beat to enter (ties resolved by doc id): the k-th score once full,
    /// the floor before (zero unless given: documents with a zero score are never returned).
    #[inline]
    pub fn threshold(&self) -> S {
        if self.heap.len() < self.k {
            self.floor
        } else {
            self.heap[0].0
        }
    }

    /// Offer a document; returns true if it entered.
    #[inline]
    pub fn push(&mut self, doc: u32, score: S) -> bool {
        if !(score > self.floor) {
            return false;
        }
        if let Some(a) = &self.allowed {
            if !a.contains(doc) {
                return false;
            }
        }
        let e = (score, doc);
        if self.heap.len() < self.k {
            self.heap.push(e);
            self.sift_up(self.heap.len() - 1);
            true
        } else if worse(&self.heap[0], &e) {
            self.heap[0] = e;
            self.sift_down(0);
            true
        } else {
            false
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if worse(&self.heap[i], &self.heap[p]) {
                self.heap.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && worse(&self.heap[l], &self.heap[m]) {
                m = l;
            }
            if r < n && worse(&self.heap[r], &self.heap[m]) {
                m = r;
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    /// The collected entries, best first.
    pub fn into_sorted(mut self) -> Vec<(u32, S)> {
        self.heap.sort_by(|a, b| {
            if worse(b, a) {
                std::cmp::Ordering::Less
            } else if worse(a, b) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        self.heap.into_iter().map(|(s, d)| (d, s)).collect()
    }
}
