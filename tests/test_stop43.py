"""Files copied into the directory of an open index (helper-88): a backup restored with
``cp -r backup/. ix/`` or ``rsync --exclude LOCK`` between a writer's ``add`` and its
``commit``. The commit recorded the writer's checksums over the backup's files and the index
could not be opened again; now the commit is refused and the directory keeps what the copy
left."""

from __future__ import annotations

import os
import shutil

import pytest

from sparsedex import SparseIndex
from sparsedex.errors import ConflictError


def _copy_into(src, dst, skip=()):
    """``cp -r src/. dst/``: every file written over the one of the same name, in place."""
    for name in os.listdir(src):
        if name not in skip:
            with open(os.path.join(src, name), "rb") as f, open(os.path.join(dst, name), "wb") as g:
                g.write(f.read())


@pytest.mark.parametrize("backup", ["same index", "another index"])
def test_a_commit_over_a_backup_copied_into_the_directory_is_refused(tmp_path, backup):
    ix, bk = tmp_path / "ix", tmp_path / "bk"
    base = [f"base{i}u common" for i in range(5)]
    x = SparseIndex("bm25", path=ix)
    x.add(base, ids=[f"b{i}" for i in range(5)])
    x.commit()
    x.close()
    if backup == "same index":
        shutil.copytree(ix, bk)
    else:
        with SparseIndex("bm25", path=bk) as y:
            y.add(base, ids=[f"b{i}" for i in range(5)])
            y.commit()
    with SparseIndex.open(bk) as y:
        y.add([f"bk{i}u common" for i in range(6)], ids=[f"k{i}" for i in range(6)])
        y.commit()
    os.unlink(bk / "LOCK")  # a backup tool that leaves lock files out
    with SparseIndex.open(ix) as y:
        y.add([f"ix{i}u common" for i in range(4)], ids=[f"i{i}" for i in range(4)])
        y.commit()
    h = SparseIndex.open(ix)
    h.add(["hnewu common"], ids=["hnew"])  # h holds the writer lock now
    _copy_into(bk, ix)
    with pytest.raises(ConflictError, match="CURRENT was replaced since this index read it"):
        h.commit()  # was: committed, and the index could not be opened again
    h.close()
    with SparseIndex.open(ix) as r:  # what the copy left: the backup, whole
        assert sorted(r.ids()) == sorted([f"b{i}" for i in range(5)] + [f"k{i}" for i in range(6)])
        assert [x.id for x in r.search("bk2u")] == ["k2"]


def test_a_commit_over_segment_files_copied_in_is_refused(tmp_path):
    """Only the segment files copied in (CURRENT and the manifests left out): the stamps of the
    files the writer read tell."""
    ix, bk = tmp_path / "ix", tmp_path / "bk"
    with SparseIndex("bm25", path=ix) as x:
        x.add(["base common"], ids=["b"])
        x.commit()
    shutil.copytree(ix, bk)
    for d, tag, n in [(ix, "ix", 4), (bk, "bk", 40)]:
        with SparseIndex.open(d) as y:
            y.add([f"{tag}{i}u common" for i in range(n)], ids=[f"{tag}{i}" for i in range(n)])
            y.commit()
    h = SparseIndex.open(ix)
    h.add(["hnewu common"], ids=["hnew"])
    _copy_into(bk, ix, skip=[n for n in os.listdir(bk) if not n.startswith("seg-")] + ["LOCK"])
    with pytest.raises(ConflictError, match=r"seg-000002\.\w+ (has another size|was rewritten)"):
        h.commit()
    h.close()


def test_statistics_with_df_zero_for_a_held_term_are_refused():
    """helper-88 MEDIUM: df 0 for a term documents of the index hold made search() return
    nothing, silently; explain() with a df at the top of the u64 range raised a raw
    OverflowError."""
    from sparsedex import Bm25Stats

    ix = SparseIndex("bm25")
    ix.add(["apple banana", "apple cherry cherry", "durian"], ids=[0, 1, 2])
    t = int(ix.collection_stats(["apple"]).terms[0])
    bad = Bm25Stats(3, 5, [t], [0])
    for call in (lambda: ix.search("apple", collection_stats=bad),
                 lambda: ix.search_batch(["durian", "apple"], collection_stats=Bm25Stats(
                     3, 5, [t, int(ix.collection_stats(["durian"]).terms[0])], [0, 1])),
                 lambda: ix.explain("apple", 0, collection_stats=bad)):
        with pytest.raises(ValueError, match=r"document frequency 0 for 'appl'.*which 2 document\(s\) of this index hold"):
            call()
    # df 0 for a term the index lacks is fine (it matches nothing here)
    other = ix.collection_stats(["apple", "zebra"])
    assert [h.id for h in ix.search("apple zebra", collection_stats=other)] == [0, 1]
    huge = Bm25Stats(2**64 - 1, 2**64 - 1, [t], [2**64 - 1])
    e = ix.explain("apple", 0, collection_stats=huge)
    assert e.score == pytest.approx(0.0, abs=1e-6)


