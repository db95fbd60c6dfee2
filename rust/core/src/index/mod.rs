//! The immutable index: validated, quantized sparse vectors laid out as block-compressed
//! posting lists inside one [`Container`] image, in memory or memory-mapped from a file.
//!
//! Terms are indexed by dense *local* ids `0..n_terms` (only terms with at least one posting
//! exist in a segment); `term_ids[t]` is the external id of local term `t` (see [`terms`]).
//!
//! Layout (all sections little-endian, see [`mod@format`]): for every local term `t`,
//! its postings occupy global posting positions `term_post_start[t]..term_post_start[t+1]`
//! and blocks `term_block_start[t]..term_block_start[t+1]`. Block `b` holds up to 128
//! postings: its doc ids are packed in `docs[block_off[b]..block_off[b+1]]` (a full block of
//! bit width `(block_off[b+1] - block_off[b]) / 16`, or a list's trimmed final block, see
//! [`crate::codec::encode_docs_final`]), its last doc id is `block_last[b]` and its
//! largest impact `block_max[b]`. Impacts are stored unpacked, one per posting, at the
//! posting's global position (u8 for the quantized kind, f32 for the float kind).

pub mod blockmax;
pub mod build;
pub(crate) mod concat;
pub mod format;
pub mod ids;
pub mod impact;
pub mod merge;
pub mod order;
pub mod terms;
pub mod v1;
mod write;

use crate::container::{Container, Image};
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

pub use build::{BuildOptions, Built, Quantization};
pub use ids::{ExternalIds, Id, IdBuf, IdsInput};
pub use impact::{Bm25Impact, Bm25Params, Impact};
pub use merge::{merge, MergeOptions, Merged};
pub use order::Reorder;

/// Documents per doc block of the block-max pruning structure (doc `d` is in block `d / 64`).
pub const DOC_BLOCK: usize = 64;

/// Per-doc-block maxima of the common terms (see [`crate::search::bmp`]).
#[derive(Clone, Copy, Debug)]
pub struct DocBlockMax<'a, I> {
    /// Per term: index of its dense array, or `u32::MAX` if the term has none.
    pub slot: &'a [u32],
    /// Dense arrays, `n_doc_blocks` entries each: the largest impact of the term in each doc block.
    pub dense: &'a [I],
    /// Number of doc blocks.
    pub n_blocks: usize,
}

impl<'a, I> DocBlockMax<'a, I> {
    /// No dense arrays (every term's maxima come from its postings).
    pub fn none(n_blocks: usize) -> Self {
        DocBlockMax { slot: &[], dense: &[], n_blocks }
    }
    /// The dense array of term `t`, if it has one.
    #[inline]
    pub fn of(&self, t: u32) -> Option<&'a [I]> {
        let s = *self.slot.get(t as usize)?;
        if s == u32::MAX {
            return None;
        }
        let a = s as usize * self.n_blocks;
        self.dense.get(a..a + self.n_blocks)
    }
}

/// Sentinel doc id of an exhausted cursor; never a real document.
pub const TERMINATED: u32 = u32::MAX;

/// How impacts are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImpactKind {
    /// `u8` impacts: `round(w * scale)` clamped to 1..=255 for every non-zero weight `w`.
    U8,
    /// `f32` impacts: the weights as given.
    F32,
    /// BM25: term frequency and document length per posting, scored at query time from the
    /// collection statistics the query brings (see [`crate::search::bm25`]).
    Bm25,
}

