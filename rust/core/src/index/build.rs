//! Construction of an [`Index`] from sparse vectors (validated by [`crate::vectors`]).
//!
//! Quantization (the default): every non-zero weight `w` becomes the impact
//! `q(w) = clamp(round(w * scale), 1, 255)` with `scale = 255 / max_weight` unless given.
//! For `w >= 0.5 / scale` the error `|w - q(w) / scale|` is at most `0.5 / scale`
//! (`max_weight / 510`); smaller weights are kept as impact 1 (error below `1 / scale`), so no
//! match is ever lost. A query's score error is at most `sum_t q_t * err_t`.
//!
//! BM25 ([`Quantization::Bm25`]): the weights are term frequencies (whole numbers >= 1), stored
//! with each document's length (given, or the sum of its term frequencies); scoring happens at
//! query time from the collection statistics (see [`crate::search::bm25`]).

use super::format::{MAGIC, VERSION};
use super::ids::IdsData;
use super::impact::{Bm25Impact, Bm25Params};
use super::order::permute;
use super::terms::{segment_lut, TermMap};
use super::write::{postings_impacts, write_postings};
use super::{ImpactKind, Index};
use crate::container::ContainerWriter;
use crate::vectors::{clean, Cleaned};
use crate::{Error, Result};

pub use super::ids::IdsInput;
pub use super::order::{bp_order_csr, similarity_order, Reorder};
pub use crate::vectors::{check_csr, clean_csr, clean_row, CsrRef};

/// How to store impacts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantization {
    /// `u8` impacts; `scale` is chosen from the data (255 / largest weight) when `None`.
    U8 {
        /// Fixed scale (impact = round(w * scale)); every weight must then satisfy w * scale <= 255.5.
        scale: Option<f32>,
    },
    /// `f32` impacts, scores computed in float.
    F32,
    /// BM25: term frequencies and document lengths, scored at query time.
    Bm25(Bm25Params),
}

/// Build options.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Vocabulary size (term ids must be below it); the largest id + 1 when `None`.
    pub n_terms: Option<u32>,
    /// Impact storage.
    pub quantization: Quantization,
    /// Keep the original vectors (for `get` and explanations).
    pub store_vectors: bool,
    /// How to order documents (internal ids); ids are kept whatever the order.
    pub reorder: Reorder,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            n_terms: None,
            quantization: Quantization::U8 { scale: None },
            store_vectors: true,
            reorder: Reorder::default(),
        }
    }
}

/// Quantize a non-zero weight with `scale` (see the module doc): `round(w * scale)` (half away
/// from zero) clamped to `1..=255`, with `w * scale` computed in f32.
///
/// For `y = w * scale >= 0` (finite, or +inf), `round(y) = floor(y + 1/2)`, and `y + 1/2` is exact
/// in f64, so the f64 add and a truncating cast give the same integer as `f32::round` without
/// the libm call that `round` costs on baseline x86-64 (this runs for every stored entry the
/// forward scorers read; `quantize_matches_round` checks the equivalence).
#[inline]
pub fn quantize(w: f32, scale: f32) -> u8 {
    let r = (w * scale) as f64 + 0.5;
    (r as u32).clamp(1, 255) as u8
}

/// [`Cleaned`] with its terms mapped to dense local ids (`term_ids[local] = external`).
pub(crate) struct Local {
    pub(crate) indptr: Vec<u64>,
    pub(crate) terms: Vec<u32>,
    pub(crate) values: Vec<f32>,
    pub(crate) term_ids: Vec<u32>,
}

impl Local {
    pub(crate) fn new(c: Cleaned) -> Local {
        let Cleaned { indptr, mut terms, values } = c;
        let (map, term_ids) = TermMap::from_terms(&terms);
        map.remap(&mut terms);
        Local { indptr, terms, values, term_ids }
    }
    pub(crate) fn n_terms(&self) -> u32 {
        self.term_ids.len() as u32
    }
}

/// A built index and the document order it was built in: `order[internal_doc] = input_row`.
#[derive(Debug)]
pub struct Built {
    /// The index, in memory.
    pub index: Index,
    /// `order[internal_doc] = input_row` (the identity without reordering).
    pub order: Vec<u32>,
}

