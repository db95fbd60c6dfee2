//! The manifest (one per commit, `manifest-<G>`) and CURRENT (the commit pointer), both
//! containers (see rust/core/FORMAT.md for the byte layout).
//!
//! A manifest holds the store's settings and, per segment, its name, document counts and the
//! record (size + whole-file CRC32) of every file: the engine segment, the deletion file, the
//! attachments. CURRENT holds the manifest's name, size and CRC32 and the store id, so that a
//! manifest swapped in from another commit or store is detected.

use super::files::{
    is_uuid, pack_strings, parse_segment, parse_small, role_of, sdx_name, split_segment_file, unpack_strings,
    FileRecord, Role, CURRENT_MAGIC, MANIFEST_MAGIC, STORE_VERSION,
};
use super::vocab::{parse_vocab, VocabRecord};
use crate::container::{Container, ContainerWriter, Image};
use crate::index::{Bm25Params, Reorder};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// How a store quantizes impacts (and scores BM25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreQuantization {
    /// u8 impacts (BM25: integer scores), a scale shared by the segments that fit it.
    U8,
    /// f32 impacts and scores.
    F32,
}

/// The kind of ids a store holds (fixed by its first document).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// No document yet.
    Unknown,
    /// 64-bit integers.
    Int,
    /// UTF-8 strings.
    Str,
}

/// The settings a store keeps in every manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Impact storage.
    pub quantization: StoreQuantization,
    /// The shared u8 scale (`255 / max_weight`), fixed at creation or by the first commit's
    /// largest weight; a segment with larger weights gets its own grid.
    pub scale: Option<f32>,
    /// Declared vocabulary size (term ids must be below it).
    pub vocab: Option<u32>,
    /// BM25 stores: k1 and b (the scoring arithmetic follows `quantization`).
    pub bm25: Option<(f32, f32)>,
    /// Number of the next segment (names are never reused).
    pub next_segment: u64,
    /// One above the largest integer id ever added (the next automatic id).
    pub next_int_id: i64,
    /// Kind of ids.
    pub id_kind: IdKind,
    /// Opaque JSON of the layer above (encoder identity, ...), stored as given.
    pub json: String,
    /// Document order of new segments and merges (`meta[11]`: 0 signature, the order of
    /// stores written before it was recorded; 1 none; 2 BP with its default options).
    pub reorder: Reorder,
    /// The vocabulary file (term texts by term id, append-only; BM25 stores), if any.
    pub vocabulary: Option<VocabRecord>,
}

impl Settings {
    /// The BM25 parameters of the store's segments.
    pub fn bm25_params(&self) -> Option<Bm25Params> {
        self.bm25.map(|(k1, b)| Bm25Params { k1, b, quantized: self.quantization == StoreQuantization::U8 })
    }
}

/// A segment as one commit records it.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRecord {
    /// `seg-<N>`.
    pub name: String,
    /// Documents in the segment.
    pub n_docs: u32,
    /// Documents not deleted.
    pub n_live: u32,
    /// The engine file.
    pub sdx: FileRecord,
    /// The deletion file, if documents are deleted.
    pub deletions: Option<FileRecord>,
    /// Files of the layer above.
    pub attachments: Vec<FileRecord>,
}

/// One commit of a store.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Commit number (only grows).
    pub generation: u64,
    /// Store id (32 hex digits).
    pub uuid: String,
    /// Settings.
    pub settings: Settings,
    /// Segments, in search order.
    pub segments: Vec<SegmentRecord>,
}

const META_LEN: usize = 16;
/// Format version of a manifest that records a vocabulary file (sections `vocab` and
/// `vocab_name`); one without is written as version 1 ([`STORE_VERSION`]), as before.
pub const MANIFEST_VOCAB_VERSION: u32 = 2;

/// Parse a manifest container of version 1 or 2 (every checksum verified).
fn parse_manifest_container(bytes: &[u8], path: &Path) -> Result<Container> {
    match Container::parse(Image::from_bytes(bytes), MANIFEST_MAGIC, MANIFEST_VOCAB_VERSION, true) {
        Err(Error::UnsupportedVersion { found, .. }) if found == STORE_VERSION => {
            parse_small(bytes, MANIFEST_MAGIC, path)
        }
        Err(Error::UnsupportedVersion { found, .. }) => {
            Err(Error::UnsupportedVersion { found, supported: MANIFEST_VOCAB_VERSION })
        }
        r => r.map_err(|e| super::files::in_file(e, path)),
    }
}

fn corrupt(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{}: {msg}", path.display()))
}

