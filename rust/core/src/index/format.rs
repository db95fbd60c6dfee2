//! Section names of an index image and the validation run when one is opened.
//!
//! Format versions 2, 3 and 4 (every section little-endian; rust/core/FORMAT.md has the full
//! table; 3 is 2 with trimmed final doc-id blocks and `fwd_terms_u16`; 4 is 3 without the
//! dense block maxima, which are derived at open, see [`super::blockmax`]):
//! - `meta` (u64 x 10): n_docs, n_terms (local terms), impact kind (0 = u8, 1 = f32,
//!   2 = BM25), f32 scale bits, declared vocabulary size (0 = none); BM25: k1 f32 bits, b f32
//!   bits, total document length, integer scoring (0/1) (zero for other kinds); document order
//!   (0: the order the segment was built in; 1: the concatenation of merged members' live
//!   documents, which a store reorders later, see `store::merging`).
//! - `term_ids` (u32, n_terms): external id of each local term, strictly ascending.
//! - optional `term_lut` (u32, last term id + 1): external -> local id or u32::MAX; written only
//!   when it holds at most 4 entries per local term.
//! - `term_post_start` (u64, n_terms + 1), `term_block_start` (u32, n_terms + 1): every local
//!   term has at least one posting.
//! - `block_last` (u32, n_blocks), `block_off` (u64, n_blocks + 1), `docs` (bytes).
//! - `impacts_<k>`, `block_max_<k>`, `term_max_<k>` for the kind `<k>` = `u8` (bytes), `f32`
//!   or `bm25` (u32 pairs tf, dl per posting; maxima are joins: largest tf, smallest dl).
//! - versions 2 and 3 only, ignored when read: `dbm_meta`, `dbm_slot`, `dbm_<k>` (dense
//!   doc-block maxima), `fbm_*` and `sbm_*` (fine-block and superblock maxima).
//! - BM25: `doc_len` (u32, n_docs), each posting's `dl` equal to its document's length.
//! - optional `fwd_indptr` (u64), `fwd_terms` (u32, local ids) or, from version 3,
//!   `fwd_terms_u16` (u16 stored as bytes; written when n_terms <= 65,536), `fwd_values` (f32):
//!   the stored vectors.
//! - optional ids (see [`super::ids`]): `ids_i64` (i64, n_docs) or `ids_str_off` (u64,
//!   n_docs + 1) + `ids_str` (bytes, UTF-8), with `ids_sorted` (u32, n_docs).
//!
//! Version 1 files (per-term arrays sized by the largest term id) are upgraded in memory
//! ([`super::v1`]); a version-2 file holding `fwd_terms_u16` or a trimmed block is corrupt.

use super::blockmax::{self, Derived, DerivedMaxima, FINE_BLOCK, SUPERBLOCK_DOCS};
use super::build::{fits_u8_grid, is_whole_tf};
use super::impact::{join_all, posting_hash, Impact};
use super::{Forward, FwdTerms, ImpactArrays, ImpactKind, Impacts, IndexView, DOC_BLOCK};
use crate::codec::{packed_len, rows_for, BLOCK_LEN};
use crate::container::Container;
use crate::postings::decode_block;
use crate::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// File magic of an index image.
pub const MAGIC: [u8; 8] = *b"SPDXIDX\0";
/// Format version this build writes (and reads): version 3 without the dense block-maxima
/// sections (derived at open, [`super::blockmax`]).
pub const VERSION: u32 = 4;
/// The previous version, still read (its dense block-maxima sections are ignored): version 2
/// plus trimmed final doc-id blocks ([`crate::codec::encode_docs_final`]) and the stored
/// vectors' term ids as `u16` (`fwd_terms_u16`) when the segment has at most 65,536 local terms.
pub const VERSION_3: u32 = 3;
/// The version before, still read: full doc-id blocks only, `fwd_terms` as `u32`.
pub const VERSION_2: u32 = 2;
/// Number of `meta` entries.
pub const META_LEN: usize = 10;

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

pub(crate) fn check_offsets(name: &str, offs: &[u64], expect_len: usize, end: u64) -> Result<()> {
    if offs.len() != expect_len {
        return Err(corrupt(format!("section '{name}' has {} entries, expected {expect_len}", offs.len())));
    }
    if offs.first().copied().unwrap_or(0) != 0 || offs.last().copied().unwrap_or(0) != end {
        return Err(corrupt(format!("section '{name}' does not span 0..{end}")));
    }
    if offs.windows(2).any(|w| w[0] > w[1]) {
        return Err(corrupt(format!("section '{name}' is not non-decreasing")));
    }
    Ok(())
}

