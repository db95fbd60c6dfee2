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


def _fork_and_wait(child, release, label):
    """Fork; the child runs ``child()`` and writes what it returned (or the error) to a pipe;
    the parent then calls ``release()`` and waits (at most 60 s) for the child."""
    import os

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(r)
        try:
            try:
                got = str(child())
            except Exception as e:  # noqa: BLE001
                got = f"{type(e).__name__}: {e}"
            os.write(w, got.encode())
        finally:
            os._exit(0)
    os.close(w)
    release()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail(f"the forked child hung in {label}")
    got = os.read(r, 65536).decode()
    os.close(r)
    return got


def test_forked_child_reads_documents_a_parent_thread_was_reading(tmp_path):
    """A child forked while another thread of the parent read a segment's documents file (it
    held that file's lock, and SQLite's connection mutex): the child's search with payloads,
    get() and filter hung for ever on them (helper-88: 14 of 20 children). The child now reads
    through a connection of its own."""
    import threading

    ix = SparseIndex("bm25", path=str(tmp_path / "ix"))
    ix.add([f"d{i}u common" for i in range(300)], ids=list(range(300)), payloads=[{"n": i} for i in range(300)])
    ix.commit()
    assert ix.get(5).payload == {"n": 5}
    from sparsedex.docs import _OPEN_DOCS

    (d,) = [x for x in _OPEN_DOCS if str(x.path).startswith(str(tmp_path))]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a search of another thread fetching payloads, frozen at the fork
        with d._lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    held.wait(10)

    def child():
        hits = ix.search("d7u common", k=3)
        n = len(ix.search("common", k=5, filter={"n": {"$lt": 10}}))
        return (hits[0].id, hits[0].payload, ix.get(9).payload, n)

    got = _fork_and_wait(child, release.set, "a search with payloads")
    t.join()
    assert got == str((7, {"n": 7}, {"n": 9}, 5)), got
    ix.close()


def test_forked_child_is_refused_the_writer_state_a_parent_thread_held(tmp_path):
    """A child forked while a thread of the parent was inside a commit (holding the engine
    store's writer state): the child's refresh() and close() hung for ever (helper-88, 3-4 of
    8 children). Now refresh() is refused with an error that says what to do, close() returns,
    and searches work."""
    import threading

    ix = SparseIndex("bm25", path=str(tmp_path / "ix"))
    ix.add([f"d{i}u common" for i in range(50)], ids=list(range(50)))
    ix.commit()
    ix.close()
    ix = SparseIndex.open(str(tmp_path / "ix"))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as a thread in the middle of a commit
        ix._store._core._hold_writer_for_test(held.set, lambda: release.wait(30))

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    held.wait(10)

    def child():
        out = []
        try:
            ix.refresh()
            out.append("refresh ok")
        except Exception as e:  # noqa: BLE001
            out.append(f"{type(e).__name__}: {e}")
        out.append([h.id for h in ix.search("d7u", k=1)])
        ix.close()
        out.append("closed")
        return out

    got = _fork_and_wait(child, release.set, "refresh() or close()")
    t.join()
    assert "ConflictError: this index handle was inherited through fork()" in got, got
    assert "[7]" in got and "closed" in got, got
    ix.close()


def test_fork_waits_for_sqlite_calls_in_progress():
    """SQLite's global mutexes stay locked in a child forked while another thread was inside
    an SQLite call, and the child's first SQLite call hangs (helper-90: children of a parent
    writing or merging, in sqlite3.connect). fork() now waits at the gate every SQLite call of
    sparsedex runs in, until the calls in progress end."""
    import os
    import threading

    from sparsedex import docs

    inside, left = threading.Event(), []

    def call() -> None:  # a thread inside an SQLite call of sparsedex
        with docs._GATE:
            inside.set()
            time.sleep(0.5)
            left.append(time.monotonic())

    t = threading.Thread(target=call)
    t.start()
    inside.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    forked = time.monotonic()
    t.join()
    os.waitpid(pid, 0)
    assert left and forked >= left[0], "fork() went ahead while a thread was inside SQLite"
    with docs._GATE:  # open again in the parent
        pass


def test_sparsedex_errors_cross_process_boundaries():
    """A worker of a multiprocessing Pool that raised CorruptIndexError failed to send it back
    ("Can't pickle <class '_core.CorruptIndexError'>": the class named a module '_core')."""
    import pickle

    from sparsedex.errors import ConflictError, CorruptIndexError, SparsedexError

    for cls in (SparsedexError, CorruptIndexError, ConflictError):
        e = pickle.loads(pickle.dumps(cls("seg-000001.sdx: missing")))
        assert type(e) is cls and str(e) == "seg-000001.sdx: missing"
