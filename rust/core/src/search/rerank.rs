//! Exact **float** top-k of a quantized (u8) segment that stores its vectors: the u8 traversal
//! finds candidates, the stored float rows rank them, and a bound on the quantization error
//! proves that no document left out could have entered.
//!
//! A u8 segment scores `u(d) = sum_t w'_t x'_t` with `x'_t = q(x_t) / scale` (the impact,
//! [`crate::index::build::quantize`]) and `w'_t = round(w_t Q) / Q` (the integer query weight,
//! [`super::kind::quantize_query`]). The float score is `f(d) = sum_t w_t x_t` over the same
//! shared terms. Per shared term, `w x - w' x' = w (x - x') + x' (w - w')`, with
//! `x - x' <= 0.5 / scale` (weights are at most `255.5 / scale`; a weight below `0.5 / scale`
//! is stored as impact 1, *above* it) and `|w - w'| <= 0.5 / Q`, `x' <= term_max / scale`. So
//! for every document
//!
//! ```text
//! f(d) <= u(d) + B,   B = sum over the query's terms in the segment of
//!                         0.5 w_t / scale + 0.5 term_max_t / (Q scale)
//! ```
//!
//! (the terms a document does not share contribute nothing to either side, so summing over
//! all of the query's terms only loosens it). A document whose u8 score is 0 shares only
//! query terms whose integer weight is 0 (`w_t < 0.5 / Q`): its float score is at most
//! `B0 = sum over those terms of w_t (term_max_t + 1) / scale` (zero for almost every query).
//! Float rounding of both sums (f32 products added in ascending term order; the u8 score's
//! conversion to weight units; the quantizer's own f32 product `x * scale`, whose rounding
//! moves `x - x'` by at most `2^-24 x`) is covered by a relative slack `(n + 8) 2^-21`, `n`
//! the number of query terms, plus an absolute `(n + 1) 2^-149` for products that fall below
//! f32's normal range (subnormal results, where rounding is absolute, not relative).
//!
//! **The rule.** Run the segment's exact u8 traversal for the top `k'` (the algorithm asked
//! for; every one returns the u8 oracle's top-`k'`), rerank the candidates best u8 score first
//! by their float rows into a float top-k collector, and stop at the first candidate whose
//! bound `(u + B)(1 + slack)` cannot beat the collector's threshold: neither it nor any
//! document after it (all score at most `u` in u8) can enter. If the traversal's `k'`-th u8
//! score can still beat it, `k'` was too small: search once more for *every* document above
//! the u8 floor lowered from the float threshold found (`T / (1 + slack) - B`, which every
//! document that can still enter reaches) and rerank those the same way. That second
//! traversal prunes with the floor alone, as tightly as the last of a series of widenings
//! would (until stop 20 it widened `k'` x 4 per traversal, one traversal per step: about ten
//! at 1M documents in the worst case). `auto` runs it with its race's current leader, untimed
//! and not counted as a query; every other algorithm runs it itself (block-max TAAT MaxScore,
//! asked for every document, hands it to the exhaustive scorer, [`super::bmt`]). Only when
//! query terms quantized to weight 0 keep the bound from excluding the rest is every allowed
//! document scored from its row. The result is exactly
//! the top-k of the float scores (ties by id ascending), the scores of a float index over the
//! same vectors, bit for bit, whatever the algorithm.
//!
//! A floor carried from other segments (in float units) becomes the lowered u8 floor
//! `f / (1 + 2 slack) - B` of the traversal and the float collector's floor.

use super::kind::F32Kind;
use super::plan::{Plan, Query};
use super::rows::{prefetch_ahead, FloatRowScorer};
use super::topk::TopK;
use super::{exact_raw, Algorithm, Kind, Scratch};
use crate::index::{Forward, ImpactArrays, IndexView};

/// Candidates of the first traversal: `k + max(ceil(k / 2), FIRST_EXTRA)`. Measured on debian
/// (real splade-tiny vectors, 200 queries, k = 10): the documents whose u8 score can reach
/// the float top-10 are 11 at the median, 14 at p95, 20 at most, so 20 candidates settle all
/// but the few queries at that maximum in one traversal (15 settled 97.5%). Per-query time
/// ratios against `scores="impacts"` (`benches/rerank_cost.py`, paired, medians of several
/// runs in benches/results/rerank-first-extra-stop21.md): on synthetic 1M 15 candidates cost
/// 1.10x at the median and 1.85x at p90 (a second traversal), 20 cost 1.10-1.12x and
/// 1.30x, 25 cost 1.15x and 1.39x; on debian 20 cost about 6% more than 15 at the median
/// (1.19-1.23x against 1.10-1.16x) at the same p90. More candidates lower every pruning
/// algorithm's threshold for all queries to spare a second traversal for the few.
pub(crate) const FIRST_EXTRA: usize = 10;

