//! The store: the lifecycle of a set of segments, in memory or in a directory (see
//! rust/core/FORMAT.md for every file).
//!
//! A store is a list of immutable engine segments, each with a deletion bitmap. Adding
//! documents never touches an existing segment: a commit writes the added documents as a new
//! segment; deleting marks documents in a new deletion file; merges (planned by a tiered
//! policy, [`MergePolicy`]) rewrite several segments as one, dropping deleted documents.
//! Searches cover every segment with one exact global top-k ([`Snapshot::search`]).
//!
//! **Commits.** Every file is written under a name never used before (segment numbers and
//! generations only grow), atomically and durably ([`crate::fs::write_atomically`]): new
//! segment and deletion files, then `manifest-<G>`, then `CURRENT` (the commit point). A crash
//! at any moment leaves the old commit or the new one, both complete; files of an unfinished
//! commit are collected by the next writer. A commit runs in two steps so that the layer
//! above can write a file of its own per new segment (an *attachment*, such as a documents
//! database in the segment's internal order) before the commit point:
//! [`Store::prepare_commit`] builds the segment in memory and says its name and document
//! order, [`Store::finish_commit`] makes everything durable and visible at once.
//!
//! **Readers** ([`Store::open`]) take no lock and see the commit that was current when they
//! opened (a [`Snapshot`]) until [`Store::refresh`]. They retry while a writer commits and
//! collects files under them.
//!
//! **Writers.** The store does not lock: the caller must hold the directory's writer lock
//! (the `LOCK` file, e.g. with Python's `filelock`) around every write call (`begin_write`,
//! `stage_*`, `prepare_commit`, `finish_commit`, `finish_merge`, `collect_garbage`) and around
//! [`Store::save_copy`]'s use of the destination. [`Store::merge`] needs no lock: it builds a
//! merged segment from a snapshot while commits go on, and [`Store::finish_merge`] (under the
//! lock) installs it, carrying over deletions made meanwhile. A writer that finds CURRENT
//! changed by someone else refuses to commit ([`Error::Conflict`]).

mod files;
mod gc;
mod load;
mod manifest;
mod merging;
mod save;
mod segment;
mod snapshot;
mod stamps;
#[cfg(test)]
mod tests;
mod vocab;
mod writer;

pub use files::{index_dir_may_hold, is_our_current, FileRecord, CURRENT, LOCK};
pub use manifest::{IdKind, Settings, StoreQuantization};
pub use merging::{MergePolicy, PreparedMerge, Reservation};
pub use save::PreparedSave;
pub use segment::{SegmentData, SegmentState};
pub use snapshot::Snapshot;
pub use vocab::{VocabHandle, VocabRecord};
pub use writer::{CoarseGrid, Location, PreparedSegment};

use crate::index::Reorder;
use crate::{Error, Result};
use files::{manifest_name, FileRecord as Rec};
use manifest::{Current, Manifest, SegmentRecord};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Settings of a new store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// Impact storage (and, for BM25, integer or float scoring).
    pub quantization: StoreQuantization,
    /// u8 stores: the largest weight expected (the shared scale is `255 / max_weight`); by
    /// default the first commit's largest weight. A segment with larger weights gets its own
    /// grid (its scores are then rounded on another grid).
    pub max_weight: Option<f32>,
    /// Declared vocabulary size (term ids must be below it).
    pub vocab: Option<u32>,
    /// A BM25 store: k1 and b (documents are term-frequency vectors).
    pub bm25: Option<(f32, f32)>,
    /// Opaque JSON of the layer above, kept in every manifest.
    pub settings_json: String,
    /// Document order of the store's segments, at commit and at merge (kept in the manifest;
    /// BP with its default options is recorded as `bp`).
    pub reorder: Reorder,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            quantization: StoreQuantization::U8,
            max_weight: None,
            vocab: None,
            bm25: None,
            settings_json: "{}".into(),
            reorder: Reorder::default(),
        }
    }
}

