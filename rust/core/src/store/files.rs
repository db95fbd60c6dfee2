//! The files of an index directory: their names, the manifest's record of a file (size and
//! CRC32 of the whole file), and reading the store's own small files, which are containers
//! like the engine's segments (one framing: header, section table, CRC per section, version).
//!
//! Names (rust/core/FORMAT.md): `CURRENT`, `manifest-<G>`, `vocab-<G>`, `seg-<N>.sdx`,
//! `seg-<N>.del-<G>`, attachments `seg-<N>.<ext>`, `LOCK` (the caller's writer lock, never
//! touched here), and temporary files `.<name>.tmp-<pid>-<n>` ([`crate::fs`]). `<N>` and
//! `<G>` are decimal, zero-padded to at least 6 digits.

use crate::container::{Container, Image};
use crate::index::Index;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The commit pointer.
pub const CURRENT: &str = "CURRENT";
/// The writer lock file (the caller's; the store never reads, writes or removes it).
pub const LOCK: &str = "LOCK";
/// The files of a sparsedex 0.1 `VectorIndex` directory, which a save (the upgrade of such a
/// directory, or a save over it) may write beside; the Python side removes them after the switch.
pub const LEGACY_VECTOR_INDEX: [&str; 2] = ["sparsedex.json", "vectors.sdx"];
/// Magic of a manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SPDXMAN1";
/// Magic of CURRENT.
pub const CURRENT_MAGIC: [u8; 8] = *b"SPDXCUR1";
/// Magic of a sparsedex 0.1 CURRENT (an index directory the Python side upgrades on save).
pub const LEGACY_CURRENT_MAGIC: [u8; 8] = *b"SDXCURR1";
/// Magic of a deletion file.
pub const DELETIONS_MAGIC: [u8; 8] = *b"SPDXDEL1";
/// Format version of the store's own files (manifest, CURRENT, deletions).
pub const STORE_VERSION: u32 = 1;

/// Name of segment number `n`.
pub fn segment_name(n: u64) -> String {
    format!("seg-{n:06}")
}

/// Name of the manifest of generation `g`.
pub fn manifest_name(g: u64) -> String {
    format!("manifest-{g:06}")
}

/// Name of a segment's engine file.
pub fn sdx_name(segment: &str) -> String {
    format!("{segment}.sdx")
}

/// Name of a segment's deletion file as of generation `g`.
pub fn deletions_name(segment: &str, g: u64) -> String {
    format!("{segment}.del-{g:06}")
}

fn number(s: &str) -> Option<u64> {
    if s.len() < 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The number of a segment name `seg-<N>`.
pub fn parse_segment(name: &str) -> Option<u64> {
    number(name.strip_prefix("seg-")?)
}

/// The generation of a manifest name `manifest-<G>`.
pub fn parse_manifest(name: &str) -> Option<u64> {
    number(name.strip_prefix("manifest-")?)
}

/// A segment file `seg-<N>.<rest>`: the segment name and `rest` (non-empty, no path
/// separators).
pub fn split_segment_file(name: &str) -> Option<(&str, &str)> {
    let dot = name.find('.')?;
    let (seg, rest) = (&name[..dot], &name[dot + 1..]);
    parse_segment(seg)?;
    let plain = !rest.is_empty() && !rest.contains(['/', '\\']) && rest != "." && rest != "..";
    plain.then_some((seg, rest))
}

/// What a file of a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The engine segment (`.sdx`).
    Engine,
    /// A deletion file (`.del-<G>`).
    Deletions,
    /// A file another layer wrote (anything else).
    Attachment,
}

/// The role of the segment file `rest` (as split by [`split_segment_file`]).
pub fn role_of(rest: &str) -> Role {
    if rest == "sdx" {
        Role::Engine
    } else if rest.strip_prefix("del-").is_some_and(|g| number(g).is_some()) {
        Role::Deletions
    } else {
        Role::Attachment
    }
}

/// Whether a directory without an index (no CURRENT) may hold a file named `name` and still
/// take a save: our files (segments, manifests, vocabularies, their temporary files), CURRENT
/// and LOCK, and a sparsedex 0.1 `VectorIndex`'s files. Anything else is another program's, and
/// a save refuses to write beside it.
pub fn index_dir_may_hold(name: &str) -> bool {
    name == CURRENT || name == LOCK || LEGACY_VECTOR_INDEX.contains(&name) || ours(name).is_some()
}

/// Whether `head` (a CURRENT file's first bytes) is a sparsedex CURRENT, of today's layout or
/// of 0.1's: a CURRENT of another program (LevelDB's, RocksDB's) is not, and its directory is
/// never written into.
pub fn is_our_current(head: &[u8]) -> bool {
    head.starts_with(&CURRENT_MAGIC) || head.starts_with(&LEGACY_CURRENT_MAGIC)
}

