//! Block-max term-at-a-time MaxScore: exhaustive accumulation of the query terms that matter,
//! fine-block bounds for the rest, and exact rescoring of the few documents those bounds
//! cannot rule out. The exact algorithm for long queries (50..150 terms) on segments where
//! block-max pruning cannot skip blocks.
//!
//! MaxScore (Turtle & Flood 1995) splits the query into *essential* terms, whose postings are
//! read, and *non-essential* ones, whose upper bounds sum below the current k-th score, so
//! that no document matching only them can enter the top-k; term-at-a-time it then has to
//! look the non-essential terms up for every candidate. With list-wide bounds and long
//! learned queries the non-essential terms' bounds add up to more than the threshold for
//! almost every document. Here the non-essential terms are bounded per 16-document fine block
//! (their block maxima, [`crate::index::blockmax`]), as block-max MaxScore does document at a
//! time (Chakrabarti et al. 2011; Ding & Suel 2011): on documents reordered by graph
//! bisection a fine block holds few of them, so the bound of most documents stays below the
//! threshold, and the survivors are rescored exactly from their stored rows.
//!
//! 1. **Seed.** The terms without fine arrays (short lists) and the terms with the largest
//!    bounds, until these hold half of the query's total bound, are accumulated into dense
//!    accumulators. The `k` documents with the largest partial scores are rescored exactly:
//!    the k-th of those scores, `theta`, is a lower bound of the final k-th score.
//! 2. **Split.** Of the remaining terms with fine arrays, those with the smallest bounds are
//!    non-essential while their bounds sum to at most [`SPLIT`] x `theta`; the others are
//!    accumulated too.
//! 3. **Candidates.** One pass over the accumulators adds to each document the sum over
//!    non-essential terms of weight x the term's maximum in the document's fine block; a
//!    document stays a candidate when that bound reaches `theta` (every other document scores
//!    below `theta`, hence below the final k-th score). The pass clears the accumulators.
//! 4. **Rescoring.** Candidates are rescored exactly from their stored rows, largest bound
//!    first, until the bound of the next one falls below the k-th score found.
//!
//! Scores come from [`RowScorer`] (the oracle's arithmetic; float sums in canonical order),
//! so results equal the exhaustive oracle's. Without stored vectors, or without fine arrays,
//! the exhaustive scorer runs instead.

use super::kernels::for_each_block;
use super::plan::Plan;
use super::rows::RowScorer;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::index::blockmax::FINE_BLOCK;
use crate::index::{ImpactArrays, IndexView};

/// Non-essential terms' bounds may sum to this many times the seed threshold. Above 1, a
/// document that none of the essential terms matches can still be a candidate (its fine-block
/// bound decides), so fewer postings are read and more documents are rescored; measured on
/// the debian corpus with 150-term queries (documents as queries, BP order), the share of
/// postings read and the median number of candidates are 45% / 44 at 1.0, 33% / 112 at 1.5,
/// 15% / 864 at 2.5; rescoring a candidate costs about as much as reading 150..300 postings,
/// so 1.5 is the cheapest.
pub const SPLIT: f64 = 1.5;