def test_a_newline_added_to_the_lock_file_is_not_another_hold(tmp_path):
    """helper-88 LOW: an editor's final newline appended to LOCK made its holder refuse every
    commit ("overwritten while this writer held it"); another hold's text still refuses."""
    from sparsedex import IndexLockedError

    with SparseIndex(None, vocab_size=100, path=tmp_path / "ix") as h:
        h.add([{1: 1.0}], ids=["a"])
        h.commit()
        with open(tmp_path / "ix" / "LOCK", "ab") as f:
            f.write(b"\n")
        h.add([{2: 1.0}], ids=["b"])
        h.commit()
        text = (tmp_path / "ix" / "LOCK").read_bytes()
        (tmp_path / "ix" / "LOCK").write_bytes(text.replace(b"hold ", b"hold 0"))
        h.add([{3: 1.0}], ids=["c"])
        with pytest.raises(IndexLockedError, match="overwritten while this writer held it"):
            h.commit()


def test_a_search_over_files_rewritten_under_the_handle_says_so(tmp_path):
    """A backup copied over the files of an open index (in place, so the mapped bytes change;
    here the copy is larger, so no SIGBUS): the search met bytes its structure does not allow
    and reported "internal error (please report it)" (helper-88). It names the file now."""
    from sparsedex.errors import CorruptIndexError

    ix, bk = tmp_path / "ix", tmp_path / "bk"
    with SparseIndex("bm25", path=ix) as x:
        x.add([f"base{i}u common" for i in range(5)], ids=[f"b{i}" for i in range(5)])
        x.commit()
    shutil.copytree(ix, bk)
    with SparseIndex.open(ix) as x:
        x.add([f"ix{i}u common" for i in range(4)], ids=[f"i{i}" for i in range(4)])
        x.commit()
    with SparseIndex.open(bk) as x:
        x.add([f"bk{i}u common w{i % 50}" for i in range(3000)], ids=[f"k{i}" for i in range(3000)])
        x.commit()
    h = SparseIndex.open(ix)
    assert (bk / "seg-000002.sdx").stat().st_size > (ix / "seg-000002.sdx").stat().st_size
    _copy_into(bk, ix, skip=["LOCK"])
    errors = []
    for q in ["ix2u", "common", "base1u"]:
        try:
            h.search(q, k=3)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    assert errors, "the search read the rewritten bytes without noticing"
    for e in errors:
        assert isinstance(e, CorruptIndexError) and "seg-000002.sdx has another size under this open index" in str(e), e
    # get() of a document the handle's commit holds: it read KeyError (helper-90)
    with pytest.raises(CorruptIndexError, match="seg-000002.sdx has another size under this open index"):
        h.get("i1")
    h.close()