/// Segments of fewer documents than this, written by a commit or a merge of a store whose
/// order is BP, get the signature order instead ([`segment_reorder`]).
///
/// BP costs about four times a build without reordering (`benches/updates.py`, reorder rows)
/// and pays off through block-max pruning, which the default search (`auto`) does not use on
/// segments this small: it scores them exhaustively, whatever their order. A small segment of
/// a tiered store is short-lived too: merges replace it soon and reorder its documents, with
/// BP once the merged segment is large. So adds in small commits do not pay for BP twice.
pub const BP_MIN_DOCS: usize = 32_768;

/// The order a store segment of `n_docs` documents is built in: the store's `reorder`, but
/// the signature order in place of BP below [`BP_MIN_DOCS`] documents.
pub fn segment_reorder(reorder: Reorder, n_docs: usize) -> Reorder {
    match reorder {
        Reorder::Bp(_) if n_docs < BP_MIN_DOCS => Reorder::Signature,
        r => r,
    }
}

/// Names of segments being written (by a prepared commit or a merge), spared by the garbage
/// collector; counted, as a name stays in flight until every holder is done.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inflight(Arc<Mutex<HashMap<String, usize>>>);

impl Inflight {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Hold `name` in flight until the guard is dropped.
    pub(crate) fn hold(&self, name: &str) -> InflightGuard {
        *self.lock().entry(name.to_string()).or_insert(0) += 1;
        InflightGuard { set: self.clone(), name: name.to_string() }
    }
    pub(crate) fn names(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
    }
}

/// Keeps a segment name in flight while alive.
#[derive(Debug)]
pub(crate) struct InflightGuard {
    set: Inflight,
    name: String,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let mut m = self.set.lock();
        if let Some(c) = m.get_mut(&self.name) {
            *c -= 1;
            if *c == 0 {
                m.remove(&self.name);
            }
        }
    }
}

/// A set of segments with one writer at a time (see the module doc).
pub struct Store {
    dir: Option<PathBuf>,
    /// The snapshot searches read: swapped, never locked (a `fork()` child reads it even when
    /// a thread of the parent was publishing a commit at the fork).
    current: arc_swap::ArcSwap<Snapshot>,
    /// The process that made this store (a `fork()` child inherits it: see [`Store::writer`]).
    pid: u32,
    writer: Mutex<writer::Writer>,
    next_segment: AtomicU64,
    inflight: Inflight,
    /// Terms to append to the vocabulary file at the next commit.
    staged_terms: vocab::StagedTerms,
    /// Size and modification time of the committed files as read or written.
    stamps: stamps::Stamps,
}

impl Store {
    /// Let go of the files this store holds open: its current snapshot becomes an empty one
    /// (same store id, settings and generation; no segments, no vocabulary file), so the engine
    /// files it mapped and the vocabulary file it opened are released as soon as no reader or
    /// running search holds the old snapshot. For a store being closed: the layer above refuses
    /// every call afterwards (a merge abandoned meanwhile finds its members gone and is dropped).
    pub fn release(&self) {
        let cur = self.current.load_full();
        let empty = Snapshot {
            generation: cur.generation,
            uuid: cur.uuid.clone(),
            settings: cur.settings.clone(),
            segments: Vec::new(),
            vocab: None,
            dir: cur.dir.clone(),
        };
        self.current.store(Arc::new(empty));
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).field("generation", &self.snapshot().generation).finish()
    }
}

