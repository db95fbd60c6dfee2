//! `_core.Store` and `_core.Snapshot`: the segment lifecycle of an index (in memory or in a
//! directory). The store does not lock: the caller holds the directory's writer lock (the
//! `LOCK` file) around every write call (see `Store`'s docstring).

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedex_core::search::DocSet;
use sparsedex_core::search::QueryRef;
use sparsedex_core::store::{
    IdKind, Location, MergePolicy, PreparedMerge, PreparedSave, Reservation, Snapshot, Store, StoreConfig,
    StoreQuantization,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::convert::{csr, id_of, ids_input, matrices, slice, Pairs, PyBm25Stats, ReorderArg, SegHits1, SegHits2};
use crate::error::{enter, enter_long, enter_search, ConflictError};
use crate::index::PyIndex;
use crate::segments::PyDocSet;

/// An index's segments, deletions and commits, in memory (`path=None`) or in a directory.
///
/// Reads (`snapshot()`, `refresh()`) take no lock. Every write call (`begin_write`,
/// `stage_add`, `stage_delete`, `prepare_commit`, `finish_commit`, `finish_merge`,
/// `collect_garbage`) must be made while holding the directory's writer lock (a `LOCK` file
/// in it, e.g. `filelock.FileLock(path / "LOCK")`); `end_write()` before releasing it.
/// `merge()` needs no lock. A commit is made in two steps: `prepare_commit()` builds the
/// staged documents into a segment and gives its name and document order, the caller writes
/// its own files `<name>.<ext>` (attachments) in that order, and `finish_commit(attachments)`
/// makes everything durable and visible at once.
#[pyclass(frozen, name = "Store", module = "sparsedex._core")]
pub struct PyStore {
    inner: Arc<Store>,
}

/// A commit of a store: immutable, safe to search from many threads.
#[pyclass(frozen, name = "Snapshot", module = "sparsedex._core")]
pub struct PySnapshot {
    inner: Arc<Snapshot>,
}

/// A merged segment built from a snapshot (`Store.merge`), waiting for `Store.finish_merge`.
#[pyclass(frozen, name = "PreparedMerge", module = "sparsedex._core")]
pub struct PyPreparedMerge {
    inner: Mutex<Option<PreparedMerge>>,
    name: String,
    members: Vec<String>,
}

/// A segment name reserved for a merge (`Store.reserve_segment`): files `<name>.<ext>` are
/// not collected while it is held; `Store.merge(names, reserved=...)` merges into it.
/// Dropping it unused releases the name.
#[pyclass(frozen, name = "Reservation", module = "sparsedex._core")]
pub struct PyReservation {
    inner: Mutex<Option<Reservation>>,
    name: String,
}

#[pymethods]
impl PyReservation {
    /// The reserved segment name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A copy being saved (`Store.prepare_save`), waiting for `Store.finish_save`.
#[pyclass(frozen, name = "PreparedSave", module = "sparsedex._core")]
pub struct PyPreparedSave {
    inner: Mutex<Option<PreparedSave>>,
    names: Vec<(String, String)>,
    dest: PathBuf,
}

/// A segment's calibration on queries, made (`Snapshot.calibrate(..., apply=False)`) but not
/// yet its calibration (`Snapshot.apply_calibration`): a calibration on queries replaces every
/// segment's or none (helper-153: a refusal in one segment left the segments before it
/// recalibrated).
#[pyclass(frozen, name = "PendingCalibration", module = "sparsedex._core")]
pub struct PyPendingCalibration {
    inner: Mutex<Option<sparsedex_core::search::approx::calibrate::Calibration>>,
}

fn taken<T>(m: &Mutex<Option<T>>, what: &str) -> PyResult<T> {
    m.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| ConflictError::new_err(format!("this {what} was already finished")))
}

fn filter_sets(f: &Option<Vec<Option<Bound<'_, PyDocSet>>>>) -> Option<Vec<Option<DocSet>>> {
    f.as_ref().map(|v| v.iter().map(|a| a.as_ref().map(|d| d.get().inner.clone())).collect())
}

#[pymethods]
impl PyStore {
    /// A new, empty store: in memory (`path=None`) or in a directory holding no index (it may
    /// hold the caller's `LOCK`; other files are refused: FileExistsError). `quantization`:
    /// "u8" or "float". `max_weight` (u8): fixes the shared scale 255 / max_weight (default:
    /// the first commit's largest weight). `vocab_size`: term ids must be below it. `bm25`:
    /// (k1, b) for a store of term-frequency vectors scored as BM25. `settings_json`: opaque
    /// settings of the layer above, kept in every commit. `reorder`: the document order of
    /// every segment the store builds, at commit and at merge, as in `Index.build` (kept in the
    /// store).
    #[staticmethod]
    #[pyo3(signature = (path=None, *, quantization="u8", max_weight=None, vocab_size=None, bm25=None, settings_json="{}", reorder=ReorderArg::Bool(true)),
        text_signature = "(path=None, *, quantization='u8', max_weight=None, vocab_size=None, bm25=None, settings_json='{}', reorder=True)")]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        path: Option<PathBuf>,
        quantization: &str,
        max_weight: Option<f32>,
        vocab_size: Option<u32>,
        bm25: Option<(f32, f32)>,
        settings_json: &str,
        reorder: ReorderArg,
    ) -> PyResult<Self> {
        let quantization = match quantization {
            "u8" => StoreQuantization::U8,
            "float" | "f32" => StoreQuantization::F32,
            other => return Err(PyValueError::new_err(format!("quantization must be 'u8' or 'float', got '{other}'"))),
        };
        let config = StoreConfig {
            quantization,
            max_weight,
            vocab: vocab_size,
            bm25,
            settings_json: settings_json.to_string(),
            reorder: reorder.parse()?,
        };
        let store = enter(py, || Store::create(path.as_deref(), config))?;
        Ok(PyStore { inner: Arc::new(store) })
    }

    /// Open the committed state of the store in directory `path` (no lock needed to read).
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = enter(py, || Store::open(&path))?;
        Ok(PyStore { inner: Arc::new(store) })
    }

    /// The directory (None in memory).
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.inner.path().map(|p| p.to_path_buf())
    }

    /// The current snapshot.
    fn snapshot(&self) -> PySnapshot {
        PySnapshot { inner: self.inner.snapshot() }
    }

    /// Move to the newest commit; True if there was a newer one (ConflictError while changes
    /// are staged).
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let s = self.inner.clone();
        enter(py, move || s.refresh())
    }

    /// Become the writer (just after taking the writer lock): catch up with other writers'
    /// commits and collect garbage. Every write call does this first.
    fn begin_write(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.inner.clone();
        enter(py, move || s.begin_write())
    }

    /// Stop being the writer (just before releasing the writer lock): staged changes are
    /// dropped.
    fn end_write(&self) {
        self.inner.end_write()
    }

    /// Stage documents (CSR arrays; errors name the document) with their ids (`ids_int` int64
    /// or `ids_str`; none: automatic integer ids), and BM25 lengths `doc_len` (uint32; default:
    /// the sums of the term frequencies). Without `replace` an id already in the index is a
    /// ValueError; with it, the old document is deleted (upsert). Returns the staged rows
    /// (start, stop) of the documents.
    #[pyo3(signature = (indptr, indices, values, *, ids_int=None, ids_str=None, doc_len=None, replace=false))]
    #[allow(clippy::too_many_arguments)]
    fn stage_add(
        &self,
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, u64>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
        ids_int: Option<PyReadonlyArray1<'_, i64>>,
        ids_str: Option<Vec<String>>,
        doc_len: Option<PyReadonlyArray1<'_, u32>>,
        replace: bool,
    ) -> PyResult<(u32, u32)> {
        let docs = csr(&indptr, &indices, &values)?;
        let ii = match &ids_int {
            Some(a) => Some(slice(a, "ids_int")?),
            None => None,
        };
        let lens = match &doc_len {
            Some(a) => Some(slice(a, "doc_len")?),
            None => None,
        };
        let ids = ids_input(ii, ids_str.as_deref())?;
        let s = &self.inner;
        let r = enter(py, || s.stage_add(docs, ids, lens, replace))?;
        Ok((r.start, r.end))
    }

    /// Stage the deletion of the live documents with these ids (`ids_int` or `ids_str`);
    /// KeyError for an id that is not there unless `missing_ok`. Returns how many will go.
    #[pyo3(signature = (*, ids_int=None, ids_str=None, missing_ok=false))]
    fn stage_delete(
        &self,
        py: Python<'_>,
        ids_int: Option<PyReadonlyArray1<'_, i64>>,
        ids_str: Option<Vec<String>>,
        missing_ok: bool,
    ) -> PyResult<u64> {
        let ii = match &ids_int {
            Some(a) => Some(slice(a, "ids_int")?),
            None => None,
        };
        let ids = ids_input(ii, ids_str.as_deref())?;
        let s = &self.inner;
        enter(py, || s.stage_delete(ids, missing_ok))
    }

    /// Where the live document `id` (int or str) is, as the writer sees it:
    /// ("staged", row, -1), ("committed", segment position, internal doc), or None.
    fn locate(&self, id: &Bound<'_, PyAny>) -> PyResult<Option<(&'static str, u32, i64)>> {
        let id = id_of(id)?;
        Ok(self.inner.locate(id.as_id()).map(|l| match l {
            Location::Staged(row) => ("staged", row, -1),
            Location::Committed { segment, doc } => ("committed", segment as u32, doc as i64),
        }))
    }

    /// The first file of the current commit rewritten or removed since this store read it
    /// (`"<name> <how>"`), or None.
    fn changed_file(&self, py: Python<'_>) -> Option<String> {
        let s = &self.inner;
        enter(py, || Ok(s.changed_file())).ok().flatten()
    }

    /// Check, before a commit writes any file, that the directory still holds what this
    /// writer read (CURRENT, and the size and modification time of every file): a
    /// ConflictError naming what changed.
    fn check_directory(&self, py: Python<'_>) -> PyResult<()> {
        let s = &self.inner;
        enter(py, || s.check_directory())
    }

    /// Test hook: call `held()` then `wait()` while holding the store's writer state, as a
    /// thread inside a commit does (tests/test_fork.py forks meanwhile).
    fn _hold_writer_for_test(&self, held: &Bound<'_, PyAny>, wait: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .hold_writer_while(|| -> PyResult<()> {
                held.call0()?;
                wait.call0()?;
                Ok(())
            })
            .map_err(crate::error::to_py)?
    }

    /// Whether changes are staged (or a commit prepared).
    fn has_staged(&self) -> bool {
        self.inner.has_staged()
    }

    /// The next automatic integer id.
    fn next_int_id(&self) -> i64 {
        self.inner.next_int_id()
    }

    /// Stage a raise of the next automatic integer id to at least `next` (a writer call;
    /// ValueError for a negative `next`).
    fn reserve_int_ids(&self, py: Python<'_>, next: i64) -> PyResult<()> {
        let s = &self.inner;
        enter(py, move || s.reserve_int_ids(next))
    }

    /// Forget the staged changes (and a prepared commit).
    fn rollback(&self) {
        self.inner.rollback()
    }

    /// Let go of the files the store holds (its snapshot becomes empty): for `close()`.
    fn release(&self) {
        self.inner.release()
    }

    /// Build the staged documents into a segment: (name, order uint32 with
    /// order[internal_doc] = staged row, coarse), or None when no document is staged. Write the
    /// segment's attachments `<name>.<ext>` in that order, then `finish_commit`. `coarse` is
    /// None, or, for a u8 segment whose 8-bit grid leaves 99.9% of its weights on impacts of at
    /// most 4, (staged row holding its largest weight, that weight, the grid's scale, whether
    /// the grid is the segment's own, the 99.9th-percentile impact, the number of weights).
    #[allow(clippy::type_complexity)]
    fn prepare_commit<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(String, Bound<'py, PyArray1<u32>>, Option<(u32, f32, f32, bool, u8, u64)>)>> {
        let s = &self.inner;
        let p = enter_long(py, || s.prepare_commit())?;
        Ok(p.map(|p| {
            let coarse = p.coarse.map(|c| (c.row, c.weight, c.scale, c.own, c.top_impact, c.weights));
            (p.name, p.order.into_pyarray(py), coarse)
        }))
    }

    /// Write the prepared segment's engine file now (fsynced, under a name no manifest lists
    /// yet; the interpreter is released), so that its attachments can be written meanwhile in
    /// another thread; `finish_commit` then records it instead of writing it. A no-op in
    /// memory, when the prepared commit adds no segment, or when written already. OSError naming
    /// the file when it cannot be written; ConflictError when no commit is prepared.
    fn write_prepared(&self, py: Python<'_>) -> PyResult<()> {
        let s = &self.inner;
        enter(py, || s.write_prepared())
    }

    /// Commit the staged changes (preparing them if `prepare_commit` was not called) with the
    /// attachments of the new segment (file names in the directory), replacing the opaque
    /// settings if `settings_json` is given. Returns the new generation (unchanged if there
    /// was nothing to commit).
    #[pyo3(signature = (attachments=Vec::new(), settings_json=None))]
    fn finish_commit(&self, py: Python<'_>, attachments: Vec<String>, settings_json: Option<String>) -> PyResult<u64> {
        let s = &self.inner;
        enter(py, || s.finish_commit(&attachments, settings_json.as_deref()))
    }

    /// Stage the term texts of ids `first ..` to be appended to the index's vocabulary file
    /// (`vocab-<G>`) by the next commit, replacing terms staged before. `first` must be the
    /// number of committed terms (`Snapshot.settings()["vocabulary_terms"]`, 0 without a
    /// file): the vocabulary is append-only. In memory the terms are not kept.
    fn stage_terms(&self, py: Python<'_>, first: u64, terms: Vec<String>) -> PyResult<()> {
        let s = &self.inner;
        enter(py, move || s.stage_terms(first, terms))
    }

    /// The merges the tiered policy plans: groups of segment names (see MergePolicy).
    #[pyo3(signature = (factor=10, floor_docs=1000, max_deleted=0.5))]
    fn plan_merges(&self, factor: u32, floor_docs: u64, max_deleted: f64) -> Vec<Vec<String>> {
        self.inner.plan_merges(&MergePolicy { factor, floor_docs, max_deleted })
    }

    /// The segments to merge so that at most `max_segments` remain (smallest first; the single
    /// segment if it has deletions and `max_segments` is 1); empty if none.
    fn plan_merge_to(&self, max_segments: usize) -> Vec<String> {
        self.inner.plan_merge_to(max_segments)
    }

    /// Merge the live documents of segments `names` into one segment and write it (no lock
    /// needed; heavy work, the interpreter is released). Install it with `finish_merge`.
    /// `reserved`: the segment name to merge into (`reserve_segment`; used up).
    #[pyo3(signature = (names, reserved=None))]
    fn merge(&self, py: Python<'_>, names: Vec<String>, reserved: Option<&PyReservation>) -> PyResult<PyPreparedMerge> {
        let s = &self.inner;
        let r = reserved.map(|r| taken(&r.inner, "reservation")).transpose()?;
        let p = enter_long(py, || match r {
            Some(r) => s.merge_reserved(&names, r),
            None => s.merge(&names),
        })?;
        Ok(PyPreparedMerge { name: p.name.clone(), members: p.members.clone(), inner: Mutex::new(Some(p)) })
    }

    /// Reserve a fresh segment name for a merge, so that its attachments can be written while
    /// the merge runs (see `Reservation`).
    fn reserve_segment(&self) -> PyReservation {
        let r = self.inner.reserve_segment();
        PyReservation { name: r.name.clone(), inner: Mutex::new(Some(r)) }
    }

    /// The origin a merge of segments `names` that concatenates them would have now: (member
    /// position uint32, member's internal doc uint32) of every live document, members in the
    /// order given. `merge` gives this order unless deletions come meanwhile or the segment
    /// must be rebuilt: compare with `PreparedMerge.origin()`. KeyError if a segment is not
    /// in the current commit.
    fn concat_origin<'py>(&self, py: Python<'py>, names: Vec<String>) -> PyResult<Pairs<'py>> {
        let s = &self.inner;
        let o = enter(py, || s.concat_origin(&names))?;
        let (a, b): (Vec<u32>, Vec<u32>) = o.into_iter().unzip();
        Ok((a.into_pyarray(py), b.into_pyarray(py)))
    }

    /// Segments waiting for a reorder job (in their merged members' order, at least
    /// BP_MIN_DOCS live documents), largest first; empty when the store does not reorder.
    fn plan_reorders(&self) -> Vec<String> {
        self.inner.plan_reorders()
    }

    /// A reorder job: rebuild segment `name` in the store's document order (no lock needed;
    /// the interpreter is released). Install it with `finish_merge`, like a merge.
    fn reorder(&self, py: Python<'_>, name: String) -> PyResult<PyPreparedMerge> {
        let s = &self.inner;
        let p = enter_long(py, || s.reorder(&name))?;
        Ok(PyPreparedMerge { name: p.name.clone(), members: p.members.clone(), inner: Mutex::new(Some(p)) })
    }

    /// Install a prepared merge (with its attachments), keeping deletions made meanwhile.
    /// Returns the new generation, or None if a member was merged away meanwhile.
    #[pyo3(signature = (prepared, attachments=Vec::new()))]
    fn finish_merge(
        &self,
        py: Python<'_>,
        prepared: &PyPreparedMerge,
        attachments: Vec<String>,
    ) -> PyResult<Option<u64>> {
        let p = taken(&prepared.inner, "merge")?;
        let s = &self.inner;
        enter(py, || s.finish_merge(p, &attachments))
    }

    /// Drop a prepared merge that will not be installed and remove the engine file it wrote
    /// (not the caller's attachments), rather than leave it to the next commit's collection.
    /// Nothing if it was installed or dropped already.
    fn abandon_merge(&self, py: Python<'_>, prepared: &PyPreparedMerge) -> PyResult<()> {
        let p = prepared.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        let s = &self.inner;
        match p {
            Some(p) => enter(py, || s.abandon_merge(p)),
            None => Ok(()),
        }
    }

    /// Save the committed state into directory `dest` (whose writer lock the caller holds)
    /// under fresh names; the previous save there stays whole until the new one is committed.
    /// Returns the destination's generation.
    fn save_copy(&self, py: Python<'_>, dest: PathBuf) -> PyResult<u64> {
        let s = &self.inner;
        enter(py, || s.save_copy(&dest))
    }

    /// The first step of `save_copy`: every file but the commit, for `snapshot` (default: the
    /// current one). An in-memory store's caller, or any caller with `copy_attachments=False`,
    /// then writes the attachments of the copy itself (`PreparedSave.names()`).
    #[pyo3(signature = (dest, snapshot=None, copy_attachments=true))]
    fn prepare_save(
        &self,
        py: Python<'_>,
        dest: PathBuf,
        snapshot: Option<&PySnapshot>,
        copy_attachments: bool,
    ) -> PyResult<PyPreparedSave> {
        let s = &self.inner;
        let snap = snapshot.map(|x| x.inner.clone());
        let p = enter(py, || s.prepare_save_of(&dest, snap.unwrap_or_else(|| s.snapshot()), copy_attachments))?;
        Ok(PyPreparedSave { names: p.names(), dest: p.dest().to_path_buf(), inner: Mutex::new(Some(p)) })
    }

    /// Commit a prepared save, with the caller's attachments (file names in the destination).
    /// The copy's vocabulary file holds `terms` when given (an in-memory store's), otherwise
    /// the source's committed vocabulary, if any.
    #[pyo3(signature = (prepared, attachments=Vec::new(), settings_json=None, terms=None))]
    fn finish_save(
        &self,
        py: Python<'_>,
        prepared: &PyPreparedSave,
        attachments: Vec<String>,
        settings_json: Option<String>,
        terms: Option<Vec<String>>,
    ) -> PyResult<u64> {
        let p = taken(&prepared.inner, "save")?;
        let s = &self.inner;
        enter(py, || s.finish_save(p, &attachments, settings_json.as_deref(), terms.as_deref()))
    }

    /// Check an attachment's CRC32 against the commit's record (CorruptIndexError if it
    /// differs; call it the first time the attachment is opened).
    fn verify_attachment(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let s = &self.inner;
        enter(py, || s.verify_attachment(&name))
    }

    /// Remove the store's own files no commit references (a writer call).
    fn collect_garbage(&self, py: Python<'_>) -> PyResult<()> {
        let s = &self.inner;
        enter(py, || s.collect_garbage())
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

#[pymethods]
impl PyPreparedMerge {
    /// The merged segment's name (attachments are `<name>.<ext>`).
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The names of the merged segments.
    #[getter]
    fn members(&self) -> Vec<String> {
        self.members.clone()
    }

    /// Where each merged document came from: (member position uint32, member's internal doc
    /// uint32), by internal doc of the merged segment.
    fn origin<'py>(&self, py: Python<'py>) -> PyResult<Pairs<'py>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let p = g.as_ref().ok_or_else(|| ConflictError::new_err("this merge was already finished"))?;
        let (a, b): (Vec<u32>, Vec<u32>) = p.origin.iter().copied().unzip();
        Ok((a.into_pyarray(py), b.into_pyarray(py)))
    }
}