/// Build validated views over a parsed container; its dense block maxima are empty until
/// [`DerivedMaxima::attach`] points them at those [`derive_maxima`] derives. `deep = false`
/// is for an image this process built and validated itself
/// ([`crate::index::Index::from_written_image`]): the sections, their lengths and offsets are
/// checked as always, the passes over every posting, block, stored term and id are not (they
/// held for the same bytes in memory).
pub(crate) fn read_view_with(c: &Container, deep: bool) -> Result<IndexView<'_>> {
    let meta = c.u64s("meta")?;
    if meta.len() != META_LEN {
        return Err(corrupt(format!("section 'meta' has {} entries, expected {META_LEN}", meta.len())));
    }
    let n_docs = u32::try_from(meta[0]).map_err(|_| corrupt("n_docs out of range"))?;
    let n_terms = u32::try_from(meta[1]).map_err(|_| corrupt("n_terms out of range"))?;
    let scale = f32::from_bits(meta[3] as u32);
    if !(scale.is_finite() && scale > 0.0) || meta[3] > u32::MAX as u64 {
        return Err(corrupt("quantization scale is not a positive number"));
    }
    let vocab = match meta[4] {
        0 => None,
        n => Some(u32::try_from(n).map_err(|_| corrupt("declared vocabulary size out of range"))?),
    };
    let members_order = match meta[9] {
        0 => false,
        1 => true,
        x => return Err(corrupt(format!("unknown document order {x} in 'meta'"))),
    };
    let nt = n_terms as usize;
    let (term_ids, term_lut) = read_terms(c, nt, vocab)?;
    let term_post_start = c.u64s("term_post_start")?;
    let term_block_start = c.u32s("term_block_start")?;
    let block_last = c.u32s("block_last")?;
    let block_off = c.u64s("block_off")?;
    let docs = c.bytes("docs")?;
    let n_blocks = block_last.len();
    if term_post_start.len() != nt + 1 {
        return Err(corrupt("section 'term_post_start' has the wrong length"));
    }
    let n_postings = *term_post_start.last().unwrap_or(&0);
    check_offsets("term_post_start", term_post_start, nt + 1, n_postings)?;
    let tbs: Vec<u64> = term_block_start.iter().map(|&x| x as u64).collect();
    check_offsets("term_block_start", &tbs, nt + 1, n_blocks as u64)?;
    check_offsets("block_off", block_off, n_blocks + 1, docs.len() as u64)?;
    let trimmed_ok = c.format_version() >= VERSION_3;
    for t in 0..if deep { nt } else { 0 } {
        let df = term_post_start[t + 1] - term_post_start[t];
        if df == 0 {
            return Err(corrupt(format!("local term {t} has no postings")));
        }
        let nb = (term_block_start[t + 1] - term_block_start[t]) as u64;
        if nb != df.div_ceil(BLOCK_LEN as u64) {
            return Err(corrupt(format!("term {t}: {nb} blocks for {df} postings")));
        }
        // Byte lengths: a full block is 16 * bits (bits <= 32); a list's final block may be
        // trimmed (version 3): 16 * rows + 1 bytes, the last one its bit width, with exactly
        // the rows its values need and fewer than the full block's.
        let (b0, b1) = (term_block_start[t] as usize, term_block_start[t + 1] as usize);
        for b in b0..b1 {
            let len = block_off[b + 1] - block_off[b];
            if len % 16 == 0 {
                if len > packed_len(32) as u64 {
                    return Err(corrupt(format!("block {b}: packed length {len} is not a valid bit width")));
                }
                continue;
            }
            let n_vals = (df - (b - b0) as u64 * BLOCK_LEN as u64) as usize;
            let bits = docs.get(block_off[b + 1] as usize - 1).copied().unwrap_or(0) as u32;
            let rows = (len / 16) as usize;
            if !trimmed_ok
                || len % 16 != 1
                || b + 1 != b1
                || n_vals >= BLOCK_LEN
                || !(1..=32).contains(&bits)
                || rows != rows_for(n_vals, bits)
                || rows >= bits as usize
            {
                return Err(corrupt(format!(
                    "term {t}: block {b} has packed length {len}, which is neither a full block nor its trimmed final block"
                )));
            }
        }
        let blocks = &block_last[term_block_start[t] as usize..term_block_start[t + 1] as usize];
        if blocks.windows(2).any(|w| w[0] >= w[1]) || blocks.last().is_some_and(|&l| l >= n_docs) {
            return Err(corrupt(format!("term {t}: block doc ids out of order or out of range")));
        }
    }
    let np = n_postings as usize;
    let lens = (np, n_blocks, nt);
    let (impacts, bm25, doc_len) = match meta[2] {
        0 => {
            check_no_bm25(meta)?;
            let a = read_arrays("u8", |n| c.bytes(n), lens, n_docs)?;
            (Impacts::U8(a), None, None)
        }
        1 => {
            check_no_bm25(meta)?;
            let a = read_arrays("f32", |n| c.f32s(n), lens, n_docs)?;
            if deep {
                check_weights("impacts_f32", a.impacts)?;
                check_weights("block_max_f32", a.block_max)?;
                check_weights("term_max_f32", a.term_max)?;
            }
            (Impacts::F32(a), None, None)
        }
        2 => {
            let pairs = |n: &str| {
                super::impact::bm25_from_u32s(c.u32s(n)?)
                    .ok_or_else(|| corrupt(format!("section '{n}' holds an odd number of u32")))
            };
            let a = read_arrays("bm25", pairs, lens, n_docs)?;
            let checked: &[(&str, &[super::impact::Bm25Impact])] = if deep {
                &[("impacts_bm25", a.impacts), ("block_max_bm25", a.block_max), ("term_max_bm25", a.term_max)]
            } else {
                &[]
            };
            for &(name, xs) in checked {
                if let Some(i) = xs.iter().position(|x| x.tf == 0) {
                    return Err(corrupt(format!("section '{name}': entry {i} has term frequency 0")));
                }
            }
            let (meta, doc_len) = read_bm25(c, meta, n_docs)?;
            (Impacts::Bm25(a), Some(meta), Some(doc_len))
        }
        k => return Err(corrupt(format!("unknown impact kind {k}"))),
    };
    let forward = if c.has("fwd_indptr") {
        let terms = if c.has("fwd_terms_u16") {
            if c.has("fwd_terms") {
                return Err(corrupt("stored vectors have both 'fwd_terms' and 'fwd_terms_u16'"));
            }
            FwdTerms::U16(c.u16s("fwd_terms_u16")?)
        } else {
            FwdTerms::U32(c.u32s("fwd_terms")?)
        };
        let f = Forward { indptr: c.u64s("fwd_indptr")?, terms, values: c.f32s("fwd_values")? };
        check_offsets("fwd_indptr", f.indptr, n_docs as usize + 1, f.terms.len() as u64)?;
        if f.values.len() != f.terms.len() || deep && f.terms.max().is_some_and(|t| t >= n_terms) {
            return Err(corrupt("stored vectors are inconsistent"));
        }
        Some(f)
    } else {
        None
    };
    let ids = super::ids::read_ids(c, n_docs, deep)?;
    let view = IndexView {
        n_docs,
        n_terms,
        vocab,
        term_ids,
        term_lut,
        scale,
        term_post_start,
        term_block_start,
        block_last,
        block_off,
        docs,
        impacts,
        forward,
        ids,
        bm25,
        doc_len,
        members_order,
    };
    Ok(view)
}

