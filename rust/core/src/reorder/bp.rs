//! Document reordering by recursive graph bisection (BP).
//!
//! Dhulipala, Kabiljo, Karrer, Ottaviano, Pupyrev & Shalita, "Compressing graphs and indexes
//! with recursive graph bisection", KDD 2016: view the collection as a bipartite graph of
//! documents and terms; split the documents in two halves, then repeatedly swap the pairs of
//! documents whose move lowers the *log-gap cost* of both halves the most,
//! `sum over terms t, halves h of deg_h(t) * log2(n_h / (deg_h(t) + 1))`
//! (an estimate of the bits the gaps of `t`'s postings take); recurse into each half. Documents
//! that share terms end up close, so posting gaps shrink and, what block-max pruning needs,
//! blocks of neighbouring ids hold documents about the same thing.
//!
//! Speed-ups, after Mackenzie, Petri & Moffat, "Faster index reordering with bipartite graph
//! partitioning" (SIGIR 2021) and "Tradeoff options for bipartite graph partitioning" (TKDE
//! 2023), and PISA's implementation:
//! - move gains are cached per term (one pass over a partition's postings per iteration),
//!   from a table of cost differences;
//! - a partition stops iterating once few documents move ([`BpOptions::min_swap_fraction`]);
//!   fewer iterations ([`BpOptions::max_iterations`]) than the paper's 20, and optionally
//!   fewer still at deep levels ([`BpOptions::deep_iterations`]);
//! - recursion stops at [`BpOptions::leaf_size`] documents: below the 64-document block of
//!   block-max pruning the order barely matters; split points are multiples of
//!   [`BpOptions::align`], so that every partition is made of whole blocks;
//! - terms that occur once in a partition cannot affect its cost and are dropped from it and
//!   its descendants, and each partition numbers its terms anew (small per-term arrays that
//!   stay in cache); terms rarer than [`BpOptions::min_df`] are never considered;
//! - only the pairs that can have a positive combined gain are selected and sorted;
//! - the two halves recurse in parallel (rayon), and large partitions count degrees and
//!   compute gains in parallel.
//!
//! Impact-aware variants (our addition, for block-max pruning, whose block bounds are sums of
//! per-term block *maxima*): [`BpWeighting::Impact`] counts each posting in proportion to its
//! weight, so that a term's heavy postings weigh most in where a document goes;
//! [`BpOptions::min_weight_ratio`] keeps only each document's heavy postings (at least this
//! fraction of its largest weight); [`BpWeighting::Levels`] splits each term into weight
//! levels. On SPLADE-like vectors (debian, synthetic 100k and 1M; `benches/reorder.py`),
//! impact weighting of the postings above 0.3 x the document's largest weight gives blocks as
//! tight as, or tighter than, the classic objective over all postings, for about half of its
//! time: that is the default.
//!
//! In the builder ([`crate::index::Reorder::Bp`], the default order of a build, of
//! [`crate::index::merge()`] and of a store's commits and merges), measured end to end by
//! `benches/reorder_modes.py` (results in `benches/results/reorder-modes-*.md`): BP takes
//! about three times the CPU of a build without reordering (debian 60k: 2.2 against 0.6 CPU
//! seconds; synthetic 1M: 44 against 15), the same at a merge (the members' orders concatenated
//! are the starting order), keeps the postings within 1% of the signature order's size
//! (4.6% smaller at 1M), and cuts the time of block-max pruning (`bmp`) against the signature
//! order by 31% on debian and 66% at 1M (where `auto`, which runs `bmp`, gets 1.7x faster
//! built and 2.2x merged): the reason it is the default.
//!
//! Determinism: every step is a function of the input and options only. Degrees are integer
//! sums, each document's gain is summed in a fixed order, sorts use a total order (gain, then
//! position), so the output is the same whatever the number of threads.

use super::bisect::{self, Part, Tables};
use rayon::prelude::*;

/// How a posting counts in the degrees of the bisection cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpWeighting {
    /// Every posting counts 1: the log-gap objective of Dhulipala et al.
    Uniform,
    /// A posting counts in proportion to its weight (relative to the mean weight of the
    /// postings considered, clamped to 1/16..16 times it): documents are grouped by the
    /// terms they weigh most.
    Impact,
    /// Every posting counts 1, but a term is split into `n` nested levels: level 0 holds all
    /// its postings, level `j` those weighing at least `2^(j-1)` times the mean weight. The
    /// log-gap cost of level `j` estimates how many blocks hold a weight above its
    /// threshold, so the sum over levels tracks the sum of block maxima that block-max
    /// pruning adds up. `Levels(1)` is [`Self::Uniform`].
    Levels(u8),
}

