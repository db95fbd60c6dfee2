"""Directories of sparsedex 0.1 (JSON manifests and documents, format-version-1 engine files):
readers read them as they are; the first writer upgrades them in place, atomically (see
sparsedex._legacy), and a kill at any moment of the upgrade leaves a directory that opens as
the old or the upgraded index, with the same hits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex._legacy import is_legacy

DATA = Path(__file__).resolve().parent / "data"
SRC = DATA / "bm25-index-v0.1"
EXPECTED = json.loads((DATA / "bm25-index-v0.1.expected.json").read_text())


def _copy(tmp_path: Path) -> Path:
    p = tmp_path / "old"
    shutil.copytree(SRC, p)
    return p


def _check_hits(path: Path) -> None:
    ix = SparseIndex.open(path)
    for q in EXPECTED["queries"]:
        got = [[h.id, h.score] for h in ix.search(q, k=10)]
        want = EXPECTED["hits"][q]
        assert [g[0] for g in got] == [w[0] for w in want], q
        assert [g[1] for g in got] == pytest.approx([w[1] for w in want], rel=1e-6), q
    assert ix.get("d3").payload == {"n": 3} and ix.get("d3").text == "Die Straße in der Stadt"
    ix.close()


def test_readers_leave_an_old_directory_as_it_is(tmp_path):
    p = _copy(tmp_path)
    before = {f.name: f.read_bytes() for f in p.iterdir()}
    _check_hits(p)
    r = SparseIndex.open(p)
    assert len(r) == 6 and sorted(r.ids()) == [f"d{i}" for i in range(6)]
    r.close()
    assert {f.name: f.read_bytes() for f in p.iterdir()} == before


def test_first_writer_upgrades_in_place(tmp_path):
    p = _copy(tmp_path)
    ix = SparseIndex.open(p)
    ix.delete(["d5"])
    ix.commit()
    ix.close()
    assert not is_legacy(p)
    names = sorted(f.name for f in p.iterdir())
    assert not any(n.endswith(".json") for n in names), names
    assert "seg-000001.sdx" not in names and "seg-000001.docs" not in names  # old segment collected
    again = SparseIndex.open(p)
    assert sorted(again.ids()) == [f"d{i}" for i in range(5)]
    assert again.encoder.analyzer.normalization is None  # the saved analysis is kept
    again.close()


_CHILD = textwrap.dedent("""
    import os, sys
    import sparsedex.docs, sparsedex._legacy
    from sparsedex import SparseIndex
    where = sys.argv[2]
    if where == "docs":  # after the new documents file, before CURRENT switches
        real = sparsedex.docs.write_docs
        def write_docs(*a, **k):
            real(*a, **k)
            os._exit(9)
        sparsedex.docs.write_docs = write_docs
    elif where == "switched":  # after CURRENT switched, before the old manifest is removed
        real_rm = sparsedex._legacy.remove_legacy_files
        def rm(p, keep_current):
            if not keep_current:
                os._exit(9)
            real_rm(p, keep_current)
        sparsedex._legacy.remove_legacy_files = rm
    ix = SparseIndex.open(sys.argv[1])
    ix.add(["a new document"], ids=["new"])
    ix.commit()
    os._exit(0)