/// Derive the dense block maxima of the segment (see [`super::blockmax`]) from its postings,
/// decoding the doc-id blocks of the terms that have dense arrays. With `deep`, every term's
/// blocks are decoded and checked in the same pass: the doc ids of a block's postings are
/// strictly increasing, above the previous block's last doc id (within the term), and the last
/// one is the block's `block_last` (so below `n_docs`): a seek stops inside the block whose
/// `block_last` reaches its target only if that holds; and the bounds are checked against the
/// impacts ([`check_bounds`]). In parallel over terms; the cost is one decode of the postings,
/// less than verifying their checksums.
///
/// With `deep`, a segment that stores its vectors also has them checked against its postings
/// ([`check_forward`]): the sums of a hash of every (term, document, impact) over the postings
/// and over the stored vectors must be equal.
pub(crate) fn derive_maxima(v: &IndexView<'_>, deep: bool) -> Result<DerivedMaxima> {
    let sum = AtomicU64::new(0);
    let derived = match v.impacts {
        Impacts::U8(a) => DerivedMaxima::U8(derive_kind(v, &a, deep, &sum)?),
        Impacts::F32(a) => DerivedMaxima::F32(derive_kind(v, &a, deep, &sum)?),
        Impacts::Bm25(a) => DerivedMaxima::Bm25(derive_kind(v, &a, deep, &sum)?),
    };
    if deep {
        if let Some(f) = &v.forward {
            check_forward(v, f, sum.into_inner())?;
        }
    }
    Ok(derived)
}

