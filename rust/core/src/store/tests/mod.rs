//! Store tests: commits, deletions, upserts, merges, BM25 statistics, saves, garbage
//! collection and conflicting writers; crash tests in [`crash`].

mod crash;

use super::*;
use crate::index::build::{build_with, BuildOptions, Quantization};
use crate::index::{Bm25Params, Id, IdsInput, Index, Reorder};
use crate::search::{search_with, Algorithm, DocSet, Hit, QueryRef};
use crate::vectors::CsrRef;
use std::collections::BTreeMap;
use std::path::Path;

/// Random documents over `vocab` terms (whole-number weights when `tf`).
pub(super) fn docs(n: usize, seed: u64, tf: bool) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut indptr, mut indices, mut values) = (vec![0u64], vec![], vec![]);
    for _ in 0..n {
        for t in 0..20u32 {
            if next() % 100 < 5 + 10 * (t % 4) as u64 {
                indices.push(t * 1_000_003);
                values.push(if tf { (1 + next() % 3) as f32 } else { (1 + next() % 500) as f32 / 50.0 });
            }
        }
        indptr.push(indices.len() as u64);
    }
    (indptr, indices, values)
}

pub(super) fn csr(d: &(Vec<u64>, Vec<u32>, Vec<f32>)) -> CsrRef<'_> {
    CsrRef { indptr: &d.0, indices: &d.1, values: &d.2 }
}

/// Live documents of a snapshot: id -> stored vector (weights as bits).
pub(super) type State = BTreeMap<i64, (Vec<u32>, Vec<u32>)>;

pub(super) fn state(snap: &Snapshot) -> State {
    let mut out = BTreeMap::new();
    for s in snap.segments() {
        for d in 0..s.index().n_docs() {
            if s.is_deleted(d) {
                continue;
            }
            let Some(Id::Int(id)) = s.index().id(d) else { panic!("int ids") };
            let (t, v) = s.index().vector(d).unwrap();
            assert!(out.insert(id, (t, v.iter().map(|x| x.to_bits()).collect())).is_none(), "id {id} twice");
        }
    }
    out
}

fn ids(r: std::ops::Range<i64>) -> Vec<i64> {
    r.collect()
}

