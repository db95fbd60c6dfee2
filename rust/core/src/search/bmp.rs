//! Block-max pruning over doc-id ranges, after Mallia, Suel & Tonellotto, "Faster learned
//! sparse retrieval with block-max pruning", SIGIR 2024.
//!
//! Documents are grouped in blocks of [`DOC_BLOCK`] consecutive ids. For every query, an upper
//! bound of each doc block's best score is the sum over query terms of weight x the term's
//! largest impact in that block: read from a dense per-block array for common terms (a
//! vectorisable add over all blocks), or folded from the postings for the other terms, whose
//! contributions are kept for scoring. Blocks are then scored in decreasing order of their
//! bounds, in batches that grow fourfold; each batch raises the threshold, and blocks whose
//! bound falls below it are dropped. Within a batch, blocks are scored in doc order from the
//! posting lists (no forward index), terms in canonical order, so float scores equal the
//! oracle's bit for bit.
//!
//! Pruning needs documents that score alike to share blocks: on a collection in arbitrary
//! order most blocks survive and the exhaustive scorer is faster (see `choose`).

use super::common::for_each_posting;
use super::plan::Plan;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::codec::BLOCK_LEN;
use crate::index::{Impact, ImpactArrays, IndexView, DOC_BLOCK};
use crate::postings::decode_block;

/// Reads the postings of one term in doc ranges that only move forward, decoding a block
/// only when a range needs it.
struct RangeReader<'a, I> {
    v: &'a IndexView<'a>,
    imps: &'a [I],
    b0: usize,
    b1: usize,
    p0: usize,
    df: usize,
    /// Block holding the last range (decoded into `buf` if `decoded`).
    cur: usize,
    decoded: bool,
    buf: [u32; BLOCK_LEN],
}

impl<'a, I: Copy> RangeReader<'a, I> {
    fn new(v: &'a IndexView<'a>, imps: &'a [I], t: usize) -> Self {
        let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
        let p0 = v.term_post_start[t] as usize;
        let df = v.term_post_start[t + 1] as usize - p0;
        RangeReader { v, imps, b0, b1, p0, df, cur: b0, decoded: false, buf: [0; BLOCK_LEN] }
    }

    /// Go back to the start of the list (the decoded block stays cached).
    fn restart(&mut self) {
        if self.decoded && self.cur != self.b0 {
            // keep the cache valid: `cur` must name the decoded block
            self.decoded = false;
        }
        self.cur = self.b0;
    }

    #[inline]
    fn decode(&mut self, b: usize) {
        if self.decoded && self.cur == b {
            return;
        }
        decode_block(self.v, self.b0, b, &mut self.buf);
        self.cur = b;
        self.decoded = true;
    }

    /// Call `f(doc, impact)` for every posting with `lo <= doc < hi`.
    #[inline]
    fn range(&mut self, lo: u32, hi: u32, mut f: impl FnMut(u32, I)) {
        let lasts = &self.v.block_last[..self.b1];
        let mut b = self.cur;
        if lasts[b] < lo {
            b += 1;
            if b < self.b1 && lasts[b] < lo {
                b += lasts[b..self.b1].partition_point(|&l| l < lo);
            }
        }
        while b < self.b1 {
            self.decode(b);
            let start = (b - self.b0) * BLOCK_LEN;
            let len = (self.df - start).min(BLOCK_LEN);
            let docs = &self.buf[..len];
            let mut p = docs.partition_point(|&d| d < lo);
            while p < len && docs[p] < hi {
                f(docs[p], self.imps[self.p0 + start + p]);
                p += 1;
            }
            if p < len || lasts[b] >= hi {
                return;
            }
            b += 1;
        }
    }
}

/// How a query term is read while scoring blocks.
enum TermSource<'a, I, S> {
    /// A common term: dense doc-block maxima (to skip blocks without it) and its postings.
    Dense(&'a [I], RangeReader<'a, I>),
    /// Another term: its postings' docs and contributions, gathered while bounding.
    Gathered(Vec<u32>, Vec<S>),
}