#[pymethods]
impl PyPreparedSave {
    /// (source segment, destination segment) names, in order.
    fn names(&self) -> Vec<(String, String)> {
        self.names.clone()
    }

    /// The destination directory.
    #[getter]
    fn dest(&self) -> PathBuf {
        self.dest.clone()
    }
}

impl PySnapshot {
    fn segment(&self, pos: usize) -> PyResult<&sparsedex_core::store::SegmentState> {
        self.inner.segments().get(pos).ok_or_else(|| {
            PyIndexError::new_err(format!("segment {pos} is out of range ({} segments)", self.inner.segments().len()))
        })
    }
}

#[pymethods]
impl PySnapshot {
    /// The commit's generation.
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The directory this commit was read from, its symbolic links resolved (None in
    /// memory): the layer above opens the commit's own files (documents) there.
    #[getter]
    fn directory(&self) -> Option<std::path::PathBuf> {
        self.inner.dir().map(|d| d.to_path_buf())
    }

    /// The store id.
    #[getter]
    fn uuid(&self) -> String {
        self.inner.uuid().to_string()
    }

    /// Number of live documents.
    fn __len__(&self) -> usize {
        self.inner.n_live() as usize
    }

    /// The store's settings as of this commit: quantization, scale, vocab_size, bm25,
    /// next_int_id, id_kind ("int", "str" or None), settings_json, reorder ("bp",
    /// "signature" or "none"), vocabulary_terms, vocabulary_file and vocabulary_bytes (the
    /// vocabulary file's committed terms, name and committed length; None without one).
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.settings();
        let d = PyDict::new(py);
        d.set_item("quantization", if s.quantization == StoreQuantization::U8 { "u8" } else { "float" })?;
        d.set_item("scale", s.scale)?;
        d.set_item("vocab_size", s.vocab)?;
        d.set_item("bm25", s.bm25)?;
        d.set_item("next_int_id", s.next_int_id)?;
        d.set_item(
            "id_kind",
            match s.id_kind {
                IdKind::Unknown => None,
                IdKind::Int => Some("int"),
                IdKind::Str => Some("str"),
            },
        )?;
        d.set_item("settings_json", &s.json)?;
        d.set_item("reorder", s.reorder.name())?;
        d.set_item("vocabulary_terms", s.vocabulary.as_ref().map(|v| v.n_terms))?;
        d.set_item("vocabulary_file", s.vocabulary.as_ref().map(|v| v.file.name.clone()))?;
        d.set_item("vocabulary_bytes", s.vocabulary.as_ref().map(|v| v.file.size))?;
        d.set_item("vocabulary_crc32", s.vocabulary.as_ref().map(|v| v.file.crc32))?;
        Ok(d)
    }

