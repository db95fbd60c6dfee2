//! The versioned, checksummed file image that every index lives in.
//!
//! An index is built into an in-memory [`Image`] with a [`ContainerWriter`], then either used
//! directly or saved with [`ContainerWriter::write_file`]; a saved file is opened again by
//! mapping it read-only ([`Image::open_file`]). Both kinds of image go through the same
//! [`Container::parse`], which validates everything before any section is handed out, so a
//! truncated, corrupted or foreign file is an [`Error::Corrupt`] and never a panic or undefined
//! behaviour.
//!
//! # Layout (all integers little-endian)
//!
//! ```text
//! offset 0   header, 64 bytes
//!            0..8    magic (chosen by the caller, e.g. b"SPDXIDX\0")
//!            8..12   format version (of the caller's format)
//!            12..16  byte-order mark 0x0A0B0C0D (reads differently on a big-endian writer)
//!            16..20  container layout version (this module's layout, currently 1)
//!            20..24  flags (must be 0)
//!            24..28  section count
//!            28..32  CRC32 of the section table
//!            32..40  section table offset (64-aligned)
//!            40..48  total length of the file in bytes
//!            48..60  reserved, zero
//!            60..64  CRC32 of header bytes 0..60
//! offset 64  sections, in table order, each starting at a multiple of 64 from the file start,
//!            separated by zero padding
//! table      one 64-byte entry per section, at the end of the file:
//!            0..32   name, ASCII, zero-padded (1..=32 printable characters)
//!            32..40  offset of the data from the file start (64-aligned)
//!            40..48  length of the data in bytes
//!            48..52  CRC32 of the data
//!            52..56  element kind (0 bytes, 1 u32, 2 u64, 3 f32, 4 i64)
//!            56..64  reserved, zero
//! ```
//!
//! The file ends exactly at the end of the table (`total length = table offset + 64 × count`).
//! Every byte is covered by a check: the header by its CRC, the table by its CRC (stored in the
//! header), section data by per-section CRCs (checked when `verify_checksums` is set), and all
//! padding between sections must be zero (always checked). A single flipped byte anywhere is
//! therefore detected when checksums are verified; without them, only section data can change
//! unnoticed.
//!
//! Putting the table at the end lets the writer append each section straight into the final
//! 64-byte aligned buffer, so building an image never holds two copies of the data.
//!
//! Big-endian hosts are refused on parse (an [`Error::InvalidArgument`]) rather than misread.

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Size of the fixed header, and the alignment of every section.
pub const ALIGN: usize = 64;
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 64;
/// Longest section name in bytes.
pub const MAX_NAME_LEN: usize = 32;
const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;
const LAYOUT_VERSION: u32 = 1;

/// Element type recorded for a section; typed accessors check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bytes = 0,
    U32 = 1,
    U64 = 2,
    F32 = 3,
    I64 = 4,
}

impl Kind {
    fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            0 => Kind::Bytes,
            1 => Kind::U32,
            2 => Kind::U64,
            3 => Kind::F32,
            4 => Kind::I64,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Bytes => "bytes",
            Kind::U32 => "u32",
            Kind::U64 => "u64",
            Kind::F32 => "f32",
            Kind::I64 => "i64",
        }
    }
    fn elem_size(self) -> usize {
        match self {
            Kind::Bytes => 1,
            Kind::U32 | Kind::F32 => 4,
            Kind::U64 | Kind::I64 => 8,
        }
    }
}

mod sealed {
    /// Plain numeric element types: every bit pattern is a valid value, no padding.
    pub trait Pod: Copy + 'static {
        const KIND: super::Kind;
        fn write_le(data: &[Self], out: &mut Vec<u8>);
    }
}
use sealed::Pod;

macro_rules! pod {
    ($t:ty, $k:expr) => {
        impl Pod for $t {
            const KIND: Kind = $k;
            fn write_le(data: &[Self], out: &mut Vec<u8>) {
                for v in data {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    };
}
pod!(u32, Kind::U32);
pod!(u64, Kind::U64);
pod!(f32, Kind::F32);
pod!(i64, Kind::I64);
// u16 arrays are stored as byte sections (element kind 0), little-endian: the container's
// element kinds stay as they are; `u16s` reinterprets a byte section of even length.
pod!(u16, Kind::Bytes);

/// View a slice of plain numbers as its bytes in memory order.
fn pod_bytes<T: Pod>(data: &[T]) -> &[u8] {
    // SAFETY: T is one of u16/u32/u64/f32/i64 (sealed): no padding, no invalid bit patterns for
    // u8, and u8 has alignment 1; the byte length is exactly the slice's size in memory.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn crc(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A 64-byte aligned block; the unit of the owned buffer.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; ALIGN]);

/// Growable byte buffer whose start is 64-byte aligned in memory.
struct AlignedBuf {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuf {
    fn new() -> Self {
        AlignedBuf { blocks: Vec::new(), len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `blocks` owns `blocks.len() * 64 >= len` initialized bytes; Block is
        // repr(C) over [u8; 64], so its storage is plain bytes.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// Grow to `new_len >= len` bytes. Bytes past `len` are always zero (blocks are zeroed
    /// when allocated and the buffer never shrinks), so the new bytes are zero.
    fn grow(&mut self, new_len: usize) {
        debug_assert!(new_len >= self.len);
        let blocks = new_len.div_ceil(ALIGN);
        if blocks > self.blocks.len() {
            // Vec::resize reserves with amortized doubling.
            self.blocks.resize(blocks, Block([0; ALIGN]));
        }
        self.len = new_len;
    }

    /// Append `data`. New blocks are written once (the data, then zeros past its end), not
    /// zero-filled first and then overwritten.
    fn extend_from_slice(&mut self, data: &[u8]) {
        let start = self.len;
        let new_len = start + data.len();
        let old_blocks = self.blocks.len();
        let blocks = new_len.div_ceil(ALIGN);
        if blocks <= old_blocks {
            self.len = new_len;
            self.as_bytes_mut()[start..].copy_from_slice(data);
            return;
        }
        let old_end = old_blocks * ALIGN; // >= start: bytes past `len` lie in the last block
        let head = old_end - start; // the bytes of `data` that land in the existing blocks
        self.blocks.reserve(blocks - old_blocks);
        // SAFETY: the vector has capacity for `blocks` blocks; every byte of the new blocks
        // `old_blocks..blocks` (offsets `old_end..blocks * ALIGN`) is written below, `data`'s
        // tail then zeros, before `set_len`; Block is repr(C) over plain bytes; `data` cannot
        // overlap the vector's spare capacity.
        unsafe {
            let base = self.blocks.as_mut_ptr().cast::<u8>();
            std::ptr::copy_nonoverlapping(data.as_ptr().add(head), base.add(old_end), new_len - old_end);
            std::ptr::write_bytes(base.add(new_len), 0, blocks * ALIGN - new_len);
            self.blocks.set_len(blocks);
        }
        self.len = new_len;
        self.as_bytes_mut()[start..old_end].copy_from_slice(&data[..head]);
    }

    /// Reserve room for `additional` more bytes, so that appending them does not reallocate
    /// (and copy) the image built so far.
    fn reserve(&mut self, additional: usize) {
        let blocks = (self.len + additional).div_ceil(ALIGN);
        self.blocks.reserve(blocks.saturating_sub(self.blocks.len()));
    }

    /// Pad with zeros to the next multiple of 64.
    fn pad(&mut self) {
        self.grow(align_up(self.len));
    }
}

enum Storage {
    Owned(AlignedBuf),
    Mapped(memmap2::Mmap),
}

/// The bytes of one container: an owned, 64-byte aligned buffer, or a read-only memory map
/// of a file. Cheap to move; `Send + Sync`.
pub struct Image {
    storage: Storage,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.storage {
            Storage::Owned(_) => "owned",
            Storage::Mapped(_) => "mapped",
        };
        f.debug_struct("Image").field("storage", &kind).field("len", &self.len()).finish()
    }
}

impl Image {
    /// Map a file read-only. A file shorter than the 64-byte header (including an empty file)
    /// is [`Error::Corrupt`]; everything else is checked by [`Container::parse`].
    ///
    /// The map is only sound while no one modifies the file; files written by
    /// [`ContainerWriter::write_file`] are replaced by rename, never rewritten in place.
    pub fn open_file(path: &Path) -> Result<Image> {
        let file = crate::fs::open_regular(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                Error::Corrupt(format!("{}: {e}, not a sparsedex index file", path.display()))
            }
            _ => Error::io(format!("opening {}", path.display()), e),
        })?;
        let len = file.metadata().map_err(|e| Error::io(format!("reading metadata of {}", path.display()), e))?.len();
        if len < HEADER_LEN as u64 {
            return Err(Error::Corrupt(format!("{}: {}", path.display(), short_image_message(len as usize))));
        }
        // SAFETY: the map is read-only and private to this process; the crate's own writer
        // never modifies a published file in place (it renames a new one over it). A third
        // party truncating the file while mapped is outside what a library can defend
        // against (as with every mmap-based reader).
        let map =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
        Ok(Image { storage: Storage::Mapped(map) })
    }

    /// Copy arbitrary bytes into an owned, 64-byte aligned image (for tests, or bytes that
    /// came from elsewhere, such as Python).
    pub fn from_bytes(bytes: &[u8]) -> Image {
        let mut buf = AlignedBuf::new();
        buf.extend_from_slice(bytes);
        Image { storage: Storage::Owned(buf) }
    }

    /// The whole image.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Owned(b) => b.as_bytes(),
            Storage::Mapped(m) => m,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the image holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the image is a memory map of a file (rather than an owned buffer).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

fn short_image_message(len: usize) -> String {
    if len == 0 {
        return "empty file (0 bytes): not a sparsedex index file".to_string();
    }
    format!("truncated: expected at least {HEADER_LEN} bytes (the header), found {len}")
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!("section name {name:?} must be 1 to {MAX_NAME_LEN} bytes long")));
    }
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::InvalidArgument(format!("section name {name:?} must be printable ASCII")));
    }
    Ok(())
}

