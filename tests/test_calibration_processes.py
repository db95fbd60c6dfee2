"""Calibration across processes: processes that make the first approximate search of a fresh
index on disk together (a server's workers) calibrate it one at a time, through the directory's
``CALIBRATE.LOCK``, and every one after the first reads the first one's ``seg-<N>.cal`` file
instead of calibrating beside it. Calibrations are counted with
``_core.calibration_counters()`` (computed, files written, files read), never by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import sparsedex.index
import sparsedex.lock as lock_module
from sparsedex import MergePolicy, SparseIndex
from sparsedex import _core
from sparsedex.lock import CALIBRATION_LOCK_FILE, calibration_lock

# The child: open the index, say so, make one approximate search (the first: it calibrates or
# reads the calibration file), report the engine's calibration counters and the hits.
CHILD = r"""
import json, sys, time
from sparsedex import SparseIndex, _core
ix = SparseIndex.open(sys.argv[1])
q = json.loads(sys.argv[2])
print("ready", flush=True)
t = time.perf_counter()
hits = ix.search((q[0], q[1]), k=10, algorithm="approximate", target_recall=0.95)
print(json.dumps({"seconds": time.perf_counter() - t, "counters": list(_core.calibration_counters()),
                  "hits": [[h.id, h.score] for h in hits]}), flush=True)
