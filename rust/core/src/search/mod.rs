//! Exact top-k traversal.
//!
//! Every algorithm returns exactly the exhaustive oracle's top-k on the same index: the same
//! doc ids and equal scores, ordered by score descending then by the documents' ids ascending
//! (their *tie key*, [`crate::index::Index::tie_rank`]; the internal doc id when the index
//! stores no ids). The order therefore does not depend on the internal layout (BP
//! reordering, merges, how documents are split into segments). For the
//! integer kinds scores are integers (query weights are quantized too, see [`plan`]), so
//! equality is exact by construction. Float BM25 sums in fixed point ([`fixed`]): exact too,
//! and independent of the order of the terms (BM25 term ids are each dictionary's own), so
//! shards and indexes fed the same documents in any order give bit-identical scores. For
//! float vectors every algorithm sums a document's f32 contributions in the same canonical
//! order (query terms by ascending term id, the caller's ids, as the term-at-a-time oracle
//! does), and pruning compares upper bounds with a relative slack that covers float rounding,
//! so no document that could enter is ever pruned.
//!
//! A query is validated once per search ([`plan::Query`]), then prepared per segment
//! ([`plan::Plan`]); BM25 segments are scored from collection statistics that come with the
//! query ([`bm25::Bm25Stats`]).

pub mod algorithm;
pub mod approx;
pub(crate) mod auto;
pub mod bm25;
pub mod bmm;
pub mod bmp;
pub mod bmt;
pub mod bmw;
pub mod common;
pub mod docset;
pub mod exhaustive;
pub mod explain;
pub mod fixed;
pub mod forward;
pub mod kernels;
pub mod kind;
pub mod maxscore;
pub mod plan;
pub mod rerank;
pub(crate) mod rows;
pub mod segments;
pub mod superblock;
pub mod taat_maxscore;
pub mod topk;
pub mod wand;

pub use algorithm::Algorithm;
pub use bm25::{Bm25F32Kind, Bm25Stats, Bm25U8Kind};
pub use docset::DocSet;
pub use kind::{F32Kind, Kind, Scratch, U8Kind};
pub use plan::{Plan, Query, QueryRef};
pub use segments::{
    effective_k_segments, search_segments, search_segments_batch, search_segments_batch_scores, search_segments_scores,
    Segment, SegmentHit,
};

use crate::index::{Index, IndexView};
use crate::vectors::{check_csr, CsrRef};
use crate::{Error, Result};
use kind::zeroed_acc;
use segments::{prepare, Prepared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

/// One result: internal doc id (row number) and score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Internal doc id.
    pub doc: u32,
    /// Score in weight units: the float32 dot product of the query and the stored vector (a
    /// u8 segment with stored vectors under [`Scores::Vectors`], the default; float indexes),
    /// the dot product of the query and the stored impacts (u8 segments under
    /// [`Scores::Impacts`] or without stored vectors), or the BM25 score.
    pub score: f32,
}

/// The scores an exact search returns for a quantized (u8) segment. Float and BM25 segments
/// have one arithmetic and ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scores {
    /// The float32 dot products of the stored vectors with the query, and the exact top-k by
    /// them (ties by id ascending): the u8 traversal finds candidates, the stored rows rank
    /// them, and a bound on the quantization error proves no other document could enter
    /// ([`rerank`]). The hits and scores of a float index over the same vectors. A u8 segment
    /// without stored vectors (`store_vectors=false`) cannot: it returns [`Scores::Impacts`].
    #[default]
    Vectors,
    /// The 8-bit scores: the exact top-k of the dot products of the query with the stored u8
    /// impacts (in weight units). The cheapest exact search over impacts (no rerank), for
    /// callers who rank by the index's own arithmetic or measure the traversal alone.
    Impacts,
}

/// Evaluate `$body` with `$K` the scoring kind of view `$v` and `$a` its impact arrays.
macro_rules! with_kind {
    ($v:expr, |$K:ident, $a:ident| $body:expr) => {{
        let v: &$crate::index::IndexView<'_> = $v;
        match v.impacts {
            $crate::index::Impacts::U8($a) => {
                type $K = $crate::search::kind::U8Kind;
                $body
            }
            $crate::index::Impacts::F32($a) => {
                type $K = $crate::search::kind::F32Kind;
                $body
            }
            $crate::index::Impacts::Bm25($a) if v.bm25.is_some_and(|m| m.params.quantized) => {
                type $K = $crate::search::bm25::Bm25U8Kind;
                $body
            }
            $crate::index::Impacts::Bm25($a) => {
                type $K = $crate::search::bm25::Bm25F32Kind;
                $body
            }
        }
    }};
}
pub(crate) use with_kind;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Run `f` with this thread's scratch space. Searches leave its accumulators all zero when they
/// return; one that panics midway (caught at the Python boundary) leaves them dirty, and the
/// next search on the thread would add into stale scores. So the scratch is marked in use
/// while `f` runs, and a use that finds the mark still set (a panic unwound through it) starts
/// from a fresh scratch space (review25 L6).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        if s.in_use {
            *s = Scratch::default();
        }
        s.in_use = true;
        let out = f(&mut s);
        s.in_use = false;
        out
    })
}

