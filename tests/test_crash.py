"""Crash safety: a child process adding, deleting and committing in a loop is killed with
SIGKILL at random moments; after every kill the index opens, holds exactly the documents of
its last commit (each once), and answers exactly as a fresh index of those documents."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex._segment import SegmentView

sys.path.insert(0, str(Path(__file__).parent))
from crash_child import B, doc_text, doc_vec, expected_ids  # noqa: E402

CHILD = Path(__file__).parent / "crash_child.py"


def _queries():
    rng = np.random.default_rng(5)
    out = []
    for _ in range(5):
        n = int(rng.integers(2, 8))
        out.append((np.sort(rng.choice(60, n, replace=False)).astype(np.uint32), rng.uniform(0.1, 2, n).astype(np.float32)))
    return out


def _verify_bm25(ix: SparseIndex, want: set[int]) -> None:
    """The vocabulary file holds every committed term once, in the ids the documents use:
    scores equal a fresh BM25 index of the surviving documents, and each new term finds its
    document."""
    terms = ix.encoder.vocabulary.terms
    assert len(terms) == len(set(terms)), "a term appears twice in the vocabulary"
    ref = SparseIndex("bm25", "float")
    ref.add([doc_text(i) for i in sorted(want)], ids=sorted(want))
    for q in ("shared common1", "common2 t3", f"w{max(want)} t{max(want) // 3}"):
        got = [(h.id, h.score) for h in ix.search(q, k=10)]
        exp = [(h.id, h.score) for h in ref.search(q, k=10)]
        assert [s for _, s in got] == [s for _, s in exp], q
    for i in sorted(want)[:: max(1, len(want) // 15)]:
        assert ix.search(f"w{i}", k=1)[0].id == i


def _verify(path: Path, known: int, mode: str = "vectors") -> int:
    """Check the committed state; returns its batch number."""
    if not (path / "CURRENT").exists():  # killed before the index was first committed
        assert known == -1
        return -1
    ix = SparseIndex.open(path)
    ids = ix.ids()
    assert len(ids) == len(set(ids)), "a document appears twice"
    b = max(ids) // B if ids else -1
    assert b in (known, known + 1), f"state of batch {b}, but batch {known} was committed and reported"
    want = expected_ids(b)
    assert set(ids) == want, f"batch {b}: {len(set(ids) ^ want)} documents differ from the committed state"
    if want and mode == "bm25":
        _verify_bm25(ix, want)
        assert ix.get(max(ids)).payload == {"batch": b}
    elif want:
        ref = SegmentView.build([doc_vec(i) for i in sorted(want)], ids=sorted(want), quantization="float")
        for q in _queries():
            got = [(h.id, h.score) for h in ix.search(q, k=10)]
            r_ids, r_scores = ref.search(q[0], q[1], k=10)
            assert [s for _, s in got] == r_scores.tolist()
            assert [i for i, _ in got] == r_ids.tolist() or sorted(got) == sorted(zip(r_ids.tolist(), r_scores.tolist()))
        assert ix.get(max(ids)).payload == {"batch": b}
    ix.close()
    return b


def _wait_ready(proc: subprocess.Popen) -> bytes:
    """Wait until the child printed "ready" (or died); returns what else it printed."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        return line
    return b""


