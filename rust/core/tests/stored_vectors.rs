//! Format version 3 (rust/core/FORMAT.md §2): the stored vectors' local term ids as `u16`
//! (`fwd_terms_u16`) when a segment has at most 65,536 local terms (`fwd_terms`, u32,
//! otherwise), and trimmed final doc-id blocks. Version-2 files (u32 term ids, full blocks)
//! still open. Both give back the vectors bit for bit and the same search results; a bad
//! section of the new layout is a corruption error.

use sparsedex_core::container::{Container, ContainerWriter, Image};
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::format::{MAGIC, VERSION, VERSION_2};
use sparsedex_core::index::{FwdTerms, Index};
use sparsedex_core::search::{search, Algorithm, QueryRef};
use sparsedex_core::Error;

/// `n` documents over term ids spread up to `span` (distinct local terms: about min(span, n * 9)),
/// with weights of every exponent range, including subnormals and values that are not the
/// f32 rounding of a short decimal.
fn corpus(n: u32, span: u32) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let (mut indptr, mut indices, mut values) = (vec![0u64], vec![], vec![]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..n {
        let mut row: Vec<u32> = (0..9).map(|_| (next() % span as u64) as u32).collect();
        row.sort_unstable();
        row.dedup();
        for t in row {
            indices.push(t);
            let w = match next() % 4 {
                0 => f32::from_bits(1 + (next() % 0x007f_ffff) as u32), // subnormal
                1 => (next() % 1000) as f32 / 7.0 + 0.001,
                2 => f32::from_bits(0x3c00_0000 + (next() % 0x0400_0000) as u32),
                _ => 1.0 / (1 + next() % 97) as f32,
            };
            values.push(w);
        }
        indptr.push(indices.len() as u64);
    }
    (indptr, indices, values)
}

fn built(csr: &(Vec<u64>, Vec<u32>, Vec<f32>), quantization: Quantization) -> Index {
    let opts = BuildOptions { quantization, store_vectors: true, reorder: Reorder::None, ..Default::default() };
    build(CsrRef { indptr: &csr.0, indices: &csr.1, values: &csr.2 }, IdsInput::None, &opts).unwrap().index
}

fn bytes_of(ix: &Index) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.sdx");
    ix.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

fn open(bytes: &[u8]) -> sparsedex_core::Result<Index> {
    Index::from_image(Image::from_bytes(bytes), true)
}

fn version(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// Rewrite an image section by section (each as raw bytes, which every typed read accepts),
/// with `edit` choosing, per section, what to write instead (None: drop it), under `version`.
fn rewrite(bytes: &[u8], version: u32, edit: impl Fn(&str, &[u8]) -> Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let c = Container::parse(Image::from_bytes(bytes), MAGIC, self::version(bytes), true).unwrap();
    let mut w = ContainerWriter::new(MAGIC, version);
    let names: Vec<String> = c.section_names().map(str::to_string).collect();
    for name in names {
        for (n, data) in edit(&name, c.bytes(&name).unwrap()) {
            w.add_bytes(&n, &data).unwrap();
        }
    }
    w.into_image().as_bytes().to_vec()
}

fn le_u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// The version-2 twin of a version-3 image: `fwd_terms_u16` widened to `fwd_terms` (u32), and
/// every trimmed final doc-id block padded back to its full `16 * bits` bytes with zero rows.
fn as_version_2(bytes: &[u8]) -> Vec<u8> {
    let c = Container::parse(Image::from_bytes(bytes), MAGIC, VERSION, true).unwrap();
    let (off, docs) = (le_u64s(c.bytes("block_off").unwrap()), c.bytes("docs").unwrap());
    let (mut new_off, mut new_docs) = (vec![0u64], Vec::new());
    for w in off.windows(2) {
        let blk = &docs[w[0] as usize..w[1] as usize];
        if blk.len() % 16 == 0 {
            new_docs.extend_from_slice(blk);
        } else {
            let bits = *blk.last().unwrap() as usize;
            new_docs.extend_from_slice(&blk[..blk.len() - 1]);
            new_docs.resize(new_docs.len() + 16 * bits - (blk.len() - 1), 0);
        }
        new_off.push(new_docs.len() as u64);
    }
    rewrite(bytes, VERSION_2, |name, data| {
        if name == "docs" {
            vec![(name.into(), new_docs.clone())]
        } else if name == "block_off" {
            vec![(name.into(), new_off.iter().flat_map(|x| x.to_le_bytes()).collect())]
        } else if name == "fwd_terms_u16" {
            let wide: Vec<u8> =
                data.chunks_exact(2).flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) as u32).to_le_bytes()).collect();
            vec![("fwd_terms".into(), wide)]
        } else {
            vec![(name.to_string(), data.to_vec())]
        }
    })
}

