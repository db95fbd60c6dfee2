//! Merging segments by concatenating their postings, as tantivy's `IndexMerger` and Lucene's
//! `SegmentMerger` do: no rebuild from the stored vectors, no re-quantization, no sort.
//!
//! The merged segment holds the members' live documents one member after the other, each
//! member's in its internal order. Its term dictionary is the union of the members' (external
//! ids ascending, terms left without a live posting dropped); each term's postings are the
//! members' postings, decoded block by block, with doc ids remapped (deleted documents
//! dropped) and impacts copied, then cut into 128-posting blocks with fresh block-max bounds
//! and dense maxima by the builder's own writer. Stored vectors, document lengths and ids are
//! carried over the same way. Impacts can be copied only when every member stores them on the
//! merged segment's grid: the same u8 scale, floats, or BM25 (tf, document length) pairs.
//!
//! The image is the one [`super::build::build`] writes for the surviving documents in that
//! order without reordering, byte for byte (the tests compare them), so searches are the
//! same too.

use super::build::{write_tail_with, BuildOptions, Quantization, Tail};
use super::ids::{ExternalIds, IdsData};
use super::write::{write_postings, Postings, StoredImpact};
use super::{ImpactArrays, ImpactKind, Impacts, Index, IndexView};
use crate::codec::BLOCK_LEN;
use crate::container::{ContainerWriter, SectionCrc};
use crate::postings::decode_block;
use crate::search::DocSet;
use crate::{Error, Result};

/// The grid the members can be merged onto by copying their impacts, if any: every member
/// stores its vectors and its impacts on the grid the rebuild would choose for `quantization`
/// (for u8 with a shared scale `s`: `s` if every live weight fits it, `w * s <= 255`, else
/// 255 / the largest live weight; every member's scale must be that one, bit for bit).
pub(crate) fn concat_grid(members: &[(&Index, Option<&DocSet>)], quantization: Quantization) -> Option<Quantization> {
    if members.iter().any(|(ix, _)| ix.view().forward.is_none()) {
        return None;
    }
    let kinds_agree = |want: ImpactKind| members.iter().all(|(ix, _)| ix.view().kind() == want);
    match quantization {
        Quantization::F32 => kinds_agree(ImpactKind::F32).then_some(quantization),
        Quantization::Bm25(_) => kinds_agree(ImpactKind::Bm25).then_some(quantization),
        Quantization::U8 { scale } => {
            if !kinds_agree(ImpactKind::U8) {
                return None;
            }
            // Every member on the given scale `s`: a member whose impacts all stay below 255
            // holds no weight with `w * s >= 254.5` (impact = round(w * s)), so it fits `s`
            // by construction and its values need no scan; only the members holding an
            // impact of 255 are scanned. If they fit too, the answer is `s`, as below.
            if let Some(s) = scale {
                if members.iter().all(|(ix, _)| ix.view().scale.to_bits() == s.to_bits()) {
                    let mut max = 0.0f32;
                    for (ix, live) in members {
                        let below = match ix.view().impacts {
                            Impacts::U8(a) => a.term_max.iter().all(|&m| m < 255),
                            _ => false,
                        };
                        if !below {
                            max = live_max(ix, *live, max)?;
                        }
                    }
                    if max * s <= 255.0 {
                        return Some(Quantization::U8 { scale: Some(s) });
                    }
                }
            }
            let mut max = 0.0f32;
            for (ix, live) in members {
                max = live_max(ix, *live, max)?;
            }
            let s = match scale {
                Some(s) if max * s <= 255.0 => s,
                _ if max > 0.0 => 255.0 / max,
                _ => 1.0,
            };
            members
                .iter()
                .all(|(ix, _)| ix.view().scale.to_bits() == s.to_bits())
                .then_some(Quantization::U8 { scale: Some(s) })
        }
    }
}

