//! The rule behind [`Algorithm::Auto`](super::Algorithm::Auto).
//!
//! Cheap cases are decided from counts (measured with `benches/auto_rule.py` on the
//! synthetic SPLADE-like corpus at 100k and 1M documents, see benches/README.md):
//! - a filter that leaves documents whose stored vectors hold fewer entries than the query's
//!   posting lists (and the index stores vectors): score those documents one by one
//!   ([`super::forward`]);
//! - a query whose lists hold fewer postings than 5% of the documents: MaxScore (the
//!   exhaustive scorer's pass over every accumulator would dominate); fewer than 1/128 of
//!   them for a plan whose scores fit 16-bit accumulators (approximate search's requantized
//!   cut queries, [`Kind::narrow_fits`]), whose pass reads half the bytes; and in both cases
//!   only while postings x terms stays below 1/16 of the documents ([`MAXSCORE_WORK_SHARE`]):
//!   MaxScore looks at every essential list for every document it visits;
//! - an index (segment) of fewer than 32,768 documents, or a filter that leaves fewer than
//!   1/8 of the documents: the exhaustive scorer.
//!
//! Otherwise whether block-max pruning pays depends on how tightly the segment's document
//! order clusters its postings, which no count predicts: on 1M synthetic documents reordered
//! by graph bisection superblock pruning is 6.7x faster than the exhaustive scorer, on 60k
//! real SPLADE vectors (debian) in the same order it is 10x *slower* (medians of 2,000
//! queries, `examples/probe.rs`). So the choice is **measured on the segment itself**, by a
//! *paired race* ([`Race`]) between the exhaustive scorer, block-max pruning and, when the
//! segment stores its vectors, superblock pruning and block-max TAAT MaxScore ([`super::bmt`],
//! the fastest exact algorithm on debian, within a few percent of the exhaustive scorer):
//!
//! - **Warm-up.** The segment's first `1 + WARM` queries are run by every candidate (the
//!   first only warms the caches; a class whose first query comes after another class's
//!   counts it, the segment being warm), each query starting with the next candidate in turn. The
//!   leader is the candidate **fastest on most queries**: the smallest median over the warm-up
//!   queries of its time divided by the fastest candidate's time on that query ([`elect`]).
//!   Not the smallest total: on synthetic 100k superblock pruning has the smaller median
//!   (0.31 ms against block-max pruning's 0.35 ms, stop 17) but a longer tail (p90 1.02
//!   against 0.69 ms), and one preempted run outweighs five honest ones in a sum, not in a
//!   median. The other candidates' rings start with their warm-up ratios to the leader.
//!   A candidate [`DROP`] (4) times slower than the fastest on each of its first
//!   [`DROP_AFTER`] (2) counted warm-up queries leaves the warm-up: superblock pruning is 10-70x slower than the exhaustive scorer on debian,
//!   and it used to run on all seven of each class's first queries of a fresh segment, which
//!   then cost 10-44x the exhaustive scorer's time (helper-101). Its ring holds the ratios it
//!   was measured at, so it is re-checked as any slow candidate is. A candidate dropped from
//!   one class's warm-up skips the uncounted first query of the segment's other classes, and
//!   leaves their warm-ups after one counted query if it is that slow there too.
//! - **Leader.** Every later query is answered by the leader alone, untimed.
//! - **Re-checks.** Every other candidate is re-checked in bursts of [`BURST`] consecutive
//!   queries (the first uncounted), run *on the same query* as the leader (in alternating
//!   order, so that neither profits from the other's warm caches), and the ratio of their
//!   times is kept (the last [`RING`]). A candidate `r` times slower than the leader is
//!   re-checked `RECHECK x r` queries after its last burst, so re-checks cost about
//!   `BURST / RECHECK` (1.2%) of the leader's time per candidate whatever their speed.
//!   A *close* candidate (median ratio below [`CLOSE`], 1.3) is re-checked every [`EARLY`]
//!   queries until it has [`RING`] paired runs of its own: six warm-up queries cannot tell a
//!   10% gap from noise, and on debian's query-cost class 2 (stop 18) they elected the
//!   exhaustive scorer while bmt takes ~0.9x its time there, a choice the first re-check
//!   (`RECHECK x 1.05`, 268 queries of that class later) would only revisit after most
//!   benchmark queries had run. Those early bursts cost at most `RING / 2` bursts of
//!   `BURST x 1.3` leader times per close candidate, once per class and segment.
//! - **Switch.** When a candidate's median ratio over at least [`MIN_PAIRS`] paired queries is
//!   below [`SWITCH`], it becomes the leader (and the other candidates are re-checked against
//!   it soon).
//! - **Cost classes.** Which candidate is fastest also depends on the query's cost, so each
//!   segment holds one race per class of postings per document (below 1, 1..2, 2..4, 4 or
//!   more; [`CLASSES`]). Measured with `benches/auto_gap.py` (thirds of 400 queries by
//!   postings, medians in ms): on debian the exhaustive scorer wins the cheap third (0.202
//!   against bmt 0.310) and bmt the costly third (0.407 against 0.465); on synthetic 100k
//!   block-max pruning wins the cheap third (0.212 against sp 0.236) and superblock pruning
//!   the costly third (0.328 against 0.395). Each class pays its own warm-up. Queries of more
//!   than [`LONG_QUERY`] terms have a class of their own, raced between the exhaustive scorer
//!   and bmt only: block-max and superblock pruning cost the query's dense terms times the
//!   segment's blocks whatever they skip, and lose 3-60x on such queries.
//! - **Clock.** Runs are timed in the thread's CPU time ([`Clock`]): on a busy machine a run
//!   descheduled half-way would otherwise count the other processes' time.
//!
//! Comparing candidates on the same queries matters: how much a pruning algorithm saves
//! varies from query to query far more than the gap between two good candidates, so times of
//! different queries (even per posting) pick a wrong leader for long stretches. Every
//! candidate is exact, so the race changes only the speed, never the hits.
//!
//! Measured (benches/harness.py, one thread, k=10, 200 queries, 3 rounds, per query the
//! fastest round, median ms; rows interleaved chunk by chunk of 10 queries in a shuffled order,
//! so no row is systematically last; benches/results/*-stop19-auto2*.md), auto against the
//! fastest exact algorithm of the same run, and a control (the same algorithm timed twice):
//!
//! | corpus | exhaustive | bmp | sp | bmt | auto | auto / fastest | control | leader |
//! |---|---:|---:|---:|---:|---:|---:|---:|---|
//! | debian (60k real SPLADE), before the early re-checks | 0.217 | 0.534 | 1.370 | 0.212 | 0.217 | 1.03 | 1.04 | exhaustive |
//! | debian | 0.216 | 0.534 | 1.232 | 0.213 | 0.209 | 0.98 | 0.97 | exhaustive |
//! | synthetic 100k, before the early re-checks | 0.516 | 0.351 | 0.299 | 0.489 | 0.336 | 1.12 | 1.06 | bmp |
//! | synthetic 100k | 0.411 | 0.281 | 0.251 | 0.364 | 0.267 | 1.06 | 1.01 | sp |
//! | synthetic 1M | 4.207 | 1.536 | 1.344 | 3.294 | 1.365 | 1.02 | 1.00 | sp |
//! | debian, early re-checks once per race | 0.277 | 0.682 | 1.633 | 0.327 | 0.277 | 1.00 | 1.07 | exhaustive |
//! | synthetic 100k, same, 3 order seeds | 0.433 | 0.322 | 0.296 | 0.467 | 0.299 | 1.01 / 1.08 / 1.01 | 0.97 / 1.04 / 1.03 | sp / bmp / bmp |
//! | synthetic 1M, same | 4.242 | 1.528 | 1.408 | 3.407 | 1.391 | 0.99 | 0.95 | sp |
//!
//! (leader: of the class that saw the most queries; the 100k row's times are the first seed's.)
//! Synthetic 100k stays the tightest: block-max and superblock pruning are a near tie on the
//! median query (the race's median paired ratio 0.98-1.03, inside the switch margin) while
//! superblock pruning's median *time* is ~8% lower and block-max pruning's p90 ~30% lower, so
//! auto's second row (`auto-again`, same race) measured 1.01-1.12x over the five runs. Until
//! stop 18 the harness ran the rows in a fixed order, auto last, and measured 1.24x (debian)
//! and 1.35x (synthetic 100k): the same algorithm ran ~14% slower late in a run than early
//! (benches/auto_row_order.py).
//! `benches/auto_gap.py` (400 queries, 3 rounds, chunks of 10) by cost class, with the early
//! re-checks: debian bmt 0.205, exhaustive 0.212, auto 0.192 ms (0.94x), class 2 (2..4
//! postings per document, 185 queries) bmt 0.209, exhaustive 0.247, auto 0.213; synthetic
//! 100k sp 0.261, bmp 0.271, auto 0.255 ms (0.97x) (benches/results/auto-stop19-auto2.md).
//! Stop 18's run of the same script, without them: debian class 2 auto 0.394 against bmt
//! 0.348 (benches/results/auto-row-order-stop18.md).
//!
//! Where stop 17's auto lost 23% on debian, the loss came from the warm-up, not from the
//! steady state: a warm-up decided by sums of wall times elected block-max pruning (2.5x
//! the exhaustive scorer) when one run of the exhaustive scorer was slowed, and the first
//! re-check that could undo it came `RECHECK x r` queries later with a ring of one ratio,
//! so most of the 630 timed queries ran on the wrong leader (auto 0.620 ms against 0.306 ms
//! exhaustive in one reproduction). Per query, dispatch (a mutex and a counter) and timing
//! cost nothing measurable.

