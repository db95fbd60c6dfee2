//! Per-term explanation of a document's score: which query terms it matched, with what stored
//! weight, and how much each contributed. Contributions are computed in the index's own
//! arithmetic, so they sum to the score the search returned (up to float rounding of the sum;
//! for float BM25 the score is the f32 nearest to their exact sum, see [`super::fixed`]).
//! [`explain_scored`] also gives the document's score summed exactly as a search sums it (in
//! the kind's own accumulator, in query term order), bit-identical to the search's score.
//!
//! A u8 segment that stores its vectors is explained, by default ([`Scores::Vectors`]), as its
//! exact searches score it: each matched term's contribution is the query weight times the
//! stored float weight (`doc_weight`), added in ascending term order in f32 as the float
//! rerank adds them ([`super::rerank`]); [`Scores::Impacts`] explains the 8-bit scores.

use super::bm25::Bm25Stats;
use super::common::open_cursors;
use super::plan::{Plan, QueryRef};
use super::segments::{prepare, Prepared};
use super::{with_kind, Kind, Scores};
use crate::index::{Forward, FwdTerms, TermId};
use crate::index::{Index, IndexView};
use crate::{Error, Result};

/// One matched term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contribution {
    /// External term id.
    pub term: u32,
    /// The query's weight for the term as the index scores it (BM25: `idf * qtf`): as given,
    /// or, in the 8-bit scores of a quantized index, rounded to its 16-bit grid; so that
    /// `query_weight * doc_weight` is the contribution.
    pub query_weight: f32,
    /// The document's weight for the term as the index scores it (dequantized impact).
    pub doc_weight: f32,
    /// This term's share of the score.
    pub contribution: f32,
}

fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    p: &Prepared,
    doc: u32,
) -> (Vec<Contribution>, f32) {
    let plan = Plan::<K>::new(v, &p.query, p.avgdl);
    let mut out = Vec::new();
    // the searches add a document's per-term scores in the plan's term order
    let mut total = K::S::default();
    for c in open_cursors(v, arrays, &plan).iter_mut() {
        if c.cur.seek(doc) == doc {
            total += c.score();
            let term = v.external_term(plan.terms[c.qi].term);
            let given = p.query.weight_of(term).unwrap_or(0.0);
            out.push(Contribution {
                term,
                // a quantized kind's weight as it scores it (rounded to 16 bits): times
                // doc_weight, the contribution (helper-115: the given weight missed it by up
                // to 2% for BM25's lightest terms)
                query_weight: K::scored_query_weight(plan.terms[c.qi].w, plan.norm, &plan.ctx).unwrap_or(given),
                doc_weight: K::doc_weight(c.cur.impact(), &plan.ctx),
                contribution: K::to_f32(c.score(), plan.norm),
            });
        }
    }
    out.sort_by(|a, b| {
        b.contribution.partial_cmp(&a.contribution).unwrap_or(std::cmp::Ordering::Equal).then(a.term.cmp(&b.term))
    });
    (out, K::to_f32(total, plan.norm))
}

/// The float explanation of `doc` from its stored row (u8 segments, [`Scores::Vectors`]).
fn run_float(v: &IndexView<'_>, fwd: Forward<'_>, p: &Prepared, doc: u32) -> (Vec<Contribution>, f32) {
    fn go<T: TermId>(v: &IndexView<'_>, p: &Prepared, terms: &[T], values: &[f32]) -> (Vec<Contribution>, f32) {
        let mut out = Vec::new();
        let mut total = 0.0f32;
        for (&t, &x) in terms.iter().zip(values) {
            let term = v.external_term(t.into());
            if let Some(w) = p.query.weight_of(term) {
                // the float rerank's sum, term for term ([`super::rows::FloatRowScorer`])
                total += w * x;
                out.push(Contribution { term, query_weight: w, doc_weight: x, contribution: w * x });
            }
        }
        (out, total)
    }
    let (a, b) = (fwd.indptr[doc as usize] as usize, fwd.indptr[doc as usize + 1] as usize);
    let (mut out, total) = match fwd.terms {
        FwdTerms::U16(t) => go(v, p, &t[a..b], &fwd.values[a..b]),
        FwdTerms::U32(t) => go(v, p, &t[a..b], &fwd.values[a..b]),
    };
    out.sort_by(|a, b| {
        b.contribution.partial_cmp(&a.contribution).unwrap_or(std::cmp::Ordering::Equal).then(a.term.cmp(&b.term))
    });
    (out, total)
}

/// Explain internal document `doc`'s score for query `q` (BM25 indexes: under the index's own
/// statistics).
pub fn explain(index: &Index, q: QueryRef<'_>, doc: u32) -> Result<Vec<Contribution>> {
    explain_with(index, q, doc, None)
}

/// [`explain`] of a BM25 index under `stats` (then `query_weight` is the query term's
/// `idf * qtf` and `doc_weight` its BM25 document weight `(k1 + 1) tf / (tf + K)`).
pub fn explain_with(index: &Index, q: QueryRef<'_>, doc: u32, stats: Option<&Bm25Stats>) -> Result<Vec<Contribution>> {
    explain_scored(index, q, doc, stats).map(|(parts, _)| parts)
}

/// [`explain_with`], and the document's score for `q` as a search computes it (bit-identical:
/// the per-term scores are added in the search's accumulator type and order, then converted
/// once), which the contributions' float sum can miss by a unit in the last place.
pub fn explain_scored(
    index: &Index,
    q: QueryRef<'_>,
    doc: u32,
    stats: Option<&Bm25Stats>,
) -> Result<(Vec<Contribution>, f32)> {
    explain_scored_as(index, q, doc, stats, Scores::default())
}

/// [`explain_scored`] of the `scores` a search returned (u8 segments; see [`Scores`]).
pub fn explain_scored_as(
    index: &Index,
    q: QueryRef<'_>,
    doc: u32,
    stats: Option<&Bm25Stats>,
    scores: Scores,
) -> Result<(Vec<Contribution>, f32)> {
    let v = index.view();
    if doc >= v.n_docs {
        return Err(Error::InvalidArgument(format!(
            "document {doc} is out of range (the index has {} documents)",
            v.n_docs
        )));
    }
    let p = prepare(&[index], q, None, stats)?;
    Ok(with_kind!(v, |K, a| match v.forward {
        Some(fwd) if K::FLOAT_RERANK && scores == Scores::Vectors => run_float(v, fwd, &p, doc),
        _ => run::<K>(v, &a, &p, doc),
    }))
}
