//! External document ids: 64-bit integers or UTF-8 strings, one per document, unique within a
//! segment, stored with a permutation `ids_sorted` (documents in ascending id order) so that
//! finding a document by id is a binary search over the memory map.
//!
//! Sections: `ids_i64` (i64 x n_docs) or `ids_str_off` (u64 x n_docs + 1) + `ids_str` (bytes,
//! UTF-8, validated at open), and `ids_sorted` (u32 x n_docs). Strings compare by their bytes.

use crate::container::{Container, ContainerWriter};
use crate::{Error, Result};
use rayon::prelude::*;
use std::cmp::Ordering;

/// External ids given to the builder.
#[derive(Clone, Copy, Debug)]
pub enum IdsInput<'a> {
    /// No ids: a document is known by its internal row number.
    None,
    /// One integer id per row.
    Int(&'a [i64]),
    /// One string id per row.
    Str(&'a [String]),
}

/// One document id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id<'a> {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(&'a str),
}

impl std::fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(x) => write!(f, "{x}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Id<'_> {
    /// The id for an error message: as [`Display`](std::fmt::Display) writes it, but a string id
    /// of more than [`SHOWN_CHARS`] characters is cut there, with its length said (a missing id
    /// of a million characters made a message of a million, review34).
    pub fn shown(&self) -> String {
        match self {
            // the byte where character SHOWN_CHARS starts: found after SHOWN_CHARS steps, not by
            // counting the whole id
            Id::Str(s) => match s.char_indices().nth(SHOWN_CHARS) {
                Some((cut, _)) => format!("{:?}... ({} characters)", &s[..cut], s.chars().count()),
                None => self.to_string(),
            },
            Id::Int(_) => self.to_string(),
        }
    }
}

/// Characters of a string id that [`Id::shown`] keeps.
pub const SHOWN_CHARS: usize = 100;

/// An owned id (for maps and staged documents).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdBuf {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl IdBuf {
    /// Borrow as an [`Id`].
    pub fn as_id(&self) -> Id<'_> {
        match self {
            IdBuf::Int(x) => Id::Int(*x),
            IdBuf::Str(s) => Id::Str(s),
        }
    }
}

impl From<Id<'_>> for IdBuf {
    fn from(id: Id<'_>) -> IdBuf {
        match id {
            Id::Int(x) => IdBuf::Int(x),
            Id::Str(s) => IdBuf::Str(s.to_string()),
        }
    }
}

/// Ids owned by the builder: integers, or strings packed as offsets + bytes.
#[derive(Clone, Debug, Default)]
pub(crate) enum IdsData {
    #[default]
    None,
    Int(Vec<i64>),
    Str {
        off: Vec<u64>,
        bytes: Vec<u8>,
    },
}

impl IdsData {
    /// Copy `input` for `n` documents; a length mismatch is an error.
    pub(crate) fn from_input(input: IdsInput<'_>, n: usize) -> Result<IdsData> {
        let len = match input {
            IdsInput::None => return Ok(IdsData::None),
            IdsInput::Int(v) => v.len(),
            IdsInput::Str(v) => v.len(),
        };
        if len != n {
            return Err(Error::InvalidArgument(format!("{len} ids given for {n} documents")));
        }
        Ok(match input {
            IdsInput::None => IdsData::None,
            IdsInput::Int(v) => IdsData::Int(v.to_vec()),
            IdsInput::Str(v) => {
                let mut off = Vec::with_capacity(v.len() + 1);
                let mut bytes = Vec::with_capacity(v.iter().map(|s| s.len()).sum());
                off.push(0);
                for s in v {
                    bytes.extend_from_slice(s.as_bytes());
                    off.push(bytes.len() as u64);
                }
                IdsData::Str { off, bytes }
            }
        })
    }