/// Options of [`bp_order`]. The defaults are the measured recommendation (see
/// `benches/reorder.py` and its results).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BpOptions {
    /// Stop bisecting partitions of at most this many documents (default 64, the block of
    /// block-max pruning). At least 1.
    pub leaf_size: usize,
    /// Split points are multiples of this many documents when a partition is larger than
    /// twice it (default 64), so that partitions are made of whole doc blocks. 1 disables.
    pub align: usize,
    /// Stop bisecting below this depth (default 64: no limit in practice; 0 = no bisection).
    pub max_depth: u32,
    /// Swap iterations per bisection for the partitions larger than [`Self::deep_size`]
    /// (default 10; Dhulipala et al. use 20, which orders debian's blocks about 2% better
    /// for about 1.5 times the time).
    pub max_iterations: u32,
    /// Swap iterations per bisection for partitions of at most [`Self::deep_size`] documents
    /// (default 10). The deep levels form the 64-document blocks: cutting their iterations
    /// costs pruning quality first.
    pub deep_iterations: u32,
    /// Size (documents) at or below which a partition counts as deep (default 0: none).
    pub deep_size: usize,
    /// A bisection stops iterating when an iteration swaps fewer than this fraction of its
    /// documents (default 0.002; 0 = only when nothing moves).
    pub min_swap_fraction: f64,
    /// Terms in fewer documents than this are ignored (default 2; a term in one document
    /// never changes the cost).
    pub min_df: u32,
    /// Terms in more than this fraction of the documents are ignored (default 1.0: none).
    pub max_df_fraction: f64,
    /// How postings count (default [`BpWeighting::Impact`]).
    pub weighting: BpWeighting,
    /// Keep only postings whose weight is at least this fraction of their document's largest
    /// weight (default 0.3, which keeps 28-35% of SPLADE-like postings: 2-3 times faster, and
    /// blocks as tight or tighter; 0.0 keeps all). In `0.0..=1.0`.
    pub min_weight_ratio: f32,
}

impl Default for BpOptions {
    fn default() -> Self {
        BpOptions {
            leaf_size: 64,
            align: 64,
            max_depth: 64,
            max_iterations: 10,
            deep_iterations: 10,
            deep_size: 0,
            min_swap_fraction: 0.002,
            min_df: 2,
            max_df_fraction: 1.0,
            weighting: BpWeighting::Impact,
            min_weight_ratio: 0.3,
        }
    }
}

impl BpOptions {
    /// Check the options; the error names the offending field.
    pub fn check(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::InvalidArgument(m));
        if self.leaf_size == 0 {
            return bad("BP leaf_size must be at least 1".into());
        }
        if self.align == 0 {
            return bad("BP align must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_swap_fraction) {
            return bad(format!("BP min_swap_fraction must be in [0, 1], got {}", self.min_swap_fraction));
        }
        if !(self.max_df_fraction > 0.0 && self.max_df_fraction <= 1.0) {
            return bad(format!("BP max_df_fraction must be in (0, 1], got {}", self.max_df_fraction));
        }
        if !(0.0..=1.0).contains(&self.min_weight_ratio) {
            return bad(format!("BP min_weight_ratio must be in [0, 1], got {}", self.min_weight_ratio));
        }
        Ok(())
    }

    /// Iterations for a partition of `n` documents.
    pub(crate) fn iterations(&self, n: usize) -> u32 {
        if n <= self.deep_size {
            self.deep_iterations
        } else {
            self.max_iterations
        }
    }
}

/// Order documents by recursive graph bisection, starting from the input order.
///
/// Documents are CSR rows: row `d` has terms `terms[indptr[d]..indptr[d + 1]]` (dense ids
/// below `n_terms`) with weights `values[..]`; postings with a weight that is not positive
/// are ignored. Returns `order` with `order[new_id] = input_row`, a permutation of
/// `0..n_docs`. Memory: about 10 bytes per considered posting, 40 bytes per document and
/// 4 bytes per term.
///
/// # Panics
/// If `indptr` is empty, does not start at 0, decreases or does not end at `terms.len()`,
/// if `values.len() != terms.len()`, if there are `u32::MAX` documents or more, if a term
/// is `>= n_terms`, if the options fail [`BpOptions::check`], or if the number of kept terms
/// times the levels of [`BpWeighting::Levels`] exceeds `u32::MAX`. (The builder and the
/// bindings check the input and the options first.)
pub fn bp_order(indptr: &[u64], terms: &[u32], values: &[f32], n_terms: u32, opts: &BpOptions) -> Vec<u32> {
    let n = indptr.len().saturating_sub(1);
    let init: Vec<u32> = (0..n as u32).collect();
    bp_refine(indptr, terms, values, n_terms, &init, opts)
}