/// Check the stored vectors against the postings (breaker27 L3): every row's local term ids
/// strictly ascending, every weight finite and above 0 (u8: within the segment's grid,
/// [`fits_u8_grid`]; BM25: [`is_whole_tf`]), and the sum of [`posting_hash`]`(term, doc, key)`
/// over the rows (the key being what the writer makes of the weight: its u8 impact, f32 bits
/// or BM25 term frequency) equal to `postings_sum`, the same sum over the postings. So the
/// stored vectors hold exactly the postings' (term, document) pairs with the weights their
/// impacts came from (u8: to within one step of the grid); a file whose `fwd_*` sections were
/// changed and their checksums rewritten is refused here instead of making exact search, which
/// rescores candidates from the stored vectors, and the approximate rerank disagree with the
/// postings. In parallel over documents, cancellable between chunks.
fn check_forward(v: &IndexView<'_>, f: &Forward<'_>, postings_sum: u64) -> Result<()> {
    let scale = v.scale;
    // Besides a positive finite weight, what each kind's writer accepts: u8, a weight within the
    // grid (one above it would be clamped to impact 255, so the hash alone would not see it:
    // breaker29 M1); BM25, a whole term frequency.
    let forward_sum = match v.kind() {
        ImpactKind::U8 => forward_sum(
            f,
            |w| quantize_checked(w, scale),
            |w| fits_u8_grid(w, scale),
            "is above the segment's 8-bit grid (weight x scale must be at most 255.5)",
        ),
        ImpactKind::F32 => forward_sum(f, |w| w.to_bits() as u64, |_| true, ""),
        ImpactKind::Bm25 => forward_sum(
            f,
            |w| w as u32 as u64,
            is_whole_tf,
            "is not a whole term frequency (a BM25 segment stores term frequencies)",
        ),
    }?;
    if forward_sum != postings_sum {
        return Err(corrupt(
            "the stored vectors ('fwd_*') disagree with the postings: their terms, documents or weights differ",
        ));
    }
    Ok(())
}

/// [`super::build::quantize`] of a weight, without the float-to-int saturation a general `as`
/// cast needs (twice as fast in the open check): `w * scale` is held within `0..=256` first, so
/// it truncates to an i32 as is, and the clamp gives what `quantize` gives for every weight
/// above 0 (`quantize_checked_equals_quantize` checks it; the open check refuses other
/// weights).
#[inline(always)]
fn quantize_checked(w: f32, scale: f32) -> u64 {
    // `min` and `max` return the other operand for a NaN, so `y` is in 0..=256 (`clamp` would
    // pass a NaN through).
    #[allow(clippy::manual_clamp)]
    let y = (w * scale).min(256.0).max(0.0);
    // SAFETY: `y` is finite and within 0..=256, which i32 represents: truncation is defined.
    let t = unsafe { y.to_int_unchecked::<i32>() };
    let r = t + ((y - t as f32) >= 0.5) as i32; // the difference is exact below 2^23
    r.clamp(1, 255) as u64
}

/// The sum of [`posting_hash`] over the stored vectors, each weight's key made by `key` (what
/// the writer makes of a weight, [`super::impact::Impact::check_key`]), checking each row's
/// order and weights on the way: positive and finite, and `valid` (a weight that is not is
/// refused with `rule`, what it breaks).
fn forward_sum(
    f: &Forward<'_>,
    key: impl Fn(f32) -> u64 + Sync,
    valid: impl Fn(f32) -> bool + Sync,
    rule: &str,
) -> Result<u64> {
    match f.terms {
        FwdTerms::U16(t) => forward_sum_of(f, t, &key, &valid, rule),
        FwdTerms::U32(t) => forward_sum_of(f, t, &key, &valid, rule),
    }
}

