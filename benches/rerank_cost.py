#!/usr/bin/env python
"""What exact search's float32 rerank costs on a u8 index: the same queries with
``scores="vectors"`` (the default: the exact float top-k, reranked from the stored rows) and
``scores="impacts"`` (the raw 8-bit top-k), paired query by query.

    python benches/rerank_cost.py --docs 1000000 --queries 200 --rounds 3 \\
        --out benches/results/rerank-cost-1000000.md

One segment of the synthetic SPLADE-like corpus (``_core.synthetic_corpus``, seed 0), built
with BP reordering, searched on one thread (``RAYON_NUM_THREADS=1``), k=10, one query per call.
Each round runs every query in both modes, the order alternating from query to query so that
neither mode profits from the other's warm caches; a query's time is its fastest round.
Reported: median, p90, p99 and max ms per query of each mode, the ratio of the medians and the
median of the per-query ratios. ``--data DIR`` measures a corpus of scipy.sparse
``docs.npz`` / ``queries.npz`` instead, e.g. ``../shared/data/debian``.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sparsedex import _core  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load(a):
    if a.data:
        import scipy.sparse as sps

        def csr(m):
            m = sps.csr_matrix(m)
            m.sort_indices()
            return (m.indptr.astype(np.uint64), m.indices.astype(np.uint32), m.data.astype(np.float32))

        docs = csr(sps.load_npz(Path(a.data) / "docs.npz"))
        qs = csr(sps.load_npz(Path(a.data) / "queries.npz"))
        return docs, qs, Path(a.data).name
    c = _core.synthetic_corpus(a.docs, a.queries, seed=a.seed)
    return (c[0], c[1], c[2]), (c[3], c[4], c[5]), f"synthetic {a.docs:,}"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--data", help="a corpus directory with docs.npz / queries.npz instead of synthetic")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--algorithm", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default="", help="a name for this build in the report (e.g. the commit)")
    ap.add_argument("--out", help="write the report here (.md, with a .json beside it)")
    a = ap.parse_args()

    docs, qs, name = load(a)
    t0 = time.perf_counter()
    ix = _core.Index.build(*docs, quantization="u8", reorder=True)
    log(f"built {name}: {time.perf_counter() - t0:.1f} s")
    qp, qi, qv = qs
    n_q = min(a.queries, len(qp) - 1)
    queries = [(qi[qp[i] : qp[i + 1]], qv[qp[i] : qp[i + 1]]) for i in range(n_q)]
    modes = ("vectors", "impacts")
    # Warm-up: the race's first queries, the page cache.
    for q in queries[:20]:
        for m in modes:
            ix.search(*q, k=a.k, algorithm=a.algorithm, scores=m)
    best = {m: [float("inf")] * n_q for m in modes}
    for r in range(a.rounds):
        for i, q in enumerate(queries):
            order = modes if (i + r) % 2 == 0 else modes[::-1]
            for m in order:
                t = time.perf_counter()
                ix.search(*q, k=a.k, algorithm=a.algorithm, scores=m)
                best[m][i] = min(best[m][i], (time.perf_counter() - t) * 1e3)
        log(f"round {r + 1}/{a.rounds}")
    rows = {m: {"median": statistics.median(best[m]), "p90": pct(best[m], 0.9), "p99": pct(best[m], 0.99),
                "max": max(best[m])} for m in modes}
    ratios = [v / i for v, i in zip(best["vectors"], best["impacts"])]
    res = {
        "corpus": name, "queries": n_q, "rounds": a.rounds, "k": a.k, "algorithm": a.algorithm, "label": a.label,
        "rows": rows, "ratio_of_medians": rows["vectors"]["median"] / rows["impacts"]["median"],
        "median_ratio": statistics.median(ratios), "p90_ratio": pct(ratios, 0.9),
        "machine": platform.platform(), "cpus": os.cpu_count(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    cmd = "python benches/rerank_cost.py " + " ".join(sys.argv[1:])
    md = [
        f"# Float rerank cost: {name}, {a.algorithm}, k={a.k} {('(' + a.label + ')') if a.label else ''}", "",
        f"`{cmd}` (commit {res['commit']}, {res['machine']}, {res['cpus']} cpus); {n_q} queries, "
        f"{a.rounds} paired rounds, per query the fastest round, ms.", "",
        "| scores | median | p90 | p99 | max |", "|---|---:|---:|---:|---:|",
    ]
    for m in modes:
        r = rows[m]
        md.append(f"| {m} | {r['median']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} | {r['max']:.3f} |")
    md += ["", f"vectors / impacts: ratio of medians {res['ratio_of_medians']:.3f}, per-query ratio median "
           f"{res['median_ratio']:.3f}, p90 {res['p90_ratio']:.3f}"]
    print("\n".join(md))
    if a.out:
        Path(a.out).write_text("\n".join(md) + "\n")
        Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
