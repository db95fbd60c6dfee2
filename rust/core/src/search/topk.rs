//! The top-k collector shared by every algorithm.
//!
//! Order: score descending, then the document's *tie key* ascending. The tie key is the rank
//! of the document's external id among the segment's ids ([`crate::index::Index::tie_rank`]),
//! or the internal doc id when the segment stores no ids or keeps them in ascending order. So
//! ties fall to the smaller id, whatever the internal order (BP reordering, merges): the same
//! order for one segment or many. A document enters only if it beats the current k-th entry
//! under that order, so the collector's content does not depend on the order in which
//! documents are offered.
//!
//! Thresholds are *exclusive*: [`TopK::threshold`] is the largest score that can no longer
//! enter (just below the k-th score once full), so a document scoring exactly the k-th score
//! (which may still enter by its tie key) is never pruned by a test `score <= threshold`.

use super::DocSet;
use std::sync::Arc;

/// A score type: ordered, with the largest value below a given one (so that an inclusive
/// bound "at least `s`" is the exclusive bound "above `s.just_below()`").
pub trait Score: Copy + PartialOrd + Default {
    /// The largest value that ranks below `self` (integers: `self - 1`, saturating; floats:
    /// the next representable value down; fixed point: the largest sum that rounds to a
    /// smaller f32, [`super::fixed::Fixed`]).
    fn just_below(self) -> Self;
    /// The value `self` ranks as: itself, except for fixed-point sums, which rank as the f32
    /// they round to (the smallest sum that rounds to it), so that sums reported as equal
    /// scores tie.
    #[inline(always)]
    fn canon(self) -> Self {
        self
    }
}

impl Score for u32 {
    #[inline(always)]
    fn just_below(self) -> u32 {
        self.saturating_sub(1)
    }
}

impl Score for f32 {
    #[inline(always)]
    fn just_below(self) -> f32 {
        if self.is_nan() || self == f32::NEG_INFINITY {
            self
        } else if self == 0.0 {
            -f32::from_bits(1)
        } else if self > 0.0 {
            f32::from_bits(self.to_bits() - 1)
        } else {
            f32::from_bits(self.to_bits() + 1)
        }
    }
}

/// The most entries a collector allocates up front: a search for every document above a floor
/// (`k` = the number of documents, the float rerank's second traversal) grows as it fills.
const INITIAL: usize = 1 << 12;

/// Bounded collector of the best `k` (doc, score) pairs, optionally restricted to an
/// allowed-document set (a document outside it never enters, so every threshold derived from
/// the collector is a threshold of the allowed documents only).
pub struct TopK<S> {
    k: usize,
    /// Min-heap on "worse first": heap[0] is the current k-th best. Entries: (score, tie key,
    /// doc).
    heap: Vec<(S, u32, u32)>,
    allowed: Option<DocSet>,
    /// Tie key by internal doc (`None`: the doc id itself).
    ties: Option<Arc<[u32]>>,
    /// A document must score above this to enter (zero, or a floor carried over from other
    /// segments of the same search).
    floor: S,
    /// The scores of the documents outside `allowed` that were offered and would otherwise
    /// have been compared with the k-th ([`TopK::logging_excluded`]).
    excluded: Option<Vec<S>>,
}