/// The number of candidates of the first traversal for `k` hits.
pub(crate) fn first_candidates(k: usize) -> usize {
    k.saturating_add(k.div_ceil(2).max(FIRST_EXTRA))
}

/// The error bounds of one query in one u8 segment (weight units, see the module doc).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// `B`: float score minus u8 score, at most.
    pub(crate) up: f64,
    /// `B0`: the float score of a document whose u8 score is 0, at most.
    pub(crate) zero: f64,
    /// Relative slack covering float rounding.
    pub(crate) slack: f64,
    /// Absolute slack covering subnormal f32 products.
    pub(crate) tiny: f64,
}

impl Bounds {
    /// The bounds of `query` (float weights) prepared as `plan` in segment `v`.
    pub(crate) fn new<K: Kind>(
        v: &IndexView<'_>,
        arrays: &ImpactArrays<'_, K::Imp>,
        plan: &Plan<K>,
        query: &Query,
    ) -> Self {
        let scale = v.scale as f64;
        let norm = plan.norm as f64;
        let (mut up, mut zero, mut n) = (0.0f64, 0.0f64, 0usize);
        for (&t, &w) in query.terms().iter().zip(query.weights()) {
            let Some(l) = v.local_term(t) else { continue };
            // The largest dequantized weight of the term: term_max / scale.
            let x_max = K::doc_weight(arrays.term_max[l as usize], &plan.ctx) as f64;
            let w = w as f64;
            n += 1;
            up += 0.5 * w / scale + if norm > 0.0 { 0.5 * x_max * scale / norm } else { 0.0 };
            if plan.terms.binary_search_by_key(&l, |pt| pt.term).is_err() {
                zero += w * (x_max + 1.0 / scale);
            }
        }
        Bounds { up, zero, slack: (n as f64 + 8.0) * 2f64.powi(-21), tiny: (n as f64 + 1.0) * 2f64.powi(-149) }
    }

    /// The largest float score of a document whose u8 score is at most `u` (weight units).
    #[inline]
    pub(crate) fn max_float(&self, u: f64) -> f64 {
        if u <= 0.0 {
            // no zero-weight query term: such a document shares no query term, it scores 0
            if self.zero > 0.0 {
                self.zero.min(self.up) * (1.0 + self.slack) + self.tiny
            } else {
                0.0
            }
        } else {
            (u + self.up) * (1.0 + self.slack) + self.tiny
        }
    }

    /// The u8 score (weight units) every document whose float score exceeds `f` reaches.
    #[inline]
    pub(crate) fn min_u8(&self, f: f64) -> f64 {
        (f - self.tiny) / (1.0 + 2.0 * self.slack) - self.up
    }
}