/// Build an index in memory from CSR rows (validated: errors name the document) and their ids
/// (unique; a duplicate is an error naming the document). Returns the index and the order the
/// documents were stored in.
pub fn build(docs: CsrRef<'_>, ids: IdsInput<'_>, opts: &BuildOptions) -> Result<Built> {
    build_with(docs, ids, None, opts)
}

/// [`build`] with document lengths (BM25 only; by default each document's length is the sum
/// of its term frequencies).
pub fn build_with(docs: CsrRef<'_>, ids: IdsInput<'_>, doc_len: Option<&[u32]>, opts: &BuildOptions) -> Result<Built> {
    let cleaned = clean(&docs, opts.n_terms)?;
    let n = cleaned.indptr.len() - 1;
    let ids = IdsData::from_input(ids, n)?;
    let sorted = ids.sorted()?;
    let doc_len = match opts.quantization {
        Quantization::Bm25(p) => {
            p.check()?;
            check_tf(&cleaned)?;
            Some(match doc_len {
                Some(l) if l.len() != n => {
                    return Err(Error::InvalidArgument(format!("{} document lengths given for {n} documents", l.len())))
                }
                Some(l) => l.to_vec(),
                None => tf_sums(&cleaned)?,
            })
        }
        _ if doc_len.is_some() => {
            return Err(Error::InvalidArgument("document lengths only apply to BM25 indexes".into()));
        }
        _ => None,
    };
    build_local(Local::new(cleaned), ids, sorted, doc_len, opts)
}

/// BM25 weights are term frequencies: whole numbers from 1 to 2^32 - 1.
pub(crate) fn check_tf(c: &Cleaned) -> Result<()> {
    match c.values.iter().position(|&v| !is_whole_tf(v)) {
        None => Ok(()),
        Some(pos) => {
            let d = c.indptr.partition_point(|&o| o <= pos as u64) - 1;
            Err(Error::InvalidDocument {
                doc: d,
                msg: format!(
                    "term frequency {} of term {} is not a whole number (a BM25 index stores term frequencies)",
                    c.values[pos], c.terms[pos]
                ),
            })
        }
    }
}

/// Each document's length as the sum of its term frequencies.
pub(crate) fn tf_sums(c: &Cleaned) -> Result<Vec<u32>> {
    c.indptr
        .windows(2)
        .enumerate()
        .map(|(d, w)| {
            let s: f64 = c.values[w[0] as usize..w[1] as usize].iter().map(|&v| v as f64).sum();
            u32::try_from(s as u64).map_err(|_| Error::InvalidDocument {
                doc: d,
                msg: format!("length {s} (the sum of its term frequencies) exceeds 2^32 - 1"),
            })
        })
        .collect()
}

/// Build from validated rows with local term ids; `sorted` lists the rows in ascending id
/// order (from [`IdsData::sorted`]); `doc_len` for BM25.
pub(crate) fn build_local(
    local: Local,
    ids: IdsData,
    sorted: Option<Vec<u32>>,
    doc_len: Option<Vec<u32>>,
    opts: &BuildOptions,
) -> Result<Built> {
    let n_docs = local.indptr.len() - 1;
    let order = opts.reorder.order(&local)?;
    let (local, ids, sorted, doc_len) = match &order {
        Some(o) => {
            let mut inv = vec![0u32; n_docs];
            for (new, &old) in o.iter().enumerate() {
                inv[old as usize] = new as u32;
            }
            let sorted = sorted.map(|s| s.into_iter().map(|d| inv[d as usize]).collect::<Vec<u32>>());
            let doc_len = doc_len.map(|l| o.iter().map(|&d| l[d as usize]).collect::<Vec<u32>>());
            (permute(local, o), ids.permute(o), sorted, doc_len)
        }
        None => (local, ids, sorted, doc_len),
    };
    let mut w = ContainerWriter::new(MAGIC, VERSION);
    // room for the postings, stored vectors and ids at their largest (f32), so that the image
    // is not copied as it grows; untouched reserved pages cost no memory
    w.reserve(local.terms.len() * 16 + n_docs * 40 + (1 << 20));
    let (kind, scale) = write_impacts(&mut w, &local, opts.quantization, doc_len.as_deref())?;
    let tail = Tail { kind, scale, opts, members_order: false };
    let index = write_tail(w, local, &tail, &ids, sorted.as_deref(), doc_len.as_deref())?;
    Ok(Built { index, order: order.unwrap_or_else(|| (0..n_docs as u32).collect()) })
}

