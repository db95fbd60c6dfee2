//! The vector contract (DESIGN.md), in one place: term ids are `u32` (any value, below the
//! vocabulary size when one is declared) and unique per vector; weights are finite and >= 0;
//! zero weights are dropped. Anything else is an error naming the offending row (documents) or
//! query. Rows need not be sorted by term id: cleaning sorts them. The Python package also
//! refuses new weights above [`MAX_WEIGHT`]; the engine does not, so that data written before
//! that limit (sparsedex 0.1 indexes) still opens.

use crate::{Error, Result};
use rayon::prelude::*;

/// The largest weight the Python package accepts in a new vector (`sparsedex.vectors.MAX_WEIGHT`):
/// with every weight at most `1e14`, a dot product of two vectors is at most
/// `1e14 * 1e14 * 2^32`, about `4.3e37`, below `f32::MAX` (`3.4e38`), so that no score
/// overflows to infinity. [`row_is_clean_within`] checks it; [`clean_row`] does not (stored
/// data written before the limit must still be read).
pub const MAX_WEIGHT: f32 = 1e14;

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
        sorted &= prev.is_none_or(|p| p < t);
        prev = Some(t);
        // Zeros are kept until duplicates are checked (on the full row), then dropped.
        out.push((t, w));
    }
    if !sorted {
        out.sort_unstable_by_key(|e| e.0);
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("term id {} appears more than once", w[0].0));
        }
    }
    out.retain(|e| e.1 > 0.0);
    Ok(())
}

/// Whether a row is already what [`clean_row`] makes of it: finite positive weights, term
/// ids strictly ascending (so no repeats) and below `n_terms` when given. One branch-light
/// pass; any other row goes through [`clean_row`], which names what is wrong.
pub fn row_is_clean(indices: &[u32], values: &[f32], n_terms: Option<u32>) -> bool {
    row_is_clean_within(indices, values, n_terms, f32::MAX)
}

/// [`row_is_clean`] with weights at most `max_weight` too (the Python package's check of a new
/// vector: `max_weight` = [`MAX_WEIGHT`]).
pub fn row_is_clean_within(indices: &[u32], values: &[f32], n_terms: Option<u32>, max_weight: f32) -> bool {
    if indices.len() != values.len() {
        return false;
    }
    let limit = n_terms.unwrap_or(u32::MAX);
    let in_range = n_terms.is_none() || indices.last().is_none_or(|&t| t < limit);
    // `w > 0 && w <= max_weight` is false for NaN, infinities, negatives, zeros and weights
    // above the limit
    let weights_ok = values.iter().fold(true, |ok, &w| ok & (w > 0.0) & (w <= max_weight));
    let ascending = indices.windows(2).fold(true, |ok, p| ok & (p[0] < p[1]));
    in_range && weights_ok && ascending
}

/// A validated, row-sorted copy of the input (zeros dropped), with external term ids.
pub(crate) struct Cleaned {
    pub(crate) indptr: Vec<u64>,
    pub(crate) terms: Vec<u32>,
    pub(crate) values: Vec<f32>,
}

/// Validate CSR rows as the builder does (errors name the document) and return them cleaned:
/// zero weights dropped, each row sorted by term id.
pub fn clean_csr(docs: CsrRef<'_>, n_terms: Option<u32>) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
    let c = clean(&docs, n_terms)?;
    Ok((c.indptr, c.terms, c.values))
}

pub(crate) fn clean(docs: &CsrRef<'_>, n_terms: Option<u32>) -> Result<Cleaned> {
    if n_terms == Some(0) {
        return Err(Error::InvalidArgument("the vocabulary size must be at least 1".into()));
    }
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
            let room = (docs.indptr[hi] - docs.indptr[lo]) as usize;
            let mut terms = Vec::with_capacity(room);
            let mut values = Vec::with_capacity(room);
            let mut row = Vec::new();
            for d in lo..hi {
                let (a, b) = (docs.indptr[d] as usize, docs.indptr[d + 1] as usize);
                let (ix, vs) = (&docs.indices[a..b], &docs.values[a..b]);
                if row_is_clean(ix, vs, n_terms) {
                    // the common case: copied as it is (what clean_row would return)
                    lens.push(ix.len() as u64);
                    terms.extend_from_slice(ix);
                    values.extend_from_slice(vs);
                    continue;
                }
                clean_row(ix, vs, n_terms, &mut row).map_err(|msg| Error::InvalidDocument { doc: d, msg })?;
                lens.push(row.len() as u64);
                terms.extend(row.iter().map(|e| e.0));
                values.extend(row.iter().map(|e| e.1));
            }
            Ok((lens, terms, values))
        })
        .collect();
    let mut indptr = Vec::with_capacity(n_docs + 1);
    indptr.push(0u64);
    let mut chunks = chunks.into_iter();
    // the first chunk's buffers become the result's (one chunk: no copy at all)
    let (mut terms, mut values) = match chunks.next() {
        None => (Vec::new(), Vec::new()),
        Some(c) => {
            let (lens, mut t, mut v) = c?;
            for l in lens {
                indptr.push(indptr.last().unwrap() + l);
            }
            let room = docs.indices.len().saturating_sub(t.len());
            t.reserve(room);
            v.reserve(room);
            (t, v)
        }
    };
    for c in chunks {
        let (lens, t, v) = c?; // chunks are in order, so the first error is the lowest row
        for l in lens {
            indptr.push(indptr.last().unwrap() + l);
        }
        terms.extend_from_slice(&t);
        values.extend_from_slice(&v);
    }
    Ok(Cleaned { indptr, terms, values })
}
