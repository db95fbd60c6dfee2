#!/usr/bin/env python
"""Query latency of the one segment the background merges make, before and after its reorder
job: what a bulk load can search as soon as ``wait_for_merges()`` returns.

    python benches/merged_unordered.py --docs 1000000 --out benches/results/merged-unordered-stop21.md

The adds of ``benches/updates.py`` (synthetic corpus, seed 0, batches of 10,000, ``commit()``
after each, background merges, ``reorder="bp"``), with the reorder job held back
(``MergePolicy(reorder_delay=1e9, reorder_after_commits=10**9)``) so that the merged segment
stays a concatenation of its members (each in its own BP or signature order). Then: query
latency (k=10, one thread; per query the fastest of ``--rounds`` rounds after one warm-up
round; default float32 scores and ``scores="impacts"``, paired), then
``wait_for_merges(reorder=True)`` and the same measurement on the reordered segment.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sparsedex import SparseIndex, _core  # noqa: E402
from sparsedex.index import MergePolicy  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure(ix: SparseIndex, queries, k: int, rounds: int) -> dict:
    for q in queries:  # warm-up round (auto's race, caches)
        ix.search(q, k=k)
    best = {m: [float("inf")] * len(queries) for m in ("vectors", "impacts")}
    for r in range(rounds):
        for i, q in enumerate(queries):
            for m in (("vectors", "impacts") if (i + r) % 2 == 0 else ("impacts", "vectors")):
                t = time.perf_counter()
                ix.search(q, k=k, scores=m)
                best[m][i] = min(best[m][i], (time.perf_counter() - t) * 1e3)
    out = {}
    for m, xs in best.items():
        s = sorted(xs)
        out[m] = {"median": statistics.median(s), "p90": s[min(len(s) - 1, int(0.9 * len(s)))]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    dp, di, dv, qp, qi, qv = _core.synthetic_corpus(a.docs, a.queries, 0)
    queries = [(qi[qp[i] : qp[i + 1]], qv[qp[i] : qp[i + 1]]) for i in range(len(qp) - 1)]
    with tempfile.TemporaryDirectory() as tmp:
        policy = MergePolicy(reorder_delay=1e9, reorder_after_commits=10**9)
        ix = SparseIndex(None, "u8", path=Path(tmp) / "ix", store_texts=False, max_weight=float(dv.max()),
                         merge_policy=policy)
        t0 = time.perf_counter()
        for a0 in range(0, a.docs, a.batch):
            b0 = min(a.docs, a0 + a.batch)
            lo, hi = int(dp[a0]), int(dp[b0])
            ix.add((np.asarray(dp[a0 : b0 + 1] - dp[a0], dtype=np.int64), di[lo:hi], dv[lo:hi]),
                   ids=list(range(a0, b0)))
            ix.commit()
        ix.wait_for_merges()
        merged_s = time.perf_counter() - t0
        segs = len(ix.segments())
        log(f"merged: {segs} segment(s), {a.docs / merged_s:,.0f} docs/s")
        before = measure(ix, queries, a.k, a.rounds)
        t1 = time.perf_counter()
        ix.wait_for_merges(reorder=True)
        reorder_s = time.perf_counter() - t1
        after = measure(ix, queries, a.k, a.rounds)
        ix.close()
    res = {"docs": a.docs, "segments_merged": segs, "docs_per_s_merged": a.docs / merged_s,
           "reorder_s": reorder_s, "concatenated": before, "reordered": after,
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()}
    md = [f"# The merged segment before and after its reorder job ({a.docs:,} documents)", "",
          f"`python benches/merged_unordered.py {' '.join(sys.argv[1:])}` (commit {res['commit']}): "
          f"adds to {segs} segment(s) at {res['docs_per_s_merged']:,.0f} docs/s (reorder job held back), "
          f"then the reorder job alone {reorder_s:.1f} s. Query ms, k={a.k}, one thread, {len(queries)} queries, "
          f"per query the fastest of {a.rounds} rounds.", "",
          "| segment | float32 scores (default) median / p90 | 8-bit scores median / p90 |",
          "|---|---:|---:|"]
    for name, r in (("concatenated (as merged)", before), ("reordered (BP)", after)):
        md.append(f"| {name} | {r['vectors']['median']:.3f} / {r['vectors']['p90']:.3f} | "
                  f"{r['impacts']['median']:.3f} / {r['impacts']['p90']:.3f} |")
    print("\n".join(md))
    if a.out:
        Path(a.out).write_text("\n".join(md) + "\n")
        Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