/// The snapshot's hits as (id, score).
fn hits(snap: &Snapshot, q: &[(u32, f32)], k: usize, algo: Algorithm) -> Vec<(i64, f32)> {
    let t: Vec<u32> = q.iter().map(|e| e.0).collect();
    let w: Vec<f32> = q.iter().map(|e| e.1).collect();
    snap.search(QueryRef { terms: &t, weights: &w }, k, algo, None, None, Default::default())
        .unwrap()
        .into_iter()
        .map(|h| match snap.segments()[h.segment as usize].index().id(h.doc) {
            Some(Id::Int(x)) => (x, h.score),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// One index built from a state's documents (ascending id), searched by (id, score).
fn fresh_hits(st: &State, quantization: Quantization, q: &[(u32, f32)], k: usize) -> Vec<(i64, f32)> {
    let (mut indptr, mut indices, mut values, mut idv) = (vec![0u64], vec![], vec![], vec![]);
    for (id, (t, v)) in st {
        indices.extend_from_slice(t);
        values.extend(v.iter().map(|b| f32::from_bits(*b)));
        indptr.push(indices.len() as u64);
        idv.push(*id);
    }
    let quantization = match quantization {
        // The store's rule: the shared grid if every weight fits it, the data's own otherwise.
        Quantization::U8 { scale: Some(s) } => {
            Quantization::U8 { scale: (values.iter().copied().fold(0.0f32, f32::max) * s <= 255.0).then_some(s) }
        }
        q => q,
    };
    let opts = BuildOptions { n_terms: None, quantization, store_vectors: true, reorder: Reorder::None };
    let ix =
        build_with(CsrRef { indptr: &indptr, indices: &indices, values: &values }, IdsInput::Int(&idv), None, &opts)
            .unwrap()
            .index;
    let t: Vec<u32> = q.iter().map(|e| e.0).collect();
    let w: Vec<f32> = q.iter().map(|e| e.1).collect();
    let h: Vec<Hit> =
        search_with(&ix, QueryRef { terms: &t, weights: &w }, k, Algorithm::Exhaustive, None, None).unwrap();
    h.into_iter().map(|h| (idv[h.doc as usize], h.score)).collect()
}

fn queries() -> Vec<Vec<(u32, f32)>> {
    vec![
        vec![(0, 1.0), (3_000_009, 2.0)],
        vec![(5_000_015, 1.0), (7_000_021, 0.5), (19_000_057, 3.0)],
        (0..20).map(|t| (t * 1_000_003, 1.0)).collect(),
    ]
}

/// Scores may tie: compare the sets of (id, score bits) and the scores in order.
fn same_hits(a: &[(i64, f32)], b: &[(i64, f32)]) {
    let sa: Vec<u32> = a.iter().map(|h| h.1.to_bits()).collect();
    let sb: Vec<u32> = b.iter().map(|h| h.1.to_bits()).collect();
    assert_eq!(sa, sb, "{a:?} vs {b:?}");
}

#[test]
fn in_memory_adds_deletes_upserts_and_searches() {
    let store =
        Store::create(None, StoreConfig { quantization: StoreQuantization::F32, ..StoreConfig::default() }).unwrap();
    assert_eq!(store.snapshot().generation(), 1);
    let a = docs(300, 1, false);
    assert_eq!(store.stage_add(csr(&a), IdsInput::None, None, false).unwrap(), 0..300);
    assert_eq!(store.next_int_id(), 300);
    assert_eq!(store.locate(Id::Int(5)), Some(Location::Staged(5)));
    assert_eq!(store.finish_commit(&[], None).unwrap(), 2);
    let b = docs(100, 2, false);
    store.stage_add(csr(&b), IdsInput::Int(&ids(250..350)), None, true).unwrap(); // 50 upserts
    let err = store.stage_add(csr(&b), IdsInput::Int(&ids(340..440)), None, false).unwrap_err().to_string();
    assert!(err.contains("id 340 is already in the index"), "{err}");
    assert_eq!(store.stage_delete(IdsInput::Int(&[0, 1, 1, 999]), true).unwrap(), 2);
    assert!(matches!(store.stage_delete(IdsInput::Int(&[999]), false), Err(Error::NotFound(_))));
    assert_eq!(store.finish_commit(&[], None).unwrap(), 3);
    let snap = store.snapshot();
    let st = state(&snap);
    assert_eq!(st.len(), 348);
    assert!(!st.contains_key(&0) && st.contains_key(&349));
    // Upserted documents carry their new vectors.
    let (t, v) = (&b.1[b.0[0] as usize..b.0[1] as usize], &b.2[b.0[0] as usize..b.0[1] as usize]);
    assert_eq!(st[&250], (t.to_vec(), v.iter().map(|x| x.to_bits()).collect()));
    for q in queries() {
        for algo in Algorithm::ALL {
            same_hits(&hits(&snap, &q, 10, algo), &fresh_hits(&st, Quantization::F32, &q, 10));
        }
    }
    // Rollback forgets staged changes; string ids are refused in an int store.
    store.stage_delete(IdsInput::Int(&[2]), false).unwrap();
    store.rollback();
    assert!(!store.has_staged());
    let s = vec!["x".to_string()];
    let one = docs(1, 3, false);
    assert!(store.stage_add(csr(&one), IdsInput::Str(&s), None, false).unwrap_err().to_string().contains("integers"));
}

#[test]
fn shared_u8_scale_is_fixed_by_the_first_commit() {
    let store = Store::create(None, StoreConfig::default()).unwrap();
    let a = docs(50, 1, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let max = a.2.iter().copied().fold(0.0f32, f32::max);
    assert_eq!(store.snapshot().settings().scale, Some(255.0 / max));
    // Smaller weights share the grid; larger ones get the segment's own.
    let small = (vec![0u64, 1], vec![0u32], vec![max / 2.0]);
    let big = (vec![0u64, 1], vec![0u32], vec![max * 3.0]);
    store.stage_add(csr(&small), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    store.stage_add(csr(&big), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let scales: Vec<f32> = store.snapshot().segments().iter().map(|s| s.index().view().scale).collect();
    assert_eq!(scales, vec![255.0 / max, 255.0 / max, 255.0 / (max * 3.0)]);
}

/// BM25 over a store with deletions scores exactly as a fresh BM25 index over the surviving
/// documents (statistics exclude deleted documents), with both arithmetics.
#[test]
fn bm25_scores_equal_a_fresh_index_of_the_survivors() {
    for quantization in [StoreQuantization::F32, StoreQuantization::U8] {
        let store =
            Store::create(None, StoreConfig { quantization, bm25: Some((1.2, 0.75)), ..StoreConfig::default() })
                .unwrap();
        let mut all = BTreeMap::new();
        for (seed, range) in [(1u64, 0i64..200), (2, 200..260), (3, 260..400)] {
            let d = docs((range.end - range.start) as usize, seed, true);
            let lens: Vec<u32> = (0..d.0.len() - 1).map(|i| 3 + i as u32 % 11).collect();
            store.stage_add(csr(&d), IdsInput::Int(&ids(range.clone())), Some(&lens), false).unwrap();
            for (j, id) in range.enumerate() {
                all.insert(
                    id,
                    (
                        d.1[d.0[j] as usize..d.0[j + 1] as usize].to_vec(),
                        d.2[d.0[j] as usize..d.0[j + 1] as usize].to_vec(),
                        lens[j],
                    ),
                );
            }
            store.finish_commit(&[], None).unwrap();
        }
        let gone: Vec<i64> = (0..400).filter(|i| i % 3 == 0 || (150..300).contains(i)).collect();
        store.stage_delete(IdsInput::Int(&gone), false).unwrap();
        store.finish_commit(&[], None).unwrap();
        for g in &gone {
            all.remove(g);
        }
        let (mut indptr, mut indices, mut values, mut lens, mut idv) = (vec![0u64], vec![], vec![], vec![], vec![]);
        for (id, (t, v, l)) in &all {
            indices.extend_from_slice(t);
            values.extend_from_slice(v);
            indptr.push(indices.len() as u64);
            lens.push(*l);
            idv.push(*id);
        }
        let params = Bm25Params { k1: 1.2, b: 0.75, quantized: quantization == StoreQuantization::U8 };
        let opts = BuildOptions {
            n_terms: None,
            quantization: Quantization::Bm25(params),
            store_vectors: true,
            reorder: Reorder::None,
        };
        let fresh = build_with(
            CsrRef { indptr: &indptr, indices: &indices, values: &values },
            IdsInput::Int(&idv),
            Some(&lens),
            &opts,
        )
        .unwrap()
        .index;
        let snap = store.snapshot();
        let terms: Vec<u32> = (0..20).map(|t| t * 1_000_003).collect();
        let stats = snap.bm25_stats(&terms);
        assert_eq!(stats, crate::search::Bm25Stats::of_indexes(&[&fresh], &terms));
        for q in queries() {
            let t: Vec<u32> = q.iter().map(|e| e.0).collect();
            let w: Vec<f32> = q.iter().map(|e| e.1.round().max(1.0)).collect();
            let qr = QueryRef { terms: &t, weights: &w };
            let want: Vec<(i64, f32)> = search_with(&fresh, qr, 15, Algorithm::Exhaustive, None, None)
                .unwrap()
                .into_iter()
                .map(|h| (idv[h.doc as usize], h.score))
                .collect();
            for algo in Algorithm::ALL {
                let got: Vec<(i64, f32)> = snap
                    .search(qr, 15, algo, None, None, Default::default())
                    .unwrap()
                    .into_iter()
                    .map(|h| match snap.segments()[h.segment as usize].index().id(h.doc) {
                        Some(Id::Int(x)) => (x, h.score),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                same_hits(&got, &want);
            }
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn on_disk_commits_attachments_reopen_and_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(LOCK), b"pid 1").unwrap();
    let store =
        Store::create(Some(&dir), StoreConfig { settings_json: "{\"a\":1}".into(), ..StoreConfig::default() }).unwrap();
    let reader = Store::open(&dir).unwrap();
    let a = docs(200, 7, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    let p = store.prepare_commit().unwrap().unwrap();
    assert_eq!(p.name, "seg-000001");
    let mut sorted = p.order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<u32>>());
    std::fs::write(dir.join("seg-000001.docs"), b"documents in internal order").unwrap();
    assert_eq!(store.finish_commit(&["seg-000001.docs".to_string()], Some("{\"a\":2}")).unwrap(), 2);
    assert_eq!(names(&dir), vec!["CURRENT", "LOCK", "manifest-000002", "seg-000001.docs", "seg-000001.sdx"]);
    // The reader sees its commit until it refreshes.
    assert_eq!(reader.snapshot().n_live(), 0);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.snapshot().n_live(), 200);
    assert_eq!(reader.snapshot().settings().json, "{\"a\":2}");
    assert!(!reader.refresh().unwrap());
    reader.verify_attachment("seg-000001.docs").unwrap();
    store.stage_delete(IdsInput::Int(&[3, 4]), false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let reopened = Store::open(&dir).unwrap();
    assert_eq!(state(&reopened.snapshot()), state(&store.snapshot()));
    assert_eq!(reopened.snapshot().segments()[0].data.attachments.len(), 1);
    // A changed attachment is detected.
    std::fs::write(dir.join("seg-000001.docs"), b"documents in internal ordeR").unwrap();
    assert!(matches!(reopened.verify_attachment("seg-000001.docs"), Err(Error::Corrupt(_))));
    // Creating over an index, or over someone else's files, is refused.
    assert!(Store::create(Some(&dir), StoreConfig::default()).is_err());
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let err = Store::create(Some(&other), StoreConfig::default()).unwrap_err().to_string();
    assert!(err.contains("notes.txt"), "{err}");
}

#[test]
fn the_engine_file_written_before_finish_commit_is_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let a = docs(300, 11, false);
    let mut files = Vec::new();
    for early in [false, true] {
        let dir = tmp.path().join(format!("ix-{early}"));
        std::fs::create_dir(&dir).unwrap();
        let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
        assert!(matches!(store.write_prepared(), Err(Error::Conflict(_))), "nothing prepared");
        store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
        let p = store.prepare_commit().unwrap().unwrap();
        let sdx = dir.join(format!("{}.sdx", p.name));
        if early {
            store.write_prepared().unwrap();
            let written = std::fs::read(&sdx).unwrap();
            std::fs::remove_file(&sdx).unwrap();
            std::fs::write(&sdx, &written).unwrap();
            store.write_prepared().unwrap(); // written already: not again
            assert_eq!(std::fs::read(&sdx).unwrap(), written);
        } else {
            assert!(!sdx.exists());
        }
        store.finish_commit(&[], None).unwrap();
        files.push(std::fs::read(&sdx).unwrap());
        let reopened = Store::open(&dir).unwrap();
        assert_eq!(state(&reopened.snapshot()), state(&store.snapshot()));
        assert_eq!(reopened.snapshot().n_live(), 300);
        // a commit of deletions alone has no engine file to write
        store.stage_delete(IdsInput::Int(&[3]), false).unwrap();
        assert!(store.prepare_commit().unwrap().is_none());
        store.write_prepared().unwrap();
        store.finish_commit(&[], None).unwrap();
        assert_eq!(Store::open(&dir).unwrap().snapshot().n_live(), 299);
    }
    assert_eq!(files[0], files[1]);
    // in memory: nothing to write
    let mem = Store::create(None, StoreConfig::default()).unwrap();
    mem.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    mem.prepare_commit().unwrap();
    mem.write_prepared().unwrap();
    mem.finish_commit(&[], None).unwrap();
    assert_eq!(mem.snapshot().n_live(), 300);
}

#[test]
fn write_prepared_after_the_write_ended_is_a_conflict_and_touches_no_file() {
    // A commit's helper thread that starts late (after close() ended the write and released
    // the lock) must neither become the writer nor collect garbage: another process may hold
    // the lock and have renamed a segment file that its manifest does not list yet.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = Store::create(Some(dir), StoreConfig::default()).unwrap();
    store.stage_add(csr(&docs(50, 3, false)), IdsInput::None, None, false).unwrap();
    let p = store.prepare_commit().unwrap().unwrap();
    store.end_write();
    let foreign = dir.join("seg-900.sdx"); // another writer's file, not yet in its manifest
    std::fs::write(&foreign, b"in flight").unwrap();
    let before: std::collections::BTreeSet<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(matches!(store.write_prepared(), Err(Error::Conflict(_))));
    let after: std::collections::BTreeSet<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "no file written or collected");
    assert!(!dir.join(format!("{}.sdx", p.name)).exists());
}

#[test]
fn conflicting_writers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let one = Store::create(Some(dir), StoreConfig::default()).unwrap();
    let two = Store::open(dir).unwrap();
    let a = docs(10, 1, false);
    two.stage_add(csr(&a), IdsInput::None, None, false).unwrap(); // becomes a writer at generation 1
    one.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    one.finish_commit(&[], None).unwrap();
    assert!(matches!(two.finish_commit(&[], None), Err(Error::Conflict(_))));
    // After releasing and re-taking the lock, it catches up.
    two.end_write();
    two.stage_add(csr(&a), IdsInput::Int(&ids(100..110)), None, false).unwrap();
    assert_eq!(two.finish_commit(&[], None).unwrap(), 3);
}

#[test]
fn garbage_collection_spares_foreign_files_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = Store::create(Some(dir), StoreConfig::default()).unwrap();
    for f in ["LOCK", "notes.txt", "seg-notes", ".hidden", ".notes.tmp-1-2"] {
        std::fs::write(dir.join(f), f).unwrap();
    }
    // Leftovers of a crashed writer: an unreferenced segment, a manifest, temp files.
    for f in ["seg-000009.sdx", "seg-000009.docs", "manifest-000005", ".CURRENT.tmp-99-1", ".seg-000009.sdx.tmp-99-2"] {
        std::fs::write(dir.join(f), b"x").unwrap();
    }
    store.end_write();
    let a = docs(10, 1, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap(); // begin_write collects
    store.finish_commit(&[], None).unwrap();
    let mut want: Vec<String> =
        ["CURRENT", "LOCK", "notes.txt", "seg-notes", ".hidden", ".notes.tmp-1-2", "manifest-000002"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    // Names are never reused: the new segment comes after the leftover seg-000009.
    want.push("seg-000010.sdx".into());
    want.sort();
    assert_eq!(names(dir), want);
    for f in ["LOCK", "notes.txt", "seg-notes", ".hidden", ".notes.tmp-1-2"] {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), f.as_bytes());
    }
}

/// The tiered plan: a level's merge that fills the next level up takes that level's segments
/// in, as one merge; one that does not is planned alone.
#[test]
fn a_merge_that_fills_the_next_level_is_planned_with_it() {
    let policy = MergePolicy { factor: 3, floor_docs: 10, max_deleted: 0.5 };
    let plan_of = |sizes: &[i64]| {
        let store = Store::create(None, StoreConfig::default()).unwrap();
        let mut at = 0;
        for (i, &n) in sizes.iter().enumerate() {
            let d = docs(n as usize, i as u64 + 1, false);
            store.stage_add(csr(&d), IdsInput::Int(&ids(at..at + n)), None, false).unwrap();
            store.finish_commit(&[], None).unwrap();
            at += n;
        }
        store.plan_merges(&policy)
    };
    let names = |v: &[u32]| v.iter().map(|n| format!("seg-{n:06}")).collect::<Vec<_>>();
    // Two segments of level 1 (30 documents), then three of level 0 (10): one merge of five.
    assert_eq!(plan_of(&[30, 30, 10, 10, 10]), vec![names(&[1, 2, 3, 4, 5])]);
    // One of level 1: the level-0 merge alone.
    assert_eq!(plan_of(&[30, 10, 10, 10]), vec![names(&[2, 3, 4])]);
    // Two levels up at once: 2 x 90, 2 x 30, 3 x 10 -> one merge of seven.
    assert_eq!(plan_of(&[90, 90, 30, 30, 10, 10, 10]), vec![names(&[1, 2, 3, 4, 5, 6, 7])]);
    // A full level with nothing below to join: as before.
    assert_eq!(plan_of(&[30, 30, 30, 10]), vec![names(&[1, 2, 3])]);
    assert!(plan_of(&[30, 30, 10, 10]).is_empty());
}

#[test]
fn an_abandoned_merge_removes_its_engine_file_and_nothing_else() {
    // breaker28 M2: an interrupted merge's file stayed until the next commit collected it
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let store = Store::create(Some(dir.as_path()), StoreConfig::default()).unwrap();
    for i in 0..3i64 {
        let d = docs(40, i as u64 + 1, false);
        store.stage_add(csr(&d), IdsInput::Int(&ids(i * 40..i * 40 + 40)), None, false).unwrap();
        store.finish_commit(&[], None).unwrap();
    }
    let files = |d: &Path| {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let before = files(&dir);
    let names: Vec<String> = store.snapshot().segments().iter().map(|s| s.name().to_string()).collect();
    let prepared = store.merge(&names).unwrap();
    let sdx = format!("{}.sdx", prepared.name);
    let docs_file = format!("{}.docs", prepared.name);
    std::fs::write(dir.join(&docs_file), b"the caller's attachment").unwrap();
    assert!(dir.join(&sdx).exists());
    let generation = store.snapshot().generation;
    store.abandon_merge(prepared).unwrap();
    assert!(!dir.join(&sdx).exists());
    assert!(dir.join(&docs_file).exists(), "attachments are the caller's to remove");
    std::fs::remove_file(dir.join(&docs_file)).unwrap();
    assert_eq!(files(&dir), before);
    assert_eq!(store.snapshot().generation, generation);
    assert_eq!(state(&store.snapshot()).len(), 120);
    // in memory: nothing to remove
    let mem = Store::create(None, StoreConfig::default()).unwrap();
    let d = docs(40, 9, false);
    mem.stage_add(csr(&d), IdsInput::Int(&ids(0..40)), None, false).unwrap();
    mem.finish_commit(&[], None).unwrap();
    mem.stage_add(csr(&d), IdsInput::Int(&ids(40..80)), None, false).unwrap();
    mem.finish_commit(&[], None).unwrap();
    let names: Vec<String> = mem.snapshot().segments().iter().map(|s| s.name().to_string()).collect();
    mem.abandon_merge(mem.merge(&names).unwrap()).unwrap();
    assert_eq!(mem.snapshot().segments().len(), 2);
}

/// Merges planned by the policy and installed while deletions go on: the merged segment keeps
/// the deletions made meanwhile and takes the staged ones; results are a fresh index's.
#[test]
fn merges_carry_over_deletions_made_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    for on_disk in [false, true] {
        let dir = tmp.path().join(format!("m{on_disk}"));
        let store = Store::create(on_disk.then_some(dir.as_path()), StoreConfig::default()).unwrap();
        for i in 0..4i64 {
            let d = docs(40, i as u64 + 1, false);
            store.stage_add(csr(&d), IdsInput::Int(&ids(i * 40..i * 40 + 40)), None, false).unwrap();
            store.finish_commit(&[], None).unwrap();
        }
        store.stage_delete(IdsInput::Int(&[1, 2, 3]), false).unwrap();
        store.finish_commit(&[], None).unwrap();
        let policy = MergePolicy { factor: 3, floor_docs: 10, max_deleted: 0.5 };
        let plan = store.plan_merges(&policy);
        assert_eq!(plan, vec![vec!["seg-000001".to_string(), "seg-000002".into(), "seg-000003".into()]]);
        let prepared = store.merge(&plan[0]).unwrap();
        assert_eq!(prepared.origin.len(), 117);
        // Meanwhile: a committed deletion in a member, a staged one, and an add.
        store.stage_delete(IdsInput::Int(&[50]), false).unwrap();
        store.finish_commit(&[], None).unwrap();
        store.stage_delete(IdsInput::Int(&[90, 150]), false).unwrap();
        if on_disk {
            std::fs::write(dir.join(format!("{}.docs", prepared.name)), b"merged docs").unwrap();
        }
        let atts = if on_disk { vec![format!("{}.docs", prepared.name)] } else { vec![] };
        let name = prepared.name.clone();
        store.finish_merge(prepared, &atts).unwrap().unwrap();
        let snap = store.snapshot();
        let seg_names: Vec<&str> = snap.segments().iter().map(|s| s.name()).collect();
        assert_eq!(seg_names, vec![name.as_str(), "seg-000004"]);
        assert!(snap.locate(Id::Int(50)).is_none() && snap.locate(Id::Int(90)).is_some());
        assert_eq!(store.locate(Id::Int(90)), None);
        store.finish_commit(&[], None).unwrap();
        let st = state(&store.snapshot());
        assert_eq!(st.len(), 160 - 6);
        for gone in [1, 2, 3, 50, 90, 150] {
            assert!(!st.contains_key(&gone));
        }
        // A merge whose member is gone meanwhile is dropped.
        let stale = store.merge(std::slice::from_ref(&name)).unwrap();
        let again = store.merge(&[name.clone(), "seg-000004".into()]).unwrap();
        store.finish_merge(again, &[]).unwrap().unwrap();
        assert_eq!(store.finish_merge(stale, &[]).unwrap(), None);
        let snap = store.snapshot();
        assert_eq!(snap.segments().len(), 1);
        assert_eq!(state(&snap), st);
        let quant = Quantization::U8 { scale: snap.settings().scale };
        for q in queries() {
            same_hits(&hits(&snap, &q, 10, Algorithm::Auto), &fresh_hits(&st, quant, &q, 10));
        }
        if on_disk {
            let reopened = Store::open(&dir).unwrap();
            assert_eq!(state(&reopened.snapshot()), st);
            let files = names(&dir);
            assert_eq!(files.iter().filter(|f| f.ends_with(".sdx")).count(), 1, "{files:?}");
        }
    }
}

#[test]
fn save_copy_over_an_earlier_save() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let dest = tmp.path().join("dest");
    for on_disk in [true, false] {
        let store = Store::create(on_disk.then_some(src_dir.as_path()), StoreConfig::default()).unwrap();
        let a = docs(100, 3, false);
        store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
        store.prepare_commit().unwrap();
        if on_disk {
            std::fs::write(src_dir.join("seg-000001.docs"), b"docs").unwrap();
        }
        store.finish_commit(&if on_disk { vec!["seg-000001.docs".into()] } else { vec![] }, None).unwrap();
        store.stage_delete(IdsInput::Int(&[7]), false).unwrap();
        store.finish_commit(&[], None).unwrap();
        let first = store.save_copy(&dest).unwrap();
        let saved = Store::open(&dest).unwrap();
        assert_eq!(state(&saved.snapshot()), state(&store.snapshot()));
        let uuid = saved.snapshot().uuid().to_string();
        store.stage_add(csr(&docs(5, 4, false)), IdsInput::None, None, false).unwrap();
        store.finish_commit(&[], None).unwrap();
        // In memory, the caller writes the copy's attachments itself.
        let p = store.prepare_save(&dest).unwrap();
        let mut atts = vec![];
        for (_, new) in p.names() {
            if !on_disk {
                std::fs::write(dest.join(format!("{new}.docs")), b"d").unwrap();
                atts.push(format!("{new}.docs"));
            }
        }
        let second = store.finish_save(p, &atts, None, None).unwrap();
        assert!(second > first);
        let saved = Store::open(&dest).unwrap();
        // another index under the same counters: a handle of the first save must not take it
        // for the same (its writer would commit into it)
        assert_ne!(saved.snapshot().uuid(), uuid);
        assert_eq!(state(&saved.snapshot()), state(&store.snapshot()));
        // Only the second save's files remain, under new names.
        let files = names(&dest);
        assert!(files.iter().all(|f| !f.starts_with("seg-000001.") && !f.starts_with("manifest-000001")), "{files:?}");
        if on_disk {
            std::fs::remove_dir_all(&src_dir).unwrap();
        }
        std::fs::remove_dir_all(&dest).unwrap();
    }
    let store = Store::create(Some(&src_dir), StoreConfig::default()).unwrap();
    assert!(store.save_copy(&src_dir).is_err());
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("thesis.tex"), b"x").unwrap();
    assert!(store.save_copy(&dest).unwrap_err().to_string().contains("thesis.tex"));
    // Another program's CURRENT (LevelDB's) is not an index's: nothing is written there.
    let db = tmp.path().join("leveldb");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    std::fs::write(db.join("MANIFEST-000001"), b"x").unwrap();
    let err = store.save_copy(&db).unwrap_err().to_string();
    assert!(err.contains("CURRENT file that is not a sparsedex index's"), "{err}");
    assert_eq!(names(&db), vec!["CURRENT".to_string(), "MANIFEST-000001".to_string()]);
    assert_eq!(std::fs::read(db.join("CURRENT")).unwrap(), b"MANIFEST-000001\n");
}

/// Readers opening a directory while it is saved over again and again always get a whole
/// save (the old or the new), never an error.
#[test]
fn readers_never_fail_during_re_saves() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let store = Store::create(None, StoreConfig::default()).unwrap();
    store.stage_add(csr(&docs(300, 5, false)), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    store.save_copy(&dest).unwrap();
    let want = state(&store.snapshot());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut opened = 0;
            while !stop.load(Ordering::Relaxed) {
                let st = Store::open(&dest).unwrap();
                assert_eq!(state(&st.snapshot()), want);
                opened += 1;
            }
            opened
        });
        for _ in 0..30 {
            store.save_copy(&dest).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
}

#[test]
fn string_ids_and_bad_input() {
    let store = Store::create(None, StoreConfig { vocab: Some(100), ..StoreConfig::default() }).unwrap();
    let d = (vec![0u64, 1, 2], vec![5u32, 99], vec![1.0f32, 2.0]);
    let s: Vec<String> = vec!["a".into(), "é".into()];
    store.stage_add(csr(&d), IdsInput::Str(&s), None, false).unwrap();
    assert!(store.stage_add(csr(&d), IdsInput::None, None, false).unwrap_err().to_string().contains("string ids"));
    let bad = (vec![0u64, 1], vec![100u32], vec![1.0f32]);
    let err = store.stage_add(csr(&bad), IdsInput::Str(&["b".into()]), None, false).unwrap_err().to_string();
    assert!(err.contains("document 0") && err.contains("vocabulary size 100"), "{err}");
    let dup: Vec<String> = vec!["z".into(), "z".into()];
    assert!(store.stage_add(csr(&d), IdsInput::Str(&dup), None, false).unwrap_err().to_string().contains("duplicate"));
    assert!(store.stage_add(csr(&d), IdsInput::Str(&s), Some(&[1, 2]), false).is_err()); // lengths: BM25 only
    store.finish_commit(&[], None).unwrap();
    let snap = store.snapshot();
    assert_eq!(snap.locate(Id::Str("é")), Some((0, snap.segments()[0].index().locate(Id::Str("é")).unwrap())));
    assert!(Store::create(None, StoreConfig { max_weight: Some(-1.0), ..StoreConfig::default() }).is_err());
    assert!(Store::create(None, StoreConfig { bm25: Some((1.2, 2.0)), ..StoreConfig::default() }).is_err());
    let bm = Store::create(None, StoreConfig { bm25: Some((1.2, 0.75)), ..StoreConfig::default() }).unwrap();
    let frac = (vec![0u64, 1], vec![1u32], vec![1.5f32]);
    assert!(bm.stage_add(csr(&frac), IdsInput::None, None, false).unwrap_err().to_string().contains("whole number"));
    let _ = DocSet::all(3);
    let _: Option<&Index> = None;
}

/// The store's document order applies at commit and at merge and is kept on disk: the order a
/// commit reports is the builder's for that mode (the identity for `none`), merged segments
/// are in the order [`crate::index::merge`] gives with the mode, and results by id agree.
#[test]
fn reorder_applies_at_commit_and_merge_and_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let small_bp = Reorder::Bp(crate::reorder::BpOptions { leaf_size: 2, align: 4, ..Default::default() });
    let mut states = Vec::new();
    for (i, reorder) in [Reorder::None, Reorder::Signature, Reorder::bp(), small_bp].into_iter().enumerate() {
        let dir = tmp.path().join(format!("r{i}"));
        let store = Store::create(Some(&dir), StoreConfig { reorder, ..StoreConfig::default() }).unwrap();
        let mut orders = Vec::new();
        for s in 0..3i64 {
            let d = docs(150, s as u64 + 11, false);
            store.stage_add(csr(&d), IdsInput::Int(&ids(s * 150..s * 150 + 150)), None, false).unwrap();
            let p = store.prepare_commit().unwrap().unwrap();
            // The builder's order for this mode (same scale: the first commit fixes it); BP
            // becomes the signature order in segments this small (segment_reorder).
            let scale = store.snapshot().settings().scale;
            let q = Quantization::U8 { scale: if s == 0 { None } else { scale } };
            let opts = BuildOptions {
                n_terms: None,
                quantization: q,
                store_vectors: true,
                reorder: segment_reorder(reorder, 150),
            };
            let want = build_with(csr(&d), IdsInput::Int(&ids(s * 150..s * 150 + 150)), None, &opts).unwrap().order;
            assert_eq!(p.order, want, "{reorder:?}");
            orders.push(p.order.clone());
            store.finish_commit(&[], None).unwrap();
        }
        if reorder == Reorder::None {
            assert!(orders.iter().all(|o| o.iter().enumerate().all(|(i, &r)| i as u32 == r)));
        } else {
            assert!(orders.iter().any(|o| o.iter().enumerate().any(|(i, &r)| i as u32 != r)));
        }
        let snap = store.snapshot();
        let names: Vec<String> = snap.segments().iter().map(|s| s.name().to_string()).collect();
        let members: Vec<(&Index, Option<&DocSet>)> = snap.segments().iter().map(|s| (s.index(), None)).collect();
        let q = Quantization::U8 { scale: snap.settings().scale };
        let merge_order = segment_reorder(reorder, 450);
        // A merge concatenates its members (their postings share the store's grid) ...
        let want = crate::index::merge(
            &members,
            &crate::index::MergeOptions { quantization: Some(q), reorder: Reorder::None },
        )
        .unwrap();
        assert!(want.concatenated);
        let prepared = store.merge(&names).unwrap();
        assert_eq!(prepared.origin, want.origin, "{reorder:?}");
        // ... streamed into its file: the bytes of the same merge made in memory ...
        let in_memory = crate::index::merge::merge_deferring_order(&members, Some(q), merge_order).unwrap();
        let written = std::fs::read(dir.join(super::files::sdx_name(&prepared.name))).unwrap();
        assert!(written == in_memory.index.image_bytes(), "{reorder:?}");
        store.finish_merge(prepared, &[]).unwrap().unwrap();
        // ... marked as in its members' order when the store reorders; too small for a job to
        // be planned, a reorder job run anyway gives the store's order.
        let snap = store.snapshot();
        let merged = &snap.segments()[0];
        assert_eq!(merged.index().view().members_order, reorder.is_some());
        assert!(store.plan_reorders().is_empty());
        let want = crate::index::merge(
            &[(merged.index(), None)],
            &crate::index::MergeOptions { quantization: Some(q), reorder: merge_order },
        )
        .unwrap()
        .origin;
        let prepared = store.reorder(merged.name()).unwrap();
        assert_eq!(prepared.origin, want, "{reorder:?}");
        store.finish_merge(prepared, &[]).unwrap().unwrap();
        assert!(!store.snapshot().segments()[0].index().view().members_order);
        let reopened = Store::open(&dir).unwrap();
        let snap = reopened.snapshot();
        // Custom BP options are recorded as BP with its default options.
        let kept = if matches!(reorder, Reorder::Bp(_)) { Reorder::bp() } else { reorder };
        assert_eq!(snap.settings().reorder, kept);
        assert_eq!(snap.segments().len(), 1);
        states.push((state(&snap), queries().iter().map(|q| hits(&snap, q, 10, Algorithm::Auto)).collect::<Vec<_>>()));
    }
    for (st, hs) in &states[1..] {
        assert_eq!(st, &states[0].0);
        for (a, b) in hs.iter().zip(&states[0].1) {
            same_hits(a, b);
        }
    }
    assert!(Store::create(
        None,
        StoreConfig {
            reorder: Reorder::Bp(crate::reorder::BpOptions { leaf_size: 0, ..Default::default() }),
            ..StoreConfig::default()
        }
    )
    .unwrap_err()
    .to_string()
    .contains("leaf_size"));
}

/// Reorder jobs: a merged segment of at least BP_MIN_DOCS live documents in a store that
/// orders its segments is planned for one; the job rebuilds it in the store's order, keeps
/// the deletions made while it ran, survives a reopen, and is dropped when its segment is
/// merged away meanwhile. Results never change.
#[test]
fn reorder_jobs_rebuild_large_merged_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let store =
        Store::create(Some(&dir), StoreConfig { reorder: Reorder::Signature, ..StoreConfig::default() }).unwrap();
    let per = 12_000i64;
    for s in 0..3i64 {
        let d = docs(per as usize, s as u64 + 3, false);
        store.stage_add(csr(&d), IdsInput::Int(&ids(s * per..(s + 1) * per)), None, false).unwrap();
        store.finish_commit(&[], None).unwrap();
    }
    assert!(store.plan_reorders().is_empty());
    let names: Vec<String> = store.snapshot().segments().iter().map(|s| s.name().to_string()).collect();
    let p = store.merge(&names).unwrap();
    store.finish_merge(p, &[]).unwrap().unwrap();
    let snap = store.snapshot();
    let merged = snap.segments()[0].name().to_string();
    assert_eq!(store.plan_reorders(), vec![merged.clone()]);
    // Deletions while the job runs are carried over.
    let job = store.reorder(&merged).unwrap();
    store.stage_delete(IdsInput::Int(&[5, per + 7, 2 * per + 9]), false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let deleted_state = state(&store.snapshot());
    let before: Vec<_> = queries().iter().map(|q| hits(&store.snapshot(), q, 10, Algorithm::Auto)).collect();
    store.finish_merge(job, &[]).unwrap().unwrap();
    let snap = store.snapshot();
    assert_eq!(snap.segments().len(), 1);
    assert!(!snap.segments()[0].index().view().members_order);
    assert_eq!(state(&snap), deleted_state);
    assert!(store.plan_reorders().is_empty());
    let reopened = Store::open(&dir).unwrap();
    assert!(reopened.plan_reorders().is_empty());
    assert_eq!(state(&reopened.snapshot()), deleted_state);
    for (q, b) in queries().iter().zip(&before) {
        same_hits(&hits(&reopened.snapshot(), q, 10, Algorithm::Auto), b);
    }
    // A job whose segment is merged away meanwhile is dropped.
    let d = docs(100, 99, false);
    store.stage_add(csr(&d), IdsInput::Int(&ids(10 * per..10 * per + 100)), None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let p = store.merge(&store.plan_merge_to(1)).unwrap();
    store.finish_merge(p, &[]).unwrap().unwrap();
    let name = store.plan_reorders()[0].clone();
    let job = store.reorder(&name).unwrap();
    store.stage_add(csr(&docs(50, 98, false)), IdsInput::Int(&ids(11 * per..11 * per + 50)), None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let p = store.merge(&store.plan_merge_to(1)).unwrap();
    store.finish_merge(p, &[]).unwrap().unwrap();
    assert_eq!(store.finish_merge(job, &[]).unwrap(), None);
    assert_eq!(store.snapshot().segments().len(), 1);
}

#[test]
fn reserved_int_ids_are_committed_and_never_given_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(LOCK), b"pid 1").unwrap();
    let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
    let a = docs(10, 1, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    assert_eq!(store.next_int_id(), 10);
    store.reserve_int_ids(5).unwrap(); // below: nothing to commit
    assert!(!store.has_staged());
    assert!(store.reserve_int_ids(-1).unwrap_err().to_string().contains("at least 0"));
    store.reserve_int_ids(100).unwrap(); // alone, it is a change to commit
    assert!(store.has_staged() && store.next_int_id() == 100);
    let g = store.snapshot().generation();
    assert_eq!(store.finish_commit(&[], None).unwrap(), g + 1);
    assert_eq!(Store::open(&dir).unwrap().next_int_id(), 100);
    store.stage_add(csr(&docs(3, 2, false)), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    let got: Vec<i64> = state(&store.snapshot()).keys().copied().filter(|&i| i >= 10).collect();
    assert_eq!(got, vec![100, 101, 102]);
    // a rollback forgets a reservation
    store.reserve_int_ids(1000).unwrap();
    store.rollback();
    assert_eq!(store.next_int_id(), 103);
}

#[test]
fn small_bp_segments_get_the_signature_order() {
    assert_eq!(segment_reorder(Reorder::bp(), BP_MIN_DOCS - 1), Reorder::Signature);
    assert_eq!(segment_reorder(Reorder::bp(), BP_MIN_DOCS), Reorder::bp());
    for r in [Reorder::None, Reorder::Signature] {
        assert_eq!(segment_reorder(r, 10), r);
    }
    // a small commit of a BP store: its order is the signature order of the staged rows
    let store = Store::create(None, StoreConfig::default()).unwrap();
    let a = docs(500, 4, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    let p = store.prepare_commit().unwrap().unwrap();
    assert_eq!(p.order, crate::index::build::similarity_order(csr(&a), None).unwrap());
}

fn words(first: u64, n: u64) -> Vec<String> {
    (first..first + n).map(|i| format!("w{i}é")).collect()
}

#[test]
fn the_vocabulary_file_is_appended_per_commit_and_read_as_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
    assert_eq!(store.snapshot().vocabulary_len(), None);
    store.stage_add(csr(&docs(30, 1, false)), IdsInput::None, None, false).unwrap();
    store.stage_terms(0, words(0, 100)).unwrap();
    store.finish_commit(&[], None).unwrap();
    let first = store.snapshot().settings().vocabulary.clone().unwrap();
    assert_eq!(first.n_terms, 100);
    let reader = Store::open(&dir).unwrap();
    // Appending: the same file grows; the manifest records the longer prefix.
    for c in 1..4u64 {
        store.stage_add(csr(&docs(5, 10 + c, false)), IdsInput::None, None, false).unwrap();
        // Only the committed count is accepted as the first id.
        assert!(matches!(store.stage_terms(7, words(7, 1)), Err(Error::Conflict(_))));
        store.stage_terms(100 * c, words(100 * c, 100)).unwrap();
        store.finish_commit(&[], None).unwrap();
    }
    let last = store.snapshot().settings().vocabulary.clone().unwrap();
    assert_eq!((last.file.name.as_str(), last.n_terms), (first.file.name.as_str(), 400));
    assert_eq!(std::fs::metadata(dir.join(&last.file.name)).unwrap().len(), last.file.size);
    // A merge commit keeps it; terms staged then go with whichever commit comes first.
    let names_now: Vec<String> = store.snapshot().segments().iter().map(|s| s.name().to_string()).collect();
    store.stage_terms(400, words(400, 1)).unwrap();
    let p = store.merge(&names_now).unwrap();
    store.finish_merge(p, &[]).unwrap();
    assert_eq!(store.snapshot().vocabulary_len(), Some(401));
    // The reader still reads its own commit's 100 terms, then moves on.
    assert_eq!(reader.snapshot().vocabulary(0).unwrap(), words(0, 100));
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.snapshot().vocabulary(398).unwrap(), words(398, 3));
    assert_eq!(Store::open(&dir).unwrap().snapshot().vocabulary(0).unwrap(), words(0, 401));
    // Rolled back with the writer's end; nothing staged, nothing appended.
    store.stage_terms(401, words(401, 5)).unwrap();
    store.end_write();
    store.begin_write().unwrap();
    store.stage_add(csr(&docs(2, 99, false)), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    assert_eq!(store.snapshot().vocabulary_len(), Some(401));
    // A copy gets a vocabulary file of its own, whole; the old file of a re-saved
    // destination is collected.
    let dest = tmp.path().join("copy");
    store.save_copy(&dest).unwrap();
    store.stage_terms(401, words(401, 2)).unwrap();
    store.stage_add(csr(&docs(2, 98, false)), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    store.save_copy(&dest).unwrap();
    let copy = Store::open(&dest).unwrap().snapshot();
    assert_eq!(copy.vocabulary(0).unwrap(), words(0, 403));
    let vocab_files: Vec<String> = names(&dest).into_iter().filter(|n| n.starts_with("vocab-")).collect();
    assert_eq!(vocab_files, vec![copy.settings().vocabulary.as_ref().unwrap().file.name.clone()]);
    // An in-memory store's copy takes the terms it is given.
    let mem = Store::create(None, StoreConfig::default()).unwrap();
    mem.stage_add(csr(&docs(3, 5, false)), IdsInput::None, None, false).unwrap();
    mem.finish_commit(&[], None).unwrap();
    let mdest = tmp.path().join("mem-copy");
    let p = mem.prepare_save(&mdest).unwrap();
    mem.finish_save(p, &[], None, Some(&words(0, 3))).unwrap();
    assert_eq!(Store::open(&mdest).unwrap().snapshot().vocabulary(0).unwrap(), words(0, 3));
}

#[test]
fn a_damaged_vocabulary_file_is_a_corruption_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
    store.stage_add(csr(&docs(10, 1, false)), IdsInput::None, None, false).unwrap();
    store.stage_terms(0, words(0, 50)).unwrap();
    store.finish_commit(&[], None).unwrap();
    let name = store.snapshot().settings().vocabulary.clone().unwrap().file.name;
    drop(store);
    let path = dir.join(&name);
    let good = std::fs::read(&path).unwrap();
    // Truncated: opening fails.
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    let e = Store::open(&dir).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains(&name), "{e}");
    // Changed: reading the terms fails.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let e = Store::open(&dir).unwrap().snapshot().vocabulary(0).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains(&name), "{e}");
    // Missing.
    std::fs::remove_file(&path).unwrap();
    let e = Store::open(&dir).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)) && e.to_string().contains("missing"), "{e}");
}

