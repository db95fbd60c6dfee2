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
//! posting lists (no forward index), with the scattered reads of each term pipelined a few
//! terms ahead; float kinds read terms in canonical order, so their scores equal the oracle's
//! bit for bit, and exact (integer) kinds read the heaviest terms first and drop a block
//! midway once it cannot beat the threshold (see `score_blocks`).
//!
//! Pruning needs documents that score alike to share blocks: on a collection in arbitrary
//! order most blocks survive and the exhaustive scorer is faster (see `choose`).

use super::kernels::for_each_block;
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

    #[inline]
    fn decode(&mut self, b: usize) {
        if self.decoded && self.cur == b {
            return;
        }
        decode_block(self.v, self.b0, b, &mut self.buf);
        self.cur = b;
        self.decoded = true;
    }

    /// The posting block holding the term's first posting at or after doc `lo`, searching
    /// forward from `from` (galloping, then binary search); `b1` if there is none.
    #[inline]
    fn seek(&self, from: usize, lo: u32) -> usize {
        from + gallop(&self.v.block_last[from.min(self.b1)..self.b1], lo)
    }

    /// Call `f(doc, impact)` for every posting with `lo <= doc < hi`, starting at posting
    /// block `b`, which [`Self::seek`] found for `lo`.
    #[inline]
    fn range_from(&mut self, mut b: usize, lo: u32, hi: u32, mut f: impl FnMut(u32, I)) {
        let lasts = &self.v.block_last[..self.b1];
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
    /// Another term: its postings' docs and contributions, gathered while bounding (slices of
    /// two buffers shared by all such terms of the search).
    Gathered(&'a [u32], &'a [S]),
}

/// For each of `blocks` (ascending) that holds the dense term read by `reader`: the block's
/// index in `blocks` and the posting block where its documents start, into `out`. The posting
/// blocks' offsets and impacts are prefetched.
fn locate<I: Impact>(
    reader: &RangeReader<'_, I>,
    dense: &[I],
    blocks: &[u32],
    live: &[bool],
    out: &mut Vec<(u32, u32)>,
) {
    out.clear();
    let mut pb = reader.b0;
    for (bi, &b) in blocks.iter().enumerate() {
        if !live[bi] || dense[b as usize].is_zero() {
            continue;
        }
        pb = reader.seek(pb, b * DOC_BLOCK as u32);
        if pb >= reader.b1 {
            break;
        }
        out.push((bi as u32, pb as u32));
        let v = reader.v;
        super::kernels::prefetch_lines(&v.block_off[pb..pb + 2], 1);
        let start = reader.p0 + (pb - reader.b0) * BLOCK_LEN;
        let end = (reader.p0 + reader.df).min(start + BLOCK_LEN);
        super::kernels::prefetch_lines(&reader.imps[start..end], 4);
    }
}

/// Prefetch the compressed doc ids of the posting blocks `located` names.
fn prefetch_located<I>(reader: &RangeReader<'_, I>, located: &[(u32, u32)]) {
    let v = reader.v;
    for &(_, pb) in located {
        let pb = pb as usize;
        let (lo, hi) = (v.block_off[pb] as usize, v.block_off[pb + 1] as usize);
        super::kernels::prefetch_lines(&v.docs[lo..hi], 4);
    }
}

/// The number of leading elements of ascending `x` below `lo`, found by galloping from the
/// front: O(log d) for an answer d. Skips a rare term's gathered docs, and a dense term's block
/// ends ([`RangeReader::seek`]), between the few blocks a batch scores.
#[inline]
fn gallop(x: &[u32], lo: u32) -> usize {
    if x.first().is_none_or(|&d| d >= lo) {
        return 0;
    }
    let mut step = 1;
    let mut b = 0;
    while b + step < x.len() && x[b + step] < lo {
        b += step;
        step *= 2;
    }
    let end = (b + step + 1).min(x.len());
    b + x[b..end].partition_point(|&d| d < lo)
}

