"""Stop 61: what one search costs in Python around the engine. A search of an index without
payloads reads nothing from its documents databases, and a canonical scipy.sparse CSR row is
taken as it is (``benches/call_overhead.py``); what they skip is still checked."""

import sqlite3
import threading
import zlib

import numpy as np
import pytest
import scipy.sparse

from sparsedex import CorruptIndexError, SparseIndex
from sparsedex import docs as docs_mod
from sparsedex.docs import SqliteDocs, payload_json, write_docs
from sparsedex.vectors import as_sparse_embedding


def _no_row_reads(monkeypatch):
    def refuse(self, column, docs):
        raise AssertionError(f"read {column} rows {list(docs)}")

    monkeypatch.setattr(SqliteDocs, "_rows", refuse)


def test_search_of_an_index_without_payloads_reads_no_rows(tmp_path, monkeypatch):
    ix = SparseIndex.create(tmp_path / "ix", encoder=None)
    ix.add([{1: 1.0, 2: 0.5}, {2: 1.0}, {3: 2.0}], ids=["a", "b", "c"])
    ix.commit()
    ix = SparseIndex.open(tmp_path / "ix")
    _no_row_reads(monkeypatch)
    hits = ix.search({2: 1.0}, k=5)
    assert [(h.id, h.payload) for h in hits] == [("b", None), ("a", None)]
    assert [h.payload for h in ix.search_batch([{2: 1.0}, {3: 1.0}], k=1)[0]] == [None]


def test_search_with_payloads_still_reads_them(tmp_path):
    ix = SparseIndex.create(tmp_path / "ix", encoder=None)
    ix.add([{1: 1.0}, {1: 2.0}], ids=[1, 2], payloads=[None, {"x": [1, {"y": 2}]}])
    ix.commit()
    ix = SparseIndex.open(tmp_path / "ix")
    hits = ix.search({1: 1.0}, k=2)
    assert [(h.id, h.payload) for h in hits] == [(2, {"x": [1, {"y": 2}]}), (1, None)]
    hits[0].payload["x"].append(3)  # a copy: the stored payload does not change
    assert ix.get(2).payload == {"x": [1, {"y": 2}]}


def _db(tmp_path, payloads, edit=None, name="seg-000001"):
    """A documents database of ``payloads``, its tables then edited by ``edit(conn)`` (and
    the checksum the manifest would record taken afterwards)."""
    f = tmp_path / f"{name}.docs"
    write_docs(f, name, [None if p is None else payload_json(p) for p in payloads], None)
    if edit is not None:
        conn = sqlite3.connect(f)
        edit(conn)
        conn.commit()
        conn.close()
    return SqliteDocs(f, len(payloads), crc32=zlib.crc32(f.read_bytes()))


def _meta(path):
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT key, value FROM meta"))


def test_no_payload_database_answers_none_without_reading_rows(tmp_path, monkeypatch):
    d = _db(tmp_path, [None, None, None])
    assert _meta(d.path)["payloads"] == "0"
    assert _meta(_db(tmp_path, [None, {"a": 1}, {}], name="seg-000002").path)["payloads"] == "2"
    _no_row_reads(monkeypatch)
    assert d.payloads([2, 0, 2]) == [None, None, None]
    with pytest.raises(IndexError, match="document 3 is out of range"):
        d.payloads([0, 3])


def test_a_database_without_the_count_is_read_row_by_row(tmp_path):
    # files written before stop 61: the rows are read, and what a read finds is checked
    def old(conn):
        conn.execute("DELETE FROM meta WHERE key = 'payloads'")
        conn.execute("DELETE FROM docs WHERE doc = 1")

    d = _db(tmp_path, [None, None, None], edit=old)
    assert d.payloads([0, 2]) == [None, None]
    with pytest.raises(CorruptIndexError, match="document 1 is missing"):
        d.payloads([1])
    for bad in ("x", "-1", "4", "\u0663"):
        e = _db(tmp_path, [None] * 3, edit=lambda c, v=bad: c.execute("UPDATE meta SET value = ? WHERE key = 'payloads'", (v,)), name=f"seg-bad{len(bad)}")
        with pytest.raises(CorruptIndexError, match="the count of payloads in meta is not one of 0..3"):
            e.payloads([0])


def test_merged_documents_record_their_payload_count(tmp_path):
    ix = SparseIndex.create(tmp_path / "ix", encoder=None)
    ix.add([{1: 1.0}, {2: 1.0}], ids=[1, 2])
    ix.commit()
    ix.add([{1: 2.0}, {3: 1.0}], ids=[3, 4], payloads=[{"p": 3}, None])
    ix.commit()
    ix.merge()
    (f,) = (tmp_path / "ix").glob("*.docs")
    assert _meta(f)["payloads"] == "1"
    ix = SparseIndex.open(tmp_path / "ix")
    assert [(h.id, h.payload) for h in ix.search({1: 1.0}, k=5)] == [(3, {"p": 3}), (1, None)]