/// Exact top-`k` of a prepared plan with `algo` (raw scores of the plan's kind), using
/// `scratch` for every buffer. An approximate `algo` runs the exact auto rule here: the
/// approximate path starts one level up ([`approx::search_one`]).
pub(crate) fn exact_raw<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    algo: Algorithm,
    race: Option<&auto::Race>,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    match algo {
        Algorithm::Exhaustive => exhaustive::search::<K>(v, arrays, plan, k, scratch),
        Algorithm::MaxScore => maxscore::search::<K>(v, arrays, plan, k),
        Algorithm::Wand => wand::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxWand => bmw::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxMaxScore => bmm::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxPruning => bmp::search::<K>(v, arrays, plan, k, scratch),
        Algorithm::BlockMaxTaat => bmt::search::<K>(v, arrays, plan, k, scratch),
        Algorithm::SuperblockPruning => superblock::search::<K>(v, arrays, plan, k, scratch),
        Algorithm::TaatMaxScore => taat_maxscore::search::<K>(v, arrays, plan, k, scratch),
        Algorithm::Auto | Algorithm::Approximate(_) => auto::run::<K>(v, arrays, plan, k, race, scratch),
    }
}

fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    algo: Algorithm,
    race: &auto::Race,
) -> Vec<Hit> {
    let raw = with_scratch(|s| exact_raw::<K>(v, arrays, plan, k, algo, Some(race), s));
    raw.into_iter().map(|(doc, s)| Hit { doc, score: K::to_f32(s, plan.norm) }).collect()
}

/// The number of hits a search for `k` can return: `k` capped at the number of documents
/// (at least 1), so that a huge `k` never becomes an allocation. Errors if `k` is 0.
pub fn effective_k(index: &Index, k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::InvalidArgument("k must be at least 1".into()));
    }
    Ok(k.min(index.n_docs().max(1) as usize))
}

/// Exact top-`k` of one query (BM25 indexes: under the index's own statistics).
pub fn search(index: &Index, q: QueryRef<'_>, k: usize, algo: Algorithm) -> Result<Vec<Hit>> {
    search_with(index, q, k, algo, None, None)
}

/// Exact top-`k` of one query among the documents in `allowed` (all when `None`): the true
/// top-k of the allowed documents, as the exhaustive scorer restricted to them finds it.
pub fn search_filtered(
    index: &Index,
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    allowed: Option<&DocSet>,
) -> Result<Vec<Hit>> {
    search_with(index, q, k, algo, allowed, None)
}

/// [`search_filtered`] of a BM25 index under `stats` (the index's own statistics when `None`;
/// ignored by other kinds).
pub fn search_with(
    index: &Index,
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    allowed: Option<&DocSet>,
    stats: Option<&Bm25Stats>,
) -> Result<Vec<Hit>> {
    search_with_scores(index, q, k, algo, allowed, stats, Scores::default())
}

/// [`search_with`] returning `scores` (exact algorithms on u8 segments; see [`Scores`]).
pub fn search_with_scores(
    index: &Index,
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    allowed: Option<&DocSet>,
    stats: Option<&Bm25Stats>,
    scores: Scores,
) -> Result<Vec<Hit>> {
    let k = effective_k(index, k)?;
    check_allowed(index, allowed)?;
    let mut p = prepare(&[index], q, None, stats)?;
    p.scores = scores;
    if let Algorithm::Approximate(t) = algo {
        return Ok(approx::search_one(index, &p, k, t, allowed, None));
    }
    Ok(search_one_above(index, &p, k, algo, allowed, None))
}