    /// Append one id (of the same kind).
    pub(crate) fn push(&mut self, id: Id<'_>) -> Result<()> {
        match (self, id) {
            (IdsData::Int(v), Id::Int(x)) => v.push(x),
            (IdsData::Str { off, bytes }, Id::Str(s)) => {
                bytes.extend_from_slice(s.as_bytes());
                off.push(bytes.len() as u64);
            }
            _ => return Err(Error::InvalidArgument("ids must be all integers or all strings".into())),
        }
        Ok(())
    }

    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            IdsData::None => None,
            IdsData::Int(v) => Some(v.len()),
            IdsData::Str { off, .. } => Some(off.len() - 1),
        }
    }

    fn get(&self, d: usize) -> Id<'_> {
        match self {
            IdsData::None => Id::Int(d as i64),
            IdsData::Int(v) => Id::Int(v[d]),
            IdsData::Str { off, bytes } => {
                // Built from `&str`s, so every id is valid UTF-8.
                Id::Str(std::str::from_utf8(&bytes[off[d] as usize..off[d + 1] as usize]).unwrap_or_default())
            }
        }
    }

    /// The ids in the order `order` (`out[new] = self[order[new]]`).
    pub(crate) fn permute(&self, order: &[u32]) -> IdsData {
        match self {
            IdsData::None => IdsData::None,
            IdsData::Int(v) => IdsData::Int(order.iter().map(|&d| v[d as usize]).collect()),
            IdsData::Str { off, bytes: b } => {
                let mut o = Vec::with_capacity(off.len());
                let mut bytes = Vec::with_capacity(b.len());
                o.push(0);
                for &d in order {
                    bytes.extend_from_slice(&b[off[d as usize] as usize..off[d as usize + 1] as usize]);
                    o.push(bytes.len() as u64);
                }
                IdsData::Str { off: o, bytes }
            }
        }
    }

    /// Documents in ascending id order; a duplicate id is an error naming both documents.
    pub(crate) fn sorted(&self) -> Result<Option<Vec<u32>>> {
        let Some(n) = self.len() else { return Ok(None) };
        let mut s: Vec<u32> = (0..n as u32).collect();
        s.par_sort_unstable_by(|&a, &b| self.get(a as usize).cmp(&self.get(b as usize)).then(a.cmp(&b)));
        if let Some(w) = s.windows(2).find(|w| self.get(w[0] as usize) == self.get(w[1] as usize)) {
            return Err(Error::InvalidDocument {
                doc: w[1] as usize,
                msg: format!("id {} is a duplicate (of document {})", self.get(w[1] as usize).shown(), w[0]),
            });
        }
        Ok(Some(s))
    }

    /// [`IdsData::sorted`] for ids made of runs that are each already in ascending id order
    /// (a concatenating merge: each member's live documents listed in its `ids_sorted` order,
    /// as docs of these ids): a k-way merge of the runs instead of a sort, the same result
    /// and the same duplicate error. A run found out of order or repeating a document (a
    /// damaged member) falls back to the sort.
    pub(crate) fn merge_sorted(&self, runs: &[Vec<u32>]) -> Result<Option<Vec<u32>>> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let Some(n) = self.len() else { return Ok(None) };
        if runs.iter().map(Vec::len).sum::<usize>() != n || runs.iter().flatten().any(|&d| d as usize >= n) {
            return self.sorted();
        }
        let mut heap: BinaryHeap<Reverse<(Id<'_>, u32, usize)>> = BinaryHeap::with_capacity(runs.len());
        let mut next = vec![1usize; runs.len()];
        for (r, run) in runs.iter().enumerate() {
            if let Some(&d) = run.first() {
                heap.push(Reverse((self.get(d as usize), d, r)));
            }
        }
        let mut out: Vec<u32> = Vec::with_capacity(n);
        let mut prev: Option<(Id<'_>, u32)> = None;
        while let Some(Reverse((id, d, r))) = heap.pop() {
            if let Some((p, pd)) = prev {
                match p.cmp(&id) {
                    Ordering::Less => {}
                    Ordering::Equal if pd == d => return self.sorted(), // a run repeats a doc
                    Ordering::Equal => {
                        return Err(Error::InvalidDocument {
                            doc: d as usize,
                            msg: format!("id {} is a duplicate (of document {pd})", id.shown()),
                        })
                    }
                    Ordering::Greater => return self.sorted(),
                }
            }
            out.push(d);
            prev = Some((id, d));
            if let Some(&nd) = runs[r].get(next[r]) {
                next[r] += 1;
                heap.push(Reverse((self.get(nd as usize), nd, r)));
            }
        }
        Ok(Some(out))
    }

    /// Add the id sections (`sorted` from [`IdsData::sorted`] of these ids).
    pub(crate) fn write(&self, w: &mut ContainerWriter, sorted: Option<&[u32]>) -> Result<()> {
        match self {
            IdsData::None => return Ok(()),
            IdsData::Int(v) => w.add_i64s("ids_i64", v)?,
            IdsData::Str { off, bytes } => {
                w.add_u64s("ids_str_off", off)?;
                w.add_bytes("ids_str", bytes)?;
            }
        }
        w.add_u32s("ids_sorted", sorted.unwrap_or(&[]))
    }
}

