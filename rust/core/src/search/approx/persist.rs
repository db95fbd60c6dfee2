//! A segment's calibration on disk: the file `seg-<N>.cal` beside the segment's engine file
//! (rust/core/FORMAT.md §6a), so that reopening an index does not calibrate it again.
//!
//! Segments are immutable, so a calibration stays right for as long as its segment lives. The
//! file is a container (magic `SPDXCAL1`, version 9) bound to exactly one engine file: its
//! `owner` section names the store, the segment and the CRC32 of the engine file, so a file
//! left from another store, another segment or another build of the same name is never used.
//! It is written atomically (temporary file, fsync, rename) after a calibration, by whichever
//! process calibrated (a reader too: no commit is made, the manifest does not list it), and
//! removed by the store's garbage collection together with its segment. `save_copy` writes
//! each calibrated segment's file beside its copy, bound to the copy.
//!
//! A calibration file is a cache of something that can be recomputed: a missing, corrupt,
//! foreign or outdated one (another format version, grid of buckets) is ignored, the segment is calibrated
//! again on its first approximate search and the file is rewritten. Its checksums make sure
//! a damaged file is never *used*. A failure to write it (a read-only directory, a full
//! disk) leaves the calibration in memory only, as before; searches never fail for it.

use super::calibrate::{cuts, Calibration, CalibrationPoint, BUCKETS, MIN_BUCKET_QUERIES, RERANKS};
use super::ApproxParams;
use crate::container::{Container, ContainerWriter, Image};
use crate::index::Index;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Magic of a calibration file.
pub const MAGIC: [u8; 8] = *b"SPDXCAL1";
/// Format version of a calibration file. Version 2: the recall of a quantized segment's points
/// is against the float dot product of the stored vectors (version 1 measured it against the
/// segment's quantized scores). Version 3: each point also holds the standard error of its
/// recall, and costs count a reranked row at a remeasured rate. Version 4 (never released):
/// costs modelled at `300 + 2 x entries` postings per reranked row. Version 5: costs are the
/// points' search times measured on the segment, in microseconds, and the exact point holds the
/// exact search's time at recall 1 (versions 2-4: postings plus a modelled cost per reranked
/// row). Version 6 (never released): as 5. Version 7: the grid is measured with the candidate
/// stage approximate search runs (the cut query requantized to 16 bits where
/// `approx::candidate_plan` allows), times are the calibrating thread's CPU time, the reference
/// of a quantized segment is its exact float top-k, and queries are bucketed by their terms in
/// the segment. Version 8: each point also holds `gamma`, the layered cut of segments with a
/// high layer (`approx::layer`), whose grid replaces the cuts by bound share there. Version 9:
/// the layout of 8, but a calibration on pseudo-queries includes multi-topic ones
/// (`calibrate::pseudo_queries`) and a point's recall is that of its bucket's kind of query
/// least sure to reach a target; version 8's pseudo-query calibrations missed their targets on
/// multi-topic long queries. A file of another version is refused, so the segment is
/// calibrated again, but for a version-8 file of a calibration on the user's queries
/// ([`USER_QUERIES_SINCE`]).
pub const VERSION: u32 = 9;
/// The earliest version whose calibrations on the user's queries (not pseudo-queries) are
/// still read: version 9 changed only how pseudo-queries are made and weighed, so a version-8
/// calibration on the user's queries is what version 9 would make of the same queries, and
/// throwing it away would recalibrate the segment on pseudo-queries, not on the user's.
pub const USER_QUERIES_SINCE: u32 = 8;
/// u64 values per point in the `points` section.
const POINT_WORDS: usize = 7;
/// Extension of a segment's calibration file (`seg-<N>.cal`).
pub const EXT: &str = "cal";

/// Where a segment's calibration is kept, and the owner string that binds the file to the
/// segment's engine file.
#[derive(Clone, Debug)]
pub struct Sidecar {
    /// The file `seg-<N>.cal`.
    pub path: PathBuf,
    /// `<store uuid>/<segment>/<CRC32 of the engine file, 8 hex digits>`.
    pub owner: String,
}