#[test]
fn calibration_files_live_and_die_with_their_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    std::fs::create_dir(&dir).unwrap();
    let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
    let a = docs(50, 3, false);
    store.stage_add(csr(&a), IdsInput::None, None, false).unwrap();
    store.prepare_commit().unwrap();
    // The calibration file's name is reserved: not an attachment.
    std::fs::write(dir.join("seg-000001.cal"), b"x").unwrap();
    let err = store.finish_commit(&["seg-000001.cal".to_string()], None).unwrap_err().to_string();
    assert!(err.contains("reserves"), "{err}");
    store.finish_commit(&[], None).unwrap();
    // A live segment's calibration file is kept by garbage collection ...
    store.collect_garbage().unwrap();
    assert!(dir.join("seg-000001.cal").exists());
    // ... and collected with its segment.
    let b = docs(50, 4, false);
    store.stage_add(csr(&b), IdsInput::None, None, false).unwrap();
    store.prepare_commit().unwrap();
    store.finish_commit(&[], None).unwrap();
    let p = store.merge(&["seg-000001".to_string(), "seg-000002".to_string()]).unwrap();
    store.finish_merge(p, &[]).unwrap().unwrap();
    store.collect_garbage().unwrap();
    assert!(!dir.join("seg-000001.cal").exists());
}

