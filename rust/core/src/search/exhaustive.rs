//! The exhaustive term-at-a-time scorer: the oracle every other algorithm is checked against.
//!
//! Every posting of every query term is decoded and added into a dense accumulator array
//! (one slot per document), terms in canonical order (ascending term id); then one pass over
//! the accumulators collects the top-k and clears them (into a heap, or for k >= 32 into a
//! buffer with linear selections, [`Gather`]). Both loops are kernels of the impact
//! kind ([`Kind::accumulate`], [`Kind::drain_above`]): for u8 impacts, a 16-lane gather / add
//! / scatter per decoded block and a 16-lane threshold scan where the CPU has AVX-512, scalar
//! loops elsewhere (see [`super::kernels`]).
//!
//! A u8 plan whose scores cannot pass `u16::MAX` (approximate search's requantized cut
//! queries) is scored in 16-bit accumulators ([`search_u16`]): the same hits, half the bytes.

use super::kernels::{by_ranges, ListCursor};
use super::plan::Plan;
use super::topk::{Gather, TopK};
use super::{Kind, Scratch};
use crate::index::{ImpactArrays, IndexView};

/// From this k on (and below a quarter of the documents, where a buffer of 4k gains nothing),
/// the drain gathers into a buffer ([`Gather`]) instead of a heap: the approximate search's
/// candidate stage (k' = 15..250) offered thousands of documents to a heap of k' (its pushes
/// were 16% of an approximate search's time on WordNet glosses).
const GATHER_K: usize = 32;

/// Exact top-`k` by scoring every posting.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    if let Some(top) = K::exhaustive_narrow(v, arrays, plan, k, scratch) {
        return top;
    }
    super::kernels::prefetch_terms(v, arrays, plan.terms.iter().map(|pt| pt.term));
    let mut cursors: Vec<ListCursor> = plan.terms.iter().map(|pt| ListCursor::new(v, pt.term)).collect();
    search_with(v, plan, k, scratch, |acc, hi| {
        for (pt, c) in plan.terms.iter().zip(&mut cursors) {
            let w = pt.w;
            c.until(v, arrays, hi, |docs, imps| K::accumulate(acc, docs, imps, w));
        }
    })
}

/// [`search`] in the plan's own accumulators with the accumulation given: `accumulate(acc,
/// hi)` adds the plan's postings (or the part of them it reads, as approximate search's layered
/// candidate stage does) with doc ids below `hi` that it has not added yet, and no other, into
/// the accumulators. It is called for each of the [`doc_ranges`] in turn (`hi` its end, or
/// `u32::MAX` for the last; [`by_ranges`]), and each range is drained for the top-k as soon as
/// it is complete: the range's accumulators are still in the L2 cache when they are added to
/// and drained. Each document's terms are added in the plan's order, as without ranges, so float
/// sums are unchanged. On synthetic 1M (one segment, BP order, `examples/probe.rs`, 400 queries)
/// the exhaustive scorer went from 3.45 to 2.84-2.90 ms with ranges of 256 or 512 KB.
pub(crate) fn search_with<K: Kind>(
    v: &IndexView<'_>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
    accumulate: impl FnMut(&mut [K::S], u32),
) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    let acc = super::zeroed_acc::<K>(scratch, n);
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    // One pass per range collects the top-k and clears the accumulators for the next query.
    if k >= GATHER_K && k.saturating_mul(4) < n {
        let mut g = Gather::new(top);
        by_ranges(acc, accumulate, |part, lo| K::drain_above(part, g.threshold(), |d, s| g.offer(d + lo, s)));
        return g.finish().into_sorted();
    }
    by_ranges(acc, accumulate, |part, lo| {
        let thr = top.threshold();
        K::drain_above(part, thr, |d, s| {
            top.push(d + lo, s);
            top.threshold()
        });
    });
    top.into_sorted()
}

