//! Reading engine segments of format version 1 (sparsedex 0.1).
//!
//! Version 1 sized its per-term arrays by the vocabulary (term ids were dense) and had no
//! term dictionary. A version-1 file is never rewritten in place: [`upgrade`] rebuilds, in
//! memory, the version-2 index holding the same documents in the same internal order with the
//! same ids and the same impacts (u8 impacts are re-quantized on the file's own scale, which
//! gives back the stored bytes; f32 impacts are copied), from the stored vectors (`fwd_*`
//! sections) the file carries. Files written without stored vectors cannot be upgraded: the
//! error says to rebuild them.
//!
//! Version 1 sections read here (little-endian): `meta` (u64 x 5: n_docs, n_terms, impact
//! kind 0 = u8 / 1 = f32, f32 scale bits, vocabulary declared 0/1), `fwd_indptr` (u64,
//! n_docs + 1), `fwd_terms` (u32), `fwd_values` (f32), and optional `ids_i64` (i64, n_docs)
//! or `ids_str_off` (u64, n_docs + 1) + `ids_str` (UTF-8 bytes).

use super::build::{build, BuildOptions, Quantization};
use super::ids::IdsInput;
use super::order::Reorder;
use super::Index;
use crate::container::{Container, Image};
use crate::vectors::CsrRef;
use crate::{Error, Result};

/// The format version this module reads.
pub const VERSION: u32 = 1;

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(format!("format version 1 index: {}", msg.into()))
}

/// Rebuild a version-1 image as a version-2 [`Index`] in memory (see the module doc).
///
/// Errors: [`Error::Corrupt`] for a damaged file (checksums, section lengths, ids that are not
/// valid UTF-8 or not unique, vectors that break the vector contract), or one without stored
/// vectors.
pub fn upgrade(image: Image, verify_checksums: bool) -> Result<Index> {
    let c = Container::parse(image, super::format::MAGIC, VERSION, verify_checksums)?;
    let meta = c.u64s("meta")?;
    if meta.len() < 5 {
        return Err(corrupt("section 'meta' is too short"));
    }
    let n_docs = usize::try_from(meta[0]).map_err(|_| corrupt("n_docs out of range"))?;
    let vocab = u32::try_from(meta[1]).map_err(|_| corrupt("n_terms out of range"))?;
    let scale = f32::from_bits(meta[3] as u32);
    let quantization = match meta[2] {
        0 if scale.is_finite() && scale > 0.0 => Quantization::U8 { scale: Some(scale) },
        0 => return Err(corrupt("quantization scale is not a positive number")),
        1 => Quantization::F32,
        k => return Err(corrupt(format!("unknown impact kind {k}"))),
    };
    if !c.has("fwd_indptr") {
        return Err(corrupt(
            "the file holds no stored vectors, so it cannot be upgraded to format version 2; rebuild the index \
             with this version of sparsedex",
        ));
    }
    let indptr = c.u64s("fwd_indptr")?;
    let terms = c.u32s("fwd_terms")?;
    let values = c.f32s("fwd_values")?;
    if indptr.len() != n_docs + 1 {
        return Err(corrupt(format!("'fwd_indptr' has {} entries for {n_docs} documents", indptr.len())));
    }
    let strs: Vec<String>;
    let ids = if c.has("ids_i64") {
        let ids = c.i64s("ids_i64")?;
        if ids.len() != n_docs {
            return Err(corrupt(format!("'ids_i64' has {} entries for {n_docs} documents", ids.len())));
        }
        IdsInput::Int(ids)
    } else if c.has("ids_str_off") {
        let off = c.u64s("ids_str_off")?;
        let bytes = c.bytes("ids_str")?;
        if off.len() != n_docs + 1
            || off[0] != 0
            || off[n_docs] != bytes.len() as u64
            || off.windows(2).any(|w| w[0] > w[1])
        {
            return Err(corrupt("'ids_str_off' does not describe 'ids_str'"));
        }
        strs = off
            .windows(2)
            .enumerate()
            .map(|(d, w)| {
                std::str::from_utf8(&bytes[w[0] as usize..w[1] as usize])
                    .map(str::to_owned)
                    .map_err(|_| corrupt(format!("id of document {d} is not valid UTF-8")))
            })
            .collect::<Result<_>>()?;
        IdsInput::Str(&strs)
    } else {
        IdsInput::None
    };
    let opts = BuildOptions {
        n_terms: (meta[4] != 0).then_some(vocab),
        quantization,
        store_vectors: true,
        reorder: Reorder::None,
    };
    let csr = CsrRef { indptr, indices: terms, values };
    let built = build(csr, ids, &opts).map_err(|e| match e {
        Error::InvalidArgument(m) | Error::Corrupt(m) => corrupt(m),
        other => other,
    })?;
    Ok(built.index)
}
