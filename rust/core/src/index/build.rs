//! Validation, quantization and construction of an [`Index`] from sparse vectors.
//!
//! Vector contract (DESIGN.md): term ids are below the vocabulary size and unique per vector;
//! weights are finite and >= 0; zero weights are dropped. Anything else is an error naming the
//! offending row. Rows need not be sorted by term id.
//!
//! Quantization (the default): every non-zero weight `w` becomes the impact
//! `q(w) = clamp(round(w * scale), 1, 255)` with `scale = 255 / max_weight` unless given.
//! For `w >= 0.5 / scale` the error `|w - q(w) / scale|` is at most `0.5 / scale`
//! (`max_weight / 510`); smaller weights are kept as impact 1 (error below `1 / scale`), so no
//! match is ever lost. A query's score error is at most `sum_t q_t * err_t`.

use super::format::{MAGIC, VERSION};
use super::ids::IdsData;
use super::order::permute;
use super::terms::{segment_lut, TermMap};
use super::write::{postings_impacts, write_postings};
use super::{ImpactKind, Index};
use crate::container::ContainerWriter;
use crate::vectors::{clean, Cleaned};
use crate::{Error, Result};

pub use super::ids::IdsInput;
pub use super::order::{similarity_order, Reorder};
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
            reorder: Reorder::Signature,
        }
    }
}

/// Quantize a non-zero weight with `scale` (see the module doc).
#[inline]
pub fn quantize(w: f32, scale: f32) -> u8 {
    (w * scale).round().clamp(1.0, 255.0) as u8
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
    let cleaned = clean(&docs, opts.n_terms)?;
    let ids = IdsData::from_input(ids, cleaned.indptr.len() - 1)?;
    let sorted = ids.sorted()?;
    build_local(Local::new(cleaned), ids, sorted, opts)
}

/// Build from validated rows with local term ids; `sorted` lists the rows in ascending id
/// order (from [`IdsData::sorted`]).
pub(crate) fn build_local(local: Local, ids: IdsData, sorted: Option<Vec<u32>>, opts: &BuildOptions) -> Result<Built> {
    let n_docs = local.indptr.len() - 1;
    let order = opts.reorder.order(&local);
    let (local, ids, sorted) = match &order {
        Some(o) => {
            let mut inv = vec![0u32; n_docs];
            for (new, &old) in o.iter().enumerate() {
                inv[old as usize] = new as u32;
            }
            let sorted = sorted.map(|s| s.into_iter().map(|d| inv[d as usize]).collect::<Vec<u32>>());
            (permute(local, o), ids.permute(o), sorted)
        }
        None => (local, ids, sorted),
    };
    let mut w = ContainerWriter::new(MAGIC, VERSION);
    let (kind, scale) = write_impacts(&mut w, &local, opts.quantization)?;
    let kind_code = match kind {
        ImpactKind::U8 => 0u64,
        ImpactKind::F32 => 1,
    };
    let mut meta = [0u64; super::format::META_LEN];
    meta[..5].copy_from_slice(&[
        n_docs as u64,
        local.n_terms() as u64,
        kind_code,
        scale.to_bits() as u64,
        opts.n_terms.map_or(0, u64::from),
    ]);
    w.add_u64s("meta", &meta)?;
    w.add_u32s("term_ids", &local.term_ids)?;
    if let Some(lut) = segment_lut(&local.term_ids) {
        w.add_u32s("term_lut", &lut)?;
    }
    if opts.store_vectors {
        w.add_u64s("fwd_indptr", &local.indptr)?;
        w.add_u32s("fwd_terms", &local.terms)?;
        w.add_f32s("fwd_values", &local.values)?;
    }
    ids.write(&mut w, sorted.as_deref())?;
    drop(local);
    let index = Index::from_image(w.into_image(), false)?;
    Ok(Built { index, order: order.unwrap_or_else(|| (0..n_docs as u32).collect()) })
}

/// Write the posting sections for `quantization`; returns the impact kind and the scale.
fn write_impacts(w: &mut ContainerWriter, local: &Local, quantization: Quantization) -> Result<(ImpactKind, f32)> {
    Ok(match quantization {
        Quantization::F32 => {
            let impacts = postings_impacts(local, |v| v);
            write_postings(w, local, impacts)?;
            (ImpactKind::F32, 1.0f32)
        }
        Quantization::U8 { scale } => {
            let scale = u8_scale(local, scale)?;
            let impacts = postings_impacts(local, |v| quantize(v, scale));
            write_postings(w, local, impacts)?;
            (ImpactKind::U8, scale)
        }
    })
}

/// The u8 scale: the given one (checked against every weight), or 255 / the largest weight.
fn u8_scale(local: &Local, scale: Option<f32>) -> Result<f32> {
    let max_w = local.values.iter().copied().fold(0.0f32, f32::max);
    Ok(match scale {
        Some(s) => {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::InvalidArgument(format!("quantization scale must be a positive number, got {s}")));
            }
            if let Some(pos) = local.values.iter().position(|&v| v * s > 255.5) {
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
