//! The *high layer* of a quantized segment: for every term, the postings whose impact is at
//! least [`RHO`] of the term's largest, in doc order: the postings that can make a large
//! contribution to a score.
//!
//! Approximate search's candidate stage may skip the postings of the cut query's lighter terms
//! that contribute little, as impact-ordered query processing does when it stops early (Anh &
//! Moffat, "Pruned query evaluation using pre-computed impacts", SIGIR 2006; Lin & Trotman,
//! "Anytime ranking for impact-ordered indexes", ICTIR 2015; Seismic's static pruning, Bruch et
//! al. SIGIR 2024, keeps the heaviest postings of each list likewise). With `gamma > 0`, each
//! term the cut keeps is read ([`reads`]):
//!
//! - whole, when weight x layer floor reaches `gamma` x the query's largest term contribution
//!   (weight x the term's largest impact): at `gamma` 0.1 and [`RHO`] 0.3, the terms of at least
//!   a third of the largest contribution;
//! - else from its high layer only: every posting left out contributes less than weight x floor.
//!
//! A flat query (many terms of similar contribution, whose top documents add up many low
//! impacts) thus keeps most of its terms whole, and a peaked one (a few heavy terms, many light
//! expansion terms) reads its light terms' layers. Reading every kept term from its layer
//! (`gamma` 1) was faster again, but lost recall on flat queries (see
//! `calibrate::LAYERED`).
//!
//! In the engine (`examples/approx_grid.rs`, 200 queries, pseudo-query calibration), the layered
//! cuts made approximate search on synthetic 1M 0.287 / 0.303 / 0.365 ms at targets 0.95 / 0.97
//! / 0.99, against 0.314 / 0.354 / 0.607 with cuts read whole; on synthetic 100k 0.043 / 0.045 /
//! 0.070 ms. At the same rerank depth on synthetic 1M, beta 0.8 read at `gamma` 0.1 reached
//! recall 0.9985 in 0.342 ms, beta 0.8 read whole 1.000 in 0.576 ms and beta 0.7 whole 0.997 in
//! 0.366 ms.
//!
//! The layer is made from the segment's postings on the first approximate search or calibration
//! that needs it (one pass over the postings) and kept in memory with the segment, at 5 bytes per
//! layered posting: 18% of the postings on debian (8.5 MB, 0.02 s), 24% on synthetic 100k (14.6
//! MB, 0.04 s), 22% on synthetic 1M (134 MB, 0.33 s; `LAYER=1` in `examples/approx_loop.rs`).
//! Terms of one block, or whose layer would hold more than half of their list,
//! have none (they are read whole).

use super::super::kernels::{for_each_block, ListCursor};
use super::super::plan::Plan;
use super::super::U8Kind;
use crate::index::{ImpactArrays, IndexView};

/// The layer floor of a term, as a fraction of its largest impact.
pub const RHO: f32 = 0.3;

/// High-impact postings of every term of a u8 segment, in doc order.
#[derive(Debug, Default)]
pub struct HighLayer {
    /// Per local term, where its layer starts in `docs` / `imps` (`n_terms + 1` entries).
    start: Vec<u64>,
    /// Doc ids.
    docs: Vec<u32>,
    /// Impacts.
    imps: Vec<u8>,
    /// Per local term, the smallest impact of its layer; 0 for terms without one (their layer
    /// is the whole list).
    floor: Vec<u8>,
}

