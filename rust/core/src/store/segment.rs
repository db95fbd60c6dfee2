//! A segment of a store as one commit sees it: the immutable engine index and its files, plus
//! the documents deleted as of that commit (a bitmap, in a deletion file per commit that
//! changed it).

use super::files::{parse_small, FileRecord, DELETIONS_MAGIC, STORE_VERSION};
use crate::container::ContainerWriter;
use crate::index::{Id, Index};
use crate::search::DocSet;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The immutable part of a segment, shared by every snapshot that holds it.
#[derive(Debug)]
pub struct SegmentData {
    /// `seg-<N>`.
    pub name: String,
    /// The engine index (memory-mapped for on-disk stores).
    pub index: Arc<Index>,
    /// Record of the engine file (`None` in memory).
    pub sdx: Option<FileRecord>,
    /// Records of the attachments.
    pub attachments: Vec<FileRecord>,
}

/// A segment as of one commit.
#[derive(Clone, Debug)]
pub struct SegmentState {
    /// The segment.
    pub data: Arc<SegmentData>,
    /// Deleted documents (`None`: none).
    pub deleted: Option<DocSet>,
    /// Record of the deletion file (on disk, when documents are deleted).
    pub deletions: Option<FileRecord>,
    /// Documents a search may return (`None`: all): the complement of `deleted`.
    pub live: Option<DocSet>,
    /// Number of live documents.
    pub n_live: u32,
    /// BM25: sum of the live documents' lengths.
    pub live_len: u64,
}

impl SegmentState {
    /// The state of `data` with `deleted` documents (`None` or an empty set: none).
    pub fn new(data: Arc<SegmentData>, deleted: Option<DocSet>, deletions: Option<FileRecord>) -> Result<SegmentState> {
        let n = data.index.n_docs();
        let deleted = deleted.filter(|d| !d.is_empty());
        let live = deleted.as_ref().map(|d| d.complement(n)).transpose()?;
        let n_live = live.as_ref().map_or(n, |l| l.len() as u32);
        let v = data.index.view();
        let live_len = match (v.doc_len, v.bm25) {
            (Some(dl), Some(meta)) => match &deleted {
                None => meta.total_len,
                Some(del) => {
                    dl.iter().enumerate().filter(|(d, _)| !del.contains(*d as u32)).map(|(_, &l)| l as u64).sum()
                }
            },
            _ => 0,
        };
        Ok(SegmentState { data, deleted, deletions, live, n_live, live_len })
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The engine index.
    pub fn index(&self) -> &Index {
        &self.data.index
    }

    /// Whether internal doc `d` is deleted.
    pub fn is_deleted(&self, d: u32) -> bool {
        self.deleted.as_ref().is_some_and(|s| s.contains(d))
    }

    /// The live internal doc with id `id`, if any.
    pub fn locate(&self, id: Id<'_>) -> Option<u32> {
        self.data.index.locate(id).filter(|&d| !self.is_deleted(d))
    }

    /// This state with the documents `docs` deleted too (no file record yet).
    pub fn with_deleted(&self, docs: impl IntoIterator<Item = u32>) -> Result<SegmentState> {
        let n = self.data.index.n_docs();
        let mut words =
            self.deleted.as_ref().map_or_else(|| vec![0u64; (n as usize).div_ceil(64)], |d| d.words().to_vec());
        for d in docs {
            if d >= n {
                return Err(Error::InvalidArgument(format!("document {d} is out of range ({n} documents)")));
            }
            words[(d >> 6) as usize] |= 1 << (d & 63);
        }
        SegmentState::new(self.data.clone(), Some(DocSet::from_words(words, n)?), None)
    }
}

/// The bytes of a deletion file: `deleted` of segment `segment` (of store `uuid`) as of
/// generation `generation`.
pub fn encode_deletions(uuid: &str, segment: &str, generation: u64, n_docs: u32, deleted: &DocSet) -> Result<Vec<u8>> {
    let mut w = ContainerWriter::new(DELETIONS_MAGIC, STORE_VERSION);
    w.add_u64s("meta", &[n_docs as u64, deleted.len(), generation])?;
    w.add_bytes("owner", format!("{uuid}/{segment}").as_bytes())?;
    w.add_u64s("deleted", deleted.words())?;
    Ok(w.into_image().as_bytes().to_vec())
}

/// Parse a deletion file of segment `segment` (of store `uuid`, `n_docs` documents).
pub fn decode_deletions(bytes: &[u8], path: &Path, uuid: &str, segment: &str, n_docs: u32) -> Result<DocSet> {
    let bad = |msg: &str| Error::Corrupt(format!("{}: {msg}", path.display()));
    let c = parse_small(bytes, DELETIONS_MAGIC, path)?;
    if c.bytes("owner")? != format!("{uuid}/{segment}").as_bytes() {
        return Err(bad("belongs to another index or segment"));
    }
    let meta = c.u64s("meta")?;
    if meta.len() != 3 || meta[0] != n_docs as u64 {
        return Err(bad("is for another number of documents"));
    }
    let set = DocSet::from_words(c.u64s("deleted")?.to_vec(), n_docs).map_err(|e| bad(&e.to_string()))?;
    if set.len() != meta[1] || set.is_empty() {
        return Err(bad("deletion count does not match the bitmap"));
    }
    Ok(set)
}
