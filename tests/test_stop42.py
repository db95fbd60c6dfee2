"""A writer handle whose directory was swapped for a *copy of the same index* that took other
commits since the handle opened it (a backup restored with ``cp -r``, a symbolic link switched
between two copies): the uuid is the same, so the stale-handle check lets it write, and its BM25
term dictionary, loaded from the other copy, must not be committed (helper-86 HIGH)."""

from __future__ import annotations

import os
import shutil

import pytest

from sparsedex import SparseIndex


def _ids(ix, q):
    return [h.id for h in ix.search(q, k=5)]


def _diverged(tmp_path):
    """X and Y: copies of one BM25 index (same uuid), each with one commit of its own terms."""
    x, y = tmp_path / "X", tmp_path / "Y"
    a = SparseIndex("bm25")
    a.add(["alpha bravo"], ids=["a0"])
    a.save(x)
    a.close()
    shutil.copytree(x, y)
    with SparseIndex.open(x) as w:
        w.add(["zulu xray"], ids=["x1"])
        w.commit()
    with SparseIndex.open(y) as w:
        w.add(["yankee whiskey"], ids=["y1"])
        w.commit()
    return x, y


def _check_y(y, late_words):
    r = SparseIndex.open(y)  # was: CorruptIndexError "term ... appears twice", or wrong words
    try:
        assert _ids(r, "whiskey") == ["y1"]
        assert _ids(r, "xray") == []  # X's term did not come along
        for w in late_words:
            assert "late" in _ids(r, w), w
        assert "late" not in _ids(r, "whiskey")
    finally:
        r.close()


@pytest.mark.parametrize("how", ["link", "restore"])
def test_a_stale_writer_on_a_diverged_copy_adds_with_the_committed_dictionary(tmp_path, how):
    x, y = _diverged(tmp_path)
    if how == "link":
        link = tmp_path / "L"
        os.symlink(x, link)
        w = SparseIndex.open(link)
        os.symlink(y, tmp_path / "L.tmp")
        os.replace(tmp_path / "L.tmp", link)
        target = y
    else:  # restore: X replaced by a copy of Y under the open handle
        w = SparseIndex.open(x)
        shutil.rmtree(x)
        shutil.copytree(y, x)
        target = x
    assert _ids(w, "zulu") == ["x1"]  # the handle still reads what it opened
    w.add(["victor zulu yankee"], ids=["late"])
    w.commit()
    assert _ids(w, "victor") == ["late"]
    assert _ids(w, "zulu") == ["late"]
    assert set(_ids(w, "yankee")) == {"late", "y1"}
    w.close()
    _check_y(target, ["victor", "zulu", "yankee"])


def test_a_stale_handle_that_only_deletes_does_not_append_its_terms(tmp_path):
    x, y = _diverged(tmp_path)
    with SparseIndex.open(x) as w:  # X's dictionary is longer than Y's committed one
        w.add(["one two three four five six"], ids=["x2"])
        w.commit()
    w = SparseIndex.open(x)
    shutil.rmtree(x)
    shutil.copytree(y, x)
    w.delete(["a0"])
    w.commit()
    w.close()
    with SparseIndex.open(x) as r:
        assert sorted(r.ids()) == ["y1"]
        assert _ids(r, "whiskey") == ["y1"]
        assert r.encoder.vocabulary.terms_from(0) == SparseIndex.open(y).encoder.vocabulary.terms_from(0)
        r.add(["six whiskey"], ids=["z"])  # a later writer's new term gets a fresh id
        r.commit()
        assert _ids(r, "six") == ["z"]


def test_a_writer_whose_dictionary_is_current_keeps_it(tmp_path):
    """The usual case: another writer committed more terms; the handle extends its dictionary
    (it is a prefix of the committed one) and keeps the same object."""
    ix = SparseIndex("bm25")
    ix.add(["alpha bravo"], ids=["a"])
    ix.save(tmp_path / "ix")
    ix.close()
    w = SparseIndex.open(tmp_path / "ix")
    vocab = w.encoder.vocabulary
    with SparseIndex.open(tmp_path / "ix") as o:
        o.add(["charlie delta"], ids=["c"])
        o.commit()
    w.add(["delta echo"], ids=["d"])
    assert w.encoder.vocabulary is vocab
    w.commit()
    assert sorted(_ids(w, "delta")) == ["c", "d"]
    w.close()