/// The segment a file of ours belongs to (segment files, and temporary files of them), or
/// `Some(None)` for other files of ours (manifests, temporary CURRENT or manifests); `None` for
/// files that are not ours (never collected), and for CURRENT and LOCK.
pub fn ours(name: &str) -> Option<Option<&str>> {
    if name == CURRENT || name == LOCK {
        return None;
    }
    if parse_manifest(name).is_some() || super::vocab::parse_vocab(name).is_some() {
        return Some(None);
    }
    if let Some((seg, _)) = split_segment_file(name) {
        return Some(Some(seg));
    }
    let target = crate::fs::temp_target(name)?;
    if target == CURRENT {
        return Some(None);
    }
    ours(target)
}

/// The manifest's record of a file: its name, size and the CRC32 of all of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// File name (in the index directory).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 (IEEE) of the whole file.
    pub crc32: u32,
}

impl FileRecord {
    /// The record of `bytes` written as `name`.
    pub fn of_bytes(name: &str, bytes: &[u8]) -> FileRecord {
        FileRecord { name: name.to_string(), size: bytes.len() as u64, crc32: crc32fast::hash(bytes) }
    }

    /// The record of the file `name` in `dir`, read in full.
    pub fn of_file(dir: &Path, name: &str) -> Result<FileRecord> {
        let (size, crc32) = crc_of_file(&dir.join(name))?;
        Ok(FileRecord { name: name.to_string(), size, crc32 })
    }

    /// Check that the file in `dir` has this size and CRC32 (`what` names it in errors).
    pub fn verify(&self, dir: &Path, what: &str) -> Result<()> {
        let path = dir.join(&self.name);
        let (size, crc) = crc_of_file(&path).map_err(|e| missing_as_corrupt(e, &path, what))?;
        self.check(&path, size, crc, what)
    }

    fn check(&self, path: &Path, size: u64, crc: u32, what: &str) -> Result<()> {
        if size != self.size {
            return Err(Error::Corrupt(format!(
                "{}: {size} bytes, the manifest records {} for {what} (truncated, or from another index)",
                path.display(),
                self.size
            )));
        }
        if crc != self.crc32 {
            return Err(Error::Corrupt(format!(
                "{}: checksum differs from the manifest's for {what} (corrupted, or from another index)",
                path.display()
            )));
        }
        Ok(())
    }

    /// Read the file in `dir` whole, its size and CRC32 checked.
    pub fn read(&self, dir: &Path, what: &str) -> Result<Vec<u8>> {
        let path = dir.join(&self.name);
        let mut bytes = Vec::new();
        crate::fs::open_regular(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| missing_as_corrupt(Error::io(format!("reading {}", path.display()), e), &path, what))?;
        self.check(&path, bytes.len() as u64, crc32fast::hash(&bytes), what)?;
        Ok(bytes)
    }

    /// Open the engine segment this records (memory-mapped), its size and CRC32 checked over
    /// the map; the whole-file CRC stands in for the per-section ones, so each byte is read
    /// once.
    pub fn open_index(&self, dir: &Path, what: &str) -> Result<Index> {
        self.open_mapped(dir, what, true, None)
    }

    /// Open the engine file this process has just written from the bytes this record was
    /// made of ([`FileRecord::of_bytes`]), memory-mapped, from `file` (this record's file, or
    /// the same file still under its temporary name: the mapping stays valid when it is
    /// renamed; errors name `file`): the size is checked, the CRC32 is not computed a second
    /// time (that would read every page of the new file back); every section is validated.
    pub(crate) fn open_written_index_at(&self, file: &Path) -> Result<Index> {
        self.open_mapped_at(file, "a new segment", false, None)
    }

    /// [`FileRecord::open_written_index_at`] (in `dir`) for the image of `built`, an index
    /// parsed in memory (validated there, [`Index::from_image`]): the mapped file must hold
    /// exactly its bytes (one comparison, the pages are still cached), then its sections and
    /// their lengths are checked; the passes over every posting and id are not made again and
    /// the derived block maxima are `built`'s ([`Index::from_written_image`]).
    pub(crate) fn open_written_built_index(&self, dir: &Path, built: &Index) -> Result<Index> {
        self.open_mapped(dir, "a new segment", false, Some(built))
    }

    /// Map and check the file; `built`: an index validated in memory whose bytes the file must
    /// equal (then the deep passes are skipped), or None for a full validation.
    fn open_mapped(&self, dir: &Path, what: &str, check_crc: bool, built: Option<&Index>) -> Result<Index> {
        self.open_mapped_at(&dir.join(&self.name), what, check_crc, built)
    }

    fn open_mapped_at(&self, path: &Path, what: &str, check_crc: bool, built: Option<&Index>) -> Result<Index> {
        let path = path.to_path_buf();
        let image = Image::open_file(&path).map_err(|e| missing_as_corrupt(e, &path, what))?;
        let b = image.as_bytes();
        let crc = if check_crc { crc32fast::hash(b) } else { self.crc32 };
        self.check(&path, b.len() as u64, crc, what)?;
        let built = match built {
            None => None,
            Some(ix) if ix.image_bytes() == b => Some(ix),
            Some(_) => {
                return Err(Error::Corrupt(format!(
                    "{}: differs from the bytes just written ({what}; changed on disk)",
                    path.display()
                )))
            }
        };
        let index = match built {
            None => Index::from_image(image, false),
            Some(ix) => Index::from_written_image(image, ix),
        };
        index.map_err(|e| in_file(e, &path))
    }
}

