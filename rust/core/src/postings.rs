//! Cursors over block-compressed posting lists.
//!
//! The contract follows tantivy's `DocSet` (`src/docset.rs`): a cursor is positioned on a
//! posting (`doc()`), moves forward only (`next`, `seek`), and reports [`TERMINATED`] when
//! exhausted. Block-max access for BlockMax-WAND / BlockMax-MaxScore uses a second, shallow
//! block pointer that moves independently of the decoded position (`block_max_for`), as
//! tantivy's term scorer and PISA's block-max cursors do: it never decodes anything.

use crate::codec::{decode_stored_docs_at, BLOCK_LEN};
use crate::index::{ImpactArrays, IndexView, TERMINATED};

/// Decode block `b` (global index) of a term whose first block is `first_block` into `buf`:
/// the one place that turns block metadata into doc ids.
#[inline]
pub fn decode_block(v: &IndexView<'_>, first_block: usize, b: usize, buf: &mut [u32; BLOCK_LEN]) {
    decode_block_raw(v.docs, v.block_off, v.block_last, first_block, b, buf)
}

#[inline]
fn decode_block_raw(
    docs: &[u8],
    block_off: &[u64],
    block_last: &[u32],
    first_block: usize,
    b: usize,
    buf: &mut [u32; BLOCK_LEN],
) {
    let (lo, hi) = (block_off[b] as usize, block_off[b + 1] as usize);
    let prev = if b > first_block { Some(block_last[b - 1]) } else { None };
    decode_stored_docs_at(docs, lo, hi, prev, buf);
}

/// A forward-only cursor over the postings of one term.
pub struct Cursor<'a, I> {
    docs: &'a [u8],
    block_off: &'a [u64],
    block_last: &'a [u32],
    block_max: &'a [I],
    impacts: &'a [I],
    first_block: usize,
    end_block: usize,
    /// Global posting position of the term's first posting.
    post_start: usize,
    df: usize,
    /// Current (decoded) block.
    block: usize,
    /// Shallow block pointer for block-max queries.
    bm_block: usize,
    pos: usize,
    len: usize,
    doc: u32,
    buf: [u32; BLOCK_LEN],
    term_max: I,
}

impl<'a, I: Copy + Default> Cursor<'a, I> {
    /// A cursor on `term`'s first posting (or exhausted if the list is empty or `term` is out of range).
    pub fn new(view: &IndexView<'a>, imps: &ImpactArrays<'a, I>, term: u32) -> Self {
        let t = term as usize;
        let (first_block, end_block, post_start, df, term_max) = if t < view.n_terms as usize {
            (
                view.term_block_start[t] as usize,
                view.term_block_start[t + 1] as usize,
                view.term_post_start[t] as usize,
                (view.term_post_start[t + 1] - view.term_post_start[t]) as usize,
                imps.term_max[t],
            )
        } else {
            (0, 0, 0, 0, I::default())
        };
        let mut c = Cursor {
            docs: view.docs,
            block_off: view.block_off,
            block_last: view.block_last,
            block_max: imps.block_max,
            impacts: imps.impacts,
            first_block,
            end_block,
            post_start,
            df,
            block: first_block,
            bm_block: first_block,
            pos: 0,
            len: 0,
            doc: TERMINATED,
            buf: [0; BLOCK_LEN],
            term_max,
        };
        if first_block < end_block {
            c.load_block(first_block);
        }
        c
    }

    /// Decode block `b` (which must be in the term's range) and sit on its first posting.
    #[inline]
    fn load_block(&mut self, b: usize) {
        self.block = b;
        decode_block_raw(self.docs, self.block_off, self.block_last, self.first_block, b, &mut self.buf);
        let in_term = b - self.first_block;
        self.len = (self.df - in_term * BLOCK_LEN).min(BLOCK_LEN);
        self.pos = 0;
        self.doc = self.buf[0];
    }

    /// First block at or after `b` whose last doc is >= `target` (`end_block` if none): a few
    /// linear steps, then a binary search for long jumps.
    #[inline]
    fn find_block(&self, mut b: usize, target: u32) -> usize {
        for _ in 0..4 {
            if b >= self.end_block || self.block_last[b] >= target {
                return b;
            }
            b += 1;
        }
        b + self.block_last[b.min(self.end_block)..self.end_block].partition_point(|&l| l < target)
    }

    /// Current doc id, or [`TERMINATED`].
    #[inline]
    pub fn doc(&self) -> u32 {
        self.doc
    }

    /// Impact of the current posting. Only meaningful when `doc() != TERMINATED`.
    #[inline]
    pub fn impact(&self) -> I {
        let at = self.post_start + (self.block - self.first_block) * BLOCK_LEN + self.pos;
        self.impacts.get(at).copied().unwrap_or_default()
    }

    /// Move to the next posting.
    #[inline]
    pub fn next(&mut self) -> u32 {
        self.pos += 1;
        if self.pos < self.len {
            self.doc = self.buf[self.pos];
        } else if self.block + 1 < self.end_block {
            self.load_block(self.block + 1);
        } else {
            self.pos = self.len;
            self.doc = TERMINATED;
        }
        self.doc
    }

    /// Move to the first posting with doc id >= `target` (no-op if already there).
    #[inline]
    pub fn seek(&mut self, target: u32) -> u32 {
        if self.doc >= target {
            return self.doc;
        }
        if target > self.block_last[self.block] {
            // The shallow pointer may already be further on; it is a valid start only if the
            // block before it ends below `target`.
            let mut b = self.block;
            if self.bm_block > b && self.block_last[self.bm_block - 1] < target {
                b = self.bm_block;
            }
            b = self.find_block(b, target);
            if b == self.end_block {
                self.pos = self.len;
                self.doc = TERMINATED;
                return TERMINATED;
            }
            self.load_block(b);
        }
        let mut p = self.pos;
        while self.buf[p] < target {
            p += 1;
        }
        self.pos = p;
        self.doc = self.buf[p];
        self.doc
    }

    /// Largest impact of the block that would contain `target`, and that block's last doc id;
    /// `(default, TERMINATED)` past the end of the list. Moves only the shallow block pointer;
    /// `target` must be >= `doc()`.
    #[inline]
    pub fn block_max_for(&mut self, target: u32) -> (I, u32) {
        let mut b = self.bm_block;
        // Never trust the shallow pointer past the block that holds `target`: fall back to the
        // decoded block (which holds the current doc <= target) if `target` went backwards.
        if (b > self.first_block && self.block_last[b - 1] >= target)
            || (self.block > b && self.block_last[self.block - 1] < target)
        {
            b = self.block;
        }
        b = self.find_block(b, target);
        self.bm_block = b;
        if b == self.end_block {
            (I::default(), TERMINATED)
        } else {
            (self.block_max[b], self.block_last[b])
        }
    }

    /// Largest impact of the whole list.
    #[inline]
    pub fn term_max(&self) -> I {
        self.term_max
    }

    /// Number of postings.
    #[inline]
    pub fn df(&self) -> usize {
        self.df
    }
}
