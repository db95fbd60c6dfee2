"""Evaluation: qrels and TREC run files, nDCG / RR / R / AP / P, as trec_eval computes them.

Conventions (those of trec_eval / pytrec_eval, so values equal ir_measures' ``pytrec_eval``
provider on the same run and the same gains):

- A run's documents are ranked by score descending, ties by document id descending (string
  order); the ranks written in a run file are ignored.
- Binary metrics (AP, RR, R, P) count a document relevant when ``rel >= rel_threshold``
  (default 1); ``R = number of relevant documents in the qrels`` of that query.
- nDCG gains are ``2**rel - 1`` by default (``gains="exponential"``, as in
  REFERENCE_RESULTS.json) or ``rel`` (``gains="linear"``, what trec_eval and ir_measures use
  by default); ``rel <= 0`` gains 0. The ideal DCG ranks all judged documents by gain and is
  cut at the same depth. ir_measures reproduces the exponential variant when given qrels
  whose values are already ``2**rel - 1``.
- AP@k divides by R (trec_eval's ``map_cut``), P@k by k, R@k by R.
- Means are over judged queries: every query in the qrels counts, a query the run lacks
  scores 0 (``missing="zero"``); ``missing="skip"`` averages over the queries in both.
  Queries only in the run are ignored. A judged query with no relevant document scores 0.
  With no query to average over, the mean is NaN (as ir_measures reports).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Qrels",
    "Run",
    "Metric",
    "parse_metric",
    "read_qrels",
    "read_run",
    "write_run",
    "rank",
    "evaluate",
    "evaluate_per_query",
]

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

_GAINS = ("exponential", "linear")


# files ----------------------------------------------------------------------------------
def read_qrels(path: str | os.PathLike[str]) -> Qrels:
    """Read qrels: ``qid docid rel`` (TSV / whitespace) or TREC ``qid iter docid rel``.

    A first line whose relevance field is not an integer is taken as a header and skipped;
    blank lines and lines starting with ``#`` are skipped. Any other malformed line raises
    :class:`ValueError` naming the file and line.
    """
    qrels: Qrels = {}
    p = Path(path)
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            if len(parts) == 3:
                qid, did, rel_s = parts
            elif len(parts) == 4:
                qid, _, did, rel_s = parts
            else:
                raise ValueError(
                    f"{p}:{lineno}: expected 'qid docid rel' or 'qid iter docid rel', "
                    f"got {len(parts)} fields"
                )
            try:
                rel = _parse_rel(rel_s)
            except ValueError:
                if not qrels and lineno == _first_content_line(p):
                    continue  # header
                raise ValueError(f"{p}:{lineno}: relevance {rel_s!r} is not an integer") from None
            qrels.setdefault(qid, {})[did] = rel
    return qrels


def _parse_rel(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        v = float(s)
        if v != int(v):
            raise ValueError(s) from None
        return int(v)


def _first_content_line(p: Path) -> int:
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if s and not s.startswith("#"):
                return lineno
    return 0


def read_run(path: str | os.PathLike[str]) -> Run:
    """Read a TREC run (``qid Q0 docid rank score tag``); returns ``{qid: {docid: score}}``."""
    run: Run = {}
    p = Path(path)
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s:
                continue
            parts = s.split()
            if len(parts) != 6:
                raise ValueError(
                    f"{p}:{lineno}: expected 6 fields 'qid Q0 docid rank score tag', got {len(parts)}"
                )
            qid, _, did, _, score_s, _ = parts
            try:
                score = float(score_s)
            except ValueError:
                raise ValueError(f"{p}:{lineno}: score {score_s!r} is not a number") from None
            run.setdefault(qid, {})[did] = score
    return run


def rank(docs: Mapping[str, float] | Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order documents as trec_eval does: score descending, then document id descending."""
    items = list(docs.items()) if isinstance(docs, Mapping) else [(d, float(s)) for d, s in docs]
    return sorted(items, key=lambda x: (x[1], x[0]), reverse=True)


