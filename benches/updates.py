#!/usr/bin/env python
"""The living index, measured: add throughput with commits, latency against the number of
segments, and filtered search against the filter's selectivity.

    python benches/updates.py --docs 1000000 --batch 10000 --queries 200 --seed 0 \\
        --out benches/results/

On the synthetic SPLADE-like corpus of ``sparsedex._core.synthetic_corpus`` (the harness's):

1. **Add throughput.** A durable index in a temporary directory, documents added in batches of
   ``--batch`` (CSR arrays, with a payload each), ``commit()`` after every batch, the default
   merge policy (tiered, factor 10). Reported: documents/s over the whole run (adds, commits
   with their fsyncs, merges), the commit time distribution and the final segment count.
2. **Segments.** The same documents split into 1, 10 and 50 segments (merges off), then one
   merged segment: median and p90 ms/query (one thread, one query per call, k=10), all with
   identical hits (checked).
3. **Filters.** One merged index; payload ``bucket`` uniform in 0..999, independent of the
   documents' content and storage order (the hard case: no locality to exploit). Filters
   ``bucket < 10 / 100 / 500`` (1 %, 10 %, 50 %) and 0.1 %: median ms/query with the filter's
   allowed-set cached (steady state), the one-off cost of evaluating the filter over all
   documents, and a brute-force check of the hits.

Timings are medians of ``--rounds`` interleaved rounds (each the median over the queries).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # builds on one core too: a fair, stable baseline

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sparsedex import SparseIndex, _core  # noqa: E402
from sparsedex.filters import compile_filter  # noqa: E402
from sparsedex.index import MergePolicy  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rows(csr, a: int, b: int):
    indptr, indices, values = csr
    lo, hi = int(indptr[a]), int(indptr[b])
    return (np.asarray(indptr[a : b + 1] - indptr[a], dtype=np.int64), indices[lo:hi], values[lo:hi])


def query_list(q):
    indptr, indices, values = q
    return [(indices[indptr[i] : indptr[i + 1]], values[indptr[i] : indptr[i + 1]]) for i in range(len(indptr) - 1)]


def latency(ix: SparseIndex, queries, k: int, **kw) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        ix.search(q, k=k, **kw)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def med_p90(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(0.9 * len(s)))]


def build_segments(path: Path, docs, payloads, n_segments: int) -> SparseIndex:
    ix = SparseIndex(None, "u8", path=path, merge_policy=MergePolicy(factor=0), store_texts=False,
                     max_weight=float(docs[2].max()))
    n = len(docs[0]) - 1
    bounds = np.linspace(0, n, n_segments + 1).astype(int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        ix.add(rows(docs, a, b), ids=list(range(a, b)), payloads=payloads[a:b])
        ix.commit()
    return ix


def add_run(a, path: Path, docs, payloads, max_weight: float, policy: MergePolicy, reorder: str, label: str,
            queries=None) -> dict:
    """One adds run: batches of ``a.batch`` with a commit after each, then wait for merges,
    then for the reorder jobs (``wait_for_merges(reorder=True)``, where the package has them),
    then the query latency of the settled index (one cold round over ``queries``, then
    ``--settled-rounds`` warm ones in both score modes)."""
    ix = SparseIndex(None, "u8", path=path, store_texts=False, max_weight=max_weight, merge_policy=policy,
                     reorder=reorder)
    commits = []
    t_all = time.perf_counter()
    c_all = time.process_time()  # CPU of every thread of the process: the work, whatever the load
    for a0 in range(0, a.docs, a.batch):
        b0 = min(a.docs, a0 + a.batch)
        t0 = time.perf_counter()
        ix.add(rows(docs, a0, b0), ids=list(range(a0, b0)), payloads=payloads[a0:b0])
        t1 = time.perf_counter()
        ix.commit()
        commits.append((t1 - t0, time.perf_counter() - t1, len(ix.segments())))
        if (b0 // a.batch) % 10 == 0:
            log(f"  {label}: added {b0} documents, {len(ix.segments())} segments, "
                f"{b0 / (time.perf_counter() - t_all):,.0f} docs/s so far")
    last_commit = time.perf_counter() - t_all
    cpu_last = time.process_time() - c_all
    ix.wait_for_merges()
    total = time.perf_counter() - t_all
    cpu_merged = time.process_time() - c_all
    if "reorder" in inspect.signature(ix.wait_for_merges).parameters:
        ix.wait_for_merges(reorder=True)
    reordered = time.perf_counter() - t_all
    cpu_reordered = time.process_time() - c_all
    nan2 = (float("nan"), float("nan"))
    # Cold: one round, as earlier stops measured it (it includes the race's warm-up: the first
    # queries of each cost class run every candidate algorithm).
    settled = med_p90(latency(ix, queries, a.k)) if queries else nan2
    # Warm: per query the fastest of --settled-rounds rounds, the default scores (float32,
    # reranked) and the raw 8-bit scores paired query by query, in alternating order.
    warm = {m: [float("inf")] * len(queries or []) for m in ("vectors", "impacts")}
    for r in range(a.settled_rounds if queries else 0):
        for i, q in enumerate(queries):
            for m in (("vectors", "impacts") if (i + r) % 2 == 0 else ("impacts", "vectors")):
                t0 = time.perf_counter()
                ix.search(q, k=a.k, scores=m)
                warm[m][i] = min(warm[m][i], (time.perf_counter() - t0) * 1e3)
    warm_v = med_p90(warm["vectors"]) if queries and a.settled_rounds else nan2
    warm_i = med_p90(warm["impacts"]) if queries and a.settled_rounds else nan2
    ct = [c[1] for c in commits]
    disk = sum(f.stat().st_size for f in path.iterdir())
    out = {
        "reorder": reorder,
        "seconds": total,
        "seconds_to_last_commit": last_commit,
        "docs_per_s": a.docs / total,
        "docs_per_s_to_last_commit": a.docs / last_commit,
        "seconds_reordered": reordered,
        "cpu_s_to_last_commit": cpu_last,
        "cpu_s_merged": cpu_merged,
        "cpu_s_reordered": cpu_reordered,
        "docs_per_s_reordered": a.docs / reordered,
        "settled_query_ms_median": settled[0],
        "settled_query_ms_p90": settled[1],
        "settled_warm_ms_median": warm_v[0],
        "settled_warm_ms_p90": warm_v[1],
        "settled_warm_impacts_ms_median": warm_i[0],
        "settled_warm_impacts_ms_p90": warm_i[1],
        "commits": len(commits),
        "add_ms_median": statistics.median(c[0] for c in commits) * 1e3,
        "commit_ms_median": statistics.median(ct) * 1e3,
        "commit_ms_p90": sorted(ct)[int(0.9 * len(ct))] * 1e3,
        "commit_ms_max": max(ct) * 1e3,
        "max_segments": max(c[2] for c in commits),
        "final_segments": len(ix.segments()),
        "disk_mb": disk / 1e6,
        "segments_after_each_commit": [c[2] for c in commits],
    }
    log(f"adds, {label}: {a.docs / total:,.0f} docs/s, {len(ix.segments())} segments at the end")
    ix.close()
    del ix
    shutil.rmtree(path, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--settled-rounds", type=int, default=3,
                    help="warm rounds over the queries on the settled index (after the cold one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--segments", default="1,10,50")
    ap.add_argument("--only", default="adds,segments,filters")
    ap.add_argument("--policies", default="background,inside,none",
                    help="merge policies of the adds part: background (default policy), inside, none")
    ap.add_argument("--reorders", default="bp",
                    help="document orders of the adds part, comma-separated rows: bp (the default), signature, none")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of each adds row (the row reports the run of median throughput)")
    ap.add_argument("--tmp", default=None, help="directory for the indexes (default: system temp)")
    ap.add_argument("--out", default=None, help="write updates-<docs>.{json,md,png} there")
    a = ap.parse_args()
    only = set(a.only.split(","))

    log(f"corpus: {a.docs} documents, {a.queries} queries (seed {a.seed})")
    dp, di, dv, qp, qi, qv = _core.synthetic_corpus(a.docs, a.queries, a.seed)
    docs = (dp, di, dv)
    queries = query_list((qp, qi, qv))
    rng = np.random.default_rng(a.seed)
    buckets = rng.integers(0, 1000, size=a.docs)
    payloads = [{"bucket": int(b)} for b in buckets.tolist()]
    tmp = Path(tempfile.mkdtemp(prefix="sdx-updates-", dir=a.tmp))
    res: dict = {
        "docs": a.docs, "batch": a.batch, "queries": a.queries, "k": a.k, "seed": a.seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "simd": _core.simd_kernel(),
    }
    try:
        if "adds" in only:
            res["adds"] = {}
            chosen = set(a.policies.split(","))
            runs = [(key, policy_name, policy, reorder)
                    for key, policy_name, policy in (
                        ("background", "tiered, background (default)", MergePolicy()),
                        ("inside", "tiered, inside commit", MergePolicy(background=False)),
                        ("none", "no merges", MergePolicy(factor=0)),
                    )
                    if key in chosen
                    for reorder in a.reorders.split(",")]
            res["adds_load"] = {"before": os.getloadavg()}
            results: dict = {}
            # rows interleaved run by run, so that a change of machine load hits every row alike
            for rep in range(a.repeats):
                for _key, policy_name, policy, reorder in runs:
                    row = policy_name if a.reorders == "bp" else f"{policy_name}, reorder {reorder}"
                    r = add_run(a, tmp / "adds", docs, payloads, float(dv.max()), policy, reorder, f"{row} #{rep + 1}",
                                queries)
                    results.setdefault(row, []).append(r)
            for row, rs in results.items():
                rs.sort(key=lambda r: r["docs_per_s"])
                best = dict(rs[len(rs) // 2])
                best["runs_docs_per_s"] = [r["docs_per_s"] for r in rs]
                res["adds"][row] = best
            res["adds_load"]["after"] = os.getloadavg()

        if "segments" in only:
            seg_counts = [int(x) for x in a.segments.split(",")]
            idxs = {}
            for s in seg_counts:
                log(f"segments: building {s}")
                idxs[s] = build_segments(tmp / f"seg{s}", docs, payloads, s)
            log("segments: merged (from the largest)")
            big = max(seg_counts)
            merged = build_segments(tmp / "merged", docs, payloads, big)
            t0 = time.perf_counter()
            merged.merge()
            merge_s = time.perf_counter() - t0
            idxs["merged"] = merged
            ref = [merged.search(q, k=a.k) for q in queries]
            for key, ix in idxs.items():
                for q, want in zip(queries[:20], ref[:20]):
                    got = ix.search(q, k=a.k)
                    assert [h.score for h in got] == [h.score for h in want], key
            rounds: dict = {key: [] for key in idxs}
            for r in range(a.rounds):
                for key, ix in idxs.items():
                    rounds[key].append(latency(ix, queries, a.k))
            out = {}
            for key, rs in rounds.items():
                meds = [med_p90(x) for x in rs]
                best = min(meds)
                out[str(key)] = {"segments": len(idxs[key].segments()), "median_ms": best[0], "p90_ms": best[1]}
            base = out["merged"]["median_ms"]
            for v in out.values():
                v["vs_merged"] = v["median_ms"] / base
            res["segments"] = {"latency": out, "merge_s": merge_s}
            log(f"segments: {json.dumps(out)}")
            for ix in idxs.values():
                ix.close()
            del idxs, ix, merged

        if "filters" in only:
            log("filters: one merged index")
            ix = build_segments(tmp / "filters", docs, payloads, 1)
            cases = {"none": None, "0.1%": {"bucket": {"$lt": 1}}, "1%": {"bucket": {"$lt": 10}},
                     "10%": {"bucket": {"$lt": 100}}, "50%": {"bucket": {"$lt": 500}}}
            seg = ix._store.snapshot.states[0]
            t0 = time.perf_counter()
            seg.segment.columns.column("bucket")  # the field's columns, built once per segment
            columns_s = time.perf_counter() - t0
            evals = {}
            for name, f in cases.items():
                if f is None:
                    continue
                flt = compile_filter(f)
                ts = []
                for _ in range(5):
                    seg.segment._masks.clear()
                    t0 = time.perf_counter()
                    seg.segment.filter_set(flt)
                    ts.append((time.perf_counter() - t0) * 1e3)
                evals[name] = statistics.median(ts)
            # correctness: filtered hits = the brute-force top-k of the matching documents
            vi_all = [ix.search(q, k=2000) for q in queries[:5]]
            for name, f in cases.items():
                if f is None:
                    continue
                flt = compile_filter(f)
                for q, every in zip(queries[:5], vi_all):
                    got = [(h.id, h.score) for h in ix.search(q, k=a.k, filter=f)]
                    want = [(h.id, h.score) for h in every if flt.matches(h.payload)][: a.k]
                    if len(want) == a.k:  # the 2,000 unfiltered hits held the whole answer
                        assert [s for _, s in got] == [s for _, s in want], name
            rounds = {name: [] for name in cases}
            for r in range(a.rounds):
                for name, f in cases.items():
                    rounds[name].append(latency(ix, queries, a.k, filter=f))
            out = {}
            for name, rs in rounds.items():
                best = min(med_p90(x) for x in rs)
                out[name] = {"median_ms": best[0], "p90_ms": best[1], "filter_eval_ms": evals.get(name)}
            base = out["none"]["median_ms"]
            for v in out.values():
                v["vs_unfiltered"] = v["median_ms"] / base
            res["filters"] = {"latency": out, "payload_columns_s": columns_s}
            log(f"filters: {json.dumps(out)}")
            ix.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    md = render(res)
    print(md)
    if a.out:
        out_dir = Path(a.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / f"updates-{a.docs}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
        stem.with_suffix(".md").write_text(md)
        plot(res, stem.with_suffix(".png"))
        log(f"wrote {stem}.{{json,md,png}}")


def render(res: dict) -> str:
    lines = [f"# Living index at {res['docs']:,} documents", "",
             f"Machine: {res['machine']}, SIMD {res['simd']}. k={res['k']}, {res['queries']} queries, one thread.", ""]
    if "adds" in res:
        lines += [
            f"## Adds: batches of {res['batch']:,}, commit after each", "",
            *([f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in res['adds_load']['before'])}; "
               f"after: {', '.join(f'{x:.1f}' for x in res['adds_load']['after'])}. Each row: the run of median "
               f"throughput of {len(next(iter(res['adds'].values())).get('runs_docs_per_s', [0]))} "
               f"(all runs' docs/s in the JSON).", ""] if "adds_load" in res else []),
            "| merge policy | docs/s (all merges done) | docs/s (to the last commit) | docs/s (reordered) | total s | commits | add ms (median) | commit ms median / p90 / max | max segments | final segments | disk MB | settled query ms median / p90 | warm: float32 (default) / 8-bit scores, median (p90) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in res["adds"].items():
            lines.append(
                f"| {name} | {r['docs_per_s']:,.0f} | {r['docs_per_s_to_last_commit']:,.0f} | "
                f"{r.get('docs_per_s_reordered', r['docs_per_s']):,.0f} | {r['seconds']:.1f} | {r['commits']} | {r['add_ms_median']:.1f} | "
                f"{r['commit_ms_median']:.0f} / {r['commit_ms_p90']:.0f} / {r['commit_ms_max']:.0f} | {r['max_segments']} | "
                f"{r['final_segments']} | {r['disk_mb']:,.0f} | "
                f"{r.get('settled_query_ms_median', float('nan')):.3f} / {r.get('settled_query_ms_p90', float('nan')):.3f} | "
                f"{r.get('settled_warm_ms_median', float('nan')):.3f} ({r.get('settled_warm_ms_p90', float('nan')):.3f}) / "
                f"{r.get('settled_warm_impacts_ms_median', float('nan')):.3f} "
                f"({r.get('settled_warm_impacts_ms_p90', float('nan')):.3f}) |"
            )
        lines += ["", "Commits fsync every new file. Background merges run in a thread and commit on their own "
                  "(the run ends when they are done); inside commit, a commit that fills a level merges it before "
                  "returning, which is where that row's p90 and maximum come from. Segments are counted right "
                  "after each commit. Reordered: until `wait_for_merges(reorder=True)` returns (merged segments "
                  "rebuilt in the index's order; the same as all merges done where merges reorder). Settled "
                  "query: one round over the queries on the final index (cold: it includes auto's warm-up, "
                  "where the first queries of each query-cost class run every candidate algorithm). Warm: "
                  "then per query the fastest of `--settled-rounds` rounds, exact search with its default "
                  "float32 scores (8-bit traversal, float rerank) and with `scores=\"impacts\"` (8-bit "
                  "scores), paired query by query.", ""]
    if "segments" in res:
        lines += ["## Latency against segments (same documents, identical hits)", "",
                  "| segments | median ms | p90 ms | vs merged |", "|---:|---:|---:|---:|"]
        for key, v in res["segments"]["latency"].items():
            label = f"{v['segments']} (merged)" if key == "merged" else str(v["segments"])
            lines.append(f"| {label} | {v['median_ms']:.3f} | {v['p90_ms']:.3f} | {v['vs_merged']:.2f}× |")
        lines += ["", f"Merging {max(int(k) for k in res['segments']['latency'] if k != 'merged')} segments into one took "
                  f"{res['segments']['merge_s']:.1f} s.", ""]
    if "filters" in res:
        lines += ["## Filtered search (payload independent of content and storage order)", "",
                  "| filter (selectivity) | median ms | p90 ms | vs unfiltered | filter evaluation ms (once per filter) |",
                  "|---|---:|---:|---:|---:|"]
        for name, v in res["filters"]["latency"].items():
            ev = "" if v["filter_eval_ms"] is None else f"{v['filter_eval_ms']:.2f}"
            lines.append(f"| {name} | {v['median_ms']:.3f} | {v['p90_ms']:.3f} | {v['vs_unfiltered']:.2f}× | {ev} |")
        lines += ["", f"Building the `bucket` field's columns (once per segment and field, on first use): "
                  f"{res['filters']['payload_columns_s']:.2f} s.", ""]
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        log("matplotlib is not installed: no plot")
        return
    panels = [p for p in ("adds", "segments", "filters") if p in res]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    axes = np.atleast_1d(axes)
    for ax, p in zip(axes, panels):
        if p == "adds":
            for name, r in res["adds"].items():
                segs = r["segments_after_each_commit"]
                ax.plot(np.arange(1, len(segs) + 1) * res["batch"], segs, label=f"{name}: {r['docs_per_s']:,.0f} docs/s")
            ax.set_xlabel("documents added")
            ax.set_ylabel("segments after commit")
            ax.set_title("adds, commit every batch")
            ax.legend(fontsize=8)
        elif p == "segments":
            lat = res["segments"]["latency"]
            keys = list(lat)
            ax.bar([("merged" if k == "merged" else k) for k in keys], [lat[k]["median_ms"] for k in keys])
            ax.set_xlabel("segments")
            ax.set_ylabel("median ms / query")
            ax.set_title("latency vs segments")
        else:
            lat = res["filters"]["latency"]
            keys = list(lat)
            ax.bar(keys, [lat[k]["median_ms"] for k in keys])
            ax.set_xlabel("filter selectivity")
            ax.set_ylabel("median ms / query")
            ax.set_title("filtered search")
    fig.suptitle(f"sparsedex living index, {res['docs']:,} synthetic documents")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
