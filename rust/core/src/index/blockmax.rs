//! Fine doc-block and superblock maxima: the block-level bounds of superblock pruning
//! ([`crate::search::superblock`]), block-max term-at-a-time MaxScore ([`crate::search::bmt`])
//! and approximate search ([`crate::search::approx`]).
//!
//! Documents are grouped in *fine blocks* of [`FINE_BLOCK`] consecutive internal ids and in
//! *superblocks* of [`SUPERBLOCK`] fine blocks. For a term, the maximum of its impacts over a
//! block is the block's *maximum* (a join, see [`super::Impact`]): `w * max` bounds what the
//! term adds to any document of the block. Both levels are stored as dense arrays (one entry
//! per block) for the terms common enough to pay for them (rules below); the other terms'
//! bounds are computed at query time from their postings, which are short.
//!
//! Which terms get a dense array, and why: a dense array of `n` blocks costs `n` entries; the
//! postings of a term with document frequency `df` cost about `df` entries (plus doc ids) and
//! reading them yields the same maxima. A term gets a dense array at a level when
//! `df >= n_blocks / 2` at that level: the array is then at most twice the size of the term's
//! impacts, and reading it is a sequential, vectorised pass instead of a posting decode.
//!
//! The dense arrays (these two levels and the 64-document doc blocks of
//! [`crate::search::bmp`]) are not stored in the file (format version 4): they are maxima of
//! the postings, derived when a segment is opened, in the same parallel pass that decodes every
//! doc-id block to validate it ([`derive`]). They take about as many bytes as the impacts of
//! the terms that have them (0.95 bytes per posting on the debian corpus, 0.77 on synthetic
//! vectors): stored, they made the postings 43% larger than without them (28.4 MB against
//! 20.0 on debian). Files of versions 2 and 3 hold them (`dbm_*`, `fbm_*`, `sbm_*`); they are
//! ignored and derived like the others.

use super::impact::{Bm25Impact, Impact};

const _: () =
    assert!(super::DOC_BLOCK.is_power_of_two() && FINE_BLOCK.is_power_of_two() && SUPERBLOCK_DOCS.is_power_of_two());

/// Documents per fine block (doc `d` is in fine block `d / 16`).
pub const FINE_BLOCK: usize = 16;

/// Fine blocks per superblock (doc `d` is in superblock `d / (16 * 64)`).
pub const SUPERBLOCK: usize = 64;

/// Documents per superblock.
pub const SUPERBLOCK_DOCS: usize = FINE_BLOCK * SUPERBLOCK;

/// One level of dense maxima, owned: the slot of every term (its array's index, or
/// `u32::MAX`), the arrays (`n_blocks` entries each, concatenated) and the block count.
#[derive(Debug, Default)]
pub(crate) struct Level<I> {
    slot: Vec<u32>,
    dense: Vec<I>,
    n_blocks: usize,
}

impl<I: Impact> Level<I> {
    /// Slots for the terms whose document frequency is at least half the number of blocks of
    /// `block_docs` documents (`start`: the `n_terms + 1` posting offsets), arrays zeroed (the
    /// join's identity).
    fn for_terms(start: &[u64], n_docs: usize, block_docs: usize) -> Self {
        let nt = start.len().saturating_sub(1);
        let n_blocks = n_docs.div_ceil(block_docs);
        let mut slot = vec![u32::MAX; nt];
        let mut n = 0u32;
        for (t, s) in slot.iter_mut().enumerate() {
            let df = (start[t + 1] - start[t]) as usize;
            if df > 0 && df * 2 >= n_blocks.max(1) {
                *s = n;
                n += 1;
            }
        }
        Level { slot, dense: vec![I::default(); n as usize * n_blocks], n_blocks }
    }

    /// The borrowed view of this level.
    pub(crate) fn view(&self) -> super::DocBlockMax<'_, I> {
        super::DocBlockMax { slot: &self.slot, dense: &self.dense, n_blocks: self.n_blocks }
    }

    /// Bytes in memory.
    fn bytes(&self) -> usize {
        self.slot.len() * 4 + self.dense.len() * std::mem::size_of::<I>()
    }
}

/// The dense maxima of a segment at its three levels: 64-document doc blocks
/// ([`super::DOC_BLOCK`]), fine blocks and superblocks.
#[derive(Debug, Default)]
pub(crate) struct Derived<I> {
    pub(crate) doc: Level<I>,
    pub(crate) fine: Level<I>,
    pub(crate) superblock: Level<I>,
}

impl<I: Impact> Derived<I> {
    fn bytes(&self) -> usize {
        self.doc.bytes() + self.fine.bytes() + self.superblock.bytes()
    }
}

/// The dense maxima of a segment of any impact kind, derived at open ([`derive`]) and owned by
/// its [`super::Index`].
#[derive(Debug)]
pub(crate) enum DerivedMaxima {
    U8(Derived<u8>),
    F32(Derived<f32>),
    Bm25(Derived<Bm25Impact>),
}