/// A CURRENT that is not a regular file is never opened (a FIFO would block forever,
/// breaker36): opening the directory is a corrupt-index error, and a save into it refuses.
#[cfg(unix)]
#[test]
fn a_current_that_is_not_a_file_is_refused_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(None, StoreConfig::default()).unwrap();
    store.stage_add(csr(&docs(10, 5, false)), IdsInput::None, None, false).unwrap();
    store.finish_commit(&[], None).unwrap();
    for (name, make) in [
        (
            "fifo",
            (|p: &Path| assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success())) as fn(&Path),
        ),
        ("dir", |p: &Path| std::fs::create_dir(p).unwrap()),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        make(&dir.join(CURRENT));
        let err = Store::open(&dir).err().expect("refused").to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = store.save_copy(&dir).unwrap_err().to_string();
        assert!(err.contains("not a sparsedex index's"), "{err}");
        assert_eq!(names(&dir), vec![CURRENT.to_string()]);
    }
}

/// Copy every file of `from` into `to`, over files of the same name (as `cp -r from/. to/`
/// does: in place, same inode), leaving out `skip`.
fn copy_into(from: &Path, to: &Path, skip: &[&str]) {
    for e in std::fs::read_dir(from).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !skip.contains(&name.as_str()) {
            std::fs::write(to.join(&name), std::fs::read(from.join(&name)).unwrap()).unwrap();
        }
    }
}

