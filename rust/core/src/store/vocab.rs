//! The vocabulary file `vocab-<G>`: the term texts of a store whose term ids are positions in
//! a growing term dictionary (BM25: id `i` is the `i`-th distinct term ever added), kept
//! append-only so that a commit costs what its new terms cost, never the whole vocabulary.
//!
//! The file is a sequence of *chunks*, each a complete container (magic `SPDXVOC1`, the one
//! framing of rust/core/FORMAT.md): chunk `c` holds the terms with ids `first .. first + n`.
//! A commit that adds terms appends one chunk in place; the manifest records the file's name,
//! its committed length, the CRC32 of those committed bytes and the number of terms. Readers
//! read exactly the committed prefix and check its CRC32, so bytes past it (a chunk a crashed
//! or failed commit was appending) are never seen, and the next writer cuts them off before it
//! appends. A store's first vocabulary file (and a save's) is written whole under a fresh
//! name, atomically.

use super::files::{in_file, FileRecord};
use crate::container::{Container, ContainerWriter, Image};
use crate::fs::failpoint;
use crate::{Error, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Magic of a vocabulary chunk.
pub const VOCAB_MAGIC: [u8; 8] = *b"SPDXVOC1";
/// Format version of a vocabulary chunk.
pub const VOCAB_VERSION: u32 = 1;
/// The container header is 64 bytes; its total length is at bytes 40..48.
const HEADER_LEN: usize = 64;

/// Name of the vocabulary file first written by the commit of generation `g`.
pub fn vocab_name(g: u64) -> String {
    format!("vocab-{g:06}")
}

/// The generation of a vocabulary file name `vocab-<G>`.
pub fn parse_vocab(name: &str) -> Option<u64> {
    let s = name.strip_prefix("vocab-")?;
    if s.len() < 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a manifest records of the vocabulary file: its name, the committed length (`size`),
/// the CRC32 of those `size` bytes, and the number of terms they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VocabRecord {
    /// Name, committed length and CRC32 of the committed prefix.
    pub file: FileRecord,
    /// Terms in the committed prefix.
    pub n_terms: u64,
}

/// Terms staged for the next commit: `(first id, terms)`.
#[derive(Debug, Default)]
pub(crate) struct StagedTerms(pub(crate) Mutex<Option<(u64, Vec<String>)>>);

/// A vocabulary file opened when its commit was loaded (so that a reader can still read it
/// after a writer replaced and collected it) with its record.
#[derive(Debug)]
pub struct VocabHandle {
    pub(crate) record: VocabRecord,
    pub(crate) path: std::path::PathBuf,
    file: File,
}

fn corrupt(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{}: {msg}", path.display()))
}

/// One chunk: the terms with ids `first .. first + terms.len()` of store `uuid`.
pub fn encode_chunk(uuid: &str, first: u64, terms: &[String]) -> Result<Vec<u8>> {
    let mut off = Vec::with_capacity(terms.len() + 1);
    off.push(0u64);
    let mut bytes = Vec::with_capacity(terms.iter().map(String::len).sum());
    for t in terms {
        bytes.extend_from_slice(t.as_bytes());
        off.push(bytes.len() as u64);
    }
    let mut w = ContainerWriter::new(VOCAB_MAGIC, VOCAB_VERSION);
    w.add_u64s("meta", &[first, terms.len() as u64])?;
    w.add_bytes("owner", uuid.as_bytes())?;
    w.add_u64s("term_off", &off)?;
    w.add_bytes("terms", &bytes)?;
    Ok(w.into_image().as_bytes().to_vec())
}

/// The terms of a committed prefix `bytes` (whose CRC32 the caller checked), from id `start`
/// on: every chunk is parsed, continues the ids of the one before, and belongs to `uuid`;
/// together they hold exactly `n_terms` terms.
pub fn decode(bytes: &[u8], uuid: &str, n_terms: u64, start: u64, path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let (mut at, mut next) = (0usize, 0u64);
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_LEN {
            return Err(corrupt(path, format!("a chunk at byte {at} is cut short")));
        }
        let len = u64::from_le_bytes(rest[40..48].try_into().expect("8 bytes"));
        let len = usize::try_from(len).ok().filter(|&l| l >= HEADER_LEN && l <= rest.len());
        let len = len.ok_or_else(|| corrupt(path, format!("the chunk at byte {at} has a bad length")))?;
        // The whole-prefix CRC32 stands in for the per-section ones.
        let c = Container::parse(Image::from_bytes(&rest[..len]), VOCAB_MAGIC, VOCAB_VERSION, false)
            .map_err(|e| in_file(e, path))?;
        let meta = c.u64s("meta")?;
        if meta.len() != 2 || meta[0] != next {
            return Err(corrupt(path, format!("the chunk at byte {at} does not continue the term ids")));
        }
        if c.bytes("owner")? != uuid.as_bytes() {
            return Err(corrupt(path, "belongs to another index"));
        }
        let off = c.u64s("term_off")?;
        let text = c.bytes("terms")?;
        if off.len() as u64 != meta[1] + 1 || off.first() != Some(&0) || off.last() != Some(&(text.len() as u64)) {
            return Err(corrupt(path, format!("the chunk at byte {at} has a malformed term table")));
        }
        let chunk_end = next + meta[1];
        if chunk_end > start {
            let skip = start.saturating_sub(next) as usize;
            for w in off[skip..].windows(2) {
                let s = text
                    .get(w[0] as usize..w[1] as usize)
                    .ok_or_else(|| corrupt(path, format!("the chunk at byte {at} has a malformed term table")))?;
                let s = std::str::from_utf8(s)
                    .map_err(|_| corrupt(path, format!("a term of the chunk at byte {at} is not UTF-8")))?;
                out.push(s.to_string());
            }
        }
        next = chunk_end;
        at += len;
    }
    if next != n_terms {
        return Err(corrupt(path, format!("holds {next} terms, the manifest records {n_terms}")));
    }
    Ok(out)
}

