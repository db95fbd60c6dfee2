//! Score arithmetic of each impact kind ([`Kind`]) and the per-thread scratch space.
//!
//! Four kinds: [`U8Kind`] (u8 impacts, integer scores), [`F32Kind`] (float impacts and
//! scores), and the two BM25 kinds of [`super::bm25`] over the same (tf, length) postings.
//! Integer kinds give exact scores (every algorithm equals the oracle bit for bit). Float
//! vectors sum a document's f32 contributions in canonical order (ascending term id, the
//! caller's ids, the same in every index over the same vectors) and prune with a relative
//! slack that covers float rounding. Float BM25 sums in fixed point
//! ([`super::fixed`]): exact, so its scores depend on no order at all (BM25 term ids are
//! each dictionary's own).

use crate::index::{Impact, ImpactArrays, Impacts, IndexView};
use std::fmt;

/// What a segment brings to turning query weights into its arithmetic.
#[derive(Clone, Copy, Debug)]
pub struct WeightCtx {
    /// The segment's quantization scale (u8 kind).
    pub scale: f32,
    /// BM25 kinds: the parameters and the average document length of the collection.
    pub bm25: Option<Bm25Ctx>,
}

/// BM25 parameters of one search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Ctx {
    /// k1 of the segment.
    pub k1: f32,
    /// b of the segment.
    pub b: f32,
    /// Average document length of the collection (> 0).
    pub avgdl: f64,
}

