"""A commit writes its segment's engine file (a Rust call, in a helper thread) while the
committing thread writes the documents file (SQLite): a failure of either leaves the last
commit as it was, raises in the committing thread, and the staged changes commit when tried
again."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import sparsedex.docs as docs_mod
from sparsedex import MergePolicy, SparseIndex


def _batch(ix, first: int, n: int = 200, seed: int = 0) -> None:
    r = np.random.default_rng(seed + first)
    ix.add([{int(t): 1.0 + (t % 7) for t in r.choice(5_000, 12, replace=False)} for _ in range(n)],
           ids=list(range(first, first + n)), payloads=[{"k": first + i, "pad": "x" * 300} for i in range(n)])


def _state(path):
    ix = SparseIndex.open(path)
    try:
        return len(ix), [ix.get(i).payload for i in (0, 150, 250, 399) if i < len(ix)]
    finally:
        ix.close()


class _FailingWrite:
    """The store's engine handle with ``write_prepared`` failing as on a full disk."""

    def __init__(self, core):
        self._core = core

    def __getattr__(self, name):
        if name == "write_prepared":
            def fail():
                raise OSError(errno.ENOSPC, "injected: no space writing the engine file")
            return fail
        return getattr(self._core, name)


def test_a_failed_engine_write_leaves_the_last_commit_and_commits_when_tried_again(tmp_path):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _batch(ix, 0)
    ix.commit()
    before = _state(path)
    _batch(ix, 200)
    real = ix._store._core
    ix._store._core = _FailingWrite(real)
    with pytest.raises(OSError, match="injected") as e:
        ix.commit()
    assert e.value.errno == errno.ENOSPC
    assert _state(path) == before
    ix._store._core = real
    ix.commit()  # the prepared segment, written by finish_commit this time
    n, payloads = _state(path)
    assert n == 400 and payloads == [{"k": i, "pad": "x" * 300} for i in (0, 150, 250, 399)]
    ix.close()
    assert not [f for f in os.listdir(path) if ".tmp" in f]


def test_a_failed_documents_write_leaves_the_last_commit_and_commits_when_tried_again(tmp_path, monkeypatch):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _batch(ix, 0)
    ix.commit()
    before = _state(path)
    _batch(ix, 200)
    real = docs_mod._create

    def tiny(p, segment, n):  # a database that cannot grow: SQLite's "disk is full"
        conn = real(p, segment, n)
        conn.execute("PRAGMA max_page_count = 4")
        return conn

    monkeypatch.setattr(docs_mod, "_create", tiny)
    with pytest.raises(OSError, match="seg-000002") as e:
        ix.commit()  # the engine file was written meanwhile (no manifest lists it)
    assert e.value.errno == errno.ENOSPC
    assert _state(path) == before
    monkeypatch.setattr(docs_mod, "_create", real)
    ix.commit()  # the engine file written before is recorded, not written again
    n, payloads = _state(path)
    assert n == 400 and payloads == [{"k": i, "pad": "x" * 300} for i in (0, 150, 250, 399)]
    ix.close()
    reopened = SparseIndex.open(path)
    assert [h.id for h in reopened.search({int(t): 1.0 for t in range(5_000)}, k=400)] != []
    assert sorted(reopened.get(i).id for i in range(400)) == list(range(400))
    reopened.close()
    assert not [f for f in os.listdir(path) if ".tmp" in f]


def test_when_both_writes_fail_the_engine_error_is_noted_on_the_raised_one(tmp_path, monkeypatch):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _batch(ix, 0)
    ix.commit()
    before = _state(path)
    _batch(ix, 200)
    real_core, real_create = ix._store._core, docs_mod._create

    def tiny(p, segment, n):
        conn = real_create(p, segment, n)
        conn.execute("PRAGMA max_page_count = 4")
        return conn

    ix._store._core = _FailingWrite(real_core)
    monkeypatch.setattr(docs_mod, "_create", tiny)
    with pytest.raises(OSError, match="seg-000002") as e:
        ix.commit()
    notes = getattr(e.value, "__notes__", [])
    assert any("failed to write too" in n and "injected" in n for n in notes), notes
    assert _state(path) == before
    ix._store._core = real_core
    monkeypatch.setattr(docs_mod, "_create", real_create)
    ix.commit()
    assert _state(path)[0] == 400
    ix.close()


