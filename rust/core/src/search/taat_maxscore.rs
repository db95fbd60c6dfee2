//! Term-at-a-time MaxScore (the TAAT form of Turtle & Flood's max_score optimisation, IP&M
//! 1995), with a threshold kept as a lower bound while accumulating.
//!
//! Phase 1 accumulates whole posting lists, highest upper bound first, into dense
//! accumulators, while a small heap keeps `k` distinct documents with lower bounds of their
//! scores; its k-th entry `theta` is a lower bound of the final k-th score. As soon as the
//! bounds `R` of the terms not yet read sum below `theta`, no unseen document can enter the
//! top-k. Phase 2 then keeps only documents whose partial score plus `R` reaches `theta`
//! and, for each remaining term, only looks those candidates up (`seek`, skipping blocks that
//! hold none), dropping candidates as `R` shrinks and `theta` grows.
//!
//! `theta` is exclusive (just below a lower bound of the k-th score), so a candidate that
//! could tie with the k-th score, and enter by its tie key, is never dropped. Float vector
//! scores ([`Kind::ORDERED_SUM`]) are recomputed for the final candidates in canonical term
//! order, so they equal the oracle's bit for bit; exact sums need no recomputing.

use super::common::{for_each_posting, lookup, open_cursors, DistinctTop};
use super::plan::Plan;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::codec::BLOCK_LEN;
use crate::index::{ImpactArrays, IndexView};
use crate::postings::Cursor;

/// Exact top-`k` by term-at-a-time MaxScore.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    let m = plan.terms.len();
    if m == 0 || n == 0 {
        return Vec::new();
    }
    // Float thresholds come from sums in another order than the canonical one: twice the slack.
    let slack = plan.slack * 2.0;
    let mut order: Vec<usize> = (0..m).collect();
    let ubs: Vec<K::S> = plan.terms.iter().map(|pt| K::mul(pt.w, arrays.term_max[pt.term as usize])).collect();
    order.sort_by(|&a, &b| ubs[b].partial_cmp(&ubs[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    // rest[i] = sum of the bounds of order[i..]
    let mut rest = vec![K::S::default(); m + 1];
    for i in (0..m).rev() {
        rest[i] = rest[i + 1] + ubs[order[i]];
    }
    let acc = super::zeroed_acc::<K>(scratch, n);
    let mut top = DistinctTop::<K::S>::new(k, n, plan.allowed.as_ref(), plan.floor);
    let mut buf = [0u32; BLOCK_LEN];
    let mut theta = top.kth();

    // Phase 1: whole lists, highest bound first, until the unread bounds fall below theta.
    let mut i = 0;
    while i < m && !(i > 0 && K::below(rest[i], theta, slack)) {
        let pt = &plan.terms[order[i]];
        let w = pt.w;
        let mut hmin = top.kth();
        for_each_posting(v, arrays, pt.term, |d, imp| {
            if let Some(a) = acc.get_mut(d as usize) {
                *a += K::mul(w, imp);
                if *a > hmin {
                    top.offer(d, *a);
                    hmin = top.kth();
                }
            }
        });
        i += 1;
        top.refresh(|d| acc[d as usize]);
        theta = top.kth();
        // Sharpen theta with the full scores of the kept documents when it could end phase 1.
        if i < m && k <= 64 && !K::below(rest[i], theta, slack) && K::below(rest[i], theta + theta, slack) {
            let mut fulls: Vec<K::S> = top
                .docs()
                .map(|d| {
                    let mut s = acc[d as usize];
                    for &j in &order[i..] {
                        let pt = &plan.terms[j];
                        if let Some(imp) = lookup(v, arrays, pt.term, d, &mut buf) {
                            s += K::mul(pt.w, imp);
                        }
                    }
                    s
                })
                .collect();
            if fulls.len() == k {
                fulls.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
                let f = super::topk::Score::just_below(fulls[k - 1]);
                if f > theta {
                    theta = f;
                }
            }
        }
    }

    // Candidates: documents that can still reach theta (the scan also clears the others).
    let mut cand: Vec<u32> = Vec::new();
    let r = rest[i];
    for (d, a) in acc.iter_mut().enumerate() {
        if *a > K::S::default() {
            if K::below(*a + r, theta, slack) {
                *a = K::S::default();
            } else {
                cand.push(d as u32);
            }
        }
    }

    // Phase 2: remaining terms only for candidates.
    let mut cursors = open_cursors(v, arrays, plan);
    for j in i..m {
        let pt = &plan.terms[order[j]];
        let t = pt.term as usize;
        let df = (v.term_post_start[t + 1] - v.term_post_start[t]) as usize;
        if cand.len() * 4 > df {
            // Many candidates: stream the whole list; non-candidates have a zero accumulator.
            let w = pt.w;
            for_each_posting(v, arrays, pt.term, |d, imp| {
                if let Some(a) = acc.get_mut(d as usize) {
                    if *a > K::S::default() {
                        *a += K::mul(w, imp);
                    }
                }
            });
            for &d in &cand {
                top.offer(d, acc[d as usize]);
            }
        } else {
            // Few candidates: look each one up, skipping blocks that hold none.
            let tc = &mut cursors[order[j]];
            for &d in &cand {
                if tc.cur.seek(d) == d {
                    let c = tc.score();
                    acc[d as usize] += c;
                    top.offer(d, acc[d as usize]);
                }
            }
        }
        top.refresh(|d| acc[d as usize]);
        if top.kth() > theta {
            theta = top.kth();
        }
        let r = rest[j + 1];
        cand.retain(|&d| {
            let keep = !K::below(acc[d as usize] + r, theta, slack);
            if !keep {
                acc[d as usize] = K::S::default();
            }
            keep
        });
    }

    // Final scores: exact already for exact sums; recomputed in canonical order for f32 sums.
    if K::ORDERED_SUM {
        for &d in &cand {
            acc[d as usize] = K::S::default();
        }
        for pt in &plan.terms {
            let mut cur = Cursor::new(v, arrays, pt.term);
            for &d in &cand {
                if cur.seek(d) == d {
                    acc[d as usize] += K::mul(pt.w, cur.impact());
                }
            }
        }
    }
    let mut out = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    for &d in &cand {
        out.push(d, acc[d as usize]);
        acc[d as usize] = K::S::default();
    }
    out.into_sorted()
}
