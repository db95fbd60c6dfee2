//! Regression tests for corrupt index files found by fuzzing (rust/fuzz, target `index_open`).
//!
//! Each test builds a small valid index, rewrites one section of its file image the way the
//! fuzzer's input did, recomputes every checksum (a file with valid CRCs but bad content, as a
//! buggy writer would produce), and checks that opening it is a corruption error, or that an
//! index that opens can be searched without a panic.

use sparsedex_core::container::{Container, Image};
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::format::{MAGIC, VERSION};
use sparsedex_core::index::Index;
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::Error;

/// 300 documents: term 0 in every one (3 blocks), term 1 in every other and every fifth
/// (a full block of non-unit gaps), terms 2..8 in some.
fn corpus() -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let (mut indptr, mut indices, mut values) = (vec![0u64], vec![], vec![]);
    for d in 0..300u32 {
        indices.push(0);
        values.push(1.0 + (d % 7) as f32);
        for t in 1..8u32 {
            let here = if t == 1 { d % 2 == 0 || d % 5 == 0 } else { (d * 31 + t * 17) % (t + 2) == 0 };
            if here {
                indices.push(t);
                values.push(0.5 + ((d + t) % 5) as f32);
            }
        }
        indptr.push(indices.len() as u64);
    }
    (indptr, indices, values)
}

fn index_bytes(quantization: Quantization) -> Vec<u8> {
    let (indptr, indices, values) = corpus();
    let opts = BuildOptions { quantization, store_vectors: false, reorder: Reorder::None, ..Default::default() };
    let ix =
        build(CsrRef { indptr: &indptr, indices: &indices, values: &values }, IdsInput::None, &opts).unwrap().index;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.sdx");
    ix.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Rewrite section `name` with `f` and recompute the section, table and header CRCs.
fn patch(bytes: &mut [u8], name: &str, f: impl FnOnce(&mut [u8])) {
    let count = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let table = le_u64(bytes, 32) as usize;
    let e = (0..count)
        .map(|i| table + 64 * i)
        .find(|&e| &bytes[e..e + name.len()] == name.as_bytes() && bytes[e + name.len()] == 0)
        .unwrap_or_else(|| panic!("no section '{name}'"));
    let (off, len) = (le_u64(bytes, e + 32) as usize, le_u64(bytes, e + 40) as usize);
    f(&mut bytes[off..off + len]);
    let c = crc32fast::hash(&bytes[off..off + len]);
    bytes[e + 48..e + 52].copy_from_slice(&c.to_le_bytes());
    let c = crc32fast::hash(&bytes[table..]);
    bytes[28..32].copy_from_slice(&c.to_le_bytes());
    let c = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&c.to_le_bytes());
    // The patched image is still a valid container.
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    Container::parse(Image::from_bytes(bytes), MAGIC, version, true).unwrap();
}