/// Working memory of [`score_blocks`], kept across batches.
#[derive(Default)]
struct BatchScratch<S> {
    /// Located reads of the dense terms in flight ([`locate`]), by dense-term position mod 3.
    located: [Vec<(u32, u32)>; 3],
    /// Per block of the batch: false once none of its documents can beat the threshold.
    live: Vec<bool>,
    /// Per block of the batch: the bounds of the dense terms not read yet, summed.
    rem: Vec<S>,
}

/// With a floor (the k-th score other segments of the search found, or the float rerank's
/// lowered threshold), the doc blocks still above it are scored in one batch once they are at
/// most this many, rather than in batches growing fourfold. A floor carried from a larger
/// segment is close to the final threshold, so the first small batch rarely drops any later
/// block, and each batch has a fixed cost of its own (about 9 us on synthetic 1M: every
/// query term's first posting blocks of the batch are cache misses), while a block costs
/// about 2 us. Measured with `examples/seg_probe.rs DIR 10 bmp,auto` (10 segments against one
/// merged segment, ratio of median per-query times; builds before and after run alternately,
/// quiet machine, issue #10, stop 59): synthetic 1M bmp 1.37-1.42x before, 1.36x after, auto
/// 1.38-1.42x before, 1.36-1.38x after; debian bmp 1.22-1.26x before, 1.11-1.13x after, auto
/// 1.29-1.32x before, 1.18-1.20x after. Bounded so that a weak floor (a small first segment)
/// still prunes as batches raise the threshold.
const FLOOR_BATCH: usize = 256;

/// Dense terms read between two checks of which blocks can still reach the threshold.
const CHECK_EVERY: usize = 3;

