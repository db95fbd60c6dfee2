//! Pieces shared by the document-at-a-time algorithms.

use super::plan::Plan;
use super::Kind;
use crate::index::{ImpactArrays, IndexView};
use crate::postings::Cursor;

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
pub fn open_cursors<'a, K: Kind>(v: &IndexView<'a>, arrays: &ImpactArrays<'a, K::Imp>, plan: &Plan<K>) -> Vec<TermCursor<'a, K>> {
    plan.terms
        .iter()
        .map(|pt| {
            let cur = Cursor::new(v, arrays, pt.term);
            let ub = K::mul(pt.w, cur.term_max());
            TermCursor { cur, w: pt.w, ub, qi: pt.qi }
        })
        .collect()
}

/// Sums a document's contributions. Integer kinds add as they go; float kinds remember each
/// contribution by canonical position and sum them in that order at the end, so the result is
/// bit-identical to the term-at-a-time oracle's.
pub struct Evaluator<K: Kind> {
    contrib: Vec<K::S>,
    touched: Vec<usize>,
}

impl<K: Kind> Evaluator<K> {
    /// For a query of `n` terms.
    pub fn new(n: usize) -> Self {
        Evaluator { contrib: vec![K::S::default(); if K::FLOAT { n } else { 0 }], touched: Vec::with_capacity(if K::FLOAT { n } else { 0 }) }
    }

    /// Add the contribution `c` of canonical term `qi` to the running `score`.
    #[inline(always)]
    pub fn add(&mut self, score: &mut K::S, qi: usize, c: K::S) {
        *score += c;
        if K::FLOAT {
            self.contrib[qi] = c;
            self.touched.push(qi);
        }
    }

    /// The exact score of the document (canonical order for floats); resets the evaluator.
    #[inline(always)]
    pub fn finish(&mut self, score: K::S) -> K::S {
        if !K::FLOAT {
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
        if K::FLOAT {
            self.touched.clear();
        }
    }
}
