//! Calibration: from a recall target to the parameters `(beta, gamma, rerank)` of one segment.
//!
//! A grid of parameters is evaluated on calibration queries: recall@k of the approximate
//! result against the exact one (a returned document counts when its score reaches the exact
//! k-th score, so ties at the k-th place are not held against it; for u8 segments scores are
//! the float dot products of the stored vectors, the ones approximate search returns, see
//! [`eval_query`]), and a cost: the point's search time, measured on the segment (see
//! [`eval_grid`]; the exact search's own time at [`ApproxParams::EXACT`], whose recall is 1, so
//! the exact search is chosen wherever it is the cheapest way to a target). Queries are grouped
//! by length (the number of their terms in the segment), because a short query needs a larger
//! share of its weight than a long one:
//! buckets of at most 8, 16, 32, 64, 128 and more terms. For a target, the cheapest grid
//! point of the query's bucket whose calibration recall reaches the target with a margin of
//! [`MARGIN_SE`] standard errors is used: a bucket's recall is a mean over a few hundred
//! queries at most, and the cheapest of 96 points that reach the target on those queries is
//! the one whose estimate is most likely too high (with 200 held-out synthetic queries and
//! no margin, the point chosen for 0.99 reached 0.990 on them and 0.984 on others). A bucket
//! with fewer than [`MIN_BUCKET_QUERIES`] queries is not used (its queries take the nearest
//! bucket with enough, and the exact search when there is none; a calibration on queries given
//! takes such buckets from the segment's pseudo-query calibration where that has enough,
//! [`calibrate_with`]), and a target of 1 is always the exact search.
//!
//! Calibration queries are the user's (`calibrate(queries)`), or *pseudo-queries*
//! ([`pseudo_queries`]): stored rows of documents drawn at random, cut to their heaviest 6, 12,
//! 24, 48, 96 or 160 terms (one length per bucket), searched among every other document (the
//! source document is excluded, or it would trivially be the first hit); and, in the buckets
//! of more than 32 terms, as many multi-topic pseudo-queries: sums of the rows of 2 to 16
//! random documents (at most one per [`MULTI_TERMS_PER_DOC`] of the bucket's terms) cut to the bucket's length, searched among every document but their
//! sources. A document's row is one topic, and a long query may be several, whose top k is
//! harder to find: calibrated on single rows alone, unions of 20 real debian queries reached
//! recall 0.825 at target 0.90. In a bucket with both kinds, a point's recall is that of the
//! kind on which it is the least sure to reach a target (the lowest mean less [`MARGIN_SE`]
//! standard errors, [`recall_of_kinds`]), so a point is chosen only when it reaches the
//! target on both; pooled, single-topic queries held the mean up while multi-topic ones
//! missed (0.88 at 0.90 on debian). The calibration of a segment is made
//! once, on the first approximate search ([`cached`]) or by [`set`], kept in memory with the
//! segment and, for segments of an index directory, written to the segment's calibration file
//! `seg-<N>.cal` ([`super::persist`]), from which a later open takes it: reopening an index
//! does not calibrate it again. It is not part of the engine file (it depends on the queries
//! given and can be redone at any time).

use super::{cut_terms, rerank_depth, ApproxParams};
use crate::index::{Index, IndexView};
use crate::search::auto::Clock;
use crate::search::plan::{Plan, Query, QueryRef};
use crate::search::rows::{FloatRowScorer, RowScorer};
use crate::search::topk::{Score, TopK};
use crate::search::{exact_raw, with_kind, Algorithm, DocSet, Kind, Scratch};
use crate::vectors::{check_csr, CsrRef};
use crate::Result;
use std::sync::Arc;

/// Shares of the query's total bound kept by the cut, evaluated by the calibration: steps of
/// 0.05 where calibrations choose (0.5-0.9), 0.1 elsewhere. Halving the steps from 0.1 (stop
/// 26) made the chosen points 10-30% faster on debian, synthetic 100k and 1M at the same
/// targets, for a calibration half as long again (`examples/approx_grid.rs`). Finer rerank
/// depths did not help: with 14 instead of 8 the chosen points were as fast or slower, and on
/// WordNet reached 0.9455 at 0.95 (more points, more chances that the cheapest passing one
/// passed by luck).
pub const BETAS: [f32; 12] = [0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0];
/// Cuts `(beta, gamma)` evaluated by the calibration of segments with a high layer
/// ([`super::layer`]), in place of [`BETAS`]: the cut by bound share read whole (gamma 0; the
/// uncut query is the exact point), and read from the high layers but for the terms of at least
/// a third of the query's largest contribution (gamma 0.1). Reading every kept term from its
/// layer (gamma 1) was 1.2-1.5x faster again at 1M, but lost recall on flat queries (30 common
/// terms of similar weight: 0.85 at target 0.95 on debian, 0.90 before; 0.976 at 0.99, 0.999
/// before), where a top document's score is the sum of many low impacts; at gamma 0.1 the
/// terms of a flat query are mostly read whole, and every adversarial shape of stop 30's
/// breaker (debian, both calibrations) reached the recall of the cuts read whole.
pub const LAYERED: [(f32, f32); 15] = [
    (0.4, 0.0),
    (0.5, 0.0),
    (0.6, 0.0),
    (0.7, 0.0),
    (0.8, 0.0),
    (0.9, 0.0),
    (1.0, 0.0),
    (0.6, 0.1),
    (0.65, 0.1),
    (0.7, 0.1),
    (0.75, 0.1),
    (0.8, 0.1),
    (0.85, 0.1),
    (0.9, 0.1),
    (1.0, 0.1),
];
/// The cuts `(beta, gamma)` of a segment's calibration grid: [`LAYERED`] where the segment has
/// a high layer, else the cuts by bound share alone ([`BETAS`], gamma 0).
pub fn cuts(layered: bool) -> Vec<(f32, f32)> {
    if layered {
        LAYERED.to_vec()
    } else {
        BETAS.iter().map(|&b| (b, 0.0)).collect()
    }
}
/// Rerank depths (multiples of k) evaluated by the calibration.
pub const RERANKS: [f32; 8] = [1.0, 1.5, 2.5, 4.0, 6.5, 10.0, 16.0, 25.0];
/// Upper ends of the query-length buckets (number of query terms in the segment).
pub const BUCKETS: [usize; 6] = [8, 16, 32, 64, 128, usize::MAX];
/// Length of the pseudo-queries of each bucket.
const PSEUDO_LEN: [usize; 6] = [6, 12, 24, 48, 96, 160];
/// Single-document pseudo-queries per bucket.
pub const PSEUDO_PER_BUCKET: usize = 100;
/// The first bucket (33-64 terms) whose pseudo-queries include multi-topic ones (see
/// [`pseudo_queries`]).
pub const MULTI_FROM_BUCKET: usize = 3;
/// Multi-topic pseudo-queries per bucket from [`MULTI_FROM_BUCKET`] on, in addition to the
/// [`PSEUDO_PER_BUCKET`] single-document ones. 50 instead of 100 halved their share of the
/// calibration but, their recall's standard error being larger, chose dearer points (at
/// target 0.99 on debian, 2.3 ms for unions of 20 real queries against 1.2).
pub const MULTI_PER_BUCKET: usize = 100;
/// Numbers of documents summed by the multi-topic pseudo-queries, in turn.
pub const MULTI_DOCS: [usize; 4] = [2, 4, 8, 16];
/// A bucket's multi-topic pseudo-queries sum at most its length / `MULTI_TERMS_PER_DOC`
/// documents (but at least 2): 2 or 4 for the bucket of 33-64 terms (cut to 48), whose sums of
/// 8 and 16 documents kept 3-6 terms of each, queries harder than any real one, so that real
/// synthetic 100k queries of 47 terms were searched at beta 0.8 and rerank 6.5 for 0.97,
/// where with the cap beta 0.85 and rerank 4 reach 0.997 on them (and every kind of
/// `benches/approx_multitopic.py` on debian still meets every target).
pub const MULTI_TERMS_PER_DOC: usize = 10;
/// k of the calibration searches.
pub const CAL_K: usize = 10;
/// Standard errors by which a point's mean calibration recall must exceed the target for the
/// point to be chosen (see the module doc).
pub const MARGIN_SE: f64 = 1.5;
/// Calibration queries a bucket needs before its points are used; queries of a bucket with
/// fewer take the nearest bucket with enough, and the exact search when none has (a calibration
/// on queries given with none is refused by [`calibrate_with`]). A handful of
/// queries that all reach recall 1 at a cheap point say little (a newcomer calibrated debian on
/// 1-10 queries and reached 0.82-0.87 on 200 others).
pub const MIN_BUCKET_QUERIES: usize = 30;

