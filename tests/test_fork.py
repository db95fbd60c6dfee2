"""The engine in fork()ed children (multiprocessing's default start method on Linux).

A child made by fork() has none of the parent's threads, rayon's pool included: before the
fix, a child of a process that had used the engine once hung forever in its first parallel
call (``SparseIndex.open``, ``add``, ``save``, ``search_batch``), found by a newcomer review.
"""

import multiprocessing as mp
import sys
import time

import numpy as np
import pytest

from sparsedex import SparseIndex

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or "fork" not in mp.get_all_start_methods(), reason="fork() start method"
)


def _docs(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = np.sort(rng.choice(500, size=20, replace=False))
        out.append((t.astype(np.uint32), rng.random(20, dtype=np.float32) + 0.1))
    return out


def _child_work(path):
    """Everything that runs parallel code in the engine, in the child."""
    ix = SparseIndex.open(path)
    top = ix.search(dict(zip(*map(list, _docs(1, 1)[0]))), k=5)
    batch = ix.search_batch([dict(zip(*map(list, d))) for d in _docs(8, 2)], k=5, threads=2)
    new = SparseIndex(None, "u8")
    new.add(_docs(3000, 3))
    new.save(path + "-child")
    again = SparseIndex.open(path + "-child")
    n = len(again)
    ix.close()
    again.close()
    return [h.id for h in top], len(batch), n


def _child(path, q):
    try:
        q.put(("ok", _child_work(path)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        q.put(("error", repr(e)))


@pytest.mark.parametrize("before", ["open", "build", "search_batch"])
def test_forked_child_uses_the_engine(tmp_path, before):
    path = str(tmp_path / "ix")
    ix = SparseIndex(None, "u8", path=path)
    ix.add(_docs(3000, 0))
    ix.commit()
    ix.close()
    # the parent uses the engine's parallel code first
    if before == "open":
        SparseIndex.open(path).close()
    elif before == "build":
        mem = SparseIndex(None, "u8")
        mem.add(_docs(3000, 5))
        mem.search({1: 1.0})
    else:
        r = SparseIndex.open(path)
        r.search_batch([{1: 1.0, 2: 0.5}] * 16, k=3, threads=2)
        r.search_batch([{1: 1.0, 2: 0.5}] * 16, k=3)
        r.close()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(path, q))
    p.start()
    p.join(120)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"the forked child hung (parent used the engine: {before})")
    status, result = q.get(timeout=10)
    assert status == "ok", result
    top, n_batch, n = result
    assert n_batch == 8 and n == 3000 and len(top) == 5
    # the same answer as in the parent
    ref = SparseIndex.open(path)
    assert [h.id for h in ref.search(dict(zip(*map(list, _docs(1, 1)[0]))), k=5)] == top
    ref.close()


def _child_writes_through_parent(ix, q):
    try:
        ix.add([{1: 1.0}])
        q.put(("added", None))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        q.put((type(e).__name__, str(e)))


def test_forked_child_cannot_stage_through_the_parents_writer(tmp_path):
    """A fork child that writes through the writer it inherited is refused at the write, with
    a message that says why (before: the add was accepted and the child's commit failed)."""
    path = str(tmp_path / "ix")
    ix = SparseIndex(None, "u8", path=path)
    ix.add(_docs(10, 0))
    ix.commit()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_writes_through_parent, args=(ix, q))
    p.start()
    p.join(60)
    assert not p.is_alive()
    kind, msg = q.get(timeout=10)
    assert kind == "IndexLockedError" and "fork()ed child" in msg and "open the index again" in msg, (kind, msg)
    ix.add(_docs(5, 1))  # the parent still writes
    ix.commit()
    assert len(ix) == 15
    ix.close()


def _child_merges(path, q):
    try:
        w = SparseIndex.open(path)
        for n in range(3):
            w.add([f"tok{n} words"], ids=[f"p{n}"])
            w.commit()
        w.merge()  # checks the merged segment in a thread of its own: hung in a child (helper-86)
        q.put(("ok", (len(w.segments()), sorted(w.ids()))))
        w.close()
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        q.put(("error", repr(e)))


def test_forked_child_merges(tmp_path):
    """A child forked after the parent added and saved merges (and closes) in it."""
    path = str(tmp_path / "fm")
    b = SparseIndex("bm25")
    b.add(["seed doc"], ids=["seed"])
    b.save(path)
    b.close()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_merges, args=(path, q))
    p.start()
    p.join(120)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail("the forked child hung in merge()")
    status, result = q.get(timeout=10)
    assert status == "ok", result
    assert result == (1, ["p0", "p1", "p2", "seed"])


def _vecs(n, seed):
    return [{int(t): float(w) for t, w in zip(*map(list, d))} for d in _docs(n, seed)]


@pytest.mark.parametrize("op", ["wait_for_merges", "close", "merge", "exit"])
def test_forked_child_does_not_wait_for_the_parents_merge(tmp_path, op):
    """A child forked while the parent's background merge ran (and held the store's lock):
    close(), wait_for_merges() and the exit hook return at once, merge() is refused; they hung
    for ever waiting for a thread that stayed in the parent (helper-87)."""
    import os
    import threading

    ix = SparseIndex(None, "u8", path=str(tmp_path / "ix"))
    for i in range(12):
        ix.add(_vecs(200, i))
        ix.commit()
    ix._store._merger_done.clear()  # as while a merge runs (made deterministic)
    from sparsedex.store import _RUNNING_MERGES

    _RUNNING_MERGES.add(ix._store)  # as _start_merger does: the exit hook stops it
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another thread holds the store's lock at the fork (a merge installing)
        with ix._store._wlock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    held.wait(10)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(r)
        try:
            if op == "exit":  # what the interpreter runs at exit (sys.exit would unwind pytest here)
                from sparsedex.store import _stop_merges_at_exit

                _stop_merges_at_exit()
                os.write(w, b"ok")
                os._exit(0)
            try:
                getattr(ix, op)()
                os.write(w, b"ok")
            except Exception as e:  # noqa: BLE001
                os.write(w, f"{type(e).__name__}: {e}".encode())
        finally:
            os._exit(0)
    os.close(w)
    release.set()
    t.join()
    ix._store._merger_done.set()
    _RUNNING_MERGES.discard(ix._store)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail(f"the forked child hung in {op}")
    got = os.read(r, 4096).decode()
    os.close(r)
    if op == "merge":
        assert got.startswith("IndexLockedError") and "fork()ed child" in got, got
    else:
        assert got == "ok", got
    assert os.waitstatus_to_exitcode(status) == 0
    ix.add(_vecs(5, 99))  # the parent goes on
    ix.commit()
    ix.close()
