//! Helpers shared by the fuzz targets.

/// Recompute every checksum of a container image in place (section CRCs, table CRC, header
/// CRC), as far as the header and table can be located. Mutations of the header and the
/// section table then reach the structural checks instead of stopping at a CRC mismatch.
/// Anything that cannot be located is left alone (the parser rejects it anyway).
pub fn reseal(b: &mut [u8]) {
    const HEADER_LEN: usize = 64;
    const ENTRY_LEN: usize = 64;
    if b.len() < HEADER_LEN {
        return;
    }
    let le_u64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let count = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
    let table = le_u64(b, 32);
    if let Ok(table) = usize::try_from(table) {
        if table >= HEADER_LEN && table <= b.len() {
            let n_entries = ((b.len() - table) / ENTRY_LEN).min(count);
            for i in 0..n_entries {
                let e = table + i * ENTRY_LEN;
                let (off, len) = (le_u64(b, e + 32), le_u64(b, e + 40));
                let end = off.checked_add(len);
                if let Some(end) = end.filter(|&end| end <= table as u64) {
                    let c = crc32fast::hash(&b[off as usize..end as usize]);
                    b[e + 48..e + 52].copy_from_slice(&c.to_le_bytes());
                }
            }
            let c = crc32fast::hash(&b[table..]);
            b[28..32].copy_from_slice(&c.to_le_bytes());
        }
    }
    let c = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&c.to_le_bytes());
}
