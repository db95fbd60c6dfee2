//! Document reordering: which internal id each document gets.

use super::build::Local;
use super::terms::TermMap;
use crate::reorder::{bp_order, bp_refine, BpOptions};
use crate::vectors::{check_csr, CsrRef};
use crate::{Error, Result};
use rayon::prelude::*;

/// How the builder orders documents (internal ids). Block-max pruning needs documents that
/// score alike in the same blocks, so reordering makes search faster; ids are unaffected.
/// See [`crate::reorder`] for the algorithms and the measurements behind the default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reorder {
    /// Keep the input order.
    None,
    /// Sort by each document's two most distinctive heavy terms ([`similarity_order`]):
    /// linear plus a sort, a few percent of a build.
    Signature,
    /// Recursive graph bisection with these options ([`crate::reorder::bp`]; Dhulipala et al.,
    /// KDD 2016; Mackenzie et al., TKDE 2023): tighter blocks, for 2-4 times the build time.
    /// At a merge the input order is the members' orders concatenated, which BP refines.
    Bp(BpOptions),
}

impl Default for Reorder {
    /// The default document order: BP with its default options (see [`crate::reorder`] for
    /// the measurements behind the choice).
    fn default() -> Self {
        Reorder::bp()
    }
}

impl Reorder {
    /// BP with its default options.
    pub fn bp() -> Self {
        Reorder::Bp(BpOptions::default())
    }

    /// Whether the builder reorders at all.
    pub fn is_some(&self) -> bool {
        !matches!(self, Reorder::None)
    }

    /// The name of the mode: `"none"`, `"signature"` or `"bp"`.
    pub fn name(&self) -> &'static str {
        match self {
            Reorder::None => "none",
            Reorder::Signature => "signature",
            Reorder::Bp(_) => "bp",
        }
    }

    /// Check the options (BP's); the error names the offending field.
    pub fn check(&self) -> Result<()> {
        match self {
            Reorder::Bp(o) => o.check(),
            _ => Ok(()),
        }
    }

    /// The order of `c`'s rows (`order[new_id] = input_row`), or `None` to keep them.
    pub(crate) fn order(self, c: &Local) -> Result<Option<Vec<u32>>> {
        self.check()?;
        crate::cancel::check()?;
        let n = c.indptr.len() - 1;
        let order = match self {
            _ if n <= 1 => None,
            Reorder::None => None,
            Reorder::Signature => Some(signature_order(&c.indptr, &c.terms, &c.values, c.n_terms())),
            Reorder::Bp(o) => Some(bp_order(&c.indptr, &c.terms, &c.values, c.n_terms(), &o)),
        };
        crate::cancel::check()?; // a cancelled BP stops early with a partial order
        Ok(order)
    }
}

impl From<bool> for Reorder {
    /// `true`: the default reordering ([`Reorder::default`]); `false`: [`Reorder::None`].
    fn from(on: bool) -> Self {
        if on {
            Reorder::default()
        } else {
            Reorder::None
        }
    }
}

impl std::str::FromStr for Reorder {
    type Err = Error;

    /// `"none"`, `"signature"` or `"bp"` (BP with its default options), in any case (as
    /// algorithm names are).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Reorder::None),
            "signature" => Ok(Reorder::Signature),
            "bp" => Ok(Reorder::bp()),
            _ => Err(Error::InvalidArgument(format!(
                "reorder must be 'bp', 'signature' or 'none' (or True / False), got '{s}'"
            ))),
        }
    }
}

/// Recursive graph bisection ([`crate::reorder::bp_refine`]) over CSR rows with any term ids
/// (`0..=2^32-1`; `n_terms`, if given, is the vocabulary size they must be below), starting
/// from `init` (`init[position] = input_row`, a permutation of the rows) or the input order.
/// Returns `order`, where `order[new_id] = input_row`. Errors on a malformed CSR, an id out
/// of range, options out of range, or an `init` that is not a permutation.
pub fn bp_order_csr(
    docs: CsrRef<'_>,
    n_terms: Option<u32>,
    init: Option<&[u32]>,
    opts: &BpOptions,
) -> Result<Vec<u32>> {
    opts.check()?;
    let n = check_csr(&docs, "documents")?;
    if n >= u32::MAX as usize {
        return Err(Error::InvalidArgument(format!("too many documents ({n})")));
    }
    if let (Some(nt), Some(&t)) = (n_terms, docs.indices.iter().max()) {
        if t >= nt {
            return Err(Error::InvalidArgument(format!("term id {t} is out of range (vocabulary size {nt})")));
        }
    }
    let init: Vec<u32> = match init {
        Some(init) => {
            if init.len() != n {
                return Err(Error::InvalidArgument(format!("init has {} entries for {n} documents", init.len())));
            }
            let mut seen = vec![false; n];
            for &d in init {
                if d as usize >= n || std::mem::replace(&mut seen[d as usize], true) {
                    return Err(Error::InvalidArgument(format!("init is not a permutation of the rows (row {d})")));
                }
            }
            init.to_vec()
        }
        None => (0..n as u32).collect(),
    };
    let (map, term_ids) = TermMap::from_terms(docs.indices);
    let mut local = docs.indices.to_vec();
    map.remap(&mut local);
    let order = bp_refine(docs.indptr, &local, docs.values, term_ids.len() as u32, &init, opts);
    crate::cancel::check()?; // a cancelled BP stops early with a partial order
    Ok(order)
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
///
/// Any term ids (`0..=2^32-1`) work; `n_terms`, if given, is the vocabulary size they must be
/// below. Errors on a malformed CSR or an id out of range.
pub fn similarity_order(docs: CsrRef<'_>, n_terms: Option<u32>) -> Result<Vec<u32>> {
    check_csr(&docs, "documents")?;
    if let (Some(nt), Some(&t)) = (n_terms, docs.indices.iter().max()) {
        if t >= nt {
            return Err(Error::InvalidArgument(format!("term id {t} is out of range (vocabulary size {nt})")));
        }
    }
    let (map, term_ids) = TermMap::from_terms(docs.indices);
    let mut local = docs.indices.to_vec();
    map.remap(&mut local);
    Ok(signature_order(docs.indptr, &local, docs.values, term_ids.len() as u32))
}

/// [`similarity_order`] over local term ids `0..n_terms` (ties between equal weights go to the
/// smaller id, which is the smaller external id too).
fn signature_order(indptr: &[u64], terms: &[u32], values: &[f32], n_terms: u32) -> Vec<u32> {
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

pub(crate) fn permute(c: Local, order: &[u32]) -> Local {
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
    Local { indptr, terms, values, term_ids: c.term_ids }
}
