//! Writing the posting sections of a segment: a counting sort of the rows into term-major
//! postings and 128-posting blocks with their maxima.

use super::build::Local;
use super::impact::{bm25_as_u32s, join_all, Bm25Impact, Impact};
use crate::codec::{encode_docs, encode_docs_final, BLOCK_LEN};
use crate::container::ContainerWriter;
use crate::Result;
use rayon::prelude::*;

/// Impact types stored in an index.
pub(crate) trait StoredImpact: Impact {
    fn add_sections(w: &mut ContainerWriter, impacts: &[Self], block_max: &[Self], term_max: &[Self]) -> Result<()>;
}
impl StoredImpact for u8 {
    fn add_sections(w: &mut ContainerWriter, impacts: &[u8], block_max: &[u8], term_max: &[u8]) -> Result<()> {
        w.add_bytes("impacts_u8", impacts)?;
        w.add_bytes("block_max_u8", block_max)?;
        w.add_bytes("term_max_u8", term_max)?;
        Ok(())
    }
}
impl StoredImpact for f32 {
    fn add_sections(w: &mut ContainerWriter, impacts: &[f32], block_max: &[f32], term_max: &[f32]) -> Result<()> {
        w.add_f32s("impacts_f32", impacts)?;
        w.add_f32s("block_max_f32", block_max)?;
        w.add_f32s("term_max_f32", term_max)?;
        Ok(())
    }
}
impl StoredImpact for Bm25Impact {
    fn add_sections(
        w: &mut ContainerWriter,
        impacts: &[Bm25Impact],
        block_max: &[Bm25Impact],
        term_max: &[Bm25Impact],
    ) -> Result<()> {
        w.add_u32s("impacts_bm25", bm25_as_u32s(impacts))?;
        w.add_u32s("block_max_bm25", bm25_as_u32s(block_max))?;
        w.add_u32s("term_max_bm25", bm25_as_u32s(term_max))?;
        Ok(())
    }
}

/// Term-major postings: (term_post_start, docs, impacts) by a counting sort of the rows.
pub(crate) struct Postings<I> {
    start: Vec<u64>,
    docs: Vec<u32>,
    impacts: Vec<I>,
}

impl<I> Postings<I> {
    /// Postings given term-major: term `t`'s at `start[t]..start[t + 1]` of `docs` (ascending
    /// within a term) and `impacts`.
    pub(crate) fn new(start: Vec<u64>, docs: Vec<u32>, impacts: Vec<I>) -> Self {
        Postings { start, docs, impacts }
    }
}

/// `f(weight, doc)` gives the impact of a posting.
pub(crate) fn postings_impacts<I: StoredImpact>(c: &Local, f: impl Fn(f32, usize) -> I) -> Postings<I> {
    let nt = c.n_terms() as usize;
    let mut start = vec![0u64; nt + 1];
    for &t in &c.terms {
        start[t as usize + 1] += 1;
    }
    for t in 0..nt {
        start[t + 1] += start[t];
    }
    let np = c.terms.len();
    let mut docs = vec![0u32; np];
    let mut impacts = vec![I::default(); np];
    let mut fill: Vec<u64> = start[..nt].to_vec();
    for d in 0..c.indptr.len() - 1 {
        for p in c.indptr[d] as usize..c.indptr[d + 1] as usize {
            let t = c.terms[p] as usize;
            let at = fill[t] as usize;
            docs[at] = d as u32;
            impacts[at] = f(c.values[p], d);
            fill[t] += 1;
        }
    }
    Postings { start, docs, impacts }
}

/// Write the posting sections of a segment of `nt` terms.
pub(crate) fn write_postings<I: StoredImpact>(w: &mut ContainerWriter, nt: usize, p: Postings<I>) -> Result<()> {
    struct TermBlocks<I> {
        bytes: Vec<u8>,
        offs: Vec<u64>,
        last: Vec<u32>,
        max: Vec<I>,
    }
    // Terms in contiguous groups of about GROUP postings, each encoded into one set of buffers
    // (in parallel across groups): few allocations for small segments, full parallelism for
    // large ones.
    const GROUP: u64 = 1 << 16;
    let mut bounds = vec![0usize];
    for t in 0..nt {
        if p.start[t + 1] - p.start[*bounds.last().unwrap_or(&0)] >= GROUP {
            bounds.push(t + 1);
        }
    }
    if *bounds.last().unwrap_or(&0) != nt {
        bounds.push(nt);
    }
    let groups: Vec<(TermBlocks<I>, Vec<u32>, Vec<I>)> = bounds
        .par_windows(2)
        .map(|w| {
            let (t0, t1) = (w[0], w[1]);
            let mut tb = TermBlocks { bytes: Vec::new(), offs: Vec::new(), last: Vec::new(), max: Vec::new() };
            let mut block_counts = Vec::with_capacity(t1 - t0);
            let mut term_maxes = Vec::with_capacity(t1 - t0);
            for t in t0..t1 {
                let (a, b) = (p.start[t] as usize, p.start[t + 1] as usize);
                let mut prev = None;
                let mut term_max = I::default();
                let mut n = 0u32;
                for (dc, ic) in p.docs[a..b].chunks(BLOCK_LEN).zip(p.impacts[a..b].chunks(BLOCK_LEN)) {
                    tb.offs.push(tb.bytes.len() as u64);
                    if dc.len() < BLOCK_LEN {
                        encode_docs_final(dc, prev, &mut tb.bytes); // only a list's last block is short
                    } else {
                        encode_docs(dc, prev, &mut tb.bytes);
                    }
                    let last = *dc.last().unwrap_or(&0);
                    prev = Some(last);
                    tb.last.push(last);
                    let m = join_all(ic);
                    tb.max.push(m);
                    term_max = term_max.join(m);
                    n += 1;
                }
                block_counts.push(n);
                term_maxes.push(term_max);
            }
            (tb, block_counts, term_maxes)
        })
        .collect();
    let n_blocks: usize = groups.iter().map(|g| g.0.last.len()).sum();
    let total_bytes: usize = groups.iter().map(|g| g.0.bytes.len()).sum();
    let mut term_block_start = Vec::with_capacity(nt + 1);
    let mut block_off = Vec::with_capacity(n_blocks + 1);
    let mut block_last = Vec::with_capacity(n_blocks);
    let mut block_max = Vec::with_capacity(n_blocks);
    let mut term_max = Vec::with_capacity(nt);
    let mut docs_bytes = Vec::with_capacity(total_bytes);
    term_block_start.push(0u32);
    for (tb, counts, maxes) in groups {
        let base = docs_bytes.len() as u64;
        block_off.extend(tb.offs.iter().map(|o| o + base));
        docs_bytes.extend_from_slice(&tb.bytes);
        block_last.extend_from_slice(&tb.last);
        block_max.extend_from_slice(&tb.max);
        term_max.extend_from_slice(&maxes);
        for c in counts {
            let prev = *term_block_start.last().unwrap_or(&0);
            term_block_start.push(prev + c);
        }
    }
    block_off.push(docs_bytes.len() as u64);
    w.add_u64s("term_post_start", &p.start)?;
    w.add_u32s("term_block_start", &term_block_start)?;
    w.add_u32s("block_last", &block_last)?;
    w.add_u64s("block_off", &block_off)?;
    w.add_bytes("docs", &docs_bytes)?;
    I::add_sections(w, &p.impacts, &block_max, &term_max)?;

    // The dense doc-block, fine-block and superblock maxima are derived at open, not written
    // (format version 4, see `blockmax`).
    Ok(())
}
