//! Format version 4 (rust/core/FORMAT.md §2): the dense block maxima (64-document doc blocks,
//! 16-document fine blocks, 1,024-document superblocks) are not in the file; they are derived
//! from the postings at open. Checked against maxima computed here from the rows themselves
//! (every kind, segment sizes around the block sizes); version-3 files, which hold them, open
//! and search the same, their stored arrays ignored even when damaged.

use sparsedex_core::container::{Container, ContainerWriter, Image};
use sparsedex_core::index::build::{build, quantize, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::format::{MAGIC, VERSION, VERSION_3};
use sparsedex_core::index::impact::Bm25Impact;
use sparsedex_core::index::{Bm25Params, DocBlockMax, Impacts, Index};
use sparsedex_core::search::{search, Algorithm, QueryRef};

const LEVELS: [(&str, usize); 3] = [("dbm", 64), ("fbm", 16), ("sbm", 1024)];

/// `n` documents: term 0 in every one, term 1 in every third, term 2 in documents below 40,
/// terms 3.. spread thinly (most without a dense array); integer weights 1..=9 (valid term
/// frequencies for BM25).
fn corpus(n: u32) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let (mut indptr, mut indices, mut values) = (vec![0u64], vec![], vec![]);
    for d in 0..n {
        let mut row: Vec<u32> = vec![0];
        if d % 3 == 0 {
            row.push(1);
        }
        if d < 40 {
            row.push(2);
        }
        row.push(3 + (d.wrapping_mul(2_654_435_761) >> 7) % 300);
        row.sort_unstable();
        row.dedup();
        for t in row {
            indices.push(t);
            values.push(1.0 + ((d * 7 + t * 13) % 9) as f32);
        }
        indptr.push(indices.len() as u64);
    }
    (indptr, indices, values)
}

fn build_kind(csr: &(Vec<u64>, Vec<u32>, Vec<f32>), quantization: Quantization) -> Index {
    let opts = BuildOptions { quantization, store_vectors: false, reorder: Reorder::None, ..Default::default() };
    build(CsrRef { indptr: &csr.0, indices: &csr.1, values: &csr.2 }, IdsInput::None, &opts).unwrap().index
}

fn bytes_of(ix: &Index) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.sdx");
    ix.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

fn open(bytes: &[u8]) -> Index {
    Index::from_image(Image::from_bytes(bytes), true).unwrap()
}

/// The maxima the rows give for a level of `size` documents: per external term, the dense
/// array it must have (df at least half the number of blocks) or none.
fn oracle<I: Copy + PartialEq + std::fmt::Debug>(
    csr: &(Vec<u64>, Vec<u32>, Vec<f32>),
    size: usize,
    impact: impl Fn(usize, f32) -> I,
    join: impl Fn(I, I) -> I,
    zero: I,
) -> std::collections::BTreeMap<u32, Option<Vec<I>>> {
    let n = csr.0.len() - 1;
    let nb = n.div_ceil(size);
    let mut df = std::collections::BTreeMap::<u32, usize>::new();
    for &t in &csr.1 {
        *df.entry(t).or_default() += 1;
    }
    let mut out: std::collections::BTreeMap<u32, Option<Vec<I>>> =
        df.iter().map(|(&t, &f)| (t, (f * 2 >= nb.max(1)).then(|| vec![zero; nb]))).collect();
    for d in 0..n {
        for p in csr.0[d] as usize..csr.0[d + 1] as usize {
            if let Some(Some(m)) = out.get_mut(&csr.1[p]) {
                m[d / size] = join(m[d / size], impact(d, csr.2[p]));
            }
        }
    }
    out
}

/// The derived arrays of level `l` of `ix`, per external term.
fn derived<I: Copy>(ix: &Index, l: &DocBlockMax<'_, I>) -> std::collections::BTreeMap<u32, Option<Vec<I>>> {
    let v = ix.view();
    (0..v.n_terms).map(|t| (v.external_term(t), l.of(t).map(<[I]>::to_vec))).collect()
}

