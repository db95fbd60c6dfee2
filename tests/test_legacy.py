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
