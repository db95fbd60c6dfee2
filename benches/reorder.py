#!/usr/bin/env python
"""Document reordering: recursive graph bisection (BP) against the signature sort and a
random order — its cost, and what it does to index size and to block-max pruning.

    python benches/reorder.py --corpus debian --queries 2000 --out benches/results/
    python benches/reorder.py --corpus synthetic --docs 100000 --queries 1000
    python benches/reorder.py --corpus synthetic --docs 1000000 --queries 300 --reps 1

Every order starts from the same random shuffle of the documents (seeded), so that no
order inherited from the data helps any method (debian's docs.npz, for one, is stored in
signature order). Per order it reports:

- **time** to compute the order (median of `--reps` runs) with 1 and 2 threads, each in a
  fresh process with RAYON_NUM_THREADS set; and for the built-in modes the whole
  `_core.Index.build` (validation, order, posting encoding) with `reorder="none" |
  "signature" | "bp"`, so BP's share of a build reads off directly;
- **postings bytes** of the index (`stats()["postings_bytes"]`: doc ids, impacts, block
  metadata; only the doc-id part depends on the order);
- **ms/query** of `bmp`, `exhaustive` and `auto` (k=10, u8 impacts, one query per call on one
  thread; per query the fastest of `--rounds` rounds, then the median over queries; the
  ratio against exhaustive on the random order is measured in the same run);
- **bmp blocks**: the mean fraction of 64-document blocks that block-max pruning scores,
  from a float simulation of `search/bmp.rs` (block bounds = sum of query weight x the
  block's largest weight per term; blocks taken in decreasing bound, in batches of
  max(8, ceil(4k/64)) growing fourfold, dropping blocks whose bound falls below the k-th
  score so far); and the ideal fraction (blocks whose bound reaches the final k-th score:
  what any block-level method must score).

Variants are `name:key=value,key=value` with `_core.bp_order`'s keywords, plus
`init=signature` (BP starting from the signature order instead of the shuffle) and
`init=segmentsN` (a merge: the rows cut into N segments, each BP-ordered with the defaults on
its own, concatenated; the variant's options then refine that order, and only the refine is
timed; `max_iterations=0` keeps the plain concatenation).
Outputs `<out>/reorder-<corpus>.md` and `.json`; progress on stderr.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
DEBIAN = BENCH_DIR.parent.parent / "shared" / "data" / "debian"
VOCAB = 30_522
BLOCK = 64

DEFAULT_VARIANTS = (
    "random;signature;bp;bp-impact:weighting=impact;bp-heavy:min_weight_ratio=0.3;"
    "bp-sig:init=signature;bp-fast:max_iterations=8;"
)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- corpus
def load_corpus(args):
    """(doc indptr u64, indices u32, values f32, q indptr, q indices, q values)."""
    if args.corpus == "debian":
        d = np.load(Path(args.data_dir) / "docs.npz")
        q = np.load(Path(args.data_dir) / "queries.npz")
        docs = (d["indptr"].astype(np.uint64), d["indices"].astype(np.uint32), d["data"].astype(np.float32))
        qs = (q["indptr"].astype(np.uint64), q["indices"].astype(np.uint32), q["data"].astype(np.float32))
        n_q = min(args.queries, len(qs[0]) - 1)
        qs = (qs[0][: n_q + 1], qs[1][: int(qs[0][n_q])], qs[2][: int(qs[0][n_q])])
        return docs, qs
    from sparsedex import _core

    out = _core.synthetic_corpus(args.docs, args.queries, args.seed)
    return out[:3], out[3:]


def take_rows(csr, order):
    """Rows `order` of a CSR matrix, as a new CSR (numpy)."""
    indptr, indices, values = csr
    lens = (indptr[1:] - indptr[:-1])[order]
    new_ptr = np.zeros(len(order) + 1, np.uint64)
    np.cumsum(lens, out=new_ptr[1:])
    starts = indptr[:-1][order].astype(np.int64)
    # position of each output posting in the input: start of its row + rank inside the row
    row_of = np.repeat(np.arange(len(order)), lens.astype(np.int64))
    within = np.arange(int(new_ptr[-1]), dtype=np.int64) - new_ptr[:-1].astype(np.int64)[row_of]
    src = starts[row_of] + within
    return new_ptr, indices[src], values[src]


def parse_variants(spec):
    out = []
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        name, _, kv = item.partition(":")
        opts = {}
        for pair in filter(None, kv.split(",")):
            k, _, v = pair.partition("=")
            if k in ("weighting", "init"):
                opts[k] = v
            elif k in ("min_swap_fraction", "max_df_fraction", "min_weight_ratio"):
                opts[k] = float(v)
            else:
                opts[k] = int(v)
        out.append((name, opts))
    return out


def prepare_order(name, opts, csr, n_terms):
    """A callable computing the order (what is timed). A merge's segment orders are computed
    here, outside it: they were computed when the segments were built."""
    from sparsedex import _core

    if name == "random":
        return lambda: np.arange(len(csr[0]) - 1, dtype=np.uint32)
    if name == "signature":
        return lambda: _core.similarity_order(*csr, n_terms)
    opts = dict(opts)
    init = str(opts.get("init", ""))
    if init.startswith("segments"):
        opts["init"] = merged_segments(csr, n_terms, int(init[len("segments"):]))
    if init == "signature":
        del opts["init"]
        return lambda: _core.bp_order(*csr, n_terms, init=_core.similarity_order(*csr, n_terms), **opts)
    return lambda: _core.bp_order(*csr, n_terms, **opts)


def compute_order(name, opts, csr, n_terms):
    return prepare_order(name, opts, csr, n_terms)()


_SEGMENT_CACHE = {}


def merged_segments(csr, n_terms, n_segments):
    from sparsedex import _core

    key = (id(csr[0]), len(csr[0]), n_segments)
    if key not in _SEGMENT_CACHE:
        n = len(csr[0]) - 1
        cuts = np.linspace(0, n, n_segments + 1).astype(np.int64)
        parts = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            seg = take_rows(csr, np.arange(a, b))
            parts.append(a + _core.bp_order(*seg, n_terms).astype(np.int64))
        _SEGMENT_CACHE[key] = np.concatenate(parts).astype(np.uint32)
    return _SEGMENT_CACHE[key]


# ---------------------------------------------------------------------------- timing worker
def worker(args):
    """Run in a fresh process with RAYON_NUM_THREADS set: time orders and builds."""
    from sparsedex import _core

    z = np.load(args.worker)
    csr = (z["indptr"], z["indices"], z["values"])
    res = {}
    for name, opts in parse_variants(args.variants):
        if name == "random":
            continue
        run = prepare_order(name, opts, csr, VOCAB)
        ts, cs = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        res["order:" + name] = float(np.median(ts))
        res["order_cpu:" + name] = float(np.median(cs))
    for mode in ("none", "signature", "bp"):
        ts, cs = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            ix = _core.Index.build(*csr, n_terms=VOCAB, reorder=mode)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
            del ix
        res["build:" + mode] = float(np.median(ts))
        res["build_cpu:" + mode] = float(np.median(cs))
    print(json.dumps(res))


def time_in_subprocesses(args, csr, threads_list):
    tmp = BENCH_DIR / "data" / f"reorder-{args.corpus}-{args.docs}-{os.getpid()}.npz"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, indptr=csr[0], indices=csr[1], values=csr[2])
    out = {}
    try:
        for t in threads_list:
            log(f"timing with {t} thread(s)...")
            env = dict(os.environ, RAYON_NUM_THREADS=str(t))
            cmd = [sys.executable, __file__, "--worker", str(tmp), "--variants", args.variants, "--reps", str(args.reps)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            out[t] = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------------------- pruning
def bmp_blocks(csc, n_docs, q_idx, q_val, k):
    """(simulated fraction of blocks bmp scores, ideal fraction) for one query, in float."""
    nb = -(-n_docs // BLOCK)
    ub = np.zeros(nb)
    scores = np.zeros(n_docs)
    for t, w in zip(q_idx, q_val):
        a, b = csc.indptr[t], csc.indptr[t + 1]
        if a == b:
            continue
        rows = csc.indices[a:b]
        vals = csc.data[a:b].astype(np.float64)
        scores[rows] += w * vals
        blk = rows // BLOCK
        cut = np.flatnonzero(np.diff(blk)) + 1
        starts = np.concatenate(([0], cut))
        ub[blk[starts]] += w * np.maximum.reduceat(vals, starts)
    live = np.flatnonzero(ub > 0)
    if len(live) == 0:
        return 0.0, 0.0
    by_bound = live[np.argsort(-ub[live], kind="stable")]
    u = ub[by_bound]
    block_best = np.full(nb, -np.inf)
    # k-th score overall (ideal): blocks whose bound reaches it
    kth = np.partition(scores, n_docs - k)[n_docs - k] if n_docs >= k else 0.0
    ideal = float(np.count_nonzero(u >= kth)) / nb if kth > 0 else len(live) / nb
    del block_best
    theta, pos, batch, seen = 0.0, 0, max(8, -(-4 * k // BLOCK)), []
    while pos < len(u):
        valid = int(np.searchsorted(-u, -theta, side="right"))  # blocks with bound >= theta
        if valid <= pos:
            break
        take = min(batch, valid - pos)
        for b in by_bound[pos : pos + take]:
            seen.append(scores[b * BLOCK : (b + 1) * BLOCK])
        pos += take
        batch *= 4
        allsc = np.concatenate(seen)
        pos_sc = allsc[allsc > 0]
        if len(pos_sc) >= k:
            theta = float(np.partition(pos_sc, len(pos_sc) - k)[len(pos_sc) - k])
    return pos / nb, ideal


def measure_order(name, order, docs, qs, args, base_exh):
    from scipy.sparse import csr_matrix
    from sparsedex import _core

    csr = take_rows(docs, order)
    n = len(order)
    ix = _core.Index.build(*csr, n_terms=VOCAB, reorder="none")
    st = ix.stats()
    q_ptr, q_ind, q_val = qs
    nq = len(q_ptr) - 1
    queries = [(q_ind[q_ptr[i] : q_ptr[i + 1]], q_val[q_ptr[i] : q_ptr[i + 1]]) for i in range(nq)]
    res = {"postings_bytes": int(st["postings_bytes"]), "bytes": int(st["bytes"])}
    for algo in ("bmp", "exhaustive", "auto") if args.rounds > 0 else ():
        best = np.full(nq, np.inf)
        for _ in range(args.rounds):
            for i, (qi, qv) in enumerate(queries):
                t0 = time.perf_counter_ns()
                ix.search(qi, qv, args.k, algo)
                dt = time.perf_counter_ns() - t0
                if dt < best[i]:
                    best[i] = dt
        res[f"ms_{algo}"] = float(np.median(best)) / 1e6
    sim_q = queries[: args.sim_queries]
    X = csr_matrix((csr[2], csr[1].astype(np.int64), csr[0].astype(np.int64)), shape=(n, VOCAB)).tocsc()
    fr = [bmp_blocks(X, n, qi, qv.astype(np.float64), args.k) for qi, qv in sim_q]
    res["bmp_blocks"] = float(np.mean([f[0] for f in fr]))
    res["ideal_blocks"] = float(np.mean([f[1] for f in fr]))
    return res


# ---------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["debian", "synthetic"], default="debian")
    p.add_argument("--data-dir", default=str(DEBIAN))
    p.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="latency rounds (0: no latency)")
    p.add_argument("--reps", type=int, default=3, help="runs per timing (median)")
    p.add_argument("--threads", default="1,2", help="thread counts for the timings ('' skips timing)")
    p.add_argument("--sim-queries", type=int, default=300, help="queries in the bmp block simulation")
    p.add_argument("--variants", default=DEFAULT_VARIANTS)
    p.add_argument("--out", default=str(BENCH_DIR / "results"))
    p.add_argument("--name", default=None)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    docs, qs = load_corpus(args)
    n = len(docs[0]) - 1
    log(f"{args.corpus}: {n} docs, {len(docs[1])} postings, {len(qs[0]) - 1} queries")
    shuffle = np.random.default_rng(args.seed).permutation(n).astype(np.uint32)
    docs = take_rows(docs, shuffle)  # the common random start

    threads = [int(t) for t in args.threads.split(",") if t]
    timings = time_in_subprocesses(args, docs, threads) if threads else {}

    results = {}
    for name, opts in parse_variants(args.variants):
        log(f"order {name} {opts or ''}...")
        order = compute_order(name, opts, docs, VOCAB)
        assert sorted(order.tolist()) == list(range(n)), name
        results[name] = measure_order(name, order, docs, qs, args, None)
        results[name]["opts"] = opts
        for t in threads:
            results[name][f"time_{t}t"] = timings[t].get("order:" + name, 0.0)
            results[name][f"cpu_{t}t"] = timings[t].get("order_cpu:" + name, 0.0)
        log(f"  {results[name]}")

    stem = args.name or f"reorder-{args.corpus}" + (f"-{n}" if args.corpus == "synthetic" else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "corpus": args.corpus,
        "docs": n,
        "postings": int(len(docs[1])),
        "queries": int(len(qs[0]) - 1),
        "k": args.k,
        "rounds": args.rounds,
        "reps": args.reps,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "builds": {str(t): {k: v for k, v in timings[t].items() if k.startswith("build")} for t in threads},
    }
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    md = render(meta, results, threads)
    (out / f"{stem}.md").write_text(md)
    print(md)


def render(meta, results, threads):
    base = results.get("random", next(iter(results.values())))
    lines = [
        f"# Reordering on {meta['corpus']} ({meta['docs']:,} docs, {meta['postings']:,} postings, "
        f"{meta['queries']} queries, k={meta['k']})",
        "",
        "Command: `python benches/reorder.py " + " ".join(sys.argv[1:]) + "`",
        "",
    ]
    tcols = "".join(f" order s ({t}t) |" for t in threads) + (" order CPU s (2t) |" if 2 in threads else "")
    lines.append(f"| order |{tcols} postings MB | bmp ms | exhaustive ms | auto ms | bmp / exh. | bmp blocks | ideal blocks |")
    lines.append("|---|" + "---:|" * (len(threads) + (2 in threads) + 7))
    for name, r in results.items():
        tc = "".join(f" {r.get(f'time_{t}t', 0.0):.2f} |" for t in threads)
        if 2 in threads:
            tc += f" {r.get('cpu_2t', 0.0):.2f} |"
        if "ms_bmp" not in r:
            r.update(ms_bmp=float("nan"), ms_exhaustive=float("nan"), ms_auto=float("nan"))
        lines.append(
            f"| {name} |{tc} {r['postings_bytes'] / 1e6:.1f} | {r['ms_bmp']:.3f} | {r['ms_exhaustive']:.3f} | "
            f"{r['ms_auto']:.3f} | {r['ms_bmp'] / r['ms_exhaustive']:.2f} | {r['bmp_blocks']:.4f} | {r['ideal_blocks']:.4f} |"
        )
    lines.append("")
    lines.append(f"Postings bytes relative to random: " + ", ".join(
        f"{k} {v['postings_bytes'] / base['postings_bytes']:.3f}" for k, v in results.items()))
    lines.append("")
    for t, b in meta["builds"].items():
        lines.append(
            f"Whole `Index.build` with {t} thread(s), wall (CPU) s: "
            + ", ".join(
                f"reorder={m} {b['build:' + m]:.2f} ({b.get('build_cpu:' + m, float('nan')):.2f})"
                for m in ("none", "signature", "bp")
                if "build:" + m in b
            )
            + (f"; BP share of the build {1 - b['build:none'] / b['build:bp']:.0%}" if b.get("build:bp") else "")
        )
    lines.append("")
    lines.append("Variants: " + "; ".join(f"{k} {v['opts']}" for k, v in results.items()))
    lines.append(f"Machine: {meta['machine']} (shared; timings are medians, compare ratios).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
