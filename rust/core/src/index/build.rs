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
use super::{ImpactKind, Index, DOC_BLOCK};
use crate::codec::{encode_docs, BLOCK_LEN};
use crate::container::ContainerWriter;
use crate::reorder::{bp_order, Reorder};
use crate::{Error, Result};
use rayon::prelude::*;

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
    /// How documents are ordered (see [`crate::reorder`]): similar ones get neighbouring
    /// internal ids; external ids (or the input row numbers) are kept. `true.into()` is the
    /// default order, `false.into()` none.
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

/// Documents in CSR form: row `d` is `indices[indptr[d]..indptr[d+1]]` with `values[..]`.
#[derive(Clone, Copy, Debug)]
pub struct CsrRef<'a> {
    /// Row offsets, `n_rows + 1` of them, starting at 0.
    pub indptr: &'a [u64],
    /// Term ids.
    pub indices: &'a [u32],
    /// Weights.
    pub values: &'a [f32],
}

/// External ids given to the builder.
#[derive(Clone, Copy, Debug)]
pub enum IdsInput<'a> {
    /// Row numbers are the ids.
    None,
    /// One integer id per row.
    Int(&'a [i64]),
    /// One string id per row.
    Str(&'a [String]),
}

/// Check the CSR shape (not the rows): returns the number of rows.
pub fn check_csr(csr: &CsrRef<'_>, what: &str) -> Result<usize> {
    if csr.indices.len() != csr.values.len() {
        return Err(Error::InvalidArgument(format!(
            "{what}: indices and values have different lengths ({} vs {})",
            csr.indices.len(),
            csr.values.len()
        )));
    }
    if csr.indptr.is_empty() || csr.indptr[0] != 0 {
        return Err(Error::InvalidArgument(format!("{what}: indptr must start with 0")));
    }
    for (i, w) in csr.indptr.windows(2).enumerate() {
        if w[1] < w[0] {
            return Err(Error::InvalidArgument(format!("{what}: indptr decreases at row {i}")));
        }
    }
    let last = *csr.indptr.last().unwrap_or(&0);
    if last != csr.indices.len() as u64 {
        return Err(Error::InvalidArgument(format!(
            "{what}: indptr ends at {last} but there are {} indices",
            csr.indices.len()
        )));
    }
    Ok(csr.indptr.len() - 1)
}

/// Validate one row and return its non-zero entries sorted by term id.
/// `n_terms` is the vocabulary size if known. The error message names the field.
pub fn clean_row(
    indices: &[u32],
    values: &[f32],
    n_terms: Option<u32>,
    out: &mut Vec<(u32, f32)>,
) -> Result<(), String> {
    out.clear();
    if indices.len() != values.len() {
        return Err(format!("indices and values have different lengths ({} vs {})", indices.len(), values.len()));
    }
    let mut sorted = true;
    let mut prev: Option<u32> = None;
    for (&t, &w) in indices.iter().zip(values) {
        if !w.is_finite() {
            return Err(format!("weight of term {t} is {w} (weights must be finite)"));
        }
        if w < 0.0 {
            return Err(format!("weight of term {t} is negative ({w})"));
        }
        if let Some(n) = n_terms {
            if t >= n {
                return Err(format!("term id {t} is out of range (vocabulary size {n})"));
            }
        }
        if let Some(p) = prev {
            if t <= p {
                sorted = false;
            }
        }
        prev = Some(t);
        if w > 0.0 {
            out.push((t, w));
        }
    }
    if !sorted {
        // Duplicates are detected on the full row, zeros included.
        let mut ids: Vec<u32> = indices.to_vec();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("term id {} appears more than once", w[0]));
        }
        out.sort_unstable_by_key(|e| e.0);
    }
    Ok(())
}

