//! The writer's staged changes (documents added, documents deleted by id) and the two-step
//! commit that makes them durable and visible at once.

use super::files::{sdx_name, split_segment_file, FileRecord};
use super::manifest::{IdKind, Settings, StoreQuantization};
use super::segment::{SegmentData, SegmentState};
use super::{InflightGuard, Store};
use crate::index::build::{build_local, BuildOptions, Local, Quantization};
use crate::index::ids::IdsData;
use crate::index::{Id, IdBuf, IdsInput, Index};
use crate::vectors::{clean, Cleaned, CsrRef};
use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

/// Where a live document is, as the writer sees it (committed minus staged deletions, plus
/// staged additions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Staged, not committed: its row among the staged documents.
    Staged(u32),
    /// Committed: segment position in the current snapshot and internal doc.
    Committed {
        /// Segment position.
        segment: usize,
        /// Internal doc.
        doc: u32,
    },
}

/// The segment a prepared commit will add: its name (attachments are named `<name>.<ext>`)
/// and document order.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedSegment {
    /// `seg-<N>`.
    pub name: String,
    /// `order[internal_doc] = staged row` (rows as [`Store::stage_add`] numbered them).
    pub order: Vec<u32>,
    /// Set when the segment is u8 and its 8-bit grid is coarse for its weights
    /// ([`coarse_grid`]), for the layer above to warn about.
    pub coarse: Option<CoarseGrid>,
}

/// A u8 segment whose 8-bit grid leaves even its heaviest weights on a few impacts: a weight
/// far above the rest set the grid (this segment's own, or the store's shared one, set by its
/// first commit or `max_weight`). Exact search stays exact, but its 8-bit traversal can no
/// longer tell the documents apart, so the float rerank scores most matching documents from
/// their stored rows: 100k documents with weights up to 3 and one of 1000 took `auto` from 0.4
/// to 28 ms per query (a newcomer's break-test, stop 21).
#[derive(Clone, Debug, PartialEq)]
pub struct CoarseGrid {
    /// Staged row of the first document holding the segment's largest weight.
    pub row: u32,
    /// That weight.
    pub weight: f32,
    /// The grid: impact = `round(w * scale)` clamped to 1..=255.
    pub scale: f32,
    /// Whether the grid is the segment's own (set by `weight`) rather than the store's shared one.
    pub own: bool,
    /// The 99.9th-percentile impact of the segment's non-zero weights.
    pub top_impact: u8,
    /// The segment's non-zero weights.
    pub weights: u64,
}

/// A grid is coarse when the 99.9th-percentile impact of a segment's weights is at most this:
/// even the heaviest 0.1% of its weights, the ones that decide a top-k, fall on 8 of the 255
/// levels. Measured on 50k synthetic documents (`scores="vectors"` against `"impacts"` median
/// latency, the cost of the float rerank): weights up to 4 with one of 1000 (99.9th-percentile
/// impact 1) 43x; with one of 100 (impact 7) 1.9x; with one of 30 (impact 23) 1.46x; as
/// generated (181) 1.22x. A newcomer measured weights up to 30 with one of 1000 (impact about
/// 7) at 10x. Integer counts (Zipf, largest 100 to 2000) leave half of their weights on
/// impacts 1..3 but their heaviest above 250, and cost 1.24-1.39x: a median would flag them
/// for nothing. Real SPLADE vectors: 225 on debian.
pub const COARSE_TOP_IMPACT: u8 = 8;
/// Segments of fewer non-zero weights are not judged (a handful of weights says little about
/// a grid; a small first commit that set a coarse shared grid is caught at the next segments).
pub const COARSE_MIN_WEIGHTS: u64 = 256;

