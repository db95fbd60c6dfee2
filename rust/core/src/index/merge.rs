//! Merging segments: the live documents of several indexes into one, without their vectors
//! ever leaving Rust (as tantivy's `IndexMerger` does).
//!
//! Without reordering, when every member stores its impacts on the merged segment's grid
//! (the same u8 scale, floats, or BM25), the members' postings are concatenated
//! ([`super::concat`]): doc ids remapped, impacts copied, blocks re-encoded. Otherwise the
//! members' stored vectors (mapped from their local term ids back to external ids), ids and
//! document lengths (BM25) are gathered in member order, skipping deleted documents, and
//! built into a new segment: a fresh term dictionary, the quantization grid given (or the
//! data's own), the reorder mode given. Both give the same segment where both apply. The
//! result says where each document came from.

use super::build::{build_local, BuildOptions, Local, Quantization};
use super::concat::{concat, concat_grid, Out};
use super::ids::{ExternalIds, IdsData};
use super::order::Reorder;
use super::{Bm25Params, Impacts, Index};
use crate::search::DocSet;
use crate::vectors::Cleaned;
use crate::{Error, Result};

/// How to merge (default: the first member's kind, the default document order).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MergeOptions {
    /// Impact storage of the merged segment. For `U8 { scale: Some(s) }`, `s` is a shared grid
    /// (a collection's): it is used when every merged weight fits it (`w * s <= 255`), and the
    /// data's own grid (255 / largest weight) otherwise. BM25 members merge into BM25 with their
    /// own parameters whatever this says (`None`: the first member's kind).
    pub quantization: Option<Quantization>,
    /// Document order of the merged segment.
    pub reorder: Reorder,
}

/// A merged segment and where its documents came from.
#[derive(Debug)]
pub struct Merged {
    /// The merged index (in memory).
    pub index: Index,
    /// `origin[new_doc] = (member position, internal doc in that member)`.
    pub origin: Vec<(u32, u32)>,
    /// Whether the members' postings were concatenated (rather than the segment rebuilt from
    /// their stored vectors).
    pub concatenated: bool,
}

/// The impact kind of the merged segment.
fn target_kind(members: &[(&Index, Option<&DocSet>)], opts: &MergeOptions) -> Result<Quantization> {
    let mut bm25: Option<Bm25Params> = None;
    let mut plain = false;
    for (ix, _) in members {
        match ix.view().bm25 {
            Some(m) => match bm25 {
                Some(p) if (p.k1, p.b) != (m.params.k1, m.params.b) => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot merge BM25 segments with different parameters (k1={} b={} and k1={} b={})",
                        p.k1, p.b, m.params.k1, m.params.b
                    )))
                }
                _ => bm25 = bm25.or(Some(m.params)),
            },
            None => plain = true,
        }
    }
    if plain && bm25.is_some() {
        return Err(Error::InvalidArgument("cannot merge BM25 segments with segments of another kind".into()));
    }
    if let Some(p) = bm25 {
        let quantized = match opts.quantization {
            Some(Quantization::Bm25(q)) => q.quantized,
            _ => p.quantized,
        };
        return Ok(Quantization::Bm25(Bm25Params { quantized, ..p }));
    }
    Ok(match (opts.quantization, members.first()) {
        (Some(Quantization::Bm25(_)), _) => {
            return Err(Error::InvalidArgument("cannot merge segments of another kind into a BM25 segment".into()))
        }
        (Some(q), _) => q,
        (None, Some((ix, _))) if matches!(ix.view().impacts, Impacts::F32(_)) => Quantization::F32,
        (None, Some((ix, _))) => Quantization::U8 { scale: Some(ix.view().scale) },
        (None, None) => Quantization::F32,
    })
}

/// The declared vocabulary of the merged segment: the members' (which must agree).
fn target_vocab(members: &[(&Index, Option<&DocSet>)]) -> Result<Option<u32>> {
    let mut out: Option<Option<u32>> = None;
    for (ix, _) in members {
        let v = ix.view().vocab;
        match out {
            Some(o) if o != v => {
                return Err(Error::InvalidArgument(format!(
                    "cannot merge segments with different vocabulary sizes ({o:?} and {v:?})"
                )))
            }
            _ => out = Some(v),
        }
    }
    Ok(out.flatten())
}

/// Merge the live documents of `members` (each with its live set; all documents when `None`)
/// into one index. Every member must store its vectors; BM25 members must share k1 and b;
/// ids must be of one kind (integers, strings, or none) and unique across members.
pub fn merge(members: &[(&Index, Option<&DocSet>)], opts: &MergeOptions) -> Result<Merged> {
    in_memory(merge_impl(members, opts, None, None)?)
}

/// The merged index of a merge made without a file.
fn in_memory((out, origin, concatenated): (Out, Vec<(u32, u32)>, bool)) -> Result<Merged> {
    match out {
        Out::Index(index) => Ok(Merged { index, origin, concatenated }),
        Out::File { .. } => Err(Error::InvalidArgument("a merge into a file has no in-memory index".into())),
    }
}

/// A store's merge: by concatenation whenever the members allow it, whatever `order` says,
/// the result then marked as being in its members' order ([`super::IndexView::members_order`])
/// when `order` reorders and the members' orders are not kept as they are (more than one
/// member, or a single member so marked); otherwise rebuilt in `order`.
pub(crate) fn merge_deferring_order(
    members: &[(&Index, Option<&DocSet>)],
    quantization: Option<Quantization>,
    order: Reorder,
) -> Result<Merged> {
    in_memory(merge_deferring_order_into(members, quantization, order, None)?)
}