"""


def _corpus(n: int, seed: int = 0, vocab: int = 3000, nnz: int = 40):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 0.9
    p /= p.sum()
    docs = []
    for _ in range(n):
        t = np.unique(rng.choice(vocab, nnz, p=p))
        docs.append((t.tolist(), rng.gamma(1.5, 0.6, len(t)).round(3).tolist()))
    return docs


QUERY = _corpus(1, seed=5, nnz=25)[0]


@pytest.fixture
def fresh(tmp_path):
    """A committed index directory with one segment that approximate search calibrates, and
    no calibration yet."""
    path = tmp_path / "i"
    ix = SparseIndex.create(path, merge_policy=MergePolicy(factor=0))
    ix.add(_corpus(12000))
    ix.commit()
    ix.close()
    assert not list(path.glob("*.cal"))
    return path


def _start(path):
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), json.dumps(QUERY)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # "ready" read a byte at a time, from the pipe itself: a buffered readline() could read the
    # report line too when the child printed both before this process ran (a child that reads
    # the first one's calibration file searches in milliseconds), and communicate() below, which
    # reads the pipe, not the buffer, then found no report (seen once, on a busy machine)
    line = b""
    while not line.endswith(b"\n"):
        c = os.read(p.stdout.fileno(), 1)
        if not c:
            break
        line += c
    assert line.strip() == b"ready", p.stderr.read().decode()
    return p


def _finish(p):
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def test_a_second_process_waits_for_the_first_calibration_and_reads_its_file(fresh):
    # This process plays the first: it holds the directory's calibration lock while it
    # calibrates (bypassing its own lock-taking: a second flock on the same file from one
    # process would wait for itself), then lets the child go.
    with calibration_lock(fresh) as held:
        assert held and (fresh / CALIBRATION_LOCK_FILE).exists()
        child = _start(fresh)
        ix = SparseIndex.open(fresh)
        snap = ix._snap()
        made = _core.calibration_counters()[0]
        assert snap.core.calibrate(0)  # computes it and writes seg-<N>.cal
        assert _core.calibration_counters()[0] == made + 1 and list(fresh.glob("*.cal"))
        time.sleep(0.5)
        assert child.poll() is None, "the child searched while another process held the calibration lock"
    report = _finish(child)
    computed, _written, read = report["counters"]
    assert (computed, read) == (0, 1), f"the child calibrated again instead of reading the file: {report}"
    mine = ix.search((QUERY[0], QUERY[1]), k=10, algorithm="approximate", target_recall=0.95)
    assert [[h.id, h.score] for h in mine] == report["hits"]
    ix.close()


def test_processes_starting_together_calibrate_once(fresh):
    children = [_start(fresh) for _ in range(3)]
    reports = [_finish(c) for c in children]
    computed = sorted(r["counters"][0] for r in reports)
    assert computed == [0, 0, 1], reports
    assert all(r["counters"][2] == 1 for r in reports if r["counters"][0] == 0), reports
    assert all(r["hits"] == reports[0]["hits"] for r in reports)


def test_without_a_lock_file_calibration_goes_on(fresh):
    # A directory where the lock file would be: the lock is best effort (a warning, once per
    # directory), the search works.
    (fresh / CALIBRATION_LOCK_FILE).mkdir()
    with pytest.warns(RuntimeWarning, match="CALIBRATE.LOCK cannot be used"):
        with calibration_lock(fresh) as held:
            assert not held
    ix = SparseIndex.open(fresh)
    hits = ix.search((QUERY[0], QUERY[1]), k=10, algorithm="approximate", target_recall=0.95)
    assert len(hits) == 10 and list(fresh.glob("*.cal"))
    ix.close()


def test_an_index_in_memory_takes_no_lock():
    with calibration_lock(None) as held:
        assert not held
    ix = SparseIndex(encoder=None)
    ix.add(_corpus(9000))
    ix.commit()
    assert len(ix.search((QUERY[0], QUERY[1]), k=10, algorithm="approximate")) == 10
    assert len(ix.calibrate()) == 1


def test_no_lock_where_calibrations_cannot_be_written(fresh, monkeypatch):
    # A full disk (or a read-only directory): waiting for a calibration that cannot reach its
    # file would only make each process calibrate in turn (helper-110: 9 / 18 / 28 s), so the
    # processes calibrate side by side, as without the lock.
    monkeypatch.setattr(lock_module, "MIN_FREE_FOR_CALIBRATION", 1 << 62)
    with calibration_lock(fresh) as held:
        assert not held
    assert not (fresh / CALIBRATION_LOCK_FILE).exists()


def _search_in_child(path, out):
    ix = SparseIndex.open(path)
    out.put(len(ix.search((QUERY[0], QUERY[1]), k=10, algorithm="approximate")))


def test_a_fork_while_a_thread_holds_the_calibration_lock_does_not_hang_the_child(fresh):
    # helper-110: a pool forked while calibrate() ran on a thread; every worker inherited the
    # process calibration lock as held, by a thread it does not have, and hung.
    import multiprocessing as mp
    import threading

    held, done = threading.Event(), threading.Event()

    def holder():
        with sparsedex.index._calibration_turn(None):
            held.set()
            done.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        ctx = mp.get_context("fork")
        out = ctx.Queue()
        p = ctx.Process(target=_search_in_child, args=(fresh, out))
        p.start()
        p.join(60)
        hung = p.is_alive()
        if hung:
            p.kill()
            p.join()
        assert not hung, "the forked child waited for a lock held by a thread it does not have"
        assert p.exitcode == 0 and out.get(timeout=5) == 10
    finally:
        done.set()
        t.join()


def test_a_terminal_is_told_when_a_process_waits_for_another_calibration(fresh, monkeypatch):
    # helper-110: a waiting process printed nothing, however long the other calibration took
    import io
    import threading

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(lock_module, "WAIT_MESSAGE_AFTER", 0.2)
    held, release = threading.Event(), threading.Event()

    def other():  # another open file description: flock makes it a second holder, as a process
        with calibration_lock(fresh):
            held.set()
            release.wait(30)

    t = threading.Thread(target=other)
    t.start()
    try:
        assert held.wait(10)
        threading.Timer(0.6, release.set).start()
        with calibration_lock(fresh) as got:
            assert got
    finally:
        release.set()
        t.join()
    assert err.getvalue().count("waiting for another process's calibration") == 1, err.getvalue()