/// The CRC32 of a section's content, computed ahead of time (by the thread that produced the
/// content, say) and given to [`ContainerWriter::add_u16s_hashed`] and its kin, which then
/// copy the content without hashing it again. Made only from the content itself, little-endian
/// as the typed `add_*` methods store it; a token that does not fit the content it is given
/// with (another length or element kind) is ignored and the content hashed anew.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SectionCrc {
    kind: Kind,
    crc: u32,
    len: usize,
}

impl SectionCrc {
    fn of_parts<T: Pod>(parts: &[&[T]]) -> SectionCrc {
        let mut h = crc32fast::Hasher::new();
        let mut len = 0usize;
        let mut le = Vec::new();
        for p in parts {
            if cfg!(target_endian = "little") {
                h.update(pod_bytes(p));
            } else {
                le.clear();
                T::write_le(p, &mut le);
                h.update(&le);
            }
            len += std::mem::size_of_val(*p);
        }
        SectionCrc { kind: T::KIND, crc: h.finalize(), len }
    }

    /// Of a section of `u16`s.
    pub(crate) fn u16s(data: &[u16]) -> SectionCrc {
        Self::of_parts(&[data])
    }

    /// Of a section of `u32`s.
    pub(crate) fn u32s(data: &[u32]) -> SectionCrc {
        Self::of_parts(&[data])
    }

    /// Of a section of `u64`s.
    pub(crate) fn u64s(data: &[u64]) -> SectionCrc {
        Self::of_parts(&[data])
    }

    /// Of a section of `f32`s made of the concatenation of `parts`.
    pub(crate) fn f32_parts(parts: &[&[f32]]) -> SectionCrc {
        Self::of_parts(parts)
    }
}

struct PendingSection {
    name: String,
    offset: usize,
    len: usize,
    crc: u32,
    kind: Kind,
}

/// Builds a container image section by section. Data is appended straight into the final
/// 64-byte aligned buffer; the table and header are written by [`into_image`](Self::into_image).
/// A writer made with [`to_file`](Self::to_file) streams the image into a file instead (see
/// [`FileSink`]); [`finish_file`](Self::finish_file) completes it.
pub struct ContainerWriter {
    magic: [u8; 8],
    format_version: u32,
    buf: AlignedBuf,
    sections: Vec<PendingSection>,
    file: Option<FileSink>,
}

/// Bytes handed to the writing thread at a time.
const CHUNK: usize = 8 << 20;
/// Chunks queued for the writing thread at most (the memory a streamed image holds: about
/// `(QUEUED + 2) * CHUNK`).
const QUEUED: usize = 4;

/// Where a streamed image goes: a file, written by a thread of its own while the caller
/// computes the next sections, so that the disk works while the CPU does (and the image is
/// never held whole in memory). Tracks the file's length and the CRC32 of everything after
/// the header (the header is written last, at offset 0).
struct FileSink {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    /// Bytes of the file so far, the 64-byte header included.
    len: usize,
    /// CRC32 of bytes `HEADER_LEN..len`.
    crc: crc32fast::Hasher,
    /// The chunk being filled.
    cur: Vec<u8>,
}