/// Two copies of one index (same uuid) that diverged by one commit each: `ix` and `bk`, each
/// at generation 3 with a `seg-000002` of its own (of `n_ix` and `n_bk` documents).
fn diverged_copies(tmp: &Path, n_ix: usize, n_bk: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let (ix, bk) = (tmp.join("ix"), tmp.join("bk"));
    std::fs::create_dir(&ix).unwrap();
    let s = Store::create(Some(&ix), StoreConfig::default()).unwrap();
    s.stage_add(csr(&docs(50, 1, false)), IdsInput::None, None, false).unwrap();
    s.finish_commit(&[], None).unwrap();
    std::fs::create_dir(&bk).unwrap();
    copy_into(&ix, &bk, &[]);
    for (dir, n, seed, first) in [(&ix, n_ix, 2, 1000), (&bk, n_bk, 3, 2000)] {
        let s = Store::open(dir).unwrap();
        s.stage_add(csr(&docs(n, seed, false)), IdsInput::Int(&ids(first..first + n as i64)), None, false).unwrap();
        assert_eq!(s.finish_commit(&[], None).unwrap(), 3);
    }
    (ix, bk)
}

#[test]
fn a_writer_refuses_to_commit_over_files_copied_into_its_directory() {
    // helper-88: a backup copied into the directory of an open writer (`cp -r bk/. ix/`, its
    // LOCK left out) between add and commit: the commit recorded the writer's checksums over
    // the backup's files, and the index could not be opened again.
    for skip in [&[][..], &[CURRENT, "manifest-000003"][..]] {
        let tmp = tempfile::tempdir().unwrap();
        let (ix, bk) = diverged_copies(tmp.path(), 30, 40);
        let w = Store::open(&ix).unwrap();
        w.stage_add(csr(&docs(5, 9, false)), IdsInput::Int(&ids(5000..5005)), None, false).unwrap();
        copy_into(&bk, &ix, skip);
        let err = w.finish_commit(&[], None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Conflict(_)), "{msg}");
        if skip.is_empty() {
            assert!(msg.contains("CURRENT was replaced"), "{msg}");
        } else {
            assert!(msg.contains("seg-000002.sdx has another size"), "{msg}");
        }
        assert!(w.has_staged(), "the staged changes stay");
        // Nothing was committed: the directory holds what the copy left.
        let now = Store::open(&ix).map(|s| s.snapshot().generation);
        if skip.is_empty() {
            assert_eq!(state(&Store::open(&ix).unwrap().snapshot()), state(&Store::open(&bk).unwrap().snapshot()));
        } else {
            assert!(matches!(now, Err(Error::Corrupt(_))), "{now:?}"); // the copy's doing, not the writer's
        }
    }
}