/// Impact types stored in an index.
pub(crate) trait StoredImpact: Copy + PartialOrd + Default + Send + Sync + 'static {
    fn add_dense(w: &mut ContainerWriter, dense: &[Self]) -> Result<()>;
    fn add_sections(w: &mut ContainerWriter, impacts: &[Self], block_max: &[Self], term_max: &[Self]) -> Result<()>;
}
impl StoredImpact for u8 {
    fn add_dense(w: &mut ContainerWriter, dense: &[u8]) -> Result<()> {
        w.add_bytes("dbm_u8", dense)
    }
    fn add_sections(w: &mut ContainerWriter, impacts: &[u8], block_max: &[u8], term_max: &[u8]) -> Result<()> {
        w.add_bytes("impacts_u8", impacts)?;
        w.add_bytes("block_max_u8", block_max)?;
        w.add_bytes("term_max_u8", term_max)?;
        Ok(())
    }
}
impl StoredImpact for f32 {
    fn add_dense(w: &mut ContainerWriter, dense: &[f32]) -> Result<()> {
        w.add_f32s("dbm_f32", dense)
    }
    fn add_sections(w: &mut ContainerWriter, impacts: &[f32], block_max: &[f32], term_max: &[f32]) -> Result<()> {
        w.add_f32s("impacts_f32", impacts)?;
        w.add_f32s("block_max_f32", block_max)?;
        w.add_f32s("term_max_f32", term_max)?;
        Ok(())
    }
}

/// Quantize a non-zero weight with `scale` (see the module doc).
#[inline]
pub fn quantize(w: f32, scale: f32) -> u8 {
    (w * scale).round().clamp(1.0, 255.0) as u8
}

/// A validated, row-sorted copy of the input (zeros dropped).
struct Cleaned {
    indptr: Vec<u64>,
    terms: Vec<u32>,
    values: Vec<f32>,
    n_terms: u32,
}

/// Validate CSR rows as the builder does (errors name the document) and return them cleaned:
/// zero weights dropped, each row sorted by term id.
pub fn clean_csr(docs: CsrRef<'_>, n_terms: Option<u32>) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
    let c = clean(&docs, n_terms)?;
    Ok((c.indptr, c.terms, c.values))
}

fn clean(docs: &CsrRef<'_>, n_terms: Option<u32>) -> Result<Cleaned> {
    let n_docs = check_csr(docs, "documents")?;
    if n_docs >= u32::MAX as usize {
        return Err(Error::InvalidArgument(format!("too many documents ({n_docs})")));
    }
    const CHUNK: usize = 4096;
    let chunks: Vec<Result<(Vec<u64>, Vec<u32>, Vec<f32>), Error>> = (0..n_docs.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n_docs));
            let mut lens = Vec::with_capacity(hi - lo);
            let mut terms = Vec::new();
            let mut values = Vec::new();
            let mut row = Vec::new();
            for d in lo..hi {
                let (a, b) = (docs.indptr[d] as usize, docs.indptr[d + 1] as usize);
                clean_row(&docs.indices[a..b], &docs.values[a..b], n_terms, &mut row)
                    .map_err(|msg| Error::InvalidDocument { doc: d, msg })?;
                lens.push(row.len() as u64);
                terms.extend(row.iter().map(|e| e.0));
                values.extend(row.iter().map(|e| e.1));
            }
            Ok((lens, terms, values))
        })
        .collect();
    let mut indptr = Vec::with_capacity(n_docs + 1);
    indptr.push(0u64);
    let mut terms = Vec::new();
    let mut values = Vec::new();
    for c in chunks {
        let (lens, t, v) = c?; // chunks are in order, so the first error is the lowest row
        for l in lens {
            indptr.push(indptr.last().unwrap() + l);
        }
        terms.extend_from_slice(&t);
        values.extend_from_slice(&v);
    }
    let n_terms = match n_terms {
        Some(n) => n,
        None => terms.iter().copied().max().map_or(0, |m| m + 1),
    };
    Ok(Cleaned { indptr, terms, values, n_terms })
}