fn open_error(e: std::io::Error, path: &Path) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        corrupt(path, "missing (the vocabulary file of the committed index)")
    } else if e.kind() == std::io::ErrorKind::InvalidData {
        corrupt(path, "not a regular file (the vocabulary file of the committed index)")
    } else {
        Error::io(format!("opening {}", path.display()), e)
    }
}

impl VocabHandle {
    /// Open the vocabulary file of a commit: it must exist and hold at least the committed
    /// length (more is the leftover of an unfinished append).
    pub(crate) fn open(dir: &Path, record: &VocabRecord) -> Result<VocabHandle> {
        let path = dir.join(&record.file.name);
        let file = crate::fs::open_regular(&path).map_err(|e| open_error(e, &path))?;
        let len = file.metadata().map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?.len();
        if len < record.file.size {
            return Err(corrupt(
                &path,
                format!(
                    "{len} bytes, the manifest records {} for the vocabulary (truncated, or from another index)",
                    record.file.size
                ),
            ));
        }
        Ok(VocabHandle { record: record.clone(), path, file })
    }

    /// The record of this commit's vocabulary.
    pub fn record(&self) -> &VocabRecord {
        &self.record
    }

    /// The committed prefix, its CRC32 checked.
    fn committed_bytes(&self) -> Result<Vec<u8>> {
        let n = usize::try_from(self.record.file.size).map_err(|_| corrupt(&self.path, "too large"))?;
        let mut buf = vec![0u8; n];
        read_exact_at(&self.file, &mut buf, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, "shorter than the manifest records for the vocabulary (truncated)")
            } else {
                Error::io(format!("reading {}", self.path.display()), e)
            }
        })?;
        if crc32fast::hash(&buf) != self.record.file.crc32 {
            return Err(corrupt(
                &self.path,
                "checksum differs from the manifest's for the vocabulary (corrupted, or from another index)",
            ));
        }
        Ok(buf)
    }

    /// Whether this commit's vocabulary begins with the one `earlier` records: the same file,
    /// at least as long, and its first `earlier.file.size` bytes have `earlier`'s CRC32 (then its
    /// first `earlier.n_terms` terms are `earlier`'s). False for a copy of the index that took
    /// other terms since (a backup restored, a link switched between two copies). Reads those
    /// bytes once (about a millisecond per 5 MB), where comparing the terms decoded them all.
    pub fn extends(&self, earlier: &VocabRecord) -> Result<bool> {
        let r = &self.record;
        if r.file.name != earlier.file.name || r.file.size < earlier.file.size || r.n_terms < earlier.n_terms {
            return Ok(false);
        }
        let n = usize::try_from(earlier.file.size).map_err(|_| corrupt(&self.path, "too large"))?;
        let mut buf = vec![0u8; n];
        read_exact_at(&self.file, &mut buf, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, "shorter than the manifest records for the vocabulary (truncated)")
            } else {
                Error::io(format!("reading {}", self.path.display()), e)
            }
        })?;
        Ok(crc32fast::hash(&buf) == earlier.file.crc32)
    }

    /// The committed terms with ids `start ..` (all of the prefix is read and checked).
    pub fn terms(&self, uuid: &str, start: u64) -> Result<Vec<String>> {
        let bytes = self.committed_bytes()?;
        decode(&bytes, uuid, self.record.n_terms, start, &self.path)
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, offset) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write a new vocabulary file `name` in `dir` holding `terms` (ids `0..`), atomically and
/// durably; returns its record.
pub(crate) fn write_new(dir: &Path, name: &str, uuid: &str, terms: &[String]) -> Result<VocabRecord> {
    let bytes = encode_chunk(uuid, 0, terms)?;
    crate::fs::write_atomically(&dir.join(name), &bytes)?;
    Ok(VocabRecord { file: FileRecord::of_bytes(name, &bytes), n_terms: terms.len() as u64 })
}

