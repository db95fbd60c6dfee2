//! Per-term explanation of a document's score: which query terms it matched, with what stored
//! weight, and how much each contributed. Contributions are computed in the index's own
//! arithmetic, so they sum to the score the search returned (up to float rounding of the sum).

use super::common::open_cursors;
use super::plan::{Plan, QueryRef};
use super::{F32Kind, Kind, U8Kind};
use crate::index::{Impacts, Index, IndexView};
use crate::{Error, Result};

/// One matched term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contribution {
    /// External term id.
    pub term: u32,
    /// The query's weight for the term (as given).
    pub query_weight: f32,
    /// The document's weight for the term as the index scores it (dequantized impact).
    pub doc_weight: f32,
    /// This term's share of the score.
    pub contribution: f32,
}

fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    q: QueryRef<'_>,
    doc: u32,
    deq: impl Fn(K::Imp) -> f32,
) -> Result<Vec<Contribution>> {
    let plan = Plan::<K>::new(v, q, None)?;
    let mut out = Vec::new();
    for c in open_cursors(v, arrays, &plan).iter_mut() {
        if c.cur.seek(doc) == doc {
            let term = v.external_term(plan.terms[c.qi].term);
            let qw = q.terms.iter().position(|&t| t == term).map_or(0.0, |i| q.weights[i]);
            out.push(Contribution {
                term,
                query_weight: qw,
                doc_weight: deq(c.cur.impact()),
                contribution: K::to_f32(c.score(), plan.norm),
            });
        }
    }
    out.sort_by(|a, b| {
        b.contribution.partial_cmp(&a.contribution).unwrap_or(std::cmp::Ordering::Equal).then(a.term.cmp(&b.term))
    });
    Ok(out)
}

/// Explain internal document `doc`'s score for query `q`.
pub fn explain(index: &Index, q: QueryRef<'_>, doc: u32) -> Result<Vec<Contribution>> {
    let v = index.view();
    if doc >= v.n_docs {
        return Err(Error::InvalidArgument(format!(
            "document {doc} is out of range (the index has {} documents)",
            v.n_docs
        )));
    }
    match v.impacts {
        Impacts::U8(a) => {
            let scale = v.scale;
            run::<U8Kind>(v, &a, q, doc, |i| i as f32 / scale)
        }
        Impacts::F32(a) => run::<F32Kind>(v, &a, q, doc, |i| i),
    }
}
