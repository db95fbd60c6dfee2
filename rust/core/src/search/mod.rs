//! Exact top-k traversal.
//!
//! Every algorithm returns exactly the exhaustive oracle's top-k on the same index: the same
//! doc ids and equal scores, ordered by score descending then doc id ascending. For the
//! quantized kind scores are integers (query weights are quantized too, see [`plan`]), so
//! equality is exact by construction. For the float kind every algorithm sums a document's
//! contributions in the same canonical order (query terms by ascending term id, as the
//! term-at-a-time oracle does), and pruning compares upper bounds with a relative slack that
//! covers float rounding, so no document that could enter is ever pruned.

pub mod bmm;
pub mod bmp;
pub mod bmw;
pub mod common;
pub mod exhaustive;
pub mod explain;
pub mod forward;
pub mod maxscore;
pub mod plan;
pub mod taat_maxscore;
pub mod topk;
pub mod wand;

use crate::index::build::CsrRef;
use crate::index::{Impacts, Index, IndexView};
use crate::{Error, Result};
pub use plan::{Plan, QueryRef};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

/// One result: internal doc id (row number) and score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Internal doc id.
    pub doc: u32,
    /// Score (dot product of the query and the stored impacts, rescaled to weight units).
    pub score: f32,
}

/// A traversal algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Term-at-a-time over every posting of every query term; the oracle.
    Exhaustive,
    /// MaxScore (Turtle & Flood 1995).
    MaxScore,
    /// WAND (Broder et al. 2003).
    Wand,
    /// Block-Max WAND (Ding & Suel 2011).
    BlockMaxWand,
    /// Block-Max MaxScore (MaxScore with block-max bounds on the non-essential lists).
    BlockMaxMaxScore,
    /// Term-at-a-time MaxScore: accumulate the high-bound terms, then only probe the rest for
    /// surviving candidates.
    TaatMaxScore,
    /// Block-max pruning over 64-document blocks (Mallia, Suel & Tonellotto 2024).
    BlockMaxPruning,
    /// Chosen per query by [`choose`].
    Auto,
}

impl Algorithm {
    /// Every algorithm, by its canonical name.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::Exhaustive,
        Algorithm::MaxScore,
        Algorithm::Wand,
        Algorithm::BlockMaxWand,
        Algorithm::BlockMaxMaxScore,
        Algorithm::TaatMaxScore,
        Algorithm::BlockMaxPruning,
        Algorithm::Auto,
    ];
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Exhaustive => "exhaustive",
            Algorithm::MaxScore => "maxscore",
            Algorithm::Wand => "wand",
            Algorithm::BlockMaxWand => "bmw",
            Algorithm::BlockMaxMaxScore => "bmm",
            Algorithm::TaatMaxScore => "taat-maxscore",
            Algorithm::BlockMaxPruning => "bmp",
            Algorithm::Auto => "auto",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "exhaustive" | "taat" | "oracle" => Algorithm::Exhaustive,
            "maxscore" => Algorithm::MaxScore,
            "wand" => Algorithm::Wand,
            "bmw" | "block_max_wand" | "blockmaxwand" => Algorithm::BlockMaxWand,
            "bmm" | "block_max_maxscore" | "blockmaxmaxscore" => Algorithm::BlockMaxMaxScore,
            "taat-maxscore" | "taat_maxscore" | "tms" => Algorithm::TaatMaxScore,
            "bmp" | "block_max_pruning" => Algorithm::BlockMaxPruning,
            "auto" => Algorithm::Auto,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown algorithm '{s}' (choose one of: exhaustive, maxscore, wand, bmw, bmm, taat-maxscore, bmp, auto)"
                )))
            }
        })
    }
}