impl HighLayer {
    /// The layer of every term of `v` (a u8 segment).
    pub fn build(v: &IndexView<'_>, arrays: &ImpactArrays<'_, u8>) -> HighLayer {
        let n_terms = v.n_terms as usize;
        let mut out = HighLayer {
            start: Vec::with_capacity(n_terms + 1),
            docs: Vec::new(),
            imps: Vec::new(),
            floor: vec![0; n_terms],
        };
        out.start.push(0);
        for t in 0..n_terms {
            let max = arrays.term_max[t];
            let floor = ((RHO * max as f32).ceil() as u8).max(1);
            let df = (v.term_post_start[t + 1] - v.term_post_start[t]) as usize;
            let p0 = v.term_post_start[t] as usize;
            let high = arrays.impacts[p0..p0 + df].iter().filter(|&&i| i >= floor).count();
            if df > crate::codec::BLOCK_LEN && high * 2 <= df {
                out.floor[t] = floor;
                out.docs.reserve(high);
                out.imps.reserve(high);
                for_each_block(v, arrays, t as u32, |docs, imps| {
                    for (&d, &i) in docs.iter().zip(imps) {
                        if i >= floor {
                            out.docs.push(d);
                            out.imps.push(i);
                        }
                    }
                });
            }
            out.start.push(out.docs.len() as u64);
        }
        out
    }

    /// The layer floor of local term `t` (0: no layer, the whole list).
    pub fn floor(&self, t: u32) -> u8 {
        self.floor.get(t as usize).copied().unwrap_or(0)
    }

    /// The layer of local term `t` (doc ids, impacts); empty for a term without one.
    pub fn postings(&self, t: u32) -> (&[u32], &[u8]) {
        let t = t as usize;
        if t + 1 >= self.start.len() {
            return (&[], &[]);
        }
        let (a, b) = (self.start[t] as usize, self.start[t + 1] as usize);
        (&self.docs[a..b], &self.imps[a..b])
    }

    /// Postings held.
    pub fn postings_len(&self) -> usize {
        self.docs.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.start.len() * 8 + self.docs.len() * 4 + self.imps.len() + self.floor.len()
    }
}

/// How the candidate stage reads one kept term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Every posting.
    Whole,
    /// The high layer only.
    High,
}

/// The most the postings a layered cut skips may take from any document's candidate score, as
/// a fraction of the query's largest term contribution: the sum over the terms read from their
/// layers of weight x (floor - 1), the largest impact a skipped posting can have. Without it, a
/// query of one heavy term beside 150 light ones (each a third of the heavy term's bound, their
/// postings mostly below their layer floors) let the light terms' skipped postings, which
/// together decide the ranking, reorder the candidates: recall 0.69 at target 0.99 on debian
/// where the same cut read whole reached 0.82 (breaker31 H1). 0.3 is what reading the
/// heaviest term alone from its layer could skip; on synthetic 1M it kept 0.9975 recall from
/// 428k candidate postings per query against 386k without a budget and 810k read whole (beta
/// 0.8, 100 candidates, float model).
pub const SKIP_BUDGET: f64 = 0.3;

/// How the candidate stage reads the terms `kept` (positions in `plan.terms`, the cut by bound
/// share) at `gamma`: a term may be read from its high layer when weight x layer floor is below
/// `gamma` x the query's largest term contribution (every kept term with a layer at `gamma` 1);
/// of those, the ones saving the most postings per unit of score they may skip are read from
/// their layers while the total they may skip stays within [`SKIP_BUDGET`] x that largest
/// contribution; the others are read whole.
pub(crate) fn reads(
    v: &IndexView<'_>,
    plan: &Plan<U8Kind>,
    arrays: &ImpactArrays<'_, u8>,
    layer: &HighLayer,
    kept: &[usize],
    gamma: f32,
) -> Vec<Read> {
    let umax = plan.terms.iter().map(|pt| pt.w as f64 * arrays.term_max[pt.term as usize] as f64).fold(0.0, f64::max);
    let thr = gamma as f64 * umax;
    let mut how = vec![Read::Whole; kept.len()];
    // (postings saved per unit of score skipped, score skipped, position in `kept`)
    let mut cands: Vec<(f64, f64, usize)> = Vec::new();
    for (j, &i) in kept.iter().enumerate() {
        let pt = &plan.terms[i];
        let floor = layer.floor(pt.term);
        if floor == 0 || pt.w as f64 * floor as f64 >= thr {
            continue;
        }
        let skip = pt.w as f64 * (floor - 1) as f64;
        let t = pt.term as usize;
        let df = (v.term_post_start[t + 1] - v.term_post_start[t]) as usize;
        let saved = (df - layer.postings(pt.term).0.len()) as f64;
        cands.push((saved / skip.max(f64::MIN_POSITIVE), skip, j));
    }
    cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
    let mut left = SKIP_BUDGET * umax;
    for (_, skip, j) in cands {
        if skip <= left {
            left -= skip;
            how[j] = Read::High;
        }
    }
    how
}

