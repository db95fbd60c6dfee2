#!/usr/bin/env python
"""Latency against collection size: how the default algorithm grows with the collection.

    python benches/scaling.py --sizes 62500,125000,250000,500000,1000000 --queries 200 \\
        --rounds 3 --out benches/results/

For each size, the synthetic SPLADE-like corpus of ``sparsedex._core.synthetic_corpus`` (the
harness's; the first ``n`` documents of one corpus drawn at the largest size, so every size
holds the smaller ones, and one query set) is built into one segment in the default order
(BP), and timed with one thread, one query per call, k=10: ``exhaustive`` (which reads every
posting of the query's terms, so it grows linearly), ``auto`` (the default), and
``approximate`` at target recall 0.97 (calibrated before timing, by its first query). scipy (the
harness's peer: the query's columns of the CSC document matrix times its weights, then an
argpartition) is the baseline of each size. Each value is the median over queries of the fastest of
``--rounds`` interleaved rounds (as the harness does).

The growth exponent between two sizes is ``log(t2 / t1) / log(n2 / n1)``: 1 is linear, below
1 sub-linear. Reported: per size and system the median ms, and the exponent fitted over all
sizes (least squares on log-log). Writes ``scaling.json``, ``scaling.md`` and ``scaling.png``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sparsedex import _core  # noqa: E402
from sparsedex._segment import SegmentView  # noqa: E402

SYSTEMS = ("scipy", "exhaustive", "auto", "approximate@0.97")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(fn, queries, rounds: int) -> list[float]:
    """Per query, the fastest of ``rounds`` runs (ms)."""
    best = [float("inf")] * len(queries)
    for _ in range(rounds):
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            fn(q)
            best[i] = min(best[i], (time.perf_counter() - t0) * 1e3)
    return best


def slope(ns: list[int], ts: list[float]) -> float:
    x, y = np.log(np.asarray(ns, float)), np.log(np.asarray(ts, float))
    return float(np.polyfit(x, y, 1)[0])


def plot(rows: list[dict], exps: dict[str, float], png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 5))
    for s, c in zip(SYSTEMS, ("#7f7f7f", "#9467bd", "#d62728", "#ff7f0e")):
        ax.plot([r["docs"] for r in rows], [r["median_ms"][s] for r in rows], "o-", color=c,
                label=f"{s} (exponent {exps[s]:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("documents")
    ax.set_ylabel("median ms / query (k=10, one thread)")
    ax.set_title("Latency against collection size (synthetic SPLADE-like)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="62500,125000,250000,500000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benches/results/")
    ap.add_argument("--name", default="scaling")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the plot of an earlier run's JSON")
    args = ap.parse_args()
    if args.replot:
        data = json.loads(Path(args.replot).read_text())
        plot(data["rows"], data["exponents"], Path(args.replot).with_suffix(".png"))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    import scipy.sparse as sp

    log(f"corpus: {sizes[-1]:,} documents, {args.queries} queries")
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(sizes[-1], args.queries, args.seed)
    di = np.asarray(di, dtype=np.int64)
    queries = [(qx[qi[i]:qi[i + 1]], qv[qi[i]:qi[i + 1]]) for i in range(args.queries)]
    rows = []
    for n in sizes:
        end = int(di[n])
        ptr, idx, val = di[: n + 1].astype(np.uint64), dx[:end], dv[:end]
        t0 = time.perf_counter()
        ix = SegmentView.build((ptr, idx, val))
        build_s = time.perf_counter() - t0
        csc = sp.csr_matrix((val, idx, ptr.astype(np.int64)), shape=(n, 30522)).tocsc()
        log(f"{n:,}: built in {build_s:.1f} s")

        def scipy_q(q) -> None:  # as the harness's scipy peer: the query's columns times its weights
            s = csc[:, q[0]] @ q[1]
            np.argpartition(-s, 9)[:10]

        fns = {
            "exhaustive": lambda q: ix.search(q, k=10, algorithm="exhaustive"),
            "auto": lambda q: ix.search(q, k=10, algorithm="auto"),
            "approximate@0.97": lambda q: ix.search(q, k=10, algorithm="approximate", target_recall=0.97),
        }
        t0 = time.perf_counter()
        ix.search(queries[0], k=10, algorithm="approximate", target_recall=0.97)  # calibrates (one core)
        cal_s = time.perf_counter() - t0
        for q in queries[:20]:  # warm-up (and auto's race)
            ix.search(q, k=10)
        med = {}
        med["scipy"] = statistics.median(timed(scipy_q, queries, args.rounds))
        for name in SYSTEMS[1:]:
            med[name] = statistics.median(timed(fns[name], queries, args.rounds))
        # recall of approximate against exact at this size
        hit = tot = 0
        for q in queries:
            ex = ix.search(q, k=10, algorithm="exhaustive")
            if len(ex[0]) < 10:
                continue
            ap_ = ix.search(q, k=10, algorithm="approximate", target_recall=0.97)
            kth = ex[1][-1]
            want = set(ex[0].tolist())
            hit += sum(1 for d, s in zip(ap_[0].tolist(), ap_[1].tolist()) if d in want or s >= kth)
            tot += 10
        rows.append({"docs": n, "build_s": build_s, "calibration_s": cal_s, "median_ms": med,
                     "approx_recall": hit / tot if tot else None})
        log(f"{n:,}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in med.items()))
        del ix, csc
    exps = {s: slope([r["docs"] for r in rows], [r["median_ms"][s] for r in rows]) for s in SYSTEMS}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
            "python": platform.python_version(), "queries": args.queries, "rounds": args.rounds,
            "k": 10, "command": " ".join(sys.argv)}
    (out / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows, "exponents": exps}, indent=1))
    lines = [
        "# Latency against collection size (synthetic SPLADE-like corpus, one segment, BP order)",
        "",
        f"Machine: {meta['machine']} (at the end of the run). k=10, {args.queries} queries, one thread, "
        f"median over queries of the fastest of {args.rounds} rounds. Command: `{meta['command']}`.",
        "",
        "| documents | build s | " + " | ".join(f"{s} ms" for s in SYSTEMS) + " | auto vs scipy | approximate recall@10 |",
        "|---:|---:|" + "---:|" * len(SYSTEMS) + "---:|---:|",
    ]
    for r in rows:
        m = r["median_ms"]
        lines.append(f"| {r['docs']:,} | {r['build_s']:.1f} | " + " | ".join(f"{m[s]:.3f}" for s in SYSTEMS)
                     + f" | {m['scipy'] / m['auto']:.1f}x | {r['approx_recall']:.3f} |")
    lines += ["", "Growth exponent (least squares of log latency on log documents; 1 = linear):", "",
              "| " + " | ".join(SYSTEMS) + " |", "|" + "---:|" * len(SYSTEMS),
              "| " + " | ".join(f"{exps[s]:.2f}" for s in SYSTEMS) + " |", ""]
    (out / f"{args.name}.md").write_text("\n".join(lines))
    plot(rows, exps, out / f"{args.name}.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