/// [`forward_sum`] with the stored term ids `terms` of one width.
fn forward_sum_of<T: super::TermId>(
    f: &Forward<'_>,
    terms: &[T],
    key: &(impl Fn(f32) -> u64 + Sync),
    valid: &(impl Fn(f32) -> bool + Sync),
    rule: &str,
) -> Result<u64> {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let stop = crate::cancel::watch();
    let n_docs = f.indptr.len() - 1;
    let row = |d: usize| -> Result<u64> {
        let (a, b) = (f.indptr[d] as usize, f.indptr[d + 1] as usize);
        row_sum(d, &terms[a..b], &f.values[a..b], key, valid, rule)
    };
    (0..n_docs.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            stop.check()?;
            (c * CHUNK..((c + 1) * CHUNK).min(n_docs)).try_fold(0u64, |acc, d| Ok(acc.wrapping_add(row(d)?)))
        })
        .try_reduce(|| 0, |x, y| Ok(x.wrapping_add(y)))
}

/// One stored row's share of [`forward_sum`] (document `d`, its term ids and weights).
#[inline(never)]
fn row_sum<T: super::TermId>(
    d: usize,
    ts: &[T],
    ws: &[f32],
    key: &impl Fn(f32) -> u64,
    valid: &impl Fn(f32) -> bool,
    rule: &str,
) -> Result<u64> {
    // Branch-free over the row; the message is looked for only when a row fails.
    let descending = ts.windows(2).fold(false, |bad, p| bad | (p[0].into() >= p[1].into()));
    // A finite f32 above 0 has bits 1..=0x7f7f_ffff.
    let not_positive = ws.iter().fold(false, |bad, w| bad | (w.to_bits().wrapping_sub(1) >= 0x7f7f_ffff));
    let invalid = ws.iter().fold(false, |bad, &w| bad | !valid(w));
    if descending {
        return Err(corrupt(format!("stored vector of document {d}: term ids are not strictly ascending")));
    }
    if not_positive {
        let w = ws.iter().find(|&&w| !(w.is_finite() && w > 0.0)).copied().unwrap_or_default();
        return Err(corrupt(format!("stored vector of document {d}: weight {w} is not a positive number")));
    }
    if invalid {
        let w = ws.iter().find(|&&w| !valid(w)).copied().unwrap_or_default();
        return Err(corrupt(format!("stored vector of document {d}: weight {w} {rule}")));
    }
    let mut h = 0u64;
    for (&t, &w) in ts.iter().zip(ws) {
        h = h.wrapping_add(posting_hash(t.into(), d as u32, key(w)));
    }
    Ok(h)
}

fn derive_kind<I: Impact + PartialEq + Send + Sync>(
    v: &IndexView<'_>,
    a: &ImpactArrays<'_, I>,
    deep: bool,
    forward_sum: &AtomicU64,
) -> Result<Derived<I>> {
    let hash_postings = deep && v.forward.is_some();
    use rayon::prelude::*;
    // The pass reads every posting (a merged segment's file is checked so while it is synced):
    // a cancelled call (Ctrl-C) stops it between terms.
    let stop = crate::cancel::watch();
    blockmax::derive(v.term_post_start, v.n_docs as usize, deep, |items| {
        items.into_par_iter().try_for_each_init(
            || ([0u32; BLOCK_LEN], Vec::new()),
            |(buf, term_docs), (t, outs)| {
                stop.check()?;
                let (first, end) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
                let p0 = v.term_post_start[t] as usize;
                let df = v.term_post_start[t + 1] as usize - p0;
                term_docs.clear();
                for b in first..end {
                    decode_block(v, first, b, buf);
                    let len = (df - (b - first) * BLOCK_LEN).min(BLOCK_LEN);
                    let docs = &buf[..len];
                    term_docs.extend_from_slice(docs);
                    if !deep {
                        continue;
                    }
                    let above_prev = b == first || docs[0] > v.block_last[b - 1];
                    if !above_prev || docs.windows(2).any(|w| w[0] >= w[1]) || docs[len - 1] != v.block_last[b] {
                        return Err(corrupt(format!("term {t}: doc ids of block {b} do not match the block metadata")));
                    }
                    if let (Impacts::Bm25(a), Some(dl)) = (v.impacts, v.doc_len) {
                        // Every posting repeats its document's length.
                        let p = p0 + (b - first) * BLOCK_LEN;
                        if docs.iter().zip(&a.impacts[p..p + len]).any(|(&d, i)| dl[d as usize] != i.dl) {
                            return Err(corrupt(format!("term {t}: a posting of block {b} disagrees with 'doc_len'")));
                        }
                    }
                }
                let imps = &a.impacts[p0..p0 + df];
                if deep {
                    check_bounds(v, a, t, imps)?;
                }
                if hash_postings {
                    let h = term_docs
                        .iter()
                        .zip(imps)
                        .fold(0u64, |h, (&d, i)| h.wrapping_add(posting_hash(t as u32, d, i.check_key())));
                    forward_sum.fetch_add(h, Ordering::Relaxed);
                }
                blockmax::join_postings(outs, term_docs, imps);
                Ok(())
            },
        )
    })
}