/// The per-kind impact arrays of an index.
#[derive(Clone, Copy, Debug)]
pub struct ImpactArrays<'a, I> {
    /// One impact per posting, at the posting's global position.
    pub impacts: &'a [I],
    /// Largest impact of each block.
    pub block_max: &'a [I],
    /// Largest impact of each term's list (0 for empty lists).
    pub term_max: &'a [I],
    /// Doc-block maxima of the common terms.
    pub doc_block_max: DocBlockMax<'a, I>,
    /// Fine-block maxima ([`blockmax::FINE_BLOCK`] documents) of the common terms (no arrays
    /// in an index written without them).
    pub fine_block_max: DocBlockMax<'a, I>,
    /// Superblock maxima ([`blockmax::SUPERBLOCK_DOCS`] documents) of the common terms.
    pub superblock_max: DocBlockMax<'a, I>,
}

/// Impact arrays of either kind.
#[derive(Clone, Copy, Debug)]
pub enum Impacts<'a> {
    /// Quantized.
    U8(ImpactArrays<'a, u8>),
    /// Float.
    F32(ImpactArrays<'a, f32>),
    /// BM25 (tf, document length) pairs; maxima are joins (largest tf, smallest length).
    Bm25(ImpactArrays<'a, Bm25Impact>),
}

/// Borrowed, validated views of every array of an index.
#[derive(Clone, Copy, Debug)]
pub struct IndexView<'a> {
    /// Number of documents (rows), including those with no postings.
    pub n_docs: u32,
    /// Number of local terms (terms with at least one posting): local ids are `0..n_terms`.
    pub n_terms: u32,
    /// The vocabulary size declared at build time, if any: then term ids at or above it are
    /// errors in queries too (otherwise they are terms absent from the index).
    pub vocab: Option<u32>,
    /// External id of each local term, strictly ascending (`n_terms` entries).
    pub term_ids: &'a [u32],
    /// External -> local lookup table (`u32::MAX` where absent), present when the external ids
    /// are dense enough (see [`terms`]); otherwise [`IndexView::local_term`] binary-searches
    /// `term_ids`.
    pub term_lut: Option<&'a [u32]>,
    /// Quantization scale (impact = round(weight * scale)); 1.0 for the float kind.
    pub scale: f32,
    /// `n_terms + 1` global posting offsets.
    pub term_post_start: &'a [u64],
    /// `n_terms + 1` block offsets.
    pub term_block_start: &'a [u32],
    /// Last doc id of each block.
    pub block_last: &'a [u32],
    /// `n_blocks + 1` byte offsets into `docs`.
    pub block_off: &'a [u64],
    /// Packed doc-id deltas.
    pub docs: &'a [u8],
    /// Impacts and their maxima.
    pub impacts: Impacts<'a>,
    /// Stored forward vectors (CSR over documents, original float weights), if kept.
    pub forward: Option<Forward<'a>>,
    /// External ids.
    pub ids: ExternalIds<'a>,
    /// BM25 kind: its parameters and the sum of the document lengths.
    pub bm25: Option<Bm25Meta>,
    /// BM25 kind: the length of every document.
    pub doc_len: Option<&'a [u32]>,
    /// The documents are in the order of a merge by concatenation (the members' live
    /// documents one member after the other), not in an order the segment was built in: a
    /// store whose segments are reordered (BP, signature) reorders such a segment later.
    pub members_order: bool,
}

/// What a BM25 segment records besides its postings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Meta {
    /// k1, b and the scoring arithmetic.
    pub params: Bm25Params,
    /// Sum of the lengths of all documents of the segment.
    pub total_len: u64,
}

/// The stored original vectors, row-major (for `get` and explanations).
#[derive(Clone, Copy, Debug)]
pub struct Forward<'a> {
    /// `n_docs + 1` offsets.
    pub indptr: &'a [u64],
    /// Local term ids, ascending within a row.
    pub terms: FwdTerms<'a>,
    /// Weights as given (zeros dropped).
    pub values: &'a [f32],
}

