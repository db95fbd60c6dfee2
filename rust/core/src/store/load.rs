//! Loading the committed state of a directory: CURRENT, the manifest it names, every segment
//! and deletion file, each checked against the manifest's record (size and whole-file CRC32;
//! attachments by size here and by CRC32 when the layer above first opens them).
//!
//! Readers take no lock: a writer may commit and collect files while a reader loads. A load
//! that fails on a missing or mismatched file is retried as long as CURRENT keeps moving on;
//! if CURRENT did not change, the corruption is real and is reported.

use super::files::{in_file, FileRecord, CURRENT};
use super::manifest::{Current, Manifest, Settings, StoreQuantization};
use super::segment::{decode_deletions, SegmentData, SegmentState};
use super::snapshot::Snapshot;
use super::vocab::VocabHandle;
use crate::index::Impacts;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded commit.
pub(crate) struct Loaded {
    pub current: Current,
    pub manifest: Manifest,
    pub snapshot: Snapshot,
}

/// The bytes of CURRENT (`None` if there is none).
pub(crate) fn read_current_bytes(dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = dir.join(CURRENT);
    // A CURRENT that is not a regular file (a directory, a FIFO, a device) is never read
    // ([`crate::fs::open_regular`]): a FIFO would block the open forever (breaker36).
    let mut f = match crate::fs::open_regular(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !dir.is_dir() {
                return Err(Error::io(format!("{}: no index directory there", dir.display()), e));
            }
            return Ok(None);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::io(format!("reading {}", path.display()), e))
        }
        // the directory itself is a file or a loop of symbolic links (a link switched to one
        // under a serving handle): no index there, as for a missing directory; nothing is
        // corrupt (it read "corrupt index file", helper-86)
        Err(e) if not_a_current(&e) && !dir.is_dir() => {
            let what = format!("{}: no index directory there (a file, or a loop of symbolic links)", dir.display());
            return Err(Error::io(what, std::io::Error::new(std::io::ErrorKind::NotFound, e)));
        }
        // not a regular file, a loop of links, a component that is a file: not an index's
        // CURRENT (a raw OSError before, recheck36)
        Err(e) if not_a_current(&e) => {
            return Err(Error::Corrupt(format!("{}: {e}, not a sparsedex CURRENT", path.display())))
        }
        // Anything else is the system's, not the file's: out of file descriptors (EMFILE,
        // ENFILE), memory or I/O. It was reported as a corrupt CURRENT, and a user told so
        // might "repair" a sound index (breaker39, 400 segments under a limit of 512 files).
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(Some(bytes))
}

/// Whether opening CURRENT failed because of what stands at its path (not a regular file, a
/// loop of symbolic links, a component that is a file), not because of the system.
fn not_a_current(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::InvalidData {
        return true; // crate::fs::open_regular: not a regular file
    }
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EISDIR))
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Parse CURRENT's bytes. Without CURRENT (it is replaced by renames, never removed), what the
/// directory holds says why (breaker34; before, every case was "corrupt"):
/// - segment files or a manifest past the first: an index whose CURRENT was lost, damaged
///   ([`Error::Corrupt`]);
/// - only the lock, temporary files or the first manifest (`manifest-000001`, written by
///   [`super::Store::create`] before CURRENT): an index being created, or whose
///   creation was interrupted: a `NotFound` I/O error, no committed index there yet;
/// - none of an index's files (an empty directory, another program's): a `NotFound` I/O error,
///   no index there (the user named the wrong directory).
pub(crate) fn parse_current(dir: &Path, bytes: Option<&[u8]>) -> Result<Current> {
    let Some(b) = bytes else {
        let list = |e| Error::io(format!("listing {}", dir.display()), e);
        let (mut committed, mut ours) = (false, false);
        for e in std::fs::read_dir(dir).map_err(list)? {
            let name = e.map_err(list)?.file_name();
            let name = name.to_string_lossy();
            let temp = crate::fs::temp_target(&name).is_some();
            committed |= !temp
                && (super::files::split_segment_file(&name).is_some()
                    || super::files::parse_manifest(&name).is_some_and(|g| g > 1));
            ours |= name == super::files::LOCK || super::files::ours(&name).is_some();
        }
        let not_found = |head: &str, why: String| {
            Error::io(format!("{}: {head}", dir.display()), std::io::Error::new(std::io::ErrorKind::NotFound, why))
        };
        return Err(if committed {
            Error::Corrupt(format!(
                "{}: missing {CURRENT} (the directory holds an index's segment files or later manifests, but \
                 not the file naming its last commit; if an index is being saved there right now, {CURRENT} \
                 comes last: open it once the save has finished)",
                dir.display()
            ))
        } else if ours {
            not_found(
                "no committed index there yet",
                format!(
                    "only an index's lock, temporary files or first manifest (an index is being created there, \
                     or its creation was interrupted; {CURRENT} names a commit once it is made)"
                ),
            )
        } else {
            not_found(
                "no sparsedex index there",
                format!("no {CURRENT} file and no index files (an empty directory, or another program's)"),
            )
        });
    };
    Current::decode(b, &dir.join(CURRENT))
}