fn assert_corrupt(r: sparsedex_core::Result<Index>, needle: &str) {
    match r {
        Err(Error::Corrupt(msg)) => assert!(msg.contains(needle), "message {msg:?} does not mention {needle:?}"),
        Err(e) => panic!("expected a corruption error, got {e:?}"),
        Ok(_) => panic!("a corrupt index opened"),
    }
}

fn same_results(a: &Index, b: &Index, terms: &[u32]) {
    let weights: Vec<f32> = (0..terms.len()).map(|i| 0.5 + i as f32).collect();
    let q = QueryRef { terms, weights: &weights };
    for algo in Algorithm::ALL {
        let (x, y) = (search(a, q, 10, algo).unwrap(), search(b, q, 10, algo).unwrap());
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{algo:?}");
    }
}

#[test]
fn small_vocabularies_store_u16_term_ids_and_round_trip_bit_for_bit() {
    let csr = corpus(3000, 5000);
    for q in [Quantization::U8 { scale: None }, Quantization::F32] {
        let ix = built(&csr, q);
        assert!(matches!(ix.view().forward.unwrap().terms, FwdTerms::U16(_)));
        let bytes = bytes_of(&ix);
        assert_eq!(version(&bytes), VERSION);
        let back = open(&bytes).unwrap();
        let (indptr, terms, values) = back.vectors().unwrap();
        assert_eq!(indptr, csr.0);
        assert_eq!(terms, csr.1);
        assert_eq!(
            values.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            csr.2.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let d = 1234;
        let (a, b) = (csr.0[d] as usize, csr.0[d + 1] as usize);
        let (t, w) = back.vector(d as u32).unwrap();
        assert_eq!((t.as_slice(), w.as_slice()), (&csr.1[a..b], &csr.2[a..b]));
        // Stored-vector bytes: 2 per term id + 4 per weight + 8 per row offset.
        let st = back.stats();
        assert_eq!(st.forward_bytes as usize, csr.1.len() * 6 + csr.0.len() * 8);
    }
}

#[test]
fn version_2_files_with_u32_term_ids_still_open_and_search_the_same() {
    let csr = corpus(3000, 5000);
    for q in [Quantization::U8 { scale: None }, Quantization::F32] {
        let v3 = bytes_of(&built(&csr, q));
        let v2 = as_version_2(&v3);
        assert_eq!(version(&v2), VERSION_2);
        assert!(v2.len() > v3.len());
        let (a, b) = (open(&v3).unwrap(), open(&v2).unwrap());
        assert!(matches!(b.view().forward.unwrap().terms, FwdTerms::U32(_)));
        assert_eq!(a.vectors().unwrap().1, b.vectors().unwrap().1);
        let terms: Vec<u32> =
            (0..a.view().n_terms).filter(|t| t % 97 == 0).map(|t| a.view().external_term(t)).collect();
        same_results(&a, &b, &terms);
    }
}

#[test]
fn more_than_65536_local_terms_store_u32_term_ids() {
    let csr = corpus(12_000, 200_000);
    let ix = built(&csr, Quantization::U8 { scale: None });
    assert!(ix.view().n_terms as usize > 65_536, "{} local terms", ix.view().n_terms);
    assert!(matches!(ix.view().forward.unwrap().terms, FwdTerms::U32(_)));
    let bytes = bytes_of(&ix);
    assert_eq!(version(&bytes), VERSION);
    let back = open(&bytes).unwrap();
    assert_eq!(back.vectors().unwrap().1, csr.1);
    let terms: Vec<u32> = csr.1[..40].to_vec();
    let mut terms = terms;
    terms.sort_unstable();
    terms.dedup();
    same_results(&ix, &back, &terms);
}

#[test]
fn version_2_files_without_stored_vectors_open_and_search_the_same() {
    let csr = corpus(3000, 2000);
    let opts = BuildOptions { store_vectors: false, reorder: Reorder::None, ..Default::default() };
    let ix = build(CsrRef { indptr: &csr.0, indices: &csr.1, values: &csr.2 }, IdsInput::None, &opts).unwrap().index;
    let v3 = bytes_of(&ix);
    let v2 = as_version_2(&v3);
    let back = open(&v2).unwrap();
    let terms: Vec<u32> = (0..ix.view().n_terms).filter(|t| t % 41 == 0).map(|t| ix.view().external_term(t)).collect();
    same_results(&ix, &back, &terms);
}

/// Patch the final block of the first term whose final block is trimmed, with `f(block)`.
fn patch_trimmed(v3: &[u8], f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let c = Container::parse(Image::from_bytes(v3), MAGIC, VERSION, true).unwrap();
    let (off, docs) = (le_u64s(c.bytes("block_off").unwrap()), c.bytes("docs").unwrap());
    let b = off.windows(2).position(|w| (w[1] - w[0]) % 16 == 1).expect("a trimmed block");
    let (mut new_off, mut new_docs) = (vec![0u64], Vec::new());
    for (i, w) in off.windows(2).enumerate() {
        let mut blk = docs[w[0] as usize..w[1] as usize].to_vec();
        if i == b {
            f(&mut blk);
        }
        new_docs.extend_from_slice(&blk);
        new_off.push(new_docs.len() as u64);
    }
    rewrite(v3, VERSION, |name, data| match name {
        "docs" => vec![(name.into(), new_docs.clone())],
        "block_off" => vec![(name.into(), new_off.iter().flat_map(|x| x.to_le_bytes()).collect())],
        _ => vec![(name.into(), data.to_vec())],
    })
}

#[test]
fn short_lists_are_trimmed_and_bad_trimmed_blocks_are_corrupt() {
    let csr = corpus(3000, 2000);
    let ix = built(&csr, Quantization::U8 { scale: None });
    let v3 = bytes_of(&ix);
    let v2 = as_version_2(&v3);
    let c3 = Container::parse(Image::from_bytes(&v3), MAGIC, VERSION, true).unwrap();
    let c2 = Container::parse(Image::from_bytes(&v2), MAGIC, VERSION_2, true).unwrap();
    assert!(c3.bytes("docs").unwrap().len() < c2.bytes("docs").unwrap().len());
    // The same bytes with the trimmed block unchanged open (the patch itself is sound).
    open(&patch_trimmed(&v3, |_| {})).unwrap();
    // A bit width above 32, or 0.
    assert_corrupt(open(&patch_trimmed(&v3, |b| *b.last_mut().unwrap() = 33)), "trimmed final block");
    assert_corrupt(open(&patch_trimmed(&v3, |b| *b.last_mut().unwrap() = 0)), "trimmed final block");
    // A width whose rows do not match the kept rows.
    assert_corrupt(
        open(&patch_trimmed(&v3, |b| {
            let w = *b.last().unwrap();
            *b.last_mut().unwrap() = if w < 32 { w + 1 } else { w - 1 };
            b.insert(0, 0);
            b.insert(0, 0);
        })),
        "trimmed final block",
    );
    // One more row than needed.
    assert_corrupt(
        open(&patch_trimmed(&v3, |b| {
            let n = b.len() - 1;
            b.splice(n..n, [0u8; 16]);
        })),
        "trimmed final block",
    );
    // A trimmed block in a version-2 file.
    let v2_trimmed = rewrite(&v3, VERSION_2, |name, data| {
        let d = if name == "fwd_terms_u16" {
            data.chunks_exact(2).flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) as u32).to_le_bytes()).collect()
        } else {
            data.to_vec()
        };
        vec![(if name == "fwd_terms_u16" { "fwd_terms".to_string() } else { name.to_string() }, d)]
    });
    assert_corrupt(open(&v2_trimmed), "trimmed final block");
}

