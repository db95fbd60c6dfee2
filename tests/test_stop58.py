"""Stop 58: Ctrl-C stops search_batch."""
import subprocess
import sys

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