use super::plan::Plan;
use super::{bmp, bmt, exhaustive, forward, maxscore, superblock, Kind, Scratch};
use crate::index::{ImpactArrays, IndexView};
use std::sync::Mutex;
use std::time::Instant;

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
/// A plan whose scores fit 16-bit accumulators ([`Kind::narrow_fits`]) goes to MaxScore only
/// when its lists hold fewer postings than `1 / NARROW_MAXSCORE_SHARE` of the documents (other
/// plans: 1/20). Measured on approximate search's cut queries (`examples/approx_grid.rs`,
/// `MSDIV` set by a temporary environment variable, stop 25): with MaxScore below 1/20 of the
/// documents, WordNet glosses at beta 0.4-0.6 took 0.021-0.043 ms; below 1/100, 0.013-0.034;
/// never, 0.012-0.035; synthetic 100k 0.025-0.058, 0.021-0.056, 0.021-0.056. The 16-bit
/// drain costs about 0.05 ns per document, a MaxScore posting several ns.
const NARROW_MAXSCORE_SHARE: u64 = 128;

/// MaxScore is auto's choice for a query of few postings only while its postings times its
/// terms stay below `1 / MAXSCORE_WORK_SHARE` of the documents: document at a time, it looks at
/// every essential list for every document it visits, so its cost grows as postings x terms,
/// and a long query of rare terms made it the slowest choice. Measured at 1M synthetic
/// documents (one thread, k=10, ms, exhaustive / MaxScore / bmp): `benches/auto_rule.py`
/// queries cut to 2 terms (postings x terms = 0.038 x documents) 0.208 / 0.157 / 0.231, to
/// 3 terms (0.093) 0.245 / 0.279 / 0.216; 16 terms of document frequency 100..1000 (0.17)
/// 0.48 / 0.42 / 0.30; 64 such terms (2.6) 0.75 / 4.77 / 1.88.
const MAXSCORE_WORK_SHARE: u64 = 16;

/// Counted queries of the warm-up, each run by every candidate not dropped from it.
pub const WARM: usize = 6;
/// A candidate whose time is at least `DROP` times the fastest candidate's on each of its
/// first [`DROP_AFTER`] counted warm-up queries leaves the warm-up.
pub const DROP: f64 = 4.0;
/// Counted warm-up queries after which a candidate [`DROP`] times slower on each leaves the
/// warm-up (on each: one run slowed by a page fault or a cold cache does not drop the
/// candidate that would have won).
pub const DROP_AFTER: usize = 2;
/// Paired ratios kept per candidate.
pub const RING: usize = 8;
/// Consecutive paired runs of a re-checked candidate (the first is not counted).
pub const BURST: usize = 3;
/// A candidate `r` times slower than the leader is re-checked `RECHECK x r` queries after
/// its last burst, so that re-checks cost about `BURST / RECHECK` of the leader's time per
/// candidate whatever their speed.
pub const RECHECK: f32 = 256.0;
/// Paired runs a candidate needs before it can take the lead.
pub const MIN_PAIRS: usize = 4;
/// A candidate whose median time ratio to the leader is below this is *close*: until it has
/// [`RING`] paired runs of its own (not the warm-up's; counted over the race's life, not reset
/// when the lead changes), it is re-checked every [`EARLY`] queries instead of `RECHECK x r`,
/// so that six warm-up queries do not settle a near tie for hundreds of queries.
pub const CLOSE: f32 = 1.3;
/// Queries between the early re-check bursts of a close candidate.
pub const EARLY: u64 = 16;
/// A candidate takes the lead when its median time ratio to the leader falls below this.
pub const SWITCH: f32 = 0.95;