/// Whether the grid `scale` is coarse for the weights of the kept staged rows (`indptr` /
/// `values` of the kept rows in order, `keep[i]` the staged row of kept row `i`); `own` says
/// whether the grid is the segment's own. One pass: a histogram of the impacts.
pub(crate) fn coarse_grid(indptr: &[u64], values: &[f32], keep: &[u32], scale: f32, own: bool) -> Option<CoarseGrid> {
    let mut hist = [0u64; 256];
    let (mut max, mut row) = (0.0f32, 0u32);
    for (i, &r) in keep.iter().enumerate() {
        for &w in &values[indptr[i] as usize..indptr[i + 1] as usize] {
            if w > 0.0 {
                hist[crate::index::build::quantize(w, scale) as usize] += 1;
                if w > max {
                    (max, row) = (w, r);
                }
            }
        }
    }
    let n: u64 = hist.iter().sum();
    if n < COARSE_MIN_WEIGHTS {
        return None;
    }
    // The 99.9th percentile: the smallest impact at or below which 99.9% of the weights fall.
    let mut seen = 0u64;
    let top = (0..256).find(|&m| {
        seen += hist[m];
        1000 * seen >= 999 * n
    })? as u8;
    (top <= COARSE_TOP_IMPACT).then_some(CoarseGrid { row, weight: max, scale, own, top_impact: top, weights: n })
}

/// Staged additions and deletions.
#[derive(Default)]
pub(crate) struct Staged {
    indptr: Vec<u64>,
    terms: Vec<u32>,
    values: Vec<f32>,
    doc_len: Vec<u32>,
    ids: Vec<IdBuf>,
    row_of: HashMap<IdBuf, u32>,
    dropped: Vec<bool>,
    /// Segment name -> internal docs to delete.
    pub(crate) deletes: HashMap<String, BTreeSet<u32>>,
    next_int_id: Option<i64>,
}

impl Staged {
    fn any(&self) -> bool {
        !self.ids.is_empty() || !self.deletes.is_empty() || self.next_int_id.is_some()
    }
}

/// A commit built in memory, waiting for [`Store::finish_commit`].
pub(crate) struct PreparedCommit {
    segment: Option<(String, Arc<Index>, InflightGuard)>,
    /// The segment's engine file, once written ([`Store::write_prepared`]): the index mapped
    /// from it and its record.
    written: Option<(Arc<Index>, Option<FileRecord>)>,
    /// The shared u8 scale this commit fixes (the store's first commit).
    scale: Option<f32>,
    /// What [`Store::prepare_commit`] returned (returned again by a repeated call).
    out: Option<PreparedSegment>,
}

/// The writer's state.
pub(crate) struct Writer {
    pub(crate) settings: Settings,
    pub(crate) is_writer: bool,
    pub(crate) staged: Staged,
    prepared: Option<PreparedCommit>,
    /// CURRENT's record of the manifest at the last load or commit (to detect other writers,
    /// and copies written into the directory); `None` before the first commit of a new store.
    pub(crate) manifest: Option<super::files::FileRecord>,
}

impl Writer {
    pub(crate) fn new(settings: Settings, is_writer: bool, manifest: Option<super::files::FileRecord>) -> Writer {
        Writer { settings, is_writer, staged: Staged::default(), prepared: None, manifest }
    }
    pub(crate) fn has_staged(&self) -> bool {
        self.staged.any() || self.prepared.is_some()
    }
    pub(crate) fn rollback(&mut self) {
        self.staged = Staged::default();
        self.prepared = None;
    }
}

fn id_kind(ids: &IdsInput<'_>) -> Option<IdKind> {
    match ids {
        IdsInput::None => None,
        IdsInput::Int(_) => Some(IdKind::Int),
        IdsInput::Str(_) => Some(IdKind::Str),
    }
}

fn ids_of(ids: IdsInput<'_>, n: usize, next: i64) -> Result<Vec<IdBuf>> {
    Ok(match ids {
        IdsInput::None => (0..n as i64).map(|i| IdBuf::Int(next + i)).collect(),
        IdsInput::Int(v) if v.len() == n => v.iter().map(|&x| IdBuf::Int(x)).collect(),
        IdsInput::Str(v) if v.len() == n => v.iter().map(|s| IdBuf::Str(s.clone())).collect(),
        IdsInput::Int(v) => return Err(Error::InvalidArgument(format!("{} ids given for {n} documents", v.len()))),
        IdsInput::Str(v) => return Err(Error::InvalidArgument(format!("{} ids given for {n} documents", v.len()))),
    })
}