/// [`bp_order`] starting from the order `init` (`init[position] = input_row`, a permutation)
/// instead of the input order: the first split puts `init`'s first half on the left. A good
/// start (already-ordered segments concatenated, a signature sort) lets fewer iterations do.
///
/// # Panics
/// As [`bp_order`], and if `init` is not a permutation of `0..n_docs`.
pub fn bp_refine(
    indptr: &[u64],
    terms: &[u32],
    values: &[f32],
    n_terms: u32,
    init: &[u32],
    opts: &BpOptions,
) -> Vec<u32> {
    check_input(indptr, terms, values, n_terms, init);
    if let Err(e) = opts.check() {
        panic!("{e}");
    }
    let n = init.len();
    if n <= 1 {
        return init.to_vec();
    }
    let stop = crate::cancel::watch();
    if stop.stopped() {
        return init.to_vec();
    }
    let graph = Graph::new(indptr, terms, values, n_terms, init, opts);
    let Graph { docs, starts, terms: gterms, units, n_terms } = graph;
    let total = gterms.len();
    let mut a = (docs, starts, gterms, units);
    let mut b = (vec![0u32; n], vec![0usize; n], vec![0u32; total], vec![0u8; total]);
    let mut out = vec![0u32; n];
    let tables = Tables::new(n, opts.weighting);
    let ctx = bisect::Ctx { opts, tables: &tables, stop };
    let src = Part { docs: &mut a.0, starts: &mut a.1, terms: &mut a.2, units: &mut a.3, n_terms: n_terms as usize };
    let dst = Part { docs: &mut b.0, starts: &mut b.1, terms: &mut b.2, units: &mut b.3, n_terms: 0 };
    bisect::recurse(&ctx, 0, src, dst, &mut out);
    out
}

fn check_input(indptr: &[u64], terms: &[u32], values: &[f32], n_terms: u32, init: &[u32]) {
    assert!(!indptr.is_empty() && indptr[0] == 0, "bp: indptr must start with 0");
    assert!(indptr.windows(2).all(|w| w[0] <= w[1]), "bp: indptr decreases");
    assert_eq!(*indptr.last().unwrap(), terms.len() as u64, "bp: indptr must end at the number of terms");
    assert_eq!(terms.len(), values.len(), "bp: terms and values differ in length");
    let n = indptr.len() - 1;
    assert!(n < u32::MAX as usize, "bp: too many documents ({n})");
    if let Some(&t) = terms.iter().find(|&&t| t >= n_terms) {
        panic!("bp: term {t} is out of range (n_terms {n_terms})");
    }
    assert_eq!(init.len(), n, "bp: the initial order has {} entries for {n} documents", init.len());
    let mut seen = vec![false; n];
    for &d in init {
        assert!((d as usize) < n && !seen[d as usize], "bp: the initial order is not a permutation (row {d})");
        seen[d as usize] = true;
    }
}

/// Documents per chunk of the parallel passes over the input (fixed, so that results do not
/// depend on the number of threads; small under test, so that tests use several).
#[cfg(not(test))]
const CHUNK: usize = 4096;
#[cfg(test)]
const CHUNK: usize = 16;

/// Fixed-point scale of [`BpWeighting::Impact`] units: a posting of mean weight counts 16.
pub(crate) const UNIT_SCALE: f32 = 16.0;

/// The postings BP considers, in the initial order: document `i` (input row `docs[i]`) has
/// terms `terms[starts[i]..starts[i + 1]]` (or to the end) with integer units `units[..]`.
struct Graph {
    /// Number of (pseudo-)terms: `n_terms`, times the levels of [`BpWeighting::Levels`].
    n_terms: u32,
    docs: Vec<u32>,
    starts: Vec<usize>,
    terms: Vec<u32>,
    units: Vec<u8>,
}