/// The local term ids of the stored vectors: `u16` when the segment has at most 65,536 local
/// terms (section `fwd_terms_u16`, format version 3), `u32` otherwise (`fwd_terms`).
#[derive(Clone, Copy, Debug)]
pub enum FwdTerms<'a> {
    /// Two bytes per entry.
    U16(&'a [u16]),
    /// Four bytes per entry.
    U32(&'a [u32]),
}

/// Local term ids of any stored width, widened to `u32` where they are read. Sealed: `u16` and
/// `u32` only (the SIMD row kernel reads them as little-endian bytes of their width).
pub trait TermId: sealed::Sealed + Copy + Into<u32> + Send + Sync + 'static {}
impl TermId for u16 {}
impl TermId for u32 {}

mod sealed {
    /// Implemented only here: no other crate can add a [`super::TermId`].
    pub trait Sealed {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// Largest number of local terms whose ids are stored as `u16`.
pub const FWD_U16_TERMS: usize = 1 << 16;

impl<'a> FwdTerms<'a> {
    /// Number of stored entries (postings of the forward index).
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            FwdTerms::U16(t) => t.len(),
            FwdTerms::U32(t) => t.len(),
        }
    }

    /// Whether no entry is stored.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per entry (2 or 4).
    #[inline]
    pub fn width(&self) -> usize {
        match self {
            FwdTerms::U16(_) => 2,
            FwdTerms::U32(_) => 4,
        }
    }

    /// Entries `a..b` as `u32` (cold paths: get, merges, calibration; the scorers dispatch
    /// once per row on the width instead).
    #[inline]
    pub fn range(&self, a: usize, b: usize) -> impl Iterator<Item = u32> + 'a {
        let (x, y) = match *self {
            FwdTerms::U16(t) => (Some(t[a..b].iter()), None),
            FwdTerms::U32(t) => (None, Some(t[a..b].iter())),
        };
        x.into_iter().flatten().map(|&t| t as u32).chain(y.into_iter().flatten().copied())
    }

    /// The largest entry, if any.
    pub fn max(&self) -> Option<u32> {
        match self {
            // a fold vectorises (`Iterator::max` keeps the last of equal maxima and does not)
            FwdTerms::U16(t) => (!t.is_empty()).then(|| t.iter().fold(0, |m, &x| m.max(x)) as u32),
            FwdTerms::U32(t) => (!t.is_empty()).then(|| t.iter().fold(0, |m, &x| m.max(x))),
        }
    }
}

impl<'a> IndexView<'a> {
    /// Ask the CPU to start loading what [`Self::local_term`] reads for `ext` (its entry of the
    /// lookup table; nothing for a view that searches its term ids).
    #[inline]
    pub fn prefetch_local_term(&self, ext: u32) {
        if let Some(lut) = self.term_lut {
            crate::search::kernels::prefetch_lines(lut.get(ext as usize..).unwrap_or_default(), 1);
        }
    }
    /// The local id of external term id `ext`, if the segment has postings for it: one table
    /// lookup, or a binary search over `term_ids`.
    #[inline]
    pub fn local_term(&self, ext: u32) -> Option<u32> {
        match self.term_lut {
            Some(lut) => lut.get(ext as usize).copied().filter(|&l| l != terms::NO_TERM),
            None => self.term_ids.binary_search(&ext).ok().map(|l| l as u32),
        }
    }
    /// The external id of local term `t`.
    #[inline]
    pub fn external_term(&self, t: u32) -> u32 {
        self.term_ids[t as usize]
    }
    /// Document frequency of local term `t` (0 for ids out of range).
    pub fn df(&self, t: u32) -> u64 {
        let t = t as usize;
        if t >= self.n_terms as usize {
            return 0;
        }
        self.term_post_start[t + 1] - self.term_post_start[t]
    }
    /// Total number of postings.
    pub fn n_postings(&self) -> u64 {
        *self.term_post_start.last().unwrap_or(&0)
    }
    /// Total number of blocks.
    pub fn n_blocks(&self) -> usize {
        self.block_last.len()
    }
    /// Kind of the stored impacts.
    pub fn kind(&self) -> ImpactKind {
        match self.impacts {
            Impacts::U8(_) => ImpactKind::U8,
            Impacts::F32(_) => ImpactKind::F32,
            Impacts::Bm25(_) => ImpactKind::Bm25,
        }
    }
}