/// A calibration file's length, modification time and (on Unix) inode: what tells this handle
/// that another one rewrote it ([`follow`]).
pub(crate) type FileSig = (u64, Option<std::time::SystemTime>, u64);

fn file_sig(path: &Path) -> Option<FileSig> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.len(), m.modified().ok(), ino))
}

/// Note the calibration file of `index` as it is now: read or written by this handle.
fn seen(index: &Index, path: &Path) {
    *index.approx().file_seen.lock().unwrap_or_else(|e| e.into_inner()) = file_sig(path);
}

/// Take the segment's calibration file when another handle or process rewrote it since this
/// one last read or wrote it (a `calibrate(queries)` elsewhere, while this handle, a server's,
/// kept the calibration it had: helper-152), and it is valid for the segment. Only for a
/// segment calibrated in memory already (without one, its next approximate search reads the
/// file anyway). True if it took the file. [`crate::store::Store::refresh`] calls it for every
/// segment: a stat each.
pub fn follow(index: &Index) -> bool {
    let Some(sc) = index.approx().file.get() else { return false };
    if index.approx().slot().is_none() {
        return false;
    }
    let now = file_sig(&sc.path);
    {
        let mut seen = index.approx().file_seen.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_none() || *seen == now {
            return false;
        }
        *seen = now;
    }
    let Some(c) = read_bounded(&sc.path).and_then(|bytes| decode(&bytes, &sc.owner, index.n_docs()).ok()) else {
        return false; // damaged or foreign: the calibration in memory stays
    };
    LOADED.fetch_add(1, Ordering::Relaxed);
    *index.approx().slot() = Some(Arc::new(c));
    true
}

static WRITTEN: AtomicU64 = AtomicU64::new(0);
static LOADED: AtomicU64 = AtomicU64::new(0);

/// Calibration files written and read by this process so far (an observable for tests).
pub fn counters() -> (u64, u64) {
    (WRITTEN.load(Ordering::Relaxed), LOADED.load(Ordering::Relaxed))
}

/// The largest calibration file read: a real one holds a few hundred points (48 bytes each)
/// and is under 32 KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The bytes of the calibration file at `path` when it is a regular file of at most
/// [`MAX_FILE_BYTES`]; None otherwise. A FIFO would block the open forever and a device such
/// as `/dev/zero` never ends, so the file's type and size are checked before it is opened,
/// and the read stops after the limit whatever the file does meanwhile.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    crate::fs::open_regular(path).ok()?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes)
}

/// The name of segment `segment`'s calibration file.
pub fn file_name(segment: &str) -> String {
    format!("{segment}.{EXT}")
}

/// Tell `index` (segment `segment` of store `uuid` in `dir`, engine file CRC32 `sdx_crc`) where
/// its calibration lives, and take the calibration from the file when there is a valid one and
/// the segment has none in memory yet. Does nothing after the first call for an index.
pub fn attach(index: &Index, dir: &Path, uuid: &str, segment: &str, sdx_crc: u32) {
    if index.approx().file.get().is_some() {
        return;
    }
    let sc = Sidecar { path: dir.join(file_name(segment)), owner: owner(uuid, segment, sdx_crc) };
    let sig = file_sig(&sc.path);
    let loaded = read_bounded(&sc.path).and_then(|bytes| decode(&bytes, &sc.owner, index.n_docs()).ok());
    if index.approx().file.set(sc).is_err() {
        return; // another thread attached it first
    }
    *index.approx().file_seen.lock().unwrap_or_else(|e| e.into_inner()) = sig;
    let mut slot = index.approx().slot();
    match loaded {
        Some(c) if slot.is_none() => {
            *slot = Some(Arc::new(c));
            LOADED.fetch_add(1, Ordering::Relaxed);
        }
        // Calibrated before the store knew its file (a merge's new segment, calibrated while
        // merging because its members were, [`crate::store::Store::merge`]): written now.
        None => {
            if let (Some(c), Some(sc)) = (slot.as_ref(), index.approx().file.get()) {
                if write_file(&sc.path, &sc.owner, c, index.n_docs()) {
                    seen(index, &sc.path);
                }
            }
        }
        _ => {}
    }
}