/// Score arithmetic of an impact kind.
pub trait Kind: 'static {
    /// Stored impact.
    type Imp: Impact;
    /// Accumulated score.
    type S: Copy
        + Default
        + PartialOrd
        + super::topk::Score
        + std::ops::Add<Output = Self::S>
        + std::ops::AddAssign
        + std::ops::Sub<Output = Self::S>
        + Send
        + Sync
        + fmt::Debug;
    /// Query weight.
    type W: Copy + Send + Sync + fmt::Debug;
    /// True when scores are rounded float sums (f32 vectors): a document's contributions are
    /// added in canonical order (ascending term id) and pruning compares with a relative slack
    /// ([`super::Plan::slack`]). False when sums are exact (integers, fixed point): any order
    /// gives the same score, and pruning compares exactly.
    const ORDERED_SUM: bool;
    /// True when the kind's scores approximate the float dot product of the stored vectors
    /// (quantized vector kinds): approximate search then reranks its candidates with the
    /// float dot product of their stored rows ([`super::rows::FloatRowScorer`]), so that its
    /// scores and its recall target are those of the vectors as given. False for kinds whose
    /// scores are already the float dot product (f32 vectors) or are no dot product (BM25).
    const FLOAT_RERANK: bool = false;
    /// Convert validated, positive query weights; returns the weights and the norm that turns
    /// an accumulated score into weight units (see [`super::plan`] for the quantized rule).
    fn weights(ws: &[f32], ctx: &WeightCtx) -> (Vec<Self::W>, f32);
    /// This kind's accumulator buffer in the scratch space.
    fn acc(s: &mut Scratch) -> &mut Vec<Self::S>;
    /// This kind's doc-block bound and compact accumulator buffers.
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<Self::S>, &mut Vec<Self::S>);
    /// The stored impact of a stored vector's weight `x` in a document of length `dl` (as the
    /// builder derives it).
    fn impact_of(x: f32, dl: u32, scale: f32) -> Self::Imp;
    /// The document's weight for a term, as this kind scores it (for explanations).
    fn doc_weight(i: Self::Imp, ctx: &WeightCtx) -> f32;
    /// The query's weight for a term as this kind scores it, given its weight `w` in a plan of
    /// norm `norm` (for explanations: with [`Kind::doc_weight`], their product is the term's
    /// contribution). None where the kind scores the weight as given (float kinds).
    fn scored_query_weight(_w: Self::W, _norm: f32, _ctx: &WeightCtx) -> Option<f32> {
        None
    }
    /// True for a zero query weight.
    fn w_is_zero(w: Self::W) -> bool;
    /// Contribution of one posting; non-decreasing in the impact's order (so the contribution
    /// of a join bounds the contributions of the impacts under it).
    fn mul(w: Self::W, i: Self::Imp) -> Self::S;
    /// True if no document whose score is at most `bound` can enter a collector whose
    /// exclusive threshold is `thr` ([`super::topk::TopK::threshold`]: a document must score
    /// above it; it already lies just below the k-th score, so a document tying with the k-th
    /// score, which may enter by its tie key, is never pruned).
    fn prune(bound: Self::S, thr: Self::S, slack: f32) -> bool;
    /// The same test as [`Kind::prune`], for the traversals that do not visit documents in doc
    /// order (thresholds are exclusive, so visiting order does not matter).
    fn below(bound: Self::S, thr: Self::S, slack: f32) -> bool;
    /// Score in weight units.
    fn to_f32(s: Self::S, norm: f32) -> f32;
    /// The largest score whose weight-unit value is below `f` (zero if none): a document that
    /// beats it scores at least `f` in weight units.
    fn floor_below(f: f32, norm: f32) -> Self::S;
    /// The arrays of this kind, if the index has this kind.
    fn arrays<'a>(v: &IndexView<'a>) -> Option<ImpactArrays<'a, Self::Imp>>;
    /// `acc[docs[i]] += w x imps[i]` for the postings of one block (distinct doc ids; ids at or
    /// beyond `acc.len()` are ignored). Kinds with a SIMD kernel override it
    /// ([`super::kernels`]).
    #[inline]
    fn accumulate(acc: &mut [Self::S], docs: &[u32], imps: &[Self::Imp], w: Self::W) {
        for (&d, &i) in docs.iter().zip(imps) {
            if let Some(a) = acc.get_mut(d as usize) {
                *a += Self::mul(w, i);
            }
        }
    }
    /// The u32 multiplier of query weight `w` for the u8 row kernel
    /// ([`super::kernels::score_row_u8`]), if this kind scores a stored row as the u32 sum of
    /// `w * quantize(x, scale)` (the u8 kind); `None` for the others (generic row scorer).
    #[inline]
    fn row_weight_u32(_w: Self::W) -> Option<u32> {
        None
    }
    /// A u32 sum of the row kernel as a score of this kind (called only for kinds whose
    /// [`Kind::row_weight_u32`] is `Some`).
    #[inline]
    fn score_from_u32(_s: u32) -> Self::S {
        debug_assert!(false, "score_from_u32 of a kind without a row kernel");
        Self::S::default()
    }
    /// `ub[i] += w x dense[i]` for every block `i`: one term's share of the block upper
    /// bounds. Kinds with a SIMD kernel override it.
    #[inline]
    fn add_bounds(ub: &mut [Self::S], dense: &[Self::Imp], w: Self::W) {
        for (u, &x) in ub.iter_mut().zip(dense) {
            *u += Self::mul(w, x);
        }
    }
    /// The exhaustive scorer's exact top-`k` of `plan` with 16-bit accumulators, when the kind
    /// has them and no document can score above `u16::MAX` (the sum over the plan's terms of
    /// weight x the term's largest impact); `None` otherwise, and the scorer uses
    /// [`Kind::acc`]. Half the bytes to add into and to drain: see [`super::exhaustive`].
    #[inline]
    fn exhaustive_narrow(
        _v: &IndexView<'_>,
        _arrays: &ImpactArrays<'_, Self::Imp>,
        _plan: &super::Plan<Self>,
        _k: usize,
        _scratch: &mut Scratch,
    ) -> Option<Vec<(u32, Self::S)>>
    where
        Self: Sized,
    {
        None
    }
    /// The exact top-`k` of approximate search's layered candidate stage (see
    /// [`super::approx::layer`]): `cut`, the plan of the terms of `plan` at positions `kept`
    /// as [`super::approx::candidate_plan`] makes it, each term read whole or from its high
    /// layer as `gamma` says ([`super::approx::layer::reads`]), and whether any was read from
    /// its layer. `None` for kinds without a high layer.
    #[allow(clippy::too_many_arguments)]
    fn layered_candidates(
        _v: &IndexView<'_>,
        _arrays: &ImpactArrays<'_, Self::Imp>,
        _plan: &super::Plan<Self>,
        _kept: &[usize],
        _cut: &super::Plan<Self>,
        _layer: &super::approx::layer::HighLayer,
        _gamma: f32,
        _k: usize,
        _scratch: &mut Scratch,
    ) -> Option<(Vec<(u32, Self::S)>, bool)>
    where
        Self: Sized,
    {
        None
    }
    /// True when [`Kind::exhaustive_narrow`] can score `plan` (no document can score above
    /// `u16::MAX`); `term_max` holds each term's largest impact.
    #[inline]
    fn narrow_fits(_plan: &super::Plan<Self>, _term_max: &[Self::Imp]) -> bool
    where
        Self: Sized,
    {
        false
    }
    /// Scale `plan`'s weights down (rounding; a term whose weight rounds to 0 is dropped) until
    /// no document can score above `u16::MAX`, for kinds with 16-bit accumulators
    /// ([`Kind::exhaustive_narrow`]); the norm follows. Unless the rounding would move a score
    /// by more than `max_error` units: the sum over the terms of |new weight - scaled weight| x
    /// the term's largest impact (a dropped term counts its scaled weight). Approximate search requantizes its cut query so (its candidates are a
    /// ranking to be reranked, and 16-bit accumulators halve the exhaustive scorer's memory
    /// traffic); other kinds, and plans that cannot fit, are left as they are.
    #[inline]
    fn narrow_weights(_plan: &mut super::Plan<Self>, _term_max: &[Self::Imp], _max_error: f64)
    where
        Self: Sized,
    {
    }
    /// Zero every accumulator, calling `take(doc, score)` in doc order for those above the
    /// threshold `thr`; `take` returns the new threshold. Kinds with a SIMD kernel override it.
    #[inline]
    fn drain_above(acc: &mut [Self::S], mut thr: Self::S, mut take: impl FnMut(u32, Self::S) -> Self::S) {
        for (d, a) in acc.iter_mut().enumerate() {
            let s = std::mem::take(a);
            if s > thr {
                thr = take(d as u32, s);
            }
        }
    }
}

