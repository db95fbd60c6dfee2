//! Two-level block-max pruning: doc-block bounds first, fine-block bounds inside the doc
//! blocks that survive, then exact scoring of the fine blocks that survive those from the
//! stored (forward) vectors.
//!
//! After Mallia, Suel & Tonellotto, "Faster learned sparse retrieval with block-max pruning"
//! (SIGIR 2024), and Carlson, Xie, He & Yang, "Dynamic superblock pruning for fast learned
//! sparse retrieval" (SIGIR 2025), sized for segments of 10^4..10^7 documents: the coarse
//! level is the 64-document doc block ([`DOC_BLOCK`], the paper's superblock) and the fine
//! level the 16-document block ([`FINE_BLOCK`]). Both levels are exact upper bounds, so the
//! search is exact.
//!
//! 1. **Bounds.** A doc block's bound is the sum over query terms of weight x the term's
//!    largest impact in the block: a vectorised add of the term's dense array
//!    ([`Kind::add_bounds`]) for common terms. The other terms (at most `n_blocks / 2`
//!    postings each) are read once, folding their largest contribution per doc block into the
//!    coarse bounds and per fine block into a second array of fine bounds.
//! 2. **Batches.** Doc blocks are taken in decreasing order of their bounds, in batches that
//!    grow fourfold; before each batch, blocks whose bound is below the current k-th score
//!    are dropped for good (the threshold only rises, so they cannot hold a top-k document).
//! 3. **Fine bounds.** In a batch, each doc block's four fine blocks get their own bound: the
//!    common terms' fine arrays (their doc-block maximum when they have none) plus the rare
//!    terms' fine bounds of step 1. Fine blocks below the threshold are skipped.
//! 4. **Scoring.** Surviving fine blocks are scored best bound first, in groups of
//!    [`GROUP`] between which the threshold is checked again, from the documents' stored
//!    vectors: the 16 rows of a fine block are adjacent, so this is a sequential read, where
//!    scoring from posting lists would take a cache miss per query term and block. A stored
//!    row lists its terms in ascending order and its impacts are re-derived exactly as the
//!    builder derived them, so scores are the oracle's (floats summed in canonical order).
//!
//! Pruning needs documents that score alike to share blocks (documents reordered by graph
//! bisection or by similarity); on a collection in arbitrary order most blocks survive and
//! [`search_or_give_up`] hands over to the exhaustive scorer. Without stored vectors the
//! search runs [`super::bmp`], which scores blocks from the posting lists.

use super::kernels::for_each_block;
use super::plan::Plan;
use super::rows::RowScorer;
use super::topk::TopK;
use super::{Kind, Scratch};
use crate::index::blockmax::FINE_BLOCK;
use crate::index::{Forward, Impact, ImpactArrays, IndexView, DOC_BLOCK};

/// Fine blocks per doc block.
const FINE_PER: usize = DOC_BLOCK / FINE_BLOCK;

/// Fine blocks scored between two looks at the threshold: the first group is small, so that
/// the threshold rises after the few best blocks, and groups double up to [`GROUP`].
const FIRST_GROUP: usize = 4;
/// The largest group of fine blocks scored between two looks at the threshold.
const GROUP: usize = 32;

/// Doc blocks of the first batch (at least): their fine blocks, best bound first, set the
/// threshold that prunes the rest.
const FIRST_BATCH: usize = 64;

/// How a query term's bounds are read.
enum Bounds<'a, I> {
    /// Dense arrays: doc-block maxima and, where the term has them, fine-block maxima.
    Dense { coarse: &'a [I], fine: Option<&'a [I]> },
    /// A rare term, folded into the bounds while its postings were read.
    Folded,
}

/// Exact top-`k` by two-level block-max pruning.
pub fn search<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    scratch: &mut Scratch,
) -> Vec<(u32, K::S)> {
    match v.forward {
        Some(fwd) => search_or_give_up(v, &fwd, arrays, plan, k, scratch, None).unwrap_or_default(),
        None => super::bmp::search(v, arrays, plan, k, scratch),
    }
}