/// A document order that puts similar documents next to each other, so that blocks of
/// neighbouring ids hold documents that score alike (which block-max pruning needs).
///
/// Each document's signature is its two terms with the largest `weight x idf`
/// (`idf = ln((N + 1) / (df + 1))`): the most distinctive, heavily weighted terms, which for
/// learned sparse vectors name the document's topic. Documents are sorted by (first term,
/// second term, input row). Linear in the number of postings plus a sort; a much cheaper
/// stand-in for graph bisection (Dhulipala et al., KDD 2016), which gives tighter blocks.
/// Returns `order`, where `order[new_id] = input_row`.
pub fn similarity_order(indptr: &[u64], terms: &[u32], values: &[f32], n_terms: u32) -> Vec<u32> {
    let n = indptr.len().saturating_sub(1);
    let mut df = vec![0u32; n_terms as usize];
    for &t in terms {
        df[t as usize] += 1;
    }
    let idf: Vec<f32> = df.iter().map(|&d| (((n + 1) as f32) / (d as f32 + 1.0)).ln()).collect();
    let mut keys: Vec<(u32, u32, u32)> = (0..n)
        .into_par_iter()
        .map(|d| {
            let (a, b) = (indptr[d] as usize, indptr[d + 1] as usize);
            let (mut s1, mut t1, mut s2, mut t2) = (-1.0f32, u32::MAX, -1.0f32, u32::MAX);
            for (&t, &w) in terms[a..b].iter().zip(&values[a..b]) {
                let s = w * idf[t as usize];
                if s > s1 {
                    (s2, t2) = (s1, t1);
                    (s1, t1) = (s, t);
                } else if s > s2 {
                    (s2, t2) = (s, t);
                }
            }
            (t1, t2, d as u32)
        })
        .collect();
    keys.par_sort_unstable();
    keys.into_iter().map(|k| k.2).collect()
}

fn permute(c: Cleaned, order: &[u32]) -> Cleaned {
    let mut indptr = Vec::with_capacity(c.indptr.len());
    indptr.push(0u64);
    let mut terms = Vec::with_capacity(c.terms.len());
    let mut values = Vec::with_capacity(c.values.len());
    for &d in order {
        let (a, b) = (c.indptr[d as usize] as usize, c.indptr[d as usize + 1] as usize);
        terms.extend_from_slice(&c.terms[a..b]);
        values.extend_from_slice(&c.values[a..b]);
        indptr.push(terms.len() as u64);
    }
    Cleaned { indptr, terms, values, n_terms: c.n_terms }
}

