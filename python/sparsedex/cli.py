"""The ``sparsedex`` command line (also ``python -m sparsedex``).

Commands: ``demo``, ``index``, ``search``, ``explain``, ``eval``, ``info``. User errors (missing
files, bad JSON lines, unknown document ids, ...) print one line on stderr and exit 1; bad
usage exits 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["main", "read_jsonl", "evaluate_index"]

PROG = "sparsedex"


class UserError(Exception):
    """An error reported as one line, without a traceback."""


# input files ----------------------------------------------------------------------------------
def read_jsonl(path: str | Path, what: str = "file") -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line (blank lines skipped); errors name the line."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such {what}")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a JSONL {what}")
    out = []
    try:
        with p.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise UserError(f"{p}:{lineno}: bad JSON line ({e})") from None
                if not isinstance(rec, dict):
                    raise UserError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}")
                rec["__line__"] = lineno
                out.append(rec)
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return out


def _records(path: str, text_field: str, id_field: str, what: str) -> tuple[list[Any] | None, list[str], list[dict[str, Any]]]:
    recs = read_jsonl(path, what)
    have_ids = [id_field in r for r in recs]
    if any(have_ids) and not all(have_ids):
        bad = recs[have_ids.index(False)]
        raise UserError(f"{path}:{bad['__line__']}: no {id_field!r} field (the other lines have one)")
    ids: list[Any] | None = [] if all(have_ids) and recs else None
    texts, payloads = [], []
    for r in recs:
        line = r.pop("__line__")
        if text_field not in r:
            raise UserError(f"{path}:{line}: no {text_field!r} field (choose it with --text-field)")
        t = r.pop(text_field)
        if not isinstance(t, str):
            raise UserError(f"{path}:{line}: {text_field!r} is a {type(t).__name__}, not a string")
        texts.append(t)
        if ids is not None:
            i = r.pop(id_field)
            if isinstance(i, bool) or not isinstance(i, (int, str)):
                raise UserError(f"{path}:{line}: {id_field!r} must be a string or an integer, got {json.dumps(i)}")
            ids.append(i)
        payloads.append(r)
    return ids, texts, payloads


def _open_index(path: str) -> Any:
    from .index import SparseIndex

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such index directory")
    return SparseIndex.open(p)


def _doc_id(index: Any, raw: str) -> Any:
    if index._id_kind() is int:
        try:
            return int(raw)
        except ValueError:
            raise UserError(f"no document with id {raw!r} in the index (its ids are integers)") from None
    return raw


def _label(hit: Any, index: Any, width: int = 70) -> str:
    p = hit.payload or {}
    for key in ("title", "name", "movie_name"):
        if isinstance(p.get(key), str):
            return p[key]
    doc = index.get(hit.id)
    text = doc.text or (json.dumps(p, ensure_ascii=False) if p else "")
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _progress(total: int, desc: str) -> Any:
    from ._progress import progress_bar

    return progress_bar(total, desc, None, unit="doc", min_total=2)


def _add_in_chunks(
    index: Any, texts: list[str], ids: list[Any] | None, payloads: list[Any], chunk: int = 1024, upsert: bool = False
) -> None:
    enc = index.encoder
    if hasattr(enc, "progress"):
        enc.progress = False  # one bar, here
    with _progress(len(texts), "indexing") as bar:
        for s in range(0, len(texts), chunk):
            (index.upsert if upsert else index.add)(
                texts[s : s + chunk],
                ids=None if ids is None else ids[s : s + chunk],
                payloads=payloads[s : s + chunk],
            )
            bar.update(len(texts[s : s + chunk]))


# evaluation ---------------------------------------------------------------------------------
def evaluate_index(
    index: Any,
    queries: Sequence[tuple[str, str]],
    qrels: Any,
    metrics: Sequence[str] = ("ndcg@10", "map", "r@100"),
    k: int = 1000,
    *,
    gains: str = "exponential",
    rel_threshold: int = 1,
    algorithm: str = "auto",
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Search ``queries`` ((id, text) pairs) on ``index`` and score the run against ``qrels``
    (a path or ``{qid: {docid: rel}}``): returns (means by metric, run ``{qid: {docid: score}}``)."""
    from .eval import evaluate, read_qrels

    if not isinstance(qrels, dict):
        qrels = read_qrels(qrels)
    with _progress(len(queries), "searching") as bar:
        results = []
        for s in range(0, len(queries), 256):
            part = [t for _, t in queries[s : s + 256]]
            results.extend(index.search_batch(part, k=k, algorithm=algorithm))
            bar.update(len(part))
    run = {str(qid): {str(h.id): h.score for h in hits} for (qid, _), hits in zip(queries, results)}
    means = evaluate(run, qrels, list(metrics), gains=gains, rel_threshold=rel_threshold)
    return means, run


