"""Wall and CPU time of one segment build, with and without BP reordering, and its size.

Issue #10's target: a build of 1M documents including BP (recursive graph bisection) in at
most 2 minutes on 2 cores. Builds `SegmentView.build(..., reorder=...)` (u8 impacts, stored
vectors kept: what `SparseIndex` does) over `sparsedex._core.synthetic_corpus(docs, 1, seed)`
once per repetition and order, and reports the median wall and CPU seconds, the machine's load
average before and after (a shared machine: other processes take cores), and the index bytes
(`stats()`: postings only and with stored vectors).

    python benches/build_time.py --docs 1000000 --reps 1 --orders bp,none --name synthetic-1m-stop17
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--orders", default="bp,none", help="comma-separated reorder values (bp, signature, none)")
    p.add_argument("--name", required=True)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    from sparsedex import _core
    from sparsedex._segment import SegmentView

    t = time.perf_counter()
    indptr, indices, values = _core.synthetic_corpus(args.docs, 1, args.seed)[:3]
    gen_s = time.perf_counter() - t
    print(f"corpus: {args.docs:,} docs, {len(indices):,} postings, generated in {gen_s:.1f} s", flush=True)
    rows = {}
    for order in args.orders.split(","):
        reorder = {"none": False}.get(order, order)
        walls, cpus, loads = [], [], []
        st = None
        for r in range(args.reps):
            l0 = os.getloadavg()[0]
            c0, w0 = time.process_time(), time.perf_counter()
            ix = SegmentView.build((indptr, indices, values), quantization="u8", store_vectors=True, reorder=reorder)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            l1 = os.getloadavg()[0]
            st = dict(ix.stats())
            del ix
            walls.append(w)
            cpus.append(c)
            loads.append((l0, l1))
            print(f"{order} rep {r}: wall {w:.1f} s, CPU {c:.1f} s, load {l0:.2f} -> {l1:.2f}", flush=True)
        rows[order] = dict(wall_s=statistics.median(walls), cpu_s=statistics.median(cpus), walls=walls, cpus=cpus,
                           loads=loads, bytes=int(st["bytes"]), postings_bytes=int(st["postings_bytes"]),
                           vectors_bytes=int(st.get("vectors_bytes", 0)))
    cmd = "python benches/build_time.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)
    lines = [f"# Build time, {args.docs:,} synthetic documents ({len(indices):,} postings)", "",
             f"Command: `{cmd}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, shared with other work: the load "
             "average (1 min) before and after each build says how many cores were busy; > 2 means "
             "this build did not have the 2 cores to itself.", "",
             "| order | build wall s (median) | build CPU s | CPU / wall | load before → after | "
             "postings MB | with stored vectors MB |", "|---|---:|---:|---:|---|---:|---:|"]
    for order, r in rows.items():
        lds = ", ".join(f"{a:.1f} → {b:.1f}" for a, b in r["loads"])
        lines.append(f"| {order} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['cpu_s'] / r['wall_s']:.2f} | {lds} | "
                     f"{r['postings_bytes'] / 1e6:.1f} | {r['bytes'] / 1e6:.1f} |")
    if "bp" in rows:
        lines += ["", f"Target (issue #10): build incl. BP <= 120 s on 2 cores: measured {rows['bp']['wall_s']:.1f} s "
                  f"wall ({'met' if rows['bp']['wall_s'] <= 120 else 'NOT met'})."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        out = Path(args.out)
        (out / f"build-{args.name}.md").write_text(text)
        (out / f"build-{args.name}.json").write_text(json.dumps(dict(docs=args.docs, postings=len(indices),
                                                                    rows=rows), indent=1))


if __name__ == "__main__":
    main()