#[inline(always)]
fn worse<S: PartialOrd>(a: &(S, u32, u32), b: &(S, u32, u32)) -> bool {
    // a is worse than b: lower score, or equal score and larger tie key.
    a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl<S: Score> TopK<S> {
    /// Collector for the best `k` documents (k >= 1).
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(INITIAL)),
            allowed: None,
            ties: None,
            floor: S::default(),
            excluded: None,
        }
    }

    /// Collector for the best `k` documents of `allowed` (all documents when `None`) that
    /// score above `floor`.
    pub fn with_allowed(k: usize, allowed: Option<&DocSet>, floor: S) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(INITIAL)),
            allowed: allowed.cloned(),
            ties: None,
            floor,
            excluded: None,
        }
    }

    /// This collector, also keeping the score of every document outside its allowed set that
    /// is offered and scores at least the k-th so far ([`TopK::take_excluded`]): every
    /// excluded document scoring at least the final k-th score is among them (the k-th only
    /// rises), so the rank of a collected document among *all* documents is its rank among
    /// the allowed ones plus the excluded scores above its own.
    pub fn logging_excluded(mut self) -> Self {
        self.excluded = Some(Vec::new());
        self
    }

    /// The excluded scores kept by [`TopK::logging_excluded`] (`None` without it).
    pub fn take_excluded(&mut self) -> Option<Vec<S>> {
        self.excluded.take()
    }

    /// This collector with ties broken by `ties[doc]` ascending (by doc id when `None`).
    pub fn with_ties(mut self, ties: Option<&Arc<[u32]>>) -> Self {
        self.ties = ties.cloned();
        self
    }

    /// Exclusive threshold: a document must score above it to enter. The floor while fewer
    /// than `k` documents are held (zero unless given: documents with a zero score are never
    /// returned); once full, the score just below the k-th (a document with the k-th score
    /// may still enter by its tie key).
    #[inline]
    pub fn threshold(&self) -> S {
        if self.heap.len() < self.k {
            self.floor
        } else {
            let t = self.heap[0].0.just_below();
            if t > self.floor {
                t
            } else {
                self.floor
            }
        }
    }

    /// The tie key of `doc` (see the module doc).
    #[inline]
    fn key(&self, doc: u32) -> u32 {
        match &self.ties {
            Some(t) => t[doc as usize],
            None => doc,
        }
    }

    /// Offer a document; returns true if it entered. It competes with its score's rank
    /// value ([`Score::canon`]), which is what [`TopK::into_sorted`] returns.
    #[inline]
    pub fn push(&mut self, doc: u32, score: S) -> bool {
        let score = score.canon();
        if !(score > self.floor) {
            return false;
        }
        if self.heap.len() >= self.k && score < self.heap[0].0 {
            return false;
        }
        if let Some(a) = &self.allowed {
            if !a.contains(doc) {
                if let Some(x) = &mut self.excluded {
                    x.push(score);
                }
                return false;
            }
        }
        let e = (score, self.key(doc), doc);
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
        self.heap.into_iter().map(|(s, _, d)| (d, s)).collect()
    }
}

/// A top-k collector for offers that come in bulk (the drain of a dense accumulator array,
/// thousands of offers for a k of tens): offers are appended to a buffer, and when it is full
/// (`4k` entries, at least 64; it grows as it fills, from at most 16,384), one selection
/// (`select_nth_unstable`, linear) in the collector's order (score descending, then tie key
/// ascending) keeps the k best and raises the threshold to just below the k-th score, so that
/// an offer costs O(1) amortised instead of a heap's O(log k), and the buffer never outgrows
/// its capacity, however many documents tie. [`Gather::finish`] hands the k survivors to the
/// [`TopK`] it was made from, whose order, ties, allowed set and floor decide the result: the
/// same result as offering every document to that collector (a document dropped ranks below k
/// buffered ones, so it could not have entered). The threshold lags the heap's between
/// selections (the documents offered meanwhile pass a lower bar), which is what the buffer is
/// for; it is never above the heap's.
pub struct Gather<S> {
    top: TopK<S>,
    buf: Vec<(u32, S)>,
    cap: usize,
    /// Exclusive threshold: the floor, then just below the k-th buffered score.
    thr: S,
    /// The k-th entry's score and tie key after the last selection: a document with that score
    /// and a larger key ranks below it and is refused at once, as the heap refuses it (on data
    /// where many documents tie, they would otherwise fill the buffer again and again).
    kth: Option<(S, u32)>,
}

impl<S: Score> Gather<S> {
    /// A gatherer that feeds `top` (which should be empty).
    pub fn new(top: TopK<S>) -> Self {
        let cap = top.k.saturating_mul(4).max(64);
        let thr = top.threshold();
        Gather { buf: Vec::with_capacity(cap.min(4 * INITIAL)), cap, thr, top, kth: None }
    }

    /// The exclusive threshold: only a document scoring above it can enter.
    #[inline]
    pub fn threshold(&self) -> S {
        self.thr
    }

