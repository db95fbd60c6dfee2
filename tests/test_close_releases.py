"""close() lets go of the index's files (newcomer9 L3): a closed handle that something still
references (an exception's traceback, a cache) holds no file descriptor or mapping of its
directory, so merged-away segments' disk space is freed at once, not at the next cycle
collection. Linux only (it reads /proc/self)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from sparsedex import MergePolicy, SparseIndex

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def _held(path) -> list[str]:
    d = str(path)
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            t = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if t.startswith(d):
            out.append(t)
    with open("/proc/self/maps") as f:
        out += [line.split()[-1] for line in f if d in line]
    return out


def _fill(ix, n_commits: int, seed: int = 0) -> None:
    r = np.random.default_rng(seed)
    for c in range(n_commits):
        ix.add([{int(t): 1.0 for t in r.choice(50_000, 10, replace=False)} for _ in range(300)],
               payloads=[{"a": c}] * 300)
        ix.commit()
        ix.search({1: 1.0}, k=3, filter={"a": c})
        ix.get(c * 300)


@pytest.mark.parametrize("quantization", ["u8", "float"])
def test_closed_writer_holds_nothing(tmp_path, quantization):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, quantization=quantization, merge_policy=MergePolicy(factor=3))
    _fill(ix, 6)
    ix.wait_for_merges()
    assert _held(path)
    ix.close()
    assert _held(path) == []  # ix is still referenced here


def test_closed_reader_holds_nothing(tmp_path):
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    _fill(ix, 4)
    rd = SparseIndex.open(path)
    rd.search({1: 1.0}, k=3, filter={"a": 1})  # payload columns cached per segment
    rd.get(1)
    ix.merge()
    rd.refresh()
    assert [h.id for h in rd.search({1: 1.0}, k=3)] == [h.id for h in ix.search({1: 1.0}, k=3)]
    ix.close()
    rd.close()
    assert _held(path) == []
