"""Stop 58: Ctrl-C stops search_batch."""
import subprocess
import sys

import pytest

from sparsedex import ConflictError, SparseIndex
from test_stop57 import _LONG_QUERY_CHILD

_BATCH_CHILD = _LONG_QUERY_CHILD.split("for algo in sys.argv[1:]:")[0] + r"""
import scipy.sparse as sp
many = sp.vstack([D[N]] * 16).tocsr()
for algo in sys.argv[1:]:
    sent = []
    threading.Timer(1.0, lambda: (sent.append(time.monotonic()), os.kill(os.getpid(), signal.SIGINT))).start()
    t = time.monotonic()
    try:
        ix.search_batch(many, k=10, algorithm=algo)
        print(algo, "finished", time.monotonic() - t, flush=True)
    except KeyboardInterrupt:
        print(algo, "interrupted", time.monotonic() - sent[0], flush=True)
# the index still answers, exactly, after the interrupted batches
want = [[h.id for h in ix.search(D[i], k=5, algorithm="exhaustive")] for i in range(20)]
got = [[h.id for h in hits] for hits in ix.search_batch(D[:20], k=5, algorithm="bmw")]
print("after", want == got, flush=True)
"""


def test_ctrl_c_stops_search_batch():
    """helper-120 MEDIUM: search_batch ran its queries on the worker pool, which did not see
    the call's cancellation, so Ctrl-C waited for the whole batch (16 queries of 150,000
    terms with bmw: about 15 minutes on 2 cores). The batch now runs interruptibly, each query
    under the call's token, and a cancelled batch starts no further query."""
    out = subprocess.run([sys.executable, "-c", _BATCH_CHILD, "bmw", "wand", "maxscore", "exhaustive"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.split("\n")
    for algo in ("bmw", "wand", "maxscore", "exhaustive"):
        line = next(x for x in lines if x.startswith(algo + " "))
        what, secs = line.split()[1], float(line.split()[2])
        assert (what == "interrupted" and secs < 5.0) or (what == "finished" and secs < 2.0), line
    assert "after True" in lines, out.stdout


def test_http_request_target_empty_lines_and_long_values_are_answered(monkeypatch) -> None:
    """helper-120 LOWs: ``GET health`` (no leading slash) reached /health; 17 or more empty
    lines before a request line closed the connection without an answer; a ``k`` of 4,000
    digits (an integer, or a string) was echoed whole in the 400."""
    import json

    from sparsedex import SparseIndex
    from test_serve_http import _exchange, _serve

    index = SparseIndex(None, "float")
    index.add([([1, 2], [1.0, 2.0]), ([2], [3.0])], ids=["a", "b"])
    port = _serve(index, monkeypatch)
    got = _exchange(port, b"GET health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400") and b"must start with /" in got, got
    got = _exchange(port, b"\r\n" * 20 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400") and b"more than 16 empty lines" in got, got
    # up to 16 are still skipped
    got = _exchange(port, b"\r\n" * 16 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200"), got
    q = json.dumps({"indices": [2], "values": [1.0]})
    for k in (b"9" * 4000, b'"' + b"9" * 4000 + b'"'):
        body = b'{"query": %s, "k": %s}' % (q.encode(), k)
        got = _exchange(port, b"POST /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                        % len(body) + body)
        assert got.startswith(b"HTTP/1.1 400") and len(got) < 1000, got
        assert (b"about 4,000 digits" if k[0] == ord("9") else b"(4,000 characters)") in got, got


def _replaced_docs_case(tmp_path, how):
    import os
    import shutil

    from test_stop56 import _two_indexes
    from test_stop57 import _cp_p

    a, b = _two_indexes(tmp_path, "docs")
    w = SparseIndex.open(tmp_path / "a")
    orig = a.read_bytes()
    if how == "rename":
        shutil.copy(b, str(a) + ".x")
        os.replace(str(a) + ".x", a)
    else:
        _cp_p(b, a)
    if how == "refresh":
        assert w.refresh() is True  # opens the replaced file again
    return a, orig, w


@pytest.mark.parametrize("how", ["cp_p", "rename", "refresh"])
def test_a_commit_does_not_carry_forward_a_replaced_documents_file(tmp_path, how):
    """helper-118 MEDIUM (left open in stop 57): a documents file replaced under an open
    handle before its first write (cp -p, or a rename over it), or opened again by refresh()
    after it was replaced, was committed over: the new commit recorded the old checksum for
    the other file, and the index failed its checksum at the next open. The commit is now
    refused, naming the file, with the staged documents kept; once the file's bytes are put
    back the same handle commits them."""
    a, orig, w = _replaced_docs_case(tmp_path, how)
    w.add(["a new document"], ids=["zz"])
    with pytest.raises(ConflictError, match=rf"{a.name} was changed under this handle"):
        w.commit()
    assert w._store.has_staged()  # nothing was committed; the document is still staged
    a.write_bytes(orig)
    w.commit()
    w.close()
    r = SparseIndex.open(tmp_path / "a")
    assert r.get("d5").payload == {"src": "a", "i": 5} and r.get("zz").id == "zz"
    r.close()


_REFRESH_CHILD = _LONG_QUERY_CHILD.split("ix = SparseIndex(None)")[0] + r"""
import tempfile
d = tempfile.mkdtemp()
ix = SparseIndex(None, path=d + "/ix")
ix.add(D, ids=list(range(N + 1)))
ix.commit()
ix.close()
ix = SparseIndex.open(d + "/ix")
got = []
th = threading.Thread(target=lambda: got.append(ix.search_batch(sp.vstack([D[N]] * 2).tocsr(), k=3,
                                                                algorithm="maxscore")))
t = time.monotonic()
th.start()
time.sleep(1.0)
t1 = time.monotonic()
ix.refresh()
print("refresh", time.monotonic() - t1, flush=True)
th.join()
print("batch", time.monotonic() - t, flush=True)
want = [h.id for h in ix.search(D[N], k=3, algorithm="exhaustive")]
print("exact", all([h.id for h in hits] == want for hits in got[0]), flush=True)
"""


def test_refresh_does_not_wait_for_a_long_search_batch():
    """helper-121 MEDIUM: refresh() on a handle whose search_batch (threads=None) ran long
    queries waited until they ended (8.6 s behind two 150,000-term maxscore queries; the HTTP
    server refreshes before each request, so it answered nothing meanwhile): the batch held
    every worker of rayon's global pool, where refresh() verifies checksums. Batches now run
    on a pool of their own."""
    out = subprocess.run([sys.executable, "-c", _REFRESH_CHILD], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    vals = {line.split()[0]: line.split()[1] for line in out.stdout.split("\n") if line.strip()}
    if float(vals["batch"]) > 3.0:  # the batch was still running when refresh() was called
        assert float(vals["refresh"]) < 1.0, out.stdout
    assert vals["exact"] == "True", out.stdout


_TWO_BATCHES_CHILD = _LONG_QUERY_CHILD.split("for algo in sys.argv[1:]:")[0] + r"""
other = SparseIndex(None)
other.add([([1], [1.0]), ([2], [2.0])])
for threads in (None, 2):
    th = threading.Thread(target=lambda: ix.search_batch(sp.vstack([D[N]] * 2).tocsr(), k=10,
                                                         algorithm="maxscore", threads=threads))
    t = time.monotonic()
    th.start()
    time.sleep(1.0)
    t1 = time.monotonic()
    small = other.search_batch([{1: 1.0}], k=1, threads=threads)
    same = ix.search_batch(D[:3], k=1, threads=threads)
    print("small", time.monotonic() - t1, small[0][0].id, [h[0].id for h in same], flush=True)
    th.join()
    print("long", time.monotonic() - t, flush=True)
"""


def test_a_batch_does_not_wait_for_another_threads_long_batch():
    """helper-122 MEDIUM: with one shared batch pool, a one-query search_batch (of another
    index, or the same) waited 7 s behind a long batch of another thread, 122 s behind 8
    150,000-term wand queries; the HTTP server's /search_batch requests queued likewise. Each
    batch now runs on a pool of its own (idle pools are kept and reused)."""
    out = subprocess.run([sys.executable, "-c", _TWO_BATCHES_CHILD], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [x.split() for x in out.stdout.split("\n") if x.strip()]
    for small, long in zip(lines[0::2], lines[1::2]):
        assert small[2] == "0" and small[3:] == ["[0,", "1,", "2]"], out.stdout
        if float(long[1]) > 3.0:  # the long batch was still running
            assert float(small[1]) < 1.0, out.stdout


def test_http_blank_lines_and_long_names_in_errors(monkeypatch) -> None:
    """helper-122 LOWs: a line of blanks before the request line was answered "more than 16
    empty lines"; an unknown algorithm, field or filter operator of 1 MB, or a term id of
    4,000 digits, was echoed whole in the 400."""
    import json

    from sparsedex import _http
    from test_serve_http import _exchange, _serve

    index = SparseIndex(None, "float")
    index.add([([1, 2], [1.0, 2.0]), ([2], [3.0])], ids=["a", "b"])
    port = _serve(index, monkeypatch)
    got = _exchange(port, b" \t\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    # "16" not in the body (the Date header has it from 16:00 to 16:59, and every minute 16)
    assert got.startswith(b"HTTP/1.1 400") and b"only blanks" in got, got
    assert b"16" not in got.split(b"\r\n\r\n", 1)[1], got
    q = {"indices": [2], "values": [1.0]}
    big = "x" * 1_000_000
    for op, body in (("search", {"query": q, "algorithm": big}), ("search_batch", {"queries": [q], "algorithm": big}),
                     ("search", {"query": q, big: 1}), ("search", {"query": q, "filter": {"a": {"$" + big: 1}}}),
                     ("search", {"query": {"indices": [-int("9" * 4000)], "values": [1.0]}}),
                     ("search", {"query": {"indices": [int("9" * 4000)], "values": [1.0]}})):
        status, obj = _http.respond(index, "/" + op, json.dumps(body).encode())
        assert status == 400 and len(obj["error"]) < 400, (op, obj["error"][:300])


_FORK_CHILD = r"""
import os, signal, sys, threading
import numpy as np
from sparsedex import SparseIndex
r = np.random.default_rng(3)
docs = [(sorted(r.choice(100, size=5, replace=False).tolist()), (1 + r.integers(0, 5, 5)).tolist()) for _ in range(50)]
ix = SparseIndex(None, quantization="float")
ix.add(docs, ids=list(range(50)))
q = [{t: float(w) for t, w in zip(*docs[0])}]
want = [h.id for h in ix.search_batch(q, k=10)[0]]
stop = []
def busy(w):
    th = [1, 2, None, 3][w % 4]
    while not stop:
        ix.search_batch(q, k=10, threads=th)
ts = [threading.Thread(target=busy, args=(w,)) for w in range(6)]
for t in ts:
    t.start()
hung = bad = 0
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)
        got = [h.id for h in ix.search_batch(q, k=10, threads=[None, 1, 2][i % 3])[0]]
        os._exit(0 if got == want else 3)
    st = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    hung += st == -signal.SIGALRM
    bad += st not in (0, -signal.SIGALRM)
stop.append(1)
for t in ts:
    t.join()
print("hung", hung, "bad", bad, flush=True)
"""


def test_search_batch_in_a_child_forked_while_batches_run():
    """helper-123 MEDIUM: a child forked while the parent's threads ran search_batch hung in
    its own search_batch about once in 250-2,000 forks: a parent thread held the idle-pool
    registry's mutex at the fork. Each process now has its own registry (par::PerProcess),
    and the child never touches its parent's."""
    out = subprocess.run([sys.executable, "-c", _FORK_CHILD, "1500"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "hung 0 bad 0" in out.stdout, out.stdout
