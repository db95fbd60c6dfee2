"""Bindings of the Rust store (`_core.Store`, `_core.Snapshot`): every call reaches the core and
its errors arrive as the documented exceptions. The behaviour itself is tested in Rust
(rust/core/src/store/tests); these tests check the Python surface."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sparsedex import _core


def corpus(n: int, seed: int, tf: bool = False, vocab: int = 40):
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(vocab, size=rng.integers(1, 8), replace=False)) for _ in range(n)]
    indptr = np.zeros(n + 1, dtype=np.uint64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = (np.concatenate(rows).astype(np.uint64) * 104_729 % (2**32)).astype(np.uint32)
    values = (rng.integers(1, 4, size=len(indices)) if tf else rng.random(len(indices)) * 5 + 0.01).astype(np.float32)
    return indptr, indices, values


def dense(csr, n_terms_map):
    indptr, indices, values = csr
    m = np.zeros((len(indptr) - 1, len(n_terms_map)), dtype=np.float64)
    for d in range(len(indptr) - 1):
        for t, w in zip(indices[indptr[d] : indptr[d + 1]], values[indptr[d] : indptr[d + 1]]):
            m[d, n_terms_map[int(t)]] = w
    return m


def test_in_memory_store_round_trip():
    st = _core.Store.create(None, quantization="float")
    assert st.path is None
    csr = corpus(200, 1)
    assert st.stage_add(*csr) == (0, 200)
    assert st.locate(5) == ("staged", 5, -1)
    name, order, coarse = st.prepare_commit()
    assert name == "seg-000001" and sorted(order.tolist()) == list(range(200)) and coarse is None
    assert st.finish_commit() == 2
    snap = st.snapshot()
    assert len(snap) == 200 and snap.generation == 2
    assert snap.settings()["id_kind"] == "int" and st.next_int_id() == 200
    # Exact search equals brute force (float).
    terms = sorted(set(csr[1].tolist()))
    col = {t: i for i, t in enumerate(terms)}
    m = dense(csr, col)
    q_t = np.array(terms[:5], dtype=np.uint32)
    q_w = np.array([1.0, 0.5, 2.0, 1.5, 0.25], dtype=np.float32)
    want = m[:, [col[t] for t in q_t.tolist()]] @ q_w.astype(np.float64)
    segs, docs, scores = snap.search(q_t, q_w, k=10)
    ids = [snap.index(int(s)).id(int(d)) for s, d in zip(segs, docs)]
    assert np.allclose(scores, np.sort(want)[::-1][:10], rtol=1e-5)
    assert all(abs(want[i] - s) < 1e-4 for i, s in zip(ids, scores))
    # Deletes, upserts and their errors.
    assert st.stage_delete(ids_int=np.array([0, 1, 999], dtype=np.int64), missing_ok=True) == 2
    with pytest.raises(KeyError, match="no document with id 999"):
        st.stage_delete(ids_int=np.array([999], dtype=np.int64))
    with pytest.raises(ValueError, match="already in the index"):
        st.stage_add(*corpus(1, 2), ids_int=np.array([5], dtype=np.int64))
    st.stage_add(*corpus(1, 2), ids_int=np.array([5], dtype=np.int64), replace=True)
    with pytest.raises(_core.ConflictError):
        st.prepare_commit() and st.stage_add(*corpus(1, 3))
    st.finish_commit()
    assert len(st.snapshot()) == 198
    assert st.snapshot().locate(0) is None and st.snapshot().locate(5) is not None
    with pytest.raises(TypeError):
        st.locate(1.5)
    with pytest.raises(ValueError, match="quantization"):
        _core.Store.create(None, quantization="u4")


def test_on_disk_attachments_reopen_gc_and_conflicts(tmp_path: Path):
    d = tmp_path / "ix"
    d.mkdir()
    (d / "LOCK").write_text("held")
    st = _core.Store.create(d, settings_json='{"encoder": null}')
    st.stage_add(*corpus(50, 1), ids_str=[f"doc-{i}" for i in range(50)])
    name, order, coarse = st.prepare_commit()
    (d / f"{name}.docs").write_bytes("\n".join(f"doc-{i}" for i in order.tolist()).encode())
    gen = st.finish_commit([f"{name}.docs"], settings_json='{"encoder": "bm25"}')
    (d / "notes.txt").write_text("mine")
    reader = _core.Store.open(d)
    assert reader.snapshot().settings()["settings_json"] == '{"encoder": "bm25"}'
    assert reader.snapshot().segments()[0]["attachments"] == [f"{name}.docs"]
    reader.verify_attachment(f"{name}.docs")
    pos, doc = reader.snapshot().locate("doc-7")
    assert reader.snapshot().index(pos).id(doc) == "doc-7"
    st.stage_delete(ids_str=["doc-7"])
    assert st.finish_commit() == gen + 1
    assert reader.refresh() is True and reader.snapshot().locate("doc-7") is None
    # Tampering with an attachment is detected; foreign files and LOCK stay.
    good = (d / f"{name}.docs").read_bytes()
    (d / f"{name}.docs").write_bytes(good[:-1] + b"!")
    with pytest.raises(_core.CorruptIndexError, match="checksum"):
        reader.verify_attachment(f"{name}.docs")
    (d / f"{name}.docs").write_bytes(b"short")
    with pytest.raises(_core.CorruptIndexError, match="bytes, the manifest records"):
        _core.Store.open(d)
    (d / f"{name}.docs").write_bytes(good)
    assert (d / "notes.txt").read_text() == "mine" and (d / "LOCK").read_text() == "held"
    # A second writer that did not take the lock is refused.
    other = _core.Store.open(d)
    other.stage_add(*corpus(1, 9), ids_str=["x"])
    st.stage_add(*corpus(1, 8), ids_str=["y"])
    st.finish_commit()
    with pytest.raises(_core.ConflictError, match="another writer"):
        other.finish_commit()
    with pytest.raises(FileExistsError):
        _core.Store.create(d)
    # A directory without an index's files is not an index (the wrong directory named), one
    # with them but no CURRENT a damaged index (breaker34).
    with pytest.raises(FileNotFoundError, match="no sparsedex index there"):
        _core.Store.open(tmp_path)
    (d / "CURRENT").unlink()
    with pytest.raises(_core.CorruptIndexError, match="missing CURRENT"):
        _core.Store.open(d)
    # Only what a creation writes before CURRENT (the lock, the first manifest): no committed
    # index yet (a reader racing create(), or a creation interrupted), not "corrupt" (review34).
    fresh = tmp_path / "fresh"
    _core.Store.create(fresh)
    (fresh / "CURRENT").unlink()
    (fresh / "LOCK").write_text("")
    with pytest.raises(FileNotFoundError, match="no committed index there yet"):
        _core.Store.open(fresh)
    (fresh / "manifest-000001").unlink()
    with pytest.raises(FileNotFoundError, match="no committed index there yet"):
        _core.Store.open(fresh)  # the lock alone


def test_merges_and_saves(tmp_path: Path):
    st = _core.Store.create(tmp_path / "a")
    for i in range(3):
        st.stage_add(*corpus(30, i), ids_int=np.arange(30 * i, 30 * i + 30, dtype=np.int64))
        st.finish_commit()
    plan = st.plan_merges(factor=3, floor_docs=10)
    assert plan == [["seg-000001", "seg-000002", "seg-000003"]]
    prepared = st.merge(plan[0])
    member, doc = prepared.origin()
    assert len(member) == 90 and prepared.members == plan[0]
    st.stage_delete(ids_int=np.array([3], dtype=np.int64))
    st.finish_commit()
    assert st.finish_merge(prepared) is not None
    with pytest.raises(_core.ConflictError):
        st.finish_merge(prepared)
    snap = st.snapshot()
    assert [s["name"] for s in snap.segments()] == [prepared.name] and len(snap) == 89
    assert st.plan_merge_to(1) == [prepared.name]
    # Save a copy twice into the same directory; in memory, the caller writes attachments.
    dest = tmp_path / "copy"
    g1 = st.save_copy(dest)
    mem = _core.Store.create(None)
    mem.stage_add(*corpus(10, 5))
    mem.finish_commit()
    p = mem.prepare_save(dest)
    [(src, new)] = p.names()
    (dest / f"{new}.docs").write_bytes(b"docs")
    assert mem.finish_save(p, [f"{new}.docs"]) > g1
    copy = _core.Store.open(dest)
    assert len(copy.snapshot()) == 10 and copy.snapshot().segments()[0]["attachments"] == [f"{new}.docs"]


def test_bm25_store_scores_the_textbook_formula():
    st = _core.Store.create(None, quantization="float", bm25=(1.2, 0.75))
    csr = corpus(120, 4, tf=True)
    lens = (np.diff(csr[0].astype(np.int64)) * 3).astype(np.uint32)
    st.stage_add(*csr, doc_len=lens)
    st.finish_commit()
    st.stage_delete(ids_int=np.arange(0, 120, 4, dtype=np.int64))
    st.finish_commit()
    snap = st.snapshot()
    live = np.array([i % 4 != 0 for i in range(120)])
    terms = np.array(sorted(set(csr[1].tolist()))[:6], dtype=np.uint32)
    stats = snap.bm25_stats(terms)
    n, avgdl = live.sum(), lens[live].mean()
    assert stats.n_docs == n and stats.total_len == lens[live].sum()
    want = np.zeros(120)
    for d in np.flatnonzero(live):
        a, b = int(csr[0][d]), int(csr[0][d + 1])
        for t, tf in zip(csr[1][a:b].tolist(), csr[2][a:b].tolist()):
            if t in terms.tolist():
                df = sum(1 for e in np.flatnonzero(live) if t in csr[1][int(csr[0][e]) : int(csr[0][e + 1])].tolist())
                idf = np.log1p((n - df + 0.5) / (df + 0.5))
                want[d] += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lens[d] / avgdl))
    segs, docs, scores = snap.search(terms, np.ones(len(terms), dtype=np.float32), k=5)
    got = {snap.index(int(s)).id(int(x)): float(v) for s, x, v in zip(segs, docs, scores)}
    for i, v in got.items():
        assert abs(want[i] - v) <= 1e-4 * want[i]
    assert np.allclose(sorted(got.values(), reverse=True), np.sort(want)[::-1][:5], rtol=1e-5)
    with pytest.raises(ValueError, match="more than the"):
        _core.Bm25Stats(1, 10, np.array([1], dtype=np.uint32), np.array([5], dtype=np.uint64))
    with pytest.raises(ValueError, match="whole number"):
        st.stage_add(np.array([0, 1], dtype=np.uint64), np.array([1], dtype=np.uint32), np.array([0.5], dtype=np.float32))


def test_concurrent_searches_while_committing():
    st = _core.Store.create(None)
    st.stage_add(*corpus(500, 1))
    st.finish_commit()
    q_t = np.array(sorted(set(corpus(500, 1)[1].tolist()))[:8], dtype=np.uint32)
    q_w = np.ones(8, dtype=np.float32)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                snap = st.snapshot()
                segs, docs, scores = snap.search(q_t, q_w, k=5)
                assert len(scores) == 5 and np.all(np.diff(scores) <= 0)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(10):
        st.stage_add(*corpus(20, 100 + i), ids_int=np.arange(1000 + 20 * i, 1020 + 20 * i, dtype=np.int64))
        st.finish_commit()
    for t in threads:
        t.join()
    assert not errors, errors


def test_write_atomically(tmp_path: Path):
    p = tmp_path / "f.bin"
    _core.write_atomically(p, b"one")
    _core.write_atomically(str(p), b"two")
    assert p.read_bytes() == b"two" and [x.name for x in tmp_path.iterdir()] == ["f.bin"]
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError):
        _core.write_atomically(tmp_path / "dir", b"x")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir", "f.bin"]
