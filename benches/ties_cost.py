#!/usr/bin/env python
"""Cost of the canonical tie order: per-algorithm search latency of two builds of sparsedex
on the same index files, measured in interleaved rounds in the same run.

    python benches/ties_cost.py --corpus debian --index /tmp/ix-debian --build   # once
    python benches/ties_cost.py --corpus debian --index /tmp/ix-debian \
        --base /path/to/baseline/python --new python --rounds 5

``--base`` / ``--new``: directories holding a ``sparsedex`` package (its ``_core`` extension
built from the branch to compare). Each round runs one process per build (alternating
which goes first); a process opens the index, runs every exact algorithm over the queries
(``search_batch``, one thread, k=10, after a warm-up pass) and prints ms/query. Reports the
median over rounds of each build and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

ALGOS = ["exhaustive", "taat-maxscore", "maxscore", "wand", "bmw", "bmm", "bmp", "sp", "bmt", "auto"]


def corpus(name: str, n_docs: int, n_queries: int):
    import numpy as np
    if name == "debian":
        d = np.load("/work/shared/data/debian/docs.npz")
        q = np.load("/work/shared/data/debian/queries.npz")
        docs = (d["indptr"].astype(np.int64), d["indices"].astype(np.uint32), d["data"].astype(np.float32))
        qs = (q["indptr"].astype(np.int64), q["indices"].astype(np.uint32), q["data"].astype(np.float32))
    else:
        from sparsedex import _core
        di, dx, dv, qi, qx, qv = _core.synthetic_corpus(n_docs, n_queries, 0)
        docs, qs = (di.astype(np.int64), dx, dv), (qi.astype(np.int64), qx, qv)
    import scipy.sparse as sp
    nq = min(n_queries, len(qs[0]) - 1)
    qm = sp.csr_matrix((qs[2], qs[1], qs[0]), shape=(len(qs[0]) - 1, 30522))[:nq]
    return docs, qm


def build(a) -> None:
    from sparsedex import SparseIndex
    docs, _ = corpus(a.corpus, a.docs, a.queries)
    t = time.perf_counter()
    ix = SparseIndex(None, vocab_size=30522, path=a.index, store_texts=False)
    ix.add(docs)
    ix.commit()
    ix.close()
    print(f"built {a.index} in {time.perf_counter() - t:.1f}s", file=sys.stderr)


def run(a) -> None:
    from sparsedex import SparseIndex
    _, qm = corpus(a.corpus, a.docs, a.queries)
    ix = SparseIndex.open(a.index)
    out = {}
    for algo in ALGOS:
        ix.search_batch(qm, k=10, algorithm=algo, threads=1, with_payload=False)  # warm-up
        t = time.perf_counter()
        ix.search_batch(qm, k=10, algorithm=algo, threads=1, with_payload=False)
        out[algo] = (time.perf_counter() - t) * 1e3 / qm.shape[0]
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=["debian", "synthetic"], default="debian")
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--index", required=True)
    ap.add_argument("--build", action="store_true")
    ap.add_argument("--run", action="store_true", help="(internal) one measuring process")
    ap.add_argument("--base")
    ap.add_argument("--new")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if a.build:
        return build(a)
    if a.run:
        return run(a)
    import statistics
    res: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for r in range(a.rounds):
        for name in (["base", "new"] if r % 2 == 0 else ["new", "base"]):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(getattr(a, name)))
            cmd = [sys.executable, __file__, "--run", "--corpus", a.corpus, "--docs", str(a.docs),
                   "--queries", str(a.queries), "--index", a.index]
            res[name].append(json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"| algorithm | base ms/query | new ms/query | new / base |  ({a.corpus}, {a.rounds} rounds, medians)")
    print("|---|---:|---:|---:|")
    for algo in ALGOS:
        b = statistics.median(x[algo] for x in res["base"])
        n = statistics.median(x[algo] for x in res["new"])
        print(f"| {algo} | {b:.3f} | {n:.3f} | {n / b:.3f} |")


if __name__ == "__main__":
    main()