impl Store {
    /// Where the live document `id` is, as the writer sees it.
    pub fn locate(&self, id: Id<'_>) -> Option<Location> {
        let snap = self.snapshot();
        match self.writer_opt() {
            Some(w) => locate_in(&w, &snap, id),
            None => snap.locate(id).map(|(segment, doc)| Location::Committed { segment, doc }),
        }
    }
}

fn locate_in(w: &Writer, snap: &super::Snapshot, id: Id<'_>) -> Option<Location> {
    if let Some(&row) = w.staged.row_of.get(&IdBuf::from(id)) {
        return Some(Location::Staged(row));
    }
    let (segment, doc) = snap.locate(id)?;
    let deleted = w.staged.deletes.get(snap.segments[segment].name()).is_some_and(|s| s.contains(&doc));
    (!deleted).then_some(Location::Committed { segment, doc })
}

impl Store {
    /// Whether changes are staged (or a commit is prepared).
    pub fn has_staged(&self) -> bool {
        self.writer_opt().is_some_and(|w| w.has_staged())
    }

    /// The next automatic integer id: one above the largest integer id ever added.
    pub fn next_int_id(&self) -> i64 {
        match self.writer_opt() {
            Some(w) => w.staged.next_int_id.unwrap_or(w.settings.next_int_id),
            None => self.snapshot().settings.next_int_id,
        }
    }

    /// Stage a raise of the next automatic integer id to at least `next` (a writer call): the
    /// ids below it count as used even though no live document has them (deleted documents of
    /// a directory being upgraded). Committed like any staged change; a lower `next` changes
    /// nothing. Errors on a negative `next`.
    pub fn reserve_int_ids(&self, next: i64) -> Result<()> {
        if next < 0 {
            return Err(Error::InvalidArgument(format!("the next integer id must be at least 0, got {next}")));
        }
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        if w.prepared.is_some() {
            return Err(Error::Conflict("a commit is prepared: finish it (or roll back) before staging more".into()));
        }
        let have = w.staged.next_int_id.unwrap_or(w.settings.next_int_id);
        if next > have {
            w.staged.next_int_id = Some(next);
        }
        Ok(())
    }

