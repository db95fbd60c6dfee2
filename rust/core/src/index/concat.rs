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
use crate::container::ContainerWriter;
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
    mut ids: IdsData,
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
    let (kind, scale, (w, n_postings), term_ids, local_of) = match quantization {
        Quantization::F32 => {
            let (w, t, l) = postings_of(w, &views, &newdoc, |v| match v.impacts {
                Impacts::F32(a) => Some(a),
                _ => None,
            })?;
            (ImpactKind::F32, 1.0, w, t, l)
        }
        Quantization::U8 { scale } => {
            let (w, t, l) = postings_of(w, &views, &newdoc, |v| match v.impacts {
                Impacts::U8(a) => Some(a),
                _ => None,
            })?;
            (ImpactKind::U8, scale.unwrap_or(1.0), w, t, l)
        }
        Quantization::Bm25(_) => {
            let (w, t, l) = postings_of(w, &views, &newdoc, |v| match v.impacts {
                Impacts::Bm25(a) => Some(a),
                _ => None,
            })?;
            (ImpactKind::Bm25, 1.0, w, t, l)
        }
    };
    // Stored vectors, ids. Terms are remapped straight to the merged width (u16 when the
    // merged dictionary allows, as the builder stores them); values are not gathered at all:
    // the section is written from the members' own (mapped) value slices, one run of
    // consecutive live documents at a time.
    let n_post: usize = views.iter().map(|v| v.forward.map_or(0, |f| f.terms.len())).sum();
    let narrow = term_ids.len() <= super::FWD_U16_TERMS;
    let mut indptr: Vec<u64> = Vec::with_capacity(origin.len() + 1);
    let mut t16: Vec<u16> = Vec::with_capacity(if narrow { n_post } else { 0 });
    let mut t32: Vec<u32> = Vec::with_capacity(if narrow { 0 } else { n_post });
    let mut values: Vec<&[f32]> = Vec::new();
    // The member and value range of the run being extended.
    let mut run: Option<(usize, usize, usize)> = None;
    indptr.push(0);
    let mut n_stored = 0usize;
    let has_ids = !matches!(ids, IdsData::None);
    for &(m, d) in &origin {
        let v = views[m as usize];
        let f = v
            .forward
            .ok_or_else(|| Error::InvalidArgument(format!("member {m} of the merge does not store its vectors")))?;
        let (a, b) = (f.indptr[d as usize] as usize, f.indptr[d as usize + 1] as usize);
        let map = &local_of[m as usize];
        let bad = |t: u32| {
            Error::Corrupt(format!(
                "member {m}, document {d}: stored vector holds term {} that has no posting of the document",
                v.external_term(t)
            ))
        };
        for t in f.terms.range(a, b) {
            match map.get(t as usize) {
                Some(&l) if l != u32::MAX => {
                    if narrow {
                        t16.push(l as u16)
                    } else {
                        t32.push(l)
                    }
                }
                _ => return Err(bad(t)),
            }
        }
        let vals = f
            .values
            .get(a..b)
            .ok_or_else(|| Error::Corrupt(format!("member {m}, document {d}: stored values out of range")))?;
        n_stored += vals.len();
        run = match run {
            Some((rm, ra, rb)) if rm == m as usize && rb == a => Some((rm, ra, b)),
            Some((rm, ra, rb)) => {
                values.push(&views[rm].forward.map_or(&[][..], |f| f.values)[ra..rb]);
                Some((m as usize, a, b))
            }
            None => Some((m as usize, a, b)),
        };
        indptr.push(n_stored as u64);
        if has_ids {
            ids.push(v.ids.get(d).unwrap_or(super::Id::Int(d as i64)))?;
        }
    }
    if let Some((rm, ra, rb)) = run {
        values.push(&views[rm].forward.map_or(&[][..], |f| f.values)[ra..rb]);
    }
    if n_stored != n_postings {
        return Err(Error::Corrupt(format!(
            "the members' stored vectors hold {n_stored} live entries, their postings {n_postings}"
        )));
    }
    // Each member's live documents in its own id order (its `ids_sorted`), as merged docs:
    // runs the merged order is merged from, not sorted anew.
    let runs: Vec<Vec<u32>> = if has_ids {
        views
            .iter()
            .zip(&newdoc)
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
    let opts = BuildOptions { n_terms, quantization, store_vectors: true, reorder: super::Reorder::None };
    let tail = Tail { kind, scale, opts: &opts, members_order };
    let w = write_tail_with(w, origin.len(), &term_ids, &tail, &ids, sorted.as_deref(), doc_len.as_deref(), |w| {
        w.add_u64s("fwd_indptr", &indptr)?;
        if narrow {
            w.add_u16s("fwd_terms_u16", &t16)?;
        } else {
            w.add_u32s("fwd_terms", &t32)?;
        }
        w.add_f32_parts("fwd_values", &values)
    })?;
    let out = if w.is_file() {
        let (_file, size, crc32) = w.finish_file()?;
        Out::File { size, crc32 }
    } else {
        Out::Index(Index::from_image(w.into_image(), false)?)
    };
    Ok(Concatenated { out, origin })
}

/// The merged posting sections, written: (the writer, number of postings), the merged
/// term dictionary, and per member its local term -> merged local term (`u32::MAX`: no live
/// posting left).
#[allow(clippy::type_complexity)]
fn postings_of<'a, I: StoredImpact>(
    mut w: ContainerWriter,
    views: &[&IndexView<'a>],
    newdoc: &[Vec<u32>],
    arrays: impl Fn(&IndexView<'a>) -> Option<ImpactArrays<'a, I>>,
) -> Result<((ContainerWriter, usize), Vec<u32>, Vec<Vec<u32>>)> {
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
    let mut local_of: Vec<Vec<u32>> = views.iter().map(|v| vec![u32::MAX; v.n_terms as usize]).collect();
    let mut next = vec![0usize; views.len()];
    let mut buf = [0u32; BLOCK_LEN];
    loop {
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
        let mut members_here = Vec::new();
        for (m, v) in views.iter().enumerate() {
            let t = next[m];
            if t < v.n_terms as usize && v.term_ids[t] == ext {
                next[m] += 1;
                members_here.push((m, t));
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
            let l = term_ids.len() as u32;
            for (m, t) in members_here {
                local_of[m][t] = l;
            }
            term_ids.push(ext);
            start.push(docs.len() as u64);
        }
    }
    let n_post = docs.len();
    let n_docs = newdoc.iter().map(|m| m.iter().filter(|&&d| d != u32::MAX).count()).sum::<usize>();
    write_postings(&mut w, term_ids.len(), n_docs, Postings::new(start, docs, impacts))?;
    Ok(((w, n_post), term_ids, local_of))
}
