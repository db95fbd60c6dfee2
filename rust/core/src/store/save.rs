//! Saving a copy of the committed state into another directory, as a full commit there under
//! fresh names: the destination's previous save (if any) stays whole until CURRENT switches,
//! so a crash leaves the old save or the new one, and readers opening the destination while
//! it is re-saved see one or the other, never an error.

use super::files::{self, deletions_name, manifest_name, sdx_name, split_segment_file, FileRecord};
use super::manifest::{Current, Manifest, SegmentRecord};
use super::segment::encode_deletions;
use super::snapshot::Snapshot;
use super::writer::sync_file;
use super::{check_current, gc, load, vocab, Store};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A copy being saved: every segment's engine and deletion files (and, from an on-disk store,
/// its attachments) are written into the destination; [`Store::finish_save`] commits them.
#[derive(Debug)]
pub struct PreparedSave {
    dest: PathBuf,
    snapshot: Arc<Snapshot>,
    uuid: String,
    generation: u64,
    next_segment: u64,
    /// The manifest the destination's CURRENT named when the save began.
    before: Option<FileRecord>,
    segments: Vec<SegmentRecord>,
}

impl PreparedSave {
    /// The destination directory.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// `(source segment, destination segment)` names, in order: the caller writes the
    /// destination's attachments `<destination segment>.<ext>` for segments it keeps in memory.
    pub fn names(&self) -> Vec<(String, String)> {
        self.snapshot
            .segments
            .iter()
            .map(|s| s.name().to_string())
            .zip(self.segments.iter().map(|r| r.name.clone()))
            .collect()
    }

    /// The generation the save will commit.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl Store {
    /// Save the committed state into `dest` (see the module doc): the destination keeps its
    /// store id and counters when it holds a store already (so names there are never reused);
    /// a directory holding files that are not a store's is refused. The caller holds `dest`'s
    /// writer lock. Returns the destination's new generation.
    pub fn save_copy(&self, dest: &Path) -> Result<u64> {
        let p = self.prepare_save(dest)?;
        self.finish_save(p, &[], None, None)
    }

    /// The first step of [`Store::save_copy`]: write every file but the manifest and CURRENT,
    /// for the current snapshot, attachments copied by name from the store's directory.
    pub fn prepare_save(&self, dest: &Path) -> Result<PreparedSave> {
        self.prepare_save_of(dest, self.snapshot(), true)
    }

