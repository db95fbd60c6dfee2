"""SPLADE encoding throughput and peak memory: sparsedex.SpladeEncoder vs fastembed.

What it measures
    passages/s (median over repeats) and the process's RSS high-water mark of
    ``SpladeEncoder`` and of fastembed's ``SparseTextEmbedding("prithivida/Splade_PP_en_v1",
    specific_model_path=DIR)`` on the same ONNX model (default: the bundled splade-tiny),
    same texts, same ORT thread count, ``HF_HUB_OFFLINE=1``.

How
    Every (system, repeat) runs in a fresh subprocess so that ``ru_maxrss`` is that
    system's own high-water mark (model load + encoding). The subprocess loads the model,
    encodes a few texts to warm up, then times one full pass over the texts (tokenization
    included). Systems alternate within each repeat, so drift on a shared machine hits both.
    Each worker also reports the total number of non-zeros it produced: equal counts show the
    two compute the same vectors.

Workloads
    ``passages``: a seeded sample of N passages of ../shared/data/vaswani (short abstracts,
    ~40 tokens), fastembed at batch size ``--fastembed-batch`` (default 32: at its own
    default of 256 its pooling arrays take several GB and the worker was OOM-killed on a 23 GB
    machine). ``long``: 64 passages truncated at 512 tokens, encoded in one call with
    batch size 64 for sparsedex (the memory check: [64, 512, 30522] float32 logits would be
    3.8 GB); fastembed materialises [batch, 512, 30522] in numpy and makes two more arrays of
    that size in its pooling, so its batch size for this workload is ``--fastembed-long-batch``
    (default 16, ~4 GB peak) to stay safe on a shared machine.

Run
    python benches/encode_bench.py [--n 2000] [--repeats 3] [--threads T] [--model-dir DIR]
(needs fastembed: ``pip install sparsedex[bench]``; ``PYTHONPATH=python`` from a source tree).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "vaswani" / "corpus.jsonl"
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = Path("/work/shared/data/vaswani/corpus.jsonl")


def load_texts(path: Path, n: int, seed: int = 0) -> list[str]:
    docs = [json.loads(x)["text"] for x in path.open(encoding="utf-8")]
    random.Random(seed).shuffle(docs)
    return docs[:n]


def long_texts(path: Path, n: int = 64) -> list[str]:
    """n passages of at least 600 words (so > 512 tokens), made of consecutive abstracts."""
    docs = [json.loads(x)["text"] for x in path.open(encoding="utf-8")]
    out, buf = [], []
    for d in docs:
        buf.append(d)
        if sum(len(b.split()) for b in buf) >= 600:
            out.append(" ".join(buf))
            buf = []
            if len(out) == n:
                break
    return out


WORKER = r"""
import json, os, resource, sys, time
cfg = json.loads(sys.argv[1])
texts = json.load(open(cfg["texts"]))
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if cfg["system"] == "sparsedex":
    from sparsedex.encoders import SpladeEncoder
    enc = SpladeEncoder(cfg["model_dir"], threads=cfg["threads"], batch_size=cfg["batch_size"], progress=False)
    encode = lambda xs: enc.encode_documents(xs)
else:
    from fastembed import SparseTextEmbedding
    enc = SparseTextEmbedding("prithivida/Splade_PP_en_v1", specific_model_path=cfg["model_dir"], threads=cfg["threads"])
    encode = lambda xs: list(enc.embed(xs, batch_size=cfg["batch_size"]))
encode(texts[:8])
loaded = rss_mb()
t = time.perf_counter()
vecs = encode(texts)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "rss_after_load_mb": loaded, "peak_rss_mb": rss_mb(),
                  "nnz": int(sum(len(v.indices) for v in vecs)), "n": len(vecs)}))
"""


def run_worker(system: str, texts_file: Path, model_dir: str, threads: int, batch_size: int) -> dict:
    cfg = dict(system=system, texts=str(texts_file), model_dir=model_dir, threads=threads, batch_size=batch_size)
    env = dict(os.environ, HF_HUB_OFFLINE="1", SPARSEDEX_PROGRESS="0", TQDM_DISABLE="1")
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{system} worker failed (exit {out.returncode}; -9 = killed, "
                         f"usually for memory):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(name: str, texts: list[str], systems: dict[str, int], args: argparse.Namespace, tmp: Path) -> list[dict]:
    f = tmp / f"{name}.json"
    f.write_text(json.dumps(texts))
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for r in range(args.repeats):
        order = list(systems) if r % 2 == 0 else list(systems)[::-1]
        for s in order:
            res = run_worker(s, f, args.model_dir, args.threads, systems[s])
            runs[s].append(res)
            print(f"  {name} {s} run {r + 1}: {res['n'] / res['seconds']:.1f} passages/s, "
                  f"peak RSS {res['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    rows = []
    for s, rs in runs.items():
        rows.append({
            "workload": name, "system": s, "batch_size": systems[s], "passages": len(texts),
            "passages_per_s": statistics.median(x["n"] / x["seconds"] for x in rs),
            "all_passages_per_s": [round(x["n"] / x["seconds"], 1) for x in rs],
            "peak_rss_mb": max(x["peak_rss_mb"] for x in rs),
            "rss_after_load_mb": statistics.median(x["rss_after_load_mb"] for x in rs),
            "nnz": rs[0]["nnz"],
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="passages in the throughput workload")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--model-dir", default=str(ROOT / "python" / "sparsedex" / "models" / "splade-tiny"))
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sparsedex-batch", type=int, default=64)
    ap.add_argument("--fastembed-batch", type=int, default=32,
                    help="fastembed's own default is 256: its pooling then holds ~3 arrays of "
                         "256 x longest x 30522 float32 (GBs); 32 keeps it safe on shared machines")
    ap.add_argument("--fastembed-long-batch", type=int, default=16)
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        rows += bench("passages", load_texts(args.data, args.n),
                      {"sparsedex": args.sparsedex_batch, "fastembed": args.fastembed_batch}, args, tmp)
        if not args.skip_long:
            rows += bench("long-64x512", long_texts(args.data),
                          {"sparsedex": 64, "fastembed": args.fastembed_long_batch}, args, tmp)

    print(f"\nSPLADE encoding, model {Path(args.model_dir).name}, {args.threads} ORT threads, "
          f"median of {args.repeats} runs (each in a fresh process)\n")
    print("| workload | system | batch | passages/s (median) | runs | peak RSS MB | RSS after load+warm-up MB | nnz |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} ({r['passages']}) | {r['system']} | {r['batch_size']} | "
              f"{r['passages_per_s']:.1f} | {r['all_passages_per_s']} | {r['peak_rss_mb']:.0f} | "
              f"{r['rss_after_load_mb']:.0f} | {r['nnz']} |")
    print()
    for w in dict.fromkeys(r["workload"] for r in rows):
        a = next(r for r in rows if r["workload"] == w and r["system"] == "sparsedex")
        b = next(r for r in rows if r["workload"] == w and r["system"] == "fastembed")
        print(f"- {w}: sparsedex/fastembed throughput ratio {a['passages_per_s'] / b['passages_per_s']:.2f}x, "
              f"peak RSS ratio {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}x"
              + ("" if a["nnz"] == b["nnz"] else f" (nnz differ: {a['nnz']} vs {b['nnz']})"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"\n(bench took {time.time() - t0:.0f} s)", file=sys.stderr)