#[test]
fn bad_u16_term_sections_are_corrupt() {
    let csr = corpus(500, 300);
    let v3 = bytes_of(&built(&csr, Quantization::U8 { scale: None }));
    let n_terms = open(&v3).unwrap().view().n_terms as u16;
    // A term id beyond the segment's local terms.
    let bad = rewrite(&v3, VERSION, |name, data| {
        let mut d = data.to_vec();
        if name == "fwd_terms_u16" {
            d[2..4].copy_from_slice(&n_terms.to_le_bytes());
        }
        vec![(name.to_string(), d)]
    });
    assert_corrupt(open(&bad), "stored vectors are inconsistent");
    // An odd number of bytes.
    let odd = rewrite(&v3, VERSION, |name, data| {
        let mut d = data.to_vec();
        if name == "fwd_terms_u16" {
            d.push(0);
        }
        vec![(name.to_string(), d)]
    });
    assert_corrupt(open(&odd), "fwd_terms_u16");
    // One entry missing (the row offsets end past the terms).
    let short = rewrite(&v3, VERSION, |name, data| {
        let mut d = data.to_vec();
        if name == "fwd_terms_u16" {
            d.truncate(d.len() - 2);
        }
        vec![(name.to_string(), d)]
    });
    assert_corrupt(open(&short), "fwd_indptr");
    // Both layouts at once.
    let both = rewrite(&v3, VERSION, |name, data| {
        let mut out = vec![(name.to_string(), data.to_vec())];
        if name == "fwd_terms_u16" {
            let wide: Vec<u8> =
                data.chunks_exact(2).flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) as u32).to_le_bytes()).collect();
            out.push(("fwd_terms".into(), wide));
        }
        out
    });
    assert_corrupt(open(&both), "both");
    // A u16 section in a version-2 file (which earlier builds would have misread).
    let v2_u16 = as_version_2(&v3);
    let v2_u16 = rewrite(&v2_u16, VERSION_2, |name, data| {
        if name == "fwd_terms" {
            let narrow: Vec<u8> = data
                .chunks_exact(4)
                .flat_map(|c| (u32::from_le_bytes(c.try_into().unwrap()) as u16).to_le_bytes())
                .collect();
            vec![("fwd_terms_u16".into(), narrow)]
        } else {
            vec![(name.to_string(), data.to_vec())]
        }
    });
    assert_corrupt(open(&v2_u16), "fwd_terms_u16");
}