/// The quantized query weights of integer kinds: `w_int = round(w * Q)` with
/// `Q = min(65535 / max_w, ((2^32 - 1) / 255 - n) / sum_w)`, so the largest weight keeps 16 bits
/// of precision and no score overflows a u32 (`sum w_int * 255 < 2^32`). Returns the weights
/// and `Q`.
pub fn quantize_query(ws: &[f32]) -> (Vec<u32>, f64) {
    let max = ws.iter().copied().fold(0.0f64, |a, b| a.max(b as f64));
    let sum: f64 = ws.iter().map(|&w| w as f64).sum();
    if max <= 0.0 {
        return (vec![0; ws.len()], 1.0);
    }
    let budget = (u32::MAX as f64 / 255.0).floor() - ws.len() as f64;
    let q = (65535.0 / max).min(budget / sum);
    (ws.iter().map(|&w| (w as f64 * q).round() as u32).collect(), q)
}

/// [`quantize_query`] for a kind whose norm (the factor from integer scores to weight units) is
/// `Q x unit`: `Q` is capped at `f32::MAX / 4 / unit`, so that the norm stays a finite f32.
/// Without the cap, query weights below about `65535 x unit / f32::MAX` (1.6e-32 for a u8 grid
/// of scale 85) made the norm infinite and every score read 0: exact search of a u8 index
/// returned nothing (newcomer11 M3). Under the cap the largest weight keeps fewer than 16 bits
/// (at scale 85 the cap is about 1e36: a weight of 1e-32 becomes 10^4, one of 1e-36 becomes 1);
/// one rounding to 0 is a zero-weight query term, which the exact float rerank still scores
/// from the rows ([`super::rerank`]).
pub fn quantize_query_for(ws: &[f32], unit: f64) -> (Vec<u32>, f64) {
    let (w, q) = quantize_query(ws);
    let cap = f32::MAX as f64 / 4.0 / unit;
    if q <= cap || !(unit > 0.0) {
        return (w, q);
    }
    (ws.iter().map(|&x| (x as f64 * cap).round() as u32).collect(), cap)
}

/// `floor_below` of integer kinds.
pub fn u32_floor_below(f: f32, norm: f32) -> u32 {
    let to_f32 = |s: u32| (s as f64 / norm as f64) as f32;
    if !(f > 0.0) || !(norm > 0.0) {
        return 0;
    }
    let mut s = ((f as f64) * (norm as f64)).floor().clamp(0.0, u32::MAX as f64) as u32;
    while s > 0 && to_f32(s) >= f {
        s -= 1;
    }
    while s < u32::MAX && to_f32(s + 1) < f {
        s += 1;
    }
    s
}