/// `snap` with every segment told where its calibration file is (and given the calibration
/// it holds, see [`crate::search::approx::persist`]), in the directory the commit was read
/// from; segments already told are skipped. Nothing to do in memory.
fn attach_calibrations(snap: Snapshot) -> Snapshot {
    let Some(dir) = snap.dir.clone() else { return snap };
    for s in &snap.segments {
        if let Some(sdx) = &s.data.sdx {
            crate::search::approx::persist::attach(s.index(), &dir, &snap.uuid, s.name(), sdx.crc32);
        }
    }
    snap
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error of a call a `fork()` child made on a store it inherited, whose writer state a
/// thread of the parent held at the fork (that thread is not in the child: the state stays
/// locked for good).
fn inherited_busy() -> Error {
    Error::Conflict(
        "this index handle was inherited through fork() while another thread of the parent process was \
         writing through it: its writer state is not usable in the child; open the index again in the child \
         (searches on the inherited handle still work)"
            .into(),
    )
}

impl Store {
    /// The writer state, locked ([`crate::par::lock_owned_by`]): `None` only in a `fork()`
    /// child whose parent had a thread inside a write call at the fork.
    pub(crate) fn writer_opt(&self) -> Option<MutexGuard<'_, writer::Writer>> {
        crate::par::lock_owned_by(&self.writer, self.pid)
    }

    /// [`Store::writer_opt`], or the error that says why it cannot be had.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, writer::Writer>> {
        self.writer_opt().ok_or_else(inherited_busy)
    }

    /// The first file of the current commit that was rewritten since this store read it (its
    /// stamp differs, [`stamps`], and its bytes no longer match the manifest's record),
    /// as `"<name> <how>"`; `None` when every file is as read, and in memory. A file *gone*
    /// is not a change here: a writer collects the files of older commits while readers still
    /// hold them open and mapped, unchanged (helper-93: a stale reader's KeyError for a
    /// deleted id was reported as files copied over the index). One `stat` per file: for
    /// explaining a failure (a search that met bytes its structure does not allow, because
    /// files were copied over the directory of the open index), not for every call.
    pub fn changed_file(&self) -> Option<String> {
        let dir = self.dir.as_ref()?;
        let c = self.stamps.changed(dir, &self.snapshot(), false)?;
        Some(format!("{} {}", c.name, c.how))
    }

    /// The directory still holds what this writer read or wrote: CURRENT's record of the
    /// manifest, and the size and modification time of every file of `snap` (its current
    /// snapshot; [`stamps`]). Else a [`Error::Conflict`] naming what changed: files were
    /// copied or restored into the directory while the index was open.
    fn check_unchanged(&self, w: &writer::Writer, dir: &Path, snap: &Snapshot) -> Result<()> {
        if let Some(m) = &w.manifest {
            check_current(dir, m)?;
        }
        if let Some(c) = self.stamps.changed(dir, snap, true) {
            return Err(Error::Conflict(format!(
                "{}: {} {} since this index read it: files were copied or restored into the directory while \
                 the index was open (nothing was committed; reopen the index to work on what the directory \
                 holds now)",
                dir.display(),
                c.name,
                c.how
            )));
        }
        Ok(())
    }

    /// Check, before a commit writes any file (the layer above calls it before writing a
    /// segment's documents; [`Store::write_prepared`] and the commit itself check again), that
    /// the directory still holds what this writer knows ([`Store::check_unchanged`]): a
    /// backup restored into the directory between `add` and `commit` may use the very segment
    /// name this commit is about to write, and writing it would damage the restored index
    /// (helper-90). A no-op for a store that is not the writer (its next write call reloads
    /// first) and in memory.
    pub fn check_directory(&self) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let w = self.writer()?;
        if !w.is_writer {
            return Ok(());
        }
        self.check_unchanged(&w, dir, &self.snapshot())
    }

    /// Run `f` holding the writer state (a test hook: as a thread inside a commit holds it).
    #[doc(hidden)]
    pub fn hold_writer_while<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _w = self.writer()?;
        Ok(f())
    }

    /// A new, empty store: in memory (`path` `None`) or in a directory that holds no index
    /// (it may hold our leftovers and the caller's `LOCK`; anything else is refused, so as not
    /// to write into someone else's directory). The caller holds the writer lock.
    pub fn create(path: Option<&Path>, config: StoreConfig) -> Result<Store> {
        let settings = new_settings(&config)?;
        let uuid = files::new_uuid();
        let snapshot = Arc::new(Snapshot {
            generation: 0,
            uuid: uuid.clone(),
            settings: Arc::new(settings.clone()),
            segments: Vec::new(),
            vocab: None,
            dir: path.map(|p| Arc::new(p.to_path_buf())),
        });
        let store = Store {
            dir: path.map(Path::to_path_buf),
            current: arc_swap::ArcSwap::new(snapshot),
            pid: std::process::id(),
            writer: Mutex::new(writer::Writer::new(settings, true, None)),
            next_segment: AtomicU64::new(1),
            inflight: Inflight::default(),
            staged_terms: Default::default(),
            stamps: Default::default(),
        };
        if let Some(dir) = path {
            check_creatable(dir)?;
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating directory {}", dir.display()), e))?;
            let (seg, _) = gc::scan_numbers(dir);
            store.next_segment.fetch_max(seg.map_or(1, |s| s + 1), Ordering::Relaxed);
        }
        let mut w = lock(&store.writer);
        store.write_commit(&mut w, Vec::new(), None)?.1?;
        drop(w);
        Ok(store)
    }

    /// Open the committed state of the store in directory `path` to read it (no lock is
    /// needed; a write call makes it a writer, see [`Store::begin_write`]).
    pub fn open(path: &Path) -> Result<Store> {
        let l = load::load(path, None)?;
        let stamps = stamps::Stamps::default();
        stamps.adopt(path, &l.snapshot);
        Ok(Store {
            dir: Some(path.to_path_buf()),
            next_segment: AtomicU64::new(l.manifest.settings.next_segment),
            writer: Mutex::new(writer::Writer::new(
                l.manifest.settings.clone(),
                false,
                Some(l.current.manifest.clone()),
            )),
            current: arc_swap::ArcSwap::from_pointee(attach_calibrations(l.snapshot)),
            pid: std::process::id(),
            inflight: Inflight::default(),
            staged_terms: Default::default(),
            stamps,
        })
    }

    /// The directory (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The current snapshot (cheap; holds the segments it names for as long as it lives).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Move to the newest commit in the directory; true if there was a newer one. Refused
    /// while changes are staged.
    pub fn refresh(&self) -> Result<bool> {
        let Some(dir) = &self.dir else { return Ok(false) };
        let mut w = self.writer()?;
        if w.has_staged() {
            return Err(Error::Conflict("refresh() with uncommitted changes: commit or roll back first".into()));
        }
        let changed = self.reload(&mut w, dir)?;
        // calibration files rewritten by another handle or process (a calibrate(queries)
        // there): taken, or a server's handle kept its old calibration until it reopened
        for s in self.snapshot().segments() {
            crate::search::approx::persist::follow(s.index());
        }
        Ok(changed)
    }

    fn reload(&self, w: &mut writer::Writer, dir: &Path) -> Result<bool> {
        let old = self.snapshot();
        let mut l = load::load(dir, Some(&old))?;
        // A file this store read was replaced under the same name since (a backup copied over
        // the directory, helper-88): the segments the load reused from `old` map other bytes
        // now (or older ones, where the copy renamed new files in). Load the commit afresh,
        // every file verified against its record.
        let rewritten = self.stamps.changed(dir, &l.snapshot, true).is_some();
        if rewritten {
            l = load::load(dir, None)?;
            self.stamps.clear();
        }
        // The same manifest name and generation in another index (the directory deleted and
        // written again, or a symbolic link switched to an index built elsewhere) is a move:
        // comparing names and generations alone kept a reader on the replaced index.
        // A copy of the index (`cp -r`, the same uuid) updated apart and switched in by a
        // symbolic link may even share the generation: the files decide, every one the
        // manifest records (two writers adding the same vectors write byte-identical engine
        // files; their documents files or vocabularies still differ).
        let same_files = l.snapshot.segments.len() == old.segments.len()
            && l.snapshot.segments.iter().zip(&old.segments).all(|(a, b)| {
                a.name() == b.name()
                    && a.data.sdx == b.data.sdx
                    && a.data.attachments == b.data.attachments
                    && a.deletions == b.deletions
            })
            && l.snapshot.settings == old.settings;
        if !rewritten
            && w.manifest.as_ref().is_some_and(|m| m.name == l.current.manifest.name)
            && l.snapshot.generation == old.generation
            && l.snapshot.uuid == old.uuid
            && same_files
        {
            return Ok(false);
        }
        self.next_segment.fetch_max(l.manifest.settings.next_segment, Ordering::Relaxed);
        w.settings = l.manifest.settings.clone();
        w.manifest = Some(l.current.manifest.clone());
        self.stamps.adopt(dir, &l.snapshot);
        self.current.store(Arc::new(attach_calibrations(l.snapshot)));
        Ok(true)
    }

    /// Become the writer (the caller has just taken the writer lock): catch up with commits
    /// made meanwhile, make sure no name a crashed writer used is reused, and collect garbage.
    /// Every write call does this first; it is a no-op for a writer.
    pub fn begin_write(&self) -> Result<()> {
        let mut w = self.writer()?;
        self.begin(&mut w)
    }

    fn begin(&self, w: &mut writer::Writer) -> Result<()> {
        if w.is_writer {
            return Ok(());
        }
        if let Some(dir) = &self.dir {
            self.reload(w, dir)?;
            let (seg, _) = gc::scan_numbers(dir);
            self.next_segment.fetch_max(seg.map_or(1, |s| s + 1), Ordering::Relaxed);
            self.collect(dir);
        }
        w.is_writer = true;
        Ok(())
    }

    /// Stop being the writer (the caller is about to release the writer lock): staged changes
    /// are dropped, and the next write call catches up again.
    pub fn end_write(&self) {
        // a fork() child whose parent was writing at the fork never held the write (writes
        // are the parent's): nothing to end
        let Some(mut w) = self.writer_opt() else { return };
        w.rollback();
        if let Some(mut t) = crate::par::lock_owned_by(&self.staged_terms.0, self.pid) {
            *t = None;
        }
        if self.dir.is_some() {
            w.is_writer = false;
        }
    }

    /// Stage `terms`, the term texts of ids `first ..`, to be appended to the vocabulary file
    /// by the next commit (a writer call; replaces terms staged before). `first` must be the
    /// number of committed terms ([`Snapshot::vocabulary_len`]): terms are only ever appended.
    /// A store without a vocabulary file gets one (`vocab-<G>`) at the commit. In memory the
    /// terms are not kept (the layer above keeps them; a save is given them).
    pub fn stage_terms(&self, first: u64, terms: Vec<String>) -> Result<()> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        let have = w.settings.vocabulary.as_ref().map_or(0, |v| v.n_terms);
        if first != have {
            return Err(Error::Conflict(format!(
                "terms staged from id {first}, but the index has {have} committed terms (the vocabulary is append-only)"
            )));
        }
        *lock(&self.staged_terms.0) = (!terms.is_empty()).then_some((first, terms));
        Ok(())
    }

    /// Collect garbage now (a writer call).
    pub fn collect_garbage(&self) -> Result<()> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        if let Some(dir) = &self.dir {
            self.collect(dir);
        }
        Ok(())
    }

    fn collect(&self, dir: &Path) -> usize {
        let snap = self.snapshot();
        let mut keep: HashSet<String> = [files::CURRENT.to_string(), files::LOCK.to_string()].into();
        keep.insert(manifest_name(snap.generation));
        keep.extend(snap.settings.vocabulary.iter().map(|v| v.file.name.clone()));
        for s in &snap.segments {
            keep.extend(s.data.sdx.iter().chain(&s.data.attachments).chain(&s.deletions).map(|r| r.name.clone()));
            keep.insert(crate::search::approx::persist::file_name(s.name())); // its calibration, if any
        }
        gc::collect(dir, &keep, &self.inflight.names())
    }

    /// Check an attachment's CRC32 against the manifest's record (the layer above calls this
    /// the first time it opens one). Errors if the current snapshot has no such attachment.
    pub fn verify_attachment(&self, name: &str) -> Result<()> {
        let dir =
            self.dir.as_ref().ok_or_else(|| Error::InvalidArgument("an in-memory store has no attachments".into()))?;
        let snap = self.snapshot();
        let rec = snap
            .segments
            .iter()
            .flat_map(|s| s.data.attachments.iter())
            .find(|a| a.name == name)
            .ok_or_else(|| Error::NotFound(format!("no attachment named {name:?} in the current commit")))?;
        rec.verify(dir, "an attachment")
    }

    /// A fresh segment name, in flight until the guard drops.
    pub(crate) fn new_segment(&self) -> (String, InflightGuard) {
        let n = self.next_segment.fetch_add(1, Ordering::Relaxed);
        let name = files::segment_name(n);
        let guard = self.inflight.hold(&name);
        (name, guard)
    }

    /// Commit `states` (and `settings`, when given) as the next generation: deletion files
    /// for states that changed, the manifest, CURRENT; then publish the snapshot and collect
    /// garbage. New segments' engine files and attachments must already be written, fsynced
    /// and renamed into place: the directory sync after the manifest's rename makes those
    /// renames durable before CURRENT names the manifest. Nothing
    /// changes in memory unless the commit point (the rename of CURRENT) is reached. Returns
    /// the generation and, separately, the result of the final directory sync: an error there
    /// means the commit is done and visible but its durability is not confirmed.
    pub(crate) fn write_commit(
        &self,
        w: &mut writer::Writer,
        mut states: Vec<SegmentState>,
        settings: Option<Settings>,
    ) -> Result<(u64, Result<()>)> {
        let old = self.snapshot();
        let generation = old.generation + 1;
        let mut settings = settings.unwrap_or_else(|| w.settings.clone());
        settings.next_segment = self.next_segment.load(Ordering::Relaxed);
        // Held until the commit point: staged terms stay staged if the commit fails.
        let mut staged_terms = lock(&self.staged_terms.0);
        let mut vocab = old.vocab.clone();
        if let Some(dir) = &self.dir {
            self.check_unchanged(w, dir, &old)?;
            if let Some((first, terms)) = staged_terms.as_ref() {
                let rec = match &settings.vocabulary {
                    Some(v) if v.n_terms == *first => vocab::append(dir, v, &old.uuid, terms)?,
                    None if *first == 0 => vocab::write_new(dir, &vocab::vocab_name(generation), &old.uuid, terms)?,
                    v => {
                        return Err(Error::Conflict(format!(
                            "terms staged from id {first}, but the index has {} committed terms",
                            v.as_ref().map_or(0, |v| v.n_terms)
                        )))
                    }
                };
                vocab = Some(Arc::new(vocab::VocabHandle::open(dir, &rec)?));
                settings.vocabulary = Some(rec);
            }
            let mut recs = Vec::with_capacity(states.len());
            for s in states.iter_mut() {
                if let (Some(del), None) = (&s.deleted, &s.deletions) {
                    let name = files::deletions_name(s.name(), generation);
                    let bytes = segment::encode_deletions(&old.uuid, s.name(), generation, s.index().n_docs(), del)?;
                    crate::fs::write_atomically(&dir.join(&name), &bytes)?;
                    s.deletions = Some(Rec::of_bytes(&name, &bytes));
                }
                recs.push(SegmentRecord {
                    name: s.name().to_string(),
                    n_docs: s.index().n_docs(),
                    n_live: s.n_live,
                    sdx: s
                        .data
                        .sdx
                        .clone()
                        .ok_or_else(|| Error::Conflict(format!("segment {} has no file", s.name())))?,
                    deletions: s.deletions.clone(),
                    attachments: s.data.attachments.clone(),
                });
            }
            let m = Manifest { generation, uuid: old.uuid.clone(), settings: settings.clone(), segments: recs };
            let mname = manifest_name(generation);
            let bytes = m.encode()?;
            crate::fs::write_atomically(&dir.join(&mname), &bytes)?;
            let cur = Current { manifest: Rec::of_bytes(&mname, &bytes), generation, uuid: old.uuid.clone() };
            crate::fs::replace(&dir.join(files::CURRENT), &cur.encode()?)?; // the commit point
            w.manifest = Some(cur.manifest.clone());
        }
        *staged_terms = None;
        drop(staged_terms);
        w.settings = settings.clone();
        let mut snap = Snapshot {
            generation,
            uuid: old.uuid.clone(),
            settings: Arc::new(settings),
            segments: states,
            vocab,
            dir: self.dir.clone().map(Arc::new),
        };
        snap = attach_calibrations(snap);
        if let Some(dir) = &self.dir {
            self.stamps.adopt(dir, &snap);
        }
        self.current.store(Arc::new(snap));
        let mut synced = Ok(());
        if let Some(dir) = &self.dir {
            synced = crate::fs::sync_dir(dir);
            self.collect(dir);
        }
        Ok((generation, synced))
    }
}