    /// Stage documents (a writer call): CSR rows (validated as the builder does; errors name
    /// the document of this call), their ids (all ints or all strings, as the store's; `None`:
    /// automatic integer ids from [`Store::next_int_id`]), and for BM25 stores their lengths
    /// (by default the sum of their term frequencies). Ids must be unique and, without
    /// `replace`, not in the index; with `replace` a live document with the same id is deleted
    /// first (an upsert). Returns the staged rows of the documents.
    pub fn stage_add(
        &self,
        docs: CsrRef<'_>,
        ids: IdsInput<'_>,
        doc_len: Option<&[u32]>,
        replace: bool,
    ) -> Result<Range<u32>> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        if w.prepared.is_some() {
            return Err(Error::Conflict("a commit is prepared: finish it (or roll back) before staging more".into()));
        }
        let cleaned = clean(&docs, w.settings.vocab)?;
        let n = cleaned.indptr.len() - 1;
        let lens = check_bm25(&w.settings, &cleaned, doc_len)?;
        if let Some(k) = id_kind(&ids) {
            let have = if w.settings.id_kind == IdKind::Unknown { self.staged_kind(&w) } else { w.settings.id_kind };
            if have != IdKind::Unknown && have != k {
                return Err(Error::InvalidArgument(format!(
                    "the index's ids are {}: ids must be all integers or all strings",
                    if have == IdKind::Int { "integers" } else { "strings" }
                )));
            }
        } else if w.settings.id_kind == IdKind::Str || self.staged_kind(&w) == IdKind::Str {
            return Err(Error::InvalidArgument("this index has string ids: give ids for the new documents".into()));
        }
        let next = w.staged.next_int_id.unwrap_or(w.settings.next_int_id);
        let new_ids = ids_of(ids, n, next)?;
        // Check everything before changing anything.
        let snap = self.snapshot();
        let mut seen = HashMap::with_capacity(n);
        let mut replaced = Vec::new();
        for (i, id) in new_ids.iter().enumerate() {
            if let Some(j) = seen.insert(id, i) {
                return Err(Error::InvalidDocument {
                    doc: i,
                    msg: format!("id {} is a duplicate (of document {j})", id.as_id().shown()),
                });
            }
            if let Some(loc) = locate_in(&w, &snap, id.as_id()) {
                if !replace {
                    return Err(Error::InvalidDocument {
                        doc: i,
                        msg: format!("id {} is already in the index (replace it with an upsert)", id.as_id().shown()),
                    });
                }
                replaced.push(loc);
            }
        }
        for loc in replaced {
            delete_at(&mut w.staged, &snap, loc);
        }
        let s = &mut w.staged;
        let first = s.ids.len() as u32;
        if s.indptr.len() <= 1 && s.terms.is_empty() {
            // nothing staged yet (one add per commit, the common case): the cleaned rows become
            // the staged ones without a copy
            s.indptr = cleaned.indptr;
            s.terms = cleaned.terms;
            s.values = cleaned.values;
        } else {
            if s.indptr.is_empty() {
                s.indptr.push(0);
            }
            let base = *s.indptr.last().unwrap_or(&0);
            s.indptr.extend(cleaned.indptr[1..].iter().map(|&p| p + base));
            s.terms.extend_from_slice(&cleaned.terms);
            s.values.extend_from_slice(&cleaned.values);
        }
        s.doc_len.extend(lens);
        for (i, id) in new_ids.into_iter().enumerate() {
            if let IdBuf::Int(x) = id {
                s.next_int_id = Some(s.next_int_id.unwrap_or(next).max(x.saturating_add(1)));
            }
            s.row_of.insert(id.clone(), first + i as u32);
            s.ids.push(id);
            s.dropped.push(false);
        }
        Ok(first..first + n as u32)
    }

    fn staged_kind(&self, w: &Writer) -> IdKind {
        match w.staged.ids.first() {
            Some(IdBuf::Int(_)) => IdKind::Int,
            Some(IdBuf::Str(_)) => IdKind::Str,
            None => IdKind::Unknown,
        }
    }

    /// Stage the deletion of the live documents with these ids (a writer call); an id that is
    /// not there is an error ([`Error::NotFound`]) unless `missing_ok`. An id listed twice is
    /// deleted once. Returns how many documents will be deleted.
    pub fn stage_delete(&self, ids: IdsInput<'_>, missing_ok: bool) -> Result<u64> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        if w.prepared.is_some() {
            return Err(Error::Conflict("a commit is prepared: finish it (or roll back) before staging more".into()));
        }
        let ids: Vec<IdBuf> = match ids {
            IdsInput::None => Vec::new(),
            IdsInput::Int(v) => v.iter().map(|&x| IdBuf::Int(x)).collect(),
            IdsInput::Str(v) => v.iter().map(|s| IdBuf::Str(s.clone())).collect(),
        };
        let snap = self.snapshot();
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            if !seen.insert(id) {
                continue;
            }
            match locate_in(&w, &snap, id.as_id()) {
                Some(loc) => found.push(loc),
                None if missing_ok => {}
                None => {
                    return Err(Error::NotFound(format!("no document with id {} in the index", id.as_id().shown())))
                }
            }
        }
        for loc in &found {
            delete_at(&mut w.staged, &snap, *loc);
        }
        Ok(found.len() as u64)
    }

    /// Forget every staged change (and a prepared commit).
    pub fn rollback(&self) {
        if let Some(mut w) = self.writer_opt() {
            w.rollback();
        }
    }

    /// Build the staged documents into a segment in memory (a writer call) and say its name
    /// and document order, so that the caller can write attachments (`<name>.<ext>`) in the
    /// segment's internal order; then [`Store::finish_commit`]. `None` when no document is
    /// staged (deletions alone still need `finish_commit`). Called again while the commit is
    /// prepared, it returns the same answer (nothing can be staged meanwhile).
    pub fn prepare_commit(&self) -> Result<Option<PreparedSegment>> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        if let Some(p) = &w.prepared {
            // prepared already (a caller interrupted before it kept the answer: staging is
            // refused while a commit is prepared, so it is still the commit of what is staged)
            return Ok(p.out.clone());
        }
        let (prepared, out) = self.build_staged(&w)?;
        w.prepared = Some(prepared);
        Ok(out)
    }

    fn build_staged(&self, w: &Writer) -> Result<(PreparedCommit, Option<PreparedSegment>)> {
        let s = &w.staged;
        let keep: Vec<u32> = (0..s.ids.len() as u32).filter(|&r| !s.dropped[r as usize]).collect();
        if keep.is_empty() {
            return Ok((PreparedCommit { segment: None, written: None, scale: None, out: None }, None));
        }
        let mut c = Cleaned { indptr: vec![0], terms: Vec::new(), values: Vec::new() };
        let mut ids = match s.ids[keep[0] as usize] {
            IdBuf::Int(_) => IdsData::Int(Vec::new()),
            IdBuf::Str(_) => IdsData::Str { off: vec![0], bytes: Vec::new() },
        };
        let mut lens = Vec::new();
        for &r in &keep {
            let (a, b) = (s.indptr[r as usize] as usize, s.indptr[r as usize + 1] as usize);
            c.terms.extend_from_slice(&s.terms[a..b]);
            c.values.extend_from_slice(&s.values[a..b]);
            c.indptr.push(c.terms.len() as u64);
            ids.push(s.ids[r as usize].as_id())?;
            if w.settings.bm25.is_some() {
                lens.push(s.doc_len[r as usize]);
            }
        }
        let (quantization, scale) = segment_quantization(&w.settings, &c.values);
        let coarse = match quantization {
            Quantization::U8 { scale: Some(sc) } => coarse_grid(&c.indptr, &c.values, &keep, sc, scale.is_some()),
            Quantization::U8 { scale: None } => {
                let max = crate::index::build::max_weight(&c.values);
                (max > 0.0).then(|| coarse_grid(&c.indptr, &c.values, &keep, 255.0 / max, true)).flatten()
            }
            _ => None,
        };
        let sorted = ids.sorted()?;
        let opts = BuildOptions {
            n_terms: w.settings.vocab,
            quantization,
            store_vectors: true,
            reorder: super::segment_reorder(w.settings.reorder, keep.len()),
        };
        let built = build_local(Local::new(c), ids, sorted, w.settings.bm25.map(|_| lens), &opts)?;
        let (name, guard) = self.new_segment();
        let order = built.order.iter().map(|&i| keep[i as usize]).collect();
        let out = PreparedSegment { name: name.clone(), order, coarse };
        let prepared = PreparedCommit {
            segment: Some((name, Arc::new(built.index), guard)),
            written: None,
            scale,
            out: Some(out.clone()),
        };
        Ok((prepared, Some(out)))
    }

    /// Write the prepared segment's engine file now (content fsynced and renamed into place
    /// under the segment's new name, which no manifest lists yet), so that the caller can
    /// write the segment's attachments meanwhile in another thread: [`Store::finish_commit`]
    /// then records this file instead of writing it. Nothing becomes visible: a crash leaves
    /// an unreferenced file, collected as garbage. A no-op when the file is written already,
    /// when no segment is prepared, and in memory. On an error the file is written again by
    /// `finish_commit` (or by a second call). A [`Error::Conflict`] when this store is not the
    /// writer (its write ended, e.g. it was closed while a commit's helper thread had yet to
    /// start): unlike other write calls, this one never *becomes* the writer, since that
    /// collects garbage, which only the holder of the directory's lock may do.
    pub fn write_prepared(&self) -> Result<()> {
        let mut w = self.writer()?;
        if !w.is_writer {
            return Err(Error::Conflict("write_prepared: this store is not the writer (nothing is prepared)".into()));
        }
        let Some(p) = w.prepared.as_mut() else {
            return Err(Error::Conflict("nothing prepared".into()));
        };
        if self.dir.is_none() || p.written.is_some() {
            return Ok(());
        }
        if let Some(dir) = &self.dir {
            self.check_unchanged(&w, dir, &self.snapshot())?;
        }
        let Some(p) = w.prepared.as_mut() else {
            return Err(Error::Conflict("nothing prepared".into()));
        };
        if let Some((name, index, _)) = &p.segment {
            p.written = Some(self.write_engine(name, index, false)?);
        }
        Ok(())
    }

    /// Make the staged changes durable and visible at once (a writer call): the prepared
    /// segment (prepared now if [`Store::prepare_commit`] was not called) with its
    /// `attachments` (files `<segment>.<ext>` the caller wrote into the directory; they are
    /// fsynced and recorded with their size and CRC32), the deletion files, the manifest, then
    /// CURRENT. `settings_json` replaces the opaque settings. Returns the new generation
    /// (unchanged if there was nothing to commit). On an error before the commit point nothing
    /// is visible and the staged changes stay, to be committed again or rolled back; an error
    /// of the very last step (the directory sync after CURRENT's rename) leaves the commit done
    /// and visible, its durability unconfirmed.
    pub fn finish_commit(&self, attachments: &[String], settings_json: Option<&str>) -> Result<u64> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        let json_changes = settings_json.is_some_and(|j| j != w.settings.json);
        if w.prepared.is_none() && !w.staged.any() && !json_changes {
            if !attachments.is_empty() {
                return Err(Error::Conflict("attachments given but nothing was prepared".into()));
            }
            return Ok(self.snapshot().generation);
        }
        if w.prepared.is_none() {
            let (p, _) = self.build_staged(&w)?;
            w.prepared = Some(p);
        }
        let snap = self.snapshot();
        let mut states: Vec<SegmentState> = Vec::with_capacity(snap.segments.len() + 1);
        for s in &snap.segments {
            match w.staged.deletes.get(s.name()) {
                Some(docs) => states.push(s.with_deleted(docs.iter().copied())?),
                None => states.push(s.clone()),
            }
        }
        states.retain(|s| s.n_live > 0);
        let mut settings = w.settings.clone();
        if let Some(j) = settings_json {
            settings.json = j.to_string();
        }
        let prepared = w.prepared.as_ref().ok_or_else(|| Error::Conflict("nothing prepared".into()))?;
        if let Some(s) = prepared.scale {
            settings.scale = Some(s);
        }
        match &prepared.segment {
            Some((name, index, _)) => {
                let attachments = self.record_attachments(name, attachments)?;
                let (index, sdx) = match &prepared.written {
                    Some((index, sdx)) => (index.clone(), sdx.clone()),
                    None => self.write_engine(name, index, false)?,
                };
                let data = SegmentData { name: name.clone(), index, sdx, attachments };
                states.push(SegmentState::new(Arc::new(data), None, None)?);
                settings.id_kind = match states.last().map(|s| s.index().view().ids) {
                    Some(crate::index::ExternalIds::Str { .. }) => IdKind::Str,
                    _ => IdKind::Int,
                };
            }
            None if !attachments.is_empty() => {
                return Err(Error::InvalidArgument("attachments given but no segment is being added".into()))
            }
            None => {}
        }
        if let Some(n) = w.staged.next_int_id {
            settings.next_int_id = settings.next_int_id.max(n);
        }
        let (generation, synced) = self.write_commit(&mut w, states, Some(settings))?;
        w.rollback();
        synced.map(|_| generation)
    }

    /// Write a built segment's engine file (content fsynced and renamed into place; the rename
    /// is made durable by the directory sync that follows the manifest's rename in
    /// [`Store::write_commit`], before CURRENT moves) and return the index memory-mapped from
    /// it with its record (in memory: the index as is). The record's CRC32 is computed once,
    /// over the bytes written, and the mapped file is not checksummed again: a later open
    /// verifies it against the manifest.
    ///
    /// `merged`: a background merge's or reorder job's segment, whose file must not exist yet
    /// ([`crate::fs::create_fill`]: a merge that outlived its writer never replaces a file a
    /// newer writer committed under the same name); a commit's own segment replaces whatever
    /// an abandoned merge left under its name.
    pub(crate) fn write_engine(
        &self,
        name: &str,
        index: &Arc<Index>,
        merged: bool,
    ) -> Result<(Arc<Index>, Option<FileRecord>)> {
        let Some(dir) = &self.dir else { return Ok((index.clone(), None)) };
        let file = sdx_name(name);
        let bytes = index.image_bytes();
        if merged {
            crate::fs::create_fill(&dir.join(&file), |f, tmp| crate::fs::write_cancellable(f, tmp, bytes))?;
        } else {
            crate::fs::replace(&dir.join(&file), bytes)?;
        }
        let rec = FileRecord::of_bytes(&file, bytes);
        // `index` was parsed (and validated) from these very bytes: the map must hold them and
        // is checked for its sections and lengths, not walked again
        let mapped = rec.open_written_built_index(dir, index)?;
        Ok((Arc::new(mapped), Some(rec)))
    }

    /// Fsync the attachments of segment `name` (files `<name>.<ext>` the caller wrote) and
    /// record their size and CRC32.
    pub(crate) fn record_attachments(&self, name: &str, attachments: &[String]) -> Result<Vec<FileRecord>> {
        let Some(dir) = &self.dir else {
            if !attachments.is_empty() {
                return Err(Error::InvalidArgument("an in-memory store takes no attachments".into()));
            }
            return Ok(Vec::new());
        };
        let mut recs = Vec::with_capacity(attachments.len());
        for a in attachments {
            match split_segment_file(a) {
                Some((seg, rest))
                    if seg == name
                        && super::files::role_of(rest) == super::files::Role::Attachment
                        && rest != crate::search::approx::persist::EXT => {}
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "attachment {a:?} is not named {name}.<ext> (or uses a name the store reserves)"
                    )))
                }
            }
            if recs.iter().any(|r: &FileRecord| &r.name == a) {
                return Err(Error::InvalidArgument(format!("attachment {a:?} is listed twice")));
            }
            sync_file(&dir.join(a))?;
            recs.push(FileRecord::of_file(dir, a)?);
        }
        Ok(recs)
    }
}