/// [`search`] of a u8 plan whose scores cannot pass `u16::MAX` (the caller checked: see
/// [`Kind::exhaustive_narrow`]), in 16-bit accumulators: the same hits, with half the bytes to
/// add into and to drain (the drain reads the whole accumulator array, a fixed cost per query;
/// approximate search's candidate stage requantizes its cut query to fit). The drain is
/// [`super::kernels::drain_top_u16`]: chunk maxima seed its threshold (without an allowed set)
/// and chunks the query never touched are not written.
pub(crate) fn search_u16(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, u8>,
    plan: &Plan<super::U8Kind>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, u32)> {
    super::kernels::prefetch_terms(v, arrays, plan.terms.iter().map(|pt| pt.term));
    let mut cursors: Vec<ListCursor> = plan.terms.iter().map(|pt| ListCursor::new(v, pt.term)).collect();
    search_u16_with(v, plan, k, scratch, |acc, hi| {
        for (pt, c) in plan.terms.iter().zip(&mut cursors) {
            // Fits: w x (any impact of the term) <= the plan's bound <= u16::MAX.
            let w = pt.w as u16;
            c.until(v, arrays, hi, |docs, imps| super::kernels::accumulate_u16(acc, docs, imps, w));
        }
    })
}

/// [`search_u16`] with the accumulation given, range by range as [`search_with`] calls it;
/// no sum may pass `u16::MAX`.
pub(crate) fn search_u16_with(
    v: &IndexView<'_>,
    plan: &Plan<super::U8Kind>,
    k: usize,
    scratch: &mut Scratch,
    accumulate: impl FnMut(&mut [u16], u32),
) -> Vec<(u32, u32)> {
    use super::kernels::{drain_top_u16, isa};
    let n = v.n_docs as usize;
    let ranked = std::mem::take(&mut scratch.rank_request) && plan.allowed.is_some();
    let Scratch { acc_u16: acc, drain_kept, cand_ranks, .. } = scratch;
    if acc.len() < n {
        acc.resize(n, 0);
    }
    debug_assert!(acc.iter().all(|&a| a == 0), "accumulators were left dirty");
    let acc = &mut acc[..n];
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    if ranked {
        top = top.logging_excluded();
    }
    // The drain's threshold may start from the chunk maxima only when every document may be
    // collected (an allowed set may exclude the documents that hold them).
    let seed_k = if plan.allowed.is_none() { k } else { 0 };
    let mut top = if k >= GATHER_K && k.saturating_mul(4) < n {
        let mut g = Gather::new(top);
        by_ranges(acc, accumulate, |part, lo| {
            let thr = g.threshold();
            drain_top_u16(isa(), part, thr, seed_k, drain_kept, |d, s| g.offer(d + lo, s));
        });
        g.finish()
    } else {
        by_ranges(acc, accumulate, |part, lo| {
            let thr = top.threshold();
            drain_top_u16(isa(), part, thr, seed_k, drain_kept, |d, s| {
                top.push(d + lo, s);
                top.threshold()
            });
        });
        top
    };
    let excluded = top.take_excluded();
    let hits = top.into_sorted();
    if let Some(x) = excluded {
        *cand_ranks = Some(ranks_among_all(&hits, x));
    }
    hits
}