# commands -----------------------------------------------------------------------------------
def cmd_index(a: argparse.Namespace) -> int:
    from .index import SparseIndex

    ids, texts, payloads = _records(a.corpus, a.text_field, a.id_field, "corpus file")
    if not texts:
        raise UserError(f"{a.corpus}: no documents")
    t0 = time.perf_counter()
    index = SparseIndex(a.encoder, a.quantization, store_texts=not a.no_texts)
    _add_in_chunks(index, texts, ids, payloads)
    index.save(a.index_dir)
    dt = time.perf_counter() - t0
    ident = index.encoder_identity or {}
    print(
        f"indexed {len(index)} documents into {a.index_dir} "
        f"(encoder {ident.get('model') or ident.get('kind')}, {index.quantization} impacts) in {dt:.1f} s"
    )
    return 0


def _filter_arg(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise UserError(f"--filter is not valid JSON ({e}): e.g. --filter '{{\"year\": {{\"$gte\": 1990}}}}'") from None


def cmd_add(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    ids, texts, payloads = _records(a.corpus, a.text_field, a.id_field, "corpus file")
    if not texts:
        raise UserError(f"{a.corpus}: no documents")
    t0 = time.perf_counter()
    before = len(index)
    if ids is None:
        _add_in_chunks(index, texts, None, payloads)
    else:
        _add_in_chunks(index, texts, ids, payloads, upsert=True)
    gen = index.commit()
    index.close()  # lets a merge the commit started finish
    print(
        f"added or replaced {len(texts)} documents in {a.index_dir} ({before} -> {len(index)} documents, "
        f"commit {gen}, {len(index.segments())} segments) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    ids = [_doc_id(index, x) for x in a.doc_ids]
    n = index.delete(ids, missing_ok=a.missing_ok)
    gen = index.commit()
    index.close()
    print(f"deleted {n} documents from {a.index_dir} ({len(index)} left, commit {gen})")
    return 0


def cmd_merge(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    before = len(index.segments())
    gen = index.merge(a.max_segments)
    print(f"merged {a.index_dir}: {before} -> {len(index.segments())} segments (commit {gen})")
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    hits = index.search(a.query, k=a.k, algorithm=a.algorithm, filter=_filter_arg(a.filter))
    if a.json:
        out = []
        for h in hits:
            d: dict[str, Any] = {"id": h.id, "score": h.score, "payload": h.payload}
            if a.explain:
                d["explanation"] = _explanation_json(index.explain(a.query, h.id))
            out.append(d)
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    if not hits:
        print("no matching documents")
        return 0
    idw = max(len("id"), *(len(str(h.id)) for h in hits))
    print(f"{'rank':>4}  {'score':>9}  {'id':<{idw}}  document")
    for r, h in enumerate(hits, 1):
        print(f"{r:>4}  {h.score:9.4f}  {str(h.id):<{idw}}  {_label(h, index)}")
        if a.explain:
            print(_indent(index.explain(a.query, h.id).table(limit=10), 6))
    return 0


def _indent(s: str, n: int) -> str:
    return "\n".join(" " * n + line for line in s.splitlines())


def _explanation_json(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "score": e.score,
        "matches": [
            {"term": m.token, "term_id": m.term_id, "query_weight": m.query_weight,
             "doc_weight": m.doc_weight, "contribution": m.contribution}
            for m in e.matches
        ],
        "query_terms": e.query_terms,
        "document_terms": e.document_terms,
    }


def _terms_line(terms: list[tuple[str, float]], n: int) -> str:
    return ", ".join(f"{t} {w:.2f}" for t, w in terms[:n]) + (", ..." if len(terms) > n else "")


def cmd_explain(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    doc_id = _doc_id(index, a.doc_id)
    if doc_id not in index:
        raise UserError(f"no document with id {a.doc_id!r} in {a.index_dir}")
    e = index.explain(a.query, doc_id)
    if a.json:
        print(json.dumps(_explanation_json(e), ensure_ascii=False, indent=1))
        return 0
    print(f"query terms:    {_terms_line(e.query_terms, 12)}")
    print(f"document terms: {_terms_line(e.document_terms, 12)}")
    print()
    if a.all:
        print(str(e).split("\n", 1)[0])
        print(e.table(limit=None))
    else:
        print(e)
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from .eval import parse_metric, read_qrels, write_run

    metrics = [m.strip() for m in a.metrics.split(",") if m.strip()]
    if not metrics:
        raise UserError("--metrics is empty")
    for m in metrics:
        parse_metric(m)
    index = _open_index(a.index_dir)
    qids, texts, _ = _records(a.queries, a.text_field, a.id_field, "queries file")
    if qids is None:
        raise UserError(f"{a.queries}: queries need an {a.id_field!r} field")
    if not Path(a.qrels).is_file():
        raise UserError(f"{a.qrels}: no such qrels file")
    qrels = read_qrels(a.qrels)
    t0 = time.perf_counter()
    means, run = evaluate_index(
        index, list(zip([str(q) for q in qids], texts)), qrels, metrics, a.k,
        gains=a.gains, rel_threshold=a.rel_threshold, algorithm=a.algorithm,
    )
    dt = time.perf_counter() - t0
    if a.run_out:
        write_run(run, a.run_out, tag=a.run_tag)
    judged_run = sum(1 for q in qrels if q in run)
    if a.json:
        print(json.dumps({"metrics": means, "judged_queries": len(qrels), "queries": len(qids)}, indent=1))
        return 0
    w = max(len("metric"), *(len(m) for m in metrics))
    print(f"{'metric':<{w}}  value")
    for m in metrics:
        v = means[m]
        print(f"{m:<{w}}  {'nan' if math.isnan(v) else f'{v:.4f}'}")
    print(f"{len(qrels)} judged queries ({judged_run} of them in the {len(qids)} queries run), "
          f"top {a.k}, {dt:.1f} s" + (f"; run written to {a.run_out}" if a.run_out else ""))
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    info = index.info()
    if a.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    enc = info["encoder"]
    rows: list[tuple[str, Any]] = [("index", a.index_dir), ("documents", info["documents"])]
    if enc is None:
        rows.append(("encoder", "none (vectors you bring)"))
    elif enc.get("kind") == "bm25":
        an = enc.get("analyzer") or {}
        stop = an.get("stopwords")
        analysis = ", ".join(
            [f"stemmer {an.get('language')}" if an.get("stemming") else "no stemming",
             "no stopwords" if not stop else f"stopwords {stop if isinstance(stop, str) else len(stop)}",
             "lowercase" if an.get("lowercase") else "case kept",
             f"tokens {an.get('token_pattern')}"]
        )
        rows.append(("encoder", f"BM25 k1={enc.get('k1')} b={enc.get('b')}, {enc.get('vocab_size')} terms ({analysis})"))
    else:
        rows.append(("encoder", f"{enc.get('kind')} {enc.get('model')} ({enc.get('source')}, max_length {enc.get('max_length')})"))
    rows.append(("quantization", info["quantization"]))
    segs = info["segments"]
    rows.append(("commit", info["generation"]))
    rows.append(("segments", f"{len(segs)} ({sum(s['documents'] - s['live'] for s in segs)} deleted documents not yet merged away)"))
    for k, v in (info["engine"] or {}).items():
        if k not in ("documents", "quantization"):
            rows.append((k, v))
    w = max(len(k) for k, _ in rows) + 2
    for k, v in rows:
        print(f"{k + ':':<{w}}{v}")
    return 0


DEMO_QUERY = "A movie about music"


def cmd_demo(a: argparse.Namespace) -> int:
    from .index import SparseIndex

    src = resources.files("sparsedex").joinpath("data").joinpath("movies.jsonl")
    movies = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    t0 = time.perf_counter()
    index = SparseIndex("splade-tiny")
    index.add(
        [m["movie_description"] for m in movies],
        payloads=[{"title": m["movie_name"], "minutes": m["movie_watch_time_min"]} for m in movies],
    )
    hits = index.search(a.query, k=a.k)
    dt = time.perf_counter() - t0
    print(f"Indexed {len(index)} film descriptions with the bundled SPLADE model splade-tiny ({dt:.1f} s).")
    print(f"\nQuery: {a.query!r}\n")
    print(f"{'rank':>4}  {'score':>7}  film")
    for r, h in enumerate(hits, 1):
        print(f"{r:>4}  {h.score:7.3f}  {(h.payload or {}).get('title', h.id)}")
    if not hits:
        print("no matching documents")
        return 0
    top = hits[0]
    e = index.explain(a.query, top.id, top_terms=15)
    doc = index.get(top.id)
    print(f"\nWhy {(top.payload or {}).get('title', top.id)!r} is first:")
    print(f"  its description:  {doc.text}")
    shared = (_words(a.query) & _words(doc.text or "")) - _STOP
    print("  words in common:  " + (", ".join(sorted(shared)) if shared else "none; the match comes from SPLADE expanding both texts"))
    print(f"  query expanded to:       {_terms_line(e.query_terms, 15)}")
    print(f"  description expanded to: {_terms_line(e.document_terms, 15)}")
    print(f"\nMatched terms (query weight x document weight = contribution; they sum to the score):")
    print(_indent(e.table(limit=12), 2))
    return 0


_STOP = frozenset("a an and about are as at be by for from in into is it of on or the this that to with".split())


def _words(text: str) -> set[str]:
    import re

    return {w for w in re.findall(r"\w+", text.lower())}


# parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    try:
        from importlib.metadata import version

        __version__ = version("sparsedex")
    except Exception:  # pragma: no cover - not installed as a distribution
        __version__ = "unknown"

    p = argparse.ArgumentParser(prog=PROG, description="Learned sparse retrieval: index, search, explain and evaluate.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser("demo", help="index 20 film descriptions with the bundled SPLADE model and explain a search")
    d.add_argument("--query", default=DEMO_QUERY, help=f"the query (default: {DEMO_QUERY!r})")
    d.add_argument("-k", type=int, default=5, help="hits to show (default 5)")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("index", help="index a JSONL corpus into a directory")
    i.add_argument("corpus", metavar="CORPUS.jsonl")
    i.add_argument("index_dir", metavar="INDEX_DIR")
    i.add_argument("--encoder", default="splade-tiny",
                   help="splade-tiny (default, bundled), bm25, prithivida/Splade_PP_en_v1, or a model directory")
    i.add_argument("--quantization", choices=["u8", "float"], default="u8",
                   help="impact precision (default u8)")
    i.add_argument("--text-field", default="text", help="JSON field holding the text (default: text)")
    i.add_argument("--id-field", default="id", help="JSON field holding the id (default: id; without it, ids are 0, 1, ...)")
    i.add_argument("--no-texts", action="store_true", help="do not keep the texts in the index")
    i.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="search an index")
    s.add_argument("index_dir", metavar="INDEX_DIR")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=10, help="hits (default 10)")
    s.add_argument("--explain", action="store_true", help="explain each hit term by term")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--algorithm", default="auto", help="traversal algorithm (default auto)")
    s.add_argument("--filter", metavar="JSON", help='payload filter, e.g. \'{"year": {"$gte": 1990}, "genre": "drama"}\'')
    s.set_defaults(func=cmd_search)

    ad = sub.add_parser("add", help="add (or replace, by id) documents of a JSONL corpus in an index, and commit")
    ad.add_argument("index_dir", metavar="INDEX_DIR")
    ad.add_argument("corpus", metavar="CORPUS.jsonl")
    ad.add_argument("--text-field", default="text", help="JSON field holding the text (default: text)")
    ad.add_argument("--id-field", default="id", help="JSON field holding the id (default: id)")
    ad.set_defaults(func=cmd_add)

    de = sub.add_parser("delete", help="delete documents by id from an index, and commit")
    de.add_argument("index_dir", metavar="INDEX_DIR")
    de.add_argument("doc_ids", metavar="DOC_ID", nargs="+")
    de.add_argument("--missing-ok", action="store_true", help="ignore ids that are not in the index")
    de.set_defaults(func=cmd_delete)

    mg = sub.add_parser("merge", help="merge an index's segments (drops deleted documents)")
    mg.add_argument("index_dir", metavar="INDEX_DIR")
    mg.add_argument("--max-segments", type=int, default=1, help="segments to keep (default 1)")
    mg.set_defaults(func=cmd_merge)

    x = sub.add_parser("explain", help="explain one document's score for a query")
    x.add_argument("index_dir", metavar="INDEX_DIR")
    x.add_argument("query")
    x.add_argument("doc_id", metavar="DOC_ID")
    x.add_argument("--all", action="store_true", help="list every matched term")
    x.add_argument("--json", action="store_true", help="print JSON")
    x.set_defaults(func=cmd_explain)

    e = sub.add_parser("eval", help="run queries and score them against qrels")
    e.add_argument("index_dir", metavar="INDEX_DIR")
    e.add_argument("queries", metavar="QUERIES.jsonl")
    e.add_argument("qrels", metavar="QRELS.tsv")
    e.add_argument("--metrics", default="ndcg@10,map,r@100", help="comma-separated (default ndcg@10,map,r@100)")
    e.add_argument("-k", type=int, default=1000, help="documents retrieved per query (default 1000)")
    e.add_argument("--run-out", metavar="RUN.trec", help="write the run in TREC format")
    e.add_argument("--run-tag", default="sparsedex", help="tag column of the run file")
    e.add_argument("--gains", choices=["exponential", "linear"], default="exponential",
                   help="nDCG gains: 2^rel-1 (default) or rel")
    e.add_argument("--rel-threshold", type=int, default=1, help="lowest relevant grade (default 1)")
    e.add_argument("--text-field", default="text")
    e.add_argument("--id-field", default="id")
    e.add_argument("--algorithm", default="auto")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_eval)

    n = sub.add_parser("info", help="describe an index")
    n.add_argument("index_dir", metavar="INDEX_DIR")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=cmd_info)
    return p


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    msg = str(e) or type(e).__name__
    return " ".join(msg.split()) if "\n" in msg else msg


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if getattr(a, "k", 1) is not None and getattr(a, "k", 1) < 1:
        parser.error("-k must be >= 1")
    from ._core import SparsedexError

    try:
        return int(a.func(a) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (UserError, SparsedexError, OSError, ValueError, TypeError, KeyError) as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