    /// The committed term texts with ids `start ..` from the index's vocabulary file (empty
    /// without one), read through the handle opened with this commit; CorruptIndexError naming
    /// the file if it is truncated or its checksum differs from the manifest's.
    /// Whether this commit's vocabulary begins with the one recorded as (`file`, `size`,
    /// `crc32`, `n_terms`) (the settings' vocabulary_file, vocabulary_bytes, vocabulary_crc32
    /// and vocabulary_terms of an earlier commit): the same file, at least as long, and its
    /// first `size` bytes have that CRC32. False for a copy of the index that took other terms.
    fn vocabulary_extends(&self, py: Python<'_>, file: String, size: u64, crc32: u32, n_terms: u64) -> PyResult<bool> {
        let s = &self.inner;
        let rec = sparsedex_core::store::VocabRecord {
            file: sparsedex_core::store::FileRecord { name: file, size, crc32 },
            n_terms,
        };
        enter(py, || s.vocabulary_extends(&rec))
    }

    #[pyo3(signature = (start=0))]
    fn vocabulary(&self, py: Python<'_>, start: u64) -> PyResult<Vec<String>> {
        let s = &self.inner;
        enter(py, || s.vocabulary(start))
    }

    /// One dict per segment: name, documents, live, attachments (file names),
    /// attachment_records ((name, size, crc32) as the manifest records them) and engine_record
    /// (the engine file's (name, size, crc32); None in memory).
    fn segments<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .segments()
            .iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("name", s.name())?;
                d.set_item("documents", s.index().n_docs())?;
                d.set_item("live", s.n_live)?;
                d.set_item("attachments", s.data.attachments.iter().map(|a| a.name.clone()).collect::<Vec<_>>())?;
                d.set_item("engine_record", s.data.sdx.as_ref().map(|r| (r.name.clone(), r.size, r.crc32)))?;
                d.set_item(
                    "attachment_records",
                    s.data.attachments.iter().map(|a| (a.name.clone(), a.size, a.crc32)).collect::<Vec<_>>(),
                )?;
                Ok(d)
            })
            .collect()
    }

    /// The engine index of segment `pos` (shared, not copied).
    fn index(&self, pos: usize) -> PyResult<PyIndex> {
        Ok(PyIndex { inner: self.segment(pos)?.data.index.clone() })
    }

    /// The live documents of segment `pos` as a DocSet (None: all live).
    fn live(&self, pos: usize) -> PyResult<Option<PyDocSet>> {
        Ok(self.segment(pos)?.live.clone().map(|inner| PyDocSet { inner }))
    }

    /// (segment position, internal doc) of the live document `id` (int or str), or None.
    fn locate(&self, id: &Bound<'_, PyAny>) -> PyResult<Option<(usize, u32)>> {
        Ok(self.inner.locate(id_of(id)?.as_id()))
    }

    /// Calibrate segment `pos` for approximate search now, on all cores: on the given queries
    /// (CSR, external term ids), replacing any calibration it had, or, without them, on
    /// pseudo-queries drawn from its stored rows unless it has a calibration already, in memory
    /// or in its calibration file (`calibrate::ensure`). Returns False (and does nothing) for a segment searched
    /// exactly by approximate searches (no stored vectors, or fewer than 8,192 documents).
    #[pyo3(signature = (pos, indptr=None, indices=None, values=None))]
    fn calibrate(
        &self,
        py: Python<'_>,
        pos: usize,
        indptr: Option<PyReadonlyArray1<'_, u64>>,
        indices: Option<PyReadonlyArray1<'_, u32>>,
        values: Option<PyReadonlyArray1<'_, f32>>,
    ) -> PyResult<bool> {
        use sparsedex_core::search::approx::{calibrate, calibrates};
        let index = self.segment(pos)?.index();
        if !calibrates(index) {
            return Ok(false);
        }
        let q = match (&indptr, &indices, &values) {
            (Some(a), Some(b), Some(c)) => Some(csr(a, b, c)?),
            (None, None, None) => None,
            _ => return Err(PyValueError::new_err("calibration queries: give indptr, indices and values, or none")),
        };
        match q {
            // Without queries: the calibration in memory or in the segment's file, if any.
            None => enter_long(py, || calibrate::ensure(index))?,
            Some(q) => {
                let c = enter_long(py, || calibrate::calibrate_with(index, Some(q), 0x5eed))?;
                calibrate::set(index, c);
            }
        }
        Ok(true)
    }

    /// `calibrate(pos, indptr, indices, values)`'s calibration on queries, made but not applied:
    /// None for a segment `calibrate` does nothing to. Errors as `calibrate`.
    fn calibrate_pending(
        &self,
        py: Python<'_>,
        pos: usize,
        indptr: PyReadonlyArray1<'_, u64>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<Option<PyPendingCalibration>> {
        use sparsedex_core::search::approx::{calibrate, calibrates};
        let index = self.segment(pos)?.index();
        if !calibrates(index) {
            return Ok(None);
        }
        let q = csr(&indptr, &indices, &values)?;
        let c = enter_long(py, || calibrate::calibrate_with(index, Some(q), 0x5eed))?;
        Ok(Some(PyPendingCalibration { inner: Mutex::new(Some(c)) }))
    }

    /// Make `pending` (from `calibrate(pos, queries..., apply=False)` on this segment) segment
    /// `pos`'s calibration, in memory and in its calibration file. ConflictError if it was
    /// applied already.
    fn apply_calibration(&self, pos: usize, pending: &Bound<'_, PyPendingCalibration>) -> PyResult<()> {
        let c = taken(&pending.get().inner, "calibration")?;
        sparsedex_core::search::approx::calibrate::set(self.segment(pos)?.index(), c);
        Ok(())
    }

    /// Whether approximate search calibrates segment `pos` (stored vectors, at least 8,192
    /// documents); `calibrate` does nothing to the others.
    fn calibrates(&self, pos: usize) -> PyResult<bool> {
        Ok(sparsedex_core::search::approx::calibrates(self.segment(pos)?.index()))
    }

    /// How far segment `pos`'s latest calibration got: (calibration queries evaluated, in
    /// all); (0, 0) before any. Readable from another thread while `calibrate` runs.
    fn calibration_progress(&self, pos: usize) -> PyResult<(usize, usize)> {
        Ok(self.segment(pos)?.index().calibration_progress())
    }

    /// Segment `pos`'s calibration at recall `target`, if it has one: (pseudo-queries alone?, one
    /// entry per query-length bucket with calibration queries: (most query terms, or None for
    /// the last bucket; calibration queries; beta; gamma; rerank; mean recall@10 reached on them;
    /// whether this bucket's calibration queries are pseudo-queries)). The
    /// entries are the cheapest parameters whose mean recall exceeds the target by 1.5
    /// standard errors (where none does, those of the highest mean less 1.5 standard errors;
    /// `Calibration::choose`). None if the segment is not calibrated yet.
    fn calibration(
        &self,
        pos: usize,
        target: f64,
    ) -> PyResult<Option<(bool, Vec<(Option<usize>, usize, f32, f32, f32, f64, bool)>)>> {
        use sparsedex_core::search::approx::calibrate::{self, BUCKETS};
        let index = self.segment(pos)?.index();
        let Some(c) = calibrate::peek(index) else { return Ok(None) };
        let mut out = Vec::new();
        for (b, &max) in BUCKETS.iter().enumerate() {
            if c.queries[b] == 0 {
                continue;
            }
            let (p, recall) = c.choose(target, max.min(1 << 20));
            out.push((
                (max != usize::MAX).then_some(max),
                c.queries[b],
                p.beta,
                p.gamma,
                p.rerank,
                recall,
                c.from_pseudo[b],
            ));
        }
        Ok(Some((c.pseudo, out)))
    }

    /// (live documents, document frequencies uint64 aligned with `terms`) over the live
    /// documents, for any impact kind.
    fn live_df<'py>(
        &self,
        py: Python<'py>,
        terms: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<(u64, Bound<'py, PyArray1<u64>>)> {
        let t = slice(&terms, "terms")?;
        let snap = &self.inner;
        let (n, df) = enter(py, || Ok(snap.live_df(t)))?;
        Ok((n, df.into_pyarray(py)))
    }

    /// BM25 statistics of the live documents for `terms` (uint32): deleted documents excluded.
    fn bm25_stats(&self, py: Python<'_>, terms: PyReadonlyArray1<'_, u32>) -> PyResult<PyBm25Stats> {
        let t = slice(&terms, "terms")?;
        let snap = &self.inner;
        let inner = enter(py, || Ok(snap.bm25_stats(t)))?;
        Ok(PyBm25Stats { inner, words: None })
    }

    /// Exact global top-k of one query over the live documents (each segment restricted to its
    /// `filters` set too, one per segment or None): (segment positions uint32, internal docs
    /// uint32, scores float32). BM25 stores: under `stats` (the live statistics when None).
    /// u8 segments return `scores`: "vectors" (float32 dot products of the stored vectors,
    /// the exact float top-k) or "impacts" (the 8-bit scores).
    #[pyo3(signature = (indices, values, k=10, algorithm="auto", filters=None, stats=None, target_recall=None, scores="vectors"))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        algorithm: &str,
        filters: Option<Vec<Option<Bound<'py, PyDocSet>>>>,
        stats: Option<Bound<'py, PyBm25Stats>>,
        target_recall: Option<f64>,
        scores: &str,
    ) -> PyResult<SegHits1<'py>> {
        let algo = crate::convert::algorithm(algorithm, target_recall)?;
        let scores = crate::convert::scores(scores)?;
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let f = filter_sets(&filters);
        let stats = stats.map(|s| s.get().inner.clone());
        let snap = &self.inner;
        let hits =
            enter_search(py, algo, q.terms.len(), || snap.search(q, k, algo, f.as_deref(), stats.as_ref(), scores))?;
        let a: Vec<u32> = hits.iter().map(|h| h.segment).collect();
        let d: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        let v: Vec<f32> = hits.iter().map(|h| h.score).collect();
        Ok((a.into_pyarray(py), d.into_pyarray(py), v.into_pyarray(py)))
    }

    /// `search` for a CSR batch of queries on all cores (or `threads`): (segment positions
    /// int64 [nq, k], internal docs int64 [nq, k], scores float32 [nq, k]), -1 / NaN padded.
    #[pyo3(signature = (indptr, indices, values, k=10, algorithm="auto", threads=None, filters=None, stats=None, target_recall=None, scores="vectors"))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, u64>,
        indices: PyReadonlyArray1<'py, u32>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        algorithm: &str,
        threads: Option<usize>,
        filters: Option<Vec<Option<Bound<'py, PyDocSet>>>>,
        stats: Option<Bound<'py, PyBm25Stats>>,
        target_recall: Option<f64>,
        scores: &str,
    ) -> PyResult<SegHits2<'py>> {
        let algo = crate::convert::algorithm(algorithm, target_recall)?;
        let score_kind = crate::convert::scores(scores)?;
        let queries = csr(&indptr, &indices, &values)?;
        let f = filter_sets(&filters);
        let stats = stats.map(|s| s.get().inner.clone());
        let snap = &self.inner;
        if k == 0 {
            return Err(PyValueError::new_err("k must be at least 1"));
        }
        let k = k.min((snap.n_live().max(1)).min(usize::MAX as u64) as usize);
        let (sg, docs, scores, nq) = enter_long(py, || {
            let res = snap.search_batch(queries, k, algo, threads, f.as_deref(), stats.as_ref(), score_kind)?;
            let (sg, docs, scores) = matrices(&res, k, |h| (h.segment as i64, h.doc as i64, h.score));
            Ok((sg, docs, scores, res.len()))
        })?;
        Ok((
            sg.into_pyarray(py).reshape([nq, k])?,
            docs.into_pyarray(py).reshape([nq, k])?,
            scores.into_pyarray(py).reshape([nq, k])?,
        ))
    }

    /// Per-term explanation of internal doc `doc` of segment `segment` for a query, in the
    /// search's arithmetic: list of (term, query weight, document weight, contribution); with
    /// `with_score`, the pair (that list, the document's score bit-identical to a search's);
    /// `scores` as in `search` (u8 segments).
    #[pyo3(signature = (indices, values, segment, doc, stats=None, with_score=false, scores="vectors"))]
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        py: Python<'_>,
        indices: PyReadonlyArray1<'_, u32>,
        values: PyReadonlyArray1<'_, f32>,
        segment: usize,
        doc: u32,
        stats: Option<Bound<'_, PyBm25Stats>>,
        with_score: bool,
        scores: &str,
    ) -> PyResult<Py<PyAny>> {
        let scores = crate::convert::scores(scores)?;
        let q = QueryRef { terms: slice(&indices, "indices")?, weights: slice(&values, "values")? };
        let stats = stats.map(|s| s.get().inner.clone());
        let snap = &self.inner;
        let (parts, score) = enter(py, || snap.explain(q, segment, doc, stats.as_ref(), scores))?;
        let parts: Vec<(u32, f32, f32, f32)> =
            parts.into_iter().map(|p| (p.term, p.query_weight, p.doc_weight, p.contribution)).collect();
        Ok(if with_score {
            (parts, score).into_pyobject(py)?.into_any().unbind()
        } else {
            parts.into_pyobject(py)?.into_any().unbind()
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Snapshot(generation={}, segments={}, live={})",
            self.inner.generation(),
            self.inner.segments().len(),
            self.inner.n_live()
        )
    }
}

/// Whether an index directory without a CURRENT yet may hold a file named `name` and still take
/// a save (the rule `PreparedSave` applies; `sparsedex._legacy.is_foreign_dir` asks it first,
/// before taking the directory's lock).
#[pyfunction]
pub fn index_dir_may_hold(name: &str) -> bool {
    sparsedex_core::store::index_dir_may_hold(name)
}

/// Whether `head`, a CURRENT file's first bytes, is a sparsedex CURRENT (today's or 0.1's):
/// another program's CURRENT (LevelDB's, RocksDB's) is not.
#[pyfunction]
pub fn is_our_current(head: &[u8]) -> bool {
    sparsedex_core::store::is_our_current(head)
}