/// The postings of a local term read as a [`Read`] says, in ascending doc ranges: a whole list
/// through a [`ListCursor`], a high layer from its arrays.
pub(crate) enum ReadCursor<'a> {
    /// A whole list.
    Whole(ListCursor),
    /// A high layer (doc ids, impacts) from a position on.
    High(&'a [u32], &'a [u8]),
}

impl<'a> ReadCursor<'a> {
    pub(crate) fn new(v: &IndexView<'_>, layer: &'a HighLayer, t: u32, how: Read) -> Self {
        match how {
            Read::Whole => ReadCursor::Whole(ListCursor::new(v, t)),
            Read::High => {
                let (d, i) = layer.postings(t);
                ReadCursor::High(d, i)
            }
        }
    }

    /// Feed `f(docs, impacts)` with the postings not read yet below doc `hi` (a whole list's
    /// blocks as [`ListCursor::until`] takes them).
    #[inline]
    pub(crate) fn until(
        &mut self,
        v: &IndexView<'_>,
        arrays: &ImpactArrays<'_, u8>,
        hi: u32,
        mut f: impl FnMut(&[u32], &[u8]),
    ) {
        match self {
            ReadCursor::Whole(c) => c.until(v, arrays, hi, f),
            ReadCursor::High(d, i) => {
                let n = d.partition_point(|&x| x < hi);
                for (dc, ic) in d[..n].chunks(crate::codec::BLOCK_LEN).zip(i[..n].chunks(crate::codec::BLOCK_LEN)) {
                    f(dc, ic);
                }
                *d = &d[n..];
                *i = &i[n..];
            }
        }
    }
}