/// [`merge_deferring_order`], with `file` (empty, open for writing): a concatenation is
/// streamed into it as it is made ([`Out::File`]); a rebuild is still made in memory
/// ([`Out::Index`]). Returns where the image went, the origin of the merged documents and
/// whether they were concatenated.
pub(crate) fn merge_deferring_order_into(
    members: &[(&Index, Option<&DocSet>)],
    quantization: Option<Quantization>,
    order: Reorder,
    file: Option<std::fs::File>,
) -> Result<(Out, Vec<(u32, u32)>, bool)> {
    let pending = order.is_some() && (members.len() > 1 || members.iter().any(|(ix, _)| ix.view().members_order));
    merge_impl(members, &MergeOptions { quantization, reorder: order }, Some(pending), file)
}

/// `concat_mark`: concatenate when possible even if `opts` reorders, marking the result
/// with it; `None`: concatenate only without reordering (unmarked). `file`: see
/// [`merge_deferring_order_into`].
fn merge_impl(
    members: &[(&Index, Option<&DocSet>)],
    opts: &MergeOptions,
    concat_mark: Option<bool>,
    file: Option<std::fs::File>,
) -> Result<(Out, Vec<(u32, u32)>, bool)> {
    let quantization = target_kind(members, opts)?;
    let n_terms = target_vocab(members)?;
    let mut ids = IdsData::None;
    for (m, (ix, live)) in members.iter().enumerate() {
        let v = ix.view();
        if v.forward.is_none() {
            return Err(Error::InvalidArgument(format!(
                "member {m} of the merge does not store its vectors (store_vectors=false)"
            )));
        }
        if let Some(l) = live {
            crate::search::check_allowed(ix, Some(l))?;
        }
        if m == 0 {
            ids = match v.ids {
                ExternalIds::None => IdsData::None,
                ExternalIds::Int { .. } => IdsData::Int(Vec::new()),
                ExternalIds::Str { .. } => IdsData::Str { off: vec![0], bytes: Vec::new() },
            };
        } else if matches!(v.ids, ExternalIds::None) != matches!(ids, IdsData::None) {
            return Err(Error::InvalidArgument("cannot merge segments with ids and segments without".into()));
        }
    }
    let concat_ok = match concat_mark {
        Some(_) => true,
        None => !opts.reorder.is_some(),
    };
    if let Some(grid) = concat_ok.then(|| concat_grid(members, quantization)).flatten() {
        let c = concat(members, grid, n_terms, ids, concat_mark.unwrap_or(false), file)?;
        return Ok((c.out, c.origin, true));
    }
    let m = rebuild(members, opts, quantization, n_terms, ids)?;
    Ok((Out::Index(m.index), m.origin, m.concatenated))
}

/// Merge by gathering the members' stored vectors and building anew.
fn rebuild(
    members: &[(&Index, Option<&DocSet>)],
    opts: &MergeOptions,
    quantization: Quantization,
    n_terms: Option<u32>,
    mut ids: IdsData,
) -> Result<Merged> {
    let bm25 = matches!(quantization, Quantization::Bm25(_));
    let mut c = Cleaned { indptr: vec![0], terms: Vec::new(), values: Vec::new() };
    let mut doc_len: Vec<u32> = Vec::new();
    let mut origin: Vec<(u32, u32)> = Vec::new();
    for (m, (ix, live)) in members.iter().enumerate() {
        let v = ix.view();
        let f = v.forward.ok_or_else(|| {
            Error::InvalidArgument(format!("member {m} of the merge does not store its vectors (store_vectors=false)"))
        })?;
        let has_ids = !matches!(ids, IdsData::None);
        for d in 0..v.n_docs {
            if live.is_some_and(|l| !l.contains(d)) {
                continue;
            }
            let (a, b) = (f.indptr[d as usize] as usize, f.indptr[d as usize + 1] as usize);
            for (t, &x) in f.terms.range(a, b).zip(&f.values[a..b]) {
                if !(x.is_finite() && x > 0.0) || (bm25 && x.fract() != 0.0) {
                    return Err(Error::Corrupt(format!("member {m}, document {d}: stored weight {x} is not valid")));
                }
                c.terms.push(v.term_ids[t as usize]);
                c.values.push(x);
            }
            c.indptr.push(c.terms.len() as u64);
            if has_ids {
                ids.push(v.ids.get(d).unwrap_or(super::Id::Int(d as i64)))?;
            }
            if bm25 {
                doc_len.push(v.doc_len.map_or(0, |l| l[d as usize]));
            }
            origin.push((m as u32, d));
        }
    }
    if origin.len() >= u32::MAX as usize {
        return Err(Error::InvalidArgument(format!("too many documents to merge ({})", origin.len())));
    }
    let sorted = ids.sorted().map_err(|e| match e {
        Error::InvalidDocument { doc, msg } => {
            let (m, d) = origin[doc];
            Error::InvalidArgument(format!("cannot merge: member {m}, document {d}: {msg} in another member"))
        }
        other => other,
    })?;
    let quantization = match quantization {
        Quantization::U8 { scale: Some(s) } => {
            let max = c.values.iter().copied().fold(0.0f32, f32::max);
            Quantization::U8 { scale: (max * s <= 255.0).then_some(s) }
        }
        q => q,
    };
    let opts = BuildOptions { n_terms, quantization, store_vectors: true, reorder: opts.reorder };
    let built = build_local(Local::new(c), ids, sorted, bm25.then_some(doc_len), &opts)?;
    let origin = built.order.iter().map(|&row| origin[row as usize]).collect();
    Ok(Merged { index: built.index, origin, concatenated: false })
}