/// The settings of a new store, checked.
fn new_settings(c: &StoreConfig) -> Result<Settings> {
    let scale = match c.max_weight {
        None => None,
        Some(_) if c.quantization != StoreQuantization::U8 || c.bm25.is_some() => {
            return Err(Error::InvalidArgument("max_weight only applies to u8 stores of weights (not BM25)".into()))
        }
        Some(m) if m.is_finite() && m > 0.0 => Some(255.0 / m),
        Some(m) => return Err(Error::InvalidArgument(format!("max_weight must be a positive number, got {m}"))),
    };
    if c.vocab == Some(0) {
        return Err(Error::InvalidArgument("the vocabulary size must be at least 1".into()));
    }
    if let Some((k1, b)) = c.bm25 {
        crate::index::Bm25Params { k1, b, quantized: false }.check()?;
    }
    c.reorder.check()?;
    Ok(Settings {
        quantization: c.quantization,
        scale,
        vocab: c.vocab,
        bm25: c.bm25,
        next_segment: 1,
        next_int_id: 0,
        id_kind: manifest::IdKind::Unknown,
        json: c.settings_json.clone(),
        reorder: c.reorder,
        vocabulary: None,
    })
}

/// A directory a new store may be created in: absent, or holding only our files and LOCK,
/// and no CURRENT.
fn check_creatable(dir: &Path) -> Result<()> {
    let exists = |msg: String| Error::io(msg, std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    if dir.exists() && !dir.is_dir() {
        return Err(exists(format!("{} exists and is not a directory", dir.display())));
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == files::CURRENT {
            return Err(exists(format!("{} already holds an index: open it instead", dir.display())));
        }
        if name != files::LOCK && files::ours(&name).is_none() {
            return Err(exists(format!(
                "{} is not empty and not a sparsedex index ({name:?} is there): choose an empty or new directory",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// CURRENT still names `manifest`, the very file (nobody else committed, and no copy of an
/// index replaced CURRENT: a backup's CURRENT may name a manifest of the same name).
fn check_current(dir: &Path, manifest: &Rec) -> Result<()> {
    let raw = load::read_current_bytes(dir)?;
    let cur = load::parse_current(dir, raw.as_deref())?;
    if cur.manifest.name != manifest.name {
        return Err(Error::Conflict(format!(
            "{}: {CURRENT} names {}, not the {} this index read: another writer committed meanwhile (hold the \
             writer lock around every write), or a copy of an index was restored into the directory while it was \
             open; nothing was committed: reopen the index to work on what the directory holds now",
            dir.display(),
            cur.manifest.name,
            manifest.name,
            CURRENT = files::CURRENT
        )));
    }
    if cur.manifest != *manifest {
        return Err(Error::Conflict(format!(
            "{}: {CURRENT} was replaced since this index read it (it names another {}: a copy of an index \
             restored into the directory while it was open?); nothing was committed: reopen the index to work \
             on what the directory holds now",
            dir.display(),
            manifest.name,
            CURRENT = files::CURRENT
        )));
    }
    Ok(())
}