/// Check the bounds of term `t` (local id; `imps`: the impacts of its postings) against its
/// impacts: each block's `block_max` and the term's `term_max` are exactly the largest impacts
/// (joins) they bound, as every writer makes them. Pruning skips whatever a bound says cannot
/// score, and the 16-bit candidate scorer sizes its weights by `term_max`: a bound below an
/// impact (a damaged file whose checksums were rewritten) would silently drop or wrap scores,
/// and a `term_max` far above its impacts would squeeze the candidate stage's weights to a few
/// levels and lose its recall (review26 L1), instead of failing here (review25 L6). The dense
/// block maxima are derived from the postings, not read ([`super::blockmax`]).
fn check_bounds<I: Impact + PartialEq>(v: &IndexView<'_>, a: &ImpactArrays<'_, I>, t: usize, imps: &[I]) -> Result<()> {
    let (b0, b1) = (v.term_block_start[t] as usize, v.term_block_start[t + 1] as usize);
    for (i, b) in (b0..b1).enumerate() {
        let chunk = &imps[i * BLOCK_LEN..((i + 1) * BLOCK_LEN).min(imps.len())];
        if a.block_max[b] != join_all(chunk) {
            return Err(corrupt(format!(
                "term {t}: 'block_max' of block {b} is not the largest impact of its postings"
            )));
        }
    }
    if a.term_max[t] != join_all(&a.block_max[b0..b1]) {
        return Err(corrupt(format!("term {t}: 'term_max' is not the largest impact of its postings")));
    }
    Ok(())
}

/// `term_ids` (strictly ascending, below the declared vocabulary) and the optional
/// `term_lut`, which must be exactly the table the builder writes for them.
fn read_terms(c: &Container, nt: usize, vocab: Option<u32>) -> Result<(&[u32], Option<&[u32]>)> {
    let term_ids = c.u32s("term_ids")?;
    if term_ids.len() != nt {
        return Err(corrupt(format!("section 'term_ids' has {} entries, expected {nt}", term_ids.len())));
    }
    if term_ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(corrupt("section 'term_ids' is not strictly ascending"));
    }
    if let (Some(v), Some(&last)) = (vocab, term_ids.last()) {
        if last >= v {
            return Err(corrupt(format!("term id {last} is beyond the declared vocabulary size {v}")));
        }
    }
    if !c.has("term_lut") {
        return Ok((term_ids, None));
    }
    let lut = c.u32s("term_lut")?;
    let want = term_ids.last().map_or(0, |&t| t as u64 + 1);
    if lut.len() as u64 != want || want > super::terms::LUT_FACTOR * nt as u64 {
        return Err(corrupt(format!("section 'term_lut' has {} entries, expected {want}", lut.len())));
    }
    for (l, &t) in term_ids.iter().enumerate() {
        if lut[t as usize] != l as u32 {
            return Err(corrupt(format!("section 'term_lut' does not map term {t} to its local id {l}")));
        }
    }
    if lut.iter().filter(|&&x| x != super::terms::NO_TERM).count() != nt {
        return Err(corrupt("section 'term_lut' maps terms that are not in 'term_ids'"));
    }
    Ok((term_ids, Some(lut)))
}

