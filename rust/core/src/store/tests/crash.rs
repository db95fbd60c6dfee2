//! Crash safety: a failure injected at every file-system step of a commit, a merge and a
//! save (a simulated crash: nothing after it reaches the disk, not even clean-up; or a plain
//! I/O error the store must survive) leaves a directory that opens as the old state or the new
//! one, with foreign files and LOCK untouched; the next writer collects the leftovers and
//! commits again without reusing a name.

use super::*;
use crate::fs::failpoint::{self, Mode};
use std::collections::BTreeMap;

const FOREIGN: [&str; 4] = ["LOCK", "notes.txt", "seg-notes", ".notes.tmp-1-1"];

/// What a reader sees: generation, segments (sizes), live documents and the vocabulary.
fn fingerprint(snap: &Snapshot) -> (u64, Vec<u32>, State, Vec<String>) {
    let vocab = snap.vocabulary(0).unwrap_or_else(|e| panic!("the vocabulary: {e}"));
    (snap.generation(), snap.segments().iter().map(|s| s.n_live).collect(), state(snap), vocab)
}

/// Terms `t<first> ..` (`n` of them).
fn terms(first: u64, n: u64) -> Vec<String> {
    (first..first + n).map(|i| format!("t{i}")).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn foreign(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    FOREIGN.iter().map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap())).collect()
}

/// Every file of a writer-collected directory is referenced, ours by name, or foreign.
fn check_clean(dir: &Path) {
    let store = Store::open(dir).unwrap();
    store.begin_write().unwrap();
    let snap = store.snapshot();
    let mut keep: Vec<String> = vec![CURRENT.into(), files::manifest_name(snap.generation())];
    keep.extend(snap.settings().vocabulary.iter().map(|v| v.file.name.clone()));
    for s in snap.segments() {
        keep.extend(s.data.sdx.iter().chain(&s.data.attachments).chain(&s.deletions).map(|r| r.name.clone()));
    }
    keep.extend(FOREIGN.iter().map(|s| s.to_string()));
    keep.sort();
    assert_eq!(names(dir), keep);
    // The recovered writer commits again, under a new name.
    let before: Vec<String> = names(dir);
    let d = docs(3, 99, false);
    store.stage_add(csr(&d), IdsInput::Int(&[1_000_000, 1_000_001, 1_000_002]), None, false).unwrap();
    let n_terms = snap.vocabulary_len().unwrap_or(0);
    store.stage_terms(n_terms, terms(n_terms, 2)).unwrap();
    store.prepare_commit().unwrap();
    store.finish_commit(&[], None).unwrap();
    let last = store.snapshot().segments().last().unwrap().name().to_string();
    assert!(!before.iter().any(|f| f.starts_with(&format!("{last}."))), "{last} reused");
    // The vocabulary went on from the committed terms (a torn append was cut off).
    let want: Vec<String> = snap.vocabulary(0).unwrap().into_iter().chain(terms(n_terms, 2)).collect();
    assert_eq!(Store::open(dir).unwrap().snapshot().vocabulary(0).unwrap(), want);
}

/// Run `op` on a copy of `template` with a failure injected at every step, in both modes.
/// `op(store, dir, retry)` performs the operation (`retry`: again, after an injected error).
/// `writes_through_store`: `op` writes with the store it is given (not another one, as a save
/// into the directory does), so that store must know about a commit it made.
fn at_every_step(template: &Path, writes_through_store: bool, op: &dyn Fn(&Store, &Path, bool) -> Result<()>) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let old = fingerprint(&Store::open(template).unwrap().snapshot());
    let want_foreign = foreign(template);
    // Dry run: the steps, and the new state.
    let dry = tmp.path().join("dry");
    copy_dir(template, &dry);
    let store = Store::open(&dry).unwrap();
    store.begin_write().unwrap();
    failpoint::count();
    op(&store, &dry, false).unwrap();
    let (steps, _) = failpoint::disarm();
    let new = fingerprint(&Store::open(&dry).unwrap().snapshot());
    assert!(old != new, "the operation changed nothing");
    for (n, step) in steps.iter().enumerate() {
        for mode in [Mode::Crash, Mode::Error] {
            let dir = tmp.path().join(format!("run-{n}-{mode:?}"));
            copy_dir(template, &dir);
            let store = Store::open(&dir).unwrap();
            store.begin_write().unwrap();
            failpoint::arm(n, mode);
            let r = op(&store, &dir, false);
            let (_, crashed) = failpoint::disarm();
            assert_eq!(crashed, mode == Mode::Crash, "step {n} ({step}) was not reached");
            let now = fingerprint(
                &Store::open(&dir).unwrap_or_else(|e| panic!("step {n} ({step}), {mode:?}: {e}")).snapshot(),
            );
            assert!(now == old || now == new, "step {n} ({step}), {mode:?}: neither the old nor the new state");
            assert_eq!(foreign(&dir), want_foreign, "step {n} ({step}): a foreign file changed");
            if mode == Mode::Error && r.is_err() && now == new {
                // Failed after the commit point (the directory sync): done, and the store knows.
                if writes_through_store {
                    assert!(fingerprint(&store.snapshot()) == new, "step {n} ({step}): the store lags behind");
                }
            } else if mode == Mode::Error && r.is_err() {
                // The store survives the error: the operation goes through when tried again.
                op(&store, &dir, true).unwrap_or_else(|e| panic!("step {n} ({step}): retry failed: {e}"));
                let again = fingerprint(&Store::open(&dir).unwrap().snapshot());
                assert!(again.1 == new.1 && again.2 == new.2 && again.3 == new.3, "step {n} ({step}): retry");
            }
            drop(store);
            check_clean(&dir);
        }
    }
    steps.len()
}

