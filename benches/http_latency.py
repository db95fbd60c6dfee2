#!/usr/bin/env python
"""What one request to ``sparsedex serve`` costs: the median milliseconds of a POST /search on
a small in-memory index (1,000 documents of 5 terms, k=10), over one kept-alive connection
(``http.client.HTTPConnection`` reused, as ``requests.Session`` and most clients do) and over a
new connection per request.

    python benches/http_latency.py [--requests 200] [--base /path/to/other/python]

``--base``: a directory holding another ``sparsedex`` package (a ``git worktree`` of an older
commit, with this build's ``_core`` copied in) measured in a process of its own beside this
checkout's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import http.client, json, socket, statistics, sys, threading, time
import numpy as np
from sparsedex import SparseIndex, _http

n_req = int(sys.argv[1])
ix = SparseIndex(None, "float")
rng = np.random.default_rng(0)
ix.add([{int(t): 1.0 for t in rng.choice(1000, 5, replace=False)} for _ in range(1000)])
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
threading.Thread(target=_http.serve_index, args=(ix, "127.0.0.1", port), daemon=True).start()
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        assert time.monotonic() < deadline
        time.sleep(0.02)
body = json.dumps({"query": {"indices": [3, 7], "values": [1.0, 0.5]}, "k": 10})


def run(keep):
    ts = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n_req):
        if not keep:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t = time.perf_counter()
        conn.request("POST", "/search", body)
        r = conn.getresponse()
        assert r.status == 200, r.status
        r.read()
        ts.append(time.perf_counter() - t)
        if not keep:
            conn.close()
    conn.close()
    return statistics.median(ts) * 1e3


print(f"{run(True):.2f} {run(False):.2f}")
"""


def measure(python_path: str | None, n: int) -> tuple[float, float]:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    out = subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, capture_output=True, text=True, check=True)
    keep, fresh = out.stdout.split()[-2:]
    return float(keep), float(fresh)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--base", default=None, help="another sparsedex package's parent directory")
    a = ap.parse_args()
    rows = []
    if a.base:
        rows.append(("base", *measure(a.base, a.requests)))
    rows.append(("this", *measure(None, a.requests)))
    print("| build | kept-alive connection, median ms | new connection per request, median ms |")
    print("|---|---:|---:|")
    for name, keep, fresh in rows:
        print(f"| {name} | {keep:.2f} | {fresh:.2f} |")


if __name__ == "__main__":
    main()
