//! What the store knows of the files of its directory besides the manifest's records: each
//! file's size and modification time when this process last read or wrote it (its *stamp*).
//!
//! The manifest's CRC32s are checked when a file is first read, never again (that would
//! read the whole index). A file replaced afterwards under the same name went unnoticed: a
//! backup copied into the directory of an open index (`cp -r backup/. ix/`, `rsync
//! --exclude LOCK`) left a writer committing its old records over the backup's files (an
//! unopenable index), and a reader mapping the backup's bytes through the old commit's
//! structure (helper-88). A stamp costs one `stat` per file; a commit checks the files it
//! carries forward, and a refresh re-reads (and verifies) a segment whose file changed.
//!
//! On Unix a stamp holds the file's device, inode and status-change time (ctime) too: a copy
//! that keeps the modification time (`cp -p`, `rsync -a`, `tar x`) still changes the ctime
//! (which `utime` cannot set back), and a rename over the file changes its inode (helper-117:
//! a same-size `cp -p` over an engine file went unseen, and searches returned another index's
//! hits). A ctime that moves for another reason (`chmod`, a hard link made or removed) costs
//! one read of the file, whose CRC32 then matches its record and the file is stamped again.
//! A same-size overwrite within the file system's timestamp granularity still goes unseen (on
//! Linux the granularity of ctime is the kernel's clock tick, a few milliseconds at most).

use super::files::FileRecord;
use super::snapshot::Snapshot;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

/// A file's size and modification time, and on Unix its device, inode and status-change time
/// (seconds, nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: Option<SystemTime>,
    node: (u64, u64, i64, i64),
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let node = {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
    };
    #[cfg(not(unix))]
    let node = (0, 0, 0, 0);
    Ok(Stamp { size: m.len(), mtime: m.modified().ok(), node })
}

/// Every file a snapshot's commit names: engine files, attachments, deletion files, then the
/// vocabulary file, whose record covers its committed prefix only (`true`: a writer whose
/// append failed, or a crashed one, may have left uncommitted terms after it).
pub(crate) fn files_of(snap: &Snapshot) -> impl Iterator<Item = (&FileRecord, bool)> {
    snap.segments
        .iter()
        .flat_map(|s| s.data.sdx.iter().chain(&s.data.attachments).chain(&s.deletions))
        .map(|r| (r, false))
        .chain(snap.settings.vocabulary.iter().map(|v| (&v.file, true)))
}

/// Whether the file at `path` still holds the bytes `rec` records (its first `rec.size` bytes
/// when `prefix`).
fn holds(path: &Path, rec: &FileRecord, prefix: bool) -> bool {
    use std::io::Read;
    let Ok(f) = crate::fs::open_regular(path) else { return false };
    let Ok(len) = f.metadata().map(|m| m.len()) else { return false };
    if len < rec.size || (!prefix && len != rec.size) {
        return false;
    }
    let mut h = crc32fast::Hasher::new();
    let mut r = f.take(rec.size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return false,
        }
    }
    h.finalize() == rec.crc32
}

/// The stamps of the files this store read or wrote, by name, each with the record it was
/// taken for.
#[derive(Debug, Default)]
pub(crate) struct Stamps(Mutex<HashMap<String, (FileRecord, Stamp)>>);

/// How a file changed since its stamp was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Changed {
    /// The file's name.
    pub name: String,
    /// What happened to it.
    pub how: &'static str,
}

impl Stamps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (FileRecord, Stamp)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep the stamps of the files of `snap` known under the same record, take the others'
    /// now (the load has just read and verified them), and forget files `snap` does not name.
    pub(crate) fn adopt(&self, dir: &Path, snap: &Snapshot) {
        let mut m = self.lock();
        let mut next = HashMap::with_capacity(m.len());
        for (rec, _) in files_of(snap) {
            let stamp = match m.remove(&rec.name) {
                Some((r, s)) if &r == rec => Some(s),
                _ => stamp_of(&dir.join(&rec.name)).ok(),
            };
            if let Some(s) = stamp {
                next.insert(rec.name.clone(), (rec.clone(), s));
            }
        }
        *m = next;
    }

    /// Forget every stamp (the files are about to be read afresh).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The first file of `snap` stamped under the same record that is gone (when `gone`
    /// counts), or whose stamp (size, modification time, inode, ctime) differs now and whose bytes no longer match
    /// the record (a file rewritten with the same bytes, `touch`ed, or a vocabulary file with
    /// an uncommitted tail is stamped again; that reads it whole, once). Files that cannot be
    /// looked at (permissions) are left to the reads that follow. A file gone does not change
    /// what a reader has mapped or open (a writer collects the files of older commits while
    /// readers of other processes still read them): only a writer, about to record the files
    /// in a manifest, counts it.
    pub(crate) fn changed(&self, dir: &Path, snap: &Snapshot, gone: bool) -> Option<Changed> {
        let mut m = self.lock();
        for (rec, prefix) in files_of(snap) {
            let Some((r, s)) = m.get_mut(&rec.name) else { continue };
            if r != rec {
                continue;
            }
            let path = dir.join(&rec.name);
            let how = match stamp_of(&path) {
                Ok(now) if now == *s => continue,
                Ok(now) if holds(&path, rec, prefix) => {
                    *s = now;
                    continue;
                }
                Ok(now) if now.size != s.size => "has another size",
                Ok(now) if (now.node.0, now.node.1) != (s.node.0, s.node.1) => {
                    "was replaced (another file of the same size was renamed or copied in under its name)"
                }
                Ok(_) => "was rewritten (other bytes of the same size)",
                Err(e) if gone && e.kind() == std::io::ErrorKind::NotFound => "is gone",
                Err(_) => continue,
            };
            return Some(Changed { name: rec.name.clone(), how });
        }
        None
    }
}
