//! Exact global top-k over several segments, with a floor carried from segment to segment.

use super::bm25::Bm25Stats;
use super::plan::{Query, QueryRef};
use super::{batch, check_allowed, search_one_above, Algorithm, DocSet, Scores};
use crate::index::{Bm25Params, ExternalIds, Index};
use crate::vectors::{check_csr, CsrRef};
use crate::{Error, Result};

/// One segment of a multi-segment search: an index and its allowed documents (live and
/// passing the filter; all when `None`).
#[derive(Clone, Copy)]
pub struct Segment<'a> {
    /// The segment's index.
    pub index: &'a Index,
    /// Its allowed documents.
    pub allowed: Option<&'a DocSet>,
}

/// A hit of a multi-segment search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentHit {
    /// Position of the segment in the list searched.
    pub segment: u32,
    /// Internal doc id in that segment.
    pub doc: u32,
    /// Score in weight units.
    pub score: f32,
}

/// A query validated once for a set of segments, BM25-weighted if they are BM25 segments.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) query: Query,
    /// BM25: the collection's average document length.
    pub(crate) avgdl: Option<f64>,
    /// The scores exact searches of u8 segments return.
    pub(crate) scores: Scores,
}

/// The BM25 parameters shared by `indexes` (`None` if none is a BM25 index); BM25 and other
/// indexes, or BM25 indexes with different k1 or b, cannot be searched together.
pub(crate) fn shared_bm25<'a>(indexes: impl Iterator<Item = &'a Index>) -> Result<Option<Bm25Params>> {
    let mut out: Option<Option<Bm25Params>> = None;
    for ix in indexes {
        let p = ix.view().bm25.map(|m| m.params);
        match (out, p) {
            (None, _) => out = Some(p),
            (Some(None), None) => {}
            (Some(Some(a)), Some(b)) if a.k1 == b.k1 && a.b == b.b => {}
            (Some(Some(a)), Some(b)) => {
                return Err(Error::InvalidArgument(format!(
                    "BM25 segments with different parameters (k1={} b={} and k1={} b={}) cannot be searched together",
                    a.k1, a.b, b.k1, b.b
                )))
            }
            _ => return Err(Error::InvalidArgument("BM25 and other segments cannot be searched together".into())),
        }
    }
    Ok(out.flatten())
}

/// Validate `q` once for `indexes` (term ids below the smallest declared vocabulary) and, for
/// BM25 indexes, weight it with `stats` (computed over every document of `indexes` when
/// `None`).
pub(crate) fn prepare(
    indexes: &[&Index],
    q: QueryRef<'_>,
    qi: Option<usize>,
    stats: Option<&Bm25Stats>,
) -> Result<Prepared> {
    let vocab = indexes.iter().filter_map(|ix| ix.view().vocab).min();
    let query = Query::new(q, vocab, qi)?;
    if shared_bm25(indexes.iter().copied())?.is_none() {
        return Ok(Prepared { query, avgdl: None, scores: Scores::default() });
    }
    let own;
    let stats = match stats {
        Some(s) => s,
        None => {
            own = Bm25Stats::of_indexes(indexes, query.terms());
            &own
        }
    };
    Ok(Prepared { query: query.bm25(stats, qi)?, avgdl: Some(stats.avgdl()), scores: Scores::default() })
}

/// The number of hits a search over segments can return: `k` capped at their total number of
/// documents (at least 1). Errors if `k` is 0.
pub fn effective_k_segments(segs: &[Segment<'_>], k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::InvalidArgument("k must be at least 1".into()));
    }
    let total: u64 = segs.iter().map(|s| s.index.n_docs() as u64).sum();
    Ok(k.min(total.max(1).min(usize::MAX as u64) as usize))
}

