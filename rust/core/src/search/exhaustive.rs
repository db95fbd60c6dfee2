//! The exhaustive term-at-a-time scorer: the oracle every other algorithm is checked against.
//!
//! Every posting of every query term is decoded and added into a dense accumulator array
//! (one slot per document), terms in canonical order (ascending term id); then one pass over
//! the accumulators collects the top-k. The inner loop is a plain gather-free multiply-add
//! over a decoded block, which the compiler vectorises for the products.

use super::plan::Plan;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::codec::{decode_docs, BLOCK_LEN};
use crate::index::{ImpactArrays, IndexView};

/// Exact top-`k` by scoring every posting.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    let n = v.n_docs as usize;
    let acc = super::zeroed_acc::<K>(scratch, n);
    let mut buf = [0u32; BLOCK_LEN];
    let mut contrib = [K::S::default(); BLOCK_LEN];
    for pt in &plan.terms {
        let t = pt.term as usize;
        let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
        let p0 = v.term_post_start[t] as usize;
        let df = (v.term_post_start[t + 1] as usize) - p0;
        for b in b0..b1 {
            let lo = v.block_off[b] as usize;
            let hi = v.block_off[b + 1] as usize;
            let prev = if b > b0 { Some(v.block_last[b - 1]) } else { None };
            decode_docs(&v.docs[lo..hi], ((hi - lo) / 16) as u32, prev, &mut buf);
            let start = (b - b0) * BLOCK_LEN;
            let len = (df - start).min(BLOCK_LEN);
            let imps = &arrays.impacts[p0 + start..p0 + start + len];
            for (c, &i) in contrib.iter_mut().zip(imps) {
                *c = K::mul(pt.w, i);
            }
            for (&d, &c) in buf[..len].iter().zip(&contrib[..len]) {
                if let Some(a) = acc.get_mut(d as usize) {
                    *a += c;
                }
            }
        }
    }
    let mut top = TopK::new(k);
    let mut thr = top.threshold();
    // One pass collects the top-k and clears the accumulators for the next query.
    for (d, a) in acc.iter_mut().enumerate() {
        let s = std::mem::take(a);
        if s > thr {
            top.push(d as u32, s);
            thr = top.threshold();
        }
    }
    top.into_sorted()
}
