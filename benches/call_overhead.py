#!/usr/bin/env python
"""What one search call costs in Python around the engine: microseconds per call of
``SegmentView.search`` and ``SparseIndex.search`` (with and without payloads, and for the query
shapes users bring: a dict, lists, int64 ids) beside the bare
engine call (``_core.Index.search``), on a tiny index where the search itself takes about a
microsecond, so that what is left is the binding's and the package's own work.

    python benches/call_overhead.py                               # this checkout
    python benches/call_overhead.py --base /path/to/old/python    # beside another build

``--base``: a directory holding another ``sparsedex`` package (e.g. a ``git worktree`` of an
older commit, with this build's ``_core`` extension copied in when only the Python side
differs). Each round runs one process per build, alternating which goes first; the report is
the median over rounds of each process's median per call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, tempfile, time
import numpy as np
import sparsedex
from sparsedex._segment import SegmentView

rng = np.random.default_rng(0)
n = 1000
rows = [np.sort(rng.choice(1000, 5, replace=False)) for _ in range(n)]
docs = [{int(t): float(rng.random() + 0.1) for t in r} for r in rows]
indptr = np.zeros(n + 1, np.int64)
indptr[1:] = np.cumsum([len(r) for r in rows])
ind = np.concatenate(rows).astype(np.uint32)
val = np.array([w for d in docs for w in d.values()], np.float32)
seg = SegmentView.build((indptr, ind, val), quantization="u8", store_vectors=True)
ix = sparsedex.SparseIndex.create(tempfile.mkdtemp() + "/ix", encoder=None)
ix.add(docs, ids=list(range(n)), payloads=[{"n": i} for i in range(n)])
ix.commit()
# the same documents without payloads (a search then has none to read)
bare = sparsedex.SparseIndex.create(tempfile.mkdtemp() + "/bare", encoder=None)
bare.add(docs, ids=list(range(n)))
bare.commit()
q = (np.array([3, 7, 11], np.uint32), np.array([1.0, 0.5, 0.25], np.float32))
assert len(ix.search(q, k=10)) == 10 and len(seg.search(q[0], q[1], k=10)[0]) == 10

q_dict = {3: 1.0, 7: 0.5, 11: 0.25}
q_lists = ([3, 7, 11], [1.0, 0.5, 0.25])
q_int64 = (np.array([3, 7, 11], np.int64), np.array([1.0, 0.5, 0.25], np.float32))
try:
    import scipy.sparse
    q_scipy = scipy.sparse.csr_matrix((q[1], q[0], [0, 3]), shape=(1, 1000))
except ImportError:  # scipy is optional
    q_scipy = None

def per_call(f, n=4000):
    for _ in range(300):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns()
        f()
        ts.append(time.perf_counter_ns() - t)
    ts.sort()
    return ts[len(ts) // 2] / 1000

out = {
    "engine (_core.Index.search)": per_call(lambda: seg._core.search(q[0], q[1], 10, "auto", target_recall=None, scores="vectors")),
    "SegmentView.search": per_call(lambda: seg.search(q[0], q[1], k=10)),
    "SparseIndex.search": per_call(lambda: ix.search(q, k=10)),
    "SparseIndex.search, no payloads stored": per_call(lambda: bare.search(q, k=10)),
    "SparseIndex.search, with_payload=False": per_call(lambda: ix.search(q, k=10, with_payload=False)),
    # the shapes users bring: a dict, Python lists, fastembed's int64 / float32 arrays
    "SparseIndex.search, with_payload=False, dict query": per_call(
        lambda: ix.search(q_dict, k=10, with_payload=False)),
    "SparseIndex.search, with_payload=False, list query": per_call(
        lambda: ix.search(q_lists, k=10, with_payload=False)),
    "SparseIndex.search, with_payload=False, int64 query": per_call(
        lambda: ix.search(q_int64, k=10, with_payload=False)),
}
if q_scipy is not None:
    out["SparseIndex.search, with_payload=False, scipy.sparse row query"] = per_call(
        lambda: ix.search(q_scipy, k=10, with_payload=False))
print(json.dumps(out))
"""


def run(path: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.path.abspath(path) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"the measuring process failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", help="a directory holding another sparsedex package to compare with")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    builds = {"this": None} if not a.base else {"base": a.base, "this": None}
    got: dict[str, list[dict[str, float]]] = {b: [] for b in builds}
    for r in range(a.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for b in order:
            got[b].append(run(builds[b]))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    keys = list(got["this"][0])
    # the median over rounds, and the least: a busy machine slows whole processes at a time
    # (the engine's own 1.6 us call measured 2.4 us in some), which the least leaves out
    head = "| us per call (median of rounds; least) | " + " | ".join(builds) + (" | this / base (least) |" if a.base else " |")
    print(head)
    print("|---" * (len(builds) + 1 + (1 if a.base else 0)) + "|")
    for k in keys:
        med = {b: statistics.median(x[k] for x in got[b]) for b in builds}
        low = {b: min(x[k] for x in got[b]) for b in builds}
        cells = " | ".join(f"{med[b]:.2f}; {low[b]:.2f}" for b in builds)
        ratio = f" | {low['this'] / low['base']:.2f}x" if a.base else ""
        print(f"| {k} | {cells}{ratio} |")


if __name__ == "__main__":
    main()