/// The ranks (from 1) among all documents of `hits` (best first, of an allowed set), given
/// the excluded scores the collector kept ([`TopK::logging_excluded`]: every one at least the
/// last hit's, and maybe lower ones, which count for no hit): a hit's rank among the allowed
/// documents plus the excluded scores above its own (an excluded document tied with it is not
/// counted).
fn ranks_among_all(hits: &[(u32, u32)], excluded: Vec<u32>) -> Vec<u32> {
    // An excluded score counts for the hits from the first one scoring under it on: a
    // histogram by that position, then its running sum (no sort of the thousands of scores a
    // filter of 1% keeps).
    let mut from = vec![0u32; hits.len() + 1];
    for e in excluded {
        from[hits.partition_point(|h| h.1 >= e)] += 1;
    }
    let mut above = 0u32;
    (1..=hits.len() as u32)
        .zip(&from)
        .map(|(rank, &f)| {
            above += f;
            rank.saturating_add(above)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::build::{build, BuildOptions, IdsInput, Quantization, Reorder};
    use crate::search::approx::cut_terms;
    use crate::search::kernels::doc_ranges;
    use crate::search::kernels::for_each_block;
    use crate::search::plan::Plan;
    use crate::search::segments::prepare;
    use crate::search::{exact_raw, Algorithm, DocSet, QueryRef, U8Kind};
    use crate::synth::{generate, xorshift64, SynthParams};
    use crate::vectors::CsrRef;

    /// Narrowed plans (weights requantized so that every score fits 16 bits, as approximate
    /// search's cut queries are): the 16-bit exhaustive scorer returns the brute-force top-k of
    /// the same weights, and so does every exact algorithm, so the candidates of approximate
    /// search do not depend on which one the race runs. With allowed sets, floors and tie keys,
    /// k on both sides of the gathering bound.
    #[test]
    fn narrow_plans_equal_brute_force_under_every_algorithm() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for (seed, n_docs) in [(3u64, 2_500usize), (4, 9_000)] {
            let p = SynthParams { n_docs, n_queries: 24, vocab_size: 3_000, seed, ..SynthParams::default() };
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
            let v = ix.view();
            let a = U8Kind::arrays(v).unwrap();
            let n = v.n_docs as usize;
            let mut scratch = Scratch::default();
            for qi in 0..queries.indptr.len() - 1 {
                let (s, e) = (queries.indptr[qi] as usize, queries.indptr[qi + 1] as usize);
                let q = QueryRef { terms: &queries.indices[s..e], weights: &queries.values[s..e] };
                let pr = prepare(&[&ix], q, None, None).unwrap();
                let full = Plan::<U8Kind>::new(v, &pr.query, pr.avgdl);
                let beta = [0.5f32, 0.8, 1.0][qi % 3];
                let mut plan = crate::search::approx::cut_plan(&full, &cut_terms(&full, &a, beta));
                U8Kind::narrow_weights(&mut plan, a.term_max, f64::INFINITY);
                let bound: u64 = plan.terms.iter().map(|pt| pt.w as u64 * a.term_max[pt.term as usize] as u64).sum();
                assert!(bound <= u16::MAX as u64, "query {qi}: bound {bound}");
                if qi % 4 == 1 {
                    let words: Vec<u64> =
                        (0..n.div_ceil(64)).map(|_| xorshift64(&mut rng) | xorshift64(&mut rng)).collect();
                    plan.allowed = Some(DocSet::from_words(words, n as u32).unwrap());
                }
                if qi % 4 == 2 {
                    let keys: Vec<u32> = (0..n as u32).map(|d| (d * 7919) % n as u32).collect();
                    plan.ties = Some(keys.into());
                }
                let mut sums = vec![0u64; n];
                for pt in &plan.terms {
                    for_each_block(v, &a, pt.term, |ds, is| {
                        for (&d, &i) in ds.iter().zip(is) {
                            sums[d as usize] += pt.w as u64 * i as u64;
                        }
                    });
                }
                if qi % 4 == 3 {
                    let mut sorted = sums.clone();
                    sorted.sort_unstable();
                    plan.floor = sorted[n * 9 / 10] as u32;
                }
                for k in [1usize, 10, 40, 300] {
                    let key = |d: usize| plan.ties.as_ref().map_or(d as u32, |t| t[d]);
                    let mut want: Vec<(u32, u32)> = (0..n)
                        .filter(|&d| {
                            sums[d] > plan.floor as u64 && plan.allowed.as_ref().is_none_or(|s| s.contains(d as u32))
                        })
                        .map(|d| (d as u32, sums[d] as u32))
                        .collect();
                    want.sort_by(|x, y| y.1.cmp(&x.1).then(key(x.0 as usize).cmp(&key(y.0 as usize))));
                    want.truncate(k);
                    assert_eq!(search::<U8Kind>(v, &a, &plan, k, &mut scratch), want, "seed {seed} query {qi} k {k}");
                    if let Some(allowed) = &plan.allowed {
                        // Asked for, the hits' ranks among all documents (approximate search's
                        // sparse filters): its rank among the allowed plus the excluded above
                        scratch.rank_request = true;
                        assert_eq!(search_u16(v, &a, &plan, k, &mut scratch), want);
                        let above =
                            |s: u32| (0..n).filter(|&e| !allowed.contains(e as u32) && sums[e] > s as u64).count();
                        let ranks: Vec<u32> =
                            want.iter().enumerate().map(|(j, &(_, s))| (j + 1 + above(s)) as u32).collect();
                        assert_eq!(scratch.cand_ranks.take(), Some(ranks), "seed {seed} query {qi} k {k}");
                        assert!(!scratch.rank_request);
                    }
                    for algo in Algorithm::ALL {
                        let got = exact_raw::<U8Kind>(v, &a, &plan, k, algo, None, &mut scratch);
                        assert_eq!(got, want, "{} seed {seed} query {qi} k {k}", algo.name());
                    }
                }
            }
        }
    }

    /// The exhaustive scorer accumulates and drains in doc ranges ([`doc_ranges`]; unit tests
    /// use ranges of 4 KB, so 9,000 documents make 5 to 9 of them, and posting blocks straddle
    /// their ends): its top-k equals a brute-force sum of each document's terms in the plan's
    /// order, bit for bit for float impacts, in 32-bit (u8 plans that do not fit 16 bits) and
    /// float accumulators, with and without allowed sets, for k on both sides of the gathering
    /// bound.
    #[test]
    fn ranged_accumulation_equals_brute_force() {
        use crate::search::F32Kind;
        fn check<K: Kind>(ix: &crate::index::Index, queries: &crate::synth::Csr, rng: &mut u64)
        where
            K::S: std::fmt::Debug,
        {
            let v = ix.view();
            let a = K::arrays(v).unwrap();
            let n = v.n_docs as usize;
            assert!(doc_ranges(n, std::mem::size_of::<K::S>()).len() >= 4, "several ranges");
            let mut scratch = Scratch::default();
            for qi in 0..queries.indptr.len() - 1 {
                let (s, e) = (queries.indptr[qi] as usize, queries.indptr[qi + 1] as usize);
                let q = QueryRef { terms: &queries.indices[s..e], weights: &queries.values[s..e] };
                let pr = prepare(&[ix], q, None, None).unwrap();
                let mut plan = Plan::<K>::new(v, &pr.query, pr.avgdl);
                assert!(!K::narrow_fits(&plan, a.term_max), "the 32-bit or float path");
                if qi % 3 == 1 {
                    let words: Vec<u64> = (0..n.div_ceil(64)).map(|_| xorshift64(rng) | xorshift64(rng)).collect();
                    plan.allowed = Some(DocSet::from_words(words, n as u32).unwrap());
                }
                let mut sums = vec![K::S::default(); n];
                for pt in &plan.terms {
                    for_each_block(v, &a, pt.term, |ds, is| {
                        for (&d, &i) in ds.iter().zip(is) {
                            sums[d as usize] += K::mul(pt.w, i);
                        }
                    });
                }
                for k in [1usize, 10, 40, 300] {
                    let mut want: Vec<(u32, K::S)> = (0..n)
                        .filter(|&d| {
                            sums[d] > K::S::default() && plan.allowed.as_ref().is_none_or(|s| s.contains(d as u32))
                        })
                        .map(|d| (d as u32, sums[d]))
                        .collect();
                    want.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap().then(x.0.cmp(&y.0)));
                    want.truncate(k);
                    let got = search::<K>(v, &a, &plan, k, &mut scratch);
                    assert_eq!(got, want, "query {qi} k {k}");
                }
            }
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let p = SynthParams { n_docs: 9_000, n_queries: 12, vocab_size: 3_000, seed: 11, ..SynthParams::default() };
        let (docs, queries) = generate(&p);
        for quantization in [Quantization::U8 { scale: None }, Quantization::F32] {
            let ix = build(
                CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
                IdsInput::None,
                &BuildOptions {
                    n_terms: Some(p.vocab_size),
                    quantization,
                    store_vectors: false,
                    reorder: Reorder::default(),
                },
            )
            .unwrap()
            .index;
            match quantization {
                Quantization::F32 => check::<F32Kind>(&ix, &queries, &mut rng),
                _ => check::<U8Kind>(&ix, &queries, &mut rng),
            }
        }
    }

    /// `narrow_weights` on hand-made plans: the bound fits afterwards; weights that round to 0
    /// drop their terms and the canonical positions stay `0..len`; a plan that would lose every
    /// term (hundreds of equal weights) is left as it is; a plan that already fits is untouched.
    #[test]
    fn narrow_weights_edges() {
        use crate::search::plan::PlanTerm;
        let (docs, _) =
            generate(&SynthParams { n_docs: 300, n_queries: 1, vocab_size: 1_000, seed: 9, ..SynthParams::default() });
        let ix = build(
            CsrRef { indptr: &docs.indptr, indices: &docs.indices, values: &docs.values },
            IdsInput::None,
            &BuildOptions {
                n_terms: Some(1_000),
                quantization: Quantization::U8 { scale: None },
                store_vectors: false,
                reorder: Reorder::None,
            },
        )
        .unwrap()
        .index;
        let v = ix.view();
        let a = U8Kind::arrays(v).unwrap();
        let terms: Vec<u32> = (0..v.n_terms).filter(|&t| a.term_max[t as usize] > 0).collect();
        let q: Vec<u32> = terms.iter().take(40).copied().collect();
        let base = |ws: &[u32]| {
            let pr =
                prepare(&[&ix], QueryRef { terms: &q[..ws.len()], weights: &vec![1.0; ws.len()] }, None, None).unwrap();
            let mut p = Plan::<U8Kind>::new(v, &pr.query, pr.avgdl);
            for (pt, &w) in p.terms.iter_mut().zip(ws) {
                pt.w = w;
            }
            p
        };
        let bound =
            |p: &Plan<U8Kind>| p.terms.iter().map(|pt| pt.w as u64 * a.term_max[pt.term as usize] as u64).sum::<u64>();
        // One heavy term, many light ones: the lightest round to 0 and go.
        let ws: Vec<u32> = (0..40).map(|i| if i == 7 { 65_535 } else { 1 + i * 3 }).collect();
        let mut p = base(&ws);
        let norm = p.norm;
        U8Kind::narrow_weights(&mut p, a.term_max, f64::INFINITY);
        assert!(bound(&p) <= u16::MAX as u64 && !p.terms.is_empty());
        assert!(p.terms.len() < 40, "light terms dropped");
        assert!(p.terms.iter().enumerate().all(|(i, pt)| pt.qi == i && pt.w > 0));
        assert!(p.terms.windows(2).all(|w| w[0].term < w[1].term));
        assert!(p.norm < norm);
        // Already fits: untouched.
        let mut small = base(&[1, 2, 3]);
        let before: Vec<(u32, u32, usize)> = small.terms.iter().map(|pt| (pt.term, pt.w, pt.qi)).collect();
        U8Kind::narrow_weights(&mut small, a.term_max, f64::INFINITY);
        assert_eq!(small.terms.iter().map(|pt| (pt.term, pt.w, pt.qi)).collect::<Vec<_>>(), before);
        // A plan whose every weight would round to 0 (1,200 terms, made by hand) is unchanged.
        let mut many = base(&[1_000; 40]);
        let t0 = many.terms[0];
        many.terms = (0..1_200).map(|i| PlanTerm { qi: i, ..t0 }).collect();
        let before: Vec<u32> = many.terms.iter().map(|pt| pt.w).collect();
        U8Kind::narrow_weights(&mut many, a.term_max, f64::INFINITY);
        assert_eq!(many.terms.iter().map(|pt| pt.w).collect::<Vec<_>>(), before);
        assert!(!U8Kind::narrow_fits(&many, a.term_max), "left to 32-bit scoring");
    }
}