    /// [`Store::prepare_save`] of `snapshot` (one of this store's, e.g. the one a reader holds
    /// while newer commits have collected some of its files). With `copy_attachments` false
    /// the caller writes every segment's attachments into the destination itself (from the
    /// files it holds open: a collected attachment stays readable through an open handle, not
    /// by its name) and names them to [`Store::finish_save`].
    pub fn prepare_save_of(
        &self,
        dest: &Path,
        snapshot: Arc<Snapshot>,
        copy_attachments: bool,
    ) -> Result<PreparedSave> {
        if snapshot.uuid != self.snapshot().uuid {
            return Err(Error::InvalidArgument("the snapshot to save is not one of this store's".into()));
        }
        if self.dir.as_deref().is_some_and(|d| same_dir(d, dest)) {
            return Err(Error::InvalidArgument(format!(
                "{} is this index's own directory: commit instead",
                dest.display()
            )));
        }
        // A directory without an index must hold nothing but our leftovers, or be a sparsedex
        // 0.1 `VectorIndex` directory (`sparsedex.json` + `vectors.sdx`, which the caller removes
        // once CURRENT names the new index). Files around an index are left alone; a CURRENT
        // that is not ours (LevelDB's, RocksDB's) is another program's directory.
        let current = dest.join(files::CURRENT);
        let has_current = std::fs::symlink_metadata(&current).is_ok();
        if has_current {
            // a regular file starting with our magic; a directory, a FIFO (never opened), a
            // dangling link or another program's CURRENT is not ours
            let ours = matches!(load::read_current_bytes(dest), Ok(Some(b)) if files::is_our_current(&b));
            if !ours {
                return Err(Error::io(
                    format!(
                        "{} holds a CURRENT file that is not a sparsedex index's: choose another directory",
                        dest.display()
                    ),
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
        }
        if let (Ok(entries), false) = (std::fs::read_dir(dest), has_current) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !files::index_dir_may_hold(&name) {
                    return Err(Error::io(
                        format!(
                            "{} holds files that are not a sparsedex index's ({name:?}): choose another directory",
                            dest.display()
                        ),
                        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    ));
                }
            }
        }
        std::fs::create_dir_all(dest).map_err(|e| Error::io(format!("creating directory {}", dest.display()), e))?;
        // The destination's counters, if it holds a readable store.
        let existing =
            load::read_current_bytes(dest)?.and_then(|b| load::parse_current(dest, Some(&b)).ok()).and_then(|c| {
                let bytes = c.manifest.read(dest, "the manifest").ok()?;
                let m = Manifest::decode(&bytes, &dest.join(&c.manifest.name)).ok()?;
                Some((c, m))
            });
        let (max_seg, max_gen) = gc::scan_numbers(dest);
        let mut next = max_seg.map_or(1, |s| s + 1);
        let mut generation = max_gen.map_or(1, |g| g + 1);
        let (uuid, before) = match &existing {
            Some((c, m)) => {
                next = next.max(m.settings.next_segment);
                generation = generation.max(m.generation + 1);
                // a new store id all the same: the save is another index, and a handle that had
                // the old one open must not take it for the same (a writer would commit its old
                // encoder settings and vocabulary into it)
                (files::new_uuid(), Some(c.manifest.clone()))
            }
            None => (files::new_uuid(), None),
        };
        let mut segments = Vec::with_capacity(snapshot.segments.len());
        for s in &snapshot.segments {
            let name = files::segment_name(next);
            next += 1;
            let sdx = sdx_name(&name);
            let bytes = s.index().image_bytes();
            crate::fs::write_atomically(&dest.join(&sdx), bytes)?;
            let sdx_rec = FileRecord::of_bytes(&sdx, bytes);
            // The image of a segment read from a file is that file's mapping: bytes copied over
            // the file while the index was open change it, and the copy would record them under
            // a fresh, valid checksum, an index that opens and returns another index's hits
            // (helper-118). The copy's record must be the one the commit holds.
            if let Some(src) = &s.data.sdx {
                if (src.size, src.crc32) != (sdx_rec.size, sdx_rec.crc32) {
                    let at =
                        self.dir.as_ref().map_or_else(|| src.name.clone(), |d| d.join(&src.name).display().to_string());
                    return Err(Error::Corrupt(format!(
                        "{at}: no longer holds what the commit records (its checksum differs from the manifest's): \
                         files were copied into the directory while the index was open; nothing was saved"
                    )));
                }
            }
            // The segment's approximate-search calibration, if it has one: the copy is the same
            // engine file, so the calibration holds; rebound to the destination's store, name and
            // engine file (FORMAT.md §6a). Best effort, as every calibration write: a copy without
            // it is calibrated again on its first approximate search.
            crate::search::approx::persist::save_for(s.index(), dest, &uuid, &name, sdx_rec.crc32);
            let mut attachments = Vec::with_capacity(s.data.attachments.len());
            if let (Some(src), true) = (&self.dir, copy_attachments) {
                for a in &s.data.attachments {
                    let rest = split_segment_file(&a.name).map_or("", |(_, r)| r);
                    let to = format!("{name}.{rest}");
                    crate::fs::copy_atomically(&src.join(&a.name), &dest.join(&to))?;
                    let rec = FileRecord::of_file(dest, &to)?;
                    if (rec.size, rec.crc32) != (a.size, a.crc32) {
                        return Err(Error::Corrupt(format!(
                            "{}: differs from the manifest's record (corrupted)",
                            src.join(&a.name).display()
                        )));
                    }
                    attachments.push(rec);
                }
            }
            let deletions = match &s.deleted {
                None => None,
                Some(del) => {
                    let dname = deletions_name(&name, generation);
                    let b = encode_deletions(&uuid, &name, generation, s.index().n_docs(), del)?;
                    crate::fs::write_atomically(&dest.join(&dname), &b)?;
                    Some(FileRecord::of_bytes(&dname, &b))
                }
            };
            segments.push(SegmentRecord {
                name: name.clone(),
                n_docs: s.index().n_docs(),
                n_live: s.n_live,
                sdx: sdx_rec,
                deletions,
                attachments,
            });
        }
        Ok(PreparedSave { dest: dest.to_path_buf(), snapshot, uuid, generation, next_segment: next, before, segments })
    }

    /// Commit a prepared save: the caller's `attachments` (files `<destination segment>.<ext>`
    /// it wrote into the destination) are fsynced and recorded, then the manifest and CURRENT
    /// are written (the commit point) and the destination's unreferenced files collected.
    /// `settings_json` replaces the opaque settings in the copy. The copy's vocabulary file
    /// (`vocab-<G>`, written whole) holds `terms` when given (an in-memory store keeps none:
    /// the layer above gives them), otherwise the source's committed terms, if it has any.
    pub fn finish_save(
        &self,
        mut p: PreparedSave,
        attachments: &[String],
        settings_json: Option<&str>,
        terms: Option<&[String]>,
    ) -> Result<u64> {
        let dest = p.dest.clone();
        for a in attachments {
            let seg = split_segment_file(a)
                .filter(|(_, rest)| files::role_of(rest) == files::Role::Attachment)
                .and_then(|(seg, _)| p.segments.iter_mut().find(|r| r.name == seg))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("attachment {a:?} is not named <segment>.<ext> for a saved segment"))
                })?;
            if seg.attachments.iter().any(|r| &r.name == a) {
                return Err(Error::InvalidArgument(format!("attachment {a:?} is listed twice")));
            }
            sync_file(&dest.join(a))?;
            seg.attachments.push(FileRecord::of_file(&dest, a)?);
        }
        let mut settings = (*p.snapshot.settings).clone();
        if let Some(j) = settings_json {
            settings.json = j.to_string();
        }
        settings.next_segment = p.next_segment;
        let source_terms = match (terms, &p.snapshot.vocab) {
            (None, Some(h)) => Some(h.terms(&p.snapshot.uuid, 0)?),
            _ => None,
        };
        settings.vocabulary = match terms.or(source_terms.as_deref()) {
            Some(t) if !t.is_empty() || p.snapshot.vocab.is_some() => {
                Some(vocab::write_new(&dest, &vocab::vocab_name(p.generation), &p.uuid, t)?)
            }
            _ => None,
        };
        let m = Manifest { generation: p.generation, uuid: p.uuid.clone(), settings, segments: p.segments };
        let mname = manifest_name(p.generation);
        let bytes = m.encode()?;
        crate::fs::write_atomically(&dest.join(&mname), &bytes)?;
        if let Some(before) = &p.before {
            check_current(&dest, before)?;
        }
        let cur = Current { manifest: FileRecord::of_bytes(&mname, &bytes), generation: p.generation, uuid: p.uuid };
        crate::fs::replace(&dest.join(files::CURRENT), &cur.encode()?)?; // the commit point
        let synced = crate::fs::sync_dir(&dest);
        let mut keep: HashSet<String> = [files::CURRENT.to_string(), files::LOCK.to_string(), mname].into();
        keep.extend(m.settings.vocabulary.iter().map(|v| v.file.name.clone()));
        for r in &m.segments {
            keep.extend(std::iter::once(&r.sdx).chain(&r.deletions).chain(&r.attachments).map(|f| f.name.clone()));
            keep.insert(crate::search::approx::persist::file_name(&r.name)); // its calibration, if any
        }
        gc::collect(&dest, &keep, &HashSet::new());
        synced.map(|_| p.generation)
    }
}