/// A directory with two committed segments (one with deletions, one with an attachment) and
/// foreign files.
fn template(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(LOCK), "LOCK").unwrap();
    let store = Store::create(Some(dir), StoreConfig::default()).unwrap();
    for f in FOREIGN {
        std::fs::write(dir.join(f), f).unwrap();
    }
    store.stage_add(csr(&docs(60, 1, false)), IdsInput::None, None, false).unwrap();
    store.stage_terms(0, terms(0, 5)).unwrap();
    let p = store.prepare_commit().unwrap().unwrap();
    std::fs::write(dir.join(format!("{}.docs", p.name)), b"docs one").unwrap();
    store.finish_commit(&[format!("{}.docs", p.name)], None).unwrap();
    store.stage_add(csr(&docs(40, 2, false)), IdsInput::None, None, false).unwrap();
    store.stage_terms(5, terms(5, 3)).unwrap();
    store.finish_commit(&[], None).unwrap();
    store.stage_delete(IdsInput::Int(&[1, 2, 70]), false).unwrap();
    store.finish_commit(&[], None).unwrap();
}

#[test]
fn commit_survives_a_failure_at_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("t");
    template(&t);
    let op = |store: &Store, dir: &Path, retry: bool| -> Result<()> {
        if !retry {
            store.stage_add(csr(&docs(30, 3, false)), IdsInput::None, None, false)?;
            store.stage_add(csr(&docs(2, 4, false)), IdsInput::Int(&[5, 80]), None, true)?; // upserts
            store.stage_delete(IdsInput::Int(&[3, 75]), false)?;
            store.stage_terms(8, terms(8, 4))?;
            let p = store.prepare_commit()?.unwrap();
            std::fs::write(dir.join(format!("{}.docs", p.name)), b"new docs").unwrap();
        }
        let name =
            format!("{}.docs", crate::store::files::segment_name(store.next_segment.load(Ordering::Relaxed) - 1));
        store.finish_commit(&[name], Some("{\"v\":2}"))?;
        Ok(())
    };
    let steps = at_every_step(&t, true, &op);
    assert!(steps >= 10, "{steps} steps");
}

#[test]
fn commit_with_its_engine_file_written_first_survives_a_failure_at_every_step() {
    // `write_prepared` (the engine file written while the caller writes the attachments)
    // before `finish_commit`: the same guarantees at every step, and a retry after an error
    // (of either call) goes through.
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("t");
    template(&t);
    let op = |store: &Store, dir: &Path, retry: bool| -> Result<()> {
        if !retry {
            store.stage_add(csr(&docs(30, 3, false)), IdsInput::None, None, false)?;
            store.stage_delete(IdsInput::Int(&[3, 75]), false)?;
            let p = store.prepare_commit()?.unwrap();
            std::fs::write(dir.join(format!("{}.docs", p.name)), b"new docs").unwrap();
        }
        store.write_prepared()?;
        let name =
            format!("{}.docs", crate::store::files::segment_name(store.next_segment.load(Ordering::Relaxed) - 1));
        store.finish_commit(&[name], None)?;
        Ok(())
    };
    let steps = at_every_step(&t, true, &op);
    assert!(steps >= 10, "{steps} steps");
}

#[test]
fn finish_merge_survives_a_failure_at_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("t");
    template(&t);
    let op = |store: &Store, dir: &Path, _retry: bool| -> Result<()> {
        let names: Vec<String> = store.snapshot().segments().iter().map(|s| s.name().to_string()).collect();
        let p = store.merge(&names)?;
        std::fs::write(dir.join(format!("{}.docs", p.name)), b"merged docs").unwrap();
        let att = format!("{}.docs", p.name);
        store.finish_merge(p, &[att])?.unwrap();
        Ok(())
    };
    at_every_step(&t, true, &op);
}

#[test]
fn save_copy_over_an_earlier_save_survives_a_failure_at_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("t");
    template(&t);
    // The source: the template's store plus more documents.
    let src_dir = tmp.path().join("src");
    copy_dir(&t, &src_dir);
    let src = Store::open(&src_dir).unwrap();
    src.stage_add(csr(&docs(20, 9, false)), IdsInput::None, None, false).unwrap();
    src.finish_commit(&[], None).unwrap();
    let op = |_store: &Store, dir: &Path, _retry: bool| -> Result<()> { src.save_copy(dir).map(|_| ()) };
    at_every_step(&t, false, &op);
}