/// Exact float top-`k` (see the module doc) of `plan` in segment `v` with stored rows `fwd`,
/// the candidates found by `algo`; `query` holds the float weights, `floor` (weight units)
/// the score a hit must reach (from other segments). Scores are the float dot products.
#[allow(clippy::too_many_arguments)]
pub(crate) fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    fwd: Forward<'_>,
    mut plan: Plan<K>,
    query: &Query,
    k: usize,
    algo: Algorithm,
    race: Option<&super::auto::Race>,
    floor: Option<f32>,
    scratch: &mut Scratch,
) -> Vec<(u32, f32)> {
    let b = Bounds::new::<K>(v, arrays, &plan, query);
    let n = v.n_docs as usize;
    let ffloor = floor.map_or(0.0, |f| F32Kind::floor_below(f, 1.0));
    let lowered = |f: f64, norm: f32| {
        let g = b.min_u8(f);
        if g > 0.0 {
            K::floor_below(g as f32, norm)
        } else {
            K::S::default()
        }
    };
    plan.floor = match floor {
        Some(f) => lowered(f as f64, plan.norm),
        None => K::S::default(),
    };
    let mut kk = first_candidates(k).min(n.max(1));
    let mut wide = false;
    loop {
        let cands = if !wide {
            exact_raw::<K>(v, arrays, &plan, kk, algo, race, scratch)
        } else if matches!(algo, Algorithm::Auto) {
            // The same query again: not a query of the race.
            super::auto::run_untimed::<K>(v, arrays, &plan, kk, race, scratch)
        } else {
            exact_raw::<K>(v, arrays, &plan, kk, algo, None, scratch)
        };
        let rows = FloatRowScorer::new(v, fwd, query, scratch);
        let mut top = TopK::<f32>::with_allowed(k, plan.allowed.as_ref(), ffloor).with_ties(plan.ties.as_ref());
        let mut done = false;
        for (i, &(d, s)) in cands.iter().enumerate() {
            if b.max_float(K::to_f32(s, plan.norm) as f64) <= top.threshold() as f64 {
                done = true; // this candidate and every document after it score too little
                break;
            }
            prefetch_ahead(&cands, i, |x| rows.prefetch(x), |x| rows.prefetch_start(x));
            top.push(d, rows.score(d as usize));
        }
        if !done {
            // The documents that were no candidate score at most the last candidate (a full
            // top-k'), or at most the floor.
            let rest = if cands.len() >= kk { cands.last().map_or(K::S::default(), |c| c.1) } else { plan.floor };
            done = cands.len() >= n || b.max_float(K::to_f32(rest, plan.norm) as f64) <= top.threshold() as f64;
        }
        if !done && (kk >= n || cands.len() < kk) {
            // Every document above the floor was a candidate (fewer than k' came back: a wider
            // search would return the same ones), yet the bound cannot exclude the rest (query
            // terms quantized to weight 0): score every allowed document.
            top = TopK::<f32>::with_allowed(k, plan.allowed.as_ref(), ffloor).with_ties(plan.ties.as_ref());
            for d in 0..n as u32 {
                if plan.allowed.as_ref().is_some_and(|a| !a.contains(d)) {
                    continue;
                }
                top.push(d, rows.score(d as usize));
            }
            done = true;
        }
        rows.finish(scratch);
        if done {
            return top.into_sorted();
        }
        let t = top.threshold() as f64;
        if t > 0.0 {
            let f = lowered(t, plan.norm);
            if f > plan.floor {
                plan.floor = f;
            }
        }
        // Every document above the lowered floor: k' = n keeps the traversal's threshold at
        // the floor (its collector grows with what it holds, see TopK).
        kk = n;
        wide = true;
    }
}

#[cfg(test)]
mod tests {
    use crate::index::build::{build, BuildOptions, Quantization, Reorder};
    use crate::index::ids::IdsInput;
    use crate::search::{search, Algorithm, QueryRef};
    use crate::vectors::CsrRef;

    /// Weights within 4% of each other (11 impacts, documents far apart in float score
    /// sharing one): the first candidates cannot prove the top-k, so every query needs the
    /// second traversal (for every document above the lowered floor). It returns the float
    /// top-k, and auto's race counts each query once: the second traversal is the leader's,
    /// untimed (until stop 20 each widening counted as a query of its own and was timed like
    /// one).
    #[test]
    fn the_second_traversal_is_not_a_query_of_the_race() {
        let n = 40_000usize; // above auto's small-index limit: the race runs
        let indptr: Vec<u64> = (0..=n as u64).collect();
        let indices = vec![0u32; n];
        let values: Vec<f32> = (0..n).map(|i| 1.0 + ((i * 7919) % n) as f32 * 1e-6).collect();
        let csr = CsrRef { indptr: &indptr, indices: &indices, values: &values };
        let opts = BuildOptions {
            n_terms: None,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::None,
        };
        let ix = build(csr, IdsInput::None, &opts).unwrap().index;
        let mut best: Vec<u32> = (0..n as u32).collect();
        best.sort_by(|&a, &b| values[b as usize].total_cmp(&values[a as usize]).then(a.cmp(&b)));
        let queries = 12u64;
        for _ in 0..queries {
            let hits = search(&ix, QueryRef { terms: &[0], weights: &[1.0] }, 3, Algorithm::Auto).unwrap();
            assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), best[..3].to_vec());
            assert_eq!(hits[0].score, values[best[0] as usize]);
        }
        let seen: u64 = ix.auto_race().standings().iter().map(|s| s.0).sum();
        assert_eq!(seen, queries, "one query of the race per search");
    }
}