def write_run(
    run: Mapping[str, Mapping[str, float] | Sequence[tuple[str, float]]],
    path: str | os.PathLike[str],
    tag: str = "sparsedex",
    k: int | None = None,
) -> None:
    """Write a TREC run file. ``{qid: {docid: score}}`` is ranked with :func:`rank`;
    ``{qid: [(docid, score), ...]}`` keeps the given order. ``k`` keeps the top k per query."""
    if re.search(r"\s", tag) or not tag:
        raise ValueError(f"run tag must be a non-empty word, got {tag!r}")
    lines = []
    for qid, docs in run.items():
        ranked = rank(docs) if isinstance(docs, Mapping) else [(d, float(s)) for d, s in docs]
        if k is not None:
            ranked = ranked[:k]
        for r, (did, score) in enumerate(ranked, 1):
            if re.search(r"\s", str(qid)) or re.search(r"\s", str(did)):
                raise ValueError(f"query id {qid!r} / doc id {did!r} contains whitespace")
            lines.append(f"{qid} Q0 {did} {r} {score!r} {tag}\n")
    p = Path(path)
    p.write_text("".join(lines), encoding="utf-8")


# metrics --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A parsed metric name: ``kind`` in ndcg / ap / rr / r / p, and the cutoff ``k``."""

    kind: str
    k: int | None

    def __str__(self) -> str:
        return self.kind + (f"@{self.k}" if self.k is not None else "")


_ALIASES = {
    "ndcg": "ndcg",
    "ndcg_cut": "ndcg",
    "ap": "ap",
    "map": "ap",
    "map_cut": "ap",
    "rr": "rr",
    "mrr": "rr",
    "recip_rank": "rr",
    "r": "r",
    "recall": "r",
    "p": "p",
    "precision": "p",
}


def parse_metric(name: str | Metric) -> Metric:
    """``"ndcg@10"``, ``"nDCG@10"``, ``"map"``, ``"AP@100"``, ``"mrr@10"``, ``"R@100"``, ``"P@5"``,
    also trec_eval style ``"ndcg_cut_10"`` / ``"recall_100"``."""
    if isinstance(name, Metric):
        return name
    s = name.strip().lower()
    m = re.fullmatch(r"([a-z_]+?)(?:(?:@|_)(\d+))?", s)
    if not m or m.group(1) not in _ALIASES:
        raise ValueError(
            f"unknown metric {name!r}: use ndcg, ap/map, rr/mrr, r/recall or p, "
            "optionally with @k (e.g. ndcg@10, map, r@100)"
        )
    kind = _ALIASES[m.group(1)]
    k = int(m.group(2)) if m.group(2) else None
    if k is not None and k < 1:
        raise ValueError(f"metric {name!r}: the cutoff must be >= 1")
    if kind == "p" and k is None:
        raise ValueError(f"metric {name!r}: precision needs a cutoff, e.g. p@10")
    return Metric(kind, k)


def _gain(rel: int, gains: str) -> float:
    if rel <= 0:
        return 0.0
    return float(2**rel - 1) if gains == "exponential" else float(rel)


