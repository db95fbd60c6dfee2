//! Query preparation, in two steps: validation once per search ([`Query`]), then, per segment,
//! the mapping of its terms to the segment's local ids and its weights to the segment's
//! arithmetic ([`Plan`]).
//!
//! A query is validated like a document row (the vector contract of [`crate::vectors`]): once,
//! whatever the number of segments searched. Terms with a zero weight are dropped; the others
//! are kept in ascending term-id order, the canonical summation order of float vector scores
//! (local ids keep that order; float BM25 sums exactly, in any order, see [`super::fixed`]). In a segment, terms without postings are dropped.
//!
//! Integer kinds quantize the query weights over the whole query, before terms without
//! postings are dropped (see [`super::kind::quantize_query`]), so a query gets the same
//! integer weights in every segment that shares the scale: scores stay comparable, and equal
//! to a single merged index's. Reported scores are `int_score / norm`.

use super::bm25::Bm25Stats;
use super::kind::{Bm25Ctx, WeightCtx};
use super::{DocSet, Kind};
use crate::index::IndexView;
use crate::vectors::clean_row;
use crate::{Error, Result};

/// A query vector: term ids and weights (any order, unique ids).
#[derive(Clone, Copy, Debug)]
pub struct QueryRef<'a> {
    /// Term ids.
    pub terms: &'a [u32],
    /// Weights (finite, >= 0).
    pub weights: &'a [f32],
}

/// A validated query: external term ids strictly ascending, weights > 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    terms: Vec<u32>,
    weights: Vec<f32>,
}

impl Query {
    /// Validate `q` (term ids below `vocab` when given, unique; weights finite and >= 0) and
    /// drop zero weights. `qi` is the query's position in a batch, for errors.
    pub fn new(q: QueryRef<'_>, vocab: Option<u32>, qi: Option<usize>) -> Result<Query> {
        let mut row = Vec::with_capacity(q.terms.len());
        clean_row(q.terms, q.weights, vocab, &mut row).map_err(|msg| Error::InvalidQuery { query: qi, msg })?;
        Ok(Query { terms: row.iter().map(|e| e.0).collect(), weights: row.iter().map(|e| e.1).collect() })
    }

    /// The query of a BM25 search: each weight (the query term frequency) times the term's
    /// idf under `stats`; terms no document holds are dropped. Errors if `stats` does not cover
    /// a term.
    pub fn bm25(&self, stats: &Bm25Stats, qi: Option<usize>) -> Result<Query> {
        let mut out = Query::default();
        for (&t, &qtf) in self.terms.iter().zip(&self.weights) {
            let df = stats.df_of(t).ok_or_else(|| Error::InvalidQuery {
                query: qi,
                msg: format!("the BM25 statistics given have no document frequency for term {t}"),
            })?;
            if df > 0 {
                out.terms.push(t);
                out.weights.push((stats.idf(df) * qtf as f64) as f32);
            }
        }
        Ok(out)
    }

    /// Term ids, ascending.
    pub fn terms(&self) -> &[u32] {
        &self.terms
    }

    /// Weights (> 0), aligned with the terms.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The weight of `term`, if the query has it.
    pub fn weight_of(&self, term: u32) -> Option<f32> {
        self.terms.binary_search(&term).ok().map(|i| self.weights[i])
    }
}

/// One query term ready for traversal.
#[derive(Clone, Copy, Debug)]
pub struct PlanTerm<W> {
    /// Local term id in the segment.
    pub term: u32,
    /// Weight in the segment's arithmetic.
    pub w: W,
    /// Position in canonical (ascending term id) order.
    pub qi: usize,
}

/// A query prepared for one segment.
#[derive(Debug)]
pub struct Plan<K: Kind> {
    /// Terms with postings and a non-zero weight, ascending by term id.
    pub terms: Vec<PlanTerm<K::W>>,
    /// Divisor that turns an accumulated score into weight units.
    pub norm: f32,
    /// Relative slack of float pruning comparisons (0 for exact sums: integers, fixed point).
    pub slack: f32,
    /// What the weights were derived with (the segment's scale, BM25 parameters).
    pub ctx: WeightCtx,
    /// Only these documents may be returned (all when `None`).
    pub allowed: Option<DocSet>,
    /// Only documents scoring above this may be returned (zero, or the k-th score found so
    /// far in other segments of the same search, see [`super::search_segments`]).
    pub floor: K::S,
    /// Tie key of each internal doc (the rank of its id in the segment,
    /// [`crate::index::Index::tie_rank`]); `None`: the doc id itself.
    pub ties: Option<std::sync::Arc<[u32]>>,
}

// Not derived: a derive would ask `K` (a marker type) to be `Clone` too.
impl<K: Kind> Clone for Plan<K> {
    fn clone(&self) -> Self {
        Plan {
            terms: self.terms.clone(),
            norm: self.norm,
            slack: self.slack,
            ctx: self.ctx,
            allowed: self.allowed.clone(),
            floor: self.floor,
            ties: self.ties.clone(),
        }
    }
}

impl<K: Kind> Plan<K> {
    /// The postings of this plan's terms in segment `v` (what the exhaustive scorer reads).
    pub fn postings(&self, v: &IndexView<'_>) -> u64 {
        self.terms.iter().map(|pt| v.df(pt.term)).sum()
    }

    /// Prepare the validated query `q` for segment `v`. `avgdl`: the average document length
    /// of the collection, for BM25 segments (the segment's own when `None`).
    pub fn new(v: &IndexView<'_>, q: &Query, avgdl: Option<f64>) -> Plan<K> {
        let bm25 = v.bm25.map(|m| Bm25Ctx {
            k1: m.params.k1,
            b: m.params.b,
            avgdl: avgdl.unwrap_or(if v.n_docs > 0 && m.total_len > 0 {
                m.total_len as f64 / v.n_docs as f64
            } else {
                1.0
            }),
        });
        let ctx = WeightCtx { scale: v.scale, bm25 };
        let (wq, norm) = K::weights(&q.weights, &ctx);
        let mut terms: Vec<PlanTerm<K::W>> = q
            .terms
            .iter()
            .zip(wq)
            .filter(|(_, w)| !K::w_is_zero(*w))
            .filter_map(|(&t, w)| Some(PlanTerm { term: v.local_term(t)?, w, qi: 0 }))
            .collect();
        for (i, pt) in terms.iter_mut().enumerate() {
            pt.qi = i;
        }
        let slack = if K::ORDERED_SUM { (terms.len() as f32 + 2.0) * 2.0f32.powi(-22) } else { 0.0 };
        Plan { terms, norm, slack, ctx, allowed: None, floor: K::S::default(), ties: None }
    }
}