class _InterruptAfter:
    """The store's engine handle with ``name`` running and then raising KeyboardInterrupt, as
    a Ctrl-C that arrives while the Rust call runs is raised when it returns."""

    def __init__(self, core, name):
        self._core, self._name = core, name

    def __getattr__(self, name):
        real = getattr(self._core, name)
        if name != self._name:
            return real

        def interrupted(*a, **kw):
            real(*a, **kw)
            raise KeyboardInterrupt
        return interrupted


@pytest.mark.parametrize("step", ["prepare_commit", "write_prepared", "finish_commit"])
def test_a_commit_interrupted_after_a_rust_step_is_retried_or_done(tmp_path, step):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _batch(ix, 0)
    ix.commit()
    _batch(ix, 200)
    real = ix._store._core
    ix._store._core = _InterruptAfter(real, step)
    with pytest.raises(KeyboardInterrupt):
        ix.commit()
    ix._store._core = real
    if step == "finish_commit":  # past the commit point: the writer moved on to it
        assert len(ix) == 400 and not ix._store.has_staged()
    ix.commit()  # the retry finishes the prepared commit (or has nothing left to do)
    assert len(ix) == 400
    _batch(ix, 400)  # and the writer goes on
    ix.commit()
    ix.close()
    n, payloads = _state(path)
    assert n == 600 and payloads == [{"k": i, "pad": "x" * 300} for i in (0, 150, 250, 399)]
    assert not [f for f in os.listdir(path) if ".tmp" in f]