/// The largest of `max` and the stored weights of `ix`'s live documents (`None`: no stored
/// vectors).
fn live_max(ix: &Index, live: Option<&DocSet>, mut max: f32) -> Option<f32> {
    let f = ix.view().forward?;
    match live {
        None => max = f.values.iter().copied().fold(max, f32::max),
        Some(l) => {
            for d in 0..ix.n_docs() {
                if l.contains(d) {
                    let (a, b) = (f.indptr[d as usize] as usize, f.indptr[d as usize + 1] as usize);
                    max = f.values[a..b].iter().copied().fold(max, f32::max);
                }
            }
        }
    }
    Some(max)
}

/// The merged image and where its documents came from (see [`super::merge::Merged`]).
pub(crate) struct Concatenated {
    pub(crate) out: Out,
    pub(crate) origin: Vec<(u32, u32)>,
}

/// Where a merged image went.
pub(crate) enum Out {
    /// Built in memory.
    Index(Index),
    /// Streamed into the file the merge was given (not synced): its length and CRC32.
    File { size: u64, crc32: u32 },
}

/// Merge by concatenation (`quantization` from [`concat_grid`]; the caller checked the ids'
/// kinds): the live
/// documents of `members` into `quantization`, with `ids` (empty, of the members' kind) to
/// fill, declared vocabulary `n_terms`; `members_order` marks the image as being in the
/// members' order (`meta[9]`). With `file` (empty, open for writing) the image is streamed
/// into it as it is made ([`ContainerWriter::to_file`]) instead of built in memory: the same
/// bytes.
pub(crate) fn concat(
    members: &[(&Index, Option<&DocSet>)],
    quantization: Quantization,
    n_terms: Option<u32>,
    ids: IdsData,
    members_order: bool,
    file: Option<std::fs::File>,
) -> Result<Concatenated> {
    let w = match file {
        None => ContainerWriter::new(super::format::MAGIC, super::format::VERSION),
        Some(f) => ContainerWriter::to_file(super::format::MAGIC, super::format::VERSION, f)?,
    };
    let views: Vec<&IndexView<'_>> = members.iter().map(|(ix, _)| ix.view()).collect();
    // Member doc -> merged doc (u32::MAX: deleted), and the origin of every merged doc.
    let mut newdoc: Vec<Vec<u32>> = Vec::with_capacity(members.len());
    let mut origin: Vec<(u32, u32)> = Vec::new();
    for (m, (ix, live)) in members.iter().enumerate() {
        let mut map = Vec::with_capacity(ix.n_docs() as usize);
        for d in 0..ix.n_docs() {
            if live.is_some_and(|l| !l.contains(d)) {
                map.push(u32::MAX);
            } else {
                if origin.len() >= u32::MAX as usize - 1 {
                    return Err(Error::InvalidArgument(format!("too many documents to merge ({})", origin.len())));
                }
                map.push(origin.len() as u32);
                origin.push((m as u32, d));
            }
        }
        newdoc.push(map);
    }
    let doc_len = match quantization {
        Quantization::Bm25(_) => Some(
            origin.iter().map(|&(m, d)| views[m as usize].doc_len.map_or(0, |l| l[d as usize])).collect::<Vec<u32>>(),
        ),
        _ => None,
    };
    // The postings (this thread) and the stored vectors with the ids (a second thread: the
    // sections after the postings, made while the postings are) are independent: each side
    // derives the merged term dictionary from its own data, and the two must agree. Both rely
    // on one invariant: merged documents are the members' live documents, member by member in
    // order, each member's in its own order (`origin` is built so, above); `stored_of` walks
    // the members in that order and `postings_of` maps through `newdoc`.
    debug_assert!(origin.windows(2).all(|p| p[0] < p[1]), "origin is member-major, ascending");
    let (postings, stored) = std::thread::scope(|s| {
        let (views, newdoc, origin) = (&views, &newdoc, &origin);
        let side = std::thread::Builder::new()
            .name("sparsedex-merge-stored".into())
            .spawn_scoped(s, move || crate::par::run(|| stored_of(views, newdoc, origin, ids))) // see fs::create_fill_check
            .map_err(|e| Error::io("starting the thread that merges stored vectors", e));
        let postings = match quantization {
            Quantization::F32 => postings_of(w, views, newdoc, |v| match v.impacts {
                Impacts::F32(a) => Some(a),
                _ => None,
            })
            .map(|(w, t)| (ImpactKind::F32, 1.0, w, t)),
            Quantization::U8 { scale } => postings_of(w, views, newdoc, |v| match v.impacts {
                Impacts::U8(a) => Some(a),
                _ => None,
            })
            .map(|(w, t)| (ImpactKind::U8, scale.unwrap_or(1.0), w, t)),
            Quantization::Bm25(_) => postings_of(w, views, newdoc, |v| match v.impacts {
                Impacts::Bm25(a) => Some(a),
                _ => None,
            })
            .map(|(w, t)| (ImpactKind::Bm25, 1.0, w, t)),
        };
        let stored = side.and_then(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::io("merging stored vectors", std::io::Error::other("the merging thread panicked")))
            })
        });
        (postings, stored)
    });
    let (kind, scale, (w, n_postings), term_ids) = postings?;
    let Stored { term_ids: stored_terms, indptr, terms, values, n_stored, ids, sorted } = stored?;
    if stored_terms != term_ids {
        let at = term_ids
            .iter()
            .zip(&stored_terms)
            .position(|(a, b)| a != b)
            .unwrap_or(term_ids.len().min(stored_terms.len()));
        let which = match (term_ids.get(at), stored_terms.get(at)) {
            (Some(&p), Some(&v)) => p.min(v),
            (Some(&p), None) => p,
            (None, Some(&v)) => v,
            (None, None) => 0,
        };
        return Err(Error::Corrupt(format!(
            "the members' stored vectors and postings disagree on the live documents of term {which}"
        )));
    }
    if n_stored != n_postings {
        return Err(Error::Corrupt(format!(
            "the members' stored vectors hold {n_stored} live entries, their postings {n_postings}"
        )));
    }
    let opts = BuildOptions { n_terms, quantization, store_vectors: true, reorder: super::Reorder::None };
    let tail = Tail { kind, scale, opts: &opts, members_order };
    let w = write_tail_with(w, origin.len(), &term_ids, &tail, &ids, sorted.as_deref(), doc_len.as_deref(), |w| {
        w.add_u64s_hashed("fwd_indptr", &indptr.0, &indptr.1)?;
        match &terms {
            StoredTerms::U16(t, h) => w.add_u16s_hashed("fwd_terms_u16", t, h)?,
            StoredTerms::U32(t, h) => w.add_u32s_hashed("fwd_terms", t, h)?,
        }
        w.add_f32_parts_hashed("fwd_values", &values.0, &values.1)
    })?;
    let out = if w.is_file() {
        let (_file, size, crc32) = w.finish_file()?;
        Out::File { size, crc32 }
    } else {
        Out::Index(Index::from_image(w.into_image(), false)?)
    };
    Ok(Concatenated { out, origin })
}

