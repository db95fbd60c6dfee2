//! The rule behind [`Algorithm::Auto`](super::Algorithm::Auto).
//!
//! Cheap cases are decided from counts (measured with `benches/auto_rule.py` on the
//! synthetic SPLADE-like corpus at 100k and 1M documents, see benches/README.md):
//! - a filter that leaves documents whose stored vectors hold fewer entries than the query's
//!   posting lists (and the index stores vectors): score those documents one by one
//!   ([`super::forward`]);
//! - a query whose lists hold fewer postings than 5% of the documents: MaxScore (the
//!   exhaustive scorer's pass over every accumulator would dominate);
//! - an index (segment) of fewer than 32,768 documents, or a filter that leaves fewer than
//!   1/8 of the documents: the exhaustive scorer.
//!
//! Otherwise whether block-max pruning pays depends on how tightly the segment's document
//! order clusters its postings, which no count predicts: on 1M synthetic documents reordered
//! by graph bisection superblock pruning is 6.7x faster than the exhaustive scorer, on 60k
//! real SPLADE vectors (debian) in the same order it is 10x *slower* (medians of 2,000
//! queries, `examples/probe.rs`). So the choice is **measured on the segment itself** (a
//! *race*, [`Race`]): the candidates are the exhaustive scorer, block-max pruning and, when
//! the segment stores its vectors, superblock pruning. A segment's first queries run each
//! candidate in a burst of `1 + WARM` consecutive queries (the first run of a burst only
//! warms the caches and is not counted) and record the time per posting of each query; from
//! then on the candidate with the lowest median time per posting over its last [`RING`]
//! counted runs is used. The others are re-checked in bursts of [`BURST`] queries, a
//! candidate `r` times slower than the leader every `RECHECK x r` queries (so each costs
//! about `BURST / RECHECK` = 2% of the leader's time), so that the choice follows the
//! machine's load and the query mix. Every candidate is exact, so the race changes only the
//! speed, never the hits.

use super::plan::Plan;
use super::{bmp, exhaustive, forward, maxscore, superblock, Kind, Scratch};
use std::sync::Mutex;
use std::time::Instant;
use crate::index::{ImpactArrays, IndexView};

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

/// Counted runs per candidate in the warm-up.
pub const WARM: usize = 4;
/// Runs per candidate whose times are kept.
pub const RING: usize = 6;
/// Consecutive runs of a re-checked candidate (the first is not counted).
pub const BURST: usize = 3;
/// A candidate `r` times slower than the leader is re-checked `RECHECK x r` queries after
/// its last run, so that re-checks cost about `BURST / RECHECK` of the leader's time per
/// candidate whatever their speed.
pub const RECHECK: f32 = 128.0;

/// The candidates of the race, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    Exhaustive,
    BlockMax,
    Superblock,
}

const CANDIDATES: [Candidate; 3] = [Candidate::Exhaustive, Candidate::BlockMax, Candidate::Superblock];

/// A segment's race between auto's candidates: recent times per posting of each.
#[derive(Debug, Default)]
pub struct Race {
    inner: Mutex<RaceState>,
}

#[derive(Debug, Default)]
struct RaceState {
    /// Nanoseconds per posting of the last [`RING`] counted runs of each candidate.
    times: [Vec<f32>; 3],
    /// Next slot of each ring.
    next: [usize; 3],
    /// Queries decided so far.
    queries: u64,
    /// The candidate of the burst under way and its runs left.
    burst: Option<(usize, usize)>,
    /// The query count from which each candidate is due for a re-check.
    due: [u64; 3],
}