#[test]
fn a_writer_refuses_a_same_size_rewrite_and_a_reader_reloads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (ix, bk) = diverged_copies(tmp.path(), 30, 30);
    let w = Store::open(&ix).unwrap();
    let reader = Store::open(&ix).unwrap();
    let before = state(&reader.snapshot());
    w.stage_add(csr(&docs(5, 9, false)), IdsInput::Int(&ids(5000..5005)), None, false).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30)); // past the file times' granularity
    let (a, b) = (std::fs::read(ix.join("seg-000002.sdx")).unwrap(), std::fs::read(bk.join("seg-000002.sdx")).unwrap());
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
    std::fs::write(ix.join("seg-000002.sdx"), &b).unwrap();
    let msg = w.finish_commit(&[], None).unwrap_err().to_string();
    assert!(msg.contains("seg-000002.sdx was rewritten (other bytes"), "{msg}");
    // The reader's refresh no longer keeps the mapping of a file rewritten under it: it loads
    // the commit again, each file checked against its record (here: the manifest's checksum
    // of the file CURRENT still names no longer holds: a corrupt directory, said so).
    let err = reader.refresh().unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)) && err.to_string().contains("seg-000002.sdx"), "{err}");
    // Putting the bytes back makes the directory whole again: the reader finds nothing new,
    // and the writer commits.
    std::fs::write(ix.join("seg-000002.sdx"), &a).unwrap();
    assert!(!reader.refresh().unwrap());
    assert_eq!(state(&reader.snapshot()), before);
    assert_eq!(w.finish_commit(&[], None).unwrap(), 4);
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.snapshot().n_live(), before.len() as u64 + 5);
}