/// A missing file the manifest names is a corrupt index (or a writer collected it meanwhile;
/// the loader retries when CURRENT moved on).
fn missing_as_corrupt(e: Error, path: &Path, what: &str) -> Error {
    match e {
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            // files lost, or a copy of the directory caught half done (CURRENT copied before
            // the files it names: a served link switched to it, helper-87): both read here
            Error::Corrupt(format!(
                "{}: missing ({what} of the committed index: files lost, or a copy of the index still in progress)",
                path.display()
            ))
        }
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
            Error::Corrupt(format!("{}: not a regular file ({what} of the committed index)", path.display()))
        }
        other => other,
    }
}

/// Prefix a corruption message with the file it is about.
pub fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Corrupt(msg) => Error::Corrupt(format!("{}: {msg}", path.display())),
        other => other,
    }
}

/// Size and CRC32 of a file, read in 1 MiB pieces.
pub fn crc_of_file(path: &Path) -> Result<(u64, u32)> {
    let mut f = crate::fs::open_regular(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            return Ok((size, h.finalize()));
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
}

/// Parse one of the store's small files (every checksum verified).
pub fn parse_small(bytes: &[u8], magic: [u8; 8], path: &Path) -> Result<Container> {
    Container::parse(Image::from_bytes(bytes), magic, STORE_VERSION, true).map_err(|e| in_file(e, path))
}

/// Strings stored as concatenated UTF-8 bytes plus `n + 1` offsets.
pub fn pack_strings<'a>(strings: impl IntoIterator<Item = &'a str>) -> (Vec<u64>, Vec<u8>) {
    let mut off = vec![0u64];
    let mut bytes = Vec::new();
    for s in strings {
        bytes.extend_from_slice(s.as_bytes());
        off.push(bytes.len() as u64);
    }
    (off, bytes)
}

/// The strings of [`pack_strings`], validated (UTF-8, offsets in range and non-decreasing).
pub fn unpack_strings(off: &[u64], bytes: &[u8], what: &str) -> Result<Vec<String>> {
    let bad = || Error::Corrupt(format!("{what}: malformed string table"));
    if off.first() != Some(&0) || off.last() != Some(&(bytes.len() as u64)) {
        return Err(bad());
    }
    off.windows(2)
        .map(|w| {
            let s = bytes.get(w[0] as usize..w[1] as usize).ok_or_else(bad)?;
            std::str::from_utf8(s).map(str::to_string).map_err(|_| bad())
        })
        .collect()
}

/// A random store id: 32 hexadecimal digits, from the standard library's randomly keyed
/// hasher (seeded from the operating system), the time, the process and a counter.
pub fn new_uuid() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seed = (
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed),
    );
    let half = || {
        let mut h = RandomState::new().build_hasher();
        std::hash::Hash::hash(&seed, &mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// Whether `s` looks like a store id.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_name(3), "seg-000003");
        assert_eq!(parse_segment("seg-1234567"), Some(1_234_567));
        for bad in ["seg-12", "seg-00001x", "seg-", "sag-000001"] {
            assert_eq!(parse_segment(bad), None, "{bad}");
        }
        assert_eq!(split_segment_file("seg-000003.docs"), Some(("seg-000003", "docs")));
        assert_eq!(split_segment_file("seg-000003.docs-journal"), Some(("seg-000003", "docs-journal")));
        assert_eq!(split_segment_file("seg-000003."), None);
        assert_eq!(split_segment_file("seg-notes.txt"), None);
        assert_eq!(role_of("sdx"), Role::Engine);
        assert_eq!(role_of("del-000007"), Role::Deletions);
        assert_eq!(role_of("del-x"), Role::Attachment);
        assert_eq!(role_of("docs"), Role::Attachment);
        assert_eq!(ours("LOCK"), None);
        assert_eq!(ours("CURRENT"), None);
        assert_eq!(ours("notes.txt"), None);
        assert_eq!(ours("seg-notes"), None);
        assert_eq!(ours("manifest-000002"), Some(None));
        assert_eq!(ours("vocab-000002"), Some(None));
        assert_eq!(ours(".vocab-000002.tmp-77-3"), Some(None));
        assert_eq!(ours("vocab-2"), None);
        assert_eq!(ours("seg-000002.sdx"), Some(Some("seg-000002")));
        assert_eq!(ours(".seg-000002.sdx.tmp-77-3"), Some(Some("seg-000002")));
        assert_eq!(ours(".CURRENT.tmp-77-3"), Some(None));
        assert_eq!(ours(".LOCK.tmp-77-3"), None);
        assert_eq!(ours(".notes.tmp-77-3"), None);
        let u = new_uuid();
        assert!(is_uuid(&u) && u != new_uuid());
    }
}