/// Score the doc blocks `blocks` (ascending) exactly and offer every matching doc to `top`.
///
/// The reads of a dense term are cache misses scattered over its list, so they are
/// pipelined: while dense term `j` is scored, term `j + 1`'s compressed doc ids are
/// prefetched, term `j + 2`'s posting blocks are located (their offsets and impacts
/// prefetched) and term `j + 3`'s block ends are prefetched.
///
/// When sums are exact (integer kinds, `!K::ORDERED_SUM`), terms are read rare terms first,
/// then dense terms by decreasing weight over the batch, and every [`CHECK_EVERY`] dense
/// terms a block is dropped once its best partial score plus the bounds of the terms not
/// yet read cannot beat `theta` (the threshold the batch started with; it only rises), as
/// MaxScore does per document (Turtle & Flood, 1995). Float kinds read terms in canonical
/// order and score every block fully, so their sums equal the oracle's bit for bit.
fn score_blocks<K: Kind>(
    plan: &Plan<K>,
    sources: &mut [TermSource<'_, K::Imp, K::S>],
    blocks: &[u32],
    theta: K::S,
    acc: &mut Vec<K::S>,
    bs: &mut BatchScratch<K::S>,
    top: &mut TopK<K::S>,
) {
    acc.clear();
    acc.resize(blocks.len() * DOC_BLOCK, K::S::default());
    bs.live.clear();
    bs.live.resize(blocks.len(), true);
    let early = !K::ORDERED_SUM;
    let is_dense = |i: &usize| matches!(sources[*i], TermSource::Dense(..));
    let BatchScratch { located, live, rem } = bs;
    // Dense terms in reading order: canonical, or (exact sums) by decreasing bound over the
    // batch, summed in f64 (in the kind's integers the sum could overflow). The same pass
    // fills `rem`: per block of the batch, the sum of the bounds of the dense terms not read
    // yet, kept up to date as terms are read, so that a check costs O(blocks), not
    // O(blocks x unread terms), which made 8,000-term queries take 0.7 s (debian, against
    // 11 ms exhaustive). Exact sums do not depend on the order they are added in.
    let mut dense_ix: Vec<usize> = (0..sources.len()).filter(is_dense).collect();
    rem.clear();
    if early {
        rem.resize(blocks.len(), K::S::default());
        let mut weighted: Vec<(f64, usize)> = Vec::with_capacity(dense_ix.len());
        for &i in &dense_ix {
            if let TermSource::Dense(dense, _) = &sources[i] {
                let w = plan.terms[i].w;
                let mut sum = 0f64;
                for (r, &b) in rem.iter_mut().zip(blocks) {
                    let m = K::mul(w, dense[b as usize]);
                    *r += m;
                    sum += K::to_f32(m, 1.0) as f64;
                }
                weighted.push((sum, i));
            }
        }
        weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
        dense_ix = weighted.into_iter().map(|(_, i)| i).collect();
    }
    // all terms in reading order: the rare (gathered) ones first when exact sums allow it
    let order: Vec<usize> = if early {
        (0..sources.len()).filter(|i| !is_dense(i)).chain(dense_ix.iter().copied()).collect()
    } else {
        (0..sources.len()).collect()
    };
    let stage =
        |sources: &[TermSource<'_, K::Imp, K::S>], j: usize, located: &mut [Vec<(u32, u32)>; 3], live: &[bool]| {
            if let Some(TermSource::Dense(dense, reader)) = dense_ix.get(j).map(|&i| &sources[i]) {
                locate(reader, dense, blocks, live, &mut located[j % 3]);
            }
        };
    let lasts_ahead = |sources: &[TermSource<'_, K::Imp, K::S>], j: usize| {
        if let Some(TermSource::Dense(_, r)) = dense_ix.get(j).map(|&i| &sources[i]) {
            super::kernels::prefetch_lines(&r.v.block_last[r.b0..r.b1], 64);
        }
    };
    for j in 0..3 {
        lasts_ahead(sources, j);
    }
    stage(sources, 0, located, live);
    stage(sources, 1, located, live);
    if let Some(TermSource::Dense(_, r)) = dense_ix.first().map(|&i| &sources[i]) {
        prefetch_located(r, &located[0]);
    }
    let mut j = 0; // dense terms scored so far
    for &i in &order {
        let pt = &plan.terms[i];
        if let TermSource::Dense(..) = sources[i] {
            if early && j % CHECK_EVERY == 0 {
                drop_hopeless::<K>(blocks, rem, theta, plan.slack, acc, live);
            }
            lasts_ahead(sources, j + 3);
            stage(sources, j + 2, located, live);
            if let Some(TermSource::Dense(_, r)) = dense_ix.get(j + 1).map(|&i| &sources[i]) {
                prefetch_located(r, &located[(j + 1) % 3]);
            }
        }
        match &mut sources[i] {
            TermSource::Dense(dense, reader) => {
                let w = pt.w;
                if early {
                    // this term is read now: its bound leaves the live blocks' unread remainder
                    // (a dead block's is never read again)
                    for ((r, &b), &l) in rem.iter_mut().zip(blocks).zip(live.iter()) {
                        if l {
                            *r = *r - K::mul(w, dense[b as usize]);
                        }
                    }
                }
                for &(bi, pb) in &located[j % 3] {
                    if !live[bi as usize] {
                        continue;
                    }
                    let lo = blocks[bi as usize] * DOC_BLOCK as u32;
                    let base = bi as usize * DOC_BLOCK;
                    reader.range_from(pb as usize, lo, lo.saturating_add(DOC_BLOCK as u32), |d, imp| {
                        acc[base + (d - lo) as usize] += K::mul(w, imp);
                    });
                }
                j += 1;
            }
            TermSource::Gathered(docs, contrib) => {
                let first = blocks.first().map_or(0, |&b| b * DOC_BLOCK as u32);
                let mut p = docs.partition_point(|&d| d < first);
                for (bi, &b) in blocks.iter().enumerate() {
                    let lo = b * DOC_BLOCK as u32;
                    let hi = lo.saturating_add(DOC_BLOCK as u32);
                    p += gallop(&docs[p..], lo);
                    while p < docs.len() && docs[p] < hi {
                        acc[bi * DOC_BLOCK + (docs[p] - lo) as usize] += contrib[p];
                        p += 1;
                    }
                }
            }
        }
    }
    for (bi, &b) in blocks.iter().enumerate() {
        if !live[bi] {
            continue;
        }
        let lo = b * DOC_BLOCK as u32;
        for (j, s) in acc[bi * DOC_BLOCK..(bi + 1) * DOC_BLOCK].iter().enumerate() {
            top.push(lo + j as u32, *s);
        }
    }
}

/// Mark dead each live block of the batch whose best partial score in `acc`, plus `rem` (the
/// bounds of the dense terms not read yet; the rare terms are all read by now), cannot beat
/// `theta`.
fn drop_hopeless<K: Kind>(blocks: &[u32], rem: &[K::S], theta: K::S, slack: f32, acc: &[K::S], live: &mut [bool]) {
    for bi in 0..blocks.len() {
        if !live[bi] {
            continue;
        }
        let mut best = K::S::default();
        for &s in &acc[bi * DOC_BLOCK..(bi + 1) * DOC_BLOCK] {
            if s > best {
                best = s;
            }
        }
        if K::below(best + rem[bi], theta, slack) {
            live[bi] = false;
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
    let zero = K::S::default();
    ub.clear();
    ub.resize(nb, zero);
    // 1. Upper bound of every doc block. What each term reads first (its per-block maxima or
    //    its postings) is asked for up front, as the exhaustive scorer does
    //    ([`super::kernels::prefetch_term`]): on synthetic 100k (`examples/probe.rs`, BP order,
    //    warm) bmp's median went from 0.215-0.230 to 0.174-0.196 ms, 3 alternating runs each.
    //    The term entries that lead there are asked for first, for all terms at once (with
    //    many segments, each segment's are cold: issue #10).
    super::kernels::prefetch_term_meta(v, arrays, plan.terms.iter().map(|pt| pt.term));
    super::kernels::prefetch_term_blocks(v, arrays, plan.terms.iter().map(|pt| pt.term));
    for pt in &plan.terms {
        match arrays.doc_block_max.of(pt.term) {
            Some(d) => super::kernels::prefetch_lines(d, super::kernels::PREFETCH_LINES),
            None => super::kernels::prefetch_term(v, arrays, pt.term),
        }
    }
    // The rare terms' docs and contributions, one after another in two buffers (two
    // allocations per search rather than two per rare term: with many segments, per-segment
    // allocations showed in profiles, issue #10).
    let rare = |t: u32| arrays.doc_block_max.of(t).is_none();
    let total: usize = plan.terms.iter().filter(|pt| rare(pt.term)).map(|pt| v.df(pt.term) as usize).sum();
    let mut gdocs: Vec<u32> = Vec::with_capacity(total);
    let mut gcontrib: Vec<K::S> = Vec::with_capacity(total);
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(plan.terms.len());
    for pt in &plan.terms {
        let at = gdocs.len();
        if let Some(d) = arrays.doc_block_max.of(pt.term) {
            K::add_bounds(ub, d, pt.w);
            spans.push((at, at));
            continue;
        }
        let mut cur_blk = usize::MAX;
        let mut cur_max = zero;
        let w = pt.w;
        for_each_block(v, arrays, pt.term, |ds, is| {
            let at = gcontrib.len();
            gdocs.extend_from_slice(ds);
            gcontrib.extend(is.iter().map(|&i| K::mul(w, i)));
            for (&d, &c) in ds.iter().zip(&gcontrib[at..]) {
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
            }
        });
        if let Some(u) = ub.get_mut(cur_blk) {
            *u += cur_max;
        }
        spans.push((at, gdocs.len()));
    }
    let mut sources: Vec<TermSource<'_, K::Imp, K::S>> = plan
        .terms
        .iter()
        .zip(&spans)
        .map(|(pt, &(a, b))| match arrays.doc_block_max.of(pt.term) {
            Some(d) => TermSource::Dense(d, RangeReader::new(v, arrays.impacts, pt.term as usize)),
            None => TermSource::Gathered(&gdocs[a..b], &gcontrib[a..b]),
        })
        .collect();
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
    let mut bs = BatchScratch::<K::S>::default();
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
        let left = ids.len() - done;
        let take = if plan.floor > K::S::default() && left <= FLOOR_BATCH { left } else { batch.min(left) };
        if take < left {
            ids[done..].select_nth_unstable_by(take - 1, |&a, &b| {
                ub[b as usize].partial_cmp(&ub[a as usize]).unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        picked.clear();
        picked.extend_from_slice(&ids[done..done + take]);
        picked.sort_unstable();
        score_blocks(plan, &mut sources, &picked, theta, acc, &mut bs, &mut top);
        done += take;
        batch *= 4;
    }
    Some(top.into_sorted())
}