/// Fsync a file another layer wrote.
pub(crate) fn sync_file(path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    crate::fs::failpoint::hit("sync", path).map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
    f.sync_all().map_err(|e| Error::io(format!("syncing {}", path.display()), e))
}

/// Stage the deletion of the document at `loc`.
fn delete_at(s: &mut Staged, snap: &super::Snapshot, loc: Location) {
    match loc {
        Location::Staged(row) => {
            let id = s.ids[row as usize].clone();
            s.row_of.remove(&id);
            s.dropped[row as usize] = true;
        }
        Location::Committed { segment, doc } => {
            s.deletes.entry(snap.segments[segment].name().to_string()).or_default().insert(doc);
        }
    }
}

/// BM25 stores take term frequencies and lengths; other stores take no lengths.
fn check_bm25(settings: &Settings, c: &Cleaned, doc_len: Option<&[u32]>) -> Result<Vec<u32>> {
    let n = c.indptr.len() - 1;
    if settings.bm25.is_none() {
        if doc_len.is_some() {
            return Err(Error::InvalidArgument("document lengths only apply to BM25 indexes".into()));
        }
        return Ok(Vec::new());
    }
    crate::index::build::check_tf(c)?;
    match doc_len {
        Some(l) if l.len() != n => {
            Err(Error::InvalidArgument(format!("{} document lengths given for {n} documents", l.len())))
        }
        Some(l) => Ok(l.to_vec()),
        None => crate::index::build::tf_sums(c),
    }
}

/// The quantization of a new segment of `values`, and the shared u8 scale it fixes (if the
/// store has none yet): the store's shared scale when every weight fits it (`w * scale <=
/// 255`), otherwise the segment's own grid (255 / its largest weight).
pub(crate) fn segment_quantization(s: &Settings, values: &[f32]) -> (Quantization, Option<f32>) {
    if let Some(p) = s.bm25_params() {
        return (Quantization::Bm25(p), None);
    }
    match s.quantization {
        StoreQuantization::F32 => (Quantization::F32, None),
        StoreQuantization::U8 => {
            let max = crate::index::build::max_weight(values);
            match s.scale {
                Some(sc) => (Quantization::U8 { scale: (max * sc <= 255.0).then_some(sc) }, None),
                None if max > 0.0 => (Quantization::U8 { scale: Some(255.0 / max) }, Some(255.0 / max)),
                None => (Quantization::U8 { scale: None }, None),
            }
        }
    }
}