/// One grid point of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationPoint {
    /// Bucket index (see [`BUCKETS`]).
    pub bucket: usize,
    /// Parameters.
    pub params: ApproxParams,
    /// Mean recall@k on the bucket's calibration queries.
    pub recall: f64,
    /// Standard error of that mean (the sample standard deviation of the queries' recalls
    /// over the square root of their number; 1 for a bucket of one query).
    pub recall_se: f64,
    /// Mean cost: the point's search time in microseconds, measured on this segment while
    /// calibrating (see [`eval_grid`]).
    pub cost: f64,
}

/// A segment's calibration.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Every grid point of every bucket with calibration queries.
    pub points: Vec<CalibrationPoint>,
    /// Calibration queries per bucket.
    pub queries: [usize; 6],
    /// True for a calibration on pseudo-queries (stored rows) alone, false for one on queries
    /// given ([`calibrate_with`]).
    pub pseudo: bool,
    /// Per bucket, whether its points and count come from pseudo-queries: every bucket of a
    /// calibration on pseudo-queries; in one on queries given, the buckets where they were
    /// fewer than [`MIN_BUCKET_QUERIES`] and the segment's pseudo-query calibration has enough
    /// (see [`calibrate_with`]).
    pub from_pseudo: [bool; 6],
}

impl Calibration {
    /// The bucket of a query with `n_terms` terms in the segment, or the nearest bucket that
    /// has at least [`MIN_BUCKET_QUERIES`] calibration queries (None when none has).
    fn bucket(&self, n_terms: usize) -> Option<usize> {
        let b = bucket_of(n_terms);
        (0..BUCKETS.len())
            .filter(|&c| self.queries[c] >= MIN_BUCKET_QUERIES)
            .min_by_key(|&c| (c as isize - b as isize).unsigned_abs() * 2 + usize::from(c > b))
    }

    /// The cheapest calibrated parameters whose recall reaches `target` (by [`MARGIN_SE`]
    /// standard errors) for a query of `n_terms` terms, with the mean recall they reached on
    /// the calibration queries ([`ApproxParams::EXACT`], the exact search, recall 1, for a
    /// target of 1 and when no bucket has [`MIN_BUCKET_QUERIES`] queries).
    pub fn choose(&self, target: f64, n_terms: usize) -> (ApproxParams, f64) {
        // A target of 1 is only held by the exact search (no sample can show a point reaches it).
        let Some(b) = self.bucket(n_terms).filter(|_| target < 1.0) else {
            return (ApproxParams::EXACT, 1.0);
        };
        let ord = |x: f64, y: f64| x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        let pts = || self.points.iter().filter(|p| p.bucket == b);
        let lower = |p: &CalibrationPoint| p.recall - MARGIN_SE * p.recall_se;
        pts()
            .filter(|p| lower(p) >= target)
            .min_by(|x, y| ord(x.cost, y.cost))
            // No point reaches the target by the margin (a target of 1, or too few queries):
            // the point of the highest lower bound (not the highest mean, which a noisy point
            // may have), the dearest of those (points tied on their bound say nothing about
            // which is safer; the dearer searches more).
            .or_else(|| pts().max_by(|x, y| ord(lower(x), lower(y)).then(ord(x.cost, y.cost))))
            .map_or((ApproxParams::EXACT, 1.0), |p| (p.params, p.recall))
    }

    /// [`Calibration::choose`]'s parameters.
    pub fn params(&self, target: f64, n_terms: usize) -> ApproxParams {
        self.choose(target, n_terms).0
    }
}

/// The segment's calibration: the one in memory, else the segment's calibration file as it is
/// now, else one made from pseudo-queries on first use (or the one given with [`set`]). The
/// first use calibrates on the calling thread alone, holding the segment's
/// lock: a parallel calibration started from a worker of a batch search could, while it
/// waits, be handed another query of the same batch that needs the same lock.
pub fn cached(index: &Index) -> Arc<Calibration> {
    let mut slot = index.approx().slot();
    if let Some(c) = slot.as_ref() {
        return c.clone();
    }
    // Another handle or process may have calibrated the segment since this handle opened it
    // (perhaps on the user's queries, with `calibrate(queries)`): take its file rather than
    // calibrate on pseudo-queries and overwrite it. Checked again after calibrating, since that
    // takes seconds; only a file written in the instant between the check and the write is
    // replaced.
    let c = Arc::new(super::persist::load(index).unwrap_or_else(|| {
        // not cancellable: a search waits for it, and a partial calibration must not be kept
        let made = calibrate(index, None, 0x5eed, false, &Default::default(), None);
        super::persist::load(index).unwrap_or_else(|| {
            super::persist::save(index, &made);
            made
        })
    }));
    *slot = Some(c.clone());
    c
}

/// What `calibrate()` without queries does to a segment: makes it ready for approximate
/// search. Its calibration: the one in memory; else the segment's calibration file when there
/// is one (another handle or process may have written it, perhaps calibrated on the user's
/// queries, as [`cached`] does); else one on pseudo-queries ([`calibrate_with`], on every core),
/// kept and written to the file unless one appeared meanwhile, in the file or in memory
/// (newcomer15 L1: it calibrated and overwrote a file another process had just calibrated on
/// queries; helper-108: a calibration on queries another thread had just set). And its high layer
/// ([`super::layer`]), which the calibration makes but a calibration read from the file does
/// not: otherwise the first approximate search after reopening an index made it (0.33 s for a
/// segment of 1M synthetic documents), so `calibrate()` after opening is the warm-up.
pub fn ensure(index: &Index) -> Result<()> {
    if peek(index).is_none() {
        // Never over a calibration set meanwhile (`calibrate(queries)` from another thread: it
        // was replaced by pseudo-queries', helper-108); `save`: write it to the file too.
        let keep = |c: Calibration, save: bool| {
            let mut slot = index.approx().slot();
            if slot.is_none() {
                if save {
                    super::persist::save(index, &c);
                }
                *slot = Some(Arc::new(c));
            }
        };
        match super::persist::load(index) {
            Some(c) => keep(c, false),
            None => {
                let made = calibrate_with(index, None, 0x5eed)?;
                match super::persist::load(index) {
                    Some(c) => keep(c, false),
                    None => keep(made, true),
                }
            }
        }
    }
    let _ = super::high_layer(index);
    Ok(())
}

/// Keep `c` as the segment's calibration (replacing any), and write it to the segment's
/// calibration file when the segment has one (best effort, see [`super::persist`]).
pub fn set(index: &Index, c: Calibration) {
    let mut slot = index.approx().slot();
    super::persist::save(index, &c);
    *slot = Some(Arc::new(c));
}

static CALIBRATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Calibrations computed by this process so far (an observable for tests: a calibration read
/// from a segment's calibration file is not counted).
pub fn calibrations_made() -> u64 {
    CALIBRATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The segment's calibration if it has one already (never calibrates).
pub fn peek(index: &Index) -> Option<Arc<Calibration>> {
    index.approx().slot().clone()
}

/// Calibrate a segment on `queries` (CSR, external term ids), or on pseudo-queries drawn with
/// `seed` when `None`. The buckets `queries` leave with fewer than [`MIN_BUCKET_QUERIES`] are
/// the segment's calibration on pseudo-queries there ([`Calibration::from_pseudo`];
/// `fill_thin_buckets`). Errors for malformed queries (naming the query), for queries none of
/// which has [`CAL_K`] matching documents, and for queries too few for every bucket (fewer than
/// [`MIN_BUCKET_QUERIES`] in each): the caller then leaves the segment's calibration as it is.
pub fn calibrate_with(index: &Index, queries: Option<CsrRef<'_>>, seed: u64) -> Result<Calibration> {
    if let Some(q) = &queries {
        let nq = check_csr(q, "calibration queries")?;
        let vocab = index.view().vocab;
        for i in 0..nq {
            let (a, b) = (q.indptr[i] as usize, q.indptr[i + 1] as usize);
            Query::new(QueryRef { terms: &q.indices[a..b], weights: &q.values[a..b] }, vocab, Some(i))?;
        }
    }
    let given = queries.is_some();
    let n = queries.as_ref().map_or(0, |q| q.indptr.len().saturating_sub(1));
    if given && n == 0 {
        return Err(crate::Error::InvalidArgument("calibration queries: none given".into()));
    }
    let stop = crate::cancel::watch();
    let c = calibrate(index, queries, seed, true, &stop, None);
    stop.check()?; // cancelled: queries were skipped, the calibration is partial
    if given && c.points.is_empty() && index.view().forward.is_some() {
        return Err(crate::Error::InvalidArgument(format!(
            "calibration queries: none of the {n} queries has {CAL_K} matching documents in this segment \
             (of {} documents); give queries that share terms with the documents",
            index.n_docs()
        )));
    }
    // Too few queries in every bucket would make approximate search the exact search: refused,
    // so the segment keeps the calibration it has (helper-146: 20 queries replaced a good
    // pseudo-query calibration, and its file, with the exact search, and only 30+ queries or a
    // merge brought one back).
    if given && !c.points.is_empty() && c.queries.iter().all(|&nq| nq < MIN_BUCKET_QUERIES) {
        let per_bucket: Vec<String> = BUCKETS
            .iter()
            .zip(c.queries)
            .scan(0, |lo, (&hi, nq)| {
                let range = if hi == usize::MAX { format!("{}+", *lo + 1) } else { format!("{}-{hi}", *lo + 1) };
                *lo = hi;
                Some((nq > 0).then(|| format!("{nq} of {range} terms")))
            })
            .flatten()
            .collect();
        let used: usize = c.queries.iter().sum();
        return Err(crate::Error::InvalidArgument(format!(
            "calibration queries: {used} of the {n} queries have {CAL_K} matching documents in this segment \
             (counting repeats once), and no query-length bucket holds the {MIN_BUCKET_QUERIES} queries a calibration \
             needs (by their terms present in the segment: {}); the segment keeps its calibration; give a few \
             hundred queries",
            per_bucket.join(", ")
        )));
    }
    if given {
        return fill_thin_buckets(index, c, &stop);
    }
    Ok(c)
}

/// `c`, a calibration on queries given, with each bucket where they were fewer than
/// [`MIN_BUCKET_QUERIES`] taken from the segment's calibration on pseudo-queries when that has
/// enough there: the pseudo-query buckets of the calibration the segment has (in memory, else
/// in its file), else a calibration on pseudo-queries of those buckets alone, made now. Without
/// it such a bucket took the parameters of the nearest bucket the queries filled (helper-152:
/// calibrated on 40 queries of 17-32 terms, held-out queries of 9-16 terms reached 0.878 at
/// target 0.90), measured on queries of another length, where pseudo-queries of the bucket's own
/// length hold their targets.
fn fill_thin_buckets(index: &Index, mut c: Calibration, stop: &crate::cancel::Watch) -> Result<Calibration> {
    let thin: [bool; 6] = std::array::from_fn(|b| c.queries[b] < MIN_BUCKET_QUERIES);
    if !thin.contains(&true) || c.points.is_empty() {
        return Ok(c);
    }
    // The points taken must be of the grid of `c`'s (the segment's: layered or not).
    let grid = cuts(super::high_layer(index).is_some());
    let covers = |h: &Calibration, b: usize| {
        h.from_pseudo[b]
            && h.points.iter().filter(|p| p.bucket == b).all(|p| grid.contains(&(p.params.beta, p.params.gamma)))
    };
    let have = peek(index).or_else(|| super::persist::load(index).map(Arc::new));
    let have = have.filter(|h| (0..BUCKETS.len()).all(|b| !thin[b] || covers(h, b)));
    let source = match have {
        Some(h) => h,
        None => {
            let made = calibrate(index, None, 0x5eed, true, stop, Some(thin));
            stop.check()?;
            Arc::new(made)
        }
    };
    for b in (0..BUCKETS.len()).filter(|&b| thin[b] && source.queries[b] >= MIN_BUCKET_QUERIES) {
        c.points.retain(|p| p.bucket != b);
        c.points.extend(source.points.iter().filter(|p| p.bucket == b).copied());
        c.queries[b] = source.queries[b];
        c.from_pseudo[b] = true;
    }
    c.points.sort_by_key(|p| p.bucket);
    Ok(c)
}

/// How far a segment's calibration is: calibration queries evaluated, of how many
/// ([`Index::calibration_progress`]).
#[derive(Debug, Default)]
pub struct Progress {
    done: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// (queries evaluated, queries in all).
    pub fn get(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.total.load(Relaxed);
        (self.done.load(Relaxed).min(total), total)
    }

    /// Count `more` queries to evaluate after those counted (the pseudo-queries a calibration
    /// on queries adds for the buckets they leave, `fill_thin_buckets`): the display goes on
    /// rather than start again.
    fn extend(&self, more: usize) {
        self.total.fetch_add(more, std::sync::atomic::Ordering::Relaxed);
    }

    fn start(&self, total: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.done.store(0, Relaxed);
        self.total.store(total, Relaxed);
    }

    fn tick(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One calibration query: external terms and weights, the documents it came from (excluded
/// from its search; none for a query given), and its kind (see [`pseudo_queries`]).
struct CalQuery {
    terms: Vec<u32>,
    weights: Vec<f32>,
    exclude: Vec<u32>,
    multi: bool,
}

/// The bucket of a query of `n_terms` terms in the segment.
fn bucket_of(n_terms: usize) -> usize {
    BUCKETS.iter().position(|&m| n_terms <= m).unwrap_or(BUCKETS.len() - 1)
}

/// Calibrate on `queries`, or on pseudo-queries (of the buckets of `only` alone, when given).
fn calibrate(
    index: &Index,
    queries: Option<CsrRef<'_>>,
    seed: u64,
    parallel: bool,
    stop: &crate::cancel::Watch,
    only: Option<[bool; 6]>,
) -> Calibration {
    use rayon::prelude::*;
    CALIBRATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let v = index.view();
    let pseudo = queries.is_none();
    let qs: Vec<CalQuery> = match queries {
        Some(q) => (0..q.indptr.len().saturating_sub(1))
            .filter_map(|i| {
                let (a, b) = (q.indptr[i] as usize, q.indptr[i + 1] as usize);
                let query =
                    Query::new(QueryRef { terms: &q.indices[a..b], weights: &q.values[a..b] }, v.vocab, None).ok()?;
                Some(CalQuery {
                    terms: query.terms().to_vec(),
                    weights: query.weights().to_vec(),
                    exclude: Vec::new(),
                    multi: false,
                })
            })
            .collect(),
        // a pseudo-query's terms are all in the segment: its length is its bucket's
        None => pseudo_queries(v, seed).into_iter().filter(|q| only.is_none_or(|o| o[bucket_of(q.terms.len())])).collect(),
    };
    // A query given several times counts once: a raw sample of a query log repeats its
    // popular queries, and 40 copies of one query made a bucket of 40 whose recalls, all
    // equal, had no spread, so its cheapest point passed every target (helper-104: real
    // queries then reached 0.887 at 0.97). So does a query scaled (the same terms, weights in
    // the same proportions: the same ranking; helper-152 M1: 30 scaled copies of one debian
    // query passed as 30 queries, and real queries then reached 0.854 at 0.97).
    let mut seen = Repeats::default();
    let qs: Vec<CalQuery> = qs.into_iter().filter(|q| pseudo || seen.is_new(&q.terms, &q.weights)).collect();
    if v.forward.is_none() || qs.is_empty() {
        return Calibration { points: Vec::new(), queries: [0; 6], pseudo, from_pseudo: [pseudo; 6] };
    }
    let progress = &index.approx().progress;
    if only.is_some() {
        progress.extend(qs.len());
    } else {
        progress.start(qs.len());
    }
    let layer = super::high_layer(index);
    let grid_cuts = cuts(layer.is_some());
    // Per query: its bucket and its grid (see `QueryGrid`). The candidate stage is timed at
    // k' = k on one in `TIME_K_EVERY` queries only (see `eval_grid`).
    let eval = |(qi, q): (usize, &CalQuery)| {
        if stop.stopped() {
            return None;
        }
        let query = Query::new(QueryRef { terms: &q.terms, weights: &q.weights }, None, None).ok()?;
        let allowed = (!q.exclude.is_empty()).then(|| all_but(v.n_docs, &q.exclude));
        with_kind!(v, |K, a| {
            let mut plan = Plan::<K>::new(v, &query, None);
            plan.allowed = allowed;
            // a pseudo-random quarter of the queries (not every 4th: queries given in a
            // periodic order, short and long in turn, would leave a bucket untimed)
            let time_k = ((qi as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32).is_multiple_of(TIME_K_EVERY);
            crate::search::with_scratch(|s| eval_query::<K>(v, &a, &plan, &query, layer.as_deref(), time_k, s))
        })
        .map(|g| (usize::from(q.multi), g))
    };
    let eval = |q: (usize, &CalQuery)| {
        let out = eval(q);
        progress.tick();
        out
    };
    let evals: Vec<Option<(usize, QueryGrid)>> = if parallel {
        qs.par_iter().enumerate().map(eval).collect()
    } else {
        qs.iter().enumerate().map(eval).collect()
    };
    // Per bucket, kind of query (single-topic, multi-topic) and point: sums of recall, of its
    // square, and of the cost besides the candidate stage's; per bucket and cut, the stage's
    // times: sums of t_max over all queries, and of t_k and t_max over those timed at k.
    let n_points = grid_cuts.len() * RERANKS.len();
    let mut sums =
        vec![[vec![(0.0f64, 0.0f64, 0.0f64); n_points], vec![(0.0f64, 0.0f64, 0.0f64); n_points]]; BUCKETS.len()];
    let mut stage_sums = vec![vec![(0.0f64, 0.0f64, 0.0f64); grid_cuts.len()]; BUCKETS.len()];
    let mut counts = [0usize; 6];
    let mut kind_counts = [[0usize; 2]; 6];
    for (kind, g) in evals.into_iter().flatten() {
        let b = g.bucket;
        counts[b] += 1;
        kind_counts[b][kind] += 1;
        for (s, p) in sums[b][kind].iter_mut().zip(&g.points) {
            s.0 += p.0;
            s.1 += p.0 * p.0;
            s.2 += p.1;
        }
        for (s, &(t_max, t_k)) in stage_sums[b].iter_mut().zip(&g.stages) {
            s.0 += t_max;
            if let Some(t_k) = t_k {
                s.1 += t_k;
                s.2 += t_max;
            }
        }
    }
    let (k, max_kk) = depths(v.n_docs);
    // A quantized segment's candidates are ranked by 8-bit scores, whose rounding ties
    // documents the float rerank tells apart: reranking only k of them leaves no room for the
    // ties at the k-th place. Calibration queries of several terms rarely tie, so such points
    // reached their targets there, and then on queries of one common term (hundreds of documents
    // at each impact) reached 0.94 at target 0.95 on debian (stop 31; 0.99 at k' = 1.5k). Only
    // the exact search reranks k.
    let quantized = matches!(v.impacts, crate::index::Impacts::U8(_));
    let mut points = Vec::new();
    for b in 0..BUCKETS.len() {
        if counts[b] == 0 {
            continue;
        }
        for (bi, &(beta, gamma)) in grid_cuts.iter().enumerate() {
            for (ri, &rerank) in RERANKS.iter().enumerate() {
                let i = bi * RERANKS.len() + ri;
                let params = ApproxParams { beta, gamma, rerank };
                if quantized && rerank <= 1.0 && params != ApproxParams::EXACT {
                    continue;
                }
                let mut cost = sums[b][0][i].2 + sums[b][1][i].2;
                if params != ApproxParams::EXACT {
                    // The stage at this depth: interpolated between its times at k' = k and
                    // at the deepest k'; the bucket's queries not timed at k take the ratio
                    // t_k / t_max of those that were (the sums are linear in each query's
                    // times, so this estimates the sum over all of them).
                    let (all_max, timed_k, timed_max) = stage_sums[b][bi];
                    let ratio = if timed_max > 0.0 { (timed_k / timed_max).min(1.0) } else { 1.0 };
                    let sum_k = timed_k + ratio * (all_max - timed_max);
                    let d = deeper(k, max_kk, rerank, v.n_docs);
                    cost += sum_k + (all_max - sum_k) * d;
                }
                let cost = cost / counts[b] as f64;
                // The exact search is exact by construction, not by a sample: no error.
                let (recall, recall_se) = if params == ApproxParams::EXACT {
                    (1.0, 0.0)
                } else {
                    recall_of_kinds(&[sums[b][0][i], sums[b][1][i]], &kind_counts[b])
                };
                points.push(CalibrationPoint { bucket: b, params, recall, recall_se, cost });
            }
        }
    }
    Calibration { points, queries: counts, pseudo, from_pseudo: [pseudo; 6] }
}

/// Tells the repeats among calibration queries apart from the distinct ones: a query of the
/// same terms as one seen, with its weights in the same proportions ([`same_proportions`]: a
/// copy, or a scaled copy), is a repeat.
#[derive(Debug, Default)]
pub struct Repeats {
    seen: std::collections::HashMap<Vec<u32>, Vec<Vec<f64>>>,
}

impl Repeats {
    /// Whether the query of `terms` (sorted, distinct) and `weights` is a query not seen yet;
    /// it is then remembered.
    pub fn is_new(&mut self, terms: &[u32], weights: &[f32]) -> bool {
        let p = proportions(weights);
        let same_terms = self.seen.entry(terms.to_vec()).or_default();
        if same_terms.iter().any(|o| same_proportions(o, &p)) {
            return false;
        }
        same_terms.push(p);
        true
    }
}

/// The number of distinct queries in `queries` (CSR, external term ids in any order, each once
/// in a query), as a calibration on them counts them
/// ([`Repeats`]; before the terms absent from a segment are dropped, which may merge more in
/// that segment). Errors as a search for a malformed query, naming it.
pub fn distinct_queries(queries: CsrRef<'_>) -> Result<usize> {
    let n = check_csr(&queries, "calibration queries")?;
    let mut seen = Repeats::default();
    let mut distinct = 0;
    for i in 0..n {
        let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
        let q = Query::new(QueryRef { terms: &queries.indices[a..b], weights: &queries.values[a..b] }, None, Some(i))?;
        distinct += usize::from(seen.is_new(q.terms(), q.weights()));
    }
    Ok(distinct)
}

/// The base-2 logarithms of a query's weights over its largest (a weight of 0 or less, or a
/// query without a positive weight: -inf); see [`same_proportions`].
pub fn proportions(weights: &[f32]) -> Vec<f64> {
    let max = weights.iter().fold(0.0f64, |m, &w| m.max(w as f64));
    weights.iter().map(|&w| if w > 0.0 && max > 0.0 { (w as f64 / max).log2() } else { f64::NEG_INFINITY }).collect()
}

/// Whether two queries of the same terms, of [`proportions`] `a` and `b`, have their weights in
/// the same proportions, to 2^-12 in base-2 logarithm (0.017%) for each: one is then a scaled
/// copy of the other (whose f32 products round apart by about 2^-23), ranks the documents
/// alike, and counts once in a calibration. A weight that differs by more, however small beside
/// the largest, tells queries apart (steps of 1/1024 of the largest merged 40 queries whose 150
/// light terms differed by 0.5% each). A tolerance, not a rounding: a rounding puts two copies
/// on either side of a step now and then. `sparsedex.SparseIndex.calibrate` counts the repeats
/// it warns of alike.
pub fn same_proportions(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x - y).abs() <= 1.0 / 4096.0)
}

/// The mean of `n` (≥ 1) recalls in `[0, 1]` whose sum is `sum` and sum of squares `sum2`, and
/// its standard error: the sample standard deviation over `sqrt(n)`, but at least `0.5 / n`
/// (a sample whose recalls happen to be equal has no spread of its own, yet one more query
/// missing half of its top 10 would move the mean by that much), and 1, the largest a recall
/// can have, for a single query.
fn mean_and_se(sum: f64, sum2: f64, n: usize) -> (f64, f64) {
    let nf = n as f64;
    let mean = (sum / nf).clamp(0.0, 1.0);
    if n < 2 {
        return (mean, 1.0);
    }
    let var = ((sum2 - nf * mean * mean) / (nf - 1.0)).max(0.0);
    (mean, (var / nf).sqrt().max(0.5 / nf).min(1.0))
}

/// A point's recall on a bucket whose calibration queries are of several kinds (sums of
/// recall, of its square and of cost per kind, and the kind's number of queries): the mean and
/// standard error ([`mean_and_se`]) of the kind whose lower bound (mean less [`MARGIN_SE`]
/// standard errors) is the lowest, so that a point reaches a target only when it reaches it
/// on every kind. Kinds without queries are skipped.
fn recall_of_kinds(sums: &[(f64, f64, f64)], counts: &[usize]) -> (f64, f64) {
    sums.iter()
        .zip(counts)
        .filter(|(_, &n)| n > 0)
        .map(|(s, &n)| mean_and_se(s.0, s.1, n))
        .min_by(|x, y| {
            (x.0 - MARGIN_SE * x.1).partial_cmp(&(y.0 - MARGIN_SE * y.1)).unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or((0.0, 1.0))
}

/// Every document of `n` but those of `docs`.
fn all_but(n: u32, docs: &[u32]) -> DocSet {
    let mut words = vec![u64::MAX; (n as usize).div_ceil(64)];
    for &d in docs {
        words[(d >> 6) as usize] &= !(1u64 << (d & 63));
    }
    DocSet::from_words(words, n).expect("sized for n")
}

/// The pseudo-queries of a calibration without queries, as external-id queries, per bucket
/// (where rows are long enough):
/// - [`PSEUDO_PER_BUCKET`] single-topic ones: the stored row of a random document cut to the
///   bucket's length (its heaviest terms), searched among every other document;
/// - from bucket [`MULTI_FROM_BUCKET`] on (33 terms and more), [`MULTI_PER_BUCKET`]
///   multi-topic ones: the sum of the rows of 2, 4, 8 or 16 random documents
///   ([`MULTI_DOCS`], in turn; at most one per [`MULTI_TERMS_PER_DOC`] of the
///   bucket's terms) cut to the bucket's length, searched among every document but
///   those. A long query may be several topics (a query expanded from several documents, a
///   conversation, a union of queries), whose top k spreads over several clusters of
///   documents; the top k of one document's row is one cluster. Calibrated on single rows
///   alone, unions of 20 real debian queries reached recall 0.825 at target 0.90 and unions
///   of 5 0.665 (0.888 at 0.97), while documents used as queries reached 0.954 and more.
fn pseudo_queries(v: &IndexView<'_>, seed: u64) -> Vec<CalQuery> {
    let Some(fwd) = v.forward else { return Vec::new() };
    let n = v.n_docs as usize;
    let mut rng = seed | 1;
    let mut next = move || crate::synth::xorshift64(&mut rng);
    let mut out = Vec::new();
    // The row of document `d` as (external term, weight).
    let row = |d: usize| -> Vec<(u32, f32)> {
        let (a, e) = (fwd.indptr[d] as usize, fwd.indptr[d + 1] as usize);
        fwd.terms.range(a, e).zip(&fwd.values[a..e]).map(|(t, &x)| (v.external_term(t), x)).collect()
    };
    let cut = |mut entries: Vec<(u32, f32)>, len: usize| {
        entries.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap_or(std::cmp::Ordering::Equal).then(x.0.cmp(&y.0)));
        entries.truncate(len);
        entries.sort_unstable_by_key(|e| e.0);
        entries
    };
    for (b, &len) in PSEUDO_LEN.iter().enumerate() {
        let lo = if b == 0 { 1 } else { BUCKETS[b - 1] + 1 };
        let mut got = 0;
        for _ in 0..PSEUDO_PER_BUCKET * 20 {
            if got == PSEUDO_PER_BUCKET || n == 0 {
                break;
            }
            let d = (next() % n as u64) as usize;
            let (a, e) = (fwd.indptr[d] as usize, fwd.indptr[d + 1] as usize);
            if e - a < lo {
                continue;
            }
            let entries = cut(row(d), len);
            out.push(CalQuery {
                terms: entries.iter().map(|e| e.0).collect(),
                weights: entries.iter().map(|e| e.1).collect(),
                exclude: vec![d as u32],
                multi: false,
            });
            got += 1;
        }
        if b < MULTI_FROM_BUCKET {
            continue;
        }
        let sizes: Vec<usize> =
            MULTI_DOCS.iter().copied().filter(|&m| m == MULTI_DOCS[0] || m * MULTI_TERMS_PER_DOC <= len).collect();
        let mut got = 0;
        for i in 0..MULTI_PER_BUCKET * 20 {
            if got == MULTI_PER_BUCKET || n < 2 {
                break;
            }
            let m = sizes[i % sizes.len()].min(n);
            let mut docs: Vec<u32> = Vec::with_capacity(m);
            while docs.len() < m {
                let d = (next() % n as u64) as u32;
                if !docs.contains(&d) {
                    docs.push(d);
                }
            }
            let mut entries: Vec<(u32, f32)> = docs.iter().flat_map(|&d| row(d as usize)).collect();
            entries.sort_unstable_by_key(|e| e.0);
            let mut merged: Vec<(u32, f32)> = Vec::with_capacity(entries.len());
            for (t, x) in entries {
                match merged.last_mut() {
                    Some(last) if last.0 == t => last.1 += x,
                    _ => merged.push((t, x)),
                }
            }
            if merged.len() < lo {
                continue;
            }
            let entries = cut(merged, len);
            docs.sort_unstable();
            out.push(CalQuery {
                terms: entries.iter().map(|e| e.0).collect(),
                weights: entries.iter().map(|e| e.1).collect(),
                exclude: docs,
                multi: true,
            });
            got += 1;
        }
    }
    out
}

/// Evaluate the grid on one calibration query: its bucket and, per (beta, rerank) in
/// row-major order, (recall@k, cost: see [`eval_grid`]). `None` if the query has no exact hit.
///
/// Recall is measured against the scores approximate search returns: for quantized vector
/// kinds ([`Kind::FLOAT_RERANK`]) the float dot product of the stored vectors, whose exact
/// top-k is the float exact search's ([`crate::search::rerank`], timed as the exact point's
/// cost); for other kinds their own exact scores. (Until stop 25 the float top-k was taken
/// among the top 100 by quantized scores, which on a coarse grid, one weight a hundred times
/// the others, missed float top-10 documents: calibration reported recall 1 on queries that
/// approximate search answered with 0.92 at target 0.99, newcomer15 H1.)
fn eval_query<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    query: &Query,
    layer: Option<&super::layer::HighLayer>,
    time_k: bool,
    scratch: &mut Scratch,
) -> Option<QueryGrid> {
    let fwd = v.forward?;
    let k = depths(v.n_docs).0;
    if k == 0 {
        return None;
    }
    if K::FLOAT_RERANK {
        // What approximate search does at `ApproxParams::EXACT`: the float exact search.
        let t = Clock::start();
        let exact = crate::search::rerank::search::<K>(
            v,
            arrays,
            fwd,
            plan.clone(),
            query,
            k,
            Algorithm::Auto,
            None,
            None,
            scratch,
        );
        let exact_us = t.elapsed_ns() / 1e3;
        if exact.len() < k {
            return None;
        }
        Some(eval_grid(
            v,
            arrays,
            plan,
            query,
            k,
            exact[k - 1].1,
            exact_us,
            layer,
            time_k,
            scratch,
            |scratch, cands| {
                let rows = FloatRowScorer::new(v, fwd, query, scratch);
                let full = cands.iter().map(|&(d, _)| (d, rows.score(d as usize))).collect();
                rows.finish(scratch);
                full
            },
        ))
    } else {
        let t = Clock::start();
        let truth = exact_raw::<K>(v, arrays, plan, k, Algorithm::Auto, None, scratch);
        let exact_us = t.elapsed_ns() / 1e3;
        if truth.len() < k {
            return None;
        }
        Some(eval_grid(
            v,
            arrays,
            plan,
            query,
            k,
            truth[k - 1].1,
            exact_us,
            layer,
            time_k,
            scratch,
            |scratch, cands| {
                let rows = RowScorer::new(v, fwd, plan, scratch);
                let full = cands.iter().map(|&(d, _)| (d, rows.score(d as usize))).collect();
                rows.finish(scratch);
                full
            },
        ))
    }
}

/// `(k, max_kk)` of a segment of `n_docs` documents: the calibration's k ([`CAL_K`], at most
/// the documents) and its deepest `k'` (that of the largest of [`RERANKS`]).
fn depths(n_docs: u32) -> (usize, usize) {
    let k = CAL_K.min(n_docs as usize);
    (k, rerank_depth(k, RERANKS[RERANKS.len() - 1], n_docs as usize))
}

/// Where `rerank`'s `k'` ([`rerank_depth`], as approximate search reranks) lies between `k`
/// (0) and the deepest, `max_kk` (1), for a segment of `n_docs` documents.
fn deeper(k: usize, max_kk: usize, rerank: f32, n_docs: u32) -> f64 {
    if max_kk > k {
        (rerank_depth(k, rerank, n_docs as usize) - k) as f64 / (max_kk - k) as f64
    } else {
        0.0
    }
}

/// The candidate stage is timed at `k' = k` on one in this many calibration queries only (at
/// the deepest `k'` on every one, whose candidates are reranked). Timing it at `k'= k` was a
/// search of its own per query and cut, 30% of a calibration (debian, 60k documents: 4.5 of
/// 15 s on one core); the other queries take the ratio `t_k / t_max` of the timed ones of their
/// bucket and cut (see [`calibrate`]).
const TIME_K_EVERY: u64 = 4;

/// The grid of one calibration query ([`eval_grid`]).
struct QueryGrid {
    /// Its bucket.
    bucket: usize,
    /// Per (cut, rerank) in row-major order: (recall@k, cost besides the candidate stage: the
    /// rerank's, or the exact search's at [`ApproxParams::EXACT`]).
    points: Vec<(f64, f64)>,
    /// Per cut: the candidate stage's time at the deepest `k'`, and at `k' = k` when timed.
    stages: Vec<(f64, Option<f64>)>,
}

/// The grid of one calibration query whose reference k-th score is `theta`, with candidates
/// rescored by `rescore` (in the score type of the reference); `exact_us` is the time the exact
/// search took on the query; `time_k`: whether to time the candidate stage at `k' = k`.
///
/// Costs are measured times, in microseconds. For each cut, the candidate stage is timed at
/// `k' = k` and at the deepest `k'` of the grid and interpolated linearly between them (at
/// `k' = k` on a sample of the queries, [`TIME_K_EVERY`]), and the rerank costs its measured
/// time per candidate; [`ApproxParams::EXACT`] costs `exact_us`, at recall 1 (approximate
/// search runs the exact search there). They replace a model that
/// counted postings plus a fixed cost per reranked row, whose error depended on the corpus:
/// one more candidate was measured at 385 postings on WordNet glosses (rows of 40 entries),
/// 618 on debian (150) and 740 on synthetic 100k (120, a pruning candidate stage), so that
/// model chose deep reranks where rows were short (approximate search at 0.99 on WordNet took
/// 0.112 ms against the exact search's 0.076 in `examples/approx_grid.rs`, 0.148 against 0.081
/// in the harness) and, on calibration queries given, points that
/// were cheaper by the model but slower by the clock (synthetic 100k: 0.106 against 0.088 ms at
/// 0.95). Times are the calibrating thread's CPU time ([`Clock`], as auto's race): on a busy
/// machine wall-clock times also counted other processes' time whenever the thread was
/// descheduled, and WordNet glosses calibrated beside two other jobs (load 4) chose points whose
/// recall on real queries was 0.963 at target 0.97 (a quiet calibration's points: 0.979); with
/// CPU time three calibrations under that load chose the quiet calibration's points at all three
/// targets (`examples/approx_grid.rs`, stop 25). Times still depend on the machine (caches
/// shared with other jobs), so two calibrations of one segment can choose differently between
/// points of nearly equal cost; recalls do not change.
///
/// The cuts' candidates overlap (most of one cut's are another's), so each document is
/// rescored once per query: the time per candidate is the time of the rescoring done over the
/// documents rescored (until stop 52 every cut rescored all of its candidates, 10% of a
/// calibration on debian).
#[allow(clippy::too_many_arguments)]
fn eval_grid<K: Kind, S: Score>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    query: &Query,
    k: usize,
    theta: S,
    exact_us: f64,
    layer: Option<&super::layer::HighLayer>,
    time_k: bool,
    scratch: &mut Scratch,
    rescore: impl Fn(&mut Scratch, &[(u32, K::S)]) -> Vec<(u32, S)>,
) -> QueryGrid {
    let n_terms = super::query_terms_in(v, query);
    let bucket = BUCKETS.iter().position(|&m| n_terms <= m).unwrap_or(BUCKETS.len() - 1);
    let max_kk = depths(v.n_docs).1;
    let us = |t: Clock| t.elapsed_ns() / 1e3;
    let grid_cuts = cuts(layer.is_some());
    // Scores of the documents rescored so far (every cut's candidates are a subset of the
    // segment; a hash of the doc id alone suffices).
    let mut known: std::collections::HashMap<u32, S, std::hash::BuildHasherDefault<DocHasher>> =
        std::collections::HashMap::default();
    let (mut rescore_us, mut rescored) = (0.0f64, 0usize);
    let mut fresh: Vec<(u32, K::S)> = Vec::new();
    let mut stages = Vec::with_capacity(grid_cuts.len());
    // per cut: the recall of each rerank depth, and the number of candidates
    let mut recalls: Vec<(Vec<f64>, usize)> = Vec::with_capacity(grid_cuts.len());
    for &(beta, gamma) in &grid_cuts {
        // The candidate stage exactly as approximate search runs it (`super::run`: layered, or
        // the cut requantized to 16 bits where it does), so that the recall and the times
        // measured are those of the searches made.
        let kept = cut_terms(plan, arrays, beta);
        let cut = super::candidate_plan(v, plan, arrays, &kept);
        let stage = |kk: usize, scratch: &mut Scratch| match layer.filter(|_| gamma > 0.0) {
            Some(l) => K::layered_candidates(v, arrays, plan, &kept, &cut, l, gamma, kk, scratch)
                .map_or_else(|| exact_raw::<K>(v, arrays, &cut, kk, Algorithm::Auto, None, scratch), |c| c.0),
            None => exact_raw::<K>(v, arrays, &cut, kk, Algorithm::Auto, None, scratch),
        };
        // The candidate stage timed at k' = k (on a sample of the queries) and at the deepest
        // k', the rerank per candidate.
        let t_k = time_k.then(|| {
            let t = Clock::start();
            std::hint::black_box(stage(k, scratch));
            us(t)
        });
        let t = Clock::start();
        let cands = stage(max_kk, scratch);
        let t_max = us(t);
        stages.push((t_max.max(t_k.unwrap_or(0.0)), t_k));
        fresh.clear();
        fresh.extend(cands.iter().filter(|c| !known.contains_key(&c.0)));
        if !fresh.is_empty() {
            let t = Clock::start();
            let scored = rescore(scratch, &fresh);
            rescore_us += us(t);
            rescored += scored.len();
            known.extend(scored);
        }
        let full: Vec<(u32, S)> = cands.iter().map(|&(d, _)| (d, known[&d])).collect();
        let mut rs = Vec::with_capacity(RERANKS.len());
        for &rerank in &RERANKS {
            let kk = rerank_depth(k, rerank, v.n_docs as usize);
            let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), S::default()).with_ties(plan.ties.as_ref());
            for &(d, s) in full.iter().take(kk) {
                top.push(d, s);
            }
            let hits = top.into_sorted();
            rs.push(hits.iter().filter(|h| h.1 >= theta).count() as f64 / k as f64);
        }
        recalls.push((rs, cands.len()));
    }
    let per_row = rescore_us / rescored.max(1) as f64;
    let mut points = Vec::with_capacity(grid_cuts.len() * RERANKS.len());
    for (&(beta, gamma), (rs, n_cands)) in grid_cuts.iter().zip(&recalls) {
        for (&rerank, &r) in RERANKS.iter().zip(rs) {
            if (ApproxParams { beta, gamma, rerank }) == ApproxParams::EXACT {
                // ApproxParams::EXACT: approximate search runs the exact search there.
                points.push((1.0, exact_us));
            } else {
                points.push((r, per_row * rerank_depth(k, rerank, v.n_docs as usize).min(*n_cands) as f64));
            }
        }
    }
    QueryGrid { bucket, points, stages }
}

/// Hashes a document id for [`eval_grid`]'s map of rescored documents (Fibonacci hashing:
/// the ids are distinct small integers, SipHash's protection against chosen keys is not needed).
#[derive(Default)]
struct DocHasher(u64);

impl std::hash::Hasher for DocHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, d: u32) {
        self.0 = (d as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(recall: f64, recall_se: f64, cost: f64, beta: f32) -> CalibrationPoint {
        CalibrationPoint { bucket: 2, params: ApproxParams { beta, gamma: 0.0, rerank: 4.0 }, recall, recall_se, cost }
    }

    #[test]
    fn a_point_must_reach_the_target_by_the_margin() {
        // The cheap point's mean reaches 0.97 but not by 1.5 standard errors: the dearer one,
        // whose estimate is tight, is chosen (without the margin the cheap one was).
        let c = Calibration {
            points: vec![point(0.975, 0.01, 100.0, 0.5), point(0.99, 0.002, 200.0, 0.7)],
            queries: [0, 0, 150, 0, 0, 0],
            pseudo: false,
            from_pseudo: [false; 6],
        };
        let (p, r) = c.choose(0.97, 20);
        assert_eq!((p.beta, r), (0.7, 0.99));
        // A lower target lets the cheap point through.
        assert_eq!(c.choose(0.95, 20).0.beta, 0.5);
        // No point reaches 0.999 by the margin: the point of the highest lower bound.
        assert_eq!(c.choose(0.999, 20).0.beta, 0.7);
        // ... not the highest mean, when a noisy point has it: 0.995 +- 0.02 against 0.99 +- 0.002.
        let noisy = Calibration {
            points: vec![point(0.995, 0.02, 100.0, 0.5), point(0.99, 0.002, 200.0, 0.7)],
            queries: [0, 0, 150, 0, 0, 0],
            pseudo: false,
            from_pseudo: [false; 6],
        };
        assert_eq!(noisy.choose(0.999, 20).0.beta, 0.7);
    }

    /// Scaled copies of a query (the same ranking) have its proportions; other weights do not.
    #[test]
    fn distinct_queries_counts_copies_and_scaled_copies_once() {
        // 0: a query; 1: its copy, terms in another order; 2: scaled by 3; 3: one weight 1% off;
        // 4: other terms; 5: a copy of 4 with a zero weight more (dropped, as a search does)
        let indptr = [0u64, 2, 4, 6, 8, 9, 11];
        let indices = [1u32, 5, 5, 1, 1, 5, 1, 5, 7, 7, 2];
        let values = [0.5f32, 2.0, 2.0, 0.5, 1.5, 6.0, 0.505, 2.0, 1.0, 1.0, 0.0];
        let q = CsrRef { indptr: &indptr, indices: &indices, values: &values };
        assert_eq!(distinct_queries(q).unwrap(), 3);
        let mut r = Repeats::default();
        assert!(r.is_new(&[1, 5], &[0.5, 2.0]));
        assert!(!r.is_new(&[1, 5], &[0.25, 1.0]));
        assert!(r.is_new(&[1, 6], &[0.25, 1.0]));
        // a malformed query is named
        let bad = [0.5f32, f32::NAN, 2.0, 0.5, 1.5, 6.0, 0.505, 2.0, 1.0, 1.0, 0.0];
        let e = distinct_queries(CsrRef { indptr: &indptr, indices: &indices, values: &bad }).unwrap_err();
        assert!(e.to_string().starts_with("query 0:"), "{e}");
    }

    #[test]
    fn scaled_copies_have_the_same_proportions() {
        let w = [0.731f32, 2.5, 0.05, 1.0, 3.999];
        let p = proportions(&w);
        for s in [0.25f32, 0.7, 1.3, 3.0, 7.5, 1000.0, 1e-20] {
            let scaled: Vec<f32> = w.iter().map(|x| x * s).collect();
            assert!(same_proportions(&proportions(&scaled), &p), "scale {s}");
        }
        assert!(!same_proportions(&proportions(&[0.731, 2.5, 0.06, 1.0, 3.999]), &p));
        // a light weight 0.5% heavier is another query, however light beside the largest
        assert!(!same_proportions(&proportions(&[1.0, 3e-3]), &proportions(&[1.0, 3e-3 * 1.005])));
        assert!(same_proportions(&proportions(&[]), &proportions(&[])));
    }

    /// Two calibration queries that both reach recall 1 at a cheap point: their standard
    /// error floor (0.25) keeps that point from being chosen for 0.97.
    #[test]
    fn two_equal_queries_do_not_settle_a_target() {
        let (r, se) = mean_and_se(2.0, 2.0, 2);
        let c = Calibration {
            points: vec![point(r, se, 100.0, 0.5), point(1.0, 0.0, 900.0, 1.0)],
            queries: [0, 0, 2, 0, 0, 0],
            pseudo: false,
            from_pseudo: [false; 6],
        };
        assert_eq!(c.choose(0.97, 20).0.beta, 1.0);
    }

    /// A bucket of single-topic queries that reach the target and multi-topic ones that miss
    /// it: the point's recall is the multi-topic queries' (pooled, 0.9125 +- 0.0055 passed 0.90).
    #[test]
    fn a_point_reaches_a_target_only_on_every_kind_of_query() {
        let kind = |rs: &[f64]| (rs.iter().sum::<f64>(), rs.iter().map(|r| r * r).sum::<f64>(), 0.0);
        let single = kind(&[1.0, 1.0, 0.9, 1.0].repeat(25)); // 0.975
        let multi = kind(&[0.8, 0.9, 0.9, 0.8].repeat(25)); // 0.85
        let (r, se) = recall_of_kinds(&[single, multi], &[100, 100]);
        assert_eq!((r, se), mean_and_se(multi.0, multi.1, 100));
        let pooled = mean_and_se(single.0 + multi.0, single.1 + multi.1, 200);
        assert!(pooled.0 - MARGIN_SE * pooled.1 >= 0.9, "{pooled:?}");
        assert!(r - MARGIN_SE * se < 0.9);
        // The kind least sure to reach a target, not the lowest mean: 10 queries at 0.9 have
        // a larger error than 100 at 0.89.
        let few = kind(&[0.8, 1.0].repeat(5));
        let many = kind(&[0.78, 1.0].repeat(50));
        assert_eq!(recall_of_kinds(&[few, many], &[10, 100]), mean_and_se(few.0, few.1, 10));
        // A kind without queries (calibration queries given: single kind) is skipped.
        assert_eq!(recall_of_kinds(&[single, (0.0, 0.0, 0.0)], &[100, 0]), mean_and_se(single.0, single.1, 100));
    }

    /// Multi-topic pseudo-queries: the rows of 2-16 documents summed, cut to the bucket's
    /// length, every source document excluded; only in the buckets from
    /// [`MULTI_FROM_BUCKET`] on, beside the single-document ones.
    #[test]
    fn multi_topic_pseudo_queries_sum_their_documents_and_exclude_them_all() {
        use crate::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
        let p = crate::synth::SynthParams { n_docs: 3_000, n_queries: 1, seed: 4, ..Default::default() };
        let (docs, _) = crate::synth::generate(&p);
        let index = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions {
                n_terms: Some(p.vocab_size),
                quantization: Quantization::U8 { scale: None },
                store_vectors: true,
                reorder: Reorder::Signature,
            },
        )
        .unwrap()
        .index;
        let v = index.view();
        let fwd = v.forward.unwrap();
        // Document d's weight of external term t (0 when absent).
        let weight = |d: u32, t: u32| {
            let (a, e) = (fwd.indptr[d as usize] as usize, fwd.indptr[d as usize + 1] as usize);
            fwd.terms.range(a, e).zip(&fwd.values[a..e]).find(|(x, _)| v.external_term(*x) == t).map_or(0.0, |p| *p.1)
        };
        let qs = pseudo_queries(&v, 0x5eed);
        let mut multi = [0usize; 6];
        let mut sizes = std::collections::BTreeSet::new();
        for q in &qs {
            let b = BUCKETS.iter().position(|&m| q.terms.len() <= m).unwrap();
            assert!(q.terms.len() <= PSEUDO_LEN[b]);
            assert!(q.terms.windows(2).all(|w| w[0] < w[1]), "terms sorted, distinct");
            assert!(q.exclude.windows(2).all(|w| w[0] < w[1]), "sources sorted, distinct");
            if !q.multi {
                assert_eq!(q.exclude.len(), 1);
                continue;
            }
            multi[b] += 1;
            sizes.insert(q.exclude.len());
            assert!(
                q.exclude.len() <= (PSEUDO_LEN[b] / MULTI_TERMS_PER_DOC).max(2),
                "{} sources, {} terms",
                q.exclude.len(),
                PSEUDO_LEN[b]
            );
            assert!(b >= MULTI_FROM_BUCKET, "{} terms", q.terms.len());
            for (&t, &w) in q.terms.iter().zip(&q.weights) {
                let sum: f32 = q.exclude.iter().map(|&d| weight(d, t)).sum();
                assert!((sum - w).abs() <= 1e-5 * sum, "term {t}: {w} is the sum of its sources' {sum}");
            }
            // the heaviest terms of the sum: no term left out outweighs the lightest kept one
            let lightest = q.weights.iter().copied().fold(f32::INFINITY, f32::min);
            for &d in &q.exclude {
                let (a, e) = (fwd.indptr[d as usize] as usize, fwd.indptr[d as usize + 1] as usize);
                for t in fwd.terms.range(a, e).map(|x| v.external_term(x)) {
                    if q.terms.binary_search(&t).is_err() {
                        let sum: f32 = q.exclude.iter().map(|&d| weight(d, t)).sum();
                        assert!(sum <= lightest * (1.0 + 1e-5), "term {t} ({sum}) left out, {lightest} kept");
                    }
                }
            }
        }
        assert_eq!(&multi[MULTI_FROM_BUCKET..], &[MULTI_PER_BUCKET; 6 - MULTI_FROM_BUCKET]);
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), MULTI_DOCS.to_vec());
        // The calibration evaluates them, excluded documents and all.
        let c = calibrate(&index, None, 0x5eed, false, &Default::default(), None);
        assert!(c.queries[BUCKETS.len() - 1] > MULTI_PER_BUCKET, "{:?}", c.queries);
    }

    #[test]
    fn standard_error_of_the_mean_recall() {
        // 40 recalls: the sample's own standard error (above the floor 0.5 / 40).
        let rs: Vec<f64> = [1.0, 0.9, 1.0, 0.8].repeat(10);
        let (sum, sum2) = (rs.iter().sum::<f64>(), rs.iter().map(|r| r * r).sum::<f64>());
        let (m, se) = mean_and_se(sum, sum2, rs.len());
        assert!((m - 0.925).abs() < 1e-12);
        let var = rs.iter().map(|r| (r - 0.925) * (r - 0.925)).sum::<f64>() / 39.0;
        assert!((se - (var / 40.0).sqrt()).abs() < 1e-12, "{se}");
        // 4 of them: the floor 0.5 / 4 is above their own 0.048.
        assert_eq!(mean_and_se(3.7, 3.45, 4).1, 0.125);
        // Equal recalls: no spread of their own, the floor 0.5 / n; one query: the largest error.
        assert_eq!(mean_and_se(3.0, 3.0, 3), (1.0, 0.5 / 3.0));
        assert_eq!(mean_and_se(100.0, 100.0, 100), (1.0, 0.005));
        assert_eq!(mean_and_se(0.9, 0.81, 1), (0.9, 1.0));
    }
}