#[test]
fn truncated_version_3_files_are_errors() {
    let csr = corpus(500, 300);
    let v3 = bytes_of(&built(&csr, Quantization::U8 { scale: None }));
    for cut in [0, 10, 64, v3.len() / 3, v3.len() / 2, v3.len() - 64, v3.len() - 1] {
        match open(&v3[..cut]) {
            Err(Error::Corrupt(_)) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

/// The stored vectors are checked against the postings at open (breaker27 L3): a file whose
/// `fwd_*` sections were changed consistently (the container's checksums rewritten, every
/// length and offset still right) is a corruption error, for u8, f32 and BM25 segments, where
/// it used to open and make exact search (which rescores from the stored vectors) and the
/// postings disagree.
#[test]
fn stored_vectors_that_disagree_with_the_postings_are_corrupt() {
    use sparsedex_core::index::build::build_with;
    use sparsedex_core::index::Bm25Params;
    let csr = corpus(500, 300);
    let tfs: Vec<f32> = csr.2.iter().enumerate().map(|(i, _)| (1 + i % 5) as f32).collect();
    let doc_len: Vec<u32> = csr.0.windows(2).map(|w| (w[1] - w[0]) as u32 * 3).collect();
    let bm25 = {
        let opts = BuildOptions {
            quantization: Quantization::Bm25(Bm25Params { k1: 1.2, b: 0.75, quantized: false }),
            store_vectors: true,
            reorder: Reorder::None,
            ..Default::default()
        };
        let docs = CsrRef { indptr: &csr.0, indices: &csr.1, values: &tfs };
        build_with(docs, IdsInput::None, Some(&doc_len), &opts).unwrap().index
    };
    let images = [
        ("u8", bytes_of(&built(&csr, Quantization::U8 { scale: None }))),
        ("f32", bytes_of(&built(&csr, Quantization::F32))),
        ("bm25", bytes_of(&bm25)),
    ];
    for (kind, image) in &images {
        assert!(open(image).is_ok(), "{kind}: the untouched file opens");
        let c = Container::parse(Image::from_bytes(image), MAGIC, VERSION, true).unwrap();
        let indptr = le_u64s(c.bytes("fwd_indptr").unwrap());
        let values: Vec<f32> =
            c.bytes("fwd_values").unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let terms: Vec<u16> =
            c.bytes("fwd_terms_u16").unwrap().chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        // A row of at least three entries whose first two weights make different impacts.
        let (a, _) = indptr
            .windows(2)
            .map(|w| (w[0] as usize, w[1] as usize))
            .find(|&(a, b)| b - a >= 3 && values[a] * 1.5 < values[a + 1] && terms[a] + 1 < terms[a + 1])
            .expect("such a row");
        let with_values = |f: &dyn Fn(&mut Vec<f32>)| {
            let mut v = values.clone();
            f(&mut v);
            let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            rewrite(image, VERSION, |name, data| match name {
                "fwd_values" => vec![(name.into(), raw.clone())],
                _ => vec![(name.into(), data.to_vec())],
            })
        };
        let with_terms = |f: &dyn Fn(&mut Vec<u16>)| {
            let mut t = terms.clone();
            f(&mut t);
            let raw: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
            rewrite(image, VERSION, |name, data| match name {
                "fwd_terms_u16" => vec![(name.into(), raw.clone())],
                _ => vec![(name.into(), data.to_vec())],
            })
        };
        let disagree = "disagree with the postings";
        // Two weights of a row swapped: the same terms and weights, paired differently.
        assert_corrupt(open(&with_values(&|v| v.swap(a, a + 1))), disagree);
        // One weight changed to one its impact would not come from.
        assert_corrupt(open(&with_values(&|v| v[a] = v[a + 1] * 2.0)), disagree);
        // One term id changed to another, the row still ascending.
        assert_corrupt(open(&with_terms(&|t| t[a] += 1)), disagree);
        // Two term ids of a row swapped.
        assert_corrupt(open(&with_terms(&|t| t.swap(a, a + 1))), "not strictly ascending");
        // A weight that is not a positive number.
        for bad in [f32::NAN, -1.0, 0.0, f32::INFINITY] {
            assert_corrupt(open(&with_values(&|v| v[a] = bad)), "not a positive number");
        }
        // The largest weight raised beyond the 8-bit grid (its impact would still clamp to the
        // stored 255: breaker29 M1), or a fractional BM25 term frequency (it truncates to the
        // stored one: breaker29 L1).
        let top = (0..values.len()).max_by(|&i, &j| values[i].total_cmp(&values[j])).unwrap();
        match *kind {
            "u8" => {
                for bad in [values[top] * 2.0, 1e30] {
                    assert_corrupt(open(&with_values(&|v| v[top] = bad)), "above the segment's 8-bit grid");
                }
            }
            "bm25" => {
                assert_corrupt(open(&with_values(&|v| v[a] += 0.99)), "not a whole term frequency");
                assert_corrupt(open(&with_values(&|v| v[top] += 0.5)), "not a whole term frequency");
            }
            _ => assert_corrupt(open(&with_values(&|v| v[top] *= 2.0)), disagree),
        }
    }
}