/// Exact top-`k` of the documents in `allowed`, scored one by one from their stored vectors
/// (the plan [`Algorithm::Auto`] picks for selective filters), in the index's own arithmetic
/// (the 8-bit scores of a u8 index, [`Scores::Impacts`]). Errors if the index does not store
/// vectors.
pub fn search_forward(index: &Index, q: QueryRef<'_>, k: usize, allowed: &DocSet) -> Result<Vec<Hit>> {
    let k = effective_k(index, k)?;
    check_allowed(index, Some(allowed))?;
    let v = index.view();
    let fwd = v
        .forward
        .ok_or_else(|| Error::InvalidArgument("this index does not store vectors (store_vectors=false)".into()))?;
    let p = prepare(&[index], q, None, None)?;
    Ok(with_kind!(v, |K, _a| {
        let mut plan = Plan::<K>::new(v, &p.query, p.avgdl);
        plan.allowed = Some(allowed.clone());
        plan.ties = index.tie_rank().cloned();
        let raw = with_scratch(|s| forward::search::<K>(v, &fwd, &plan, k, &mut s.table));
        raw.into_iter().map(|(doc, s)| Hit { doc, score: K::to_f32(s, plan.norm) }).collect()
    }))
}

pub(crate) fn check_allowed(index: &Index, allowed: Option<&DocSet>) -> Result<()> {
    if let Some(a) = allowed {
        let need = (index.n_docs() as usize).div_ceil(64);
        if a.words().len() != need {
            return Err(Error::InvalidArgument(format!(
                "allowed-document set has {} words, this index of {} documents needs {need}",
                a.words().len(),
                index.n_docs()
            )));
        }
    }
    Ok(())
}

/// Top-`k` of a prepared query in one segment, among `allowed`, returning only documents that
/// score at least `floor` (weight units).
pub(crate) fn search_one_above(
    index: &Index,
    p: &Prepared,
    k: usize,
    algo: Algorithm,
    allowed: Option<&DocSet>,
    floor: Option<f32>,
) -> Vec<Hit> {
    let v = index.view();
    with_kind!(v, |K, a| {
        let mut plan = Plan::<K>::new(v, &p.query, p.avgdl);
        kernels::prefetch_term_meta(v, &a, plan.terms.iter().map(|pt| pt.term));
        plan.allowed = allowed.cloned();
        plan.ties = index.tie_rank().cloned();
        if K::FLOAT_RERANK && p.scores == Scores::Vectors {
            if let Some(fwd) = v.forward {
                let hits = with_scratch(|s| {
                    rerank::search::<K>(v, &a, fwd, plan, &p.query, k, algo, Some(index.auto_race()), floor, s)
                });
                return hits.into_iter().map(|(doc, score)| Hit { doc, score }).collect();
            }
        }
        if let Some(f) = floor {
            plan.floor = K::floor_below(f, plan.norm);
        }
        run::<K>(v, &a, &plan, k, algo, index.auto_race())
    })
}

/// Run `work` (a batch search) on `threads` threads; when `None`, as many as rayon's current
/// pool has (all cores by default). Each call runs on a pool of its own, taken from the idle
/// pools of its size (or started), never on rayon's global pool nor on a pool another batch is
/// using: a batch of long queries holds every worker of its pool until each query ends, and
/// any other work on that pool queued behind it. On the global pool that was every engine
/// call with parallel work (`refresh()` verifying a file's checksums waited 8-17 s behind a
/// batch of two 150,000-term queries, and the HTTP server answered nothing meanwhile:
/// helper-121); on one shared batch pool, every other batch (a one-query batch waited 7 s
/// behind such a batch in another thread: helper-122). Concurrent batches now share the cores
/// as threads do.
fn on_threads<T: Send>(threads: Option<usize>, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let n = match threads {
        None => rayon::current_num_threads().max(1),
        Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
        Some(n) => n,
    };
    let lease = PoolLease::take(n)?;
    lease.pool.as_ref().expect("a leased pool").install(work)
}

/// `query(i)` for every `i` in `0..nq`, in parallel on `threads` threads ([`on_threads`]).
/// The pool's threads do not see the calling thread's cancellation token: each query runs
/// under it, a cancelled batch starts no further query (Ctrl-C, helper-120), and it returns
/// `Cancelled` even when every query ended (one stopped midway returned what it had found).
pub(crate) fn batch<T: Send>(
    nq: usize,
    threads: Option<usize>,
    query: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    use rayon::prelude::*;
    let watch = crate::cancel::watch();
    let out = on_threads(threads, || {
        (0..nq)
            .into_par_iter()
            .map(|i| {
                watch.check()?;
                watch.scope(|| query(i))
            })
            .collect()
    })?;
    watch.check()?;
    Ok(out)
}