impl FileSink {
    fn new(mut file: File) -> Result<FileSink> {
        // The header's place (written for real by `finish_file`); one failure point in the
        // caller's thread, where tests arm them.
        crate::fs::failpoint::write(&mut file, &[0u8; HEADER_LEN]).map_err(|e| Error::io("writing an image", e))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (back, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let thread = std::thread::Builder::new()
            .name("sparsedex-write".into())
            .spawn(move || -> std::io::Result<File> {
                // Written back as it grows ([`crate::fs::start_writeback`]): the caller's
                // fsync then has little left to wait for.
                let (mut written, mut synced) = (HEADER_LEN as u64, 0u64);
                for mut chunk in rx {
                    std::io::Write::write_all(&mut file, &chunk)?;
                    written += chunk.len() as u64;
                    if written - synced >= crate::fs::WRITEBACK_EVERY {
                        crate::fs::start_writeback(&file, synced, written - synced);
                        synced = written;
                    }
                    chunk.clear();
                    let _ = back.try_send(chunk);
                }
                Ok(file)
            })
            .map_err(|e| Error::io("starting the thread that writes an image", e))?;
        Ok(FileSink {
            tx: Some(tx),
            spare,
            thread: Some(thread),
            len: HEADER_LEN,
            crc: crc32fast::Hasher::new(),
            cur: Vec::with_capacity(CHUNK),
        })
    }

    /// The writing thread's error (it stopped), or its file once every chunk is written.
    fn join(&mut self) -> Result<File> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(f))) => Ok(f),
            Some(Ok(Err(e))) => Err(Error::io("writing an image", e)),
            Some(Err(_)) => Err(Error::io("writing an image", std::io::Error::other("the writing thread panicked"))),
            None => Err(Error::io("writing an image", std::io::Error::other("the file was already finished"))),
        }
    }

    fn send(&mut self) -> Result<()> {
        // A cancelled call (Ctrl-C during a merge's or a commit's streaming write) stops here,
        // at a chunk's end; the caller removes the temporary file as after any error.
        crate::cancel::check()?;
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.cur, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if !sent {
            // The thread stopped on an error: report it.
            self.join()?;
            return Err(Error::io("writing an image", std::io::Error::other("the writing thread stopped early")));
        }
        Ok(())
    }

    /// Append `data` (its CRC32 already in `crc`, or `None` to compute it here).
    fn write(&mut self, data: &[u8], crc: Option<(u32, usize)>) -> Result<()> {
        match crc {
            Some((c, n)) => self.crc.combine(&crc32fast::Hasher::new_with_initial_len(c, n as u64)),
            None => self.crc.update(data),
        }
        self.append(data)
    }

    /// Append `parts`, whose concatenation has CRC32 `crc` and length `len` (hashed once by
    /// the caller, not again here).
    fn write_parts(&mut self, parts: &[&[u8]], crc: u32, len: usize) -> Result<()> {
        debug_assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), len);
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(crc, len as u64));
        for p in parts {
            self.append(p)?;
        }
        Ok(())
    }

    /// Queue `data` for the file (the whole-file CRC is the callers' business).
    fn append(&mut self, mut data: &[u8]) -> Result<()> {
        self.len += data.len();
        while !data.is_empty() {
            let n = (CHUNK - self.cur.len()).min(data.len());
            self.cur.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.cur.len() == CHUNK {
                self.send()?;
            }
        }
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let n = align_up(self.len) - self.len;
        self.write(&[0u8; ALIGN][..n], None)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Abandoned (an error on the way): the thread ends once the queue is drained (a few
        // chunks at most); wait for it, so that it neither writes into the temporary file after
        // the caller removed it nor keeps the file open.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The section table of `sections`.
fn table_of(sections: &[PendingSection]) -> Vec<u8> {
    let mut table = vec![0u8; sections.len() * ENTRY_LEN];
    for (s, e) in sections.iter().zip(table.chunks_exact_mut(ENTRY_LEN)) {
        e[..s.name.len()].copy_from_slice(s.name.as_bytes());
        e[32..40].copy_from_slice(&(s.offset as u64).to_le_bytes());
        e[40..48].copy_from_slice(&(s.len as u64).to_le_bytes());
        e[48..52].copy_from_slice(&s.crc.to_le_bytes());
        e[52..56].copy_from_slice(&(s.kind as u32).to_le_bytes());
    }
    table
}

/// Fill the 64-byte header `h`.
fn write_header(
    h: &mut [u8],
    magic: [u8; 8],
    format_version: u32,
    n_sections: usize,
    table: &[u8],
    table_offset: usize,
    total: usize,
) {
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&format_version.to_le_bytes());
    h[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
    h[16..20].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    h[20..24].copy_from_slice(&0u32.to_le_bytes());
    h[24..28].copy_from_slice(&(n_sections as u32).to_le_bytes());
    h[28..32].copy_from_slice(&crc(table).to_le_bytes());
    h[32..40].copy_from_slice(&(table_offset as u64).to_le_bytes());
    h[40..48].copy_from_slice(&(total as u64).to_le_bytes());
    let hc = crc(&h[..60]);
    h[60..64].copy_from_slice(&hc.to_le_bytes());
}

impl ContainerWriter {
    /// Start an image for a format identified by `magic` at `format_version`.
    pub fn new(magic: [u8; 8], format_version: u32) -> Self {
        let mut buf = AlignedBuf::new();
        buf.grow(HEADER_LEN);
        ContainerWriter { magic, format_version, buf, sections: Vec::new(), file: None }
    }

    /// Start an image streamed into `file` (empty, open for writing at its start) by a
    /// thread of its own, instead of built in memory: the same bytes
    /// [`into_image`](Self::into_image) would hold. Finish with
    /// [`finish_file`](Self::finish_file); dropping the writer abandons the file's content.
    pub fn to_file(magic: [u8; 8], format_version: u32, file: File) -> Result<Self> {
        let mut w = ContainerWriter::new(magic, format_version);
        w.file = Some(FileSink::new(file)?);
        Ok(w)
    }

    /// Whether this writer streams into a file ([`to_file`](Self::to_file)).
    pub fn is_file(&self) -> bool {
        self.file.is_some()
    }

    /// Finish a streamed image ([`to_file`](Self::to_file)): write the section table, then the
    /// header at offset 0. Returns the file (not synced), its length and the CRC32 of its
    /// whole content.
    pub fn finish_file(mut self) -> Result<(File, u64, u32)> {
        let mut sink =
            self.file.take().ok_or_else(|| Error::InvalidArgument("finish_file on an in-memory image".into()))?;
        sink.pad()?;
        let table_offset = sink.len;
        let table = table_of(&self.sections);
        sink.write(&table, None)?;
        sink.send()?;
        let total = sink.len;
        let mut file = sink.join()?;
        let mut h = [0u8; HEADER_LEN];
        write_header(&mut h, self.magic, self.format_version, self.sections.len(), &table, table_offset, total);
        let io = |e| Error::io("writing an image's header", e);
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(io)?;
        std::io::Write::write_all(&mut file, &h).map_err(io)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io)?;
        let mut whole = crc32fast::Hasher::new();
        whole.update(&h);
        whole.combine(&sink.crc);
        Ok((file, total as u64, whole.finalize()))
    }

    /// Reserve room for about `bytes` more bytes of sections (an estimate: the image grows
    /// past it as needed), so that a large image is not copied as it grows.
    pub fn reserve(&mut self, bytes: usize) {
        if self.file.is_none() {
            self.buf.reserve(bytes);
        }
    }

    fn add(&mut self, name: &str, kind: Kind, data: &[u8]) -> Result<()> {
        check_name(name)?;
        if self.sections.iter().any(|s| s.name == name) {
            return Err(Error::InvalidArgument(format!("duplicate section name '{name}'")));
        }
        let c = crc(data);
        let offset = match &mut self.file {
            None => {
                self.buf.pad();
                let offset = self.buf.len;
                self.buf.extend_from_slice(data);
                offset
            }
            Some(sink) => {
                sink.pad()?;
                let offset = sink.len;
                sink.write(data, Some((c, data.len())))?;
                offset
            }
        };
        self.sections.push(PendingSection { name: name.to_string(), offset, len: data.len(), crc: c, kind });
        Ok(())
    }

    /// [`add`](Self::add) of the concatenation of `parts`, without concatenating them first.
    fn add_parts(&mut self, name: &str, kind: Kind, parts: &[&[u8]]) -> Result<()> {
        let mut h = crc32fast::Hasher::new();
        let mut len = 0usize;
        for p in parts {
            h.update(p);
            len += p.len();
        }
        self.add_hashed_parts(name, kind, parts, h.finalize(), len)
    }

    /// [`add_u16s`](Self::add_u16s) of content hashed ahead of time ([`SectionCrc::u16s`]).
    pub(crate) fn add_u16s_hashed(&mut self, name: &str, data: &[u16], h: &SectionCrc) -> Result<()> {
        self.add_pod_parts_hashed(name, &[data], h)
    }

    /// [`add_u32s`](Self::add_u32s) of content hashed ahead of time ([`SectionCrc::u32s`]).
    pub(crate) fn add_u32s_hashed(&mut self, name: &str, data: &[u32], h: &SectionCrc) -> Result<()> {
        self.add_pod_parts_hashed(name, &[data], h)
    }

    /// [`add_u64s`](Self::add_u64s) of content hashed ahead of time ([`SectionCrc::u64s`]).
    pub(crate) fn add_u64s_hashed(&mut self, name: &str, data: &[u64], h: &SectionCrc) -> Result<()> {
        self.add_pod_parts_hashed(name, &[data], h)
    }

    /// [`add_f32_parts`](Self::add_f32_parts) of content hashed ahead of time
    /// ([`SectionCrc::f32_parts`]).
    pub(crate) fn add_f32_parts_hashed(&mut self, name: &str, parts: &[&[f32]], h: &SectionCrc) -> Result<()> {
        self.add_pod_parts_hashed(name, parts, h)
    }

    fn add_pod_parts_hashed<T: Pod>(&mut self, name: &str, parts: &[&[T]], h: &SectionCrc) -> Result<()> {
        let len: usize = parts.iter().map(|p| std::mem::size_of_val(*p)).sum();
        if cfg!(target_endian = "little") && h.kind == T::KIND && h.len == len {
            let bytes: Vec<&[u8]> = parts.iter().map(|p| pod_bytes(p)).collect();
            return self.add_hashed_parts(name, T::KIND, &bytes, h.crc, len);
        }
        if cfg!(target_endian = "little") {
            let bytes: Vec<&[u8]> = parts.iter().map(|p| pod_bytes(p)).collect();
            self.add_parts(name, T::KIND, &bytes)
        } else {
            let mut le = Vec::with_capacity(len);
            for p in parts {
                T::write_le(p, &mut le);
            }
            self.add(name, T::KIND, &le)
        }
    }

    /// [`add_parts`](Self::add_parts) of `parts` whose concatenation is `len` bytes with
    /// CRC32 `c`.
    fn add_hashed_parts(&mut self, name: &str, kind: Kind, parts: &[&[u8]], c: u32, len: usize) -> Result<()> {
        check_name(name)?;
        if self.sections.iter().any(|s| s.name == name) {
            return Err(Error::InvalidArgument(format!("duplicate section name '{name}'")));
        }
        let offset = match &mut self.file {
            None => {
                self.buf.pad();
                let offset = self.buf.len;
                self.buf.reserve(len);
                for p in parts {
                    self.buf.extend_from_slice(p);
                }
                offset
            }
            Some(sink) => {
                sink.pad()?;
                let offset = sink.len;
                sink.write_parts(parts, c, len)?;
                offset
            }
        };
        self.sections.push(PendingSection { name: name.to_string(), offset, len, crc: c, kind });
        Ok(())
    }

    /// Add a section of `f32`s (stored little-endian) made of the concatenation of `parts`
    /// (slices of other images, say), copied once into the image. Name rules as
    /// [`add_bytes`](Self::add_bytes).
    pub fn add_f32_parts(&mut self, name: &str, parts: &[&[f32]]) -> Result<()> {
        if cfg!(target_endian = "little") {
            let bytes: Vec<&[u8]> = parts.iter().map(|p| pod_bytes(p)).collect();
            self.add_parts(name, Kind::F32, &bytes)
        } else {
            let mut le = Vec::new();
            for p in parts {
                Pod::write_le(p, &mut le);
            }
            self.add(name, Kind::F32, &le)
        }
    }

    fn add_pod<T: Pod>(&mut self, name: &str, data: &[T]) -> Result<()> {
        if cfg!(target_endian = "little") {
            self.add(name, T::KIND, pod_bytes(data))
        } else {
            let mut le = Vec::with_capacity(std::mem::size_of_val(data));
            T::write_le(data, &mut le);
            self.add(name, T::KIND, &le)
        }
    }

    /// Add a raw byte section. Names are 1..=32 printable ASCII bytes and unique within the
    /// container; anything else is [`Error::InvalidArgument`].
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.add(name, Kind::Bytes, data)
    }

    /// Add a section of `u32`s (stored little-endian). Name rules as [`add_bytes`](Self::add_bytes).
    pub fn add_u32s(&mut self, name: &str, data: &[u32]) -> Result<()> {
        self.add_pod(name, data)
    }

    /// Add a section of `u16`s, stored little-endian as a byte section (element kind 0). Name
    /// rules as [`add_bytes`](Self::add_bytes).
    pub fn add_u16s(&mut self, name: &str, data: &[u16]) -> Result<()> {
        self.add_pod(name, data)
    }

    /// Add a section of `u64`s (stored little-endian). Name rules as [`add_bytes`](Self::add_bytes).
    pub fn add_u64s(&mut self, name: &str, data: &[u64]) -> Result<()> {
        self.add_pod(name, data)
    }

    /// Add a section of `f32`s (stored little-endian). Name rules as [`add_bytes`](Self::add_bytes).
    pub fn add_f32s(&mut self, name: &str, data: &[f32]) -> Result<()> {
        self.add_pod(name, data)
    }

    /// Add a section of `i64`s (stored little-endian). Name rules as [`add_bytes`](Self::add_bytes).
    pub fn add_i64s(&mut self, name: &str, data: &[i64]) -> Result<()> {
        self.add_pod(name, data)
    }

    /// Finish: write the section table and the header, and return the in-memory image.
    ///
    /// # Panics
    /// On a writer streaming into a file ([`to_file`](Self::to_file)): finish that one with
    /// [`finish_file`](Self::finish_file).
    pub fn into_image(self) -> Image {
        assert!(self.file.is_none(), "into_image on an image streamed into a file");
        let ContainerWriter { magic, format_version, mut buf, sections, .. } = self;
        buf.pad();
        let table_offset = buf.len;
        let table = table_of(&sections);
        buf.extend_from_slice(&table);
        let total = buf.len;
        let h = &mut buf.as_bytes_mut()[..HEADER_LEN];
        write_header(h, magic, format_version, sections.len(), &table, table_offset, total);
        Image { storage: Storage::Owned(buf) }
    }

    /// Finish and save atomically with [`crate::fs::write_atomically`]: on error `path` is
    /// untouched and no temporary file is left.
    pub fn write_file(self, path: &Path) -> Result<()> {
        let image = self.into_image();
        crate::fs::write_atomically(path, image.as_bytes())
    }
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    offset: usize,
    len: usize,
    kind: Kind,
}