/// Load the committed state of `dir`, reusing the segments and deletions `old` already holds.
///
/// Every file of one commit is read from one directory: `dir` with its symbolic links
/// resolved first, so that a link switched to another copy of the index (blue/green
/// deployment) while the commit loads cannot pair this manifest with the other copy's files;
/// the snapshot records that directory ([`Snapshot::dir`]).
pub(crate) fn load(dir: &Path, old: Option<&Snapshot>) -> Result<Loaded> {
    let mut real = resolved(dir);
    let mut raw = read_current_bytes(&real)?;
    for attempt in 0.. {
        match load_once(&real, raw.as_deref(), old) {
            Ok(mut l) => {
                l.snapshot.dir = Some(Arc::new(real));
                return Ok(l);
            }
            Err(e @ (Error::Corrupt(_) | Error::Io { .. })) => {
                let again = resolved(dir);
                let now = read_current_bytes(&again)?;
                if (now == raw && again == real) || attempt >= 100 {
                    return Err(e);
                }
                raw = now;
                real = again;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// `dir` with its symbolic links resolved, where it has any (else `dir` as given, so that
/// messages name the path the caller gave).
fn resolved(dir: &Path) -> PathBuf {
    match (dir.canonicalize(), std::path::absolute(dir)) {
        (Ok(real), Ok(abs)) if real != abs => real,
        _ => dir.to_path_buf(),
    }
}

fn load_once(dir: &Path, raw: Option<&[u8]>, old: Option<&Snapshot>) -> Result<Loaded> {
    let current = parse_current(dir, raw)?;
    let mpath = dir.join(&current.manifest.name);
    let bytes = current.manifest.read(dir, "the manifest named by CURRENT")?;
    let manifest = Manifest::decode(&bytes, &mpath)?;
    if manifest.uuid != current.uuid || manifest.generation != current.generation {
        return Err(Error::Corrupt(format!("{}: belongs to another index or commit than {CURRENT}", mpath.display())));
    }
    // Segments (and the vocabulary) are reused only from a snapshot of the same index: another
    // index written into the directory may name its segments alike.
    let old = old.filter(|o| o.uuid == manifest.uuid);
    let known: HashMap<&str, &SegmentState> =
        old.map(|o| o.segments.iter().map(|s| (s.name(), s)).collect()).unwrap_or_default();
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for rec in &manifest.segments {
        // The segment of the same name and engine file read before: its engine is reused; its
        // state (documents files, deletions) only where those are the same files too (a copy
        // of the index updated apart may hold byte-identical engine files beside other
        // documents files).
        let same_engine = known.get(rec.name.as_str()).filter(|s| s.data.sdx.as_ref() == Some(&rec.sdx));
        let prev = same_engine.filter(|s| s.data.attachments == rec.attachments);
        let data = match (prev, same_engine) {
            (Some(s), _) => s.data.clone(),
            (None, Some(s)) => {
                for a in &rec.attachments {
                    check_size(dir, a, &rec.name)?;
                }
                Arc::new(SegmentData {
                    name: rec.name.clone(),
                    index: s.data.index.clone(),
                    sdx: Some(rec.sdx.clone()),
                    attachments: rec.attachments.clone(),
                })
            }
            (None, None) => {
                let what = format!("segment {}'s engine file", rec.name);
                let index = rec.sdx.open_index(dir, &what)?;
                let path = dir.join(&rec.sdx.name);
                if index.n_docs() != rec.n_docs {
                    return Err(Error::Corrupt(format!(
                        "{}: has {} documents, the manifest records {}",
                        path.display(),
                        index.n_docs(),
                        rec.n_docs
                    )));
                }
                check_kind(&index, &manifest.settings).map_err(|e| in_file(e, &path))?;
                for a in &rec.attachments {
                    check_size(dir, a, &rec.name)?;
                }
                Arc::new(SegmentData {
                    name: rec.name.clone(),
                    index: Arc::new(index),
                    sdx: Some(rec.sdx.clone()),
                    attachments: rec.attachments.clone(),
                })
            }
        };
        let state = match (prev, &rec.deletions) {
            (Some(s), d) if s.deletions.as_ref() == d.as_ref() => (*s).clone(),
            (_, None) => SegmentState::new(data, None, None)?,
            (_, Some(d)) => {
                let path = dir.join(&d.name);
                let bytes = d.read(dir, &format!("segment {}'s deletions", rec.name))?;
                let set = decode_deletions(&bytes, &path, &manifest.uuid, &rec.name, rec.n_docs)?;
                SegmentState::new(data, Some(set), Some(d.clone()))?
            }
        };
        if state.n_live != rec.n_live {
            return Err(Error::Corrupt(format!(
                "{}: segment {} has {} live documents, the manifest records {}",
                mpath.display(),
                rec.name,
                state.n_live,
                rec.n_live
            )));
        }
        segments.push(state);
    }
    let vocab = match (&manifest.settings.vocabulary, old.and_then(|o| o.vocab.as_ref())) {
        (None, _) => None,
        (Some(r), Some(h)) if h.record() == r => Some(h.clone()),
        (Some(r), _) => Some(Arc::new(VocabHandle::open(dir, r)?)),
    };
    let snapshot = Snapshot {
        generation: manifest.generation,
        uuid: manifest.uuid.clone(),
        settings: Arc::new(manifest.settings.clone()),
        segments,
        vocab,
        dir: None, // set by load()
    };
    Ok(Loaded { current, manifest, snapshot })
}

/// An attachment's size as the manifest records it (its CRC32 is checked on first use).
fn check_size(dir: &Path, a: &FileRecord, segment: &str) -> Result<()> {
    let path = dir.join(&a.name);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Corrupt(format!("{}: missing (an attachment of segment {segment})", path.display()))
        }
        _ => Error::io(format!("reading metadata of {}", path.display()), e),
    })?;
    if !meta.is_file() {
        // a directory's own size read as "truncated" (helper-138)
        return Err(Error::Corrupt(format!(
            "{}: not a regular file (an attachment of segment {segment})",
            path.display()
        )));
    }
    let size = meta.len();
    if size != a.size {
        return Err(Error::Corrupt(format!(
            "{}: {size} bytes, the manifest records {} (truncated, or from another index)",
            path.display(),
            a.size
        )));
    }
    Ok(())
}

/// A segment's kind agrees with the store's settings.
pub(crate) fn check_kind(index: &crate::index::Index, s: &Settings) -> Result<()> {
    let v = index.view();
    let ok = match (v.impacts, s.bm25_params()) {
        (Impacts::Bm25(_), Some(p)) => v.bm25.is_some_and(|m| m.params == p),
        (Impacts::U8(_), None) => s.quantization == StoreQuantization::U8,
        (Impacts::F32(_), None) => s.quantization == StoreQuantization::F32,
        _ => false,
    };
    if !ok || v.vocab != s.vocab {
        return Err(Error::Corrupt("the segment's kind or vocabulary differs from the store's settings".into()));
    }
    Ok(())
}
