"""Hybrid search on the shared test collections: BM25, splade-tiny, and their fusions.

What it measures
    nDCG@10 (linear gains, as trec_eval / ir_measures; and 2^rel-1 gains, as
    REFERENCE_RESULTS.json) and R@100 on vaswani and cranfield for:

    - ``bm25``: sparsedex's BM25 index (lowercase ``\\w+``, Snowball, no stopwords, k1=1.2,
      b=0.75, the collection's own avgdl; REFERENCE_RESULTS.json's BM25);
    - ``qdrant-bm25``: ``SparseIndex("Qdrant/bm25")``: fastembed's BM25 vectors (English
      stopwords, avg_len=256, hashed term ids), scored as Qdrant scores them with
      ``Modifier.IDF``: ``idf(t) * w(t, d)``, IDF from the live collection, applied to the query;
    - ``splade-tiny``: the bundled SPLADE model, float impacts;
    - ``rrf(a, b)``: reciprocal rank fusion, k=60 (Cormack et al. 2009);
    - ``dbsf(a, b)``: distribution-based score fusion (Qdrant's mean ± 3 std normalisation).
    - the same fusions in one call, ``fusion.hybrid_search_batch([a_index, splade_index],
      query_texts, method=..., limit=depth, depth=depth)``: checked to return exactly the runs
      of the two-step path (same ids, same fused scores), and timed against it.

How
    Exhaustive-equivalent exact top-``depth`` (default 1000) retrieval per run with
    ``SparseIndex.search_batch`` (float quantization), fusion of the two top-``depth`` lists per
    query with :mod:`sparsedex.fusion`, evaluation with :mod:`sparsedex.eval` over the judged
    queries. A paired t-test (scipy) compares each fusion with the better of its two inputs.
    splade-tiny document vectors are cached in ``benches/data/`` (git-ignored) after the first
    run, since encoding is the slow part (minutes on 2 cores).

Run
    python benches/fusion_eval.py [--collections vaswani cranfield] [--depth 1000]
    (writes benches/results/fusion-eval.json and .md)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")

from sparsedex import SparseEmbedding, SparseIndex, SparseTextEmbedding, fusion  # noqa: E402
from sparsedex.eval import evaluate, read_qrels  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def splade_vectors(name: str, texts: list[str], ids: list[str]) -> list[SparseEmbedding]:
    cache = HERE / "data" / f"splade-tiny-{name}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if z["ids"].tolist() == ids:
            p, i, v = z["indptr"], z["indices"], z["values"]
            return [SparseEmbedding(i[p[k] : p[k + 1]], v[p[k] : p[k + 1]]) for k in range(len(ids))]
    model = SparseTextEmbedding("splade-tiny", progress=True)
    t = time.perf_counter()
    vecs = list(model.embed(texts, batch_size=64))
    log(f"  encoded {len(texts)} {name} documents with splade-tiny in {time.perf_counter() - t:.1f} s")
    cache.parent.mkdir(exist_ok=True)
    indptr = np.cumsum([0] + [v.nnz for v in vecs])
    np.savez(cache, ids=np.array(ids), indptr=indptr,
             indices=np.concatenate([v.indices for v in vecs]).astype(np.uint32),
             values=np.concatenate([v.values for v in vecs]).astype(np.float32))
    return vecs


def run_of(index: SparseIndex, qids: list[str], queries: list, depth: int) -> dict[str, list[tuple[str, float]]]:
    hits = index.search_batch(queries, k=depth)
    return {q: [(str(h.id), h.score) for h in hs] for q, hs in zip(qids, hits)}


def qdrant_bm25_index(docs: list[str], ids: list[str]) -> SparseIndex:
    index = SparseIndex("Qdrant/bm25", quantization="float", store_texts=False)
    index.add(docs, ids=ids)
    return index


def fuse_runs(a: dict, b: dict, method: str, depth: int) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for q in a:
        hits = fusion.fuse([a[q], b.get(q, [])], method, limit=depth)
        out[q] = [(str(h.id), h.score) for h in hits]
    return out


METRICS = ("ndcg@10", "r@100")


def measure(run: dict, qrels: dict) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    lin, pq = evaluate(run, qrels, METRICS, gains="linear", per_query=True)
    exp = evaluate(run, qrels, ["ndcg@10"], gains="exponential")
    return {"ndcg@10": lin["ndcg@10"], "ndcg@10 (2^rel-1)": exp["ndcg@10"], "r@100": lin["r@100"]}, pq


def paired_p(x: dict[str, float], y: dict[str, float]) -> float | None:
    try:
        from scipy.stats import ttest_rel
    except ImportError:
        return None
    qs = sorted(x)
    a, b = np.array([x[q] for q in qs]), np.array([y[q] for q in qs])
    if np.allclose(a, b):
        return 1.0
    return float(ttest_rel(a, b).pvalue)


def collection(name: str, depth: int) -> dict:
    base = SHARED / name
    corpus = read_jsonl(base / "corpus.jsonl")
    queries = read_jsonl(base / "queries.jsonl")
    qrels = read_qrels(base / "qrels.tsv")
    ids = [str(d["id"]) for d in corpus]
    texts = [d["text"] for d in corpus]
    qids = [str(q["id"]) for q in queries]
    qtexts = [q["text"] for q in queries]
    log(f"{name}: {len(ids)} documents, {len(qids)} queries")

    runs: dict[str, dict] = {}
    t = time.perf_counter()
    bm25 = SparseIndex("bm25", quantization="float", store_texts=False)
    bm25.add(texts, ids=ids)
    runs["bm25"] = run_of(bm25, qids, qtexts, depth)
    log(f"  bm25 {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    qbm25 = qdrant_bm25_index(texts, ids)
    runs["qdrant-bm25"] = run_of(qbm25, qids, qtexts, depth)
    log(f"  qdrant-bm25 {time.perf_counter() - t:.1f} s")

    vecs = splade_vectors(name, texts, ids)
    t = time.perf_counter()
    built = SparseIndex(None, quantization="float", store_texts=False)
    built.add(vecs, ids=ids)
    with tempfile.TemporaryDirectory() as tmp:  # the cached vectors, reopened with the encoder for text queries
        built.save(Path(tmp) / "splade")
        splade = SparseIndex.open(Path(tmp) / "splade", encoder="splade-tiny")
        splade.search("warm up")
        qvecs = list(SparseTextEmbedding("splade-tiny").query_embed(qtexts))
        runs["splade-tiny"] = run_of(splade, qids, qvecs, depth)
        log(f"  splade-tiny search {time.perf_counter() - t:.1f} s")

        one_call = {}
        for lex, lex_index in (("bm25", bm25), ("qdrant-bm25", qbm25)):
            for method in ("rrf", "dbsf"):
                rname = f"{method}({lex}, splade-tiny)"
                t = time.perf_counter()
                two = {q: r for q, r in zip(qids, (
                    fusion.fuse([a, b], method, limit=depth) for a, b in zip(
                        lex_index.search_batch(qtexts, k=depth), splade.search_batch(qtexts, k=depth))))}
                t_two = time.perf_counter() - t
                runs[rname] = {q: [(str(h.id), h.score) for h in hs] for q, hs in two.items()}
                t = time.perf_counter()
                hy = fusion.hybrid_search_batch([lex_index, splade], qtexts, method=method, limit=depth, depth=depth)
                t_one = time.perf_counter() - t
                same = all([(h.id, h.score) for h in a] == [(h.id, h.score) for h in two[q]] for q, a in zip(qids, hy))
                one_call[rname] = {"equal to two-step": same, "two-step s": round(t_two, 3), "one call s": round(t_one, 3)}
                log(f"  {rname}: one call {t_one:.2f} s, two-step {t_two:.2f} s, equal: {same}")

    rows = {}
    per_query = {}
    for rname, run in runs.items():
        rows[rname], pq = measure(run, qrels)
        per_query[rname] = pq["ndcg@10"]
    for rname in list(rows):
        if "(" in rname:
            a, b = rname[rname.index("(") + 1 : -1].split(", ")
            best = a if rows[a]["ndcg@10"] >= rows[b]["ndcg@10"] else b
            rows[rname]["p vs best input"] = paired_p(per_query[rname], per_query[best])
            rows[rname]["best input"] = best
    judged = sum(1 for q in qids if q in qrels)
    return {"documents": len(ids), "queries": len(qids), "judged": judged, "depth": depth, "runs": rows,
            "one_call": one_call}


def markdown(results: dict) -> str:
    out = ["# Hybrid search: BM25, splade-tiny and their fusions", "",
           "Produced by `python benches/fusion_eval.py`. nDCG@10 with linear gains (trec_eval, "
           "ir_measures) and with 2^rel-1 gains (REFERENCE_RESULTS.json); R@100 binary (rel >= 1). "
           "Fusions take the top-1000 of each input. p: paired t-test of per-query nDCG@10 "
           "(linear) against the better input.", ""]
    for name, r in results.items():
        out += [f"## {name} ({r['documents']} documents, {r['judged']} judged queries)", "",
                "| run | nDCG@10 | nDCG@10 (2^rel-1) | R@100 | p vs better input |",
                "|---|---|---|---|---|"]
        for rname, m in r["runs"].items():
            p = m.get("p vs best input")
            ps = "" if p is None else (f"{p:.3g} (vs {m['best input']})")
            out.append(f"| {rname} | {m['ndcg@10']:.4f} | {m['ndcg@10 (2^rel-1)']:.4f} | {m['r@100']:.4f} | {ps} |")
        out.append("")
        if r.get("one_call"):
            out += ["One call (`fusion.hybrid_search_batch`, all queries, top-1000 of each input) against "
                    "the two-step path (`search_batch` per index, then `fusion.fuse` per query): the same "
                    "runs, id for id and score for score. Both do the same work (query encoding included); "
                    "the times are single runs on a shared 2-core machine, so only their order of "
                    "magnitude means anything.", "",
                    "| fusion | same runs | one call (s) | two-step (s) |", "|---|---|---|---|"]
            for rname, m in r["one_call"].items():
                out.append(f"| {rname} | {'yes' if m['equal to two-step'] else 'NO'} | {m['one call s']:.2f} | "
                           f"{m['two-step s']:.2f} |")
            out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--collections", nargs="+", default=["vaswani", "cranfield"])
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--out", default=str(HERE / "results" / "fusion-eval"))
    a = ap.parse_args()
    results = {name: collection(name, a.depth) for name in a.collections}
    Path(a.out).parent.mkdir(exist_ok=True)
    Path(a.out + ".json").write_text(json.dumps(results, indent=1) + "\n")
    md = markdown(results)
    Path(a.out + ".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