@pytest.mark.parametrize("target", ["file", "loop"])
def test_refresh_through_a_link_to_a_file_or_a_loop_says_no_index_is_there(tmp_path, target):
    """Not "corrupt index file": nothing is corrupt, the link names no directory (helper-86 LOW;
    serve shows this message as refresh_error)."""
    a = SparseIndex("bm25")
    a.add(["x y"], ids=["a"])
    a.save(tmp_path / "A")
    a.close()
    link = tmp_path / "L"
    os.symlink(tmp_path / "A", link)
    r = SparseIndex.open(link)
    if target == "file":
        (tmp_path / "f.txt").write_text("hi")
        dest = tmp_path / "f.txt"
    else:
        dest = tmp_path / "loop"
        os.symlink(dest, dest)
    os.remove(link)
    os.symlink(dest, link)
    with pytest.raises(FileNotFoundError, match="no index directory there"):
        r.refresh()
    assert _ids(r, "x") == ["a"]  # still reads what it has
    r.close()


def test_bm25_stats_that_contradict_themselves_are_refused():
    """A total length below a document frequency, or a length over no documents, gave finite
    but meaningless scores (average document length 0); statistics of a real index pass."""
    from sparsedex import Bm25Stats

    with pytest.raises(ValueError, match="term 1 is in 2 documents, but total_len .* is 0"):
        Bm25Stats(2, 0, [0, 1], [0, 2])
    with pytest.raises(ValueError, match="total_len 5 over n_docs 0"):
        Bm25Stats(0, 5, [], [])
    ix = SparseIndex("bm25")
    ix.add(["alpha bravo", "alpha charlie delta", "the"], ids=["a", "b", "c"])
    st = ix.collection_stats()
    again = Bm25Stats(st.n_docs, st.total_len, st.terms, st.df, words=st.words)
    assert again == st
    assert [h.id for h in ix.search("alpha bravo", k=2, collection_stats=again)] == ["a", "b"]


@pytest.mark.parametrize("op", ["merge", "delete"])
def test_a_handle_that_becomes_the_writer_searches_with_the_new_commits_dictionary(tmp_path, op):
    """merge() or delete() moves the handle to the newest commit: another writer's new words
    are found (they found nothing until the handle's next add, helper-87)."""
    p = tmp_path / "ix"
    ix = SparseIndex("bm25", path=p)
    ix.add(["alpha bravo", "charlie delta"], ids=["d0", "d1"])
    ix.commit()
    ix.close()
    h = SparseIndex.open(p)
    with SparseIndex.open(p) as w:
        w.add(["echo foxtrot"], ids=["d2"])
        w.commit()
    if op == "merge":
        h.merge()
    else:
        h.delete("d1")
    assert _ids(h, "echo") == ["d2"]
    assert sorted(_ids(h, "foxtrot alpha")) == ["d0", "d2"]
    assert [[x.id for x in hits] for hits in h.search_batch(["echo", "foxtrot"], k=3)] == [["d2"], ["d2"]]
    h.close()


def test_a_handle_that_merges_after_a_backup_was_restored_under_it(tmp_path):
    """The restored copy holds other words at the ids the handle knew: after merge() its
    searches use the restored dictionary (they returned other documents)."""
    x, y = _diverged(tmp_path)  # X: alpha bravo + zulu xray; Y: alpha bravo + yankee whiskey
    h = SparseIndex.open(x)
    shutil.rmtree(x)
    shutil.copytree(y, x)
    h.merge()
    assert _ids(h, "yankee") == ["y1"]
    assert _ids(h, "zulu") == []
    assert sorted(h.ids()) == ["a0", "y1"]
    h.close()