fn median(xs: &[f32]) -> f32 {
    if xs.is_empty() {
        return f32::INFINITY;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

impl RaceState {
    /// The candidate to run next among the first `n`, and whether its time counts (the first
    /// run of a burst only warms the caches).
    fn pick(&mut self, n: usize) -> (usize, bool) {
        self.queries += 1;
        if let Some((c, left)) = self.burst {
            self.burst = if left > 1 { Some((c, left - 1)) } else { None };
            return (c, true);
        }
        if let Some(c) = (0..n).find(|&c| self.times[c].is_empty()) {
            self.burst = Some((c, WARM));
            return (c, false);
        }
        let best = self.leader(n);
        let lead = median(&self.times[best]).max(1e-3);
        for c in (0..n).filter(|&c| c != best) {
            if self.queries >= self.due[c] {
                let ratio = (median(&self.times[c]) / lead).clamp(1.0, 1e3);
                self.due[c] = self.queries + BURST as u64 + (RECHECK * ratio) as u64;
                self.burst = Some((c, BURST - 1));
                return (c, false);
            }
        }
        (best, true)
    }

    fn leader(&self, n: usize) -> usize {
        (0..n).min_by(|&a, &b| median(&self.times[a]).total_cmp(&median(&self.times[b]))).unwrap_or(0)
    }

    fn record(&mut self, c: usize, ns_per_posting: f32) {
        if self.times[c].len() < RING {
            self.times[c].push(ns_per_posting);
        } else {
            self.times[c][self.next[c]] = ns_per_posting;
        }
        self.next[c] = (self.next[c] + 1) % RING;
        if self.due[c] == 0 {
            // First due date after the warm-up: one re-check interval.
            self.due[c] = self.queries + RECHECK as u64;
        }
    }
}

impl Race {
    /// The candidate leading the race on a segment, by name (`None` before the warm-up ends),
    /// with the median nanoseconds per posting of every candidate run so far.
    pub fn standing(&self) -> (Option<&'static str>, Vec<(&'static str, f32)>) {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let names = ["exhaustive", "bmp", "sp"];
        let n = (0..3).filter(|&c| !st.times[c].is_empty()).count();
        let warm = n >= 2 && (0..n).all(|c| st.times[c].len() >= WARM);
        let lead = if warm { Some(names[st.leader(n)]) } else { None };
        (lead, (0..3).filter(|&c| !st.times[c].is_empty()).map(|c| (names[c], median(&st.times[c]))).collect())
    }
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
    let postings: u64 = plan.terms.iter().map(|pt| v.df(pt.term)).sum();
    if let (Some(allowed), Some(fwd)) = (&plan.allowed, &v.forward) {
        // Expected stored entries of the allowed documents.
        let entries = (allowed.len() as f64) * (fwd.terms.len() as f64) / (v.n_docs.max(1) as f64);
        if entries < FORWARD_RATIO * postings as f64 {
            return forward::search::<K>(v, fwd, plan, k, &mut scratch.table);
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
        return exhaustive::search::<K>(v, arrays, plan, k, scratch);
    }
    let Some(race) = race else {
        return match bmp::search_or_give_up::<K>(v, arrays, plan, k, scratch, Some(0.125)) {
            Some(r) => r,
            None => exhaustive::search::<K>(v, arrays, plan, k, scratch),
        };
    };
    let n = if v.forward.is_some() { 3 } else { 2 };
    let (c, counted) = race.inner.lock().unwrap_or_else(|e| e.into_inner()).pick(n);
    let t = Instant::now();
    let out = match CANDIDATES[c] {
        Candidate::Exhaustive => exhaustive::search::<K>(v, arrays, plan, k, scratch),
        Candidate::BlockMax => bmp::search::<K>(v, arrays, plan, k, scratch),
        Candidate::Superblock => superblock::search::<K>(v, arrays, plan, k, scratch),
    };
    if counted {
        let ns = t.elapsed().as_nanos() as f64 / postings.max(1) as f64;
        race.inner.lock().unwrap_or_else(|e| e.into_inner()).record(c, ns as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(st: &mut RaceState, cost: &[f32; 3], runs: &mut [usize; 3]) -> usize {
        let (c, counted) = st.pick(3);
        runs[c] += 1;
        if counted {
            st.record(c, cost[c]);
        }
        c
    }

    #[test]
    fn race_warms_up_every_candidate_then_keeps_the_fastest_and_rechecks() {
        let mut st = RaceState::default();
        let cost = [3.0f32, 1.0, 2.0]; // ns per posting of each candidate
        let mut runs = [0usize; 3];
        for _ in 0..3 * (WARM + 1) {
            step(&mut st, &cost, &mut runs);
        }
        assert_eq!(runs, [WARM + 1; 3], "the warm-up runs each candidate 1 + WARM times");
        assert_eq!(st.leader(3), 1);
        let mut runs = [0usize; 3];
        for _ in 0..10_000 {
            step(&mut st, &cost, &mut runs);
        }
        // Re-checks: about BURST runs per RECHECK x ratio queries for each other candidate.
        let expect = |r: f32| 10_000.0 * BURST as f32 / (RECHECK * r + BURST as f32);
        assert!((runs[0] as f32 - expect(3.0)).abs() <= 2.0 * BURST as f32, "{runs:?}");
        assert!((runs[2] as f32 - expect(2.0)).abs() <= 2.0 * BURST as f32, "{runs:?}");
        // The leader changes when the times change.
        let cost = [3.0f32, 5.0, 2.0];
        for _ in 0..2_000 {
            step(&mut st, &cost, &mut runs);
        }
        assert_eq!(st.leader(3), 2);
    }
}