impl Manifest {
    /// The manifest's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let s = &self.settings;
        let mut meta = [0u64; META_LEN];
        meta[0] = self.generation;
        meta[1] = s.next_segment;
        meta[2] = s.next_int_id as u64;
        meta[3] = match s.quantization {
            StoreQuantization::U8 => 0,
            StoreQuantization::F32 => 1,
        };
        meta[4] = s.scale.map_or(0, |x| x.to_bits() as u64 | 1 << 32);
        meta[5] = s.vocab.map_or(0, u64::from);
        meta[6] = s.bm25.map_or(0, |_| 1);
        meta[7] = s.bm25.map_or(0, |p| p.0.to_bits() as u64);
        meta[8] = s.bm25.map_or(0, |p| p.1.to_bits() as u64);
        meta[9] = match s.id_kind {
            IdKind::Unknown => 0,
            IdKind::Int => 1,
            IdKind::Str => 2,
        };
        meta[10] = self.segments.len() as u64;
        meta[11] = match s.reorder {
            Reorder::Signature => 0,
            Reorder::None => 1,
            Reorder::Bp(_) => 2,
        };
        let mut strings: Vec<&str> = Vec::new();
        let mut segs = Vec::new();
        let mut files = Vec::new();
        for r in &self.segments {
            let first = files.len() as u64 / 4;
            let recs = std::iter::once((&r.sdx, 0u64))
                .chain(r.deletions.iter().map(|d| (d, 1)))
                .chain(r.attachments.iter().map(|a| (a, 2)));
            for (f, role) in recs {
                files.extend([strings.len() as u64, f.size, f.crc32 as u64, role]);
                strings.push(&f.name);
            }
            segs.extend([
                strings.len() as u64,
                r.n_docs as u64,
                r.n_live as u64,
                first,
                files.len() as u64 / 4 - first,
            ]);
            strings.push(&r.name);
        }
        let (off, bytes) = pack_strings(strings);
        let version = if s.vocabulary.is_some() { MANIFEST_VOCAB_VERSION } else { STORE_VERSION };
        let mut w = ContainerWriter::new(MANIFEST_MAGIC, version);
        w.add_u64s("meta", &meta)?;
        w.add_bytes("uuid", self.uuid.as_bytes())?;
        w.add_bytes("settings", s.json.as_bytes())?;
        w.add_u64s("segments", &segs)?;
        w.add_u64s("files", &files)?;
        w.add_u64s("string_off", &off)?;
        w.add_bytes("strings", &bytes)?;
        if let Some(v) = &s.vocabulary {
            w.add_u64s("vocab", &[v.file.size, v.file.crc32 as u64, v.n_terms])?;
            w.add_bytes("vocab_name", v.file.name.as_bytes())?;
        }
        Ok(w.into_image().as_bytes().to_vec())
    }

    /// Parse and validate a manifest read from `path`.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let c = parse_manifest_container(bytes, path)?;
        let meta = c.u64s("meta")?;
        if meta.len() != META_LEN {
            return Err(corrupt(path, "section 'meta' has the wrong length"));
        }
        let text = |name: &str| -> Result<String> {
            String::from_utf8(c.bytes(name)?.to_vec())
                .map_err(|_| corrupt(path, format!("section '{name}' is not UTF-8")))
        };
        let uuid = text("uuid")?;
        if !is_uuid(&uuid) {
            return Err(corrupt(path, "no store id"));
        }
        let mut settings = decode_settings(meta, text("settings")?, path)?;
        if c.format_version() == MANIFEST_VOCAB_VERSION {
            let v = c.u64s("vocab")?;
            let name = text("vocab_name")?;
            if v.len() != 3 || v[1] > u32::MAX as u64 || parse_vocab(&name).is_none() {
                return Err(corrupt(path, "bad vocabulary record"));
            }
            settings.vocabulary =
                Some(VocabRecord { file: FileRecord { name, size: v[0], crc32: v[1] as u32 }, n_terms: v[2] });
        }
        let strings = unpack_strings(c.u64s("string_off")?, c.bytes("strings")?, &path.display().to_string())?;
        let segs = c.u64s("segments")?;
        let files = c.u64s("files")?;
        if segs.len() as u64 != 5 * meta[10] || files.len() % 4 != 0 {
            return Err(corrupt(path, "segment or file table has the wrong length"));
        }
        let string =
            |i: u64| strings.get(i as usize).cloned().ok_or_else(|| corrupt(path, "string index out of range"));
        let mut names = HashSet::new();
        let mut segments = Vec::new();
        for s in segs.chunks_exact(5) {
            let name = string(s[0])?;
            let n = parse_segment(&name).ok_or_else(|| corrupt(path, format!("bad segment name {name:?}")))?;
            if n >= settings.next_segment || !names.insert(name.clone()) {
                return Err(corrupt(path, format!("segment {name} is listed twice or beyond the next segment number")));
            }
            let (n_docs, n_live) = (s[1], s[2]);
            if n_docs >= u32::MAX as u64 || n_live > n_docs {
                return Err(corrupt(path, format!("segment {name}: bad document counts {n_live} of {n_docs}")));
            }
            let (first, count) = (s[3] as usize, s[4] as usize);
            let recs = first.checked_add(count).and_then(|end| files.get(4 * first..4 * end));
            let recs = recs.ok_or_else(|| corrupt(path, format!("segment {name}: file records out of range")))?;
            let mut rec = SegmentRecord {
                name: name.clone(),
                n_docs: n_docs as u32,
                n_live: n_live as u32,
                sdx: FileRecord { name: String::new(), size: 0, crc32: 0 },
                deletions: None,
                attachments: Vec::new(),
            };
            for f in recs.chunks_exact(4) {
                let file = FileRecord { name: string(f[0])?, size: f[1], crc32: u32::try_from(f[2]).unwrap_or(0) };
                let role =
                    split_segment_file(&file.name).filter(|(seg, _)| *seg == name).map(|(_, rest)| role_of(rest));
                if !names.insert(file.name.clone()) || f[2] > u32::MAX as u64 {
                    return Err(corrupt(path, format!("file {:?} is listed twice or malformed", file.name)));
                }
                match (role, f[3]) {
                    (Some(Role::Engine), 0) if rec.sdx.name.is_empty() => rec.sdx = file,
                    (Some(Role::Deletions), 1) if rec.deletions.is_none() => rec.deletions = Some(file),
                    (Some(Role::Attachment), 2) => rec.attachments.push(file),
                    _ => return Err(corrupt(path, format!("segment {name}: unexpected file {:?}", file.name))),
                }
            }
            if rec.sdx.name != sdx_name(&name) || (rec.deletions.is_some() != (n_live < n_docs)) {
                return Err(corrupt(path, format!("segment {name}: engine or deletion file missing")));
            }
            segments.push(rec);
        }
        Ok(Manifest { generation: meta[0], uuid, settings, segments })
    }
}