/// The merged posting sections, written: (the writer, number of postings) and the merged
/// term dictionary (the terms left with a live posting).
fn postings_of<'a, I: StoredImpact>(
    mut w: ContainerWriter,
    views: &[&IndexView<'a>],
    newdoc: &[Vec<u32>],
    arrays: impl Fn(&IndexView<'a>) -> Option<ImpactArrays<'a, I>>,
) -> Result<((ContainerWriter, usize), Vec<u32>)> {
    let arrs: Vec<ImpactArrays<'a, I>> = views
        .iter()
        .enumerate()
        .map(|(m, v)| {
            arrays(v).ok_or_else(|| Error::InvalidArgument(format!("member {m} stores another kind of impacts")))
        })
        .collect::<Result<_>>()?;
    // Members without deletions are shifted, not remapped.
    let shift: Vec<Option<u32>> = newdoc
        .iter()
        .map(|map| {
            let base = map.first().copied().unwrap_or(0);
            let shifted = map.iter().enumerate().all(|(d, &n)| n != u32::MAX && n == base.wrapping_add(d as u32));
            shifted.then_some(base)
        })
        .collect();
    let total: usize = views.iter().map(|v| v.n_postings() as usize).sum();
    let mut start = vec![0u64];
    let mut docs: Vec<u32> = Vec::with_capacity(total);
    let mut impacts: Vec<I> = Vec::with_capacity(total);
    let mut term_ids = Vec::new();
    let mut next = vec![0usize; views.len()];
    let mut buf = [0u32; BLOCK_LEN];
    let stop = crate::cancel::watch();
    loop {
        if term_ids.len() % 1024 == 0 {
            stop.check()?;
        }
        // The smallest external id not yet merged.
        let mut ext = None;
        for (v, &t) in views.iter().zip(&next) {
            if t < v.n_terms as usize {
                let e = v.term_ids[t];
                ext = Some(ext.map_or(e, |x: u32| x.min(e)));
            }
        }
        let Some(ext) = ext else { break };
        let before = docs.len();
        for (m, v) in views.iter().enumerate() {
            let t = next[m];
            if t < v.n_terms as usize && v.term_ids[t] == ext {
                next[m] += 1;
                let a = &arrs[m];
                let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
                let (p0, p1) = (v.term_post_start[t] as usize, v.term_post_start[t + 1] as usize);
                let imps = a
                    .impacts
                    .get(p0..p1)
                    .ok_or_else(|| Error::Corrupt(format!("member {m}: postings out of range")))?;
                for (i, b) in (b0..b1).enumerate() {
                    decode_block(v, b0, b, &mut buf);
                    let lo = i * BLOCK_LEN;
                    let n = BLOCK_LEN.min(imps.len().saturating_sub(lo));
                    let (bd, bi) = (&buf[..n], &imps[lo..lo + n]);
                    match shift[m] {
                        Some(base) => {
                            docs.extend(bd.iter().map(|&d| d.wrapping_add(base)));
                            impacts.extend_from_slice(bi);
                        }
                        None => {
                            let map = &newdoc[m];
                            for (&d, &x) in bd.iter().zip(bi) {
                                let nd = map.get(d as usize).copied().unwrap_or(u32::MAX);
                                if nd != u32::MAX {
                                    docs.push(nd);
                                    impacts.push(x);
                                }
                            }
                        }
                    }
                }
            }
        }
        if docs.len() > before {
            term_ids.push(ext);
            start.push(docs.len() as u64);
        }
    }
    let n_post = docs.len();
    write_postings(&mut w, term_ids.len(), Postings::new(start, docs, impacts))?;
    Ok(((w, n_post), term_ids))
}

/// The stored local term ids of a merged segment, at the width the builder would choose, with
/// their CRC32.
enum StoredTerms {
    U16(Vec<u16>, SectionCrc),
    U32(Vec<u32>, SectionCrc),
}

/// The stored-vector side of a concatenation ([`stored_of`]).
struct Stored<'a> {
    /// The merged term dictionary as the stored vectors see it: the terms of the live
    /// documents' vectors (a member without deletions: its terms that have postings).
    term_ids: Vec<u32>,
    /// `fwd_indptr`, hashed.
    indptr: (Vec<u64>, SectionCrc),
    /// `fwd_terms_u16` or `fwd_terms`.
    terms: StoredTerms,
    /// `fwd_values`: slices of the members' values (one per run of consecutive live
    /// documents), hashed.
    values: (Vec<&'a [f32]>, SectionCrc),
    /// Live stored entries.
    n_stored: usize,
    /// The merged documents' ids, and their ascending order.
    ids: IdsData,
    sorted: Option<Vec<u32>>,
}

/// The merged stored vectors (term ids remapped to the merged dictionary, which is derived from
/// the vectors themselves; values referenced in the members' images, not copied), ids and ids
/// order of the live documents `newdoc` / `origin` of `views`, every large section hashed here.
fn stored_of<'a>(
    views: &[&IndexView<'a>],
    newdoc: &[Vec<u32>],
    origin: &[(u32, u32)],
    mut ids: IdsData,
) -> Result<Stored<'a>> {
    let forward = |m: usize| {
        views[m]
            .forward
            .ok_or_else(|| Error::InvalidArgument(format!("member {m} of the merge does not store its vectors")))
    };
    // Each member's live documents as runs of consecutive documents: (first, end).
    let runs_of = |map: &[u32]| {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for (d, &n) in map.iter().enumerate() {
            if n != u32::MAX {
                match runs.last_mut() {
                    Some((_, e)) if *e == d as u32 => *e += 1,
                    _ => runs.push((d as u32, d as u32 + 1)),
                }
            }
        }
        runs
    };
    let live_runs: Vec<Vec<(u32, u32)>> = newdoc.iter().map(|m| runs_of(m)).collect();
    // A run's entries `a..b` of the member's stored vectors, checked.
    let entries = |m: usize, f: &super::Forward<'_>, (d0, d1): (u32, u32)| -> Result<(usize, usize)> {
        let at = |d: u32| f.indptr.get(d as usize).map(|&x| x as usize);
        match (at(d0), at(d1)) {
            (Some(a), Some(b)) if a <= b && b <= f.values.len() && b <= f.terms.len() => Ok((a, b)),
            _ => Err(Error::Corrupt(format!("member {m}, documents {d0}..{d1}: stored vectors out of range"))),
        }
    };
    // The merged dictionary: the external ids of the terms each member's live vectors hold.
    let mut exts: Vec<u32> = Vec::new();
    let mut lives: Vec<Vec<bool>> = Vec::with_capacity(views.len());
    for (m, v) in views.iter().enumerate() {
        let nt = v.n_terms as usize;
        let mut live = vec![false; nt];
        if live_runs[m].is_empty() {
            // No live document: no term.
        } else if live_runs[m].len() == 1 && live_runs[m][0] == (0, v.n_docs) {
            // No deletions: every term with postings (a stored term outside them is an
            // error below).
            for (t, l) in live.iter_mut().enumerate() {
                *l = v.term_post_start.get(t + 1).zip(v.term_post_start.get(t)).is_some_and(|(b, a)| b > a);
            }
        } else {
            let f = forward(m)?;
            for &r in &live_runs[m] {
                let (a, b) = entries(m, &f, r)?;
                for t in f.terms.range(a, b) {
                    if let Some(l) = live.get_mut(t as usize) {
                        *l = true;
                    }
                }
            }
        }
        exts.extend(live.iter().enumerate().filter(|(_, &l)| l).map(|(t, _)| v.term_ids[t]));
        lives.push(live);
    }
    exts.sort_unstable();
    exts.dedup();
    let local_of: Vec<Vec<u32>> = views
        .iter()
        .zip(&lives)
        .map(|(v, live)| {
            live.iter()
                .enumerate()
                .map(
                    |(t, &l)| {
                        if l {
                            exts.binary_search(&v.term_ids[t]).map_or(u32::MAX, |x| x as u32)
                        } else {
                            u32::MAX
                        }
                    },
                )
                .collect()
        })
        .collect();
    drop(lives);
    // Terms remapped straight to the merged width (u16 when the merged dictionary allows, as
    // the builder stores them), one run of live documents at a time.
    let n_post: usize = views.iter().map(|v| v.forward.map_or(0, |f| f.terms.len())).sum();
    let narrow = exts.len() <= super::FWD_U16_TERMS;
    let mut indptr: Vec<u64> = Vec::with_capacity(origin.len() + 1);
    let mut t16: Vec<u16> = Vec::with_capacity(if narrow { n_post } else { 0 });
    let mut t32: Vec<u32> = Vec::with_capacity(if narrow { 0 } else { n_post });
    let mut values: Vec<&'a [f32]> = Vec::new();
    indptr.push(0);
    let mut n_stored = 0usize;
    let has_ids = !matches!(ids, IdsData::None);
    for (m, v) in views.iter().enumerate() {
        if live_runs[m].is_empty() {
            continue;
        }
        let f = forward(m)?;
        let map = &local_of[m];
        for &(d0, d1) in &live_runs[m] {
            let (a, b) = entries(m, &f, (d0, d1))?;
            let mut ok = true;
            let mut remap = |t: u32| {
                let l = map.get(t as usize).copied().unwrap_or(u32::MAX);
                ok &= l != u32::MAX;
                l
            };
            match (f.terms, narrow) {
                (super::FwdTerms::U16(s), true) => t16.extend(s[a..b].iter().map(|&t| remap(t as u32) as u16)),
                (super::FwdTerms::U32(s), true) => t16.extend(s[a..b].iter().map(|&t| remap(t) as u16)),
                (super::FwdTerms::U16(s), false) => t32.extend(s[a..b].iter().map(|&t| remap(t as u32))),
                (super::FwdTerms::U32(s), false) => t32.extend(s[a..b].iter().map(|&t| remap(t))),
            }
            if !ok {
                let p = f.terms.range(a, b).position(|t| !matches!(map.get(t as usize), Some(&l) if l != u32::MAX));
                let t = p.map_or(0, |p| f.terms.range(a + p, a + p + 1).next().unwrap_or(0));
                let d = f.indptr.partition_point(|&o| o as usize <= a + p.unwrap_or(0)).saturating_sub(1);
                return Err(Error::Corrupt(format!(
                    "member {m}, document {d}: stored vector holds term {} that has no posting of the document",
                    v.external_term(t)
                )));
            }
            for d in d0..d1 {
                // Within `a..=b`, ascending: checked at open (and `entries` checked the ends).
                let end = f.indptr[d as usize + 1] as usize;
                if end < a || end > b {
                    return Err(Error::Corrupt(format!("member {m}, document {d}: stored vectors out of range")));
                }
                indptr.push((n_stored + end - a) as u64);
            }
            n_stored += b - a;
            values.push(&f.values[a..b]);
            if has_ids {
                for d in d0..d1 {
                    ids.push(v.ids.get(d).unwrap_or(super::Id::Int(d as i64)))?;
                }
            }
        }
    }
    // Each member's live documents in its own id order (its `ids_sorted`), as merged docs:
    // runs the merged order is merged from, not sorted anew.
    let runs: Vec<Vec<u32>> = if has_ids {
        views
            .iter()
            .zip(newdoc)
            .map(|(v, map)| {
                let keep = |d: u32| map.get(d as usize).copied().filter(|&n| n != u32::MAX);
                match v.ids {
                    ExternalIds::None => (0..v.n_docs).filter_map(keep).collect(),
                    ExternalIds::Int { sorted, .. } | ExternalIds::Str { sorted, .. } => {
                        sorted.iter().filter_map(|&d| keep(d)).collect()
                    }
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let sorted = ids.merge_sorted(&runs).map_err(|e| match e {
        Error::InvalidDocument { doc, msg } => {
            let (m, d) = origin[doc];
            Error::InvalidArgument(format!("cannot merge: member {m}, document {d}: {msg} in another member"))
        }
        other => other,
    })?;
    let terms = if narrow {
        let h = SectionCrc::u16s(&t16);
        StoredTerms::U16(t16, h)
    } else {
        let h = SectionCrc::u32s(&t32);
        StoredTerms::U32(t32, h)
    };
    let indptr_crc = SectionCrc::u64s(&indptr);
    let values_crc = SectionCrc::f32_parts(&values);
    Ok(Stored {
        term_ids: exts,
        indptr: (indptr, indptr_crc),
        terms,
        values: (values, values_crc),
        n_stored,
        ids,
        sorted,
    })
}
