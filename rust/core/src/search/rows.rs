//! Exact scores of documents from their stored (forward) rows, for the algorithms that score
//! a few documents after pruning: two-level block-max pruning ([`super::superblock`]),
//! block-max TAAT MaxScore ([`super::bmt`]) and approximate search ([`super::approx`]).
//!
//! A stored row lists a document's local term ids in ascending order with their weights as
//! given; each weight's impact is re-derived exactly as the builder derived it
//! ([`Kind::impact_of`]), so a row's score is the oracle's: for exact kinds (integers, fixed
//! point) the same sum, for float vectors the same products added in the same canonical
//! (ascending term) order. The
//! u8 kind runs a 16-lane kernel over a dense table of the query's weights
//! ([`super::kernels::score_row_u8`]); other kinds look each entry up in a table of plan
//! positions.

use super::kernels;
use super::plan::{Plan, Query};
use super::{Kind, Scratch};
use crate::index::{Forward, FwdTerms, IndexView, TermId};

/// How many candidates ahead of the one being scored the reranks prefetch stored rows.
pub(crate) const ROWS_AHEAD: usize = 4;

/// Before scoring candidate `i` of `cands` (whose rows lie far apart): ask `prefetch` for the
/// row [`ROWS_AHEAD`] candidates further and `start` for where the row `2 x ROWS_AHEAD`
/// candidates further lies (so that the row prefetch finds its `indptr` entries loaded), and
/// at `i = 0` for the first ones too.
#[inline(always)]
pub(crate) fn prefetch_ahead<S>(cands: &[(u32, S)], i: usize, prefetch: impl Fn(usize), start: impl Fn(usize)) {
    if i == 0 {
        for c in cands.iter().take(2 * ROWS_AHEAD) {
            start(c.0 as usize);
        }
        for c in cands.iter().take(ROWS_AHEAD) {
            prefetch(c.0 as usize);
        }
    }
    if let Some(c) = cands.get(i + 2 * ROWS_AHEAD) {
        start(c.0 as usize);
    }
    if let Some(c) = cands.get(i + ROWS_AHEAD) {
        prefetch(c.0 as usize);
    }
}

/// Scores documents of one segment for one prepared query from their stored rows. Borrows the
/// per-term tables of the scratch space; [`RowScorer::finish`] gives them back cleared.
pub(crate) struct RowScorer<'a, 'p, K: Kind> {
    v: &'a IndexView<'a>,
    fwd: Forward<'a>,
    plan: &'p Plan<K>,
    /// Plan position by local term (generic path).
    pos: Vec<u32>,
    /// u32 weight by local term (u8 kernel path).
    wtab: Vec<u32>,
    fast: bool,
    isa: kernels::Isa,
}

impl<'a, 'p, K: Kind> RowScorer<'a, 'p, K> {
    /// A scorer for `plan` over the stored rows `fwd` of `v`, with tables from `scratch`.
    pub(crate) fn new(v: &'a IndexView<'a>, fwd: Forward<'a>, plan: &'p Plan<K>, scratch: &mut Scratch) -> Self {
        let nt = v.n_terms as usize;
        let fast = plan.terms.iter().all(|pt| K::row_weight_u32(pt.w).is_some());
        let mut pos = std::mem::take(&mut scratch.table);
        let mut wtab = std::mem::take(&mut scratch.weights_u32);
        if fast {
            // All 0 between searches: a table left longer by a segment with more terms
            // serves (segments of one search have vocabularies of different sizes).
            if wtab.len() < nt {
                wtab.resize(nt, 0);
            }
            for pt in &plan.terms {
                wtab[pt.term as usize] = K::row_weight_u32(pt.w).unwrap_or(0);
            }
        } else {
            if pos.len() < nt {
                pos.resize(nt, u32::MAX);
            }
            for (i, pt) in plan.terms.iter().enumerate() {
                pos[pt.term as usize] = i as u32;
            }
        }
        RowScorer { v, fwd, plan, pos, wtab, fast, isa: kernels::isa() }
    }

    /// Ask the CPU to start loading document `d`'s stored row (`d` < n_docs).
    #[inline(always)]
    pub(crate) fn prefetch(&self, d: usize) {
        super::forward::prefetch_row(&self.fwd, d);
    }

    /// Ask the CPU to start loading where document `d`'s stored row lies.
    #[inline(always)]
    pub(crate) fn prefetch_start(&self, d: usize) {
        super::forward::prefetch_start(&self.fwd, d);
    }

    /// The exact score of document `d` (< n_docs).
    #[inline]
    pub(crate) fn score(&self, d: usize) -> K::S {
        let (a, b) = (self.fwd.indptr[d] as usize, self.fwd.indptr[d + 1] as usize);
        match self.fwd.terms {
            FwdTerms::U16(t) => self.score_row(d, &t[a..b], &self.fwd.values[a..b]),
            FwdTerms::U32(t) => self.score_row(d, &t[a..b], &self.fwd.values[a..b]),
        }
    }