/// Append `terms` (ids `old.n_terms ..`) to the committed vocabulary file `old` in place and
/// make them durable; returns the record of the longer prefix (for the next manifest). Bytes
/// past the committed length (an append that never reached its commit point) are cut off
/// first. The committed prefix is never touched, so the commit that recorded `old` stays whole
/// whatever happens here.
pub(crate) fn append(dir: &Path, old: &VocabRecord, uuid: &str, terms: &[String]) -> Result<VocabRecord> {
    let path = dir.join(&old.file.name);
    let chunk = encode_chunk(uuid, old.n_terms, terms)?;
    let io = |what: &str| {
        let p = path.display().to_string();
        let what = what.to_string();
        move |e: std::io::Error| Error::io(format!("{what} {p}"), e)
    };
    failpoint::hit("open", &path).map_err(io("opening"))?;
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| open_error(e, &path))?;
    let len = f.metadata().map_err(io("reading metadata of"))?.len();
    if len < old.file.size {
        return Err(corrupt(
            &path,
            format!(
                "{len} bytes, the manifest records {} for the vocabulary (truncated, or from another index)",
                old.file.size
            ),
        ));
    }
    if len > old.file.size {
        failpoint::hit("truncate", &path).map_err(io("truncating"))?;
        f.set_len(old.file.size).map_err(io("truncating"))?;
    }
    f.seek(SeekFrom::Start(old.file.size)).map_err(io("seeking in"))?;
    failpoint::write(&mut f, &chunk).map_err(io("appending to"))?;
    f.flush().map_err(io("appending to"))?;
    failpoint::hit("sync", &path).map_err(io("syncing"))?;
    f.sync_all().map_err(io("syncing"))?;
    let mut h = crc32fast::Hasher::new_with_initial(old.file.crc32);
    h.update(&chunk);
    Ok(VocabRecord {
        file: FileRecord { name: old.file.name.clone(), size: old.file.size + chunk.len() as u64, crc32: h.finalize() },
        n_terms: old.n_terms + terms.len() as u64,
    })
}