/// The idle batch pools of this process, by size, and their threads in all.
#[derive(Default)]
struct IdlePools {
    by_size: HashMap<usize, Vec<rayon::ThreadPool>>,
    threads: usize,
}

/// This process's idle batch pools ([`crate::par::PerProcess`]: a forked child never waits on
/// a registry lock a parent thread held at the fork, helper-123).
fn idle_pools() -> std::sync::MutexGuard<'static, IdlePools> {
    static POOLS: crate::par::PerProcess<Mutex<IdlePools>> = crate::par::PerProcess::new();
    POOLS.get(|| Mutex::new(IdlePools::default())).lock().unwrap_or_else(|e| e.into_inner())
}

/// The most threads idle batch pools keep in all (pools returned beyond it are stopped):
/// twice the cores, at least 16 (helper-123: 8 idle pools of every size made hundreds of
/// idle threads, each with its search scratch).
fn idle_threads_kept() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get()).max(8)
}

/// A batch pool in use, returned to the idle pools when dropped (also when the batch panics).
struct PoolLease {
    pool: Option<rayon::ThreadPool>,
    /// The process and the pool's size.
    key: (u32, usize),
}

impl PoolLease {
    fn take(threads: usize) -> Result<PoolLease> {
        let key = (std::process::id(), threads);
        {
            let mut idle = idle_pools();
            if let Some(p) = idle.by_size.get_mut(&threads).and_then(Vec::pop) {
                idle.threads -= threads;
                return Ok(PoolLease { pool: Some(p), key });
            }
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
        Ok(PoolLease { pool: Some(p), key })
    }
}

impl Drop for PoolLease {
    fn drop(&mut self) {
        let Some(p) = self.pool.take() else { return };
        if std::process::id() != self.key.0 {
            std::mem::forget(p); // leased before a fork(): its workers are not in this process
            return;
        }
        let mut idle = idle_pools();
        if idle.threads + self.key.1 <= idle_threads_kept() {
            idle.threads += self.key.1;
            idle.by_size.entry(self.key.1).or_default().push(p);
        }
    }
}

/// Exact top-`k` of every query of a CSR batch, in parallel on `threads` threads (all cores
/// when `None`), among the documents in `allowed` (all when `None`); BM25 indexes under
/// `stats` (covering every term of the batch), or their own statistics. Errors name the
/// offending query.
pub fn search_batch(
    index: &Index,
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
    allowed: Option<&DocSet>,
    stats: Option<&Bm25Stats>,
) -> Result<Vec<Vec<Hit>>> {
    search_batch_scores(index, queries, k, algo, threads, allowed, stats, Scores::default())
}

/// [`search_batch`] returning `scores` (exact algorithms on u8 segments; see [`Scores`]).
#[allow(clippy::too_many_arguments)]
pub fn search_batch_scores(
    index: &Index,
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
    allowed: Option<&DocSet>,
    stats: Option<&Bm25Stats>,
    scores: Scores,
) -> Result<Vec<Vec<Hit>>> {
    let k = effective_k(index, k)?;
    check_allowed(index, allowed)?;
    let nq = check_csr(&queries, "queries")?;
    batch(nq, threads, |i| {
        let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
        let q = QueryRef { terms: &queries.indices[a..b], weights: &queries.values[a..b] };
        let mut p = prepare(&[index], q, Some(i), stats)?;
        p.scores = scores;
        if let Algorithm::Approximate(t) = algo {
            return Ok(approx::search_one(index, &p, k, t, allowed, None));
        }
        Ok(search_one_above(index, &p, k, algo, allowed, None))
    })
}

#[cfg(test)]
mod scratch_tests {
    use super::*;

    /// A search that panics midway leaves no dirty accumulators to the next search on the
    /// thread; a search that returns keeps its buffers (no reset without a panic).
    #[test]
    fn a_panic_midway_leaves_no_dirty_accumulators() {
        let r = std::panic::catch_unwind(|| {
            with_scratch(|s| {
                s.acc_u32.resize(8, 0);
                s.acc_u32[3] = 7;
                s.acc_u16.resize(8, 0);
                s.acc_u16[2] = 5;
                panic!("midway")
            })
        });
        assert!(r.is_err());
        with_scratch(|s| assert!(s.acc_u32.iter().all(|&a| a == 0) && s.acc_u16.iter().all(|&a| a == 0)));
        with_scratch(|s| s.acc_u32.resize(16, 0));
        with_scratch(|s| assert_eq!(s.acc_u32.len(), 16));
    }
}