/// An immutable index. Cheap to share across threads (`Send + Sync`); searching borrows it.
pub struct Index {
    // Field order matters: `view` borrows from `derived` and `container` and is dropped first.
    view: IndexView<'static>,
    /// The dense block maxima, derived from the postings at open ([`blockmax`]); shared with
    /// the index parsed from the same bytes in memory ([`Index::from_written_image`]).
    derived: Arc<blockmax::DerivedMaxima>,
    container: Arc<Container>,
    /// What approximate search keeps with the segment: calibration, high layer, the race of its
    /// cut queries ([`crate::search::approx::State`]).
    approx: crate::search::approx::State,
    /// The timings behind [`crate::search::Algorithm::Auto`]'s choice on this segment (in
    /// memory only, see `search::auto`).
    auto: crate::search::auto::Race,
    /// The tie key of every document, made on first search ([`Index::tie_rank`]).
    ties: std::sync::OnceLock<Option<Arc<[u32]>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.view;
        f.debug_struct("Index")
            .field("n_docs", &v.n_docs)
            .field("n_terms", &v.n_terms)
            .field("kind", &v.kind())
            .field("mapped", &self.container.image().is_mapped())
            .finish()
    }
}

/// Counts and sizes, for `stats()`.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Documents.
    pub n_docs: u64,
    /// Vocabulary size: the declared one, or the largest term id + 1.
    pub vocabulary: u64,
    /// Distinct terms (each has at least one posting).
    pub n_terms: u64,
    /// Postings.
    pub n_postings: u64,
    /// 128-posting blocks.
    pub n_blocks: u64,
    /// Bytes of the whole image.
    pub bytes: u64,
    /// Bytes of the posting lists alone in the file (doc ids, impacts, block and term
    /// metadata).
    pub postings_bytes: u64,
    /// Bytes derived from the postings and kept in memory only: the dense block maxima derived
    /// at open ([`blockmax`]), and approximate search's high layers once its first search or
    /// calibration has made them ([`crate::search::approx::layer`]).
    pub derived_bytes: u64,
    /// Bytes of the stored forward vectors.
    pub forward_bytes: u64,
    /// Impact kind.
    pub kind: ImpactKind,
    /// Quantization scale.
    pub scale: f32,
}

impl Index {
    /// Parse an image (built in memory or mapped from a file) and validate every invariant the
    /// search code relies on, so that a corrupt file is an error here and never a panic later.
    ///
    /// A file of format version 1 (sparsedex 0.1) is rebuilt in memory as a version-2 index
    /// with the same documents, order, ids and impacts ([`v1::upgrade`]).
    pub fn from_image(image: Image, verify_checksums: bool) -> Result<Index> {
        Index::parse(image, verify_checksums, true, None)
    }

    /// Parse the image of a file this process has just written from an index it built and
    /// parsed in memory (so validated, [`Index::from_image`]): the same bytes, so the sections,
    /// lengths and offsets are checked again but not every posting, block, stored term and id
    /// (`format::read_view_with`), and the dense block maxima are `built`'s (derived from the
    /// same postings). Any other file goes through [`Index::from_image`].
    pub(crate) fn from_written_image(image: Image, built: &Index) -> Result<Index> {
        Index::parse(image, false, false, Some(&built.derived))
    }