/// Number of candidates.
const NC: usize = 4;

/// Query-cost classes, each with its own race: the query's postings per document of the
/// segment below 1, 1..2, 2..4, and 4 or more; and queries of more than [`LONG_QUERY`] terms.
pub const CLASSES: usize = 5;

/// The class of queries of more than [`LONG_QUERY`] terms.
const LONG: usize = CLASSES - 1;

/// A query of more than this many terms races only the exhaustive scorer and block-max TAAT
/// MaxScore (which accumulates its heavy terms exhaustively). Block-max and superblock
/// pruning cost at least the query's dense terms times the segment's blocks, whatever they
/// skip, and on such queries no block bound falls below the threshold; each of the race's
/// warm-up queries would run them. Measured with `benches/long_queries.py` (one thread, k=10,
/// fastest of 3, ms; exhaustive / bmp / sp / bmt; benches/results/long-queries.md):
/// synthetic 1M, a union of 4 real queries (178 terms): 12.5 / 12.3 / 28.4 / 5.3; of 16 (655
/// terms): 47.4 / 220 / 557 / 40.4; of 64 (2,149): 139 / 919 / 1,205 / 118; 512 random terms:
/// 14.1 / 130 / 602 / 14.8. Debian (60k), a union of 64 queries (853 terms): 4.3 / 27.2 / 40.9
/// / 5.7; 2,048 random terms: 2.5 / 28.1 / 39.7 / 3.6. Fresh segments' first queries of 8,000
/// random terms (debian) now take 9-15 ms under auto against 8-10 ms exhaustive. Before, each
/// of a class's first seven ran all four, and block-max pruning re-summed the unread terms'
/// bounds at every check (quadratic in the terms: 722 ms for one such query against 11 ms
/// exhaustive): 0.5-1 s per query on helper-100's 40k-document segment.
pub const LONG_QUERY: usize = 512;

/// The cost class of a query of `terms` terms whose lists hold `postings` postings, in a
/// segment of `n_docs`.
fn class_of(postings: u64, n_docs: u32, terms: usize) -> usize {
    if terms > LONG_QUERY {
        return LONG;
    }
    let per_doc = postings as f64 / n_docs.max(1) as f64;
    match per_doc {
        x if x < 1.0 => 0,
        x if x < 2.0 => 1,
        x if x < 4.0 => 2,
        _ => 3,
    }
}

/// The candidates of the race, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    Exhaustive,
    BlockMax,
    Superblock,
    BlockMaxTaat,
}

const CANDIDATES: [Candidate; NC] =
    [Candidate::Exhaustive, Candidate::BlockMax, Candidate::Superblock, Candidate::BlockMaxTaat];

/// The candidates' names, as [`super::Algorithm::name`] spells them.
const NAMES: [&str; NC] = ["exhaustive", "bmp", "sp", "bmt"];

/// The candidates a segment races (bit `c` set: candidate `c` takes part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cands(u8);

