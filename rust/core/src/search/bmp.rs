//! Block-max pruning over doc-id ranges, after Mallia, Suel & Tonellotto, "Faster learned
//! sparse retrieval with block-max pruning", SIGIR 2024.
//!
//! Documents are grouped in blocks of [`DOC_BLOCK`] consecutive ids. For every query, an upper
//! bound of each doc block's best score is the sum over query terms of weight x the term's
//! largest impact in that block: read from a dense per-block array for common terms (a
//! vectorisable add over all blocks), or folded from the postings for rarer terms. The few
//! blocks with the highest bounds are scored exactly first, which gives a threshold `theta0`
//! (a lower bound of the final k-th score); every block whose bound is below it is skipped,
//! and the remaining blocks are scored term at a time into a compact accumulator, reading only
//! the parts of each posting list that fall in them.
//!
//! Unlike the paper's engine, blocks are scored from the posting lists (no forward index) and
//! in doc order, so each list is read forward once; terms are added in canonical order, so
//! float scores equal the oracle's bit for bit.

use super::plan::Plan;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::codec::{decode_docs, BLOCK_LEN};
use crate::index::{ImpactArrays, IndexView, DOC_BLOCK, TERMINATED};
use crate::postings::Cursor;

/// Score the doc blocks `blocks` (ascending) exactly and offer every matching doc to `top`.
fn score_blocks<K: Kind>(v: &IndexView<'_>, arrays: &ImpactArrays<'_, K::Imp>, plan: &Plan<K>, blocks: &[u32], acc: &mut Vec<K::S>, top: &mut TopK<K::S>) {
    acc.clear();
    acc.resize(blocks.len() * DOC_BLOCK, K::S::default());
    let zero = K::Imp::default();
    for pt in &plan.terms {
        let dense = arrays.doc_block_max.of(pt.term);
        let mut cur = Cursor::new(v, arrays, pt.term);
        for (bi, &b) in blocks.iter().enumerate() {
            if let Some(d) = dense {
                if !(d[b as usize] > zero) {
                    continue;
                }
            }
            let lo = b * DOC_BLOCK as u32;
            let hi = lo.saturating_add(DOC_BLOCK as u32);
            let mut doc = cur.seek(lo);
            if doc == TERMINATED {
                break;
            }
            let base = bi * DOC_BLOCK;
            while doc < hi {
                acc[base + (doc - lo) as usize] += K::mul(pt.w, cur.impact());
                doc = cur.next();
            }
        }
    }
    for (bi, &b) in blocks.iter().enumerate() {
        let lo = b * DOC_BLOCK as u32;
        for (j, s) in acc[bi * DOC_BLOCK..(bi + 1) * DOC_BLOCK].iter().enumerate() {
            top.push(lo + j as u32, *s);
        }
    }
}

/// Exact top-`k` by doc-block max pruning.
pub fn search<K: Kind>(v: &IndexView<'_>, arrays: &ImpactArrays<'_, K::Imp>, plan: &Plan<K>, k: usize, scratch: &mut Scratch) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    if plan.terms.is_empty() || n == 0 {
        return Vec::new();
    }
    let nb = n.div_ceil(DOC_BLOCK);
    let (ub, acc) = K::ub_and_acc(scratch);
    ub.clear();
    ub.resize(nb, K::S::default());
    let mut buf = [0u32; BLOCK_LEN];
    // 1. Upper bound of every doc block.
    for pt in &plan.terms {
        if let Some(d) = arrays.doc_block_max.of(pt.term) {
            for (u, &x) in ub.iter_mut().zip(d) {
                *u += K::mul(pt.w, x);
            }
            continue;
        }
        let t = pt.term as usize;
        let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
        let p0 = v.term_post_start[t] as usize;
        let df = v.term_post_start[t + 1] as usize - p0;
        let mut cur_blk = usize::MAX;
        let mut cur_max = K::Imp::default();
        for b in b0..b1 {
            let (lo, hi) = (v.block_off[b] as usize, v.block_off[b + 1] as usize);
            let prev = if b > b0 { Some(v.block_last[b - 1]) } else { None };
            decode_docs(&v.docs[lo..hi], ((hi - lo) / 16) as u32, prev, &mut buf);
            let start = (b - b0) * BLOCK_LEN;
            let len = (df - start).min(BLOCK_LEN);
            for (&d, &imp) in buf[..len].iter().zip(&arrays.impacts[p0 + start..p0 + start + len]) {
                let blk = d as usize / DOC_BLOCK;
                if blk != cur_blk {
                    if let Some(u) = ub.get_mut(cur_blk) {
                        *u += K::mul(pt.w, cur_max);
                    }
                    cur_blk = blk;
                    cur_max = imp;
                } else if imp > cur_max {
                    cur_max = imp;
                }
            }
        }
        if let Some(u) = ub.get_mut(cur_blk) {
            *u += K::mul(pt.w, cur_max);
        }
    }
    // 2. A first threshold from the blocks with the highest bounds.
    let n_first = (4 * k).div_ceil(DOC_BLOCK).max(4).min(nb);
    let mut ids: Vec<u32> = (0..nb as u32).filter(|&b| ub[b as usize] > K::S::default()).collect();
    let theta0 = if ids.len() > n_first {
        ids.select_nth_unstable_by(n_first - 1, |&a, &b| ub[b as usize].partial_cmp(&ub[a as usize]).unwrap_or(std::cmp::Ordering::Equal));
        let mut first: Vec<u32> = ids[..n_first].to_vec();
        first.sort_unstable();
        let mut top = TopK::new(k);
        score_blocks(v, arrays, plan, &first, acc, &mut top);
        top.threshold()
    } else {
        K::S::default()
    };
    // 3. Every block whose bound reaches theta0, in doc order.
    let slack = plan.slack;
    let mut surv: Vec<u32> = (0..nb as u32).filter(|&b| {
        let u = ub[b as usize];
        u > K::S::default() && !K::below(u, theta0, slack)
    }).collect();
    surv.sort_unstable();
    let mut top = TopK::new(k);
    score_blocks(v, arrays, plan, &surv, acc, &mut top);
    top.into_sorted()
}