    fn parse(
        image: Image,
        verify_checksums: bool,
        deep: bool,
        derived: Option<&Arc<blockmax::DerivedMaxima>>,
    ) -> Result<Index> {
        if image.as_bytes().len() >= 12
            && image.as_bytes()[..8] == format::MAGIC
            && image.as_bytes()[8..12] == v1::VERSION.to_le_bytes()
        {
            return v1::upgrade(image, verify_checksums);
        }
        let b = image.as_bytes();
        let version = match b.get(8..12).map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes"))) {
            Some(v @ (format::VERSION_2 | format::VERSION_3)) if b[..8] == format::MAGIC => v,
            _ => format::VERSION,
        };
        let container = Arc::new(Container::parse(image, format::MAGIC, version, verify_checksums)?);
        if version == format::VERSION_2 && container.has("fwd_terms_u16") {
            return Err(Error::Corrupt(format!(
                "section 'fwd_terms_u16' in a file of format version {version} (it needs version {})",
                format::VERSION_3
            )));
        }
        let mut view = format::read_view_with(&container, deep)?;
        let derived = match derived {
            Some(d) => d.clone(),
            None => Arc::new(format::derive_maxima(&view, deep)?),
        };
        derived.attach(&mut view)?;
        // SAFETY: every slice in `view` points into the image owned by `container` (a heap
        // buffer or a read-only memory map) or into the arrays owned by `derived`, none of
        // which moves or is released while the `Arc`s held in the same struct live. `view` is
        // declared before both, so it is dropped first, and it is only handed out re-borrowed
        // with the lifetime of `&self` (see [`Index::view`]).
        let view: IndexView<'static> = unsafe { std::mem::transmute::<IndexView<'_>, IndexView<'static>>(view) };
        Ok(Index {
            view,
            derived,
            container,
            approx: Default::default(),
            auto: Default::default(),
            ties: Default::default(),
        })
    }

    /// Open an index file, memory-mapped. Checksums of every section are verified.
    pub fn open(path: &Path) -> Result<Index> {
        let image = Image::open_file(path)?;
        Index::from_image(image, true).map_err(|e| match e {
            Error::Corrupt(msg) => Error::Corrupt(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// The bytes of the index's file image.
    pub(crate) fn image_bytes(&self) -> &[u8] {
        self.container.image().as_bytes()
    }

    /// Write the index to `path` atomically and durably ([`crate::fs::write_atomically`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fs::write_atomically(path, self.container.image().as_bytes())
    }

    /// Where auto's race stands on this segment: the leading algorithm (`None` before the
    /// warm-up ends) and the median nanoseconds per posting of each candidate run so far (see
    /// `search::auto`).
    pub fn auto_standing(&self) -> (Option<&'static str>, Vec<(&'static str, f32)>) {
        self.auto.standing()
    }

    /// The timings behind auto's choice on this segment.
    pub(crate) fn auto_race(&self) -> &crate::search::auto::Race {
        &self.auto
    }

    /// What approximate search keeps with this segment.
    pub(crate) fn approx(&self) -> &crate::search::approx::State {
        &self.approx
    }

    /// How far the latest calibration of this segment got: (calibration queries evaluated,
    /// calibration queries in all); (0, 0) before any. For a progress display while a
    /// calibration runs on another thread (two calibrations of one segment at once share it).
    pub fn calibration_progress(&self) -> (usize, usize) {
        self.approx.progress.get()
    }

    /// Borrowed views of the index arrays.
    pub fn view(&self) -> &IndexView<'_> {
        &self.view
    }

    /// Number of documents.
    pub fn n_docs(&self) -> u32 {
        self.view.n_docs
    }

    /// The stored vector of document `doc` with external term ids, ascending:
    /// `(term ids, weights)`. Errors if `doc` is out of range or vectors are not stored.
    pub fn vector(&self, doc: u32) -> Result<(Vec<u32>, Vec<f32>)> {
        let v = &self.view;
        let f = v.forward.ok_or_else(|| {
            Error::InvalidArgument("this index was built with store_vectors=False: vectors are not stored".into())
        })?;
        if doc >= v.n_docs {
            return Err(Error::InvalidArgument(format!(
                "document {doc} is out of range (the index has {} documents)",
                v.n_docs
            )));
        }
        let (a, b) = (f.indptr[doc as usize] as usize, f.indptr[doc as usize + 1] as usize);
        Ok((f.terms.range(a, b).map(|t| v.term_ids[t as usize]).collect(), f.values[a..b].to_vec()))
    }

    /// Every stored vector as CSR arrays with external term ids, in internal doc order:
    /// `(indptr, term ids, weights)`. Errors if vectors are not stored.
    pub fn vectors(&self) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
        let v = &self.view;
        let f = v.forward.ok_or_else(|| {
            Error::InvalidArgument("this index was built with store_vectors=False: vectors are not stored".into())
        })?;
        Ok((
            f.indptr.to_vec(),
            f.terms.range(0, f.terms.len()).map(|t| v.term_ids[t as usize]).collect(),
            f.values.to_vec(),
        ))
    }

    /// The internal doc whose id is `id`, if any: a binary search over the stored ids (with no
    /// stored ids, an integer id is the internal row number).
    pub fn locate(&self, id: Id<'_>) -> Option<u32> {
        self.view.ids.locate(id, self.view.n_docs)
    }

    /// The id of internal doc `doc` (its row number when the index stores no ids); `None` out
    /// of range.
    pub fn id(&self, doc: u32) -> Option<Id<'_>> {
        if doc >= self.view.n_docs {
            return None;
        }
        self.view.ids.get(doc)
    }

    /// The tie key of every internal doc: the rank of its id among the segment's ids
    /// (integers numerically, strings by their UTF-8 bytes), so that searches order equal
    /// scores by id ascending whatever the internal order (BP reordering, merges). `None`
    /// when the internal order already is the id order (no stored ids, or ids stored
    /// ascending): the tie key is then the doc id itself. Made on first use (a pass over
    /// `ids_sorted`, 4 bytes per document when needed) and kept in memory.
    pub fn tie_rank(&self) -> Option<&Arc<[u32]>> {
        self.ties
            .get_or_init(|| {
                let sorted = match self.view.ids {
                    ExternalIds::None => return None,
                    ExternalIds::Int { sorted, .. } | ExternalIds::Str { sorted, .. } => sorted,
                };
                if sorted.iter().enumerate().all(|(i, &d)| d as usize == i) {
                    return None;
                }
                let mut rank = vec![0u32; sorted.len()];
                for (i, &d) in sorted.iter().enumerate() {
                    rank[d as usize] = i as u32;
                }
                Some(rank.into())
            })
            .as_ref()
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Stats {
        let v = &self.view;
        let imp_size = match v.impacts {
            Impacts::U8(_) => 1u64,
            Impacts::F32(_) => 4,
            Impacts::Bm25(_) => 8,
        };
        let n_blocks = v.n_blocks() as u64;
        let postings_bytes = v.docs.len() as u64
            + v.n_postings() * imp_size
            + n_blocks * (4 + 8 + imp_size)
            + (v.n_terms as u64) * (8 + 4 + 4 + imp_size)
            + v.term_lut.map_or(0, |l| l.len() as u64 * 4)
            + v.doc_len.map_or(0, |d| d.len() as u64 * 4);
        let forward_bytes =
            v.forward.map_or(0, |f| (f.indptr.len() * 8 + f.terms.len() * f.terms.width() + f.values.len() * 4) as u64);
        Stats {
            n_docs: v.n_docs as u64,
            vocabulary: v.vocab.map_or_else(|| v.term_ids.last().map_or(0, |&t| t as u64 + 1), u64::from),
            n_terms: v.n_terms as u64,
            n_postings: v.n_postings(),
            n_blocks,
            bytes: self.container.total_bytes() as u64,
            postings_bytes,
            derived_bytes: (self.derived.bytes() + self.approx.layer.get().map_or(0, |l| l.bytes())) as u64,
            forward_bytes,
            kind: v.kind(),
            scale: v.scale,
        }
    }
}