def run_kills(tmp_path: Path, kills: int, seed: int, mode: str = "vectors") -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "ix"
    known = -1
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = 0
    while done < kills:
        proc = subprocess.Popen([sys.executable, str(CHILD), str(path), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        # let it start (imports: it says "ready" on stderr, however loaded the machine) and then
        # run for a random while: kills land in every phase of a commit (opening, encoding,
        # segment writes, manifest, CURRENT switch, merges, cleanup)
        first = proc.stderr.readline()
        time.sleep(float(rng.uniform(0.0, 0.75)))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        err = first + err
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"child exited with {proc.returncode} before the kill:\n{err.decode()[-3000:]}")
        reported = [int(x) for x in out.decode().split()]
        if reported:
            known = max(known, reported[-1])
        known = _verify(path, known, mode)
        done += 1
    assert known > 5, f"only {known + 1} batches committed in {kills} runs: the child barely ran"


def test_sigkill_at_random_moments(tmp_path):
    run_kills(tmp_path, kills=50, seed=0)


def test_sigkill_bm25_vocabulary_at_random_moments(tmp_path):
    """BM25: every commit appends new terms to the vocabulary file in place; a kill in the
    middle of an append leaves the previous commit whole (its committed prefix)."""
    run_kills(tmp_path, kills=40, seed=3, mode="bm25")


@pytest.mark.slow
def test_sigkill_at_random_moments_long(tmp_path):
    run_kills(tmp_path, kills=300, seed=1)


# save() over an earlier save ---------------------------------------------------------------
SAVE_CHILD = Path(__file__).parent / "save_child.py"


def _verify_save(path: Path, reported: int) -> int:
    """The directory opens as one whole version, never older than the last reported save."""
    from save_child import version_ids

    ix = SparseIndex.open(path)
    ids = sorted(ix.ids())
    assert ids, "an empty index"
    v = ids[0]
    assert ids == version_ids(v), f"not one version: {ids}"
    assert v >= reported, f"version {v} but version {reported} was saved and reported"
    assert ix.get(ids[-1]).payload == {"v": v}
    ref = SegmentView.build([doc_vec(i) for i in ids], ids=ids, quantization="float")
    q = _queries()[0]
    got = [(h.id, h.score) for h in ix.search(q, k=5)]
    r_ids, r_scores = ref.search(q[0], q[1], k=5)
    assert [s for _, s in got] == r_scores.tolist()
    ix.close()
    return v


def run_save_kills(tmp_path: Path, kills: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dest = tmp_path / "saved"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    reported = -1
    start = 0
    done = 0
    versions = set()
    while done < kills:
        scratch = tmp_path / f"scratch{done}"
        proc = subprocess.Popen([sys.executable, str(SAVE_CHILD), str(dest), str(scratch), str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        first = _wait_ready(proc)
        time.sleep(float(rng.uniform(0.05, 0.8)))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"child exited with {proc.returncode} before the kill:\n{err.decode()[-3000:]}")
        got = [int(x) for x in (first + out).decode().split()]
        if got:
            reported = max(reported, got[-1])
        if (dest / "CURRENT").exists():
            v = _verify_save(dest, reported)
            versions.add(v)
            start = v + 1
        else:
            assert reported == -1
        done += 1
    assert len(versions) > kills // 4, f"only {len(versions)} versions saved in {kills} runs"


def test_sigkill_during_save_over_a_save(tmp_path):
    """>= 50 kills while save() replaces an earlier save: the directory always opens, as the
    old or the new version (issue 8: 16 of 42 kills left neither)."""
    run_save_kills(tmp_path, kills=50, seed=7)


def test_readers_open_while_saves_run(tmp_path):
    """Readers opening the directory while saves replace each other get the old or the new
    index, never an error."""
    import threading

    dest = tmp_path / "saved"
    from save_child import version_ids

    ix = SparseIndex(None, "float")
    ix.add([doc_vec(i) for i in version_ids(0)], ids=version_ids(0), payloads=[{"v": 0}] * 20)
    ix.save(dest)
    stop = threading.Event()
    errors: list[BaseException] = []
    opened = [0]

    def reader():
        while not stop.is_set():
            try:
                r = SparseIndex.open(dest)
                ids = sorted(r.ids())
                assert ids == version_ids(ids[0])
                assert r.get(ids[0]).payload == {"v": ids[0]}
                r.close()
                opened[0] += 1
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in range(1, 40):
            w = SparseIndex(None, "float")
            w.add([doc_vec(i) for i in version_ids(v)], ids=version_ids(v), payloads=[{"v": v}] * 20)
            w.save(dest)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[0]
    assert opened[0] > 0
