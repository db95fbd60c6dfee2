//! Pieces shared by the document-at-a-time algorithms.

use super::plan::Plan;
use super::{DocSet, Kind};
use crate::index::{ImpactArrays, IndexView};
use crate::postings::{decode_block, Cursor};

/// A query term's cursor with its weight, upper bound and canonical position.
pub struct TermCursor<'a, K: Kind> {
    /// The posting cursor.
    pub cur: Cursor<'a, K::Imp>,
    /// Query weight.
    pub w: K::W,
    /// Upper bound of the term's contribution (weight x list max).
    pub ub: K::S,
    /// Canonical position of the term in the query.
    pub qi: usize,
}

impl<'a, K: Kind> TermCursor<'a, K> {
    /// Contribution of the current posting.
    #[inline(always)]
    pub fn score(&self) -> K::S {
        K::mul(self.w, self.cur.impact())
    }
}

/// Open one cursor per plan term.
pub fn open_cursors<'a, K: Kind>(
    v: &IndexView<'a>,
    arrays: &ImpactArrays<'a, K::Imp>,
    plan: &Plan<K>,
) -> Vec<TermCursor<'a, K>> {
    plan.terms
        .iter()
        .map(|pt| {
            let cur = Cursor::new(v, arrays, pt.term);
            let ub = K::mul(pt.w, cur.term_max());
            TermCursor { cur, w: pt.w, ub, qi: pt.qi }
        })
        .collect()
}

/// Sums a document's contributions. Exact kinds (integers, fixed point) add as they go; float
/// vectors ([`Kind::ORDERED_SUM`]) remember each contribution by canonical position and sum
/// them in that order at the end, so the result is bit-identical to the term-at-a-time
/// oracle's.
pub struct Evaluator<K: Kind> {
    contrib: Vec<K::S>,
    touched: Vec<usize>,
}

impl<K: Kind> Evaluator<K> {
    /// For a query of `n` terms.
    pub fn new(n: usize) -> Self {
        Evaluator {
            contrib: vec![K::S::default(); if K::ORDERED_SUM { n } else { 0 }],
            touched: Vec::with_capacity(if K::ORDERED_SUM { n } else { 0 }),
        }
    }

    /// Add the contribution `c` of canonical term `qi` to the running `score`.
    #[inline(always)]
    pub fn add(&mut self, score: &mut K::S, qi: usize, c: K::S) {
        *score += c;
        if K::ORDERED_SUM {
            self.contrib[qi] = c;
            self.touched.push(qi);
        }
    }

    /// The exact score of the document (canonical order for floats); resets the evaluator.
    #[inline(always)]
    pub fn finish(&mut self, score: K::S) -> K::S {
        if !K::ORDERED_SUM {
            return score;
        }
        self.touched.sort_unstable();
        let mut s = K::S::default();
        for &qi in &self.touched {
            s += self.contrib[qi];
        }
        self.touched.clear();
        s
    }

    /// Forget the current document (it was pruned).
    #[inline(always)]
    pub fn discard(&mut self) {
        if K::ORDERED_SUM {
            self.touched.clear();
        }
    }
}

/// Random access: the impact of `doc` in `term`'s list, if the document has the term.
/// Binary search over the term's block boundaries, then one block decode.
pub fn lookup<I: Copy>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, I>,
    term: u32,
    doc: u32,
    buf: &mut [u32; crate::codec::BLOCK_LEN],
) -> Option<I> {
    let t = term as usize;
    if t >= v.n_terms as usize {
        return None;
    }
    let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
    let lasts = &v.block_last[b0..b1];
    let bi = lasts.partition_point(|&l| l < doc);
    if bi == lasts.len() {
        return None;
    }
    decode_block(v, b0, b0 + bi, buf);
    let p0 = v.term_post_start[t] as usize;
    let df = v.term_post_start[t + 1] as usize - p0;
    let len = (df - bi * crate::codec::BLOCK_LEN).min(crate::codec::BLOCK_LEN);
    let pos = buf[..len].partition_point(|&d| d < doc);
    if pos < len && buf[pos] == doc {
        arrays.impacts.get(p0 + bi * crate::codec::BLOCK_LEN + pos).copied()
    } else {
        None
    }
}