/// What [`write_tail`] writes besides the arrays: the impact kind and scale of the posting
/// sections already written, the build options, and whether the document order is the
/// concatenation of merged members' (`meta[9]`, see [`super::format`]).
pub(crate) struct Tail<'a> {
    pub(crate) kind: ImpactKind,
    pub(crate) scale: f32,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) members_order: bool,
}

/// Write every section after the postings (meta, BM25 lengths, term dictionary, stored
/// vectors, ids) and parse the image: the one place both a build and a merge by
/// concatenation ([`super::concat`]) finish a segment, so that they write the same bytes.
pub(crate) fn write_tail(
    w: ContainerWriter,
    local: Local,
    t: &Tail<'_>,
    ids: &IdsData,
    sorted: Option<&[u32]>,
    doc_len: Option<&[u32]>,
) -> Result<Index> {
    let w = write_tail_sections(w, local, t, ids, sorted, doc_len)?;
    Index::from_image(w.into_image(), false)
}

/// [`write_tail`]'s sections, added to `w` (in memory or streamed into a file), not finished.
pub(crate) fn write_tail_sections(
    w: ContainerWriter,
    local: Local,
    t: &Tail<'_>,
    ids: &IdsData,
    sorted: Option<&[u32]>,
    doc_len: Option<&[u32]>,
) -> Result<ContainerWriter> {
    let n_docs = local.indptr.len() - 1;
    let w = write_tail_with(w, n_docs, &local.term_ids, t, ids, sorted, doc_len, |w| {
        w.add_u64s("fwd_indptr", &local.indptr)?;
        if local.n_terms() as usize <= super::FWD_U16_TERMS {
            // Local ids fit in 16 bits: half the bytes.
            let t16: Vec<u16> = local.terms.iter().map(|&t| t as u16).collect();
            w.add_u16s("fwd_terms_u16", &t16)?;
        } else {
            w.add_u32s("fwd_terms", &local.terms)?;
        }
        w.add_f32s("fwd_values", &local.values)
    })?;
    drop(local);
    Ok(w)
}

/// [`write_tail_sections`] for `n_docs` documents over the local terms `term_ids`, with
/// `stored` adding the stored-vector sections (`fwd_indptr`, `fwd_terms_u16` or `fwd_terms`,
/// `fwd_values`) when the options keep them: the one place the sections' order is decided.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_tail_with(
    mut w: ContainerWriter,
    n_docs: usize,
    term_ids: &[u32],
    t: &Tail<'_>,
    ids: &IdsData,
    sorted: Option<&[u32]>,
    doc_len: Option<&[u32]>,
    stored: impl FnOnce(&mut ContainerWriter) -> Result<()>,
) -> Result<ContainerWriter> {
    let mut meta = [0u64; super::format::META_LEN];
    meta[..5].copy_from_slice(&[
        n_docs as u64,
        term_ids.len() as u64,
        match t.kind {
            ImpactKind::U8 => 0,
            ImpactKind::F32 => 1,
            ImpactKind::Bm25 => 2,
        },
        t.scale.to_bits() as u64,
        t.opts.n_terms.map_or(0, u64::from),
    ]);
    if let (Quantization::Bm25(p), Some(dl)) = (t.opts.quantization, doc_len) {
        meta[5] = p.k1.to_bits() as u64;
        meta[6] = p.b.to_bits() as u64;
        meta[7] = dl.iter().map(|&x| x as u64).sum();
        meta[8] = p.quantized as u64;
        w.add_u32s("doc_len", dl)?;
    }
    meta[9] = t.members_order as u64;
    w.add_u64s("meta", &meta)?;
    w.add_u32s("term_ids", term_ids)?;
    if let Some(lut) = segment_lut(term_ids) {
        w.add_u32s("term_lut", &lut)?;
    }
    if t.opts.store_vectors {
        stored(&mut w)?;
    }
    ids.write(&mut w, sorted)?;
    Ok(w)
}