/// Score arithmetic of an impact kind.
pub trait Kind: 'static {
    /// Stored impact.
    type Imp: Copy + Default + PartialOrd + Send + Sync + fmt::Debug;
    /// Accumulated score.
    type S: Copy
        + Default
        + PartialOrd
        + std::ops::Add<Output = Self::S>
        + std::ops::AddAssign
        + Send
        + Sync
        + fmt::Debug;
    /// Query weight.
    type W: Copy + Send + Sync + fmt::Debug;
    /// Float kinds sum contributions in canonical order and prune with slack.
    const FLOAT: bool;
    /// Convert validated, positive query weights; returns the weights and the norm
    /// (see [`plan`] for the quantized rule).
    fn weights(ws: &[f32], index_scale: f32) -> (Vec<Self::W>, f32);
    /// This kind's accumulator buffer in the scratch space.
    fn acc(s: &mut Scratch) -> &mut Vec<Self::S>;
    /// This kind's doc-block bound and compact accumulator buffers.
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<Self::S>, &mut Vec<Self::S>);
    /// This kind's dense query-weight table in the scratch space.
    fn table(s: &mut Scratch) -> &mut Vec<Option<Self::W>>;
    /// The stored impact of a document weight `w` (as the builder derives it).
    fn impact_of(w: f32, scale: f32) -> Self::Imp;
    /// True for a zero query weight.
    fn w_is_zero(w: Self::W) -> bool;
    /// Contribution of one posting.
    fn mul(w: Self::W, i: Self::Imp) -> Self::S;
    /// True if no document whose score is at most `bound` can enter a collector whose
    /// threshold is `thr`, given DAAT order (equal scores lose to earlier docs).
    fn prune(bound: Self::S, thr: Self::S, slack: f32) -> bool;
    /// True if `bound` is certainly below `thr` (strict: a document whose score equals the
    /// threshold may still enter by doc id when documents are not visited in doc order).
    fn below(bound: Self::S, thr: Self::S, slack: f32) -> bool;
    /// Score in weight units.
    fn to_f32(s: Self::S, norm: f32) -> f32;
    /// The largest score whose weight-unit value is below `f` (zero if none): a document that
    /// beats it scores at least `f` in weight units.
    fn floor_below(f: f32, norm: f32) -> Self::S;
    /// The arrays of this kind, if the index has this kind.
    fn arrays<'a>(v: &IndexView<'a>) -> Option<crate::index::ImpactArrays<'a, Self::Imp>>;
}

/// Quantized kind: u8 impacts, u32 query weights, u32 scores (never overflow, see [`plan`]).
pub enum U8Kind {}
impl Kind for U8Kind {
    type Imp = u8;
    type S = u32;
    type W = u32;
    const FLOAT: bool = false;
    fn weights(ws: &[f32], index_scale: f32) -> (Vec<u32>, f32) {
        let max = ws.iter().copied().fold(0.0f64, |a, b| a.max(b as f64));
        let sum: f64 = ws.iter().map(|&w| w as f64).sum();
        if max <= 0.0 {
            return (vec![0; ws.len()], 1.0);
        }
        let budget = (u32::MAX as f64 / 255.0).floor() - ws.len() as f64;
        let q = (65535.0 / max).min(budget / sum);
        let out = ws.iter().map(|&w| (w as f64 * q).round() as u32).collect();
        (out, (q * index_scale as f64) as f32)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<u32> {
        &mut s.acc_u32
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<u32>, &mut Vec<u32>) {
        (&mut s.ub_u32, &mut s.small_u32)
    }
    fn table(s: &mut Scratch) -> &mut Vec<Option<u32>> {
        &mut s.table_u32
    }
    #[inline(always)]
    fn impact_of(w: f32, scale: f32) -> u8 {
        crate::index::build::quantize(w, scale)
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
        bound < thr
    }
    #[inline(always)]
    fn to_f32(s: u32, norm: f32) -> f32 {
        (s as f64 / norm as f64) as f32
    }
    fn floor_below(f: f32, norm: f32) -> u32 {
        if !(f > 0.0) || !(norm > 0.0) {
            return 0;
        }
        let mut s = ((f as f64) * (norm as f64)).floor().clamp(0.0, u32::MAX as f64) as u32;
        while s > 0 && Self::to_f32(s, norm) >= f {
            s -= 1;
        }
        while s < u32::MAX && Self::to_f32(s + 1, norm) < f {
            s += 1;
        }
        s
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<crate::index::ImpactArrays<'a, u8>> {
        match v.impacts {
            Impacts::U8(a) => Some(a),
            Impacts::F32(_) => None,
        }
    }
}

/// Float kind: f32 impacts, weights and scores.
pub enum F32Kind {}
impl Kind for F32Kind {
    type Imp = f32;
    type S = f32;
    type W = f32;
    const FLOAT: bool = true;
    fn weights(ws: &[f32], _index_scale: f32) -> (Vec<f32>, f32) {
        (ws.to_vec(), 1.0)
    }
    fn acc(s: &mut Scratch) -> &mut Vec<f32> {
        &mut s.acc_f32
    }
    fn ub_and_acc(s: &mut Scratch) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut s.ub_f32, &mut s.small_f32)
    }
    fn table(s: &mut Scratch) -> &mut Vec<Option<f32>> {
        &mut s.table_f32
    }
    #[inline(always)]
    fn impact_of(w: f32, _scale: f32) -> f32 {
        w
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
        if !(f > 0.0) || !f.is_finite() {
            return 0.0;
        }
        // the next f32 down (f > 0, finite)
        f32::from_bits(f.to_bits() - 1)
    }
    fn arrays<'a>(v: &IndexView<'a>) -> Option<crate::index::ImpactArrays<'a, f32>> {
        match v.impacts {
            Impacts::F32(a) => Some(a),
            Impacts::U8(_) => None,
        }
    }
}