    /// Offer a document (one scoring above [`Gather::threshold`]); returns the threshold.
    #[inline]
    pub fn offer(&mut self, doc: u32, score: S) -> S {
        let score = score.canon();
        if !(score > self.thr) {
            return self.thr;
        }
        if let Some((ks, kk)) = self.kth {
            if score == ks && self.top.key(doc) > kk {
                return self.thr;
            }
        }
        if let Some(a) = &self.top.allowed {
            if !a.contains(doc) {
                if let Some(x) = &mut self.top.excluded {
                    x.push(score);
                }
                return self.thr;
            }
        }
        self.buf.push((doc, score));
        if self.buf.len() >= self.cap {
            self.select();
        }
        self.thr
    }

    /// Keep the k best entries in the collector's order and raise the threshold to just below
    /// the k-th score (a document scoring exactly that may still enter by its tie key).
    fn select(&mut self) {
        let k = self.top.k;
        if self.buf.len() <= k {
            return;
        }
        let top = &self.top;
        let order = |a: &(u32, S), b: &(u32, S)| {
            b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| top.key(a.0).cmp(&top.key(b.0)))
        };
        let (kd, kth) = *self.buf.select_nth_unstable_by(k - 1, order).1;
        self.kth = Some((kth, self.top.key(kd)));
        self.buf.truncate(k);
        let t = kth.just_below();
        if t > self.thr {
            self.thr = t;
        }
        if let Some(x) = &mut self.top.excluded {
            // Only the scores above the threshold can count for a hit (see `logging_excluded`).
            let thr = self.thr;
            x.retain(|&e| e > thr);
        }
    }

    /// The collector, holding the best `k` of every document offered.
    pub fn finish(mut self) -> TopK<S> {
        self.select();
        for (d, s) in self.buf {
            self.top.push(d, s);
        }
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_fall_to_the_smaller_key_whatever_the_offer_order() {
        // docs 0..6, all with score 5; keys reverse the doc order.
        let ties: Arc<[u32]> = vec![5, 4, 3, 2, 1, 0].into();
        for order in [[0u32, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 5, 0, 3, 1, 4]] {
            let mut t = TopK::<u32>::new(3).with_ties(Some(&ties));
            for d in order {
                t.push(d, 5);
            }
            assert_eq!(t.threshold(), 4, "exclusive threshold: a tied score may still enter");
            assert_eq!(t.into_sorted(), vec![(5, 5), (4, 5), (3, 5)]);
        }
    }

    /// Gathering equals offering every document to the collector, with ties, an allowed set
    /// and a floor, whatever the number of offers against k.
    #[test]
    fn gather_equals_the_heap() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..300 {
            let n = 1 + (crate::synth::xorshift64(&mut rng) % 3000) as usize;
            let k = 1 + (crate::synth::xorshift64(&mut rng) % 300) as usize;
            let levels = 1 + crate::synth::xorshift64(&mut rng) % 50; // few levels: many ties
            let scores: Vec<u32> = (0..n).map(|_| (crate::synth::xorshift64(&mut rng) % levels) as u32).collect();
            let ties: Arc<[u32]> = (0..n as u32).map(|d| (d * 7919) % n as u32).collect::<Vec<_>>().into();
            let allowed = (case % 3 == 0).then(|| {
                let words: Vec<u64> = (0..n.div_ceil(64)).map(|_| crate::synth::xorshift64(&mut rng)).collect();
                DocSet::from_words(words, n as u32).unwrap()
            });
            let floor = (case % 4 == 0) as u32 * 3;
            let fresh = || TopK::with_allowed(k, allowed.as_ref(), floor).with_ties(Some(&ties));
            let mut heap = fresh();
            for (d, &s) in scores.iter().enumerate() {
                heap.push(d as u32, s);
            }
            let mut g = Gather::new(fresh());
            for (d, &s) in scores.iter().enumerate() {
                if s > g.threshold() {
                    g.offer(d as u32, s);
                }
                assert!(g.buf.len() < g.cap, "the buffer stays within its capacity, ties or not");
            }
            assert_eq!(g.finish().into_sorted(), heap.into_sorted(), "case {case}: n {n} k {k}");
        }
    }

    #[test]
    fn just_below_is_the_previous_value() {
        assert_eq!(7u32.just_below(), 6);
        assert_eq!(0u32.just_below(), 0);
        let x = 1.5f32;
        assert!(x.just_below() < x && f32::from_bits(x.just_below().to_bits() + 1) == x);
        assert!(0.0f32.just_below() < 0.0);
        assert!((-2.0f32).just_below() < -2.0);
    }
}