/// `floor_below` of float kinds: the next f32 below `f`.
pub fn f32_floor_below(f: f32) -> f32 {
    if !(f > 0.0) || !f.is_finite() {
        return 0.0;
    }
    f32::from_bits(f.to_bits() - 1)
}

/// Quantized kind: u8 impacts, u32 query weights, u32 scores (never overflow, see
/// [`quantize_query`]).
pub enum U8Kind {}
impl Kind for U8Kind {
    type Imp = u8;
    type S = u32;
    type W = u32;
    const ORDERED_SUM: bool = false;
    const FLOAT_RERANK: bool = true;
    fn weights(ws: &[f32], ctx: &WeightCtx) -> (Vec<u32>, f32) {
        let (w, q) = quantize_query_for(ws, ctx.scale as f64);
        (w, (q * ctx.scale as f64) as f32)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<u32> {
        &mut s.acc_u32
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<u32>, &mut Vec<u32>) {
        (&mut s.ub_u32, &mut s.small_u32)
    }
    #[inline(always)]
    fn impact_of(x: f32, _dl: u32, scale: f32) -> u8 {
        crate::index::build::quantize(x, scale)
    }
    fn doc_weight(i: u8, ctx: &WeightCtx) -> f32 {
        i as f32 / ctx.scale
    }
    fn scored_query_weight(w: u32, norm: f32, ctx: &WeightCtx) -> Option<f32> {
        // contribution w x i / norm = (w x scale / norm) x (i / scale)
        Some((w as f64 * ctx.scale as f64 / norm as f64) as f32)
    }
    fn w_is_zero(w: u32) -> bool {
        w == 0
    }
    #[inline(always)]
    fn mul(w: u32, i: u8) -> u32 {
        w * i as u32
    }
    #[inline(always)]
    fn prune(bound: u32, thr: u32, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn below(bound: u32, thr: u32, _slack: f32) -> bool {
        bound <= thr
    }
    #[inline(always)]
    fn to_f32(s: u32, norm: f32) -> f32 {
        (s as f64 / norm as f64) as f32
    }
    fn floor_below(f: f32, norm: f32) -> u32 {
        u32_floor_below(f, norm)
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<ImpactArrays<'a, u8>> {
        match v.impacts {
            Impacts::U8(a) => Some(a),
            _ => None,
        }
    }
    #[inline]
    fn accumulate(acc: &mut [u32], docs: &[u32], imps: &[u8], w: u32) {
        super::kernels::accumulate_u32(super::kernels::isa(), acc, docs, imps, w)
    }
    #[inline]
    fn row_weight_u32(w: u32) -> Option<u32> {
        Some(w)
    }
    #[inline]
    fn score_from_u32(s: u32) -> u32 {
        s
    }
    #[inline]
    fn add_bounds(ub: &mut [u32], dense: &[u8], w: u32) {
        super::kernels::add_scaled_u32(super::kernels::isa(), ub, dense, w)
    }
    #[inline]
    fn drain_above(acc: &mut [u32], thr: u32, take: impl FnMut(u32, u32) -> u32) {
        super::kernels::drain_above_u32(super::kernels::isa(), acc, thr, take)
    }
    fn exhaustive_narrow(
        v: &IndexView<'_>,
        arrays: &ImpactArrays<'_, u8>,
        plan: &super::Plan<Self>,
        k: usize,
        scratch: &mut Scratch,
    ) -> Option<Vec<(u32, u32)>> {
        Self::narrow_fits(plan, arrays.term_max).then(|| super::exhaustive::search_u16(v, arrays, plan, k, scratch))
    }
    fn narrow_fits(plan: &super::Plan<Self>, term_max: &[u8]) -> bool {
        u16_bound(plan, term_max) <= u16::MAX as u64
    }
    fn layered_candidates(
        v: &IndexView<'_>,
        arrays: &ImpactArrays<'_, u8>,
        plan: &super::Plan<Self>,
        kept: &[usize],
        cut: &super::Plan<Self>,
        layer: &super::approx::layer::HighLayer,
        gamma: f32,
        k: usize,
        scratch: &mut Scratch,
    ) -> Option<(Vec<(u32, u32)>, bool)> {
        use super::approx::layer::{reads, Read, ReadCursor};
        let how = reads(v, plan, arrays, layer, kept, gamma);
        // Requantizing may drop terms (weights rounding to 0) but keeps the others in order
        // (ascending term ids, as `kept`): each survivor's read, by a walk along both.
        let mut j = 0;
        let reads_of_cut: Vec<Read> = cut
            .terms
            .iter()
            .map(|pt| {
                while j < kept.len() && plan.terms[kept[j]].term != pt.term {
                    j += 1;
                }
                how.get(j).copied().unwrap_or(Read::Whole)
            })
            .collect();
        let layered = reads_of_cut.contains(&Read::High);
        for (pt, &r) in cut.terms.iter().zip(&reads_of_cut) {
            super::approx::layer::prefetch_read(v, arrays, layer, pt.term, r);
        }
        let mut cursors: Vec<ReadCursor> =
            cut.terms.iter().zip(&reads_of_cut).map(|(pt, &r)| ReadCursor::new(v, layer, pt.term, r)).collect();
        if Self::narrow_fits(cut, arrays.term_max) {
            let top = super::exhaustive::search_u16_with(v, cut, k, scratch, |acc, hi| {
                for (pt, c) in cut.terms.iter().zip(&mut cursors) {
                    // Fits: w x (any impact of the term) <= the plan's bound <= u16::MAX.
                    let w = pt.w as u16;
                    c.until(v, arrays, hi, |d, i| super::kernels::accumulate_u16(acc, d, i, w));
                }
            });
            return Some((top, layered));
        }
        let top = super::exhaustive::search_with(v, cut, k, scratch, |acc, hi| {
            for (pt, c) in cut.terms.iter().zip(&mut cursors) {
                let w = pt.w;
                c.until(v, arrays, hi, |d, i| Self::accumulate(acc, d, i, w));
            }
        });
        Some((top, layered))
    }
    fn narrow_weights(plan: &mut super::Plan<Self>, term_max: &[u8], max_error: f64) {
        let bound = u16_bound(plan, term_max);
        if bound <= u16::MAX as u64 {
            return;
        }
        let tm = |t: u32| term_max.get(t as usize).copied().unwrap_or(u8::MAX) as u64;
        let mut s = u16::MAX as f64 / bound as f64;
        // Rounding can carry the sum past the limit: shrink until it fits (a step or two). A
        // weight that rounds to 0 drops its term: what the term adds is then below half a unit
        // per impact, the error rounding makes in every other term (raising it to 1 would
        // double that). When every weight would round to 0 (hundreds of terms of equal
        // weight), the plan stays as it is, and is scored in 32 bits.
        for _ in 0..64 {
            let ws: Vec<u32> = plan.terms.iter().map(|pt| (pt.w as f64 * s).round() as u32).collect();
            let b: u64 = plan.terms.iter().zip(&ws).map(|(pt, &w)| w as u64 * tm(pt.term)).sum();
            if b <= u16::MAX as u64 {
                let error: f64 = plan
                    .terms
                    .iter()
                    .zip(&ws)
                    .map(|(pt, &w)| (w as f64 - pt.w as f64 * s).abs() * tm(pt.term) as f64)
                    .sum();
                if ws.iter().all(|&w| w == 0) || error > max_error {
                    return;
                }
                // Canonical positions stay `0..len` in term order, as in every plan.
                let kept = plan.terms.iter().zip(ws).filter(|&(_, w)| w > 0);
                plan.terms = kept.enumerate().map(|(qi, (pt, w))| super::plan::PlanTerm { w, qi, ..*pt }).collect();
                plan.norm = (plan.norm as f64 * s) as f32;
                plan.floor = 0;
                return;
            }
            s *= 0.97;
        }
    }
}

/// The largest score a document can reach under `plan`: the sum over its terms of weight x
/// the term's largest impact (a term without a stored maximum counts at 255).
fn u16_bound(plan: &super::Plan<U8Kind>, term_max: &[u8]) -> u64 {
    plan.terms.iter().map(|pt| pt.w as u64 * term_max.get(pt.term as usize).copied().unwrap_or(u8::MAX) as u64).sum()
}

/// Float kind: f32 impacts, weights and scores.
pub enum F32Kind {}
impl Kind for F32Kind {
    type Imp = f32;
    type S = f32;
    type W = f32;
    const ORDERED_SUM: bool = true;
    fn weights(ws: &[f32], _ctx: &WeightCtx) -> (Vec<f32>, f32) {
        (ws.to_vec(), 1.0)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<f32> {
        &mut s.acc_f32
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut s.ub_f32, &mut s.small_f32)
    }
    #[inline(always)]
    fn impact_of(x: f32, _dl: u32, _scale: f32) -> f32 {
        x
    }
    fn doc_weight(i: f32, _ctx: &WeightCtx) -> f32 {
        i
    }
    fn w_is_zero(w: f32) -> bool {
        w == 0.0
    }
    #[inline(always)]
    fn mul(w: f32, i: f32) -> f32 {
        w * i
    }
    #[inline(always)]
    fn prune(bound: f32, thr: f32, slack: f32) -> bool {
        bound * (1.0 + slack) < thr
    }
    #[inline(always)]
    fn below(bound: f32, thr: f32, slack: f32) -> bool {
        bound * (1.0 + slack) < thr
    }
    #[inline(always)]
    fn to_f32(s: f32, _norm: f32) -> f32 {
        s
    }
    fn floor_below(f: f32, _norm: f32) -> f32 {
        f32_floor_below(f)
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<ImpactArrays<'a, f32>> {
        match v.impacts {
            Impacts::F32(a) => Some(a),
            _ => None,
        }
    }
}

/// Per-thread reusable buffers.
#[derive(Default)]
pub struct Scratch {
    /// Integer accumulators of the term-at-a-time oracle.
    pub acc_u32: Vec<u32>,
    /// 16-bit accumulators of the exhaustive scorer of light u8 plans
    /// ([`Kind::exhaustive_narrow`]).
    pub acc_u16: Vec<u16>,
    /// Chunks kept by the first pass of the 16-bit drain ([`super::kernels::drain_top_u16`]).
    pub drain_kept: Vec<u64>,
    /// Set while a search uses this scratch space ([`super::with_scratch`]): found set, a search
    /// panicked midway and the buffers may be dirty.
    pub in_use: bool,
    /// Float accumulators.
    pub acc_f32: Vec<f32>,
    /// Doc-block upper bounds (integer kinds).
    pub ub_u32: Vec<u32>,
    /// Doc-block upper bounds (float kinds).
    pub ub_f32: Vec<f32>,
    /// Compact accumulators of selected doc blocks (integer kinds).
    pub small_u32: Vec<u32>,
    /// Compact accumulators of selected doc blocks (float kinds).
    pub small_f32: Vec<f32>,
    /// Fixed-point accumulators (float BM25, [`super::fixed`]).
    pub acc_fixed: Vec<super::fixed::Fixed>,
    /// Doc-block upper bounds (fixed point).
    pub ub_fixed: Vec<super::fixed::Fixed>,
    /// Compact accumulators of selected doc blocks (fixed point).
    pub small_fixed: Vec<super::fixed::Fixed>,
    /// Position in the plan by local term id (`u32::MAX` for terms not in the query), all
    /// `u32::MAX` between queries.
    pub table: Vec<u32>,
    /// The query's u32 weight by local term id (0 for terms not in the query), all 0 between
    /// queries: the table of the u8 row kernel ([`super::rows`]).
    pub weights_u32: Vec<u32>,
    /// The query's float weight by local term id (0 for terms not in the query), all 0
    /// between queries: the table of the float rerank of approximate search
    /// ([`super::rows::FloatRowScorer`]).
    pub weights_f32: Vec<f32>,
    /// Set by a caller that wants the ranks among all documents of the candidates of its next
    /// filtered 16-bit exhaustive ranking ([`super::exhaustive::search_u16_with`], approximate
    /// search's candidate stage); that ranking clears it and leaves them in `cand_ranks`.
    pub rank_request: bool,
    /// The ranks (from 1) among all documents of the hits of the ranking that took
    /// `rank_request`, hit by hit.
    pub cand_ranks: Option<Vec<u32>>,
}

/// This kind's accumulators for `n` documents, all zero. Every algorithm that uses them
/// leaves them all zero when it returns, and the buffer only grows (a search over segments of
/// different sizes reuses the largest one's buffer), so nothing is cleared between queries
/// or segments.
pub(crate) fn zeroed_acc<K: Kind>(scratch: &mut Scratch, n: usize) -> &mut [K::S] {
    let acc = K::acc(scratch);
    if acc.len() < n {
        acc.resize(n, K::S::default());
    }
    debug_assert!(acc.iter().all(|a| *a == K::S::default()), "accumulators were left dirty");
    &mut acc[..n]
}