def test_a_backup_copied_into_the_directory_under_a_writer_is_refused_at_commit(tmp_path):
    """``cp -r backup/. ix/`` overwrites LOCK in place (same inode): the commit went through and
    recorded the writer's segment checksums over the backup's files (unopenable index,
    helper-87). Now the lock's content says another hold's: IndexLockedError, nothing
    committed, and the index opens as the backup."""
    import subprocess

    a, b = tmp_path / "ix", tmp_path / "backup"
    ix = SparseIndex(None, vocab_size=100, path=a)
    ix.add([{1: 1.0}], ids=["c0"])
    ix.commit()
    ix.close()
    shutil.copytree(a, b)
    for d, v in ((a, {2: 1.0}), (b, {3: 2.0})):
        with SparseIndex.open(d) as w:
            w.add([v, v], ids=[f"x{d.name}", f"y{d.name}"])
            w.commit()
    h = SparseIndex.open(a)
    h.add([{4: 1.0}], ids=["h0"])  # the writer: lock held, a document staged
    subprocess.run(["cp", "-r", f"{b}/.", f"{a}/"], check=True)
    from sparsedex import IndexLockedError

    with pytest.raises(IndexLockedError, match="was overwritten while this writer held it"):
        h.commit()
    h.close()
    with SparseIndex.open(a) as r:
        assert sorted(r.ids()) == ["c0", "xbackup", "ybackup"]


def test_a_writer_whose_directory_was_replaced_merges_into_a_lock_error(tmp_path):
    """A writer's directory replaced by a copy holding fewer documents: merge() raised an I/O
    error or 'corrupt' about files it never wrote; it names the replaced lock."""
    a, b = tmp_path / "ix", tmp_path / "backup"
    ix = SparseIndex("bm25", path=a)
    ix.add(["alpha bravo", "charlie"], ids=["c0", "c1"])
    ix.commit()
    ix.close()
    shutil.copytree(a, b)
    with SparseIndex.open(a) as w:
        w.add(["delta", "echo"], ids=["a0", "a1"])
        w.commit()
    with SparseIndex.open(b) as w:
        w.add(["foxtrot"], ids=["b0"])
        w.commit()
    h = SparseIndex.open(a)
    h.add(["golf"], ids=["h0"])
    h.commit()  # h is the writer now
    shutil.rmtree(a)
    shutil.copytree(b, a)
    from sparsedex import IndexLockedError

    with pytest.raises(IndexLockedError, match="deleted or replaced"):
        h.merge()
    h.close()
    with SparseIndex.open(a) as r:
        assert sorted(r.ids()) == ["b0", "c0", "c1"]


def test_a_lock_file_emptied_by_another_writers_attempt_does_not_refuse_the_holder(tmp_path):
    """filelock 3.x opened LOCK with O_TRUNC when trying to take it: a second writer's failed
    attempt empties the file; that is not a copy into the directory, and the holder commits."""
    p = tmp_path / "ix"
    w = SparseIndex(None, vocab_size=10, path=p)
    w.add([{1: 1.0}], ids=["a"])
    w.commit()
    (p / "LOCK").write_bytes(b"")  # as an O_TRUNC open does
    w.add([{2: 1.0}], ids=["b"])
    w.commit()
    (p / "LOCK").write_bytes(b"pid 1 on elsewhere (hold 0123456789abcdef)")  # a copy's text
    w.add([{3: 1.0}], ids=["c"])
    from sparsedex import IndexLockedError

    with pytest.raises(IndexLockedError, match="was overwritten"):
        w.commit()
    w.close()


def test_a_writer_checks_its_dictionary_by_checksum_not_term_by_term(tmp_path, monkeypatch):
    """The usual first write (the committed vocabulary grew, or did not change) reads only the
    new terms: comparing the whole dictionary cost 190 ms at 500k terms on every handle's
    first write; the checksum of the vocabulary file's prefix says the same in a few ms."""
    ix = SparseIndex("bm25")
    ix.add(["alpha bravo"], ids=["a"])
    ix.save(tmp_path / "ix")
    ix.close()
    w = SparseIndex.open(tmp_path / "ix")
    with SparseIndex.open(tmp_path / "ix") as o:
        o.add(["charlie delta"], ids=["c"])
        o.commit()
    reads = []
    real = type(w._store).vocabulary

    def spy(store, start=0):
        reads.append(start)
        return real(store, start)

    monkeypatch.setattr(type(w._store), "vocabulary", spy)
    w.add(["delta echo"], ids=["d"])
    assert reads == [2]  # only the two terms committed since it opened
    w.commit()
    assert sorted(_ids(w, "delta")) == ["c", "d"]
    w.close()