@pytest.mark.parametrize("where", ["_committed", "_load_snapshot"])
def test_an_interrupt_in_the_bookkeeping_after_the_commit_point_is_moved_on_by_the_retry(tmp_path, monkeypatch,
                                                                                        where):
    """Ctrl-C after finish_commit returned, as _committed starts (the handle still holds the
    finished commit's prepared segment) or between its reset and its snapshot reload (the
    handle no longer sees the batch it committed): the retried commit() moves the handle on to
    the commit that went through, and the writer goes on (newcomer11 M1 / M2: the retry either
    failed with "nothing prepared" or returned without the batch)."""
    path = tmp_path / "b"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _batch(ix, 0)
    ix.commit()
    _batch(ix, 200)
    store_cls = type(ix._store)
    real = getattr(store_cls, where)
    calls = {"n": 0}

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(store_cls, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        ix.commit()
    monkeypatch.setattr(store_cls, where, real)
    ix.commit()  # the retry: the commit went through, the handle moves on to it
    assert len(ix) == 400 and sorted(ix.ids())[-1] == 399 and ix.get(399).payload["k"] == 399
    assert not ix._store.has_staged()
    _batch(ix, 400)
    ix.commit()
    assert len(ix) == 600
    ix.close()
    n, payloads = _state(path)
    assert n == 600 and payloads == [{"k": i, "pad": "x" * 300} for i in (0, 150, 250, 399)]


def test_a_merge_whose_member_is_dropped_while_its_documents_are_copied_is_abandoned(tmp_path, monkeypatch):
    # newcomer10 H2: every document of a member deleted and committed while a merge copies the
    # members' documents: the commit drops the member and collects its files, the copy cannot
    # open them; the merge is abandoned (as when the Rust side notices first), not an error
    import sparsedex.store as store_mod

    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    for first, n in ((0, 200), (200, 200), (400, 3)):
        _batch(ix, first, n)
        ix.commit()
    real = store_mod.merge_docs
    hits = []

    def dropping(*a, **kw):
        if not hits:
            hits.append(1)
            ix.delete([400, 401, 402])
            ix.commit()  # the third segment is now empty: dropped, its files collected
        return real(*a, **kw)

    monkeypatch.setattr(store_mod, "merge_docs", dropping)
    names = [rec["name"] for rec in ix._store._core.snapshot().segments()]
    assert len(names) == 3
    # as the background merger runs it (the writer's lock is free while it merges and copies)
    assert ix._store._merge_group(names) is None  # abandoned
    assert hits and len(ix) == 400
    monkeypatch.setattr(store_mod, "merge_docs", real)
    ix.merge()
    assert len(ix._store.snapshot.states) == 1 and len(ix) == 400
    assert [h.id for h in ix.search({int(t): 1.0 for t in range(5_000)}, k=3)]
    ix.close()
    n, payloads = _state(path)
    assert n == 400 and payloads == [{"k": i, "pad": "x" * 300} for i in (0, 150, 250, 399)]


def test_a_failed_merge_after_a_foreground_commit_warns_and_the_commit_stands(tmp_path, monkeypatch):
    # newcomer10 M1: with MergePolicy(background=False) commit() runs the merge itself after its
    # commit point; a full disk there must not read as a failed commit
    import sparsedex.store as store_mod

    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=3, floor_docs=10, background=False))
    _batch(ix, 0)
    ix.commit()
    _batch(ix, 200)
    ix.commit()
    _batch(ix, 400)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "injected: no space for the merged segment")

    monkeypatch.setattr(store_mod, "merge_docs", full)  # the merge's documents copy
    monkeypatch.setattr(ix._store, "_merge_alongside_docs", full)
    with pytest.warns(RuntimeWarning, match=r"the commit succeeded \(generation \d+\); the merge that followed"):
        gen = ix.commit()
    assert len(ix) == 600 and _state(path)[0] == 600 and gen == ix._store.snapshot.generation
    monkeypatch.undo()
    _batch(ix, 600)
    ix.commit()  # the merge is retried with this commit
    assert len(ix) == 800 and len(ix._store.snapshot.states) < 4
    ix.close()


@pytest.mark.parametrize("where", ["_committed", "_load_snapshot"])
def test_a_bm25_index_interrupted_in_the_bookkeeping_moves_on_and_goes_on(tmp_path, monkeypatch, where):
    """As above, for BM25, whose commit() first stages the vocabulary's new terms against the
    committed ones: the retry (and an add + commit after the interrupt) must catch up with the
    commit that went through before staging terms (review21b: it raised ConflictError on every
    retry until rollback())."""
    path = tmp_path / "bm"
    ix = SparseIndex.create(path, encoder="bm25", merge_policy=MergePolicy(factor=0))
    ix.add(["alpha beta gamma", "beta delta"], ids=[0, 1])
    ix.commit()
    ix.add(["epsilon zeta", "eta theta alpha"], ids=[2, 3])
    store_cls = type(ix._store)
    real = getattr(store_cls, where)
    calls = {"n": 0}

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(store_cls, where, interrupted)
    with pytest.raises(KeyboardInterrupt):
        ix.commit()
    monkeypatch.setattr(store_cls, where, real)
    if where == "_load_snapshot":  # pending already reset: new texts can be added at once
        ix.add(["iota kappa"], ids=[4])
    ix.commit()
    assert [h.id for h in ix.search("zeta", k=3)] == [2]
    ix.add(["lambda mu zeta"], ids=[5])
    ix.commit()
    n = len(ix)
    ix.close()
    r = SparseIndex.open(path)
    try:
        assert len(r) == n and {h.id for h in r.search("zeta", k=5)} == {2, 5}
        if where == "_load_snapshot":
            assert [h.id for h in r.search("kappa", k=3)] == [4]
    finally:
        r.close()