/// Exact global top-`k` over several segments: every segment's exact top-k merged, best
/// first by score, ties to the smaller document id (integers numerically, strings by their
/// bytes; segments without stored ids: the earlier segment, then the earlier doc), the order of
/// a single segment's ties too, so the result does not depend on how the documents are split
/// into segments or ordered inside them. The query is
/// validated once. BM25 segments are scored with `stats` (every document of the segments when
/// `None`; a store passes its live documents' statistics, a sharded index the sum over its
/// shards).
///
/// Segments are searched largest first, and each search starts from a floor: the k-th score
/// found so far (documents scoring below it cannot enter the global top-k, so a segment
/// returns only the documents at or above it and its traversal prunes from the start).
pub fn search_segments(
    segs: &[Segment<'_>],
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    stats: Option<&Bm25Stats>,
) -> Result<Vec<SegmentHit>> {
    search_segments_scores(segs, q, k, algo, stats, Scores::default())
}

/// [`search_segments`] returning `scores` (exact algorithms on u8 segments; see [`Scores`]).
pub fn search_segments_scores(
    segs: &[Segment<'_>],
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    stats: Option<&Bm25Stats>,
    scores: Scores,
) -> Result<Vec<SegmentHit>> {
    for s in segs {
        check_allowed(s.index, s.allowed)?;
    }
    let k = effective_k_segments(segs, k)?;
    let indexes: Vec<&Index> = segs.iter().map(|s| s.index).collect();
    let mut p = prepare(&indexes, q, None, stats)?;
    p.scores = scores;
    Ok(search_prepared(segs, &p, k, algo))
}

/// Search a prepared query (`k >= 1`).
pub(crate) fn search_prepared(segs: &[Segment<'_>], p: &Prepared, k: usize, algo: Algorithm) -> Vec<SegmentHit> {
    let mut order: Vec<usize> = (0..segs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(segs[i].allowed.map_or(segs[i].index.n_docs() as u64, |a| a.len())));
    // Every segment maps the query's terms to its own ids first: the lookups of all segments
    // are asked for together rather than one segment's after another's search (issue #10).
    for s in segs {
        let v = s.index.view();
        for &t in p.query.terms() {
            v.prefetch_local_term(t);
        }
    }
    let mut best: Vec<SegmentHit> = Vec::with_capacity(2 * k.min(1 << 16));
    // a cancelled call (Ctrl-C on a long document-at-a-time search) opens no further segment:
    // each would open and sort the query's cursors before its loop's first check (helper-120)
    let stop = algo.is_document_at_a_time().then(crate::cancel::watch);
    for &si in &order {
        if stop.as_ref().is_some_and(|w| w.stopped()) {
            break;
        }
        let s = &segs[si];
        if s.index.n_docs() == 0 || s.allowed.is_some_and(|a| a.is_empty()) {
            continue;
        }
        let floor = if best.len() >= k { Some(best[k - 1].score) } else { None };
        let kk = k.min(s.index.n_docs() as usize);
        let hits = match algo {
            Algorithm::Approximate(t) => super::approx::search_one(s.index, p, kk, t, s.allowed, floor),
            _ => search_one_above(s.index, p, kk, algo, s.allowed, floor),
        };
        best.extend(hits.into_iter().map(|h| SegmentHit { segment: si as u32, doc: h.doc, score: h.score }));
        best.sort_by(|a, b| {
            b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then_with(|| {
                // Stored ids only: the row numbers of segments without ids are not comparable.
                let id = |h: &SegmentHit| {
                    let ix = segs[h.segment as usize].index;
                    if matches!(ix.view().ids, ExternalIds::None) {
                        None
                    } else {
                        ix.id(h.doc)
                    }
                };
                match (id(a), id(b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => std::cmp::Ordering::Equal,
                }
                .then(a.segment.cmp(&b.segment))
                .then(a.doc.cmp(&b.doc))
            })
        });
        best.truncate(k);
    }
    best
}

/// [`search_segments`] for every query of a CSR batch, in parallel on `threads` threads;
/// `stats` must cover every term of the batch (or be `None`). Errors name the query.
pub fn search_segments_batch(
    segs: &[Segment<'_>],
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
    stats: Option<&Bm25Stats>,
) -> Result<Vec<Vec<SegmentHit>>> {
    search_segments_batch_scores(segs, queries, k, algo, threads, stats, Scores::default())
}

/// [`search_segments_batch`] returning `scores` (exact algorithms on u8 segments; see
/// [`Scores`]).
pub fn search_segments_batch_scores(
    segs: &[Segment<'_>],
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
    stats: Option<&Bm25Stats>,
    scores: Scores,
) -> Result<Vec<Vec<SegmentHit>>> {
    let nq = check_csr(&queries, "queries")?;
    for s in segs {
        check_allowed(s.index, s.allowed)?;
    }
    let k = effective_k_segments(segs, k)?;
    let indexes: Vec<&Index> = segs.iter().map(|s| s.index).collect();
    batch(nq, threads, |i| {
        let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
        let q = QueryRef { terms: &queries.indices[a..b], weights: &queries.values[a..b] };
        let mut p = prepare(&indexes, q, Some(i), stats)?;
        p.scores = scores;
        Ok(search_prepared(segs, &p, k, algo))
    })
}
