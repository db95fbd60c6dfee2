//! Any bytes given to `Container::parse` yield `Ok` or a corruption error, never a panic.
//! Each input is parsed as given (checksums verified and not), then resealed (every CRC
//! recomputed) so that mutations of the header and the section table reach the structural
//! checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparsedex_core::container::{Container, Image};
use sparsedex_core::Error;

#[path = "common.rs"]
mod common;

const MAGIC: [u8; 8] = *b"SPDXIDX\0";

fn check(bytes: &[u8], verify: bool) {
    match Container::parse(Image::from_bytes(bytes), MAGIC, 1, verify) {
        Ok(c) => {
            // Every accessor must be safe on every section, whatever its kind.
            let names: Vec<String> = c.section_names().map(str::to_string).collect();
            for n in &names {
                let _ = c.bytes(n);
                let _ = c.u32s(n);
                let _ = c.u64s(n);
                let _ = c.f32s(n);
                let _ = c.i64s(n);
            }
            assert!(c.total_bytes() == bytes.len());
        }
        Err(Error::Corrupt(_) | Error::UnsupportedVersion { .. }) => {}
        Err(e) => panic!("unexpected error kind: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, true);
    check(data, false);
    let mut sealed = data.to_vec();
    common::reseal(&mut sealed);
    check(&sealed, true);
});