/// A shared handle (snapshots of the same commit share it).
pub(crate) type SharedVocab = Option<Arc<VocabHandle>>;

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0123456789abcdef0123456789abcdef";

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names() {
        assert_eq!(vocab_name(7), "vocab-000007");
        assert_eq!(parse_vocab("vocab-000007"), Some(7));
        for bad in ["vocab-7", "vocab-00000x", "vocab", "vocab-000007.tmp"] {
            assert_eq!(parse_vocab(bad), None, "{bad}");
        }
    }

    #[test]
    fn crc_continues_across_appends() {
        let (a, b) = (b"first part".as_slice(), b"and the second".as_slice());
        let mut h = crc32fast::Hasher::new_with_initial(crc32fast::hash(a));
        h.update(b);
        assert_eq!(h.finalize(), crc32fast::hash(&[a, b].concat()));
    }

    #[test]
    fn appends_and_reads_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let r0 = write_new(dir.path(), "vocab-000001", UUID, &strings(&["a", "bé", ""])).unwrap();
        let r1 = append(dir.path(), &r0, UUID, &strings(&["d"])).unwrap();
        let r2 = append(dir.path(), &r1, UUID, &strings(&["e", "f"])).unwrap();
        assert_eq!(r2.n_terms, 6);
        let h = VocabHandle::open(dir.path(), &r2).unwrap();
        assert_eq!(h.terms(UUID, 0).unwrap(), strings(&["a", "bé", "", "d", "e", "f"]));
        assert_eq!(h.terms(UUID, 2).unwrap(), strings(&["", "d", "e", "f"]));
        assert_eq!(h.terms(UUID, 6).unwrap(), Vec::<String>::new());
        // An older commit reads its own prefix.
        assert_eq!(VocabHandle::open(dir.path(), &r1).unwrap().terms(UUID, 0).unwrap(), strings(&["a", "bé", "", "d"]));
        // A torn append past r2 is invisible, and cut off by the next append.
        let p = dir.path().join("vocab-000001");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"SPDXVOC1 half a chunk").unwrap();
        drop(f);
        assert_eq!(VocabHandle::open(dir.path(), &r2).unwrap().terms(UUID, 5).unwrap(), strings(&["f"]));
        let r3 = append(dir.path(), &r2, UUID, &strings(&["g"])).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), r3.file.size);
        assert_eq!(VocabHandle::open(dir.path(), &r3).unwrap().terms(UUID, 6).unwrap(), strings(&["g"]));
        // Another store's file is refused.
        let other = "f".repeat(32);
        let e = VocabHandle::open(dir.path(), &r3).unwrap().terms(&other, 0).unwrap_err();
        assert!(e.to_string().contains("another index"), "{e}");
    }

    #[test]
    fn extends_tells_a_longer_vocabulary_from_a_diverged_copy() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let r0 = write_new(d1.path(), "vocab-000001", UUID, &strings(&["alpha", "bravo"])).unwrap();
        std::fs::copy(d1.path().join("vocab-000001"), d2.path().join("vocab-000001")).unwrap();
        let r1 = append(d1.path(), &r0, UUID, &strings(&["zulu", "xray"])).unwrap();
        // the copy took other terms of the same lengths: same size, same count, other bytes
        let c1 = append(d2.path(), &r0, UUID, &strings(&["yank", "whis"])).unwrap();
        assert_eq!((c1.file.size, c1.n_terms), (r1.file.size, r1.n_terms));
        let h1 = VocabHandle::open(d1.path(), &r1).unwrap();
        assert!(h1.extends(&r0).unwrap());
        assert!(h1.extends(&r1).unwrap());
        assert!(!h1.extends(&c1).unwrap());
        let hc = VocabHandle::open(d2.path(), &c1).unwrap();
        assert!(hc.extends(&r0).unwrap());
        assert!(!hc.extends(&r1).unwrap());
        // shorter, or another file: not an extension
        assert!(!VocabHandle::open(d1.path(), &r0).unwrap().extends(&r1).unwrap());
        let other = VocabRecord { file: FileRecord { name: "vocab-000009".into(), ..r0.file.clone() }, ..r0.clone() };
        assert!(!h1.extends(&other).unwrap());
    }

    #[test]
    fn truncated_or_corrupted_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let r0 = write_new(dir.path(), "vocab-000001", UUID, &strings(&["alpha", "beta"])).unwrap();
        let r1 = append(dir.path(), &r0, UUID, &strings(&["gamma"])).unwrap();
        let p = dir.path().join("vocab-000001");
        let good = std::fs::read(&p).unwrap();
        // Truncated below the committed length: refused at open, and by an append.
        std::fs::write(&p, &good[..good.len() - 10]).unwrap();
        let e = VocabHandle::open(dir.path(), &r1).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains("vocab-000001"), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = append(dir.path(), &r1, UUID, &strings(&["x"])).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains("vocab-000001"), "{e}");
        // Any flipped byte of the committed prefix.
        for i in (0..good.len()).step_by(7) {
            let mut b = good.clone();
            b[i] ^= 0x20;
            std::fs::write(&p, &b).unwrap();
            let e = VocabHandle::open(dir.path(), &r1).unwrap().terms(UUID, 0).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains("vocab-000001"), "byte {i}: {e}");
        }
        // Missing.
        std::fs::remove_file(&p).unwrap();
        let e = VocabHandle::open(dir.path(), &r1).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn decode_checks_the_chunk_chain() {
        let a = encode_chunk(UUID, 0, &strings(&["a", "b"])).unwrap();
        let b = encode_chunk(UUID, 3, &strings(&["c"])).unwrap(); // skips id 2
        let p = Path::new("vocab-000001");
        let e = decode(&[a.clone(), b].concat(), UUID, 3, 0, p).unwrap_err();
        assert!(e.to_string().contains("continue"), "{e}");
        let e = decode(&a, UUID, 3, 0, p).unwrap_err();
        assert!(e.to_string().contains("holds 2 terms"), "{e}");
        let e = decode(&a[..100], UUID, 2, 0, p).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
    }
}
