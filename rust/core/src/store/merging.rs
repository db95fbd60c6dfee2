//! Merges: the tiered policy that plans them, building a merged segment from a snapshot
//! without the writer lock ([`Store::merge`]), and installing it under the lock
//! ([`Store::finish_merge`]), carrying over the deletions made meanwhile.
//!
//! **Deferred reordering.** A merge concatenates its members' postings whenever their impacts
//! are on one grid (see `index::concat`): it never reorders documents, whatever the store's
//! order, and costs a pass over the postings instead of a build. A merged segment of a store
//! that orders its segments (BP, signature) is then marked as being in its members' order;
//! once it holds [`super::BP_MIN_DOCS`] live documents it is a candidate for a *reorder job*
//! ([`Store::plan_reorders`], [`Store::reorder`]): a one-member merge that rebuilds it in the
//! store's order, installed like a merge ([`Store::finish_merge`]: deletions made meanwhile
//! carried over, abandoned if the segment was merged away). When the job runs is the
//! caller's choice (the Python layer runs it in its merge thread when no merge is planned,
//! see `MergePolicy`). Searches are exact throughout: a segment scores the same in any order.

use super::files::FileRecord;
use super::segment::{SegmentData, SegmentState};
use super::{InflightGuard, Store};
use crate::index::build::Quantization;
use crate::index::concat::Out;
use crate::index::merge::{merge_deferring_order, merge_deferring_order_into};
use crate::index::{merge, Index, MergeOptions};
use crate::search::DocSet;
use crate::store::manifest::StoreQuantization;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Tiered merging: segments are grouped in levels by live size (level `L` holds
/// `floor_docs * factor^L` up to `floor_docs * factor^(L+1)` documents); when a level holds
/// `factor` segments they are merged into one (of the next level), in one merge with that
/// level's segments when it fills that level too (see [`MergePolicy::plan`]). A segment with more than
/// `max_deleted` of its documents deleted is rewritten without them. An index of N documents
/// thus keeps about `(factor - 1) * log_factor(N / floor_docs)` segments at most. A `factor`
/// below 2 never merges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MergePolicy {
    /// Segments per level.
    pub factor: u32,
    /// Documents of the smallest level.
    pub floor_docs: u64,
    /// Fraction of deleted documents that makes a segment be rewritten.
    pub max_deleted: f64,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy { factor: 10, floor_docs: 1000, max_deleted: 0.5 }
    }
}

impl MergePolicy {
    /// Groups of segment positions to merge (each group into one segment), positions
    /// ascending. A level's merge whose result fills the next level up is planned together
    /// with that level's segments, as one merge (with 10 batches of 10,000 and nine segments
    /// of 100,000, one merge of the 19 into 1,000,000 instead of 10 into 100,000 then 10 into
    /// 1,000,000): every document is rewritten once on the way, not once per level.
    pub fn plan(&self, segments: &[SegmentState]) -> Vec<Vec<usize>> {
        if self.factor < 2 {
            return Vec::new();
        }
        let floor = self.floor_docs.max(1) as f64;
        let level = |live: f64| ((live.max(floor) / floor).ln() / (self.factor as f64).ln() + 1e-9).floor() as i64;
        let mut groups = Vec::new();
        // Per level, its units: a segment, or a planned merge (its segments, live documents).
        let mut levels: std::collections::BTreeMap<i64, Vec<(Vec<usize>, u64)>> = Default::default();
        for (i, s) in segments.iter().enumerate() {
            let (n, live) = (s.index().n_docs() as f64, s.n_live as f64);
            if n > 0.0 && n - live > self.max_deleted * n {
                groups.push(vec![i]);
                continue;
            }
            levels.entry(level(live)).or_default().push((vec![i], u64::from(s.n_live)));
        }
        while let Some((lvl, units)) = levels.pop_first() {
            let mut chunks = units.chunks_exact(self.factor as usize);
            for chunk in chunks.by_ref() {
                let members: Vec<usize> = chunk.iter().flat_map(|u| u.0.iter().copied()).collect();
                let live: u64 = chunk.iter().map(|u| u.1).sum();
                let up = level(live as f64);
                if up > lvl {
                    // Planned at its own level: merged in one go if that level fills up.
                    levels.entry(up).or_default().push((members, live));
                } else {
                    groups.push(members);
                }
            }
            groups.extend(chunks.remainder().iter().filter(|u| u.0.len() > 1).map(|u| u.0.clone()));
        }
        for g in &mut groups {
            g.sort_unstable();
        }
        groups
    }