fn set_f32(sec: &mut [u8], i: usize, v: f32) {
    sec[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

fn open(bytes: &[u8]) -> sparsedex_core::Result<Index> {
    Index::from_image(Image::from_bytes(bytes), true)
}

fn assert_corrupt(r: sparsedex_core::Result<Index>, needle: &str) {
    match r {
        Err(Error::Corrupt(msg)) => assert!(msg.contains(needle), "message {msg:?} does not mention {needle:?}"),
        Err(e) => panic!("expected a corruption error, got {e:?}"),
        Ok(_) => panic!("a corrupt index opened"),
    }
}

/// Every algorithm's top-1 and top-10 on `ix` (each algorithm searches twice: the second search
/// on a thread reuses its scratch).
fn results(ix: &Index) -> Vec<Vec<sparsedex_core::search::Hit>> {
    let q = QueryRef { terms: &[0, 1, 2, 3], weights: &[0.25, 1.25, 2.25, 3.25] };
    Algorithm::ALL.iter().flat_map(|&algo| [1, 10].map(|k| search(ix, q, k, algo).unwrap())).collect()
}

#[test]
fn valid_file_opens() {
    for q in [Quantization::U8 { scale: None }, Quantization::F32] {
        let bytes = index_bytes(q);
        results(&open(&bytes).unwrap()); // every algorithm searches it without a panic
    }
}

/// Fuzz finding: a NaN or negative float impact made term-at-a-time MaxScore leave an
/// accumulator of the per-thread scratch space non-zero (it clears only positive ones), so
/// the next search on that thread, of any index with as many documents, started from a wrong
/// score (a debug assertion fired: "accumulators were left dirty"). Such files are now refused.
#[test]
fn non_finite_or_negative_float_impacts_are_corrupt() {
    let base = index_bytes(Quantization::F32);
    for (section, bad) in [
        ("impacts_f32", f32::NAN),
        ("impacts_f32", -1.0),
        ("impacts_f32", f32::INFINITY),
        ("block_max_f32", f32::NAN),
        ("term_max_f32", -0.5),
    ] {
        let mut bytes = base.clone();
        patch(&mut bytes, section, |s| set_f32(s, 0, bad));
        assert_corrupt(open(&bytes), section);
    }
}

/// Fuzz finding: doc ids decoded from a block that disagree with the block's metadata (its
/// last doc id, or the previous block's) made `Cursor::seek` run past the end of the decoded
/// block ("index out of bounds: the len is 128 but the index is 128" in MaxScore). Every block
/// is now decoded once at open and checked against `block_last`.
#[test]
fn doc_ids_that_disagree_with_block_metadata_are_corrupt() {
    for q in [Quantization::U8 { scale: None }, Quantization::F32] {
        let base = index_bytes(q);
        // Flip bits in every 16-byte row of the packed doc ids of every full block in turn:
        // each changes a decoded gap (a short block's padding would not matter). Rows are
        // byte offsets: a trimmed final block (format version 3) is not a multiple of 16 bytes
        // long, so the blocks after it do not start at multiples of 16.
        let rows: Vec<usize> = {
            let ix = open(&base).unwrap();
            let v = ix.view();
            let mut rows = vec![];
            for t in 0..v.n_terms as usize {
                let first = v.term_block_start[t] as usize;
                let df = (v.term_post_start[t + 1] - v.term_post_start[t]) as usize;
                for b in first..v.term_block_start[t + 1] as usize {
                    if (b - first + 1) * 128 <= df {
                        let (lo, hi) = (v.block_off[b] as usize, v.block_off[b + 1] as usize);
                        rows.extend((lo..hi).step_by(16));
                    }
                }
            }
            rows
        };
        assert!(!rows.is_empty(), "the corpus has no packed rows in full blocks");
        for row in rows {
            // Every bit of lane 0's word in that row.
            for bit in 0..32 {
                let mut bytes = base.clone();
                patch(&mut bytes, "docs", |s| s[row + bit / 8] ^= 1 << (bit % 8));
                assert_corrupt(open(&bytes), "do not match the block metadata");
            }
        }
        // All-zero packed data: gaps of one everywhere (and trimmed blocks of width 0).
        let mut bytes = base.clone();
        patch(&mut bytes, "docs", |s| s.fill(0));
        assert_corrupt(open(&bytes), "block");
    }
}

/// review25 L6: bounds below the impacts they bound (a block's maximum, a term's maximum) are
/// corrupt: pruning would skip documents that score, and the 16-bit candidate scorer, which
/// sizes the query's weights by `term_max`, would wrap. Both must be exact (raised, they are
/// corrupt too: a huge `term_max` ruined approximate recall, review26 L1). The dense doc-block,
/// fine-block and superblock maxima are not in the file (format version 4): they are derived
/// from the postings at open, so they cannot disagree with them.
#[test]
fn bounds_below_the_impacts_are_corrupt() {
    for q in [Quantization::U8 { scale: None }, Quantization::F32] {
        let base = index_bytes(q);
        let (suffix, width) = match q {
            Quantization::F32 => ("f32", 4),
            _ => ("u8", 1),
        };
        for (section, want) in [("block_max", "'block_max'"), ("term_max", "'term_max'")] {
            let name = format!("{section}_{suffix}");
            for raise in [true, false] {
                let mut bytes = base.clone();
                patch(&mut bytes, &name, |s| {
                    // The first entry that is not 0.
                    let i =
                        (0..s.len() / width).find(|&i| s[i * width..(i + 1) * width].iter().any(|&b| b != 0)).unwrap();
                    if width == 1 {
                        // 255 cannot be raised: lowered instead
                        s[i] = if raise && s[i] < u8::MAX { s[i] + 1 } else { s[i] - 1 };
                    } else {
                        let x = f32::from_le_bytes(s[4 * i..4 * i + 4].try_into().unwrap());
                        set_f32(s, i, if raise { x * 1.5 } else { x * 0.5 });
                    }
                });
                assert_corrupt(open(&bytes), want);
            }
        }
    }
}

fn set_u32(sec: &mut [u8], i: usize, v: u32) {
    sec[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

/// The term dictionary is checked at open: `term_ids` strictly ascending and below a declared
/// vocabulary, `term_lut` exactly the table of `term_ids`, every local term with postings.
#[test]
fn bad_term_dictionaries_are_corrupt() {
    let base = index_bytes(Quantization::U8 { scale: None });
    let n_terms = open(&base).unwrap().view().n_terms as usize;
    assert!(open(&base).unwrap().view().term_lut.is_some());
    type Mutation = Box<dyn Fn(&mut [u8])>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("term_ids", Box::new(|s| set_u32(s, 1, 0)), "not strictly ascending"),
        ("term_ids", Box::new(move |s| set_u32(s, n_terms - 1, 1000)), "term_lut"),
        ("term_lut", Box::new(|s| set_u32(s, 0, 1)), "does not map term 0"),
        ("term_lut", Box::new(|s| set_u32(s, 2, u32::MAX)), "does not map term 2"),
        ("meta", Box::new(|s| s[32..40].copy_from_slice(&3u64.to_le_bytes())), "declared vocabulary size 3"),
    ];
    for (section, f, want) in cases {
        let mut bytes = base.clone();
        patch(&mut bytes, section, |s| f(s));
        assert_corrupt(open(&bytes), want);
    }
}

/// Files of an unknown format version are refused with a clear version error.
#[test]
fn unknown_versions_are_refused() {
    let mut bytes = index_bytes(Quantization::F32);
    bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let c = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&c.to_le_bytes());
    match open(&bytes) {
        Err(Error::UnsupportedVersion { found, supported: VERSION }) if found == VERSION + 1 => {}
        other => panic!("{other:?}"),
    }
}

/// A format-version-1 file without stored vectors cannot be upgraded: a corruption error that
/// says so, not a crash.
#[test]
fn version_1_files_without_vectors_are_refused() {
    let mut bytes = index_bytes(Quantization::F32);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let c = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&c.to_le_bytes());
    assert_corrupt(open(&bytes), "no stored vectors");
}

/// The sections of a format-version-1 image (sparsedex 0.1) holding `corpus()`: only those
/// the upgrade reads, plus a posting section it ignores.
fn v1_image(u8_scale: Option<f32>, ids: Option<&[String]>) -> Vec<u8> {
    use sparsedex_core::container::ContainerWriter;
    let (indptr, indices, values) = corpus();
    let mut w = ContainerWriter::new(MAGIC, 1);
    let (kind, scale) = match u8_scale {
        Some(s) => (0u64, s),
        None => (1u64, 1.0f32),
    };
    w.add_u64s("meta", &[300, 8, kind, scale.to_bits() as u64, 1]).unwrap();
    w.add_u64s("term_post_start", &[0; 9]).unwrap();
    w.add_u64s("fwd_indptr", &indptr).unwrap();
    w.add_u32s("fwd_terms", &indices).unwrap();
    w.add_f32s("fwd_values", &values).unwrap();
    if let Some(ids) = ids {
        let mut off = vec![0u64];
        let mut b = Vec::new();
        for s in ids {
            b.extend_from_slice(s.as_bytes());
            off.push(b.len() as u64);
        }
        w.add_u64s("ids_str_off", &off).unwrap();
        w.add_bytes("ids_str", &b).unwrap();
    }
    w.into_image().as_bytes().to_vec()
}

/// A format-version-1 file opens as the version-2 index of the same documents: same order,
/// ids, vectors, impacts and search results.
#[test]
fn version_1_files_are_upgraded_in_memory() {
    let (indptr, indices, values) = corpus();
    let ids: Vec<String> = (0..300).map(|d| format!("doc-{d}")).collect();
    for (u8_scale, quantization) in
        [(Some(255.0 / 8.0), Quantization::U8 { scale: Some(255.0 / 8.0) }), (None, Quantization::F32)]
    {
        let old = open(&v1_image(u8_scale, Some(&ids))).unwrap();
        let opts = BuildOptions { quantization, store_vectors: true, reorder: Reorder::None, n_terms: Some(8) };
        let new = build(CsrRef { indptr: &indptr, indices: &indices, values: &values }, IdsInput::Str(&ids), &opts)
            .unwrap()
            .index;
        assert_eq!(old.n_docs(), 300);
        assert_eq!(old.vectors().unwrap(), new.vectors().unwrap());
        for d in 0..300 {
            assert_eq!(old.id(d), new.id(d));
        }
        for t in 0..8u32 {
            let q = QueryRef { terms: &[t], weights: &[1.0] };
            let a = search(&old, q, 10, Algorithm::Exhaustive).unwrap();
            let b = search(&new, q, 10, Algorithm::Exhaustive).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
    // Damage inside a version-1 file is still found.
    let mut bytes = v1_image(None, None);
    let n = bytes.len();
    bytes[n - 70] ^= 0x40;
    assert!(matches!(open(&bytes), Err(Error::Corrupt(_))));
}

/// A concatenating merge whose member's stored vectors disagree with its postings about the
/// live documents (a stored term with no live posting) is a corruption error, not a merged
/// segment whose stored vectors and postings differ.
#[test]
fn a_merge_of_stored_vectors_that_disagree_with_the_postings_is_corrupt() {
    use sparsedex_core::index::{merge, MergeOptions};
    use sparsedex_core::search::DocSet;
    let (indptr, indices, values) = corpus();
    let opts = BuildOptions {
        quantization: Quantization::F32,
        store_vectors: true,
        reorder: Reorder::None,
        ..Default::default()
    };
    let ix =
        build(CsrRef { indptr: &indptr, indices: &indices, values: &values }, IdsInput::None, &opts).unwrap().index;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.sdx");
    ix.save(&path).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    // Document 0 holds terms 0 and 1; its stored vector now says 0 and 7, and every document
    // holding term 7 is deleted.
    let row0: Vec<u32> = indices[indptr[0] as usize..indptr[1] as usize].to_vec();
    assert_eq!(row0, vec![0, 1]);
    patch(&mut bytes, "fwd_terms_u16", |s| s[2..4].copy_from_slice(&7u16.to_le_bytes()));
    let Ok(bad) = open(&bytes) else { return }; // refused at open: as good
    let live: Vec<u32> = (0..300u32)
        .filter(|&d| !indices[indptr[d as usize] as usize..indptr[d as usize + 1] as usize].contains(&7))
        .collect();
    assert!(live.len() < 300 && live[0] == 0);
    let set = DocSet::from_docs(live, 300).unwrap();
    let refs: Vec<(&Index, Option<&DocSet>)> = vec![(&bad, Some(&set))];
    match merge(&refs, &MergeOptions { quantization: Some(Quantization::F32), reorder: Reorder::None }) {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("term 7"), "{msg}"),
        Err(e) => panic!("expected a corruption error, got {e:?}"),
        Ok(m) => panic!("a corrupt member merged (concatenated: {})", m.concatenated),
    }
}