/// Score the doc blocks `blocks` (ascending) exactly and offer every matching doc to `top`.
fn score_blocks<K: Kind>(
    plan: &Plan<K>,
    sources: &mut [TermSource<'_, K::Imp, K::S>],
    blocks: &[u32],
    acc: &mut Vec<K::S>,
    top: &mut TopK<K::S>,
) {
    acc.clear();
    acc.resize(blocks.len() * DOC_BLOCK, K::S::default());
    for (pt, src) in plan.terms.iter().zip(sources.iter_mut()) {
        match src {
            TermSource::Dense(dense, reader) => {
                reader.restart(); // batches are not in doc order relative to each other
                for (bi, &b) in blocks.iter().enumerate() {
                    if dense[b as usize].is_zero() {
                        continue;
                    }
                    let lo = b * DOC_BLOCK as u32;
                    let base = bi * DOC_BLOCK;
                    let w = pt.w;
                    reader.range(lo, lo.saturating_add(DOC_BLOCK as u32), |d, imp| {
                        acc[base + (d - lo) as usize] += K::mul(w, imp);
                    });
                }
            }
            TermSource::Gathered(docs, contrib) => {
                let first = blocks.first().map_or(0, |&b| b * DOC_BLOCK as u32);
                let mut p = docs.partition_point(|&d| d < first);
                for (bi, &b) in blocks.iter().enumerate() {
                    let lo = b * DOC_BLOCK as u32;
                    let hi = lo.saturating_add(DOC_BLOCK as u32);
                    while p < docs.len() && docs[p] < lo {
                        p += 1;
                    }
                    while p < docs.len() && docs[p] < hi {
                        acc[bi * DOC_BLOCK + (docs[p] - lo) as usize] += contrib[p];
                        p += 1;
                    }
                }
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
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    search_or_give_up(v, arrays, plan, k, scratch, None).unwrap_or_default()
}

/// As [`search`], but returns `None` as soon as it is clear that more than `give_up` (a
/// fraction) of the doc blocks would have to be scored: then the exhaustive scorer is faster.
pub fn search_or_give_up<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
    give_up: Option<f64>,
) -> Option<Vec<(u32, K::S)>> {
    let n = v.n_docs as usize;
    if plan.terms.is_empty() || n == 0 {
        return Some(Vec::new());
    }
    let nb = n.div_ceil(DOC_BLOCK);
    let (ub, acc) = K::ub_and_acc(scratch);
    ub.clear();
    ub.resize(nb, K::S::default());
    // 1. Upper bound of every doc block. What each term reads first (its per-block maxima or
    //    its postings) is asked for up front, as the exhaustive scorer does
    //    ([`super::kernels::prefetch_term`]): on synthetic 100k (`examples/probe.rs`, BP order,
    //    warm) bmp's median went from 0.215-0.230 to 0.174-0.196 ms, 3 alternating runs each.
    for pt in &plan.terms {
        match arrays.doc_block_max.of(pt.term) {
            Some(d) => super::kernels::prefetch_lines(d, super::kernels::PREFETCH_LINES),
            None => super::kernels::prefetch_term(v, arrays, pt.term),
        }
    }
    let mut sources = Vec::with_capacity(plan.terms.len());
    for pt in &plan.terms {
        let t = pt.term as usize;
        if let Some(d) = arrays.doc_block_max.of(pt.term) {
            for (u, &x) in ub.iter_mut().zip(d) {
                *u += K::mul(pt.w, x);
            }
            sources.push(TermSource::Dense(d, RangeReader::new(v, arrays.impacts, t)));
            continue;
        }
        let df = v.df(pt.term) as usize;
        let mut docs = Vec::with_capacity(df);
        let mut contrib = Vec::with_capacity(df);
        let mut cur_blk = usize::MAX;
        let mut cur_max = K::S::default();
        let w = pt.w;
        for_each_posting(v, arrays, pt.term, |d, imp| {
            let c = K::mul(w, imp);
            docs.push(d);
            contrib.push(c);
            let blk = d as usize / DOC_BLOCK;
            if blk != cur_blk {
                if let Some(u) = ub.get_mut(cur_blk) {
                    *u += cur_max;
                }
                cur_blk = blk;
                cur_max = c;
            } else if c > cur_max {
                cur_max = c;
            }
        });
        if let Some(u) = ub.get_mut(cur_blk) {
            *u += cur_max;
        }
        sources.push(TermSource::Gathered(docs, contrib));
    }
    // 2. Blocks in decreasing order of their bounds, in batches that grow fourfold: each batch
    //    is scored in doc order and raises the threshold; blocks whose bound falls below it are
    //    dropped before the next batch. A dropped block's documents all score below the final
    //    k-th score, since the threshold only grows.
    let slack = plan.slack;
    // Blocks without an allowed document are never scored.
    let allowed = plan.allowed.as_ref();
    let mut ids: Vec<u32> = (0..nb as u32)
        .filter(|&b| ub[b as usize] > K::S::default() && allowed.is_none_or(|a| a.word(b as usize) != 0))
        .collect();
    let mut top = TopK::with_allowed(k, plan.allowed.as_ref(), plan.floor).with_ties(plan.ties.as_ref());
    let mut batch = (4 * k).div_ceil(DOC_BLOCK).max(8);
    let mut done = 0;
    let mut picked: Vec<u32> = Vec::new();
    loop {
        let theta = top.threshold();
        let mut keep = done;
        for i in done..ids.len() {
            if !K::below(ub[ids[i] as usize], theta, slack) {
                ids[keep] = ids[i];
                keep += 1;
            }
        }
        ids.truncate(keep);
        if done == ids.len() {
            break;
        }
        if let Some(f) = give_up {
            if done > 0 && (ids.len() - done) as f64 > f * nb as f64 {
                return None;
            }
        }
        let take = batch.min(ids.len() - done);
        if take < ids.len() - done {
            ids[done..].select_nth_unstable_by(take - 1, |&a, &b| {
                ub[b as usize].partial_cmp(&ub[a as usize]).unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        picked.clear();
        picked.extend_from_slice(&ids[done..done + take]);
        picked.sort_unstable();
        score_blocks(plan, &mut sources, &picked, acc, &mut top);
        done += take;
        batch *= 4;
    }
    Some(top.into_sorted())
}