/// Up to `k` distinct documents with lower bounds of their scores (a min-heap with a
/// membership bitset). Entries may be stale (lower than the document's current partial
/// score): the k-th entry is still a valid lower bound of the k-th best final score.
pub struct DistinctTop<S> {
    k: usize,
    heap: Vec<(S, u32)>,
    member: Vec<u64>,
    allowed: Option<DocSet>,
    floor: S,
}

impl<S: super::topk::Score> DistinctTop<S> {
    /// For `n_docs` documents, of which only those in `allowed` (all when `None`) are kept;
    /// `floor` is a known lower bound of the final k-th score (zero if none).
    pub fn new(k: usize, n_docs: usize, allowed: Option<&DocSet>, floor: S) -> Self {
        DistinctTop {
            k,
            heap: Vec::with_capacity(k.min(1 << 16)),
            member: vec![0; n_docs.div_ceil(64)],
            allowed: allowed.cloned(),
            floor,
        }
    }
    /// Exclusive lower bound of the final k-th score: just below the smallest kept score once
    /// `k` documents are kept (at least the floor), the floor before. A document whose score
    /// is at most this cannot enter the top-k (one scoring exactly the smallest kept score
    /// still may, by its tie key).
    #[inline(always)]
    pub fn kth(&self) -> S {
        if self.heap.len() < self.k {
            return self.floor;
        }
        let t = self.heap[0].0.just_below();
        if t > self.floor {
            t
        } else {
            self.floor
        }
    }
    /// Offer `doc` with lower bound `s` (ignored if the document is already kept).
    #[inline]
    pub fn offer(&mut self, doc: u32, s: S) {
        let (w, bit) = ((doc >> 6) as usize, 1u64 << (doc & 63));
        if self.member[w] & bit != 0 {
            return;
        }
        if let Some(a) = &self.allowed {
            if !a.contains(doc) {
                return;
            }
        }
        if self.heap.len() < self.k {
            self.member[w] |= bit;
            self.heap.push((s, doc));
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if self.heap[i].0 < self.heap[p].0 {
                    self.heap.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else if s > self.heap[0].0 {
            let old = self.heap[0].1;
            self.member[(old >> 6) as usize] &= !(1u64 << (old & 63));
            self.member[w] |= bit;
            self.heap[0] = (s, doc);
            self.sift_down(0);
        }
    }
    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.heap[l].0 < self.heap[m].0 {
                m = l;
            }
            if r < n && self.heap[r].0 < self.heap[m].0 {
                m = r;
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }
    /// Replace every kept score by `f(doc)` (fresher lower bounds) and restore the heap.
    pub fn refresh(&mut self, mut f: impl FnMut(u32) -> S) {
        for e in self.heap.iter_mut() {
            e.0 = f(e.1);
        }
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }
    /// Kept documents.
    pub fn docs(&self) -> impl Iterator<Item = u32> + '_ {
        self.heap.iter().map(|e| e.1)
    }
}

/// Call `f(doc, impact)` for every posting of `term` in doc order, decoding block by block:
/// the term-at-a-time loop shared by the exhaustive scorer, TAAT MaxScore and block-max pruning.
#[inline]
pub fn for_each_posting<I: Copy>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, I>,
    term: u32,
    mut f: impl FnMut(u32, I),
) {
    let t = term as usize;
    if t >= v.n_terms as usize {
        return;
    }
    let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
    let p0 = v.term_post_start[t] as usize;
    let df = v.term_post_start[t + 1] as usize - p0;
    let mut buf = [0u32; crate::codec::BLOCK_LEN];
    for b in b0..b1 {
        decode_block(v, b0, b, &mut buf);
        let start = (b - b0) * crate::codec::BLOCK_LEN;
        let len = (df - start).min(crate::codec::BLOCK_LEN);
        for (&d, &imp) in buf[..len].iter().zip(&arrays.impacts[p0 + start..p0 + start + len]) {
            f(d, imp);
        }
    }
}