impl Cands {
    fn has(self, c: usize) -> bool {
        self.0 >> c & 1 == 1
    }
    fn iter(self) -> impl Iterator<Item = usize> {
        (0..NC).filter(move |&c| self.has(c))
    }
    fn len(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// A segment's races between auto's candidates, one per query-cost class (see the module doc).
#[derive(Debug, Default)]
pub struct Race {
    inner: Mutex<[RaceState; CLASSES]>,
}

#[derive(Debug, Default)]
struct RaceState {
    /// The candidate answering queries (None during the warm-up).
    leader: Option<usize>,
    /// Warm-up queries seen, and every candidate's time on each counted one (ns; NaN where
    /// it did not run).
    warm_seen: usize,
    warm_ns: Vec<[f64; NC]>,
    /// Candidates dropped from the warm-up (bit `c`; see [`DROP`]).
    dropped: u8,
    /// Per candidate: its time divided by the leader's on the same query, last [`RING`].
    ratios: [Vec<f32>; NC],
    /// Next slot of each ring.
    next: [usize; NC],
    /// Queries decided so far.
    queries: u64,
    /// The candidate of the burst under way and its runs left.
    burst: Option<(usize, usize)>,
    /// The query count from which each candidate is due for a re-check.
    due: [u64; NC],
    /// Counted paired runs of each candidate (against any leader): early re-checks ([`EARLY`])
    /// end for good once it has [`RING`], so that two candidates in a near tie, switching
    /// leads on noise, do not keep paying them.
    paired: [usize; NC],
}

/// What to run for one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Warm-up: every candidate of `run` (those not dropped from the warm-up), timed,
    /// starting with candidate `first` and in turn after it (so that no candidate always runs
    /// on the caches the same other one left); counted unless it is the very first query.
    All { counted: bool, first: usize, run: Cands },
    /// The leader alone, untimed.
    Lead(usize),
    /// The leader and a challenger on the same query, both timed; the ratio counts if `counted`.
    Pair { leader: usize, challenger: usize, counted: bool },
}

/// Queries until a candidate whose median time ratio to the leader is `ratio` (infinite: none
/// measured), with `paired` counted paired runs against it, is re-checked: [`EARLY`] while it
/// is close ([`CLOSE`]) and has fewer than [`RING`] pairs, else `RECHECK x ratio` (re-checks
/// then cost about `BURST / RECHECK` of the leader's time whatever the candidate's speed).
fn recheck_gap(ratio: f32, paired: usize) -> u64 {
    if !ratio.is_finite() {
        return RECHECK as u64;
    }
    let ratio = ratio.clamp(1.0, 1e3);
    if ratio < CLOSE && paired < RING {
        EARLY
    } else {
        (RECHECK * ratio) as u64
    }
}

fn median(xs: &[f32]) -> f32 {
    if xs.is_empty() {
        return f32::INFINITY;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The candidate the warm-up elects from every candidate's times on the same queries
/// (`warm[q][c]`, ns): the one with the smallest median over the queries of its time divided
/// by the fastest candidate's time on that query (the candidate fastest on most queries, which
/// one preempted or cold-cache run cannot outvote); ties go to the smaller total time, then to
/// the earlier candidate. Times that are NaN (a candidate that did not run) are left out.
fn elect(cands: Cands, warm: &[[f64; NC]]) -> usize {
    let score = |c: usize| {
        let rel: Vec<f32> = warm.iter().filter(|t| !t[c].is_nan()).map(|t| (t[c] / fastest(cands, t)) as f32).collect();
        (median(&rel), warm.iter().map(|t| t[c]).filter(|x| !x.is_nan()).sum::<f64>())
    };
    cands
        .iter()
        .map(|c| (c, score(c)))
        .min_by(|(_, a), (_, b)| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map_or(0, |(c, _)| c)
}

/// What a class's race takes from the segment's other cost classes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Prior {
    /// The candidates dropped from another class's warm-up: they leave this class's
    /// warm-up after one counted query [`DROP`] times slower than the fastest.
    suspect: u8,
    /// Whether another class has seen a query: the segment's caches and lazily made
    /// structures are warm, so this class's first query is counted (the uncounted first
    /// query is the segment's, not each class's).
    warmed: bool,
}

impl Prior {
    /// The prior of `class` among the segment's races `all`.
    fn of(all: &[RaceState], class: usize) -> Self {
        let others = || all.iter().enumerate().filter(move |&(c, _)| c != class).map(|(_, s)| s);
        Prior { suspect: others().fold(0, |m, s| m | s.dropped), warmed: others().any(|s| s.queries > 0) }
    }
}

/// The fastest time of one warm-up query among the candidates of `cands` that ran (ns, at
/// least 1).
fn fastest(cands: Cands, t: &[f64; NC]) -> f64 {
    cands.iter().map(|o| t[o]).filter(|x| !x.is_nan()).fold(f64::INFINITY, f64::min).max(1.0)
}

impl RaceState {
    /// What to run for the next query among `cands`, given what the segment's other cost
    /// classes know ([`Prior`]).
    fn pick(&mut self, cands: Cands, prior: Prior) -> Step {
        self.queries += 1;
        let Some(leader) = self.leader else {
            self.warm_seen += 1;
            let uncounted = self.warm_seen == 1 && !prior.warmed;
            let mut run = self.warming(cands);
            if uncounted && run.0 & !prior.suspect != 0 {
                run = Cands(run.0 & !prior.suspect);
            }
            let first = run.iter().nth(self.warm_seen % run.len().max(1)).unwrap_or(0);
            return Step::All { counted: !uncounted, first, run };
        };
        if let Some((c, left)) = self.burst {
            self.burst = if left > 1 { Some((c, left - 1)) } else { None };
            return Step::Pair { leader, challenger: c, counted: true };
        }
        for c in cands.iter().filter(|&c| c != leader) {
            if self.queries >= self.due[c] {
                let gap = recheck_gap(median(&self.ratios[c]), self.paired[c] + BURST - 1);
                self.due[c] = self.queries + BURST as u64 + gap;
                self.burst = Some((c, BURST - 1));
                return Step::Pair { leader, challenger: c, counted: false };
            }
        }
        Step::Lead(leader)
    }

    /// The warm-up's times of one counted query (ns per candidate; NaN for those that did not
    /// run, and those outside `cands` ignored). A candidate [`DROP`] times slower than the
    /// fastest on each of its first [`DROP_AFTER`] counted queries leaves the warm-up; one
    /// in `suspect` (dropped from another cost class's warm-up on the segment) on its first:
    /// a candidate that slow on one class is mostly that slow on the others (superblock
    /// pruning on debian), and its first counted run of this class is still measured before
    /// it is dropped here. After [`WARM`] counted queries the leader is elected ([`elect`])
    /// and every other candidate's ring holds its warm-up ratios to the leader, so that one
    /// wrong election is undone by the first re-check burst.
    fn record_warm(&mut self, cands: Cands, ns: [f64; NC], prior: Prior) {
        if self.leader.is_some() {
            return; // a query whose warm-up began before another thread's election
        }
        self.warm_ns.push(ns);
        for c in self.warming(cands).iter() {
            let rel: Vec<f64> =
                self.warm_ns.iter().filter(|t| !t[c].is_nan()).map(|t| t[c] / fastest(cands, t)).collect();
            let slow = rel.iter().fold(f64::INFINITY, |a, &r| a.min(r));
            let need = if prior.suspect >> c & 1 == 1 { 1 } else { DROP_AFTER };
            if rel.len() >= need && slow >= DROP {
                self.dropped |= 1 << c;
            }
        }
        if self.warm_ns.len() < WARM {
            return;
        }
        let lead = elect(self.warming(cands), &self.warm_ns);
        self.set_leader(cands, lead, 0);
        for c in cands.iter().filter(|&c| c != lead) {
            let rs: Vec<f32> = self
                .warm_ns
                .iter()
                .filter(|t| !t[c].is_nan() && !t[lead].is_nan())
                .map(|t| (t[c] / t[lead].max(1.0)) as f32)
                .collect();
            self.ratios[c] = rs.iter().rev().take(RING).rev().copied().collect();
            self.next[c] = self.ratios[c].len() % RING;
            self.due[c] = self.queries + recheck_gap(median(&rs), 0);
        }
        self.warm_ns = Vec::new();
    }

    fn set_leader(&mut self, cands: Cands, lead: usize, recheck_in: u64) {
        self.leader = Some(lead);
        self.burst = None;
        for c in cands.iter() {
            self.ratios[c].clear();
            self.next[c] = 0;
            self.due[c] = self.queries + recheck_in;
        }
    }

    /// A counted paired run: `challenger` took `ratio` times the leader's time.
    fn record_pair(&mut self, cands: Cands, challenger: usize, ratio: f32) {
        let c = challenger;
        if self.ratios[c].len() < RING {
            self.ratios[c].push(ratio);
        } else {
            self.ratios[c][self.next[c]] = ratio;
        }
        self.next[c] = (self.next[c] + 1) % RING;
        self.paired[c] += 1;
        if self.burst.map(|b| b.0) != Some(c) {
            // The burst's last run: the next re-check follows from the ratios it measured.
            self.due[c] = self.queries + recheck_gap(median(&self.ratios[c]), self.paired[c]);
        }
        if self.ratios[c].len() >= MIN_PAIRS && median(&self.ratios[c]) < SWITCH {
            // The others are re-checked against the new leader after one short interval.
            self.set_leader(cands, c, BURST as u64);
            for (i, o) in cands.iter().filter(|&o| o != c).enumerate() {
                self.due[o] = self.queries + 1 + (i as u64) * (2 * BURST as u64);
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        self.leader
    }

    /// The candidates of `cands` still in the warm-up (not dropped; never none: the fastest
    /// candidate of every query is never [`DROP`] times slower than itself).
    fn warming(&self, cands: Cands) -> Cands {
        let active = Cands(cands.0 & !self.dropped);
        if active.len() == 0 {
            cands
        } else {
            active
        }
    }
}

impl Race {
    /// The candidate leading the race on a segment, by name (`None` during the warm-up), with
    /// the median time ratio of every other candidate to the leader on the same queries.
    ///
    /// Of the query-cost class that has seen the most queries.
    pub fn standing(&self) -> (Option<&'static str>, Vec<(&'static str, f32)>) {
        let all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let st = all.iter().max_by_key(|s| s.queries).expect("CLASSES > 0");
        let lead = st.leader().map(|c| NAMES[c]);
        (lead, (0..NC).filter(|&c| !st.ratios[c].is_empty()).map(|c| (NAMES[c], median(&st.ratios[c]))).collect())
    }

    /// Per query-cost class (postings per document below 1, 1..2, 2..4, 4 or more): the
    /// queries it has seen and its leader (`None` before its warm-up ends).
    #[cfg(test)]
    pub fn standings(&self) -> Vec<(u64, Option<&'static str>)> {
        let all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().map(|s| (s.queries, s.leader().map(|c| NAMES[c]))).collect()
    }
}

/// A candidate's run time: the calling thread's CPU time where the platform gives it
/// (`CLOCK_THREAD_CPUTIME_ID`, Linux and macOS), wall time elsewhere. On a busy machine a
/// thread descheduled in the middle of a run adds milliseconds of wall time to one candidate
/// and not to the other it is paired with: measured on the shared 2-core machine (load 8),
/// the medians of paired wall-time ratios on debian came out at 14x (bmp) and 23x (sp) where
/// the same run's per-algorithm rows say 2.7x and 7x, and on synthetic 100k the race ended on
/// the exhaustive scorer although superblock pruning takes 0.66x its time; CPU time leaves
/// the preemption out.
pub(crate) struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock { cpu: thread_cpu_ns(), wall: Instant::now() }
    }

    pub(crate) fn elapsed_ns(&self) -> f64 {
        match (self.cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) if b >= a => (b - a) as f64,
            _ => self.wall.elapsed().as_nanos() as f64,
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

/// The candidates a segment races for a query of cost class `class`: the exhaustive scorer
/// and block-max pruning always; superblock pruning and block-max TAAT MaxScore when the
/// segment stores its vectors (they score surviving blocks / candidates from them), the latter
/// only with fine-block maxima. Queries of more than [`LONG_QUERY`] terms race only the
/// exhaustive scorer and block-max TAAT MaxScore.
fn candidates<I>(v: &IndexView<'_>, arrays: &ImpactArrays<'_, I>, class: usize) -> Cands {
    let mut m = 0b11u8;
    if v.forward.is_some() {
        m |= 1 << 2;
        if !arrays.fine_block_max.slot.is_empty() {
            m |= 1 << 3;
        }
    }
    if class == LONG {
        m &= 1 << Candidate::Exhaustive as u8 | 1 << Candidate::BlockMaxTaat as u8;
    }
    Cands(m)
}

/// Exact top-`k` of `plan` by the algorithm the rule picks; `race` holds the segment's
/// timings (`None`: no race, block-max pruning that gives up for the exhaustive scorer when
/// its first batch shows that more than 1/8 of the doc blocks would have to be scored).
pub(crate) fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    race: Option<&Race>,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    run_with::<K>(v, arrays, plan, k, race, true, scratch)
}

/// As [`run`], but the race is only read: its current leader for the query's cost class runs
/// alone and untimed, and the query does not count (without a leader yet, as with no race).
/// For a second traversal of a query the race already saw (the float rerank's search for
/// every document above a floor, `k` = the segment's documents, [`super::rerank`]), which
/// would otherwise count twice and time a search unlike the others.
pub(crate) fn run_untimed<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    race: Option<&Race>,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    run_with::<K>(v, arrays, plan, k, race, false, scratch)
}

fn run_with<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    race: Option<&Race>,
    count: bool,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let postings = plan.postings(v);
    if let (Some(allowed), Some(fwd)) = (&plan.allowed, &v.forward) {
        // Expected stored entries of the allowed documents.
        let entries = (allowed.len() as f64) * (fwd.terms.len() as f64) / (v.n_docs.max(1) as f64);
        if entries < FORWARD_RATIO * postings as f64 {
            return forward::search::<K>(v, fwd, plan, k, &mut scratch.table);
        }
    }
    let maxscore_below = if K::narrow_fits(plan, arrays.term_max) { NARROW_MAXSCORE_SHARE } else { 20 };
    let n = v.n_docs as u64;
    if postings * maxscore_below < n && postings * plan.terms.len() as u64 * MAXSCORE_WORK_SHARE < n {
        return maxscore::search::<K>(v, arrays, plan, k);
    }
    // A filter leaving under 1/8 of the documents keeps the threshold low for long: block-max
    // pruning scores most blocks anyway (at 1M documents and 1% selectivity, 4 ms against
    // 1.75 ms exhaustive).
    let narrow = plan.allowed.as_ref().is_some_and(|a| a.len() * 8 < v.n_docs as u64);
    if v.n_docs < SMALL_INDEX || narrow {
        return exhaustive::search::<K>(v, arrays, plan, k, scratch);
    }
    let class = class_of(postings, v.n_docs, plan.terms.len());
    let cands = candidates(v, arrays, class);
    if cands.len() == 1 {
        return exhaustive::search::<K>(v, arrays, plan, k, scratch);
    }
    let step = match race {
        Some(race) if count => {
            let mut all = race.inner.lock().unwrap_or_else(|e| e.into_inner());
            let prior = Prior::of(&all[..], class);
            all[class].pick(cands, prior)
        }
        _ => match race.and_then(|r| r.inner.lock().unwrap_or_else(|e| e.into_inner())[class].leader()) {
            Some(c) if cands.has(c) => Step::Lead(c),
            // no leader yet: block-max pruning's bound phase alone would cost a long query
            // several exhaustive scorings (debian, 8,000 terms: 66 ms per warm-up query
            // against 12 ms exhaustive, the float rerank's second traversal running it)
            _ if class == LONG => return exhaustive::search::<K>(v, arrays, plan, k, scratch),
            _ => {
                return match bmp::search_or_give_up::<K>(v, arrays, plan, k, scratch, Some(0.125)) {
                    Some(r) => r,
                    None => exhaustive::search::<K>(v, arrays, plan, k, scratch),
                }
            }
        },
    };
    let go = |c: usize, scratch: &mut Scratch| match CANDIDATES[c] {
        Candidate::Exhaustive => exhaustive::search::<K>(v, arrays, plan, k, scratch),
        Candidate::BlockMax => bmp::search::<K>(v, arrays, plan, k, scratch),
        Candidate::Superblock => superblock::search::<K>(v, arrays, plan, k, scratch),
        Candidate::BlockMaxTaat => bmt::search::<K>(v, arrays, plan, k, scratch),
    };
    let timed = |c: usize, scratch: &mut Scratch| {
        let t = Clock::start();
        let out = go(c, scratch);
        (out, t.elapsed_ns())
    };
    match step {
        Step::Lead(c) => go(c, scratch),
        Step::All { counted, first, run } => {
            let mut ns = [f64::NAN; NC];
            let mut out = Vec::new();
            let order: Vec<usize> = run.iter().collect();
            let at = order.iter().position(|&c| c == first).unwrap_or(0);
            for i in 0..order.len() {
                let c = order[(at + i) % order.len()];
                let (o, e) = timed(c, scratch);
                ns[c] = e;
                if i == 0 {
                    out = o;
                }
            }
            if let (true, Some(race)) = (counted, race) {
                let mut all = race.inner.lock().unwrap_or_else(|e| e.into_inner());
                let prior = Prior::of(&all[..], class);
                all[class].record_warm(cands, ns, prior);
            }
            out
        }
        Step::Pair { leader, challenger, counted } => {
            // Alternate who runs first, so that neither profits from the other's warm caches.
            let (out, tl, tc) = if postings.is_multiple_of(2) {
                let (o, tl) = timed(leader, scratch);
                let (_, tc) = timed(challenger, scratch);
                (o, tl, tc)
            } else {
                let (_, tc) = timed(challenger, scratch);
                let (o, tl) = timed(leader, scratch);
                (o, tl, tc)
            };
            if let (true, Some(race)) = (counted, race) {
                race.inner.lock().unwrap_or_else(|e| e.into_inner())[class].record_pair(
                    cands,
                    challenger,
                    (tc / tl.max(1.0)) as f32,
                );
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Cands = Cands(0b1111);

    /// One query of a race where candidate `c` takes `cost[c]` (times of the same query).
    fn step(st: &mut RaceState, cands: Cands, cost: &[f32; NC], runs: &mut [usize; NC]) {
        step_with(st, cands, cost, runs, Prior::default())
    }

    /// [`step`], with the candidates dropped from other classes' warm-ups.
    fn step_with(st: &mut RaceState, cands: Cands, cost: &[f32; NC], runs: &mut [usize; NC], prior: Prior) {
        match st.pick(cands, prior) {
            Step::All { counted, first, run } => {
                assert!(run.has(first) && run.0 & !cands.0 == 0);
                for c in run.iter() {
                    runs[c] += 1;
                }
                if counted {
                    let ns = std::array::from_fn(|c| if run.has(c) { cost[c] as f64 } else { f64::NAN });
                    st.record_warm(cands, ns, prior);
                }
            }
            Step::Lead(c) => runs[c] += 1,
            Step::Pair { leader, challenger, counted } => {
                runs[leader] += 1;
                runs[challenger] += 1;
                if counted {
                    st.record_pair(cands, challenger, cost[challenger] / cost[leader]);
                }
            }
        }
    }

    /// Runs the warm-up (the uncounted first query, then [`WARM`] counted ones) with the cost
    /// of query `i` given by `cost(i)`.
    fn warm_up(st: &mut RaceState, cands: Cands, cost: impl Fn(usize) -> [f32; NC]) {
        let mut runs = [0usize; NC];
        for i in 0..(WARM + 1) {
            step(st, cands, &cost(i), &mut runs);
        }
        for c in 0..NC {
            let want = match (cands.has(c), st.dropped >> c & 1 == 1) {
                (false, _) => 0,
                (true, false) => WARM + 1,
                (true, true) => 1 + DROP_AFTER, // the uncounted first query, then DROP_AFTER
            };
            assert_eq!(runs[c], want, "{runs:?}");
        }
    }

    #[test]
    fn race_warms_up_on_the_same_queries_then_keeps_the_fastest_and_rechecks() {
        let mut st = RaceState::default();
        let cost = [3.0f32, 1.0, 2.0, 4.0]; // time of each candidate on every query
        warm_up(&mut st, ALL, |_| cost);
        assert_eq!(st.leader(), Some(1));
        let mut runs = [0usize; NC];
        for _ in 0..10_000 {
            step(&mut st, ALL, &cost, &mut runs);
        }
        // Re-checks: about BURST runs per RECHECK x ratio queries for each other candidate.
        let expect = |r: f32| 10_000.0 * BURST as f32 / (RECHECK * r + BURST as f32);
        assert!((runs[0] as f32 - expect(3.0)).abs() <= 2.0 * BURST as f32, "{runs:?}");
        assert!((runs[2] as f32 - expect(2.0)).abs() <= 2.0 * BURST as f32, "{runs:?}");
        assert!((runs[3] as f32 - expect(4.0)).abs() <= 2.0 * BURST as f32, "{runs:?}");
        assert_eq!(runs[1], 10_000, "the leader answers every query");
        assert_eq!(st.leader(), Some(1));
        // The leader changes when the times change.
        let cost = [3.0f32, 5.0, 2.0, 4.0];
        for _ in 0..2_000 {
            step(&mut st, ALL, &cost, &mut runs);
        }
        assert_eq!(st.leader(), Some(2));
        // ... and not for a candidate only slightly faster than the leader.
        let mut st2 = RaceState::default();
        warm_up(&mut st2, ALL, |_| [3.0, 1.0, 1.0 / 0.97, 3.0]);
        for _ in 0..5_000 {
            step(&mut st2, ALL, &[3.0, 1.0, 0.98, 3.0], &mut runs);
        }
        assert_eq!(st2.leader(), Some(1), "a 2% gain is within the switch margin");
    }

    #[test]
    fn paired_ratios_pick_the_leader_even_when_query_costs_vary_widely() {
        // Query costs vary 100x from query to query; candidate 2 is always 0.8x candidate 1.
        let mut st = RaceState::default();
        let mut runs = [0usize; NC];
        let mut seed = 7u64;
        for _ in 0..5_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let q = 1.0 + (seed % 100) as f32;
            step(&mut st, ALL, &[3.0 * q, 1.0 * q, 0.8 * q, 2.0 * q], &mut runs);
        }
        assert_eq!(st.leader(), Some(2));
    }

    /// The rule: the leader is the candidate fastest on most queries (smallest median time
    /// relative to the fastest, same queries), elected by the warm-up and never displaced by
    /// a candidate that is faster on few queries however slow the others are there.
    #[test]
    fn leader_is_the_candidate_fastest_on_most_queries() {
        // Superblock pruning (2) is 0.85x block-max pruning (1) on 5 queries of 6 and 4x on
        // the sixth: slower in total (the old rule's pick), faster on most queries.
        let cost = |i: usize| if i % 6 == 3 { [4.0f32, 1.0, 4.0, 2.0] } else { [4.0, 1.0, 0.85, 2.0] };
        assert!((1..=WARM).map(|i| cost(i)[2]).sum::<f32>() > (1..=WARM).map(|i| cost(i)[1]).sum::<f32>());
        let mut st = RaceState::default();
        warm_up(&mut st, ALL, cost);
        assert_eq!(st.leader(), Some(2), "elected: the candidate fastest on most warm-up queries");
        let mut runs = [0usize; NC];
        for i in 0..20_000 {
            step(&mut st, ALL, &cost(i), &mut runs);
            assert_eq!(st.leader(), Some(2), "query {i}: {runs:?}");
        }
        // A preempted run (50x) of the true leader during the warm-up does not outvote it; its
        // near-equal rival (1.04x, inside the switch margin) does not take over either.
        let mut st = RaceState::default();
        warm_up(&mut st, ALL, |i| if i == 2 { [50.0, 1.04, 5.0, 2.0] } else { [1.0, 1.04, 5.0, 2.0] });
        assert_eq!(st.leader(), Some(0));
        for _ in 0..20_000 {
            step(&mut st, ALL, &[1.0, 1.04, 5.0, 2.0], &mut runs);
        }
        assert_eq!(st.leader(), Some(0));
        // A candidate outside the segment's set is never run nor elected.
        let mut st = RaceState::default();
        let mut runs = [0usize; NC];
        for _ in 0..5_000 {
            step(&mut st, Cands(0b011), &[2.0, 1.0, 0.1, 0.1], &mut runs);
        }
        assert_eq!(st.leader(), Some(1));
        assert_eq!((runs[2], runs[3]), (0, 0));
    }

    #[test]
    fn a_wrong_election_is_undone_by_the_rechecks() {
        // Four warm-up queries of six are disturbed so that block-max pruning looks fastest
        // (a persistent disturbance: one outlier cannot sway the median); afterwards the
        // exhaustive scorer is 0.5x. The rings hold the warm-up ratios, so a few re-check
        // bursts (each after RECHECK x ratio queries) outvote them.
        let mut st = RaceState::default();
        warm_up(&mut st, Cands(0b011), |i| if i <= 2 { [1.0, 2.0, 0.0, 0.0] } else { [3.0, 2.0, 0.0, 0.0] });
        assert_eq!(st.leader(), Some(1));
        let mut runs = [0usize; NC];
        let mut switched = None;
        for i in 0..5_000 {
            step(&mut st, Cands(0b011), &[1.0, 2.0, 0.0, 0.0], &mut runs);
            if switched.is_none() && st.leader() == Some(0) {
                switched = Some(i);
            }
        }
        assert_eq!(st.leader(), Some(0));
        let limit = 3 * ((RECHECK * 1.5) as usize + BURST);
        assert!(switched.is_some_and(|i| i <= limit), "switched after {switched:?} queries (limit {limit})");
    }

    /// Debian's query-cost class 2 (stop 18): six warm-up queries put block-max TAAT (3) at
    /// 1.05x the exhaustive scorer (0), which is elected, while over the class bmt takes 0.9x
    /// its time. A close candidate is re-checked every EARLY queries until it has RING pairs,
    /// so the race moves to bmt within a few bursts, not after RECHECK x 1.05 (268) queries;
    /// far candidates (bmp 3x, sp 10x) are still re-checked only every RECHECK x r queries.
    #[test]
    fn a_close_runner_up_is_rechecked_early_and_takes_the_lead_when_faster() {
        let mut st = RaceState::default();
        warm_up(&mut st, ALL, |i| if i % 2 == 0 { [1.0, 3.0, 10.0, 1.08] } else { [1.0, 3.0, 10.0, 1.02] });
        assert_eq!(st.leader(), Some(0));
        let cost = [1.0f32, 3.0, 10.0, 0.9];
        let mut runs = [0usize; NC];
        let mut switched = None;
        for i in 0..2_000 {
            step(&mut st, ALL, &cost, &mut runs);
            if switched.is_none() && st.leader() == Some(3) {
                switched = Some(i);
            }
        }
        let limit = 4 * (EARLY as usize + BURST);
        assert!(switched.is_some_and(|i| i <= limit), "switched after {switched:?} queries (limit {limit})");
        assert_eq!(st.leader(), Some(3));
        // ... and stays: the exhaustive scorer (1.11x bmt) is close, re-checked early, but never
        // below the switch margin; bmp (3.3x bmt) and sp (11x) are re-checked once on the
        // switch, then every RECHECK x r queries: about three bursts and one in 2,000 queries.
        assert!(runs[1] <= 3 * BURST && runs[2] <= BURST, "{runs:?}");
        // Once a close candidate has RING pairs it falls back to RECHECK x r: in 10,000 more
        // queries the exhaustive scorer runs about BURST per RECHECK x 1.11 queries.
        let mut runs = [0usize; NC];
        for _ in 0..10_000 {
            step(&mut st, ALL, &cost, &mut runs);
        }
        let expect = 10_000.0 * BURST as f32 / (RECHECK * (1.0 / 0.9) + BURST as f32);
        assert!((runs[0] as f32 - expect).abs() <= 2.0 * BURST as f32, "{runs:?}, expected {expect}");
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn runs_are_timed_in_thread_cpu_time_not_wall_time() {
        // A thread that sleeps spends no CPU time: preemption does not count against a run.
        let t = Clock::start();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(t.elapsed_ns() < 20e6, "{} ns", t.elapsed_ns());
        // ... while work does.
        let t = Clock::start();
        let mut x = 1u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        assert!(t.elapsed_ns() > 0.0 && x != 0);
    }

    #[test]
    fn each_query_cost_class_races_on_its_own() {
        assert_eq!(
            [0, 59_999, 60_000, 119_999, 120_000, 239_999, 240_000, u64::MAX].map(|p| class_of(p, 60_000, 10)),
            [0, 0, 1, 1, 2, 2, 3, 3]
        );
        // a long query has a class of its own, whatever its postings
        assert_eq!([0, u64::MAX].map(|p| class_of(p, 60_000, LONG_QUERY)), [0, 3]);
        assert_eq!([0, u64::MAX].map(|p| class_of(p, 60_000, LONG_QUERY + 1)), [LONG, LONG]);
        // Cheap queries favour block-max pruning, costly ones superblock pruning (as on
        // synthetic 100k): each class elects its own leader.
        let race = Race::default();
        let mut runs = [0usize; NC];
        for i in 0..2_000 {
            let (class, cost) = if i % 2 == 0 { (1, [2.0f32, 1.0, 1.3, 3.0]) } else { (3, [2.0, 1.0, 0.7, 3.0]) };
            let mut all = race.inner.lock().unwrap();
            step(&mut all[class], ALL, &cost, &mut runs);
        }
        let st = race.standings();
        assert_eq!(st.iter().map(|s| s.1).collect::<Vec<_>>(), vec![None, Some("bmp"), None, Some("sp"), None]);
        assert_eq!(st.iter().map(|s| s.0).sum::<u64>(), 2_000);
    }

    /// A candidate [`DROP`] times slower than the fastest on each of its first [`DROP_AFTER`]
    /// counted warm-up queries runs on no more of them (superblock pruning on debian, 10-70x
    /// the exhaustive scorer, ran on each class's first seven queries: helper-101); one slow
    /// run alone drops no one, and a dropped candidate is re-checked later, from the ratios
    /// it was measured at.
    #[test]
    fn a_candidate_far_slower_leaves_the_warm_up() {
        let mut st = RaceState::default();
        // sp 30x, bmp 3x (kept: not DROP times slower), bmt 1.2x; the exhaustive scorer's
        // first and third counted runs are slowed 20x, which must not drop it.
        warm_up(&mut st, ALL, |i| if i == 1 || i == 3 { [20.0, 3.0, 30.0, 1.2] } else { [1.0, 3.0, 30.0, 1.2] });
        assert_eq!(st.dropped, 1 << 2, "only sp leaves the warm-up");
        assert_eq!(st.leader(), Some(0));
        assert_eq!(st.ratios[2], vec![1.5, 30.0], "sp's ring: the ratios it was measured at");
        assert_eq!(st.ratios[1].len(), WARM, "bmp ran the whole warm-up");
        let mut runs = [0usize; NC];
        let cost = [1.0f32, 3.0, 30.0, 1.2];
        for _ in 0..20_000 {
            step(&mut st, ALL, &cost, &mut runs);
        }
        // re-checked about every RECHECK x 30 queries, in bursts of BURST
        let want = 20_000.0 / (RECHECK as f64 * 30.0 + BURST as f64) * BURST as f64;
        assert!((runs[2] as f64 - want).abs() <= BURST as f64 + 1.0, "{runs:?} {want}");
        assert_eq!(st.leader(), Some(0));
    }

    /// A candidate dropped from another class's warm-up skips this class's uncounted first
    /// query, and leaves after one counted query [`DROP`] times slower; one that is fast here
    /// stays in the race and can lead it. Once another class has seen a query, a class's
    /// first query is counted: the segment is warm.
    #[test]
    fn a_candidate_dropped_in_another_class_is_dropped_sooner() {
        let sp = 1u8 << 2;
        let mut st = RaceState::default();
        let mut runs = [0usize; NC];
        let prior = Prior { suspect: sp, warmed: false };
        for _ in 0..(WARM + 1) {
            step_with(&mut st, ALL, &[1.0, 3.0, 30.0, 1.2], &mut runs, prior);
        }
        assert_eq!(runs, [WARM + 1, WARM + 1, 1, WARM + 1], "sp ran on the first counted query only");
        assert_eq!((st.dropped, st.leader()), (sp, Some(0)));
        // fast here: measured on every counted query, and elected
        let mut st = RaceState::default();
        let mut runs = [0usize; NC];
        for _ in 0..(WARM + 1) {
            step_with(&mut st, ALL, &[1.0, 3.0, 0.5, 1.2], &mut runs, prior);
        }
        assert_eq!(runs, [WARM + 1, WARM + 1, WARM, WARM + 1]);
        assert_eq!((st.dropped, st.leader()), (0, Some(2)));
        // a warm segment: no uncounted query; the leader is elected after WARM queries
        let mut st = RaceState::default();
        let mut runs = [0usize; NC];
        for _ in 0..WARM {
            step_with(&mut st, ALL, &[1.0, 3.0, 30.0, 1.2], &mut runs, Prior { suspect: sp, warmed: true });
        }
        assert_eq!(runs, [WARM, WARM, 1, WARM]);
        assert_eq!((st.dropped, st.leader()), (sp, Some(0)));
    }

    /// A query of more than [`LONG_QUERY`] terms races only the exhaustive scorer and bmt,
    /// in a class of its own (before, every warm-up query of a fresh segment also ran block-max
    /// and superblock pruning: an 8,000-term query took 0.5-1 s on debian where the exhaustive
    /// scorer takes 11 ms), and its hits are the exhaustive scorer's.
    #[test]
    fn long_queries_race_only_the_exhaustive_scorer_and_bmt() {
        use crate::index::build::{build, BuildOptions, Quantization, Reorder};
        use crate::index::ids::IdsInput;
        use crate::search::{search, Algorithm, QueryRef};
        use crate::synth::{generate, SynthParams};
        use crate::vectors::CsrRef;
        // above SMALL_INDEX: a race runs
        let vocab = 2_000u32;
        let p = SynthParams {
            n_docs: 40_000,
            n_queries: 1,
            vocab_size: vocab,
            doc_nnz: 20.0,
            seed: 7,
            ..SynthParams::default()
        };
        let (docs, _) = generate(&p);
        let csr = CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values };
        let opts = BuildOptions {
            n_terms: None,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::None,
        };
        let ix = build(csr, IdsInput::None, &opts).unwrap().index;
        for q in 0..(WARM as u32 + 4) {
            let terms: Vec<u32> = (0..LONG_QUERY as u32 + 88)
                .map(|t| (t * 3 + q) % vocab)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert!(terms.len() > LONG_QUERY);
            let weights: Vec<f32> = terms.iter().map(|&t| 1.0 + (t % 7) as f32).collect();
            let qr = QueryRef { terms: &terms, weights: &weights };
            let got = search(&ix, qr, 10, Algorithm::Auto).unwrap();
            let want = search(&ix, qr, 10, Algorithm::Exhaustive).unwrap();
            assert_eq!(
                got.iter().map(|h| (h.doc, h.score)).collect::<Vec<_>>(),
                want.iter().map(|h| (h.doc, h.score)).collect::<Vec<_>>()
            );
        }
        let all = ix.auto_race().inner.lock().unwrap();
        let long = &all[LONG];
        assert_eq!(long.queries, WARM as u64 + 4);
        assert!(matches!(long.leader, Some(0) | Some(3)), "leader {:?}", long.leader);
        let bmp_sp = [Candidate::BlockMax as usize, Candidate::Superblock as usize];
        assert!(bmp_sp.iter().all(|&c| long.ratios[c].is_empty() && long.paired[c] == 0), "{long:?}");
        assert!(all[..LONG].iter().all(|s| s.queries == 0), "short classes saw no query");
    }
}