#[test]
fn derived_maxima_equal_the_rows_maxima_for_every_kind_and_size() {
    for n in [1u32, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 3000] {
        let csr = corpus(n);
        let dl: Vec<u32> = (0..n as usize)
            .map(|d| csr.2[csr.0[d] as usize..csr.0[d + 1] as usize].iter().sum::<f32>() as u32)
            .collect();
        let kinds = [
            Quantization::U8 { scale: Some(25.0) },
            Quantization::F32,
            Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: false }),
        ];
        for q in kinds {
            let built = build_kind(&csr, q);
            // built in memory, and opened from its file (deep validation)
            for ix in [open(&bytes_of(&built)), built] {
                for (li, &(name, size)) in LEVELS.iter().enumerate() {
                    let what = format!("{n} documents, {q:?}, level {name}");
                    match ix.view().impacts {
                        Impacts::U8(a) => {
                            let l = [a.doc_block_max, a.fine_block_max, a.superblock_max][li];
                            assert_eq!(
                                derived(&ix, &l),
                                oracle(&csr, size, |_, w| quantize(w, 25.0), u8::max, 0),
                                "{what}"
                            );
                        }
                        Impacts::F32(a) => {
                            let l = [a.doc_block_max, a.fine_block_max, a.superblock_max][li];
                            assert_eq!(derived(&ix, &l), oracle(&csr, size, |_, w| w, f32::max, 0.0), "{what}");
                        }
                        Impacts::Bm25(a) => {
                            let l = [a.doc_block_max, a.fine_block_max, a.superblock_max][li];
                            let imp = |d: usize, w: f32| Bm25Impact { tf: w as u32, dl: dl[d] };
                            let join =
                                |x: Bm25Impact, y: Bm25Impact| Bm25Impact { tf: x.tf.max(y.tf), dl: x.dl.min(y.dl) };
                            let zero = Bm25Impact { tf: 0, dl: u32::MAX };
                            assert_eq!(derived(&ix, &l), oracle(&csr, size, imp, join, zero), "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn files_of_this_version_hold_no_dense_maxima() {
    let bytes = bytes_of(&build_kind(&corpus(3000), Quantization::U8 { scale: None }));
    let c = Container::parse(Image::from_bytes(&bytes), MAGIC, VERSION, true).unwrap();
    assert_eq!(c.format_version(), 4);
    let dense: Vec<&str> =
        c.section_names().filter(|n| ["dbm", "fbm", "sbm"].iter().any(|p| n.starts_with(p))).collect();
    assert!(dense.is_empty(), "{dense:?}");
    let ix = open(&bytes);
    let st = ix.stats();
    assert!(st.derived_bytes > 0 && st.postings_bytes < st.bytes, "{st:?}");
}

/// The version-3 twin of a version-4 image: the dense arrays `ix` derived, written as version 3
/// wrote them (`<level>_meta`, `<level>_slot`, `<level>_<kind>`), each entry mapped by `damage`.
fn as_version_3(bytes: &[u8], ix: &Index, damage: impl Fn(u8) -> u8) -> Vec<u8> {
    let c = Container::parse(Image::from_bytes(bytes), MAGIC, VERSION, true).unwrap();
    let mut w = ContainerWriter::new(MAGIC, VERSION_3);
    let names: Vec<String> = c.section_names().map(str::to_string).collect();
    for name in &names {
        w.add_bytes(name, c.bytes(name).unwrap()).unwrap();
    }
    let Impacts::U8(a) = ix.view().impacts else { panic!("u8 only") };
    for (l, (name, size)) in [a.doc_block_max, a.fine_block_max, a.superblock_max].iter().zip(LEVELS) {
        let n_arrays = l.dense.len() / l.n_blocks.max(1);
        let meta: Vec<u64> = match name {
            "dbm" => vec![size as u64, n_arrays as u64],
            "fbm" => vec![16, 64, n_arrays as u64],
            _ => vec![n_arrays as u64],
        };
        w.add_u64s(&format!("{name}_meta"), &meta).unwrap();
        w.add_u32s(&format!("{name}_slot"), l.slot).unwrap();
        w.add_bytes(&format!("{name}_u8"), &l.dense.iter().map(|&x| damage(x)).collect::<Vec<u8>>()).unwrap();
    }
    w.into_image().as_bytes().to_vec()
}

#[test]
fn version_3_files_open_and_search_the_same_and_their_stored_maxima_are_ignored() {
    let csr = corpus(5000);
    let ix = build_kind(&csr, Quantization::U8 { scale: None });
    let v4 = bytes_of(&ix);
    let q = QueryRef { terms: &[0, 1, 2, 7, 40], weights: &[0.5, 1.5, 2.5, 3.5, 4.5] };
    let hits = |ix: &Index| Algorithm::ALL.map(|a| format!("{:?}", search(ix, q, 10, a).unwrap()));
    // as stored by version 3; all zero (pruning by them would skip every block); all 255
    for damage in [|x| x, |_| 0, |_| u8::MAX] as [fn(u8) -> u8; 3] {
        let v3 = as_version_3(&v4, &ix, damage);
        assert!(v3.len() > v4.len());
        let back = open(&v3);
        assert_eq!(hits(&back), hits(&ix));
        let (Impacts::U8(a), Impacts::U8(b)) = (back.view().impacts, ix.view().impacts) else { unreachable!() };
        assert_eq!(a.fine_block_max.dense, b.fine_block_max.dense);
        assert_eq!(a.doc_block_max.dense, b.doc_block_max.dense);
        assert_eq!(a.superblock_max.dense, b.superblock_max.dense);
    }
}