impl DerivedMaxima {
    /// Point the dense arrays of `v` (empty as read, [`super::format::read_view_with`]) at
    /// these. Errors if the kinds differ (they never do for the maxima derived from `v`).
    pub(crate) fn attach<'a>(&'a self, v: &mut super::IndexView<'a>) -> crate::Result<()> {
        fn set<'a, I: Impact>(a: &mut super::ImpactArrays<'a, I>, d: &'a Derived<I>) {
            a.doc_block_max = d.doc.view();
            a.fine_block_max = d.fine.view();
            a.superblock_max = d.superblock.view();
        }
        match (&mut v.impacts, self) {
            (super::Impacts::U8(a), DerivedMaxima::U8(d)) => set(a, d),
            (super::Impacts::F32(a), DerivedMaxima::F32(d)) => set(a, d),
            (super::Impacts::Bm25(a), DerivedMaxima::Bm25(d)) => set(a, d),
            _ => return Err(crate::Error::Corrupt("block maxima of another impact kind".into())),
        }
        Ok(())
    }

    /// Bytes in memory (arrays and slots).
    pub(crate) fn bytes(&self) -> usize {
        match self {
            DerivedMaxima::U8(d) => d.bytes(),
            DerivedMaxima::F32(d) => d.bytes(),
            DerivedMaxima::Bm25(d) => d.bytes(),
        }
    }
}

/// Where the scan of one term puts its maxima: its arrays at the three levels (doc block,
/// fine block, superblock), where it has them.
pub(crate) type TermArrays<'a, I> = (usize, [Option<&'a mut [I]>; 3]);

/// Allocate the three levels for a segment of `n_docs` documents whose posting offsets are
/// `start`, and hand `scan` one work item per term that has an array at some level (every
/// term when `all`), in term order: `scan` fills them (see [`join_postings`]).
pub(crate) fn derive<I: Impact + Send + Sync>(
    start: &[u64],
    n_docs: usize,
    all: bool,
    scan: impl FnOnce(Vec<TermArrays<'_, I>>) -> crate::Result<()>,
) -> crate::Result<Derived<I>> {
    let mut d = Derived {
        doc: Level::for_terms(start, n_docs, super::DOC_BLOCK),
        fine: Level::for_terms(start, n_docs, FINE_BLOCK),
        superblock: Level::for_terms(start, n_docs, SUPERBLOCK_DOCS),
    };
    {
        let Derived { doc, fine, superblock } = &mut d;
        let levels = [doc, fine, superblock];
        let mut arrays = levels.map(|l| (l.slot.as_slice(), l.dense.chunks_mut(l.n_blocks.max(1))));
        let nt = start.len().saturating_sub(1);
        let mut items = Vec::new();
        for t in 0..nt {
            let outs = arrays.each_mut().map(|(slot, chunks)| match slot[t] {
                u32::MAX => None,
                _ => chunks.next(),
            });
            if all || outs.iter().any(Option::is_some) {
                items.push((t, outs));
            }
        }
        scan(items)?;
    }
    Ok(d)
}

/// Join the impacts `imps` of the postings of documents `docs` (ascending, below the segment's
/// document count) into a term's arrays at the three levels (doc block, fine block,
/// superblock). The finest level the term has is filled from the postings, each coarser one
/// from the finest already filled (a join over 4 or 64 fine entries, or 16 doc-block entries):
/// one pass over the postings instead of one per level.
#[inline]
pub(crate) fn join_postings<I: Impact>(outs: [Option<&mut [I]>; 3], docs: &[u32], imps: &[I]) {
    let [doc, fine, superblock] = outs;
    let mut finer: Option<(&[I], usize)> = None;
    for (out, size) in [(fine, FINE_BLOCK), (doc, super::DOC_BLOCK), (superblock, SUPERBLOCK_DOCS)] {
        let Some(m) = out else { continue };
        match finer {
            Some((f, f_size)) => {
                for (e, chunk) in m.iter_mut().zip(f.chunks(size / f_size)) {
                    *e = super::impact::join_all(chunk);
                }
            }
            None => scatter(docs, imps, size.trailing_zeros(), m),
        }
        finer = Some((m, size));
    }
}

/// The maxima of the blocks of `1 << shift` documents from the postings: a running join in a
/// register, stored at its block after every posting (the last store of a block is its
/// maximum). Stores only: joining into the array in place makes each posting wait for the
/// previous one's store to the same entry.
fn scatter<I: Impact>(docs: &[u32], imps: &[I], shift: u32, m: &mut [I]) {
    let (mut cur, mut acc) = (u32::MAX, I::default());
    for (&d, &x) in docs.iter().zip(imps) {
        let b = d >> shift;
        // which one is unpredictable (a block ends after any posting): a select, not a branch
        acc = std::hint::select_unpredictable(b == cur, acc, I::default()).join(x);
        cur = b;
        if let Some(e) = m.get_mut(b as usize) {
            *e = acc;
        }
    }
}