    /// The group that brings `segments` down to at most `max_segments` (the smallest ones), or
    /// rewrites a single segment with deletions when `max_segments` is 1; empty if none.
    pub fn plan_to(segments: &[SegmentState], max_segments: usize) -> Vec<usize> {
        let max_segments = max_segments.max(1);
        if segments.len() > max_segments {
            let mut order: Vec<usize> = (0..segments.len()).collect();
            order.sort_by_key(|&i| segments[i].n_live);
            let mut g = order[..segments.len() - max_segments + 1].to_vec();
            g.sort_unstable();
            g
        } else if max_segments == 1 && segments.len() == 1 && segments[0].deleted.is_some() {
            vec![0]
        } else {
            Vec::new()
        }
    }
}

/// A merged segment built (and, on disk, written) from a snapshot, waiting for
/// [`Store::finish_merge`]. Dropping it abandons the merge (its files are collected).
pub struct PreparedMerge {
    /// The merged segment's name (attachments are named `<name>.<ext>`).
    pub name: String,
    /// The merged segments' names.
    pub members: Vec<String>,
    /// `origin[internal_doc] = (member position in `members`, internal doc in that member)`.
    pub origin: Vec<(u32, u32)>,
    base: Vec<Option<DocSet>>,
    engine: Option<(Arc<Index>, Option<FileRecord>)>,
    _guard: InflightGuard,
}

impl std::fmt::Debug for PreparedMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMerge").field("name", &self.name).field("members", &self.members).finish()
    }
}

/// A segment name reserved for a merge ([`Store::reserve_segment`]): files named after it
/// (`<name>.<ext>`) are never collected while it is held, so a caller can write a merge's
/// attachments while the merge runs ([`Store::merge_reserved`]). Dropping it releases the name.
pub struct Reservation {
    /// The reserved segment name.
    pub name: String,
    guard: InflightGuard,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("name", &self.name).finish()
    }
}

impl Store {
    /// Reserve a fresh segment name for a merge (see [`Reservation`]).
    pub fn reserve_segment(&self) -> Reservation {
        let (name, guard) = self.new_segment();
        Reservation { name, guard }
    }

    /// The origin a merge of segments `names` that concatenates them would have in the
    /// current snapshot: every live document of each member, members in the order given,
    /// each member's in its internal order (`(member position, internal doc)` per merged
    /// document). [`Store::merge`] gives this order unless deletions come meanwhile or the
    /// members' impacts cannot be concatenated (the segment is then rebuilt); a caller that
    /// starts work on it early compares it with [`PreparedMerge::origin`].
    pub fn concat_origin(&self, names: &[String]) -> Result<Vec<(u32, u32)>> {
        let snap = self.snapshot();
        let mut origin = Vec::new();
        for (m, n) in names.iter().enumerate() {
            let s = snap.segments.iter().find(|s| s.name() == n).ok_or_else(|| {
                Error::NotFound(format!("segment {n} is not in the current commit (generation {})", snap.generation))
            })?;
            for d in 0..s.index().n_docs() {
                if s.live.as_ref().is_none_or(|l| l.contains(d)) {
                    origin.push((m as u32, d));
                }
            }
        }
        Ok(origin)
    }

    /// The merges `policy` plans for the current snapshot, as groups of segment names.
    pub fn plan_merges(&self, policy: &MergePolicy) -> Vec<Vec<String>> {
        let snap = self.snapshot();
        let names = |g: Vec<usize>| g.into_iter().map(|i| snap.segments[i].name().to_string()).collect();
        policy.plan(&snap.segments).into_iter().map(names).collect()
    }

    /// The segments to merge to have at most `max_segments` (see [`MergePolicy::plan_to`]).
    pub fn plan_merge_to(&self, max_segments: usize) -> Vec<String> {
        let snap = self.snapshot();
        MergePolicy::plan_to(&snap.segments, max_segments)
            .into_iter()
            .map(|i| snap.segments[i].name().to_string())
            .collect()
    }

    /// The segments a reorder job would rebuild in the store's document order, largest first:
    /// those in their merged members' order with at least [`super::BP_MIN_DOCS`] live
    /// documents (none when the store keeps documents in the order they come).
    pub fn plan_reorders(&self) -> Vec<String> {
        let snap = self.snapshot();
        if !snap.settings.reorder.is_some() {
            return Vec::new();
        }
        let mut c: Vec<&SegmentState> = snap
            .segments
            .iter()
            .filter(|s| s.index().view().members_order && s.n_live as usize >= super::BP_MIN_DOCS)
            .collect();
        c.sort_by_key(|s| std::cmp::Reverse(s.n_live));
        c.into_iter().map(|s| s.name().to_string()).collect()
    }

    /// A reorder job: rebuild segment `name` of the current snapshot from its stored vectors in
    /// the store's document order (dropping its deleted documents), without the writer lock.
    /// Install it with [`Store::finish_merge`] like a merge.
    pub fn reorder(&self, name: &str) -> Result<PreparedMerge> {
        self.merge_with(&[name.to_string()], true, None)
    }

