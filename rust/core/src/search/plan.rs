//! Query validation and preparation.
//!
//! A query is validated like a document row (DESIGN.md vector contract). Terms with a zero
//! weight or no postings are dropped. The remaining terms are kept in ascending term-id order:
//! that is the canonical summation order of float scores.
//!
//! Quantized indexes also quantize the query: `w_int = round(w * Q)` with
//! `Q = min(65535 / max_w, (2^32 - 1) / 255 - n) / sum_w)`, so the largest query weight keeps
//! 16 bits of precision and no document score can overflow a u32 accumulator
//! (`sum_t w_int_t * 255 < 2^32`). Reported scores are `int_score / (Q * index_scale)`.

use super::{DocSet, Kind};
use crate::index::build::clean_row;
use crate::index::IndexView;
use crate::{Error, Result};

/// A query vector: term ids and weights (any order, unique ids).
#[derive(Clone, Copy, Debug)]
pub struct QueryRef<'a> {
    /// Term ids.
    pub terms: &'a [u32],
    /// Weights (finite, >= 0).
    pub weights: &'a [f32],
}

/// One query term ready for traversal.
#[derive(Clone, Copy, Debug)]
pub struct PlanTerm<W> {
    /// Local term id in the segment.
    pub term: u32,
    /// Weight in the index's arithmetic.
    pub w: W,
    /// Position in canonical (ascending term id) order.
    pub qi: usize,
}

/// A prepared query.
#[derive(Clone, Debug)]
pub struct Plan<K: Kind> {
    /// Terms with postings and a non-zero weight, ascending by term id.
    pub terms: Vec<PlanTerm<K::W>>,
    /// Divisor that turns an accumulated score into weight units.
    pub norm: f32,
    /// Relative slack of float pruning comparisons (0 for integer scores).
    pub slack: f32,
    /// Only these documents may be returned (all when `None`).
    pub allowed: Option<DocSet>,
    /// Only documents scoring above this may be returned (zero, or the k-th score found so
    /// far in other segments of the same search, see [`super::search_segments`]).
    pub floor: K::S,
}

impl<K: Kind> Plan<K> {
    /// Validate and prepare `q` for `v`. `qi` is the query's position in a batch, for errors.
    pub fn new(v: &IndexView<'_>, q: QueryRef<'_>, qi: Option<usize>) -> Result<Plan<K>> {
        let mut row = Vec::with_capacity(q.terms.len());
        clean_row(q.terms, q.weights, v.vocab, &mut row).map_err(|msg| Error::InvalidQuery { query: qi, msg })?;
        // Weights are converted over the whole query, before terms without postings are
        // dropped, so a query gets the same integer weights in every index (segment) that
        // shares the scale: scores stay comparable, and equal to a single merged index's.
        let ws: Vec<f32> = row.iter().map(|e| e.1).collect();
        let (wq, norm) = K::weights(&ws, v.scale);
        // Terms without postings, or whose (quantized) weight is zero, are dropped; the others
        // are mapped to local ids (ascending like the external ones).
        let mut terms: Vec<PlanTerm<K::W>> = row
            .iter()
            .zip(wq)
            .filter(|(_, w)| !K::w_is_zero(*w))
            .filter_map(|(&(t, _), w)| Some(PlanTerm { term: v.local_term(t)?, w, qi: 0 }))
            .collect();
        for (i, pt) in terms.iter_mut().enumerate() {
            pt.qi = i;
        }
        let slack = if K::FLOAT { (terms.len() as f32 + 2.0) * 2.0f32.powi(-22) } else { 0.0 };
        Ok(Plan { terms, norm, slack, allowed: None, floor: K::S::default() })
    }
}