def _query_values(
    ranked_ids: list[str],
    judged: Mapping[str, int],
    metrics: list[Metric],
    rel_threshold: int,
    gains: str,
) -> list[float]:
    num_rel = sum(1 for r in judged.values() if r >= rel_threshold)
    rels = [judged.get(d) for d in ranked_ids]
    is_rel = [r is not None and r >= rel_threshold for r in rels]
    out = []
    for m in metrics:
        depth = len(ranked_ids) if m.k is None else min(m.k, len(ranked_ids))
        if m.kind == "ndcg":
            dcg = sum(
                _gain(r, gains) / math.log2(i + 2)
                for i, r in enumerate(rels[:depth])
                if r is not None and r > 0
            )
            ideal = sorted((_gain(r, gains) for r in judged.values() if r > 0), reverse=True)
            if m.k is not None:
                ideal = ideal[: m.k]
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
            out.append(dcg / idcg if idcg > 0 else 0.0)
        elif m.kind == "ap":
            hits, s = 0, 0.0
            for i, r in enumerate(is_rel[:depth]):
                if r:
                    hits += 1
                    s += hits / (i + 1)
            out.append(s / num_rel if num_rel else 0.0)
        elif m.kind == "rr":
            first = next((i for i, r in enumerate(is_rel[:depth]) if r), None)
            out.append(1.0 / (first + 1) if first is not None else 0.0)
        elif m.kind == "r":
            out.append(sum(is_rel[:depth]) / num_rel if num_rel else 0.0)
        elif m.kind == "p":
            assert m.k is not None
            out.append(sum(is_rel[:depth]) / m.k)
        else:  # pragma: no cover
            raise AssertionError(m)
    return out


def _as_run(run: Any) -> dict[str, list[str]]:
    """``{qid: ranked doc ids}`` from ``{qid: {doc: score}}`` or ``{qid: [(doc, score), ...]}``
    (the latter re-ranked too, so a list and a dict of the same scores evaluate alike)."""
    if not isinstance(run, Mapping):
        raise TypeError("run must be {qid: {docid: score}} or {qid: [(docid, score), ...]}")
    out: dict[str, list[str]] = {}
    for qid, docs in run.items():
        if isinstance(docs, Mapping):
            items = [(str(d), float(s)) for d, s in docs.items()]
        else:
            items = [(str(d), float(s)) for d, s in docs]
        out[str(qid)] = [d for d, _ in rank(items)]
    return out


def evaluate_per_query(
    run: Any,
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str | Metric] = ("ndcg@10", "map", "r@100"),
    *,
    rel_threshold: int = 1,
    gains: str = "exponential",
    missing: str = "zero",
) -> dict[str, dict[str, float]]:
    """``{metric name: {qid: value}}`` over the judged queries (see the module docstring)."""
    if gains not in _GAINS:
        raise ValueError(f"gains must be one of {_GAINS}, got {gains!r}")
    if missing not in ("zero", "skip"):
        raise ValueError(f"missing must be 'zero' or 'skip', got {missing!r}")
    parsed = [parse_metric(m) for m in metrics]
    names = [m if isinstance(m, str) else str(m) for m in metrics]
    ranked = _as_run(run)
    result: dict[str, dict[str, float]] = {n: {} for n in names}
    for qid, judged in qrels.items():
        qid = str(qid)
        if qid not in ranked:
            if missing == "skip":
                continue
            docs: list[str] = []
        else:
            docs = ranked[qid]
        values = _query_values(docs, {str(d): int(r) for d, r in judged.items()}, parsed,
                               rel_threshold, gains)
        for n, v in zip(names, values):
            result[n][qid] = v
    return result


def evaluate(
    run: Any,
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str | Metric] = ("ndcg@10", "map", "r@100"),
    *,
    rel_threshold: int = 1,
    gains: str = "exponential",
    missing: str = "zero",
    per_query: bool = False,
) -> Any:
    """Mean of each metric over the judged queries: ``{metric name: value}``.

    ``run``: ``{qid: {docid: score}}`` or ``{qid: [(docid, score), ...]}``, or a path to a
    TREC run file; ``qrels``: ``{qid: {docid: rel}}`` or a path. With ``per_query=True``
    returns ``(means, per_query_values)``.
    """
    if isinstance(run, (str, os.PathLike)):
        run = read_run(run)
    if isinstance(qrels, (str, os.PathLike)):
        qrels = read_qrels(qrels)
    pq = evaluate_per_query(
        run, qrels, metrics, rel_threshold=rel_threshold, gains=gains, missing=missing
    )
    means = {n: (sum(v.values()) / len(v) if v else math.nan) for n, v in pq.items()}
    return (means, pq) if per_query else means