/// helper-117: a same-size rewrite that keeps the modification time (`cp -p`, `rsync -a`) went
/// unseen (the stamp held size and mtime only): a reader's searches read another index's bytes
/// and its refresh() said nothing, a writer committed over it. The stamp holds the inode and
/// the ctime too; a rename over the file with the times kept is seen as well.
#[cfg(unix)]
#[test]
fn a_same_size_rewrite_that_keeps_the_modification_time_is_seen() {
    for rename in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (ix, bk) = diverged_copies(tmp.path(), 30, 30);
        let w = Store::open(&ix).unwrap();
        let reader = Store::open(&ix).unwrap();
        w.stage_add(csr(&docs(5, 9, false)), IdsInput::Int(&ids(5000..5005)), None, false).unwrap();
        let path = ix.join("seg-000002.sdx");
        let (a, b) = (std::fs::read(&path).unwrap(), std::fs::read(bk.join("seg-000002.sdx")).unwrap());
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30)); // past the file times' granularity
        let target = if rename { ix.join("copy.tmp") } else { path.clone() };
        std::fs::write(&target, &b).unwrap();
        std::fs::File::options().write(true).open(&target).unwrap().set_modified(mtime).unwrap();
        if rename {
            std::fs::rename(&target, &path).unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        let how = if rename { "seg-000002.sdx was replaced" } else { "seg-000002.sdx was rewritten" };
        let changed = reader.changed_file().expect("the rewrite is seen");
        assert!(changed.starts_with(how), "{changed}");
        let msg = w.finish_commit(&[], None).unwrap_err().to_string();
        assert!(msg.contains(how), "{msg}");
        let err = reader.refresh().unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)) && err.to_string().contains("seg-000002.sdx"), "{err}");
    }
}

