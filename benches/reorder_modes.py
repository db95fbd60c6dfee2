#!/usr/bin/env python
"""The document order of a segment, end to end: `reorder="none" | "signature" | "bp"` through
the engine's own build and merge, and what each costs and buys.

    python benches/reorder_modes.py --corpus debian --queries 1000
    python benches/reorder_modes.py --corpus synthetic --docs 1000000 --queries 300 --rounds 2

All modes start from the same random shuffle of the documents (seeded), so that no order the
data came in helps any of them (debian's docs.npz is stored in signature order). Per mode:

- **build**: `_core.Index.build(..., reorder=mode)` of the whole corpus (validation, order,
  posting encoding), wall and CPU seconds (median of `--reps`), with the threads of this
  process (RAYON_NUM_THREADS, default: every core);
- **merge**: the corpus cut into `--segments` equal segments, each built with the mode, then
  `_core.merge` of all of them with the mode (what a store's merge does: the members' orders
  concatenated are BP's starting order), wall and CPU seconds, and documents per second;
- **size**: the file bytes and the postings bytes (`stats()`) of the built and merged index;
- **latency**: ms per query of every exact algorithm of `_core.algorithms()` on the built
  index and on the merged one (k=10, u8, one query per call, one thread). Rounds interleave
  the modes query by query (per query and algorithm the best of `--rounds`, then the median
  over queries), so that a busy machine slows every mode alike; ratios against `none` are
  the numbers to read.

Outputs `<out>/reorder-modes-<corpus>[-<docs>].md` and `.json`; progress on stderr.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
DEBIAN = BENCH_DIR.parent.parent / "shared" / "data" / "debian"
VOCAB = 30_522
MODES = ("none", "signature", "bp")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_corpus(args):
    """(doc indptr u64, indices u32, values f32), (query indptr, indices, values)."""
    if args.corpus == "debian":
        d = np.load(Path(args.data_dir) / "docs.npz")
        q = np.load(Path(args.data_dir) / "queries.npz")
        docs = (d["indptr"].astype(np.uint64), d["indices"].astype(np.uint32), d["data"].astype(np.float32))
        qs = (q["indptr"].astype(np.uint64), q["indices"].astype(np.uint32), q["data"].astype(np.float32))
        n_q = min(args.queries, len(qs[0]) - 1)
        return docs, (qs[0][: n_q + 1], qs[1][: int(qs[0][n_q])], qs[2][: int(qs[0][n_q])])
    from sparsedex import _core

    out = _core.synthetic_corpus(args.docs, args.queries, args.seed)
    return out[:3], out[3:]


def take_rows(csr, order):
    """Rows `order` of a CSR matrix, as a new CSR."""
    indptr, indices, values = csr
    order = np.asarray(order, dtype=np.int64)
    lens = (indptr[1:] - indptr[:-1])[order].astype(np.int64)
    new_ptr = np.zeros(len(order) + 1, np.uint64)
    np.cumsum(lens, out=new_ptr[1:])
    row_of = np.repeat(np.arange(len(order)), lens)
    within = np.arange(int(new_ptr[-1]), dtype=np.int64) - new_ptr[:-1].astype(np.int64)[row_of]
    src = indptr[:-1].astype(np.int64)[order][row_of] + within
    return new_ptr, indices[src], values[src]


def timed(fn, reps):
    """(result of the last run, median wall s, median CPU s)."""
    walls, cpus, out = [], [], None
    for _ in range(reps):
        out = None
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, float(np.median(walls)), float(np.median(cpus))


def latencies(indexes, queries, algos, k, rounds):
    """{(index name, algo): median over queries of the best-of-rounds ms}, interleaved."""
    best = {(n, a): np.full(len(queries), np.inf) for n in indexes for a in algos}
    for r in range(rounds):
        log(f"  latency round {r + 1}/{rounds}")
        for i, (qi, qv) in enumerate(queries):
            for n, ix in indexes.items():
                for a in algos:
                    t0 = time.perf_counter_ns()
                    ix.search(qi, qv, k, a)
                    dt = time.perf_counter_ns() - t0
                    b = best[(n, a)]
                    if dt < b[i]:
                        b[i] = dt
    return {key: float(np.median(v)) / 1e6 for key, v in best.items()}


def same_results(a, b, queries, k):
    """Whether two indexes of the same documents give the same scores for every query (ids
    may differ only among equal scores)."""
    for qi, qv in queries:
        _, sa = a.search(qi, qv, k, "exhaustive")
        _, sb = b.search(qi, qv, k, "exhaustive")
        if not np.array_equal(sa, sb):
            return False
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["debian", "synthetic"], default="debian")
    p.add_argument("--data-dir", default=str(DEBIAN))
    p.add_argument("--docs", type=int, default=1_000_000, help="synthetic corpus size")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="latency rounds")
    p.add_argument("--reps", type=int, default=1, help="runs per build / merge timing (median)")
    p.add_argument("--segments", type=int, default=10, help="segments merged in the merge timing")
    p.add_argument("--algorithms", default="", help="comma-separated (default: every exact one)")
    p.add_argument("--out", default=str(BENCH_DIR / "results"))
    args = p.parse_args()

    from sparsedex import _core

    docs, qs = load_corpus(args)
    n = len(docs[0]) - 1
    log(f"{args.corpus}: {n} docs, {len(docs[1])} postings, {len(qs[0]) - 1} queries")
    docs = take_rows(docs, np.random.default_rng(args.seed).permutation(n))
    q_ptr, q_ind, q_val = qs
    queries = [(q_ind[q_ptr[i] : q_ptr[i + 1]], q_val[q_ptr[i] : q_ptr[i + 1]]) for i in range(len(q_ptr) - 1)]
    algos = [a for a in args.algorithms.split(",") if a] or [a for a in _core.algorithms() if a != "approximate"]
    cuts = np.linspace(0, n, args.segments + 1).astype(np.int64)
    parts = [take_rows(docs, np.arange(a, b)) for a, b in zip(cuts[:-1], cuts[1:])]
    ids = np.arange(n, dtype=np.int64)

    res, built, merged = {}, {}, {}
    for mode in MODES:
        log(f"{mode}: build")
        ix, w, c = timed(lambda: _core.Index.build(*docs, n_terms=VOCAB, ids_int=ids, reorder=mode), args.reps)
        st = ix.stats()
        r = {"build_s": w, "build_cpu_s": c, "bytes": int(st["bytes"]), "postings_bytes": int(st["postings_bytes"])}
        built[mode] = ix
        log(f"{mode}: {args.segments} segments, then merge")
        t0, c0 = time.perf_counter(), time.process_time()
        segs = [
            _core.Index.build(*part, n_terms=VOCAB, ids_int=ids[a:b], reorder=mode)
            for part, a, b in zip(parts, cuts[:-1], cuts[1:])
        ]
        r["segments_build_s"], r["segments_build_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out, w, c = timed(lambda: _core.merge(segs, [None] * len(segs), reorder=mode), args.reps)
        m = out[0]
        del segs, out
        mst = m.stats()
        r.update(merge_s=w, merge_cpu_s=c, merge_docs_per_s=n / w, merged_bytes=int(mst["bytes"]),
                 merged_postings_bytes=int(mst["postings_bytes"]))
        merged[mode] = m
        res[mode] = r
        log(f"  {r}")
    check = queries[: min(50, len(queries))]
    for mode in MODES:
        res[mode]["same_scores_as_none"] = same_results(built["none"], built[mode], check, args.k) and same_results(
            built["none"], merged[mode], check, args.k
        )
    log("latency")
    indexes = {f"built:{m}": built[m] for m in MODES} | {f"merged:{m}": merged[m] for m in MODES}
    lat = latencies(indexes, queries, algos, args.k, args.rounds)
    for mode in MODES:
        res[mode]["ms"] = {a: lat[(f"built:{mode}", a)] for a in algos}
        res[mode]["merged_ms"] = {a: lat[(f"merged:{mode}", a)] for a in algos}

    meta = {
        "corpus": args.corpus,
        "docs": n,
        "postings": int(len(docs[1])),
        "queries": len(queries),
        "k": args.k,
        "rounds": args.rounds,
        "reps": args.reps,
        "segments": args.segments,
        "algorithms": algos,
        "threads": os.environ.get("RAYON_NUM_THREADS", str(os.cpu_count())),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "load_avg_end": os.getloadavg(),
        "command": "python benches/reorder_modes.py " + " ".join(sys.argv[1:]),
    }
    stem = f"reorder-modes-{args.corpus}" + (f"-{n}" if args.corpus == "synthetic" else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1))
    md = render(meta, res)
    (out / f"{stem}.md").write_text(md)
    print(md)


def render(meta, res):
    algos = meta["algorithms"]
    L = [
        f"# Document order on {meta['corpus']} ({meta['docs']:,} docs, {meta['postings']:,} postings, "
        f"{meta['queries']} queries, k={meta['k']})",
        "",
        f"Command: `{meta['command']}` ({meta['threads']} build threads; {meta['machine']}, shared: "
        f"load average at the end {meta['load_avg_end'][0]:.1f}; compare ratios within a table).",
        "",
        "## Cost",
        "",
        "| reorder | build s (CPU s) | x none | index MB | postings MB | "
        f"{meta['segments']} segment builds s | merge s (CPU s) | x none | merge docs/s | merged postings MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    b0, m0 = res["none"]["build_s"], res["none"]["merge_s"]
    for mode, r in res.items():
        L.append(
            f"| {mode} | {r['build_s']:.2f} ({r['build_cpu_s']:.2f}) | {r['build_s'] / b0:.2f} | {r['bytes'] / 1e6:.1f} | "
            f"{r['postings_bytes'] / 1e6:.1f} | {r['segments_build_s']:.2f} | {r['merge_s']:.2f} ({r['merge_cpu_s']:.2f}) | "
            f"{r['merge_s'] / m0:.2f} | {r['merge_docs_per_s']:,.0f} | {r['merged_postings_bytes'] / 1e6:.1f} |"
        )
    for title, key in (("one index built from all documents", "ms"), (f"merged from {meta['segments']} segments", "merged_ms")):
        L += ["", f"## ms per query, {title} (median; in brackets: x the same algorithm on `none`)", ""]
        L.append("| reorder | " + " | ".join(algos) + " |")
        L.append("|---|" + "---:|" * len(algos))
        for mode, r in res.items():
            cells = [f"{r[key][a]:.3f} ({r[key][a] / res['none'][key][a]:.2f})" for a in algos]
            L.append(f"| {mode} | " + " | ".join(cells) + " |")
    L += ["", "Same top-10 scores as `none` on 50 queries (built and merged): "
          + ", ".join(f"{m} {'yes' if r['same_scores_as_none'] else 'NO'}" for m, r in res.items())]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