impl Graph {
    fn new(indptr: &[u64], terms: &[u32], values: &[f32], n_terms: u32, init: &[u32], opts: &BpOptions) -> Graph {
        let n = init.len();
        let nt = n_terms as usize;
        let ratio = opts.min_weight_ratio;
        // A posting is heavy enough if its weight is positive and at least `ratio` x its
        // document's largest weight.
        let row = |d: u32| {
            let (a, b) = (indptr[d as usize] as usize, indptr[d as usize + 1] as usize);
            let top = values[a..b].iter().copied().filter(|w| *w > 0.0).fold(0.0f32, f32::max);
            let floor = if ratio > 0.0 { top * ratio } else { 0.0 };
            terms[a..b].iter().zip(&values[a..b]).filter(move |(_, &w)| w > 0.0 && w >= floor)
        };
        // 1. Document frequencies of the kept postings (integer sums: order-free).
        let df = init
            .par_chunks(CHUNK)
            .fold(
                || vec![0u32; nt],
                |mut df, chunk| {
                    for &d in chunk {
                        for (&t, _) in row(d) {
                            df[t as usize] += 1;
                        }
                    }
                    df
                },
            )
            .reduce(
                || vec![0u32; nt],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            );
        let max_df = (opts.max_df_fraction * n as f64).floor().max(1.0) as u32;
        let keep_term: Vec<bool> = df.iter().map(|&f| f >= opts.min_df.max(2) && f <= max_df).collect();
        // Kept terms are numbered densely (the bisection's per-term arrays are that long).
        let mut n_kept = 0u32;
        let local: Vec<u32> = keep_term
            .iter()
            .map(|&k| {
                n_kept += k as u32;
                n_kept.wrapping_sub(1)
            })
            .collect();
        // 2. Units: 1, or the weight relative to the mean weight of the kept postings (sums in
        //    fixed chunks, added in order: the same float result whatever the threads).
        let mean_weight = || {
            let sums: Vec<(f64, u64)> = init
                .par_chunks(CHUNK)
                .map(|chunk| {
                    let (mut s, mut c) = (0.0f64, 0u64);
                    for &d in chunk {
                        for (&t, &w) in row(d) {
                            if keep_term[t as usize] {
                                s += w as f64;
                                c += 1;
                            }
                        }
                    }
                    (s, c)
                })
                .collect();
            let (s, c) = sums.iter().fold((0.0f64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
            if c > 0 {
                (s / c as f64) as f32
            } else {
                1.0
            }
        };
        let (levels, mean) = match opts.weighting {
            BpWeighting::Uniform => (1u32, 1.0),
            BpWeighting::Impact => (1, mean_weight()),
            BpWeighting::Levels(l) => (l.max(1) as u32, mean_weight()),
        };
        let impact = opts.weighting == BpWeighting::Impact;
        let unit_of = |w: f32| if impact { (w / mean * UNIT_SCALE).round().clamp(1.0, 255.0) as u8 } else { 1u8 };
        // Level of a posting: how many of the thresholds mean x 1, 2, 4, ... it reaches.
        let level_of = |w: f32| {
            let mut j = 0;
            let mut thr = mean;
            while j + 1 < levels && w >= thr {
                j += 1;
                thr *= 2.0;
            }
            j
        };
        // 3. The rows, in fixed chunks, concatenated in order.
        let chunks: Vec<(Vec<u32>, Vec<u32>, Vec<u8>)> = init
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut lens = Vec::with_capacity(chunk.len());
                let (mut ts, mut us) = (Vec::new(), Vec::new());
                for &d in chunk {
                    let before = ts.len();
                    for (&t, &w) in row(d) {
                        if keep_term[t as usize] {
                            for j in 0..=level_of(w) {
                                ts.push(local[t as usize] * levels + j);
                                us.push(unit_of(w));
                            }
                        }
                    }
                    lens.push((ts.len() - before) as u32);
                }
                (lens, ts, us)
            })
            .collect();
        let total: usize = chunks.iter().map(|c| c.1.len()).sum();
        let mut g = Graph {
            n_terms: n_kept.checked_mul(levels).expect("bp: n_terms x levels overflows u32"),
            docs: init.to_vec(),
            starts: Vec::with_capacity(n),
            terms: Vec::with_capacity(total),
            units: Vec::with_capacity(total),
        };
        for (lens, ts, us) in chunks {
            let mut at = g.terms.len();
            for l in lens {
                g.starts.push(at);
                at += l as usize;
            }
            g.terms.extend_from_slice(&ts);
            g.units.extend_from_slice(&us);
        }
        g
    }
}