/// Per-thread reusable buffers.
#[derive(Default)]
pub struct Scratch {
    /// Integer accumulators of the term-at-a-time oracle.
    pub acc_u32: Vec<u32>,
    /// Float accumulators.
    pub acc_f32: Vec<f32>,
    /// Doc-block upper bounds (integer kind).
    pub ub_u32: Vec<u32>,
    /// Doc-block upper bounds (float kind).
    pub ub_f32: Vec<f32>,
    /// Compact accumulators of selected doc blocks (integer kind).
    pub small_u32: Vec<u32>,
    /// Compact accumulators of selected doc blocks (float kind).
    pub small_f32: Vec<f32>,
    /// Dense query weights by term id (integer kind), all `None` between queries.
    pub table_u32: Vec<Option<u32>>,
    /// Dense query weights by term id (float kind).
    pub table_f32: Vec<Option<f32>>,
}

/// A set of internal doc ids: bit `d % 64` of word `d / 64`. Cloning shares the words.
#[derive(Clone, Debug)]
pub struct DocSet {
    words: Arc<[u64]>,
    len: u64,
}

impl DocSet {
    /// The set given by `words` over an index of `n_docs` documents. `words` must hold exactly
    /// `ceil(n_docs / 64)` words; bits at or beyond `n_docs` are ignored (cleared).
    pub fn from_words(mut words: Vec<u64>, n_docs: u32) -> Result<DocSet> {
        let need = (n_docs as usize).div_ceil(64);
        if words.len() != need {
            return Err(Error::InvalidArgument(format!(
                "allowed-document set has {} words, an index of {n_docs} documents needs {need}",
                words.len()
            )));
        }
        if n_docs % 64 != 0 {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (n_docs % 64)) - 1;
            }
        }
        let len = words.iter().map(|w| w.count_ones() as u64).sum();
        Ok(DocSet { words: words.into(), len })
    }
    /// The set of the listed documents (each below `n_docs`).
    pub fn from_docs(docs: impl IntoIterator<Item = u32>, n_docs: u32) -> Result<DocSet> {
        let mut words = vec![0u64; (n_docs as usize).div_ceil(64)];
        for d in docs {
            if d >= n_docs {
                return Err(Error::InvalidArgument(format!("document {d} is out of range ({n_docs} documents)")));
            }
            words[(d >> 6) as usize] |= 1 << (d & 63);
        }
        DocSet::from_words(words, n_docs)
    }
    /// Whether `d` is in the set.
    #[inline(always)]
    pub fn contains(&self, d: u32) -> bool {
        self.words.get((d >> 6) as usize).is_some_and(|w| w >> (d & 63) & 1 != 0)
    }
    /// Word `i` (documents `64 i .. 64 i + 63`); 0 beyond the end.
    #[inline(always)]
    pub fn word(&self, i: usize) -> u64 {
        self.words.get(i).copied().unwrap_or(0)
    }
    /// All words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
    /// Number of documents in the set.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// This kind's accumulators for `n` documents, all zero. Every algorithm that uses them