    /// Merge the live documents of the segments `names` of the current snapshot into one
    /// segment, and write its engine file: heavy work that needs no writer lock (commits may go
    /// on meanwhile). Install it with [`Store::finish_merge`].
    pub fn merge(&self, names: &[String]) -> Result<PreparedMerge> {
        self.merge_with(names, false, None)
    }

    /// [`Store::merge`] into the segment name `reserved` (see [`Reservation`]).
    pub fn merge_reserved(&self, names: &[String], reserved: Reservation) -> Result<PreparedMerge> {
        self.merge_with(names, false, Some(reserved))
    }

    fn merge_with(&self, names: &[String], rebuild: bool, reserved: Option<Reservation>) -> Result<PreparedMerge> {
        let snap = self.snapshot();
        let mut members: Vec<&SegmentState> = Vec::with_capacity(names.len());
        for n in names {
            let s = snap.segments.iter().find(|s| s.name() == n).ok_or_else(|| {
                Error::NotFound(format!("segment {n} is not in the current commit (generation {})", snap.generation))
            })?;
            if members.iter().any(|m| m.name() == n) {
                return Err(Error::InvalidArgument(format!("segment {n} is listed twice")));
            }
            members.push(s);
        }
        let quantization = match (snap.settings.bm25, snap.settings.quantization) {
            (Some(_), _) => None,
            (None, StoreQuantization::F32) => Some(Quantization::F32),
            (None, StoreQuantization::U8) => Some(Quantization::U8 { scale: snap.settings.scale }),
        };
        let refs: Vec<(&Index, Option<&DocSet>)> = members.iter().map(|s| (s.index(), s.live.as_ref())).collect();
        let n_live = members.iter().map(|s| s.n_live as usize).sum();
        let reorder = super::segment_reorder(snap.settings.reorder, n_live);
        let (name, guard) = match reserved {
            Some(r) => (r.name, r.guard),
            None => self.new_segment(),
        };
        let (origin, engine) = match &self.dir {
            // On disk, a concatenation streams its image into the segment's file as it is
            // made (the disk writes while the merge computes; no in-memory copy of the image).
            Some(dir) if !rebuild && n_live > 0 => {
                let file = super::files::sdx_name(&name);
                // The written file is mapped and validated (every posting, stored term and
                // id) while it is synced: the check reads the cached pages as the disk writes.
                let record =
                    |&(_, size, crc32): &(Vec<(u32, u32)>, u64, u32)| FileRecord { name: file.clone(), size, crc32 };
                let fill = |f: &mut std::fs::File, tmp: &std::path::Path| {
                    let sink = f.try_clone().map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
                    let (out, origin, _) = merge_deferring_order_into(&refs, quantization, reorder, Some(sink))
                        .map_err(|e| match e {
                            // the streaming writer knows no path: name the file (full disk, I/O error)
                            Error::Io { context, source } => {
                                Error::io(format!("{context} into {}", tmp.display()), source)
                            }
                            e => e,
                        })?;
                    match out {
                        Out::File { size, crc32, .. } => Ok((origin, size, crc32)),
                        Out::Index(index) => {
                            let bytes = index.image_bytes();
                            crate::fs::write_cancellable(f, tmp, bytes)?;
                            Ok((origin, bytes.len() as u64, crc32fast::hash(bytes)))
                        }
                    }
                };
                let ((origin, size, crc32), mapped) =
                    crate::fs::create_fill_check(&dir.join(&file), fill, |tmp, written| {
                        record(written).open_written_index_at(tmp)
                    })?;
                let rec = FileRecord { name: file, size, crc32 };
                (origin, Some((Arc::new(mapped), Some(rec))))
            }
            _ => {
                let merged = if rebuild {
                    merge(&refs, &MergeOptions { quantization, reorder })?
                } else {
                    merge_deferring_order(&refs, quantization, reorder)?
                };
                let engine = if merged.index.n_docs() == 0 {
                    None
                } else {
                    Some(self.write_engine(&name, &Arc::new(merged.index), true)?)
                };
                (merged.origin, engine)
            }
        };
        // Members calibrated for approximate search (in memory or in their files): the merged
        // segment is calibrated here, off the writer lock, and its high layer made, rather than
        // by the first approximate search after the merge is installed (which waited for it:
        // 7-15 s on debian, helper-99). On pseudo-queries: a calibration made on the user's
        // queries is not carried over (its queries are not kept). The file is written when
        // the merge is installed (`persist::attach`).
        if let Some((ix, _)) = &engine {
            let calibrated = members.iter().any(|s| crate::search::approx::persist::calibrated(s.index()));
            if calibrated && crate::search::approx::calibrates(ix) {
                let c = crate::search::approx::calibrate::calibrate_with(ix, None, 0x5eed)?;
                ix.approx().slot().get_or_insert_with(|| Arc::new(c));
                let _ = crate::search::approx::high_layer(ix);
            }
        }
        Ok(PreparedMerge {
            name,
            members: names.to_vec(),
            origin,
            base: members.iter().map(|s| s.deleted.clone()).collect(),
            engine,
            _guard: guard,
        })
    }

