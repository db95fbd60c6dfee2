//! TEMPORARY container (replaced by the real container branch).
#![allow(missing_docs)]
use crate::{Error, Result};
use std::path::Path;

pub struct ContainerWriter { magic: [u8; 8], version: u32, sections: Vec<(String, Vec<u8>)> }
impl ContainerWriter {
    pub fn new(magic: [u8; 8], format_version: u32) -> Self { Self { magic, version: format_version, sections: vec![] } }
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) { self.sections.push((name.to_string(), data.to_vec())); }
    pub fn add_u32s(&mut self, name: &str, d: &[u32]) { self.add_bytes(name, &d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()) }
    pub fn add_u64s(&mut self, name: &str, d: &[u64]) { self.add_bytes(name, &d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()) }
    pub fn add_f32s(&mut self, name: &str, d: &[f32]) { self.add_bytes(name, &d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()) }
    pub fn add_i64s(&mut self, name: &str, d: &[i64]) { self.add_bytes(name, &d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()) }
    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        let table_len = self.sections.len() * 48;
        let mut off = ((16 + table_len + 63) / 64) * 64;
        let mut table = Vec::new();
        for (n, d) in &self.sections {
            let mut name = [0u8; 32]; name[..n.len()].copy_from_slice(n.as_bytes());
            table.extend_from_slice(&name); table.extend_from_slice(&(off as u64).to_le_bytes()); table.extend_from_slice(&(d.len() as u64).to_le_bytes());
            off = ((off + d.len() + 63) / 64) * 64;
        }
        out.extend_from_slice(&table);
        for (_, d) in &self.sections { while out.len() % 64 != 0 { out.push(0); } out.extend_from_slice(d); }
        out
    }
    pub fn into_image(self) -> Image { let b = self.serialize(); let mut v = vec![0u64; (b.len() + 7) / 8]; 
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr() as *mut u8, b.len()); } Image::Owned(v, b.len()) }
    pub fn write_file(self, path: &Path) -> Result<()> { std::fs::write(path, self.serialize()).map_err(|e| Error::io(format!("writing {}", path.display()), e)) }
}
pub enum Image { Owned(Vec<u64>, usize), Mapped(memmap2::Mmap) }
impl Image {
    pub fn open_file(path: &Path) -> Result<Image> { let f = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Image::Mapped(unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io("mmap", e))?)) }
    pub fn as_bytes(&self) -> &[u8] { match self { Image::Owned(v, n) => unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, *n) }, Image::Mapped(m) => m } }
}
pub struct Container { image: Image, sections: Vec<(String, usize, usize)> }
impl Container {
    pub fn parse(image: Image, magic: [u8; 8], supported_version: u32, _verify: bool) -> Result<Container> {
        let b = image.as_bytes();
        if b.len() < 16 || b[..8] != magic { return Err(Error::Corrupt("not a sparsedex index file".into())); }
        let v = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if v != supported_version { return Err(Error::UnsupportedVersion { found: v, supported: supported_version }); }
        let n = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        let mut sections = vec![];
        for i in 0..n { let e = &b[16 + i * 48..16 + i * 48 + 48];
            let name = String::from_utf8_lossy(&e[..32]).trim_end_matches('\0').to_string();
            let off = u64::from_le_bytes(e[32..40].try_into().unwrap()) as usize; let len = u64::from_le_bytes(e[40..48].try_into().unwrap()) as usize;
            if off + len > b.len() { return Err(Error::Corrupt("truncated".into())); }
            sections.push((name, off, len)); }
        Ok(Container { image, sections })
    }
    pub fn bytes(&self, name: &str) -> Result<&[u8]> { let s = self.sections.iter().find(|s| s.0 == name).ok_or_else(|| Error::Corrupt(format!("missing section '{name}'")))?; Ok(&self.image.as_bytes()[s.1..s.1 + s.2]) }
    pub fn u32s(&self, name: &str) -> Result<&[u32]> { let b = self.bytes(name)?; let (p, m, s) = unsafe { b.align_to::<u32>() }; if !p.is_empty() || !s.is_empty() { return Err(Error::Corrupt(name.into())); } Ok(m) }
    pub fn u64s(&self, name: &str) -> Result<&[u64]> { let b = self.bytes(name)?; let (p, m, s) = unsafe { b.align_to::<u64>() }; if !p.is_empty() || !s.is_empty() { return Err(Error::Corrupt(name.into())); } Ok(m) }
    pub fn f32s(&self, name: &str) -> Result<&[f32]> { let b = self.bytes(name)?; let (p, m, s) = unsafe { b.align_to::<f32>() }; if !p.is_empty() || !s.is_empty() { return Err(Error::Corrupt(name.into())); } Ok(m) }
    pub fn i64s(&self, name: &str) -> Result<&[i64]> { let b = self.bytes(name)?; let (p, m, s) = unsafe { b.align_to::<i64>() }; if !p.is_empty() || !s.is_empty() { return Err(Error::Corrupt(name.into())); } Ok(m) }
    pub fn image_bytes(&self) -> &[u8] { self.image.as_bytes() }
    pub fn has(&self, name: &str) -> bool { self.sections.iter().any(|s| s.0 == name) }
    pub fn total_bytes(&self) -> usize { self.image.as_bytes().len() }
}