/// Whether the segment has been calibrated: in memory, or in its calibration file (a file is
/// checked for being there, not read).
pub fn calibrated(index: &Index) -> bool {
    index.approx().slot().is_some() || index.approx().file.get().is_some_and(|sc| sc.path.is_file())
}

/// The calibration in `index`'s calibration file as it is now, if the store told the segment
/// where its file is and the file is valid for it (counted as a read, see [`counters`]). Another
/// handle or process may have written it since this one attached the segment.
pub fn load(index: &Index) -> Option<Calibration> {
    let sc = index.approx().file.get()?;
    let sig = file_sig(&sc.path);
    let c = read_bounded(&sc.path).and_then(|bytes| decode(&bytes, &sc.owner, index.n_docs()).ok())?;
    *index.approx().file_seen.lock().unwrap_or_else(|e| e.into_inner()) = sig;
    LOADED.fetch_add(1, Ordering::Relaxed);
    Some(c)
}

/// Write `c` as `index`'s calibration file, if the store told it where (best effort: a
/// failure leaves the calibration in memory only). True if written.
pub fn save(index: &Index, c: &Calibration) -> bool {
    let Some(sc) = index.approx().file.get() else { return false };
    let ok = write_file(&sc.path, &sc.owner, c, index.n_docs());
    if ok {
        seen(index, &sc.path);
    }
    ok
}

/// The owner string binding a calibration file to segment `segment` of store `uuid` whose
/// engine file has CRC32 `sdx_crc`.
fn owner(uuid: &str, segment: &str, sdx_crc: u32) -> String {
    format!("{uuid}/{segment}/{sdx_crc:08x}")
}

/// Write `c` (for `owner`, a segment of `n_docs` documents) to `path` atomically; best effort.
fn write_file(path: &Path, owner: &str, c: &Calibration, n_docs: u32) -> bool {
    let ok = encode(c, owner, n_docs).and_then(|b| crate::fs::write_atomically(path, &b)).is_ok();
    if ok {
        WRITTEN.fetch_add(1, Ordering::Relaxed);
    }
    ok
}

/// Write `index`'s calibration, if it has one in memory, as the calibration file of segment
/// `segment` of store `uuid` in `dir` whose engine file (the same bytes as `index`'s) has CRC32
/// `sdx_crc`: what `save_copy` does for each segment it copies, so a saved copy is not
/// calibrated again. Best effort, like [`save`]. True if written.
pub fn save_for(index: &Index, dir: &Path, uuid: &str, segment: &str, sdx_crc: u32) -> bool {
    let c = index.approx().slot().clone();
    let Some(c) = c else { return false };
    write_file(&dir.join(file_name(segment)), &owner(uuid, segment, sdx_crc), &c, index.n_docs())
}

/// The bytes of a calibration file for `c`.
pub fn encode(c: &Calibration, owner: &str, n_docs: u32) -> Result<Vec<u8>> {
    let mut w = ContainerWriter::new(MAGIC, VERSION);
    w.add_u64s("meta", &[n_docs as u64, c.points.len() as u64, u64::from(c.pseudo)])?;
    w.add_bytes("owner", owner.as_bytes())?;
    w.add_u64s("buckets", &BUCKETS.map(|b| b as u64))?;
    w.add_u64s("queries", &c.queries.map(|q| q as u64))?;
    w.add_u64s("sources", &c.from_pseudo.map(u64::from))?;
    let mut pts = Vec::with_capacity(c.points.len() * POINT_WORDS);
    for p in &c.points {
        pts.extend([
            p.bucket as u64,
            p.params.beta.to_bits() as u64,
            p.params.rerank.to_bits() as u64,
            p.recall.to_bits(),
            p.recall_se.to_bits(),
            p.cost.to_bits(),
            p.params.gamma.to_bits() as u64,
        ]);
    }
    w.add_u64s("points", &pts)?;
    Ok(w.into_image().as_bytes().to_vec())
}

