//! A snapshot: the store as of one commit, immutable and safe to search from many threads.
//! Readers see whole commits; a store moves to a newer one with [`super::Store::refresh`].

use super::manifest::Settings;
use super::segment::SegmentState;
use crate::index::{Id, Impacts};
use crate::search::common::for_each_posting;
use crate::search::explain::{explain_scored_as, Contribution};
use crate::search::{
    search_segments_batch_scores, search_segments_scores, Algorithm, Bm25Stats, DocSet, QueryRef, Scores, Segment,
    SegmentHit,
};
use crate::vectors::CsrRef;
use crate::{Error, Result};
use std::sync::Arc;

/// The store as of one commit.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) uuid: String,
    pub(crate) settings: Arc<Settings>,
    pub(crate) segments: Vec<SegmentState>,
    /// The vocabulary file, opened when the commit was loaded (`None` without one, and in
    /// memory).
    pub(crate) vocab: super::vocab::SharedVocab,
    /// The directory this commit was read from, its symbolic links resolved (`None` in
    /// memory; a writer's own commits name the store's path).
    pub(crate) dir: Option<Arc<std::path::PathBuf>>,
}

impl Snapshot {
    /// The commit's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The directory this commit was read from, symbolic links resolved: files of the
    /// commit that the core does not open (a layer above's attachments) are opened there, so
    /// that a link switched to another copy of the index meanwhile cannot pair this commit
    /// with the other copy's files. `None` in memory.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref().map(|d| d.as_path())
    }

    /// The store id.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The store's settings as of this commit.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The segments, in search order (ties go to the earlier one).
    pub fn segments(&self) -> &[SegmentState] {
        &self.segments
    }

    /// Number of committed terms in the vocabulary file (`None`: the store has none).
    pub fn vocabulary_len(&self) -> Option<u64> {
        self.settings.vocabulary.as_ref().map(|v| v.n_terms)
    }

    /// The committed term texts with ids `start ..` (empty without a vocabulary file), read
    /// through the handle opened with the commit, the committed prefix's CRC32 checked
    /// ([`Error::Corrupt`] naming the file otherwise).
    pub fn vocabulary(&self, start: u64) -> Result<Vec<String>> {
        match &self.vocab {
            Some(h) => h.terms(&self.uuid, start),
            None => Ok(Vec::new()),
        }
    }

    /// Whether this commit's vocabulary begins with the one `earlier` records (see
    /// [`super::VocabHandle::extends`]); false without a vocabulary file.
    pub fn vocabulary_extends(&self, earlier: &super::VocabRecord) -> Result<bool> {
        match &self.vocab {
            Some(h) => h.extends(earlier),
            None => Ok(false),
        }
    }

    /// Number of live documents.
    pub fn n_live(&self) -> u64 {
        self.segments.iter().map(|s| s.n_live as u64).sum()
    }

    /// Position of the segment named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name() == name)
    }

    /// `(segment position, internal doc)` of the live document with id `id`: a binary search
    /// per segment, newest first.
    pub fn locate(&self, id: Id<'_>) -> Option<(usize, u32)> {
        self.segments.iter().enumerate().rev().find_map(|(i, s)| s.locate(id).map(|d| (i, d)))
    }

    /// BM25 statistics of the live documents for `terms`: N, the total length and each term's
    /// document frequency, deleted documents excluded (so scores equal those of a fresh index
    /// over the surviving documents). Zero for a store of another kind.
    pub fn bm25_stats(&self, terms: &[u32]) -> Bm25Stats {
        let mut t = terms.to_vec();
        t.sort_unstable();
        t.dedup();
        let mut df = vec![0u64; t.len()];
        let (mut n, mut total) = (0u64, 0u64);
        for s in &self.segments {
            let v = s.index().view();
            let Impacts::Bm25(a) = v.impacts else { continue };
            n += s.n_live as u64;
            total += s.live_len;
            for (d, &term) in df.iter_mut().zip(&t) {
                let Some(l) = v.local_term(term) else { continue };
                *d += match &s.deleted {
                    None => v.df(l),
                    Some(del) => {
                        let mut c = 0u64;
                        for_each_posting(v, &a, l, |doc, _| c += !del.contains(doc) as u64);
                        c
                    }
                };
            }
        }
        // df <= n by construction (live postings of live documents).
        Bm25Stats::new(n, total, t, df).unwrap_or_else(|_| Bm25Stats::of_indexes(&[], &[]))
    }

    /// Document frequencies of `terms` (any order, duplicates allowed) over the live documents,
    /// for any impact kind, and the number of live documents: `(n_live, df)` with `df[i]` the
    /// live documents holding `terms[i]`. A term absent from every segment counts 0. Costs one
    /// lookup per term and segment, plus a scan of the term's postings in segments with
    /// deletions. (For IDF weights computed outside the engine, e.g. Qdrant's BM25 query IDF.)
    pub fn live_df(&self, terms: &[u32]) -> (u64, Vec<u64>) {
        let mut df = vec![0u64; terms.len()];
        let mut n = 0u64;
        for s in &self.segments {
            let v = s.index().view();
            n += s.n_live as u64;
            for (d, &term) in df.iter_mut().zip(terms) {
                let Some(l) = v.local_term(term) else { continue };
                *d += match &s.deleted {
                    None => v.df(l),
                    Some(del) => {
                        let mut c = 0u64;
                        match &v.impacts {
                            Impacts::U8(a) => for_each_posting(v, a, l, |doc, _| c += !del.contains(doc) as u64),
                            Impacts::F32(a) => for_each_posting(v, a, l, |doc, _| c += !del.contains(doc) as u64),
                            Impacts::Bm25(a) => for_each_posting(v, a, l, |doc, _| c += !del.contains(doc) as u64),
                        }
                        c
                    }
                };
            }
        }
        (n, df)
    }

    /// The segments a search covers (positions) and their allowed sets: live AND the caller's
    /// filter (one per segment, `None` for no filter), skipping segments with nothing allowed.
    fn searched(&self, filters: Option<&[Option<DocSet>]>) -> Result<(Vec<usize>, Vec<Option<DocSet>>)> {
        if let Some(f) = filters {
            if f.len() != self.segments.len() {
                return Err(Error::InvalidArgument(format!(
                    "{} filter sets for {} segments: give one (or None) per segment",
                    f.len(),
                    self.segments.len()
                )));
            }
        }
        let (mut pos, mut sets) = (Vec::new(), Vec::new());
        for (i, s) in self.segments.iter().enumerate() {
            if s.n_live == 0 {
                continue;
            }
            let allowed = match (s.live.as_ref(), filters.and_then(|f| f[i].as_ref())) {
                (None, None) => None,
                (Some(l), None) => Some(l.clone()),
                (None, Some(f)) => Some(f.clone()),
                (Some(l), Some(f)) => Some(l.and(f)?),
            };
            if let Some(a) = &allowed {
                if a.words().len() != (s.index().n_docs() as usize).div_ceil(64) {
                    return Err(Error::InvalidArgument(format!("filter set of segment {i} has the wrong size")));
                }
                if a.is_empty() {
                    continue;
                }
            }
            pos.push(i);
            sets.push(allowed);
        }
        Ok((pos, sets))
    }

    fn stats_for(&self, terms: &[u32], stats: Option<&Bm25Stats>) -> Option<Bm25Stats> {
        match stats {
            Some(s) => Some(s.clone()),
            None if self.settings.bm25.is_some() => Some(self.bm25_stats(terms)),
            None => None,
        }
    }

    /// Exact global top-`k` of one query over the live documents passing `filters`; BM25
    /// stores score with `stats` (their live documents' statistics when `None`; a sharded
    /// index passes the sum over its shards); u8 segments return `scores` ([`Scores`]). Hits
    /// name segments by position in this snapshot.
    pub fn search(
        &self,
        q: QueryRef<'_>,
        k: usize,
        algo: Algorithm,
        filters: Option<&[Option<DocSet>]>,
        stats: Option<&Bm25Stats>,
        scores: Scores,
    ) -> Result<Vec<SegmentHit>> {
        if k == 0 {
            return Err(Error::InvalidArgument("k must be at least 1".into()));
        }
        let (pos, sets) = self.searched(filters)?;
        if pos.is_empty() {
            return Ok(Vec::new());
        }
        let segs: Vec<Segment<'_>> = pos
            .iter()
            .zip(&sets)
            .map(|(&i, a)| Segment { index: self.segments[i].index(), allowed: a.as_ref() })
            .collect();
        let stats = self.stats_for(q.terms, stats);
        let hits = search_segments_scores(&segs, q, k, algo, stats.as_ref(), scores)?;
        Ok(hits.into_iter().map(|h| SegmentHit { segment: pos[h.segment as usize] as u32, ..h }).collect())
    }

    /// [`Snapshot::search`] for every query of a CSR batch, on `threads` threads.
    pub fn search_batch(
        &self,
        queries: CsrRef<'_>,
        k: usize,
        algo: Algorithm,
        threads: Option<usize>,
        filters: Option<&[Option<DocSet>]>,
        stats: Option<&Bm25Stats>,
        scores: Scores,
    ) -> Result<Vec<Vec<SegmentHit>>> {
        let nq = crate::vectors::check_csr(&queries, "queries")?;
        if k == 0 {
            return Err(Error::InvalidArgument("k must be at least 1".into()));
        }
        let (pos, sets) = self.searched(filters)?;
        if pos.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        let segs: Vec<Segment<'_>> = pos
            .iter()
            .zip(&sets)
            .map(|(&i, a)| Segment { index: self.segments[i].index(), allowed: a.as_ref() })
            .collect();
        let stats = self.stats_for(queries.indices, stats);
        let res = search_segments_batch_scores(&segs, queries, k, algo, threads, stats.as_ref(), scores)?;
        Ok(res
            .into_iter()
            .map(|hits| hits.into_iter().map(|h| SegmentHit { segment: pos[h.segment as usize] as u32, ..h }).collect())
            .collect())
    }

    /// Per-term explanation of internal doc `doc` of segment `segment` for query `q`, in the
    /// arithmetic a search uses (BM25: under `stats`, or the live statistics), with the
    /// document's score exactly as a search returning `scores` gives it.
    pub fn explain(
        &self,
        q: QueryRef<'_>,
        segment: usize,
        doc: u32,
        stats: Option<&Bm25Stats>,
        scores: Scores,
    ) -> Result<(Vec<Contribution>, f32)> {
        let s = self.segments.get(segment).ok_or_else(|| {
            Error::InvalidArgument(format!("segment {segment} is out of range ({} segments)", self.segments.len()))
        })?;
        let stats = self.stats_for(q.terms, stats);
        explain_scored_as(s.index(), q, doc, stats.as_ref(), scores)
    }
}