/// The ids stored in a segment.
#[derive(Clone, Copy, Debug)]
pub enum ExternalIds<'a> {
    /// No ids: a document's id is its internal row number.
    None,
    /// 64-bit integer ids, one per document.
    Int {
        /// The ids, by internal doc.
        ids: &'a [i64],
        /// Internal docs in ascending id order.
        sorted: &'a [u32],
    },
    /// String ids: document `d`'s id is `bytes[offsets[d]..offsets[d+1]]` (valid UTF-8).
    Str {
        /// `n_docs + 1` offsets into `bytes`.
        offsets: &'a [u64],
        /// Concatenated UTF-8 ids.
        bytes: &'a [u8],
        /// Internal docs in ascending id order (by bytes).
        sorted: &'a [u32],
    },
}

impl<'a> ExternalIds<'a> {
    /// The id of internal doc `d` (the row number when the segment has no ids); `None` out of
    /// range (or, for no ids, beyond what an i64 holds, which cannot happen for a u32).
    #[inline]
    pub fn get(&self, d: u32) -> Option<Id<'a>> {
        let i = d as usize;
        match *self {
            ExternalIds::None => Some(Id::Int(d as i64)),
            ExternalIds::Int { ids, .. } => ids.get(i).map(|&x| Id::Int(x)),
            ExternalIds::Str { offsets, bytes, .. } => {
                let (a, b) = (*offsets.get(i)? as usize, *offsets.get(i + 1)? as usize);
                // Validated at open: every id is UTF-8 on char boundaries.
                Some(Id::Str(std::str::from_utf8(bytes.get(a..b)?).unwrap_or_default()))
            }
        }
    }

    /// Whether the segment stores string ids.
    pub fn is_str(&self) -> bool {
        matches!(self, ExternalIds::Str { .. })
    }

    /// The internal doc whose id is `id` (binary search over `ids_sorted`), among `n_docs`.
    pub fn locate(&self, id: Id<'_>, n_docs: u32) -> Option<u32> {
        let sorted = match (*self, id) {
            (ExternalIds::None, Id::Int(x)) => return u32::try_from(x).ok().filter(|&d| d < n_docs),
            (ExternalIds::Int { sorted, .. }, Id::Int(_)) | (ExternalIds::Str { sorted, .. }, Id::Str(_)) => sorted,
            _ => return None,
        };
        // Outside [smallest, largest] id: not here, without a binary search (a batch of new
        // ids above every committed one, the common case of adds, is checked in O(1) per segment).
        let (Some(lo), Some(hi)) =
            (sorted.first().and_then(|&d| self.get(d)), sorted.last().and_then(|&d| self.get(d)))
        else {
            return None;
        };
        if cmp_ids(id, lo) == Ordering::Less || cmp_ids(id, hi) == Ordering::Greater {
            return None;
        }
        let at = sorted.partition_point(|&d| self.get(d).is_some_and(|x| cmp_ids(x, id) == Ordering::Less));
        sorted.get(at).copied().filter(|&d| self.get(d) == Some(id))
    }
}