/// A ctime moved by something that leaves the bytes alone (a hard link made and removed, a
/// chmod) reads the file once and keeps it: no change reported, nothing reloaded.
#[cfg(unix)]
#[test]
fn a_ctime_moved_without_new_bytes_is_no_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (ix, _bk) = diverged_copies(tmp.path(), 30, 30);
    let reader = Store::open(&ix).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let path = ix.join("seg-000002.sdx");
    std::fs::hard_link(&path, ix.join("extra-link")).unwrap();
    std::fs::remove_file(ix.join("extra-link")).unwrap();
    assert_eq!(reader.changed_file(), None);
    assert!(!reader.refresh().unwrap());
}

/// An attachment replaced by a directory is "not a regular file", not a size mismatch
/// (helper-138: "4096 bytes, the manifest records 450560 (truncated ...)").
#[test]
fn an_attachment_that_is_a_directory_is_named_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ix");
    std::fs::create_dir(&dir).unwrap();
    let store = Store::create(Some(&dir), StoreConfig::default()).unwrap();
    store.stage_add(csr(&docs(20, 5, false)), IdsInput::None, None, false).unwrap();
    store.prepare_commit().unwrap().unwrap();
    std::fs::write(dir.join("seg-000001.docs"), b"documents").unwrap();
    store.finish_commit(&["seg-000001.docs".to_string()], None).unwrap();
    drop(store);
    std::fs::remove_file(dir.join("seg-000001.docs")).unwrap();
    std::fs::create_dir(dir.join("seg-000001.docs")).unwrap();
    let err = Store::open(&dir).err().expect("refused").to_string();
    assert!(err.contains("seg-000001.docs: not a regular file (an attachment of segment seg-000001)"), "{err}");
}