def test_an_engine_panic_prints_nothing_on_stderr(tmp_path):
    """The same search in a process of its own, SPARSEDEX_BACKTRACE unset: Rust's default panic
    report ("thread '<unnamed>' panicked at ...") was printed on stderr besides the exception
    that reports it (helper-90)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f'''
        import os, shutil
        from sparsedex import SparseIndex
        ix, bk = {str(tmp_path / "ix")!r}, {str(tmp_path / "bk")!r}
        with SparseIndex("bm25", path=ix) as x:
            x.add(["base common"], ids=["b"]); x.commit()
        shutil.copytree(ix, bk)
        with SparseIndex.open(ix) as x:
            x.add([f"ix{{i}}u common" for i in range(4)], ids=[f"i{{i}}" for i in range(4)]); x.commit()
        with SparseIndex.open(bk) as x:
            x.add([f"bk{{i}}u common w{{i % 50}}" for i in range(3000)], ids=[f"k{{i}}" for i in range(3000)]); x.commit()
        h = SparseIndex.open(ix)
        for n in os.listdir(bk):
            if n != "LOCK":
                with open(os.path.join(bk, n), "rb") as f, open(os.path.join(ix, n), "wb") as g:
                    g.write(f.read())
        for q in ["ix2u", "common"]:
            try:
                h.search(q)
            except Exception as e:
                print(type(e).__name__)
    ''')
    # RUST_BACKTRACE set (many Rust developers' shells, helper-111's too) prints nothing either;
    # SPARSEDEX_BACKTRACE asks for the report
    env = {k: v for k, v in os.environ.items() if k != "SPARSEDEX_BACKTRACE"}
    env["RUST_BACKTRACE"] = "1"
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "CorruptIndexError" in r.stdout, r.stdout
    assert "panicked" not in r.stderr, r.stderr
    again = script.replace(str(tmp_path / "ix"), str(tmp_path / "ix2")).replace(str(tmp_path / "bk"), str(tmp_path / "bk2"))
    r = subprocess.run([sys.executable, "-c", again], capture_output=True, text=True,
                       env={**env, "SPARSEDEX_BACKTRACE": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "CorruptIndexError" in r.stdout and "panicked" in r.stderr, (r.stdout, r.stderr)


def test_a_refused_commit_writes_nothing_over_a_restored_backup(tmp_path):
    """helper-90 HIGH: a backup written by save() (its own segment numbering) copied into the
    directory without LOCK while a writer had documents staged: the commit was refused, but
    only after it had written its new segment's files under a name the restored commit uses,
    and the restored index could not be opened any more. The directory is checked before any
    file is written now."""
    ix, work, bk = tmp_path / "ix", tmp_path / "work", tmp_path / "bk"
    w = SparseIndex(None, vocab_size=1000, path=ix)
    for i in range(3):
        w.add([{i * 10 + j: 1.0 + j} for j in range(50)], ids=[f"a{i}-{j}" for j in range(50)])
        w.commit()
    w.close()
    shutil.copytree(ix, work)
    with SparseIndex.open(work) as b:
        b.add([{900: 1.0}] * 30, ids=[f"b{j}" for j in range(30)])
        b.commit()
        b.delete(["a0-0", "a0-1"])
        b.commit()
        b.save(bk)
    with SparseIndex.open(bk) as r:
        want = sorted(r.ids())
    h = SparseIndex.open(ix)
    h.add([{901: 2.0}] * 20, ids=[f"h{j}" for j in range(20)])
    _copy_into(bk, ix, skip=["LOCK"])
    with pytest.raises(ConflictError, match="CURRENT names manifest-000001, not the manifest-000004 this index read"):
        h.commit()
    h.close()
    with SparseIndex.open(ix) as r:  # was: CorruptIndexError (seg-000004.sdx: ... bytes, the manifest records ...)
        assert sorted(r.ids()) == want
        assert [x.id for x in r.search({900: 1.0}, k=1)][0].startswith("b")


def test_default_ids_continue_from_commits_made_after_the_handle_opened(tmp_path):
    """helper-90 MEDIUM: a handle opened while another writer added, used after that writer
    closed: its add() numbered from its stale commit and was refused, "id 3 is already in the
    index (replace it with an upsert)", though no id was passed."""
    a = SparseIndex(None, vocab_size=100, path=tmp_path / "ix")
    a.add([{1: 1.0}] * 3)
    a.commit()
    b = SparseIndex.open(tmp_path / "ix")
    a.add([{2: 1.0}] * 2)
    a.commit()
    a.close()
    assert b.add([{3: 1.0}]) == [5]
    b.commit()
    assert sorted(b.ids()) == [0, 1, 2, 3, 4, 5]
    b.close()


def test_a_background_merge_error_keeps_its_class_and_names_rewritten_files(tmp_path):
    """helper-91: a background merge that read files rewritten under the handle reported
    "internal error (please report it)", and every merge error arrived as a plain
    SparsedexError (``except CorruptIndexError`` missed a corrupt member)."""
    from sparsedex.errors import CorruptIndexError, SparsedexError

    with SparseIndex(None, vocab_size=100, path=tmp_path / "ix") as h:
        h.add([{1: 1.0}], ids=["a"])
        h.commit()
        h._store._merge_error = CorruptIndexError("seg-000001.docs: checksum differs")
        with pytest.raises(CorruptIndexError, match="a background merge failed: CorruptIndexError: seg-000001"):
            h.wait_for_merges()
        h._store._merge_error = SparsedexError("internal error (please report it): index out of bounds")
        with pytest.raises(SparsedexError, match="internal error") as got:
            h.wait_for_merges()
        assert type(got.value) is SparsedexError  # no file changed: the engine's error as it was
        sdx = tmp_path / "ix" / "seg-000001.sdx"
        sdx.write_bytes(sdx.read_bytes() + b"\0" * 64)  # rewritten under the handle
        h._store._merge_error = SparsedexError("internal error (please report it): index out of bounds")
        with pytest.raises(CorruptIndexError, match=r"seg-000001\.sdx has another size under this open index"):
            h.wait_for_merges()