/// The impact sections of kind `suffix` (`impacts_<suffix>`, `block_max_<suffix>`,
/// `term_max_<suffix>`), read with `get` and checked against the expected lengths `(postings,
/// blocks, terms)`; no dense maxima yet (they are derived, [`derive_maxima`]).
fn read_arrays<'a, I>(
    suffix: &str,
    get: impl Fn(&str) -> Result<&'a [I]>,
    (np, nb, nt): (usize, usize, usize),
    n_docs: u32,
) -> Result<ImpactArrays<'a, I>> {
    let n_docs = n_docs as usize;
    let a = ImpactArrays {
        impacts: get(&format!("impacts_{suffix}"))?,
        block_max: get(&format!("block_max_{suffix}"))?,
        term_max: get(&format!("term_max_{suffix}"))?,
        doc_block_max: super::DocBlockMax::none(n_docs.div_ceil(DOC_BLOCK)),
        fine_block_max: super::DocBlockMax::none(n_docs.div_ceil(FINE_BLOCK)),
        superblock_max: super::DocBlockMax::none(n_docs.div_ceil(SUPERBLOCK_DOCS)),
    };
    if a.impacts.len() != np || a.block_max.len() != nb || a.term_max.len() != nt {
        return Err(corrupt("impact sections have the wrong length"));
    }
    Ok(a)
}

/// The BM25 fields of `meta` and the `doc_len` section (whose sum is the recorded total).
fn read_bm25<'a>(c: &'a Container, meta: &[u64], n_docs: u32) -> Result<(super::Bm25Meta, &'a [u32])> {
    let f = |x: u64| u32::try_from(x).map(f32::from_bits).map_err(|_| corrupt("BM25 parameter out of range"));
    let params = super::Bm25Params {
        k1: f(meta[5])?,
        b: f(meta[6])?,
        quantized: match meta[8] {
            0 => false,
            1 => true,
            _ => return Err(corrupt("BM25 scoring flag is not 0 or 1")),
        },
    };
    params.check().map_err(|e| corrupt(e.to_string()))?;
    let doc_len = c.u32s("doc_len")?;
    if doc_len.len() != n_docs as usize {
        return Err(corrupt(format!("section 'doc_len' has {} entries for {n_docs} documents", doc_len.len())));
    }
    let total: u64 = doc_len.iter().map(|&x| x as u64).sum();
    if total != meta[7] {
        return Err(corrupt(format!("document lengths sum to {total}, the header records {}", meta[7])));
    }
    Ok((super::Bm25Meta { params, total_len: total }, doc_len))
}

fn check_no_bm25(meta: &[u64]) -> Result<()> {
    if meta[5..9].iter().any(|&x| x != 0) {
        return Err(corrupt("section 'meta': BM25 fields set on an index of another kind"));
    }
    Ok(())
}

/// Float impacts and their maxima must be finite and non-negative, as the builder writes them:
/// the scorers treat a zero accumulator as "not touched" and a positive one as a candidate, so
/// a negative or NaN impact would leave an accumulator of the per-thread scratch space dirty
/// for the next search (of any index) on that thread.
fn check_weights(name: &str, ws: &[f32]) -> Result<()> {
    match ws.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        Some(i) => Err(corrupt(format!("section '{name}': entry {i} is {} (not a finite weight >= 0)", ws[i]))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::quantize;
    use super::*;

    #[test]
    fn quantize_checked_equals_quantize() {
        // Every 97th positive finite f32 (and the ends), at scales from tiny to huge, and the
        // weights whose scaled value lands on or next to a half.
        let scales = [1e-30f32, 0.003, 1.0, 255.0 / 3.7, 255.0, 1e4, 3e38];
        for &scale in &scales {
            let mut bits = 1u32;
            while bits <= 0x7f7f_ffff {
                let w = f32::from_bits(bits);
                assert_eq!(quantize_checked(w, scale), quantize(w, scale) as u64, "w {w:e} scale {scale:e}");
                bits = bits.saturating_add(97);
            }
            assert_eq!(quantize_checked(f32::MAX, scale), quantize(f32::MAX, scale) as u64);
        }
        for k in 0..600u32 {
            let half = k as f32 / 2.0;
            for y in [half, f32::from_bits(half.to_bits().saturating_sub(1)), f32::from_bits(half.to_bits() + 1)] {
                assert_eq!(quantize_checked(y, 1.0), quantize(y, 1.0) as u64, "y {y:e}");
            }
        }
    }
}