def test_canonical_scipy_row_is_taken_as_is_and_copied(monkeypatch):
    m = scipy.sparse.csr_matrix((np.array([0.5, 2.0], np.float32), np.array([3, 9]), [0, 2]), shape=(1, 20))

    def no_conversion(*a, **k):
        raise AssertionError("converted")

    with monkeypatch.context() as mp:
        mp.setattr(type(m), "tocsr", no_conversion)  # no conversion: 70 us a query
        mp.setattr(type(m), "tocoo", no_conversion)
        v = as_sparse_embedding(m)
    assert v.indices.tolist() == [3, 9] and v.values.tolist() == [0.5, 2.0]
    v.values[0] = 7.0  # not the matrix's own array
    assert m.data[0] == np.float32(0.5)
    # repeated or unsorted columns are summed
    dup = scipy.sparse.csr_matrix((np.array([1.0, 2.0, 4.0]), np.array([9, 3, 9]), [0, 3]), shape=(1, 20))
    assert not dup.has_canonical_format
    v = as_sparse_embedding(dup)
    assert dict(zip(v.indices.tolist(), v.values.tolist())) == {3: 2.0, 9: 5.0}


def test_scipy_row_whose_arrays_disagree_with_its_indptr_or_width_is_read_as_scipy_reads_it():
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {3: 1.0}, {5: 1.0}, {7: 1.0}, {17: 1.0}, {20: 1.0}, {40: 1.0}], ids=[1, 3, 5, 7, 17, 20, 40])

    def found(m):
        return [(h.id, h.score) for h in ix.search(m, k=10)]

    # arrays longer than the row: scipy reads up to indptr[-1] (as search_batch of the matrix)
    long = scipy.sparse.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([1, 5, 7]), np.array([0, 2])), shape=(1, 10))
    assert found(long) == [(5, 2.0), (1, 1.0)]
    assert [[(h.id, h.score) for h in r] for r in ix.search_batch(long, k=10)] == [found(long)]

    def q():
        return scipy.sparse.csr_matrix((np.array([0.5, 1.25, 2.0]), np.array([3, 17, 20]), np.array([0, 3])), shape=(1, 25))

    # arrays assigned or edited by hand (helper-131, helper-132): scipy's flags stay set
    m = q()
    m.indptr = np.array([0, 1])
    assert found(m) == [(3, 0.5)]  # scipy: the row is {3: 0.5}
    for col in (2, 1):  # the last column, then a middle one, beyond the row's 25
        m = q()
        assert m.has_canonical_format
        m.indices[col] = 40
        with pytest.raises(ValueError, match="query: column 40 is outside the sparse row's 25 columns"):
            ix.search(m)
        with pytest.raises(ValueError, match="query 0: column 40 is outside"):
            ix.search_batch([m])
    m = q()
    m.has_canonical_format
    m.indices[1] = 3  # a repeated column under a stale canonical flag: summed, as scipy reads it
    assert found(m) == [(20, 2.0), (3, 1.75)]
    m = q()
    m.indptr = np.array([0, 5])  # more entries than the arrays hold
    with pytest.raises(ValueError, match=r"^query 0: scipy cannot read this sparse row .*check its indptr, indices and data"):
        ix.search_batch([m])


def test_scipy_row_query_scores_as_the_dict_query():
    rng = np.random.default_rng(3)
    docs = [{int(t): float(rng.random()) for t in rng.choice(50, 6, replace=False)} for _ in range(40)]
    ix = SparseIndex(None)
    ix.add(docs)
    q = {4: 0.75, 17: 1.5, 30: 0.25}
    row = scipy.sparse.csr_matrix((list(q.values()), list(q.keys()), [0, 3]), shape=(1, 50))
    assert [(h.id, h.score) for h in ix.search(row, k=8)] == [(h.id, h.score) for h in ix.search(q, k=8)]


def test_fork_gate_still_waits_for_a_reader_inside_it():
    gate = docs_mod._ForkGate()
    inside, release, forked = threading.Event(), threading.Event(), threading.Event()

    def reader():
        with gate:
            inside.set()
            release.wait(5)

    t = threading.Thread(target=reader)
    t.start()
    inside.wait(5)

    def forker():
        gate.before_fork()  # waits until the reader leaves
        forked.set()
        gate.after_fork_in_parent()

    f = threading.Thread(target=forker)
    f.start()
    assert not forked.wait(0.3)
    release.set()
    assert forked.wait(5)
    t.join(5)
    f.join(5)
    with gate:  # open again
        with gate:  # re-entrant
            pass
    assert not gate._members


def test_fork_gate_fork_from_a_signal_handler_never_waits_for_its_own_thread():
    """A fork from a signal handler that interrupts its thread anywhere in the gate's way in
    or out: the gate's record of the thread changes in one store, so the fork never waits for
    the thread it runs on (a count and a depth changed one after the other left a window in
    which it waited 30 s, helper-131). Here the fork runs right after every change."""
    import time

    gate = docs_mod._ForkGate()
    times = []

    def fork_now():
        t = time.monotonic()
        gate.before_fork()
        gate.after_fork_in_parent()
        times.append(time.monotonic() - t)

    class Hooked(dict):
        def __setitem__(self, k, v):
            super().__setitem__(k, v)
            fork_now()

        def __delitem__(self, k):
            super().__delitem__(k)
            fork_now()

    gate._members = Hooked()
    with gate:
        with gate:
            pass
    assert len(times) == 4 and max(times) < 1
    assert not gate._members