fn cmp_ids(a: Id<'_>, b: Id<'_>) -> Ordering {
    a.cmp(&b)
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

/// Read and validate the id sections: lengths, UTF-8 on every id's boundaries, and
/// `ids_sorted` a permutation listing strictly ascending ids.
///
/// `deep = false` (an image this process built and validated itself, mapped back after a
/// byte comparison): the lengths and string ids' UTF-8 are checked, not the `ids_sorted`
/// permutation (a pass over every id).
pub(crate) fn read_ids(c: &Container, n_docs: u32, deep: bool) -> Result<ExternalIds<'_>> {
    let n = n_docs as usize;
    let ids = if c.has("ids_i64") {
        let ids = c.i64s("ids_i64")?;
        if ids.len() != n {
            return Err(corrupt(format!("section 'ids_i64' has {} entries for {n} documents", ids.len())));
        }
        ExternalIds::Int { ids, sorted: c.u32s("ids_sorted")? }
    } else if c.has("ids_str_off") {
        let offsets = c.u64s("ids_str_off")?;
        let bytes = c.bytes("ids_str")?;
        super::format::check_offsets("ids_str_off", offsets, n + 1, bytes.len() as u64)?;
        let text =
            std::str::from_utf8(bytes).map_err(|e| corrupt(format!("stored string ids are not valid UTF-8 ({e})")))?;
        if let Some(d) = offsets.iter().position(|&o| !text.is_char_boundary(o as usize)) {
            return Err(corrupt(format!("stored string id {d} does not start on a UTF-8 character boundary")));
        }
        ExternalIds::Str { offsets, bytes, sorted: c.u32s("ids_sorted")? }
    } else {
        if c.has("ids_sorted") {
            return Err(corrupt("section 'ids_sorted' without ids"));
        }
        return Ok(ExternalIds::None);
    };
    let sorted = match ids {
        ExternalIds::Int { sorted, .. } | ExternalIds::Str { sorted, .. } => sorted,
        ExternalIds::None => &[],
    };
    if sorted.len() != n {
        return Err(corrupt(format!("section 'ids_sorted' has {} entries for {n} documents", sorted.len())));
    }
    if !deep {
        return Ok(ids);
    }
    let mut seen = vec![0u64; n.div_ceil(64)];
    for &d in sorted {
        let (w, bit) = ((d >> 6) as usize, 1u64 << (d & 63));
        if d >= n_docs || seen[w] & bit != 0 {
            return Err(corrupt("section 'ids_sorted' is not a permutation of the documents"));
        }
        seen[w] |= bit;
    }
    if sorted.windows(2).any(|w| ids.get(w[0]) >= ids.get(w[1])) {
        return Err(corrupt("stored ids are not unique, or 'ids_sorted' does not list them in ascending order"));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> IdsData {
        IdsData::Int(v.to_vec())
    }

    #[test]
    fn messages_show_a_long_string_id_cut() {
        assert_eq!(Id::Int(-5).shown(), "-5");
        assert_eq!(Id::Str("a\"b").shown(), "\"a\\\"b\"");
        let long = "é".repeat(1_000_000);
        let shown = Id::Str(&long).shown();
        assert!(shown.starts_with("\"éé") && shown.ends_with("\"... (1000000 characters)"), "{shown}");
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 2 + " ... (1000000 characters)".len() - 1);
    }

    #[test]
    fn merge_sorted_equals_the_sort() {
        // two runs, each in ascending id order: docs 0..3 ids 10, 30, 50; docs 3..5 ids 20, 40
        let ids = ints(&[10, 30, 50, 20, 40]);
        let runs = vec![vec![0, 1, 2], vec![3, 4]];
        assert_eq!(ids.merge_sorted(&runs).unwrap(), ids.sorted().unwrap());
        assert_eq!(ids.merge_sorted(&runs).unwrap().unwrap(), vec![0, 3, 1, 4, 2]);
    }

    #[test]
    fn merge_sorted_duplicate_error_is_the_sorts() {
        let ids = ints(&[10, 30, 50, 30, 40]);
        let runs = vec![vec![0, 1, 2], vec![3, 4]];
        let a = ids.merge_sorted(&runs).unwrap_err().to_string();
        let b = ids.sorted().unwrap_err().to_string();
        assert_eq!(a, b);
        assert!(a.contains("id 30 is a duplicate"), "{a}");
    }

    #[test]
    fn merge_sorted_falls_back_on_damaged_runs() {
        let ids = ints(&[10, 30, 50, 20, 40]);
        // a run out of order, a run repeating a document, runs of the wrong total length
        for runs in [vec![vec![1, 0, 2], vec![3, 4]], vec![vec![0, 1, 1], vec![3, 4]], vec![vec![0, 1], vec![3, 4]]] {
            assert_eq!(ids.merge_sorted(&runs).unwrap(), ids.sorted().unwrap(), "{runs:?}");
        }
    }
}