fn decode_settings(meta: &[u64], json: String, path: &Path) -> Result<Settings> {
    let f32_of = |x: u64| u32::try_from(x).map(f32::from_bits).map_err(|_| corrupt(path, "bad setting"));
    let quantization = match meta[3] {
        0 => StoreQuantization::U8,
        1 => StoreQuantization::F32,
        q => return Err(corrupt(path, format!("unknown quantization {q}"))),
    };
    let scale = match meta[4] {
        0 => None,
        x if x >> 32 == 1 => Some(f32_of(x & 0xffff_ffff)?).filter(|s| s.is_finite() && *s > 0.0),
        _ => return Err(corrupt(path, "bad scale")),
    };
    if meta[4] != 0 && scale.is_none() {
        return Err(corrupt(path, "bad scale"));
    }
    let vocab = match meta[5] {
        0 => None,
        v => Some(u32::try_from(v).map_err(|_| corrupt(path, "bad vocabulary size"))?),
    };
    let bm25 = match meta[6] {
        0 => None,
        1 => {
            let (k1, b) = (f32_of(meta[7])?, f32_of(meta[8])?);
            Bm25Params { k1, b, quantized: false }.check().map_err(|e| corrupt(path, e))?;
            Some((k1, b))
        }
        _ => return Err(corrupt(path, "bad kind")),
    };
    let id_kind = match meta[9] {
        0 => IdKind::Unknown,
        1 => IdKind::Int,
        2 => IdKind::Str,
        _ => return Err(corrupt(path, "bad id kind")),
    };
    let reorder = match meta[11] {
        0 => Reorder::Signature,
        1 => Reorder::None,
        2 => Reorder::bp(),
        r => return Err(corrupt(path, format!("unknown document order {r}"))),
    };
    if meta[12..].iter().any(|&x| x != 0) {
        return Err(corrupt(path, "reserved fields are not zero"));
    }
    Ok(Settings {
        quantization,
        scale,
        vocab,
        bm25,
        next_segment: meta[1],
        next_int_id: meta[2] as i64,
        id_kind,
        json,
        reorder,
        vocabulary: None,
    })
}

/// What CURRENT says: the committed manifest (name, size, CRC32), its generation and the
/// store id.
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    /// The committed manifest's record.
    pub manifest: FileRecord,
    /// Its generation.
    pub generation: u64,
    /// The store id.
    pub uuid: String,
}