/// As [`search`] on an index with stored vectors `fwd`, but returns `None` as soon as the
/// first batch shows that more than `give_up` (a fraction) of the doc blocks would still have
/// to be looked at.
pub fn search_or_give_up<K: Kind>(
    v: &IndexView<'_>,
    fwd: &Forward<'_>,
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
    let nf = n.div_ceil(FINE_BLOCK);
    let rows = RowScorer::new(v, *fwd, plan, scratch);
    let (ub, fine_rare) = K::ub_and_acc(scratch);
    let out = run(v, arrays, plan, k, give_up, ub, fine_rare, &rows, nb, nf);
    rows.finish(scratch);
    out
}

#[allow(clippy::too_many_arguments)]
fn run<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    plan: &Plan<K>,
    k: usize,
    give_up: Option<f64>,
    ub: &mut Vec<K::S>,
    fine_rare: &mut Vec<K::S>,
    rows: &RowScorer<'_, '_, K>,
    nb: usize,
    nf: usize,
) -> Option<Vec<(u32, K::S)>> {
    let n = v.n_docs as usize;
    ub.clear();
    ub.resize(nb, K::S::default());
    fine_rare.clear();
    fine_rare.resize(nf, K::S::default());
    // 1. Bounds.
    let mut bounds: Vec<Bounds<'_, K::Imp>> = Vec::with_capacity(plan.terms.len());
    for pt in &plan.terms {
        if let Some(coarse) = arrays.doc_block_max.of(pt.term) {
            K::add_bounds(ub, coarse, pt.w);
            bounds.push(Bounds::Dense { coarse, fine: arrays.fine_block_max.of(pt.term) });
        } else {
            fold_rare::<K>(v, arrays, pt.term, pt.w, ub, fine_rare);
            bounds.push(Bounds::Folded);
        }
    }
    // 2. Doc blocks with a bound and an allowed document, best first in batches.
    let slack = plan.slack;
    let allowed = plan.allowed.as_ref();
    let mut ids: Vec<u32> = (0..nb as u32)
        .filter(|&b| ub[b as usize] > K::S::default() && allowed.is_none_or(|a| a.word(b as usize) != 0))
        .collect();
    let mut top = TopK::with_allowed(k, allowed, plan.floor).with_ties(plan.ties.as_ref());
    let mut batch = (4 * k).div_ceil(DOC_BLOCK).max(FIRST_BATCH);
    let mut done = 0;
    let mut picked: Vec<u32> = Vec::new();
    let mut fine_ub: Vec<K::S> = Vec::new();
    let mut fine: Vec<(K::S, u32)> = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    let mut first = true;
    let mut result = Some(());
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
            if !first && (ids.len() - done) as f64 > f * nb as f64 {
                result = None;
                break;
            }
        }
        first = false;
        let take = batch.min(ids.len() - done);
        if take < ids.len() - done {
            ids[done..].select_nth_unstable_by(take - 1, |&a, &b| {
                ub[b as usize].partial_cmp(&ub[a as usize]).unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        picked.clear();
        picked.extend_from_slice(&ids[done..done + take]);
        picked.sort_unstable();
        // 3. Fine bounds of the picked doc blocks.
        fine_bounds::<K>(plan, &bounds, fine_rare, &picked, &mut fine_ub);
        fine.clear();
        for (i, &b) in picked.iter().enumerate() {
            let word = allowed.map_or(u64::MAX, |a| a.word(b as usize));
            for j in 0..FINE_PER {
                let f = b as usize * FINE_PER + j;
                if f * FINE_BLOCK >= n || (word >> (j * FINE_BLOCK)) & 0xffff == 0 {
                    continue;
                }
                let u = fine_ub[i * FINE_PER + j];
                if u > K::S::default() && !K::below(u, theta, slack) {
                    fine.push((u, f as u32));
                }
            }
        }
        // 4. Exact scores of the surviving fine blocks, best bound first, in groups between
        //    which the threshold is checked again.
        fine.sort_unstable_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
        let mut at = 0;
        let mut size = FIRST_GROUP;
        while at < fine.len() {
            let theta = top.threshold();
            if K::below(fine[at].0, theta, slack) {
                break; // sorted by bound: every later one is below too
            }
            let end = (at + size).min(fine.len());
            size = (size * 2).min(GROUP);
            group.clear();
            group.extend(fine[at..end].iter().filter(|e| !K::below(e.0, theta, slack)).map(|e| e.1));
            group.sort_unstable();
            for &f in &group {
                let lo = f as usize * FINE_BLOCK;
                for d in lo..(lo + FINE_BLOCK).min(n) {
                    top.push(d as u32, rows.score(d));
                }
            }
            at = end;
        }
        done += take;
        batch *= 4;
    }
    result.map(|()| top.into_sorted())
}

/// Read a rare term's postings once: its largest contribution per doc block is added to
/// `ub`, and per fine block to `fine`. (Runs of postings in one block are folded within a
/// decoded 128-posting chunk and carried over to the next chunk.)
fn fold_rare<K: Kind>(
    v: &IndexView<'_>,
    arrays: &ImpactArrays<'_, K::Imp>,
    term: u32,
    w: K::W,
    ub: &mut [K::S],
    fine: &mut [K::S],
) {
    let mut cs = [K::S::default(); crate::codec::BLOCK_LEN];
    let (mut cb, mut cm) = (u32::MAX, K::S::default());
    let (mut fb, mut fm) = (u32::MAX, K::S::default());
    for_each_block(v, arrays, term, |ds, is| {
        let cs = &mut cs[..ds.len()];
        for (c, &i) in cs.iter_mut().zip(is) {
            *c = K::mul(w, i);
        }
        for (&d, &c) in ds.iter().zip(cs.iter()) {
            let b = d / DOC_BLOCK as u32;
            if b != cb {
                if let Some(u) = ub.get_mut(cb as usize) {
                    *u += cm;
                }
                (cb, cm) = (b, c);
            } else if c > cm {
                cm = c;
            }
            let f = d / FINE_BLOCK as u32;
            if f != fb {
                if let Some(u) = fine.get_mut(fb as usize) {
                    *u += fm;
                }
                (fb, fm) = (f, c);
            } else if c > fm {
                fm = c;
            }
        }
    });
    if let Some(u) = ub.get_mut(cb as usize) {
        *u += cm;
    }
    if let Some(u) = fine.get_mut(fb as usize) {
        *u += fm;
    }
}

/// Fine-block bounds of the doc blocks `picked`: `out[i * 4 + j]` bounds fine block `j` of
/// `picked[i]`.
fn fine_bounds<K: Kind>(
    plan: &Plan<K>,
    bounds: &[Bounds<'_, K::Imp>],
    fine_rare: &[K::S],
    picked: &[u32],
    out: &mut Vec<K::S>,
) {
    out.clear();
    out.reserve(picked.len() * FINE_PER);
    for &b in picked {
        for j in 0..FINE_PER {
            out.push(fine_rare.get(b as usize * FINE_PER + j).copied().unwrap_or_default());
        }
    }
    for (pt, src) in plan.terms.iter().zip(bounds) {
        let Bounds::Dense { coarse, fine } = src else { continue };
        for (i, &b) in picked.iter().enumerate() {
            let c = coarse[b as usize];
            if c.is_zero() {
                continue;
            }
            match fine {
                Some(fa) => {
                    for j in 0..FINE_PER {
                        if let Some(&m) = fa.get(b as usize * FINE_PER + j) {
                            out[i * FINE_PER + j] += K::mul(pt.w, m);
                        }
                    }
                }
                None => {
                    let m = K::mul(pt.w, c);
                    for j in 0..FINE_PER {
                        out[i * FINE_PER + j] += m;
                    }
                }
            }
        }
    }
}