/// Ask the CPU to start loading the first cache lines of what a [`ReadCursor`] of term `t`
/// reads ([`prefetch_term`] for a whole list; the start of its high layer).
#[inline]
pub(crate) fn prefetch_read(v: &IndexView<'_>, arrays: &ImpactArrays<'_, u8>, layer: &HighLayer, t: u32, how: Read) {
    use super::super::kernels::{prefetch_lines, prefetch_term, PREFETCH_LINES};
    match how {
        Read::Whole => prefetch_term(v, arrays, t),
        Read::High => {
            let (d, i) = layer.postings(t);
            prefetch_lines(d, PREFETCH_LINES);
            prefetch_lines(i, PREFETCH_LINES / 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
    use crate::search::approx::{candidate_plan, cut_terms};
    use crate::search::plan::Plan;
    use crate::search::segments::prepare;
    use crate::search::{DocSet, Kind, QueryRef, Scratch};
    use crate::synth::{generate, xorshift64, SynthParams};
    use crate::vectors::CsrRef;

    fn corpus(n_docs: usize, seed: u64) -> (crate::index::Index, crate::synth::Csr) {
        let p = SynthParams { n_docs, n_queries: 30, vocab_size: 3_000, seed, ..SynthParams::default() };
        let (docs, queries) = generate(&p);
        let ix = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions {
                n_terms: Some(p.vocab_size),
                quantization: Quantization::U8 { scale: None },
                store_vectors: true,
                reorder: Reorder::default(),
            },
        )
        .unwrap()
        .index;
        (ix, queries)
    }

    /// Each term's layer is exactly its postings at or above its floor, in doc order; terms
    /// without one are single-block lists or lists whose layer would hold more than half.
    #[test]
    fn the_layer_holds_the_postings_at_or_above_each_floor() {
        let (ix, _) = corpus(9_000, 5);
        let v = ix.view();
        let a = U8Kind::arrays(v).unwrap();
        let layer = HighLayer::build(v, &a);
        let (mut layered, mut whole) = (0, 0);
        for t in 0..v.n_terms {
            let mut all = Vec::new();
            for_each_block(v, &a, t, |d, i| all.extend(d.iter().copied().zip(i.iter().copied())));
            let floor = ((RHO * a.term_max[t as usize] as f32).ceil() as u8).max(1);
            let high: Vec<(u32, u8)> = all.iter().copied().filter(|x| x.1 >= floor).collect();
            let (d, i) = layer.postings(t);
            let got: Vec<(u32, u8)> = d.iter().copied().zip(i.iter().copied()).collect();
            if layer.floor(t) == 0 {
                assert!(got.is_empty());
                assert!(all.len() <= crate::codec::BLOCK_LEN || high.len() * 2 > all.len(), "term {t}");
                whole += 1;
            } else {
                assert_eq!(layer.floor(t), floor, "term {t}");
                assert_eq!(got, high, "term {t}");
                assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
                layered += 1;
            }
        }
        assert!(layered > 50 && whole > 50, "{layered} layered terms, {whole} whole");
        assert_eq!(layer.postings(v.n_terms + 5), (&[][..], &[][..]));
        assert_eq!(layer.floor(v.n_terms + 5), 0);
    }

    /// The layered candidate stage returns the exact top-k, by the requantized cut weights, of
    /// exactly the postings it reads (whole lists, or layers), with allowed sets, tie keys and
    /// k on both sides of the gathering bound: a brute-force oracle over the same postings.
    #[test]
    fn layered_candidates_equal_brute_force_over_the_postings_read() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut layered_queries = 0;
        for (n_docs, seed) in [(9_000usize, 11u64), (12_000, 12)] {
            let (ix, queries) = corpus(n_docs, seed);
            let v = ix.view();
            let a = U8Kind::arrays(v).unwrap();
            let layer = HighLayer::build(v, &a);
            let n = v.n_docs as usize;
            let mut scratch = Scratch::default();
            for qi in 0..queries.indptr.len() - 1 {
                let (s, e) = (queries.indptr[qi] as usize, queries.indptr[qi + 1] as usize);
                let q = QueryRef { terms: &queries.indices[s..e], weights: &queries.values[s..e] };
                let pr = prepare(&[&ix], q, None, None).unwrap();
                let mut plan = Plan::<U8Kind>::new(v, &pr.query, pr.avgdl);
                if qi % 3 == 1 {
                    let words: Vec<u64> =
                        (0..n.div_ceil(64)).map(|_| xorshift64(&mut rng) | xorshift64(&mut rng)).collect();
                    plan.allowed = Some(DocSet::from_words(words, n as u32).unwrap());
                }
                if qi % 3 == 2 {
                    let keys: Vec<u32> = (0..n as u32).map(|d| (d * 7919) % n as u32).collect();
                    plan.ties = Some(keys.into());
                }
                let (beta, gamma) = [(0.7f32, 1.0f32), (0.9, 0.1), (1.0, 1.0), (0.8, 0.0)][qi % 4];
                let kept = cut_terms(&plan, &a, beta);
                let how = reads(v, &plan, &a, &layer, &kept, gamma);
                // Layered reads only where the layer exists and gamma allows, within the budget.
                let umax =
                    plan.terms.iter().map(|pt| pt.w as f64 * a.term_max[pt.term as usize] as f64).fold(0.0, f64::max);
                let mut skipped = 0.0;
                for (&i, &h) in kept.iter().zip(&how) {
                    let (pt, floor) = (&plan.terms[i], layer.floor(plan.terms[i].term));
                    if h == Read::High {
                        assert!(floor > 0 && (pt.w as f64 * floor as f64) < gamma as f64 * umax);
                        skipped += pt.w as f64 * (floor - 1) as f64;
                    }
                }
                assert!(skipped <= SKIP_BUDGET * umax + 1e-9, "query {qi}: skipped {skipped} of {umax}");
                if gamma > 0.0 && kept.len() > 3 {
                    layered_queries += usize::from(how.contains(&Read::High));
                }
                let cut = candidate_plan(v, &plan, &a, &kept);
                let read_of = |t: u32| kept.iter().position(|&i| plan.terms[i].term == t).map(|j| how[j]).unwrap();
                let mut sums = vec![0u64; n];
                for pt in &cut.terms {
                    let floor = if read_of(pt.term) == Read::High { layer.floor(pt.term) } else { 0 };
                    for_each_block(v, &a, pt.term, |ds, is| {
                        for (&d, &i) in ds.iter().zip(is) {
                            if i >= floor {
                                sums[d as usize] += pt.w as u64 * i as u64;
                            }
                        }
                    });
                }
                for k in [1usize, 10, 40, 300] {
                    let key = |d: usize| plan.ties.as_ref().map_or(d as u32, |t| t[d]);
                    let mut want: Vec<(u32, u32)> = (0..n)
                        .filter(|&d| sums[d] > 0 && plan.allowed.as_ref().is_none_or(|s| s.contains(d as u32)))
                        .map(|d| (d as u32, sums[d] as u32))
                        .collect();
                    want.sort_by(|x, y| y.1.cmp(&x.1).then(key(x.0 as usize).cmp(&key(y.0 as usize))));
                    want.truncate(k);
                    let got = U8Kind::layered_candidates(v, &a, &plan, &kept, &cut, &layer, gamma, k, &mut scratch)
                        .unwrap()
                        .0;
                    assert_eq!(got, want, "seed {seed} query {qi} k {k} beta {beta} gamma {gamma}");
                }
            }
        }
        assert!(layered_queries >= 10, "{layered_queries} queries read a layer");
    }

    /// The budget: a query of one heavy term beside many light ones whose layers skip a lot
    /// reads only some of them from their layers, the total they may skip within the budget;
    /// without light terms, the heavy term alone may be read from its layer at gamma 1.
    #[test]
    fn layered_reads_keep_within_the_skip_budget() {
        let (ix, _) = corpus(9_000, 5);
        let v = ix.view();
        let a = U8Kind::arrays(v).unwrap();
        let layer = HighLayer::build(v, &a);
        let mut terms: Vec<u32> = (0..v.n_terms).filter(|&t| layer.floor(t) > 1).collect();
        terms.truncate(151);
        assert_eq!(terms.len(), 151);
        let heavy = a.term_max[terms[0] as usize] as f32;
        // each light term's bound a quarter of the heavy one's: each may skip about 0.075 of it
        let weights: Vec<f32> = terms
            .iter()
            .enumerate()
            .map(|(j, &t)| if j == 0 { 3.0 } else { 3.0 * heavy / a.term_max[t as usize] as f32 / 4.0 })
            .collect();
        let ext: Vec<u32> = terms.iter().map(|&t| v.external_term(t)).collect();
        let pr = prepare(&[&ix], QueryRef { terms: &ext, weights: &weights }, None, None).unwrap();
        let plan = Plan::<U8Kind>::new(v, &pr.query, pr.avgdl);
        let all: Vec<usize> = (0..plan.terms.len()).collect();
        let how = reads(v, &plan, &a, &layer, &all, 0.1);
        let high = how.iter().filter(|&&h| h == Read::High).count();
        assert!((1..=5).contains(&high), "{high} of {} terms read from their layers", how.len());
        // the heavy term alone, at gamma 1: read from its layer (it may skip 0.3 of itself)
        let one = prepare(&[&ix], QueryRef { terms: &ext[..1], weights: &[1.0] }, None, None).unwrap();
        let plan1 = Plan::<U8Kind>::new(v, &one.query, one.avgdl);
        assert_eq!(reads(v, &plan1, &a, &layer, &[0], 1.0), vec![Read::High]);
    }
}