impl Current {
    /// CURRENT's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = ContainerWriter::new(CURRENT_MAGIC, STORE_VERSION);
        w.add_u64s("meta", &[self.generation, self.manifest.size, self.manifest.crc32 as u64])?;
        w.add_bytes("manifest", self.manifest.name.as_bytes())?;
        w.add_bytes("uuid", self.uuid.as_bytes())?;
        Ok(w.into_image().as_bytes().to_vec())
    }

    /// Parse CURRENT read from `path`.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Current> {
        let c = parse_small(bytes, CURRENT_MAGIC, path)?;
        let meta = c.u64s("meta")?;
        let name = std::str::from_utf8(c.bytes("manifest")?).map_err(|_| corrupt(path, "bad manifest name"))?;
        let uuid = std::str::from_utf8(c.bytes("uuid")?).map_err(|_| corrupt(path, "bad store id"))?;
        if meta.len() != 3
            || meta[2] > u32::MAX as u64
            || super::files::parse_manifest(name) != Some(meta[0])
            || !is_uuid(uuid)
        {
            return Err(corrupt(path, "names no manifest"));
        }
        Ok(Current {
            manifest: FileRecord { name: name.to_string(), size: meta[1], crc32: meta[2] as u32 },
            generation: meta[0],
            uuid: uuid.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let rec = |name: &str| FileRecord { name: name.into(), size: 10, crc32: 7 };
        Manifest {
            generation: 7,
            uuid: "0123456789abcdef0123456789abcdef".into(),
            settings: Settings {
                quantization: StoreQuantization::U8,
                scale: Some(12.5),
                vocab: Some(30522),
                bm25: Some((1.2, 0.75)),
                next_segment: 5,
                next_int_id: -3,
                id_kind: IdKind::Str,
                json: "{\"encoder\": \"é\"}".into(),
                reorder: Reorder::bp(),
                vocabulary: None,
            },
            segments: vec![
                SegmentRecord {
                    name: "seg-000001".into(),
                    n_docs: 10,
                    n_live: 8,
                    sdx: rec("seg-000001.sdx"),
                    deletions: Some(rec("seg-000001.del-000006")),
                    attachments: vec![rec("seg-000001.docs")],
                },
                SegmentRecord {
                    name: "seg-000004".into(),
                    n_docs: 3,
                    n_live: 3,
                    sdx: rec("seg-000004.sdx"),
                    deletions: None,
                    attachments: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let p = Path::new("manifest-000007");
        assert_eq!(Manifest::decode(&m.encode().unwrap(), p).unwrap(), m);
        for reorder in [Reorder::None, Reorder::Signature, Reorder::bp()] {
            let mut m = sample();
            m.settings.reorder = reorder;
            assert_eq!(Manifest::decode(&m.encode().unwrap(), p).unwrap().settings.reorder, reorder);
        }
        let mut m = sample();
        let vocab = VocabRecord {
            file: FileRecord { name: "vocab-000003".into(), size: 640, crc32: 0xdead_beef },
            n_terms: 12,
        };
        m.settings.vocabulary = Some(vocab);
        let bytes = m.encode().unwrap();
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), MANIFEST_VOCAB_VERSION);
        assert_eq!(Manifest::decode(&bytes, p).unwrap(), m);
        assert_eq!(u32::from_le_bytes(sample().encode().unwrap()[8..12].try_into().unwrap()), STORE_VERSION);
        let c = Current {
            manifest: FileRecord { name: "manifest-000007".into(), size: 99, crc32: 3 },
            generation: 7,
            uuid: m.uuid.clone(),
        };
        assert_eq!(Current::decode(&c.encode().unwrap(), Path::new("CURRENT")).unwrap(), c);
    }

    #[test]
    fn refuses_inconsistent_manifests() {
        let p = Path::new("m");
        let mut m = sample();
        m.segments[1].name = "seg-000009".into();
        m.segments[1].sdx.name = "seg-000009.sdx".into();
        assert!(Manifest::decode(&m.encode().unwrap(), p).unwrap_err().to_string().contains("next segment"));
        let mut m = sample();
        m.segments[0].deletions = None;
        assert!(Manifest::decode(&m.encode().unwrap(), p).unwrap_err().to_string().contains("deletion file"));
        let mut m = sample();
        m.segments[0].attachments[0].name = "seg-000004.docs".into();
        assert!(Manifest::decode(&m.encode().unwrap(), p).unwrap_err().to_string().contains("unexpected file"));
        let mut m = sample();
        m.segments[0].n_live = 11;
        assert!(Manifest::decode(&m.encode().unwrap(), p).unwrap_err().to_string().contains("document counts"));
        let bytes = sample().encode().unwrap();
        assert!(Current::decode(&bytes, p).is_err());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(Manifest::decode(&b, p).is_err(), "byte {i}");
        }
    }
}