/// Build an index in memory.
pub fn build(docs: CsrRef<'_>, ids: IdsInput<'_>, opts: &BuildOptions) -> Result<Index> {
    let cleaned = clean(&docs, opts.n_terms)?;
    let n_docs = cleaned.indptr.len() - 1;
    // Reordering keeps the caller's ids (or row numbers) as external ids.
    let order = match &opts.reorder {
        _ if n_docs <= 1 => None,
        Reorder::None => None,
        Reorder::Signature => Some(similarity_order(&cleaned.indptr, &cleaned.terms, &cleaned.values, cleaned.n_terms)),
        Reorder::Bp(o) => {
            o.check()?;
            Some(bp_order(&cleaned.indptr, &cleaned.terms, &cleaned.values, cleaned.n_terms, o))
        }
    };
    let owned_int: Vec<i64> = match (&order, ids) {
        (Some(o), IdsInput::None) => o.iter().map(|&d| d as i64).collect(),
        (Some(o), IdsInput::Int(v)) if v.len() == n_docs => o.iter().map(|&d| v[d as usize]).collect(),
        _ => Vec::new(),
    };
    let owned_str: Vec<String> = match (&order, ids) {
        (Some(o), IdsInput::Str(v)) if v.len() == n_docs => o.iter().map(|&d| v[d as usize].clone()).collect(),
        _ => Vec::new(),
    };
    let (cleaned, ids) = match order {
        Some(o) => {
            let ids = match ids {
                IdsInput::None => IdsInput::Int(&owned_int),
                IdsInput::Int(v) if v.len() == n_docs => IdsInput::Int(&owned_int),
                IdsInput::Str(v) if v.len() == n_docs => IdsInput::Str(&owned_str),
                other => other,
            };
            (permute(cleaned, &o), ids)
        }
        None => (cleaned, ids),
    };
    match ids {
        IdsInput::Int(v) if v.len() != n_docs => {
            return Err(Error::InvalidArgument(format!("{} ids given for {n_docs} documents", v.len())))
        }
        IdsInput::Str(v) if v.len() != n_docs => {
            return Err(Error::InvalidArgument(format!("{} ids given for {n_docs} documents", v.len())))
        }
        _ => {}
    }
    let mut w = ContainerWriter::new(MAGIC, VERSION);
    let (kind, scale) = match opts.quantization {
        Quantization::F32 => {
            let impacts = postings_impacts(&cleaned, |v| v);
            write_postings(&mut w, &cleaned, impacts)?;
            (ImpactKind::F32, 1.0f32)
        }
        Quantization::U8 { scale } => {
            let max_w = cleaned.values.iter().copied().fold(0.0f32, f32::max);
            let scale = match scale {
                Some(s) => {
                    if !(s.is_finite() && s > 0.0) {
                        return Err(Error::InvalidArgument(format!(
                            "quantization scale must be a positive number, got {s}"
                        )));
                    }
                    if let Some(pos) = cleaned.values.iter().position(|&v| v * s > 255.5) {
                        let d = cleaned.indptr.partition_point(|&o| o <= pos as u64) - 1;
                        return Err(Error::InvalidDocument {
                            doc: d,
                            msg: format!(
                                "weight {} of term {} exceeds the quantization range (scale {s} allows at most {})",
                                cleaned.values[pos],
                                cleaned.terms[pos],
                                255.0 / s
                            ),
                        });
                    }
                    s
                }
                None if max_w > 0.0 => 255.0 / max_w,
                None => 1.0,
            };
            let impacts = postings_impacts(&cleaned, |v| quantize(v, scale));
            write_postings(&mut w, &cleaned, impacts)?;
            (ImpactKind::U8, scale)
        }
    };
    let kind_code = match kind {
        ImpactKind::U8 => 0u64,
        ImpactKind::F32 => 1,
    };
    w.add_u64s(
        "meta",
        &[n_docs as u64, cleaned.n_terms as u64, kind_code, scale.to_bits() as u64, opts.n_terms.is_some() as u64],
    )?;
    if opts.store_vectors {
        w.add_u64s("fwd_indptr", &cleaned.indptr)?;
        w.add_u32s("fwd_terms", &cleaned.terms)?;
        w.add_f32s("fwd_values", &cleaned.values)?;
    }
    match ids {
        IdsInput::None => {}
        IdsInput::Int(v) => w.add_i64s("ids_i64", v)?,
        IdsInput::Str(v) => {
            let mut off = Vec::with_capacity(v.len() + 1);
            let mut bytes = Vec::new();
            off.push(0u64);
            for s in v {
                bytes.extend_from_slice(s.as_bytes());
                off.push(bytes.len() as u64);
            }
            w.add_u64s("ids_str_off", &off)?;
            w.add_bytes("ids_str", &bytes)?;
        }
    }
    drop(cleaned);
    Index::from_image(w.into_image(), false)
}

/// Term-major postings: (term_post_start, docs, impacts) by a counting sort of the rows.
struct Postings<I> {
    start: Vec<u64>,
    docs: Vec<u32>,
    impacts: Vec<I>,
}

fn postings_impacts<I: StoredImpact>(c: &Cleaned, f: impl Fn(f32) -> I) -> Postings<I> {
    let nt = c.n_terms as usize;
    let mut start = vec![0u64; nt + 1];
    for &t in &c.terms {
        start[t as usize + 1] += 1;
    }
    for t in 0..nt {
        start[t + 1] += start[t];
    }
    let np = c.terms.len();
    let mut docs = vec![0u32; np];
    let mut impacts = vec![I::default(); np];
    let mut fill: Vec<u64> = start[..nt].to_vec();
    for d in 0..c.indptr.len() - 1 {
        for p in c.indptr[d] as usize..c.indptr[d + 1] as usize {
            let t = c.terms[p] as usize;
            let at = fill[t] as usize;
            docs[at] = d as u32;
            impacts[at] = f(c.values[p]);
            fill[t] += 1;
        }
    }
    Postings { start, docs, impacts }
}