""")


@pytest.mark.parametrize("where", ["docs", "switched"])
def test_a_kill_during_the_upgrade_leaves_an_index_that_opens(tmp_path, where):
    p = _copy(tmp_path)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(p), where], capture_output=True, text=True)
    assert r.returncode == 9, r.stderr[-2000:]
    assert is_legacy(p) == (where == "docs")
    _check_hits(p)  # the old index, or the upgraded one: the same documents and hits
    ix = SparseIndex.open(p)
    ix.add(["a new document"], ids=["new"])  # the next writer finishes the job
    ix.commit()
    ix.close()
    assert not is_legacy(p) and not any(f.name.endswith(".json") or ".tmp-" in f.name for f in p.iterdir())
    again = SparseIndex.open(p)
    assert len(again) == 7 and "new" in again
    again.close()


def test_random_kills_during_upgrades(tmp_path):
    """SIGKILL at random moments of an upgrade (fresh copy each time): it always opens."""
    import random
    import signal
    import time

    rnd = random.Random(3)
    seen = {True: 0, False: 0}
    for i in range(12):
        p = tmp_path / f"c{i}"
        shutil.copytree(SRC, p)
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(p), "none"], stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        seen[is_legacy(p)] += 1
        ix = SparseIndex.open(p)
        n = len(ix)
        ix.close()
        if n == 6:  # the old index, or upgraded before the child's commit
            _check_hits(p)
        else:  # the child's commit went through
            assert n == 7
    assert sum(seen.values()) == 12


# sparsedex 0.1's VectorIndex directories ------------------------------------------------------
# tests/data/vector-index-v0.1: what 0.1's `VectorIndex.build(small, ids=["a", "b", "c", "d"],
# vocab_size=12).save(dir)` wrote (a format-version-1 segment with string ids, u8 impacts).
VEC_SRC = DATA / "vector-index-v0.1"
VEC_DOCS = {"a": ([1, 7], [0.5, 1.2]), "b": ([7, 9], [2.0, 0.1]), "c": ([], []), "d": ([0, 3, 9], [0.3, 0.3, 4.0])}


def _vector_dir(tmp_path: Path, name: str = "vec") -> Path:
    p = tmp_path / name
    shutil.copytree(VEC_SRC, p)
    return p


def _brute(query: dict[int, float], docs: dict, scale: float = 1.0) -> list[tuple[str, float]]:
    out = []
    for i, (t, w) in docs.items():
        s = sum(query.get(x, 0.0) * v for x, v in zip(t, w))
        if s > 0:
            out.append((i, s))
    return sorted(out, key=lambda x: (-x[1], x[0]))


def test_vector_index_directory_opens_as_a_sparse_index(tmp_path):
    p = _vector_dir(tmp_path)
    before = {f.name: f.read_bytes() for f in p.iterdir()}
    ix = SparseIndex.open(p)
    assert len(ix) == 4 and sorted(ix.ids()) == ["a", "b", "c", "d"]
    assert ix.quantization == "u8"
    for q in ({7: 1.0}, {9: 1.0, 1: 0.5}, {0: 2.0, 7: 0.1}):
        got = [(h.id, h.score) for h in ix.search((list(q), list(q.values())), k=10)]
        want = _brute(q, VEC_DOCS)
        assert [g[0] for g in got] == [w[0] for w in want], q
        assert [g[1] for g in got] == pytest.approx([w[1] for w in want], abs=0.02), q  # u8 grid
    d = ix.get("d")
    assert d.vector.indices.tolist() == [0, 3, 9] and d.vector.values.tolist() == pytest.approx([0.3, 0.3, 4.0])
    assert d.payload is None and d.text is None
    assert ix.explain(([9], [1.0]), "d").score == pytest.approx(4.0, abs=0.02)
    ix.close()
    assert {f.name: f.read_bytes() for f in p.iterdir()} == before  # readers leave it as it is


def test_vector_index_directory_first_writer_upgrades_it(tmp_path):
    p = _vector_dir(tmp_path)
    old = SparseIndex.open(p)
    want = [(h.id, h.score) for h in old.search(([7, 9], [1.0, 1.0]), k=10)]
    old.close()
    ix = SparseIndex.open(p)
    ix.add([([7], [1.5])], ids=["e"])
    ix.commit()
    ix.close()
    names = sorted(f.name for f in p.iterdir())
    assert "sparsedex.json" not in names and "vectors.sdx" not in names and "CURRENT" in names, names
    assert not is_legacy(p)
    ix = SparseIndex.open(p)
    assert sorted(ix.ids()) == ["a", "b", "c", "d", "e"]
    got = [(h.id, h.score) for h in ix.search(([7, 9], [1.0, 1.0]), k=10) if h.id != "e"]
    assert got == want  # same grid: the old documents score as they did
    with pytest.raises(ValueError, match="already"):
        ix.add([([1], [1.0])], ids=["a"])
    ix.close()


def test_vector_index_directory_a_v2_segment_with_int_ids(tmp_path):
    from sparsedex._segment import SegmentView

    rng = np.random.default_rng(5)
    docs = [(sorted(rng.choice(50, 5, replace=False).tolist()), rng.uniform(0.1, 3, 5).round(3).tolist()) for _ in range(200)]
    view = SegmentView.build(docs, ids=list(range(1000, 1200)), quantization="float")
    p = tmp_path / "v2"
    p.mkdir()
    view.save(p / "vectors.sdx")
    (p / "sparsedex.json").write_text('{"format": "sparsedex-vector-index", "version": 1}')
    ix = SparseIndex.open(p)
    assert ix.quantization == "float" and len(ix) == 200
    for _ in range(10):
        q = (sorted(rng.choice(50, 4, replace=False).tolist()), [1.0, 0.5, 2.0, 0.25])
        ids, scores = view.search(q, k=10)
        hits = ix.search(q, k=10)
        assert [h.score for h in hits] == pytest.approx(scores.tolist(), rel=1e-6)
        assert {h.id: h.score for h in hits} == pytest.approx(dict(zip(ids.tolist(), scores.tolist())), rel=1e-6)
    ix.add([([1], [1.0])])  # a new int id continues above the largest one
    ix.commit()
    assert max(ix.ids()) == 1200
    ix.close()


def test_vector_index_directory_bad_ones_are_named(tmp_path):
    from sparsedex import CorruptIndexError
    from sparsedex._segment import SegmentView

    p = _vector_dir(tmp_path, "v99")
    (p / "sparsedex.json").write_text('{"format": "sparsedex-vector-index", "version": 99}')
    with pytest.raises(CorruptIndexError, match="version 99"):
        SparseIndex.open(p)
    (p / "sparsedex.json").write_text('{"format": "something-else"}')
    with pytest.raises(CorruptIndexError, match="not a sparsedex-vector-index"):
        SparseIndex.open(p)
    (p / "sparsedex.json").write_text("{not json")
    with pytest.raises(CorruptIndexError, match="sparsedex.json"):
        SparseIndex.open(p)
    p = _vector_dir(tmp_path, "missing")
    (p / "vectors.sdx").unlink()
    with pytest.raises(CorruptIndexError, match="vectors.sdx: missing"):
        SparseIndex.open(p)
    p = _vector_dir(tmp_path, "truncated")
    data = (p / "vectors.sdx").read_bytes()
    (p / "vectors.sdx").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError):
        SparseIndex.open(p)
    p = tmp_path / "novectors"
    p.mkdir()
    SegmentView.build([([1], [1.0]), ([2], [2.0])], store_vectors=False).save(p / "vectors.sdx")
    (p / "sparsedex.json").write_text('{"format": "sparsedex-vector-index", "version": 1}')
    with pytest.raises(CorruptIndexError, match="store_vectors=False"):
        SparseIndex.open(p)


def test_vector_index_directory_is_not_overwritten_by_create_but_by_save(tmp_path):
    p = _vector_dir(tmp_path)
    with pytest.raises(FileExistsError, match="already holds an index"):
        SparseIndex.create(p)
    new = SparseIndex(None)
    new.add([([1], [1.0])], ids=["z"])
    new.save(p)
    names = sorted(f.name for f in p.iterdir())
    assert "sparsedex.json" not in names and "vectors.sdx" not in names, names
    assert SparseIndex.open(p).ids() == ["z"]


def test_vector_index_class_is_gone_with_a_pointer():
    import sparsedex

    with pytest.raises(AttributeError, match="SparseIndex"):
        sparsedex.VectorIndex  # noqa: B018
    assert "VectorIndex" not in sparsedex.__all__