/// Exact top-`k` by block-max term-at-a-time MaxScore (the exhaustive scorer when the index
/// has no stored vectors or no fine-block maxima, or when `k` covers every document).
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    let Some(fwd) = v.forward else {
        return super::exhaustive::search(v, arrays, plan, k, scratch);
    };
    // Asked for every document (the float rerank's second traversal: every document above a
    // floor), the seed would rescore each candidate from its row (43 ms against the
    // exhaustive scorer's 0.9 ms on debian's slowest query): the exhaustive scorer reads each
    // posting once.
    if arrays.fine_block_max.slot.is_empty() || plan.terms.is_empty() || n == 0 || k >= n {
        return super::exhaustive::search(v, arrays, plan, k, scratch);
    }
    // Float sums in other orders than the canonical one: twice the slack.
    let slack = plan.slack * 2.0;
    let m = plan.terms.len();
    let ubs: Vec<K::S> = plan.terms.iter().map(|pt| K::mul(pt.w, arrays.term_max[pt.term as usize])).collect();
    let fine: Vec<Option<&[K::Imp]>> = plan.terms.iter().map(|pt| arrays.fine_block_max.of(pt.term)).collect();
    // Terms with fine arrays, largest bound first.
    let mut pop: Vec<usize> = (0..m).filter(|&i| fine[i].is_some()).collect();
    pop.sort_by(|&a, &b| ubs[b].partial_cmp(&ubs[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    let pop_total = to_f64::<K>(pop.iter().fold(K::S::default(), |s, &i| s + ubs[i]));

    let rows = RowScorer::new(v, fwd, plan, scratch);
    let acc = super::zeroed_acc::<K>(scratch, n);
    // 1. Seed: short lists, then the largest bounds until half the total.
    let mut seeded = K::S::default();
    let mut next = 0;
    for i in 0..m {
        if fine[i].is_none() {
            accumulate::<K>(v, arrays, plan, i, acc);
        }
    }
    while next < pop.len() && to_f64::<K>(seeded) < 0.5 * pop_total {
        let i = pop[next];
        accumulate::<K>(v, arrays, plan, i, acc);
        seeded += ubs[i];
        next += 1;
    }
    let allowed = plan.allowed.as_ref();
    let mut seed = TopK::with_allowed(k, allowed, K::S::default()).with_ties(plan.ties.as_ref());
    {
        // The k largest partial scores (allowed documents only), then their exact scores.
        let mut partial = TopK::with_allowed(k, allowed, K::S::default()).with_ties(plan.ties.as_ref());
        let mut thr = partial.threshold();
        for (d, &a) in acc.iter().enumerate() {
            if a > thr {
                partial.push(d as u32, a);
                thr = partial.threshold();
            }
        }
        for (d, _) in partial.into_sorted() {
            seed.push(d, rows.score(d as usize));
        }
    }
    let mut theta = seed.threshold();
    if plan.floor > theta {
        theta = plan.floor;
    }
    // 2. Split: the smallest bounds among the unread terms with fine arrays are non-essential.
    let mut nonessential: Vec<usize> = Vec::new();
    let mut sum = K::S::default();
    let budget = SPLIT * to_f64::<K>(theta);
    for &i in pop[next..].iter().rev() {
        if to_f64::<K>(sum + ubs[i]) <= budget {
            sum += ubs[i];
            nonessential.push(i);
        } else {
            break;
        }
    }
    for &i in &pop[next..] {
        if !nonessential.contains(&i) {
            accumulate::<K>(v, arrays, plan, i, acc);
        }
    }
    // 3. Candidates: partial score + the non-essential terms' fine-block bound.
    let nf = n.div_ceil(FINE_BLOCK);
    let mut bound = vec![K::S::default(); nf];
    for &i in &nonessential {
        if let Some(fa) = fine[i] {
            K::add_bounds(&mut bound, fa, plan.terms[i].w);
        }
    }
    let mut top = TopK::with_allowed(k, allowed, plan.floor).with_ties(plan.ties.as_ref());
    // With every term read, integer accumulators are the exact scores: no rescoring.
    let exact = nonessential.is_empty() && !K::ORDERED_SUM;
    let mut cand: Vec<(K::S, u32)> = Vec::new();
    for (f, &b) in bound.iter().enumerate() {
        let lo = f * FINE_BLOCK;
        let hi = (lo + FINE_BLOCK).min(n);
        let word = allowed.map_or(u64::MAX, |a| a.word(lo / 64) >> (lo % 64));
        for (j, a) in acc[lo..hi].iter_mut().enumerate() {
            let s = std::mem::take(a);
            let ub = s + b;
            if (word >> j) & 1 != 0 && ub > K::S::default() && !K::below(ub, theta, slack) {
                if exact {
                    top.push((lo + j) as u32, s);
                } else {
                    cand.push((ub, (lo + j) as u32));
                }
            }
        }
    }
    // 4. Rescoring, largest bound first. (The seed documents are among the candidates: their
    //    bound is at least their score.)
    cand.sort_unstable_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
    for &(ub, d) in &cand {
        let thr = top.threshold();
        if K::below(ub, thr, slack) {
            break;
        }
        top.push(d, rows.score(d as usize));
    }
    rows.finish(scratch);
    top.into_sorted()
}

/// Add every posting of plan term `i` into `acc`.
#[inline]
fn accumulate<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    i: usize,
    acc: &mut [K::S],
) {
    let pt = &plan.terms[i];
    for_each_block(v, arrays, pt.term, |docs, imps| K::accumulate(acc, docs, imps, pt.w));
}

/// A score as f64 (for the split rule's sums; integer and float kinds alike).
#[inline]
fn to_f64<K: Kind>(s: K::S) -> f64 {
    K::to_f32(s, 1.0) as f64
}
