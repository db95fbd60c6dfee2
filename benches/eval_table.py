"""The README's evaluation table: nDCG@10 (linear and exponential gains), AP and R@100 of BM25
and splade-tiny on Vaswani and Cranfield, with float and u8 indexes.

What it computes
    Exhaustive exact top-1000 per query (as REFERENCE_RESULTS.json's settings), through
    ``SparseIndex`` and ``sparsedex.eval`` (equal to ir_measures / trec_eval). nDCG@10 with
    linear gains (``rel``: trec_eval's and ir_measures' default, sparsedex's default) and with
    exponential gains (``2^rel - 1``: REFERENCE_RESULTS.json's convention); the two agree on
    Vaswani, whose qrels are binary. The u8 rows index the float rows' vectors (one encoding).

Run
    python benches/eval_table.py [--skip-splade]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
DATA = HERE.parent.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")

from sparsedex import SparseIndex  # noqa: E402
from sparsedex.cli import load_queries, load_records  # noqa: E402
from sparsedex.eval import evaluate, read_qrels  # noqa: E402

METRICS = ["ndcg@10", "map", "r@100"]


def scores(run: dict, qrels: dict) -> dict:
    lin = evaluate(run, qrels, METRICS, gains="linear")
    exp = evaluate(run, qrels, ["ndcg@10"], gains="exponential")
    return {"ndcg_lin": lin["ndcg@10"], "ndcg_exp": exp["ndcg@10"], "map": lin["map"], "r100": lin["r@100"]}


def run_of(ix: SparseIndex, queries: list, qvecs: list | None = None) -> dict:
    res = ix.search_batch(qvecs if qvecs is not None else [t for _, t in queries], k=1000, algorithm="exhaustive")
    return {qid: {str(h.id): h.score for h in hits} for (qid, _), hits in zip(queries, res)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-splade", action="store_true")
    a = ap.parse_args()
    rows = []
    for coll in ("vaswani", "cranfield"):
        d = DATA / coll
        recs = load_records(d / "corpus.jsonl")
        queries = load_queries(str(d / "queries.jsonl"), None, None)
        qrels = read_qrels(d / "qrels.tsv")
        for q in ("float", "u8"):
            ix = SparseIndex("bm25", q)
            ix.add(recs.texts, ids=recs.ids)
            rows.append((coll, "BM25", q, scores(run_of(ix, queries), qrels)))
        if a.skip_splade:
            continue
        fl = SparseIndex("splade-tiny", "float")
        fl.encoder.progress = False
        fl.add(recs.texts, ids=recs.ids)
        rows.append((coll, "splade-tiny", "float", scores(run_of(fl, queries), qrels)))
        u8 = SparseIndex(None, "u8")
        u8.add([fl.get(i).vector for i in recs.ids], ids=recs.ids)
        qv = fl.encoder.encode_queries([t for _, t in queries])
        rows.append((coll, "splade-tiny", "u8", scores(run_of(u8, queries, qv), qrels)))
    print("| collection | model | index | nDCG@10 | nDCG@10, 2^rel-1 gains | AP | R@100 |")
    print("|---|---|---|---|---|---|---|")
    for coll, model, q, s in rows:
        print(f"| {coll} | {model} | {q} | {s['ndcg_lin']:.4f} | {s['ndcg_exp']:.4f} | {s['map']:.4f} | {s['r100']:.4f} |")
    print(json.dumps([{"collection": c, "model": m, "index": q, **s} for c, m, q, s in rows]), file=sys.stderr)


if __name__ == "__main__":
    main()
