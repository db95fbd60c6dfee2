//! Garbage collection: removing the store's own files that the current commit does not
//! reference (older manifests, merged-away segments, superseded deletion files, leftovers of
//! a crashed commit, temporary files). Only names of the store's own patterns are ever
//! removed (see [`super::files::ours`]): never CURRENT, never LOCK, never a foreign file, and
//! never a file of a segment being written (in flight). Readers keep what they mapped or
//! opened (POSIX); a removal that fails (an open file on Windows) is retried by the next
//! collection.

use super::files::{ours, parse_manifest, parse_segment, split_segment_file};
use crate::fs::remove_file;
use std::collections::HashSet;
use std::path::Path;

/// Remove every file of ours in `dir` that is neither in `keep` nor a file of a segment named
/// in `inflight`. Returns the number of files removed.
pub(crate) fn collect(dir: &Path, keep: &HashSet<String>, inflight: &HashSet<String>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if keep.contains(&name) {
            continue;
        }
        let Some(owner) = ours(&name) else { continue };
        if owner.is_some_and(|seg| inflight.contains(seg)) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && remove_file(&dir.join(&name)).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The largest segment number and generation (of a manifest or vocabulary file) named by any
/// file in `dir` (so that a
/// writer never reuses a name, even one a crashed writer left behind).
pub(crate) fn scan_numbers(dir: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (None, None) };
    let (mut seg, mut gen) = (None::<u64>, None::<u64>);
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        let base = crate::fs::temp_target(&name).unwrap_or(&name).to_string();
        if let Some(g) = parse_manifest(&base).or_else(|| super::vocab::parse_vocab(&base)) {
            gen = gen.max(Some(g));
        } else if let Some((s, _)) = split_segment_file(&base) {
            seg = seg.max(parse_segment(s));
        }
    }
    (seg, gen)
}