/// Parse a calibration file made for `owner` (a segment of `n_docs` documents); every value is
/// checked (a file for another owner, grid of buckets or document count is refused too).
pub fn decode(bytes: &[u8], owner: &str, n_docs: u32) -> Result<Calibration> {
    let bad = |m: &str| Error::Corrupt(format!("calibration file: {m}"));
    let (c, version) = match Container::parse(Image::from_bytes(bytes), MAGIC, VERSION, true) {
        Err(Error::UnsupportedVersion { found, .. }) if (USER_QUERIES_SINCE..VERSION).contains(&found) => {
            (Container::parse(Image::from_bytes(bytes), MAGIC, found, true)?, found)
        }
        r => (r?, VERSION),
    };
    if c.bytes("owner")? != owner.as_bytes() {
        return Err(bad("belongs to another index, segment or engine file"));
    }
    let meta = c.u64s("meta")?;
    if meta.len() != 3 || meta[0] != n_docs as u64 || meta[2] > 1 {
        return Err(bad("bad meta section"));
    }
    if version < VERSION && meta[2] == 1 {
        // an earlier version's calibration on pseudo-queries: made again
        return Err(Error::UnsupportedVersion { found: version, supported: VERSION });
    }
    if c.u64s("buckets")? != BUCKETS.map(|b| b as u64).as_slice() {
        return Err(bad("made for another grid of query-length buckets"));
    }
    let q = c.u64s("queries")?;
    if q.len() != BUCKETS.len() || q.iter().any(|&x| x > u32::MAX as u64) {
        return Err(bad("bad queries section"));
    }
    let mut queries = [0usize; 6];
    for (d, &s) in queries.iter_mut().zip(q) {
        *d = s as usize;
    }
    // Per bucket, calibrated on pseudo-queries (1) or on the queries given (0); files written
    // before the section existed (it adds nothing a reader of version 9 must know) are of one
    // source throughout, `meta[2]`'s.
    let pseudo = meta[2] == 1;
    let mut from_pseudo = [pseudo; 6];
    if c.has("sources") {
        let s = c.u64s("sources")?;
        if s.len() != BUCKETS.len() || s.iter().any(|&x| x > 1) || (pseudo && s.contains(&0)) {
            return Err(bad("bad sources section"));
        }
        for (d, &x) in from_pseudo.iter_mut().zip(s) {
            *d = x == 1;
        }
        // a calibration on queries given has a bucket of them (`calibrate_with` refuses queries
        // too few for every bucket): one marked otherwise was tampered with (helper-156)
        if !pseudo && !(0..BUCKETS.len()).any(|b| !from_pseudo[b] && queries[b] >= MIN_BUCKET_QUERIES) {
            return Err(bad("bad sources section: no bucket of the queries given"));
        }
    }
    let raw = c.u64s("points")?;
    if raw.len() % POINT_WORDS != 0 || (raw.len() / POINT_WORDS) as u64 != meta[1] {
        return Err(bad("bad points section"));
    }
    let mut points = Vec::with_capacity(raw.len() / POINT_WORDS);
    for r in raw.chunks_exact(POINT_WORDS) {
        let f32_of = |x: u64| (x <= u32::MAX as u64).then(|| f32::from_bits(x as u32));
        let (Some(beta), Some(rerank), Some(gamma)) = (f32_of(r[1]), f32_of(r[2]), f32_of(r[6])) else {
            return Err(bad("bad parameters"));
        };
        let (recall, recall_se, cost) = (f64::from_bits(r[3]), f64::from_bits(r[4]), f64::from_bits(r[5]));
        let bucket = r[0] as usize;
        let ok = bucket < BUCKETS.len()
            && queries[bucket] > 0
            && (cuts(false).contains(&(beta, gamma)) || cuts(true).contains(&(beta, gamma)))
            && RERANKS.contains(&rerank)
            && (0.0..=1.0).contains(&recall)
            && (0.0..=1.0).contains(&recall_se)
            && cost.is_finite()
            && cost >= 0.0;
        if !ok {
            return Err(bad("a calibration point is out of range"));
        }
        points.push(CalibrationPoint { bucket, params: ApproxParams { beta, gamma, rerank }, recall, recall_se, cost });
    }
    // Every point from one grid: the layered one (segments with a high layer) or the cuts by
    // bound share alone (breaker31 L1: a file whose layered points were all turned to gamma 0,
    // checksums recomputed, mixed both grids and was used).
    let (layered, plain) = (cuts(true), cuts(false));
    let cut = |p: &CalibrationPoint| (p.params.beta, p.params.gamma);
    if !(points.iter().all(|p| layered.contains(&cut(p))) || points.iter().all(|p| plain.contains(&cut(p)))) {
        return Err(bad("points from more than one grid of cuts"));
    }
    Ok(Calibration { points, queries, pseudo, from_pseudo })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Calibration {
        Calibration {
            points: vec![
                CalibrationPoint {
                    bucket: 1,
                    params: ApproxParams { beta: 0.5, gamma: 0.0, rerank: 2.5 },
                    recall: 0.97,
                    recall_se: 0.004,
                    cost: 1234.5,
                },
                CalibrationPoint { bucket: 1, params: ApproxParams::EXACT, recall: 1.0, recall_se: 0.0, cost: 9999.0 },
                CalibrationPoint {
                    bucket: 1,
                    params: ApproxParams { beta: 0.8, gamma: 0.1, rerank: 6.5 },
                    recall: 0.99,
                    recall_se: 0.002,
                    cost: 321.0,
                },
            ],
            queries: [0, 100, 0, 0, 0, 0],
            pseudo: true,
            from_pseudo: [true; 6],
        }
    }

    #[test]
    fn round_trip() {
        let c = sample();
        let b = encode(&c, "u/seg-000001/0000abcd", 10_000).unwrap();
        let d = decode(&b, "u/seg-000001/0000abcd", 10_000).unwrap();
        assert_eq!(d.points, c.points);
        assert_eq!(d.queries, c.queries);
        assert!(d.pseudo);
        assert_eq!(d.from_pseudo, [true; 6]);
    }

    /// A calibration on queries whose thin buckets were taken from pseudo-queries keeps each
    /// bucket's source; a file without the `sources` section (written before it existed) is of
    /// `meta[2]`'s source throughout; a bad section is refused.
    #[test]
    fn sources_per_bucket() {
        let owner = "u/seg-000001/0000abcd";
        let mixed = Calibration { pseudo: false, from_pseudo: [true, false, true, false, false, true], ..sample() };
        let d = decode(&encode(&mixed, owner, 10_000).unwrap(), owner, 10_000).unwrap();
        assert_eq!((d.pseudo, d.from_pseudo), (false, mixed.from_pseudo));
        // without the section: as version 9 wrote it before
        let rewrite = |c: &Calibration, sources: Option<&[u64]>| {
            let b = encode(c, owner, 10_000).unwrap();
            let parsed = Container::parse(Image::from_bytes(&b), MAGIC, VERSION, true).unwrap();
            let mut w = ContainerWriter::new(MAGIC, VERSION);
            for name in ["meta", "buckets", "queries", "points"] {
                w.add_u64s(name, parsed.u64s(name).unwrap()).unwrap();
            }
            w.add_bytes("owner", owner.as_bytes()).unwrap();
            if let Some(s) = sources {
                w.add_u64s("sources", s).unwrap();
            }
            w.into_image().as_bytes().to_vec()
        };
        let d = decode(&rewrite(&mixed, None), owner, 10_000).unwrap();
        assert_eq!(d.from_pseudo, [false; 6]);
        let d = decode(&rewrite(&sample(), None), owner, 10_000).unwrap();
        assert_eq!(d.from_pseudo, [true; 6]);
        for bad in [&[0u64, 0, 0, 0, 0][..], &[0, 0, 2, 0, 0, 0], &[0; 7]] {
            let e = decode(&rewrite(&mixed, Some(bad)), owner, 10_000).unwrap_err();
            assert!(e.to_string().contains("bad sources section"), "{e}");
        }
        // a calibration on queries given with no bucket of them, or only a thin one
        for bad in [&[1u64; 6][..], &[1, 1, 1, 1, 1, 0]] {
            let e = decode(&rewrite(&mixed, Some(bad)), owner, 10_000).unwrap_err();
            assert!(e.to_string().contains("no bucket of the queries given"), "{e}");
        }
        // a calibration on pseudo-queries alone has no bucket of queries given
        let e = decode(&rewrite(&sample(), Some(&[1, 0, 1, 1, 1, 1])), owner, 10_000).unwrap_err();
        assert!(e.to_string().contains("bad sources section"), "{e}");
    }

    #[test]
    fn refuses_an_earlier_version() {
        // Version 1 recall was measured against quantized scores, version 2 has no standard
        // errors, versions 2 to 4 hold modelled costs, not measured times: a file of an
        // earlier version must never be read as the current one.
        for version in 1..VERSION {
            refuses_version(version);
        }
    }

    /// A version-8 file of a calibration on the user's queries is read (version 9 changed only
    /// the pseudo-queries); one on pseudo-queries is refused.
    #[test]
    fn reads_a_version_8_calibration_on_the_users_queries() {
        let c = Calibration { pseudo: false, from_pseudo: [false; 6], ..sample() };
        let d = decode(&with_version(&c, 8), "u/seg-000001/0000abcd", 10_000).unwrap();
        assert_eq!((&d.points, d.queries, d.pseudo, d.from_pseudo), (&c.points, c.queries, false, [false; 6]));
        let e = decode(&with_version(&sample(), 8), "u/seg-000001/0000abcd", 10_000).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { found: 8, .. }), "{e}");
        let e = decode(&with_version(&c, 7), "u/seg-000001/0000abcd", 10_000).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { found: 7, .. }), "{e}");
    }

    /// `c` encoded as a file of `version`.
    fn with_version(c: &Calibration, version: u32) -> Vec<u8> {
        let mut w = ContainerWriter::new(MAGIC, version);
        let b = encode(c, "u/seg-000001/0000abcd", 10_000).unwrap();
        let parsed = Container::parse(Image::from_bytes(&b), MAGIC, VERSION, true).unwrap();
        for name in ["meta", "buckets", "queries", "points"] {
            w.add_u64s(name, parsed.u64s(name).unwrap()).unwrap();
        }
        w.add_bytes("owner", b"u/seg-000001/0000abcd").unwrap();
        w.into_image().as_bytes().to_vec()
    }

    fn refuses_version(version: u32) {
        let c = sample();
        let mut w = ContainerWriter::new(MAGIC, version);
        let b = encode(&c, "u/seg-000001/0000abcd", 10_000).unwrap();
        let parsed = Container::parse(Image::from_bytes(&b), MAGIC, VERSION, true).unwrap();
        for name in ["meta", "buckets", "queries", "points"] {
            w.add_u64s(name, parsed.u64s(name).unwrap()).unwrap();
        }
        w.add_bytes("owner", b"u/seg-000001/0000abcd").unwrap();
        let old = w.into_image().as_bytes().to_vec();
        let e = decode(&old, "u/seg-000001/0000abcd", 10_000).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { found, .. } if found == version), "{e}");
    }

    /// A current-version file whose points hold a standard error out of range (negative, above 1,
    /// NaN) or 5 words (version 2's layout) is refused, never used.
    #[test]
    fn refuses_bad_standard_errors_and_short_points() {
        for se in [-0.1, 1.5, f64::NAN] {
            let mut c = sample();
            c.points[0].recall_se = se;
            let b = encode(&c, "o", 10_000).unwrap();
            assert!(decode(&b, "o", 10_000).is_err(), "standard error {se}");
        }
        let c = sample();
        let b = encode(&c, "o", 10_000).unwrap();
        let parsed = Container::parse(Image::from_bytes(&b), MAGIC, VERSION, true).unwrap();
        let mut w = ContainerWriter::new(MAGIC, VERSION);
        for name in ["meta", "buckets", "queries"] {
            w.add_u64s(name, parsed.u64s(name).unwrap()).unwrap();
        }
        w.add_bytes("owner", b"o").unwrap();
        let five: Vec<u64> =
            parsed.u64s("points").unwrap().chunks(POINT_WORDS).flat_map(|p| [p[0], p[1], p[2], p[3], p[5]]).collect();
        w.add_u64s("points", &five).unwrap();
        let e = decode(w.into_image().as_bytes(), "o", 10_000).unwrap_err();
        assert!(e.to_string().contains("points"), "{e}");
    }

    /// Parameters off the calibration grid (a hand-edited file whose checksums were
    /// recomputed: `rerank` 1e30, `beta` 0.55, a gamma off the layered grid or beside a beta
    /// below 1) are refused (newcomer13 F5).
    #[test]
    fn refuses_parameters_off_the_grid() {
        for (beta, gamma, rerank) in
            [(0.5, 0.0, 1e30), (0.5, 0.0, 3.0), (0.45, 0.0, 2.5), (0.0, 0.0, 2.5), (1.0, 0.13, 2.5), (0.5, 0.1, 2.5)]
        {
            let mut c = sample();
            c.points[0].params = ApproxParams { beta, gamma, rerank };
            let b = encode(&c, "o", 10_000).unwrap();
            let e = decode(&b, "o", 10_000).unwrap_err();
            assert!(e.to_string().contains("out of range"), "beta {beta} gamma {gamma} rerank {rerank}: {e}");
        }
        assert!(decode(&encode(&sample(), "o", 10_000).unwrap(), "o", 10_000).is_ok());
    }

    /// A file mixing the two grids of cuts (layered points turned to gamma 0 by hand, checksums
    /// recomputed) is refused; either grid alone is read.
    #[test]
    fn refuses_points_of_two_grids() {
        let mut c = sample();
        c.points[0].params = ApproxParams { beta: 0.65, gamma: 0.0, rerank: 2.5 }; // plain grid only
        let e = decode(&encode(&c, "o", 10_000).unwrap(), "o", 10_000).unwrap_err();
        assert!(e.to_string().contains("more than one grid"), "{e}");
        c.points.truncate(2); // (0.65, 0) and the exact point: the plain grid
        assert!(decode(&encode(&c, "o", 10_000).unwrap(), "o", 10_000).is_ok());
    }

    #[test]
    fn refuses_foreign_or_damaged() {
        let b = encode(&sample(), "u/seg-000001/0000abcd", 10_000).unwrap();
        assert!(decode(&b, "u/seg-000001/0000abce", 10_000).is_err());
        assert!(decode(&b, "u/seg-000001/0000abcd", 10_001).is_err());
        assert!(decode(&b[..b.len() - 1], "u/seg-000001/0000abcd", 10_000).is_err());
        for i in [0, 20, 70, 130, b.len() - 70] {
            let mut x = b.clone();
            x[i] ^= 0x40;
            assert!(decode(&x, "u/seg-000001/0000abcd", 10_000).is_err(), "flip at {i}");
        }
    }
}