/// A parsed, validated container: named sections over an [`Image`]. `Send + Sync`.
pub struct Container {
    image: Image,
    format_version: u32,
    sections: Vec<Section>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("image", &self.image)
            .field("format_version", &self.format_version)
            .field("sections", &self.sections.iter().map(|s| &s.name).collect::<Vec<_>>())
            .finish()
    }
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

impl Container {
    /// Validate `image` and index its sections.
    ///
    /// Checks, in order: length and magic (`"not a sparsedex index file"`), header CRC,
    /// format version ([`Error::UnsupportedVersion`] if not `supported_version`), byte-order
    /// mark, layout version and flags, total length against the image length (`"truncated:
    /// expected N bytes, found M"`), section table bounds and CRC, then every entry: name,
    /// kind, 64-byte alignment, bounds without overflow, order without overlap, zero padding,
    /// unique names; finally, if `verify_checksums`, each section's CRC32 (in parallel; the
    /// error names the first bad section in table order). Never panics on any input.
    pub fn parse(image: Image, magic: [u8; 8], supported_version: u32, verify_checksums: bool) -> Result<Container> {
        if cfg!(target_endian = "big") {
            return Err(Error::InvalidArgument(
                "sparsedex index files are little-endian; big-endian hosts are not supported".into(),
            ));
        }
        let b = image.as_bytes();
        let n = b.len();
        let magic_prefix = n.min(8);
        if n > 0 && b[..magic_prefix] != magic[..magic_prefix] {
            return Err(corrupt("not a sparsedex index file (wrong magic bytes)"));
        }
        if n < HEADER_LEN {
            return Err(corrupt(short_image_message(n)));
        }
        let h = &b[..HEADER_LEN];
        let stored = le_u32(h, 60);
        let computed = crc(&h[..60]);
        if stored != computed {
            return Err(corrupt(format!(
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        let version = le_u32(h, 8);
        if version != supported_version {
            return Err(Error::UnsupportedVersion { found: version, supported: supported_version });
        }
        let bom = le_u32(h, 12);
        if bom != BYTE_ORDER_MARK {
            return Err(corrupt(format!("bad byte-order mark {bom:#010x}")));
        }
        let layout = le_u32(h, 16);
        if layout != LAYOUT_VERSION {
            return Err(corrupt(format!("unknown container layout version {layout} (expected {LAYOUT_VERSION})")));
        }
        let flags = le_u32(h, 20);
        if flags != 0 {
            return Err(corrupt(format!("unknown header flags {flags:#x}")));
        }
        if h[48..60].iter().any(|&x| x != 0) {
            return Err(corrupt("reserved header bytes are not zero"));
        }
        let count = le_u32(h, 24) as u64;
        let table_crc = le_u32(h, 28);
        let table_offset = le_u64(h, 32);
        let total = le_u64(h, 40);
        if (n as u64) < total {
            return Err(corrupt(format!("truncated: expected {total} bytes, found {n}")));
        }
        if (n as u64) > total {
            return Err(corrupt(format!("trailing data: header says {total} bytes, found {n}")));
        }
        // From here on total == n, so every in-bounds u64 fits in usize.
        let table_end = count
            .checked_mul(ENTRY_LEN as u64)
            .and_then(|l| l.checked_add(table_offset))
            .ok_or_else(|| corrupt("section table size overflows"))?;
        if table_offset < HEADER_LEN as u64 || !table_offset.is_multiple_of(ALIGN as u64) {
            return Err(corrupt(format!("bad section table offset {table_offset}")));
        }
        if table_end != total {
            return Err(corrupt(format!(
                "section table ({count} entries at {table_offset}) does not end the file \
                 ({total} bytes)"
            )));
        }
        let table_offset = table_offset as usize;
        let table = &b[table_offset..n];
        let computed = crc(table);
        if computed != table_crc {
            return Err(corrupt(format!(
                "section table checksum mismatch (stored {table_crc:#010x}, computed \
                 {computed:#010x})"
            )));
        }

        let mut sections: Vec<Section> = Vec::with_capacity(count as usize);
        let mut crcs: Vec<u32> = Vec::with_capacity(count as usize);
        let mut prev_end = HEADER_LEN;
        for (i, e) in table.chunks_exact(ENTRY_LEN).enumerate() {
            let raw = &e[..MAX_NAME_LEN];
            let name_len = raw.iter().position(|&c| c == 0).unwrap_or(MAX_NAME_LEN);
            if name_len == 0
                || raw[name_len..].iter().any(|&c| c != 0)
                || !raw[..name_len].iter().all(|c| (0x20..0x7f).contains(c))
            {
                return Err(corrupt(format!("section {i}: invalid name")));
            }
            // Printable ASCII is valid UTF-8.
            let name = String::from_utf8_lossy(&raw[..name_len]).into_owned();
            let offset = le_u64(e, 32);
            let len = le_u64(e, 40);
            let kind_raw = le_u32(e, 52);
            let kind = Kind::from_u32(kind_raw)
                .ok_or_else(|| corrupt(format!("section '{name}': unknown element kind {kind_raw}")))?;
            if e[56..64].iter().any(|&x| x != 0) {
                return Err(corrupt(format!("section '{name}': reserved bytes are not zero")));
            }
            let end = offset
                .checked_add(len)
                .ok_or_else(|| corrupt(format!("section '{name}': offset + length overflows")))?;
            if !offset.is_multiple_of(ALIGN as u64) {
                return Err(corrupt(format!("section '{name}': offset {offset} is not {ALIGN}-byte aligned")));
            }
            if offset < prev_end as u64 || end > table_offset as u64 {
                return Err(corrupt(format!(
                    "section '{name}': bytes {offset}..{end} out of bounds or overlapping \
                     (allowed {prev_end}..{table_offset})"
                )));
            }
            let (offset, len) = (offset as usize, len as usize);
            if len % kind.elem_size() != 0 {
                return Err(corrupt(format!(
                    "section '{name}': {len} bytes is not a whole number of {} values",
                    kind.name()
                )));
            }
            if b[prev_end..offset].iter().any(|&x| x != 0) {
                return Err(corrupt(format!("non-zero padding before section '{name}'")));
            }
            if sections.iter().any(|s| s.name == name) {
                return Err(corrupt(format!("duplicate section name '{name}'")));
            }
            prev_end = offset + len;
            crcs.push(le_u32(e, 48));
            sections.push(Section { name, offset, len, kind });
        }
        if b[prev_end..table_offset].iter().any(|&x| x != 0) {
            return Err(corrupt("non-zero padding before the section table"));
        }
        if verify_checksums {
            let bad: Vec<Option<u32>> = sections
                .par_iter()
                .zip(crcs.par_iter())
                .map(|(s, &stored)| {
                    let c = crc(&b[s.offset..s.offset + s.len]);
                    (c != stored).then_some(c)
                })
                .collect();
            if let Some(i) = bad.iter().position(|x| x.is_some()) {
                let computed = bad[i].unwrap_or_default();
                return Err(corrupt(format!(
                    "section '{}': checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                    sections[i].name, crcs[i]
                )));
            }
        }
        Ok(Container { image, format_version: version, sections })
    }

    fn section(&self, name: &str) -> Result<&Section> {
        self.sections.iter().find(|s| s.name == name).ok_or_else(|| corrupt(format!("missing section '{name}'")))
    }

    /// The raw bytes of a section (of any element kind).
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        let s = self.section(name)?;
        Ok(&self.image.as_bytes()[s.offset..s.offset + s.len])
    }

    fn typed<T: Pod>(&self, name: &str) -> Result<&[T]> {
        let s = self.section(name)?;
        if s.kind != T::KIND && s.kind != Kind::Bytes {
            return Err(corrupt(format!("section '{name}' holds {} values, not {}", s.kind.name(), T::KIND.name())));
        }
        let bytes = &self.image.as_bytes()[s.offset..s.offset + s.len];
        let size = std::mem::size_of::<T>();
        if !bytes.len().is_multiple_of(size) {
            return Err(corrupt(format!(
                "section '{name}': {} bytes is not a whole number of {} values",
                bytes.len(),
                T::KIND.name()
            )));
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(corrupt(format!("section '{name}' is misaligned for {}", T::KIND.name())));
        }
        // SAFETY: the pointer is aligned for T and the range holds exactly len/size Ts inside
        // the image, which lives as long as &self; T is a sealed plain-number type for which
        // every bit pattern is valid; the host is little-endian (parse refuses otherwise), so
        // the stored little-endian values read correctly.
        Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
    }

    /// A section of `u32`s. Sections written as another numeric type are [`Error::Corrupt`];
    /// raw byte sections are reinterpreted if their length and alignment allow.
    pub fn u32s(&self, name: &str) -> Result<&[u32]> {
        self.typed(name)
    }

    /// A section of `u64`s (rules as [`u32s`](Self::u32s)).
    pub fn u64s(&self, name: &str) -> Result<&[u64]> {
        self.typed(name)
    }

    /// A section of `f32`s (rules as [`u32s`](Self::u32s)). Values are not checked.
    pub fn f32s(&self, name: &str) -> Result<&[f32]> {
        self.typed(name)
    }

    /// A byte section read as little-endian `u16`s (its length must be even and its offset
    /// 2-aligned in memory, which 64-aligned sections are).
    pub fn u16s(&self, name: &str) -> Result<&[u16]> {
        self.typed(name)
    }

    /// A section of `i64`s (rules as [`u32s`](Self::u32s)).
    pub fn i64s(&self, name: &str) -> Result<&[i64]> {
        self.typed(name)
    }

    /// Whether a section of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name == name)
    }

    /// Section names, in the order they were written.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    /// Size of the whole image in bytes.
    pub fn total_bytes(&self) -> usize {
        self.image.len()
    }

    /// The format version read from the header (equal to the supported version).
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// The underlying image.
    pub fn image(&self) -> &Image {
        &self.image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAGIC: [u8; 8] = *b"SPDXTEST";

    fn sample_writer(version: u32) -> ContainerWriter {
        let mut w = ContainerWriter::new(MAGIC, version);
        w.add_bytes("raw", b"hello, container").unwrap();
        w.add_u32s("ids", &[1, 2, 3, u32::MAX]).unwrap();
        w.add_u64s("offsets", &[0, 7, u64::MAX]).unwrap();
        w.add_bytes("empty", &[]).unwrap();
        w.add_f32s("weights", &[0.5, -1.25, f32::INFINITY]).unwrap();
        w.add_i64s("signed", &[-1, i64::MIN, 42]).unwrap();
        w
    }

    fn parse(bytes: &[u8], verify: bool) -> Result<Container> {
        Container::parse(Image::from_bytes(bytes), MAGIC, 1, verify)
    }

    fn check_sample(c: &Container) {
        assert_eq!(c.bytes("raw").unwrap(), b"hello, container");
        assert_eq!(c.u32s("ids").unwrap(), &[1, 2, 3, u32::MAX]);
        assert_eq!(c.u64s("offsets").unwrap(), &[0, 7, u64::MAX]);
        assert_eq!(c.bytes("empty").unwrap(), b"");
        assert_eq!(c.f32s("weights").unwrap(), &[0.5, -1.25, f32::INFINITY]);
        assert_eq!(c.i64s("signed").unwrap(), &[-1, i64::MIN, 42]);
        assert!(c.has("ids") && !c.has("nope"));
        assert_eq!(c.section_names().collect::<Vec<_>>(), ["raw", "ids", "offsets", "empty", "weights", "signed"]);
        assert_eq!(c.total_bytes(), c.image().len());
        assert_eq!(c.format_version(), 1);
        // Every section is 64-byte aligned in memory.
        for name in c.section_names() {
            assert_eq!(c.bytes(name).unwrap().as_ptr() as usize % ALIGN, 0, "{name}");
        }
    }

    /// A writer streaming into a file writes the bytes the in-memory writer makes, with the
    /// whole file's CRC32, whatever the section sizes (empty, unaligned, several chunks).
    #[test]
    fn streamed_file_equals_in_memory_image() {
        let tmp = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..CHUNK * 2 + 12_345).map(|i| (i * 7 + i / 251) as u8).collect();
        let words: Vec<u32> = (0..(CHUNK / 4 + 99) as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        let fill = |w: &mut ContainerWriter| {
            w.add_bytes("raw", b"hello, container").unwrap();
            w.add_bytes("empty", &[]).unwrap();
            w.add_bytes("big", &big).unwrap();
            w.add_u32s("words", &words).unwrap();
            w.add_u64s("tail", &[1, 2, 3]).unwrap();
        };
        let mut mem = ContainerWriter::new(MAGIC, 1);
        fill(&mut mem);
        let want = mem.into_image();
        let path = tmp.path().join("c");
        let mut w = ContainerWriter::to_file(MAGIC, 1, File::create(&path).unwrap()).unwrap();
        assert!(w.is_file());
        fill(&mut w);
        let (_f, size, crc32) = w.finish_file().unwrap();
        drop(_f);
        let got = std::fs::read(&path).unwrap();
        assert!(got == want.as_bytes());
        assert_eq!(size, got.len() as u64);
        assert_eq!(crc32, crc32fast::hash(&got));
        let c = Container::parse(Image::open_file(&path).unwrap(), MAGIC, 1, true).unwrap();
        assert_eq!(c.bytes("big").unwrap(), &big[..]);
        // Abandoned half way: no hang, no panic.
        let mut w = ContainerWriter::to_file(MAGIC, 1, File::create(tmp.path().join("d")).unwrap()).unwrap();
        w.add_bytes("big", &big).unwrap();
        drop(w);
        // Not an in-memory writer's to finish into a file.
        assert!(ContainerWriter::new(MAGIC, 1).finish_file().is_err());
    }

    fn sample_bytes() -> Vec<u8> {
        sample_writer(1).into_image().as_bytes().to_vec()
    }

    #[test]
    fn send_sync() {
        fn is<T: Send + Sync>() {}
        is::<Image>();
        is::<Container>();
    }

    #[test]
    fn round_trip_memory() {
        let image = sample_writer(1).into_image();
        assert!(!image.is_mapped());
        assert_eq!(image.as_bytes().as_ptr() as usize % ALIGN, 0);
        let c = Container::parse(image, MAGIC, 1, true).unwrap();
        check_sample(&c);
    }

    #[test]
    fn round_trip_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.spdx");
        sample_writer(1).write_file(&path).unwrap();
        // Overwriting goes through rename as well.
        sample_writer(1).write_file(&path).unwrap();
        let image = Image::open_file(&path).unwrap();
        assert!(image.is_mapped());
        assert_eq!(image.as_bytes(), &sample_bytes()[..]);
        let c = Container::parse(image, MAGIC, 1, true).unwrap();
        check_sample(&c);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn empty_container() {
        let bytes = ContainerWriter::new(MAGIC, 1).into_image().as_bytes().to_vec();
        assert_eq!(bytes.len(), HEADER_LEN);
        let c = parse(&bytes, true).unwrap();
        assert_eq!(c.section_names().count(), 0);
        let err = c.bytes("x").unwrap_err().to_string();
        assert!(err.contains("missing section 'x'"), "{err}");
    }

    #[test]
    fn large_section_round_trip() {
        let data: Vec<u32> = (0..100_000).collect();
        let mut w = ContainerWriter::new(MAGIC, 1);
        w.add_bytes("odd", &[1, 2, 3]).unwrap();
        w.add_u32s("big", &data).unwrap();
        let c = Container::parse(w.into_image(), MAGIC, 1, true).unwrap();
        assert_eq!(c.u32s("big").unwrap(), &data[..]);
        assert_eq!(c.bytes("odd").unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn bad_names() {
        let mut w = ContainerWriter::new(MAGIC, 1);
        for bad in ["", "a\u{e9}", "tab\there", &"x".repeat(33)] {
            assert!(matches!(w.add_bytes(bad, b""), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        w.add_bytes(&"x".repeat(32), b"ok").unwrap();
        w.add_u32s("dup", &[1]).unwrap();
        let err = w.add_f32s("dup", &[1.0]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("duplicate")));
        let c = Container::parse(w.into_image(), MAGIC, 1, true).unwrap();
        assert_eq!(c.bytes(&"x".repeat(32)).unwrap(), b"ok");
    }

    #[test]
    fn typed_access_checks_kind_length_and_alignment() {
        let mut w = ContainerWriter::new(MAGIC, 1);
        w.add_bytes("seven", &[0; 7]).unwrap();
        w.add_bytes("eight", &1u64.to_le_bytes()).unwrap();
        w.add_f32s("floats", &[1.0]).unwrap();
        let c = Container::parse(w.into_image(), MAGIC, 1, true).unwrap();
        assert!(matches!(c.u32s("seven"), Err(Error::Corrupt(_))));
        assert_eq!(c.u64s("eight").unwrap(), &[1]);
        assert_eq!(c.u32s("eight").unwrap(), &[1, 0]);
        let err = c.u32s("floats").unwrap_err().to_string();
        assert!(err.contains("holds f32 values, not u32"), "{err}");
        assert!(c.bytes("floats").is_ok());
        assert!(matches!(c.i64s("missing"), Err(Error::Corrupt(m)) if m.contains("missing")));
    }

    #[test]
    fn wrong_version() {
        let bytes = sample_writer(2).into_image().as_bytes().to_vec();
        match parse(&bytes, true) {
            Err(Error::UnsupportedVersion { found: 2, supported: 1 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_magic() {
        let image = sample_writer(1).into_image();
        let err = Container::parse(image, *b"OTHERMAG", 1, true).unwrap_err().to_string();
        assert!(err.contains("not a sparsedex index file"), "{err}");
        let err = parse(b"PK\x03\x04 zip file", true).unwrap_err().to_string();
        assert!(err.contains("not a sparsedex index file"), "{err}");
    }

    #[test]
    fn empty_and_short_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let err = Image::open_file(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt(ref m) if m.contains("empty file")), "{err}");
        std::fs::write(&path, &sample_bytes()[..10]).unwrap();
        let err = Image::open_file(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt(ref m) if m.contains("truncated")), "{err}");
        let err = Image::open_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let err = parse(b"", true).unwrap_err().to_string();
        assert!(err.contains("empty file"), "{err}");
    }

    #[test]
    fn truncation_at_every_length() {
        let bytes = sample_bytes();
        for len in 0..bytes.len() {
            for verify in [false, true] {
                let err = parse(&bytes[..len], verify).unwrap_err();
                assert!(matches!(err, Error::Corrupt(_)), "len {len}: {err}");
                if len >= HEADER_LEN {
                    let msg = err.to_string();
                    let want = format!("truncated: expected {} bytes, found {len}", bytes.len());
                    assert!(msg.contains(&want), "{msg}");
                }
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(parse(&longer, true), Err(Error::Corrupt(m)) if m.contains("trailing")));
    }

    /// Flip every byte (all bits, and the lowest bit) of a small file: with checksums verified
    /// every change is detected (no byte is uncovered: header and table by their CRCs, section
    /// data by section CRCs, padding by the zero check); without, parse never panics and
    /// accessors on whatever it accepts never panic either.
    #[test]
    fn every_byte_flip_is_detected() {
        let bytes = sample_bytes();
        let mut undetected_without_verify = 0;
        for i in 0..bytes.len() {
            for mask in [0xffu8, 0x01, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                match parse(&b, true) {
                    Err(Error::Corrupt(_)) => {}
                    // The version field is covered by the header CRC, checked first.
                    other => panic!("byte {i} ^ {mask:#x} not detected: {other:?}"),
                }
                if let Ok(c) = parse(&b, false) {
                    undetected_without_verify += 1;
                    for name in c.section_names() {
                        let _ = (c.bytes(name), c.u32s(name), c.u64s(name));
                        let _ = (c.f32s(name), c.i64s(name));
                    }
                }
            }
        }
        // Without verification only section data bytes can change unnoticed.
        let c = parse(&bytes, true).unwrap();
        let data: usize = c.section_names().map(|n| c.bytes(n).unwrap().len()).sum();
        assert_eq!(undetected_without_verify, 3 * data);
    }

    #[test]
    fn bad_section_crc_names_the_section() {
        let mut bytes = sample_bytes();
        let c = parse(&bytes, true).unwrap();
        let off = c.bytes("ids").unwrap().as_ptr() as usize - c.image().as_bytes().as_ptr() as usize;
        bytes[off] ^= 1;
        let err = parse(&bytes, true).unwrap_err().to_string();
        assert!(err.contains("section 'ids': checksum mismatch"), "{err}");
        let c = parse(&bytes, false).unwrap();
        assert_eq!(c.u32s("ids").unwrap()[0], 0);
    }

    /// Rewrite a table entry and re-seal both CRCs, so that the structural checks themselves
    /// are exercised (not just the checksums).
    fn reseal(bytes: &mut [u8]) {
        let table_offset = (le_u64(bytes, 32) as usize).min(bytes.len());
        let tc = crc(&bytes[table_offset..]);
        bytes[28..32].copy_from_slice(&tc.to_le_bytes());
        let hc = crc(&bytes[..60]);
        bytes[60..64].copy_from_slice(&hc.to_le_bytes());
    }

    fn entry_at(bytes: &[u8], i: usize) -> usize {
        le_u64(bytes, 32) as usize + i * ENTRY_LEN
    }

    #[test]
    fn structural_corruption_with_valid_crcs() {
        let base = sample_bytes();
        let n = base.len() as u64;
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "offset + length overflows",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e + 40..e + 48].copy_from_slice(&u64::MAX.to_le_bytes());
                }),
            ),
            (
                "out of bounds",
                Box::new(move |b| {
                    let e = entry_at(b, 1);
                    b[e + 40..e + 48].copy_from_slice(&n.to_le_bytes());
                }),
            ),
            (
                "not 64-byte aligned",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    let off = le_u64(b, e + 32) + 4;
                    b[e + 32..e + 40].copy_from_slice(&off.to_le_bytes());
                }),
            ),
            (
                "overlapping",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e + 32..e + 40].copy_from_slice(&64u64.to_le_bytes());
                }),
            ),
            (
                "duplicate section name 'raw'",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e..e + 32].fill(0);
                    b[e..e + 3].copy_from_slice(b"raw");
                }),
            ),
            (
                "invalid name",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e] = 0;
                }),
            ),
            (
                "unknown element kind",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e + 52] = 9;
                }),
            ),
            (
                "whole number of u32",
                Box::new(|b| {
                    let e = entry_at(b, 1);
                    b[e + 40..e + 48].copy_from_slice(&15u64.to_le_bytes());
                }),
            ),
            (
                "non-zero padding",
                Box::new(|b| {
                    let e = entry_at(b, 0);
                    let end = (le_u64(b, e + 32) + le_u64(b, e + 40)) as usize;
                    b[end] = 1;
                }),
            ),
            (
                "section table size overflows",
                Box::new(|b| {
                    b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
                    b[32..40].copy_from_slice(&(u64::MAX - 63).to_le_bytes());
                }),
            ),
            (
                "does not end the file",
                Box::new(|b| {
                    b[24..28].copy_from_slice(&7u32.to_le_bytes());
                }),
            ),
            ("unknown header flags", Box::new(|b| b[20] = 1)),
            ("byte-order mark", Box::new(|b| b[12..16].reverse())),
        ];
        for (want, f) in cases {
            let mut b = base.clone();
            f(&mut b);
            reseal(&mut b);
            let err = parse(&b, false).unwrap_err().to_string();
            assert!(err.contains(want), "want {want:?}, got {err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn parse_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                           verify: bool) {
            let _ = parse(&bytes, verify);
        }

        /// Random bytes behind a valid-looking header (right magic, CRCs resealed), so that
        /// the table checks are reached.
        #[test]
        fn parse_random_table_never_panics(table in proptest::collection::vec(any::<u8>(), 0..320),
                                           count in 0u32..6, pad in 0usize..3,
                                           verify: bool) {
            let mut b = vec![0u8; HEADER_LEN + pad * ALIGN];
            b[..8].copy_from_slice(&MAGIC);
            b[8..12].copy_from_slice(&1u32.to_le_bytes());
            b[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
            b[16..20].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
            b[24..28].copy_from_slice(&count.to_le_bytes());
            let table_offset = b.len() as u64;
            b[32..40].copy_from_slice(&table_offset.to_le_bytes());
            b.extend_from_slice(&table);
            let total = b.len() as u64;
            b[40..48].copy_from_slice(&total.to_le_bytes());
            reseal(&mut b);
            if let Ok(c) = parse(&b, verify) {
                for name in c.section_names() {
                    let _ = (c.bytes(name), c.u32s(name), c.u64s(name));
                    let _ = (c.f32s(name), c.i64s(name));
                }
            }
        }

        #[test]
        fn round_trip_random_sections(sections in proptest::collection::vec(
            (0u8..5, proptest::collection::vec(any::<u8>(), 0..200)), 0..8)) {
            let mut w = ContainerWriter::new(MAGIC, 1);
            for (i, (kind, data)) in sections.iter().enumerate() {
                let name = format!("s{i}");
                match kind {
                    0 => w.add_bytes(&name, data).unwrap(),
                    1 => w.add_u32s(&name, &data.iter().map(|&x| x as u32 * 77).collect::<Vec<_>>()).unwrap(),
                    2 => w.add_u64s(&name, &data.iter().map(|&x| x as u64 * 99).collect::<Vec<_>>()).unwrap(),
                    3 => w.add_f32s(&name, &data.iter().map(|&x| x as f32 / 3.0).collect::<Vec<_>>()).unwrap(),
                    _ => w.add_i64s(&name, &data.iter().map(|&x| -(x as i64)).collect::<Vec<_>>()).unwrap(),
                }
            }
            let c = Container::parse(w.into_image(), MAGIC, 1, true).unwrap();
            for (i, (kind, data)) in sections.iter().enumerate() {
                let name = format!("s{i}");
                match kind {
                    0 => prop_assert_eq!(c.bytes(&name).unwrap(), &data[..]),
                    1 => prop_assert_eq!(c.u32s(&name).unwrap().len(), data.len()),
                    2 => prop_assert_eq!(c.u64s(&name).unwrap().len(), data.len()),
                    3 => prop_assert_eq!(c.f32s(&name).unwrap().len(), data.len()),
                    _ => prop_assert_eq!(c.i64s(&name).unwrap().len(), data.len()),
                }
            }
        }
    }
}