fn write_postings<I: StoredImpact>(w: &mut ContainerWriter, c: &Cleaned, p: Postings<I>) -> Result<()> {
    let nt = c.n_terms as usize;
    struct TermBlocks<I> {
        bytes: Vec<u8>,
        offs: Vec<u64>,
        last: Vec<u32>,
        max: Vec<I>,
        term_max: I,
    }
    let per_term: Vec<TermBlocks<I>> = (0..nt)
        .into_par_iter()
        .map(|t| {
            let (a, b) = (p.start[t] as usize, p.start[t + 1] as usize);
            let docs = &p.docs[a..b];
            let imps = &p.impacts[a..b];
            let nb = docs.len().div_ceil(BLOCK_LEN);
            let mut tb = TermBlocks {
                bytes: Vec::new(),
                offs: Vec::with_capacity(nb),
                last: Vec::with_capacity(nb),
                max: Vec::with_capacity(nb),
                term_max: I::default(),
            };
            let mut prev = None;
            for (dc, ic) in docs.chunks(BLOCK_LEN).zip(imps.chunks(BLOCK_LEN)) {
                tb.offs.push(tb.bytes.len() as u64);
                encode_docs(dc, prev, &mut tb.bytes);
                let last = *dc.last().unwrap();
                prev = Some(last);
                tb.last.push(last);
                let m = ic.iter().copied().fold(I::default(), |a, b| if b > a { b } else { a });
                tb.max.push(m);
                if m > tb.term_max {
                    tb.term_max = m;
                }
            }
            tb
        })
        .collect();
    let n_blocks: usize = per_term.iter().map(|t| t.last.len()).sum();
    let total_bytes: usize = per_term.iter().map(|t| t.bytes.len()).sum();
    let mut term_block_start = Vec::with_capacity(nt + 1);
    let mut block_off = Vec::with_capacity(n_blocks + 1);
    let mut block_last = Vec::with_capacity(n_blocks);
    let mut block_max = Vec::with_capacity(n_blocks);
    let mut term_max = Vec::with_capacity(nt);
    let mut docs_bytes = Vec::with_capacity(total_bytes);
    term_block_start.push(0u32);
    for tb in per_term {
        let base = docs_bytes.len() as u64;
        block_off.extend(tb.offs.iter().map(|o| o + base));
        docs_bytes.extend_from_slice(&tb.bytes);
        block_last.extend_from_slice(&tb.last);
        block_max.extend_from_slice(&tb.max);
        term_max.push(tb.term_max);
        term_block_start.push(block_last.len() as u32);
    }
    block_off.push(docs_bytes.len() as u64);
    w.add_u64s("term_post_start", &p.start)?;
    w.add_u32s("term_block_start", &term_block_start)?;
    w.add_u32s("block_last", &block_last)?;
    w.add_u64s("block_off", &block_off)?;
    w.add_bytes("docs", &docs_bytes)?;
    I::add_sections(w, &p.impacts, &block_max, &term_max)?;

    // Doc-block maxima (for the block-max pruning algorithm): dense arrays for the terms
    // common enough that a dense add is cheaper than reading their postings.
    let n_docs = c.indptr.len() - 1;
    let nb = n_docs.div_ceil(DOC_BLOCK);
    let mut slot = vec![u32::MAX; nt];
    let popular: Vec<usize> = (0..nt)
        .filter(|&t| ((p.start[t + 1] - p.start[t]) as usize) * 2 >= nb.max(1) && p.start[t + 1] > p.start[t])
        .collect();
    for (i, &t) in popular.iter().enumerate() {
        slot[t] = i as u32;
    }
    let dense: Vec<Vec<I>> = popular
        .par_iter()
        .map(|&t| {
            let mut m = vec![I::default(); nb];
            let (a, b) = (p.start[t] as usize, p.start[t + 1] as usize);
            for (&d, &imp) in p.docs[a..b].iter().zip(&p.impacts[a..b]) {
                let e = &mut m[d as usize / DOC_BLOCK];
                if imp > *e {
                    *e = imp;
                }
            }
            m
        })
        .collect();
    let flat: Vec<I> = dense.concat();
    w.add_u64s("dbm_meta", &[DOC_BLOCK as u64, popular.len() as u64])?;
    w.add_u32s("dbm_slot", &slot)?;
    I::add_dense(w, &flat)
}