    #[inline(always)]
    fn score_row<T: TermId>(&self, d: usize, terms: &[T], values: &[f32]) -> K::S {
        if self.fast {
            return K::score_from_u32(kernels::score_row_u8(self.isa, terms, values, self.v.scale, &self.wtab));
        }
        let dl = self.v.doc_len.map_or(0, |l| l[d]);
        let mut s = K::S::default();
        for (&t, &x) in terms.iter().zip(values) {
            if let Some(pt) = self.pos.get(t.into() as usize).and_then(|&i| self.plan.terms.get(i as usize)) {
                s += K::mul(pt.w, K::impact_of(x, dl, self.v.scale));
            }
        }
        s
    }

    /// Give the tables back to `scratch`, cleared for the next query.
    pub(crate) fn finish(mut self, scratch: &mut Scratch) {
        for pt in &self.plan.terms {
            if let Some(e) = self.wtab.get_mut(pt.term as usize) {
                *e = 0;
            }
            if let Some(e) = self.pos.get_mut(pt.term as usize) {
                *e = u32::MAX;
            }
        }
        scratch.table = std::mem::take(&mut self.pos);
        scratch.weights_u32 = std::mem::take(&mut self.wtab);
    }
}

/// Float dot products of stored rows with a query's float weights: the scores of approximate
/// search over quantized segments ([`super::approx`]). A stored row keeps the weights as given
/// (f32), so its dot product with the query is the score an f32 index over the same vectors
/// gives, bit for bit: the products `w x` are added in ascending term id order, as the f32
/// kind adds them (local term ids ascend with the caller's ids). Borrows the float weight
/// table of the scratch space; [`FloatRowScorer::finish`] gives it back cleared.
pub(crate) struct FloatRowScorer<'a> {
    fwd: Forward<'a>,
    /// Float query weight by local term (0 for terms not in the query).
    wf: Vec<f32>,
    /// Local terms set in `wf`.
    set: Vec<u32>,
}

impl<'a> FloatRowScorer<'a> {
    /// A scorer for the validated query `q` (external term ids) over the stored rows `fwd` of
    /// `v`, with the table from `scratch`.
    pub(crate) fn new(v: &IndexView<'a>, fwd: Forward<'a>, q: &Query, scratch: &mut Scratch) -> Self {
        let nt = v.n_terms as usize;
        let mut wf = std::mem::take(&mut scratch.weights_f32);
        // All 0 between searches: a table left longer by a segment with more terms serves
        // (each segment of a search re-zeroed all of it before, issue #10).
        if wf.len() < nt {
            wf.resize(nt, 0.0);
        }
        let mut set = Vec::with_capacity(q.terms().len());
        for (&t, &w) in q.terms().iter().zip(q.weights()) {
            if let Some(l) = v.local_term(t) {
                wf[l as usize] = w;
                set.push(l);
            }
        }
        FloatRowScorer { fwd, wf, set }
    }

    /// The float dot product of document `d`'s stored row (`d` < n_docs) with the query.
    #[inline]
    pub(crate) fn score(&self, d: usize) -> f32 {
        let (a, b) = (self.fwd.indptr[d] as usize, self.fwd.indptr[d + 1] as usize);
        match self.fwd.terms {
            FwdTerms::U16(t) => self.score_row(&t[a..b], &self.fwd.values[a..b]),
            FwdTerms::U32(t) => self.score_row(&t[a..b], &self.fwd.values[a..b]),
        }
    }

    /// Ask the CPU to start loading document `d`'s stored row (`d` < n_docs).
    #[inline(always)]
    pub(crate) fn prefetch(&self, d: usize) {
        super::forward::prefetch_row(&self.fwd, d);
    }

    /// Ask the CPU to start loading where document `d`'s stored row lies.
    #[inline(always)]
    pub(crate) fn prefetch_start(&self, d: usize) {
        super::forward::prefetch_start(&self.fwd, d);
    }

    #[inline(always)]
    fn score_row<T: TermId>(&self, terms: &[T], values: &[f32]) -> f32 {
        // Terms outside the query are skipped rather than added as `0 x x`: the sum is then
        // the f32 kind's, term for term (a `+0.0` or `-0.0` would not change it, but a
        // non-finite product would). Which entries match is data-dependent and unpredictable,
        // so the products of the matching entries are first compacted without a branch, then
        // added in order.
        const CHUNK: usize = 64;
        let mut s = 0.0f32;
        let mut buf = [0.0f32; CHUNK];
        for (tc, xc) in terms.chunks(CHUNK).zip(values.chunks(CHUNK)) {
            let mut n = 0usize;
            for (&t, &x) in tc.iter().zip(xc) {
                let w = self.wf[t.into() as usize];
                buf[n] = w * x;
                n += usize::from(w != 0.0);
            }
            for &p in &buf[..n] {
                s += p;
            }
        }
        s
    }

    /// Give the table back to `scratch`, cleared for the next query.
    pub(crate) fn finish(mut self, scratch: &mut Scratch) {
        for &t in &self.set {
            self.wf[t as usize] = 0.0;
        }
        scratch.weights_f32 = std::mem::take(&mut self.wf);
    }
}