/// Write the posting sections for `quantization`; returns the impact kind and the scale.
fn write_impacts(
    w: &mut ContainerWriter,
    local: &Local,
    quantization: Quantization,
    doc_len: Option<&[u32]>,
) -> Result<(ImpactKind, f32)> {
    Ok(match quantization {
        Quantization::F32 => {
            let impacts = postings_impacts(local, |v, _| v);
            write_postings(w, local.n_terms() as usize, impacts)?;
            (ImpactKind::F32, 1.0f32)
        }
        Quantization::U8 { scale } => {
            let scale = u8_scale(local, scale)?;
            let impacts = postings_impacts(local, |v, _| quantize(v, scale));
            write_postings(w, local.n_terms() as usize, impacts)?;
            (ImpactKind::U8, scale)
        }
        Quantization::Bm25(_) => {
            let dl = doc_len.ok_or_else(|| Error::InvalidArgument("a BM25 index needs document lengths".into()))?;
            let impacts = postings_impacts(local, |v, d| Bm25Impact { tf: v as u32, dl: dl[d] });
            write_postings(w, local.n_terms() as usize, impacts)?;
            (ImpactKind::Bm25, 1.0f32)
        }
    })
}

/// Whether weight `w` fits the u8 grid of `scale`: `w * scale <= 255.5` (in f32), so that it
/// rounds to at most 255. Every u8 writer keeps its weights so; the open check of the stored
/// vectors holds a file to it.
#[inline]
pub(crate) fn fits_u8_grid(w: f32, scale: f32) -> bool {
    w * scale <= 255.5
}

/// Whether weight `w` is a term frequency a BM25 segment stores: a whole number that fits a
/// u32 (its posting holds `w as u32`).
#[inline]
pub(crate) fn is_whole_tf(w: f32) -> bool {
    w.fract() == 0.0 && w <= u32::MAX as f32
}

/// The u8 scale: the given one (checked against every weight), or 255 / the largest weight.
fn u8_scale(local: &Local, scale: Option<f32>) -> Result<f32> {
    let max_w = max_weight(&local.values);
    Ok(match scale {
        Some(s) => {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::InvalidArgument(format!("quantization scale must be a positive number, got {s}")));
            }
            // `v * s` rounds monotonically in `v`: when the largest weight fits, all do
            let over =
                if !fits_u8_grid(max_w, s) { local.values.iter().position(|&v| !fits_u8_grid(v, s)) } else { None };
            if let Some(pos) = over {
                let d = local.indptr.partition_point(|&o| o <= pos as u64) - 1;
                return Err(Error::InvalidDocument {
                    doc: d,
                    msg: format!(
                        "weight {} of term {} exceeds the quantization range (scale {s} allows at most {})",
                        local.values[pos],
                        local.term_ids[local.terms[pos] as usize],
                        255.0 / s
                    ),
                });
            }
            s
        }
        None if max_w > 0.0 => 255.0 / max_w,
        None => 1.0,
    })
}

/// The largest of `values` (cleaned weights: finite, non-negative), 0 for none: one pass in
/// 16 lanes, which the compiler turns into vector max instructions (`f32::max` in a fold does
/// not vectorize, as it must order NaN).
pub(crate) fn max_weight(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = if v > *m { v } else { *m };
        }
    }
    rest.iter().chain(&lanes).fold(0.0f32, |m, &v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::max_weight;

    #[test]
    fn max_weight_equals_a_fold() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for n in [0usize, 1, 15, 16, 17, 31, 33, 100, 1000] {
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 10_000) as f32 / 7.0
                })
                .collect();
            assert_eq!(max_weight(&v), v.iter().copied().fold(0.0f32, f32::max), "{n}");
        }
    }
}
