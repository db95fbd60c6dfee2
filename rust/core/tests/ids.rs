//! Document ids: stored with a sorted permutation, found by binary search, validated at open;
//! the builder returns the order it stored the documents in.

use proptest::prelude::*;
use sparsedex_core::container::Image;
use sparsedex_core::index::build::{build, BuildOptions, CsrRef, IdsInput, Quantization, Reorder};
use sparsedex_core::index::{Id, Index};
use sparsedex_core::Error;

fn corpus(n: usize, seed: u64) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut indptr, mut indices, mut values) = (vec![0u64], vec![], vec![]);
    for _ in 0..n {
        let mut row: Vec<u32> = (0..(next() % 6)).map(|_| (next() % 40) as u32).collect();
        row.sort_unstable();
        row.dedup();
        for t in row {
            indices.push(t);
            values.push(1.0 + (next() % 100) as f32 / 10.0);
        }
        indptr.push(indices.len() as u64);
    }
    (indptr, indices, values)
}

fn opts(reorder: Reorder) -> BuildOptions {
    BuildOptions { n_terms: None, quantization: Quantization::F32, store_vectors: true, reorder }
}

/// Every document is found by its id, the id of every document is the one it was given, and
/// `order` maps internal docs to input rows (the stored vector is that row's).
fn check(ix: &Index, order: &[u32], ids: &[Id<'_>], rows: &(Vec<u64>, Vec<u32>, Vec<f32>)) {
    assert_eq!(order.len(), ids.len());
    for (d, &row) in order.iter().enumerate() {
        let d = d as u32;
        assert_eq!(ix.id(d), Some(ids[row as usize]));
        assert_eq!(ix.locate(ids[row as usize]), Some(d));
        let (a, b) = (rows.0[row as usize] as usize, rows.0[row as usize + 1] as usize);
        assert_eq!(ix.vector(d).unwrap(), (rows.1[a..b].to_vec(), rows.2[a..b].to_vec()));
    }
    assert_eq!(ix.id(ids.len() as u32), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn ids_round_trip_and_locate(n in 0usize..300, seed in any::<u64>(), reorder in any::<bool>(),
                                 strings in any::<bool>(), save in any::<bool>()) {
        let rows = corpus(n, seed);
        let csr = CsrRef { indptr: &rows.0, indices: &rows.1, values: &rows.2 };
        let reorder = if reorder { Reorder::Signature } else { Reorder::None };
        let ints: Vec<i64> = (0..n as i64).map(|i| (i * 7_919).wrapping_mul(seed as i64 | 1) ^ i64::MIN.wrapping_add(i)).collect();
        let strs: Vec<String> = (0..n).map(|i| format!("{}-{}", ["", "é", "doc", "ß∂"][i % 4], (i as u64).wrapping_mul(seed))).collect();
        let built = if strings { build(csr, IdsInput::Str(&strs), &opts(reorder)) } else { build(csr, IdsInput::Int(&ints), &opts(reorder)) }.unwrap();
        let ix = if save {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.sdx");
            built.index.save(&p).unwrap();
            Index::open(&p).unwrap()
        } else {
            built.index
        };
        let ids: Vec<Id<'_>> = if strings { strs.iter().map(|s| Id::Str(s)).collect() } else { ints.iter().map(|&x| Id::Int(x)).collect() };
        check(&ix, &built.order, &ids, &rows);
        // Ids next to every stored one, and at both ends of the range (the lookup skips a
        // segment whose smallest..largest id cannot hold the id): found exactly where brute
        // force finds them.
        let at = |want: Id<'_>| ids.iter().position(|&x| x == want).map(|p| built.order.iter().position(|&o| o as usize == p).unwrap() as u32);
        if strings {
            let mut probes: Vec<String> = vec![String::new(), "\u{10FFFF}".into(), "0".into()];
            for x in &strs {
                probes.push(format!("{x}\0"));
                probes.push(x[..x.len().saturating_sub(1)].to_string());
            }
            for p in &probes {
                prop_assert_eq!(ix.locate(Id::Str(p)), at(Id::Str(p)), "{:?}", p);
            }
        } else {
            let mut probes = vec![i64::MIN, i64::MAX, 0];
            for &x in &ints {
                probes.extend([x.wrapping_sub(1), x.wrapping_add(1)]);
            }
            for &p in &probes {
                prop_assert_eq!(ix.locate(Id::Int(p)), at(Id::Int(p)), "{}", p);
            }
        }
        // Absent ids, and ids of the other kind.
        prop_assert_eq!(ix.locate(Id::Str("absent")), None);
        if strings {
            prop_assert_eq!(ix.locate(Id::Int(0)), None);
        } else {
            prop_assert_eq!(ix.locate(Id::Int(i64::MAX - 1)), ints.iter().position(|&x| x == i64::MAX - 1).map(|p| built.order.iter().position(|&o| o as usize == p).unwrap() as u32));
        }
    }
}

#[test]
fn without_ids_a_document_is_its_row() {
    let rows = corpus(50, 3);
    let built =
        build(CsrRef { indptr: &rows.0, indices: &rows.1, values: &rows.2 }, IdsInput::None, &opts(Reorder::Signature))
            .unwrap();
    let ix = built.index;
    assert_eq!(ix.id(7), Some(Id::Int(7)));
    assert_eq!(ix.locate(Id::Int(7)), Some(7));
    assert_eq!(ix.locate(Id::Int(50)), None);
    assert_eq!(ix.locate(Id::Int(-1)), None);
    let mut sorted = built.order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<u32>>());
}

#[test]
fn duplicate_and_miscounted_ids_are_errors() {
    let rows = corpus(5, 1);
    let csr = CsrRef { indptr: &rows.0, indices: &rows.1, values: &rows.2 };
    let err = build(csr, IdsInput::Int(&[1, 2, 3, 2, 5]), &opts(Reorder::Signature)).unwrap_err();
    assert!(matches!(err, Error::InvalidDocument { doc: 3, .. }), "{err}");
    assert!(err.to_string().contains("id 2 is a duplicate (of document 1)"), "{err}");
    let s: Vec<String> = ["a", "b", "a", "c", "d"].iter().map(|s| s.to_string()).collect();
    let err = build(csr, IdsInput::Str(&s), &opts(Reorder::None)).unwrap_err().to_string();
    assert!(err.contains("document 2: id \"a\" is a duplicate (of document 0)"), "{err}");
    let err = build(csr, IdsInput::Int(&[1, 2]), &opts(Reorder::None)).unwrap_err().to_string();
    assert!(err.contains("2 ids given for 5 documents"), "{err}");
}

/// Rewrite section `name` of an index image and reseal every checksum.
fn patch(bytes: &mut [u8], name: &str, f: impl FnOnce(&mut [u8])) {
    let le = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let count = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let table = le(bytes, 32) as usize;
    let e = (0..count)
        .map(|i| table + 64 * i)
        .find(|&e| &bytes[e..e + name.len()] == name.as_bytes() && bytes[e + name.len()] == 0)
        .unwrap();
    let (off, len) = (le(bytes, e + 32) as usize, le(bytes, e + 40) as usize);
    f(&mut bytes[off..off + len]);
    let c = crc32fast::hash(&bytes[off..off + len]);
    bytes[e + 48..e + 52].copy_from_slice(&c.to_le_bytes());
    let c = crc32fast::hash(&bytes[table..]);
    bytes[28..32].copy_from_slice(&c.to_le_bytes());
    let c = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn corrupt_ids_are_refused_at_open() {
    let rows = corpus(20, 5);
    let csr = CsrRef { indptr: &rows.0, indices: &rows.1, values: &rows.2 };
    let strs: Vec<String> = (0..20).map(|i| format!("é{i:02}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.sdx");
    build(csr, IdsInput::Str(&strs), &opts(Reorder::Signature)).unwrap().index.save(&p).unwrap();
    let base = std::fs::read(&p).unwrap();
    type Mutation = Box<dyn Fn(&mut [u8])>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("ids_str", Box::new(|s| s[0] = 0xff), "not valid UTF-8"),
        ("ids_str_off", Box::new(|s| s[8] = 1), "character boundary"),
        ("ids_sorted", Box::new(|s| s.copy_within(4..8, 0)), "not a permutation"),
        ("ids_sorted", Box::new(|s| s.swap(0, 4)), "ascending"),
        ("ids_str", Box::new(|s| s[3] = b'0'), "not unique"),
    ];
    for (section, f, want) in cases {
        let mut b = base.clone();
        patch(&mut b, section, |s| f(s));
        match Index::from_image(Image::from_bytes(&b), true) {
            Err(Error::Corrupt(m)) => assert!(m.contains(want), "{section}: {m}"),
            other => panic!("{section}: {other:?}"),
        }
    }
}