    /// Drop a prepared merge that will not be installed and remove the engine file it wrote,
    /// now rather than at the next commit's collection (an interrupted merge left a file the
    /// size of the merged segment until then; for a reader, for good: breaker28 M2). Only that
    /// file: attachments are the caller's. Call it while still the writer that prepared it
    /// (the file's name was reserved for it).
    pub fn abandon_merge(&self, prepared: PreparedMerge) -> Result<()> {
        let file = prepared.engine.as_ref().and_then(|(_, rec)| rec.as_ref()).map(|rec| rec.name.clone());
        drop(prepared); // unmapped; its name leaves the in-flight set
        let (Some(dir), Some(file)) = (&self.dir, file) else { return Ok(()) };
        if self.snapshot().segments.iter().any(|s| s.data.sdx.as_ref().is_some_and(|r| r.name == file)) {
            return Ok(()); // committed after all (cannot happen: the name was the merge's)
        }
        let path = dir.join(&file);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Install a merge (a writer call): the merged segment (with `attachments`, files
    /// `<name>.<ext>` the caller wrote) replaces its members, at the first member's place,
    /// keeping the deletions made since [`Store::merge`] read them and moving staged deletions
    /// of the members onto it. Returns the new generation, or `None` if a member is gone
    /// meanwhile (merged elsewhere): the merge is then dropped.
    pub fn finish_merge(&self, prepared: PreparedMerge, attachments: &[String]) -> Result<Option<u64>> {
        let mut w = self.writer()?;
        self.begin(&mut w)?;
        let snap = self.snapshot();
        let pos: Option<Vec<usize>> = prepared.members.iter().map(|n| snap.position(n)).collect();
        let Some(pos) = pos else {
            // Abandoned: its files go now (the name leaves the in-flight set with `prepared`).
            drop(prepared);
            if let Some(dir) = &self.dir {
                self.collect(dir);
            }
            return Ok(None);
        };
        // Member doc -> merged doc.
        let mut inv: Vec<Vec<u32>> =
            pos.iter().map(|&p| vec![u32::MAX; snap.segments[p].index().n_docs() as usize]).collect();
        for (d, &(m, od)) in prepared.origin.iter().enumerate() {
            inv[m as usize][od as usize] = d as u32;
        }
        let mut newly = Vec::new();
        let mut moved = BTreeSet::new();
        for (m, &p) in pos.iter().enumerate() {
            let now = &snap.segments[p];
            if let Some(del) = &now.deleted {
                for (wi, &word) in del.words().iter().enumerate() {
                    let mut bits = word & !prepared.base[m].as_ref().map_or(0, |b| b.word(wi));
                    while bits != 0 {
                        let od = wi * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if let Some(&d) = inv[m].get(od).filter(|&&d| d != u32::MAX) {
                            newly.push(d);
                        }
                    }
                }
            }
            if let Some(staged) = w.staged.deletes.get(now.name()) {
                moved.extend(
                    staged.iter().filter_map(|&od| inv[m].get(od as usize).copied().filter(|&d| d != u32::MAX)),
                );
            }
        }
        let merged = match &prepared.engine {
            None => None,
            Some((index, sdx)) => {
                let attachments = self.record_attachments(&prepared.name, attachments)?;
                let data =
                    SegmentData { name: prepared.name.clone(), index: index.clone(), sdx: sdx.clone(), attachments };
                let n = index.n_docs();
                let deleted = if newly.is_empty() { None } else { Some(DocSet::from_docs(newly, n)?) };
                Some(SegmentState::new(Arc::new(data), deleted, None)?).filter(|s| s.n_live > 0)
            }
        };
        let first = *pos.iter().min().unwrap_or(&0);
        let mut states = Vec::with_capacity(snap.segments.len());
        for (i, s) in snap.segments.iter().enumerate() {
            if i == first {
                states.extend(merged.clone());
            } else if !pos.contains(&i) {
                states.push(s.clone());
            }
        }
        let (generation, synced) = self.write_commit(&mut w, states, None)?;
        for n in &prepared.members {
            w.staged.deletes.remove(n);
        }
        if !moved.is_empty() && merged.is_some() {
            w.staged.deletes.insert(prepared.name.clone(), moved);
        }
        synced.map(|_| Some(generation))
    }
}