/// leaves them all zero when it returns, so only a size change costs a clear.
pub(crate) fn zeroed_acc<K: Kind>(scratch: &mut Scratch, n: usize) -> &mut Vec<K::S> {
    let acc = K::acc(scratch);
    if acc.len() != n {
        acc.clear();
        acc.resize(n, K::S::default());
    }
    debug_assert!(acc.iter().all(|a| *a == K::S::default()), "accumulators were left dirty");
    acc
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The rule behind [`Algorithm::Auto`], measured with `benches/auto_rule.py` on the synthetic
/// SPLADE-like corpus at 100k and 1M documents (see benches/README.md):
/// - a filter that leaves documents whose stored vectors hold fewer entries than the query's
///   posting lists (and the index stores vectors): score those documents one by one
///   ([`forward`]);
/// - a query whose lists hold fewer postings than 5% of the documents: MaxScore (the
///   exhaustive scorer's pass over every accumulator would dominate);
/// - an index (segment) of fewer than 32,768 documents, or a filter that leaves fewer than
///   1/8 of the documents: the exhaustive scorer;
/// - otherwise block-max pruning, which gives up for the exhaustive scorer as soon as its
///   first batch shows that more than 1/8 of the doc blocks would have to be scored.
fn run_auto<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
) -> Vec<(u32, K::S)> {
    let postings: u64 = plan.terms.iter().map(|pt| v.df(pt.term)).sum();
    if let (Some(allowed), Some(fwd)) = (&plan.allowed, &v.forward) {
        // Expected stored entries of the allowed documents.
        let entries = (allowed.len() as f64) * (fwd.terms.len() as f64) / (v.n_docs.max(1) as f64);
        if entries < FORWARD_RATIO * postings as f64 {
            return SCRATCH.with(|s| forward::search::<K>(v, fwd, plan, k, K::table(&mut s.borrow_mut())));
        }
    }
    if postings * 20 < v.n_docs as u64 {
        return maxscore::search::<K>(v, arrays, plan, k);
    }
    // A filter leaving under 1/8 of the documents keeps the threshold low for long: block-max
    // pruning scores most blocks anyway (at 1M documents and 1% selectivity, 4 ms against
    // 1.75 ms exhaustive).
    let narrow = plan.allowed.as_ref().is_some_and(|a| a.len() * 8 < v.n_docs as u64);
    if v.n_docs < SMALL_INDEX || narrow {
        return SCRATCH.with(|s| exhaustive::search::<K>(v, arrays, plan, k, &mut s.borrow_mut()));
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        match bmp::search_or_give_up::<K>(v, arrays, plan, k, &mut s, Some(0.125)) {
            Some(r) => r,
            None => exhaustive::search::<K>(v, arrays, plan, k, &mut s),
        }
    })
}

/// Below this many documents (small segments) auto scores exhaustively: block-max pruning's
/// per-term setup costs more than it saves (measured with benches/updates.py: 10 segments of
/// 10k documents, 0.43 ms exhaustive against 0.65 ms with bmp).
const SMALL_INDEX: u32 = 1 << 15;

/// Auto scores allowed documents from their stored vectors when their entries number fewer
/// than this many times the query's postings. Measured at 1M synthetic documents with a
/// random filter: a stored entry costs ~1.3-1.6 ns (documents far apart, prefetched), a
/// posting of the exhaustive scorer ~0.8 ns; at 1% selectivity the forward scorer takes
/// 1.45 ms against 1.75 ms, at 2% 3.8 ms against 1.7 ms.
const FORWARD_RATIO: f64 = 0.6;

fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &crate::index::ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    algo: Algorithm,
) -> Vec<Hit> {
    let raw = match algo {
        Algorithm::Exhaustive => SCRATCH.with(|s| exhaustive::search::<K>(v, arrays, plan, k, &mut s.borrow_mut())),
        Algorithm::MaxScore => maxscore::search::<K>(v, arrays, plan, k),
        Algorithm::Wand => wand::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxWand => bmw::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxMaxScore => bmm::search::<K>(v, arrays, plan, k),
        Algorithm::BlockMaxPruning => SCRATCH.with(|s| bmp::search::<K>(v, arrays, plan, k, &mut s.borrow_mut())),
        Algorithm::TaatMaxScore => {
            SCRATCH.with(|s| taat_maxscore::search::<K>(v, arrays, plan, k, &mut s.borrow_mut()))
        }
        Algorithm::Auto => run_auto::<K>(v, arrays, plan, k),
    };
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

/// The number of hits a search over segments can return: `k` capped at their total number of
/// documents (at least 1). Errors if `k` is 0.
pub fn effective_k_segments(segs: &[Segment<'_>], k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::InvalidArgument("k must be at least 1".into()));
    }
    let total: u64 = segs.iter().map(|s| s.index.n_docs() as u64).sum();
    Ok(k.min(total.max(1).min(usize::MAX as u64) as usize))
}

/// Exact top-`k` of one query.
pub fn search(index: &Index, q: QueryRef<'_>, k: usize, algo: Algorithm) -> Result<Vec<Hit>> {
    search_filtered(index, q, k, algo, None)
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
    let k = effective_k(index, k)?;
    check_allowed(index, allowed)?;
    search_one(index.view(), q, k, algo, None, allowed)
}

/// Exact top-`k` of the documents in `allowed`, scored one by one from their stored vectors
/// (the plan [`Algorithm::Auto`] picks for selective filters). Errors if the index does not
/// store vectors.
pub fn search_forward(index: &Index, q: QueryRef<'_>, k: usize, allowed: &DocSet) -> Result<Vec<Hit>> {
    let k = effective_k(index, k)?;
    check_allowed(index, Some(allowed))?;
    let v = index.view();
    let fwd = v
        .forward
        .ok_or_else(|| Error::InvalidArgument("this index does not store vectors (store_vectors=false)".into()))?;
    fn go<K: Kind>(
        v: &IndexView<'_>,
        fwd: &crate::index::Forward<'_>,
        q: QueryRef<'_>,
        k: usize,
        allowed: &DocSet,
    ) -> Result<Vec<Hit>> {
        let mut plan = Plan::<K>::new(v, q, None)?;
        plan.allowed = Some(allowed.clone());
        let raw = SCRATCH.with(|s| forward::search::<K>(v, fwd, &plan, k, K::table(&mut s.borrow_mut())));
        Ok(raw.into_iter().map(|(doc, s)| Hit { doc, score: K::to_f32(s, plan.norm) }).collect())
    }
    match v.impacts {
        Impacts::U8(_) => go::<U8Kind>(v, &fwd, q, k, allowed),
        Impacts::F32(_) => go::<F32Kind>(v, &fwd, q, k, allowed),
    }
}

fn check_allowed(index: &Index, allowed: Option<&DocSet>) -> Result<()> {
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

fn search_one(
    v: &IndexView<'_>,
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    qi: Option<usize>,
    allowed: Option<&DocSet>,
) -> Result<Vec<Hit>> {
    search_one_above(v, q, k, algo, qi, allowed, None)
}

/// As [`search_one`], returning only documents that score at least `floor` (weight units).
fn search_one_above(
    v: &IndexView<'_>,
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    qi: Option<usize>,
    allowed: Option<&DocSet>,
    floor: Option<f32>,
) -> Result<Vec<Hit>> {
    match v.impacts {
        Impacts::U8(a) => {
            let mut plan = Plan::<U8Kind>::new(v, q, qi)?;
            plan.allowed = allowed.cloned();
            if let Some(f) = floor {
                plan.floor = U8Kind::floor_below(f, plan.norm);
            }
            Ok(run::<U8Kind>(v, &a, &plan, k, algo))
        }
        Impacts::F32(a) => {
            let mut plan = Plan::<F32Kind>::new(v, q, qi)?;
            plan.allowed = allowed.cloned();
            if let Some(f) = floor {
                plan.floor = F32Kind::floor_below(f, plan.norm);
            }
            Ok(run::<F32Kind>(v, &a, &plan, k, algo))
        }
    }
}

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

/// Exact global top-`k` over several segments: every segment's exact top-k merged, best
/// first by score, ties to the earlier segment, then the earlier internal doc.
///
/// Segments are searched largest first, and each search starts from a floor: the k-th score
/// found so far (documents scoring below it cannot enter the global top-k, so a segment
/// returns only the documents at or above it and its traversal prunes from the start).
pub fn search_segments(segs: &[Segment<'_>], q: QueryRef<'_>, k: usize, algo: Algorithm) -> Result<Vec<SegmentHit>> {
    for s in segs {
        check_allowed(s.index, s.allowed)?;
    }
    search_segments_one(segs, q, k, algo, None)
}

fn search_segments_one(
    segs: &[Segment<'_>],
    q: QueryRef<'_>,
    k: usize,
    algo: Algorithm,
    qi: Option<usize>,
) -> Result<Vec<SegmentHit>> {
    if k == 0 {
        return Err(Error::InvalidArgument("k must be at least 1".into()));
    }
    let mut order: Vec<usize> = (0..segs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(segs[i].allowed.map_or(segs[i].index.n_docs() as u64, |a| a.len())));
    let mut best: Vec<SegmentHit> = Vec::with_capacity(2 * k.min(1 << 16));
    for &si in &order {
        let s = &segs[si];
        if s.index.n_docs() == 0 || s.allowed.is_some_and(|a| a.is_empty()) {
            continue;
        }
        let floor = if best.len() >= k { Some(best[k - 1].score) } else { None };
        let kk = k.min(s.index.n_docs() as usize);
        let hits = search_one_above(s.index.view(), q, kk, algo, qi, s.allowed, floor)?;
        best.extend(hits.into_iter().map(|h| SegmentHit { segment: si as u32, doc: h.doc, score: h.score }));
        best.sort_by(|a, b| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.segment.cmp(&b.segment))
                .then(a.doc.cmp(&b.doc))
        });
        best.truncate(k);
    }
    Ok(best)
}

/// [`search_segments`] for every query of a CSR batch, in parallel on `threads` threads.
pub fn search_segments_batch(
    segs: &[Segment<'_>],
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
) -> Result<Vec<Vec<SegmentHit>>> {
    use rayon::prelude::*;
    let nq = crate::index::build::check_csr(&queries, "queries")?;
    for s in segs {
        check_allowed(s.index, s.allowed)?;
    }
    let work = || -> Result<Vec<Vec<SegmentHit>>> {
        (0..nq)
            .into_par_iter()
            .map(|i| {
                let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
                let q = QueryRef { terms: &queries.indices[a..b], weights: &queries.values[a..b] };
                search_segments_one(segs, q, k, algo, Some(i))
            })
            .collect()
    };
    on_threads(threads, work)
}

/// Run `work` on `threads` threads (rayon's global pool when `None`).
fn on_threads<T: Send>(threads: Option<usize>, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    match threads {
        None => work(),
        Some(0) => Err(Error::InvalidArgument("threads must be at least 1".into())),
        Some(n) => pool(n)?.install(work),
    }
}

fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = pools.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&threads) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?,
    );
    map.insert(threads, p.clone());
    Ok(p)
}

/// Exact top-`k` of every query of a CSR batch, in parallel on `threads` threads (all cores
/// when `None`), among the documents in `allowed` (all when `None`). Errors name the
/// offending query.
pub fn search_batch(
    index: &Index,
    queries: CsrRef<'_>,
    k: usize,
    algo: Algorithm,
    threads: Option<usize>,
    allowed: Option<&DocSet>,
) -> Result<Vec<Vec<Hit>>> {
    use rayon::prelude::*;
    let k = effective_k(index, k)?;
    check_allowed(index, allowed)?;
    let nq = crate::index::build::check_csr(&queries, "queries")?;
    let v = index.view();
    let work = || -> Result<Vec<Vec<Hit>>> {
        (0..nq)
            .into_par_iter()
            .map(|i| {
                let (a, b) = (queries.indptr[i] as usize, queries.indptr[i + 1] as usize);
                search_one(
                    v,
                    QueryRef { terms: &queries.indices[a..b], weights: &queries.values[a..b] },
                    k,
                    algo,
                    Some(i),
                    allowed,
                )
            })
            .collect()
    };
    on_threads(threads, work)
}
