"""Evaluation: qrels and TREC run files, nDCG / RR / R / AP / P, as trec_eval computes them.

Conventions (those of trec_eval / pytrec_eval, so values equal ir_measures' ``pytrec_eval``
provider on the same run and the same gains):

- A run's documents are ranked by score descending, ties by document id descending (string
  order); the ranks written in a run file are ignored. Scores are compared as float32, as
  trec_eval stores them: 1.00000001 and 1.0 tie.
- Binary metrics (AP, RR, R, P) count a document relevant when ``rel >= rel_threshold``
  (default 1); ``R = number of relevant documents in the qrels`` of that query. A threshold
  of 0 or below counts judged documents of such grades relevant (never unjudged ones), as
  trec_eval's ``-l`` does; ir_measures refuses such a level, so there is nothing of it to
  compare with.
- nDCG gains are ``rel`` by default (``gains="linear"``: what trec_eval's ``ndcg`` /
  ``ndcg_cut`` and ir_measures' ``nDCG`` use) or ``2**rel - 1`` (``gains="exponential"``,
  the convention of REFERENCE_RESULTS.json and of Burges et al. 2005); ``rel <= 0`` gains 0.
  The two agree on binary qrels. The ideal DCG ranks all judged documents by gain and is cut
  at the same depth. ir_measures reproduces the exponential variant when given qrels whose
  values are already ``2**rel - 1``.
- AP@k divides by R (trec_eval's ``map_cut``), P@k by k, R@k by R.
- Means are over judged queries: every query in the qrels counts, a query the run lacks
  scores 0 (``missing="zero"``); ``missing="skip"`` averages over the queries in both.
  Queries only in the run are ignored. A judged query with no relevant document scores 0.
  ``missing="skip"`` with no query in both is an error naming a query id of each (ir_measures
  reports NaN there; it is nearly always ids that do not match, e.g. ``1`` and ``"q1"``);
  with ``missing="zero"`` every metric is then 0 and a ``UserWarning`` names ids of each.

Inputs (trec_eval's rules, ``get_trec_results.c``, ``get_qrels.c`` and ``form_res_rels.c``
of trec_eval 9.0.x; where trec_eval has no rule, the stricter choice is named):

- A run file has six whitespace-separated fields a line, ``qid Q0 docno rank score tag``;
  a qrels file ``qid iter docno rel`` (or ``qid docno rel``; a first line whose grade is not
  a number is a header). Blank lines and lines starting with ``#`` are skipped.
- **A document listed twice for one query is an error**, in a run and in qrels alike, as
  trec_eval stops with "duplicate docs"; the message names the query, the document and both
  lines. The same holds for runs given as ``{qid: [(docid, score), ...]}`` lists, and for
  dicts whose keys collide once made strings (``1`` and ``"1"``).
- Scores are numbers; **NaN is an error** (trec_eval's sort has no order for it);
  ``inf`` and ``-inf`` rank first and last. ``True`` / ``False`` are not scores.
- Grades are integers. trec_eval reads them with ``atol``, truncating ``1.5`` to 1 without a
  word; here **a fractional grade is an error** naming the query and document (``2.0`` is the
  grade 2). ``True`` / ``False`` and NaN are not grades. In a file a grade is written as a
  plain ASCII integer within 32 bits (``1e3``, which ``atol`` reads as 1, or ``٢`` are errors),
  and a first line is a header only when its grade field holds a letter.
- Ids in runs and qrels are strings or integers (a float id, ``10.0`` from a pandas column,
  never matched ``"10"``); a query id written to a run file is one word that does not start
  with ``#`` (run and qrels readers skip such lines as comments).
- Files must be UTF-8; a UTF-8 byte-order mark at the start of a file is dropped (read as
  ``utf-8-sig``), so a file saved by a Windows tool gives the same metrics. Any other byte
  that is not UTF-8 is an error naming the file and line. A qrels file with no judgement
  (empty, or only a header, blank lines and comments) or a run file with no result is an
  error naming the file.
- Tied scores: RR / RR@k, like every metric here, rank ties by document id descending
  (trec_eval's order). ir_measures' default provider for ``RR@k`` is its ``msmarco`` engine,
  which orders ties differently, so on a run with tied scores ``RR@k`` can differ from
  ir_measures' default; it equals ir_measures' ``trec_eval`` order (ask for
  ``RR@k`` through ``ir_measures.pytrec_eval`` or ``RR`` without a cutoff). Untied runs
  agree on every metric.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._textfile import file_name, is_stdin, utf8_lines
from ._validate import MAX_K, a_type, check_bool, check_int, shown

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
def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of the content lines of a text file: blank lines and
    ``#`` comments skipped; read by the one text-file rule (UTF-8, a leading byte-order mark
    dropped: see ``docs/inputs.md``; ``-``: standard input); not UTF-8 is a ValueError naming
    the file and line."""
    p = file_name(path)  # "-": "standard input"
    if not is_stdin(path):
        if not Path(path).exists():
            raise FileNotFoundError(f"{p}: no such file")
        if Path(path).is_dir():
            raise IsADirectoryError(f"{p}: is a directory, not a file")
    for lineno, line in utf8_lines(path):
        s = line.strip()
        if s and not s.startswith("#"):
            yield lineno, s


def _trec_float(s: str) -> float:
    """A number of a qrels or run file: ``float``, less Python's ``1_000`` (trec_eval reads 1,
    helper-115), a ValueError."""
    if "_" in s:
        raise ValueError(s)
    return float(s)


def read_qrels(path: str | os.PathLike[str]) -> Qrels:
    """Read qrels: ``qid docid rel`` (TSV / whitespace) or TREC ``qid iter docid rel``.

    A first line whose relevance field is not a number is taken as a header and skipped;
    blank lines and lines starting with ``#`` are skipped. A malformed line, a fractional
    grade, a document judged twice for one query or a file that is not UTF-8 raises
    :class:`ValueError` naming the file and line (see the module docstring); so does a file
    with no judgement at all (empty, or only a header, comments and blank lines). ``"-"``
    reads standard input.
    """
    qrels: Qrels = {}
    seen: dict[tuple[str, str], int] = {}
    p = file_name(path)
    first = True
    header: tuple[int, str] | None = None  # the first line, skipped as a header
    for lineno, s in _lines(path):
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
            value = _trec_float(rel_s)
        except ValueError:
            # a header names its columns: a grade field without a letter (1_0, a superscript 2)
            # is a judgement written wrong, not a header to skip (helper-135; "score2" is a
            # header, helper-136)
            if first and any(c.isalpha() for c in rel_s):
                first = False
                header = (lineno, rel_s)
                continue  # header
            raise ValueError(f"{p}:{lineno}: relevance {shown(rel_s)} is not an integer") from None
        first = False
        if not (math.isfinite(value) and value == int(value)):
            raise ValueError(
                f"{p}:{lineno}: relevance {shown(rel_s)} of document {shown(did)} for query {shown(qid)} is not an "
                "integer (trec_eval would truncate it; grades are integers)"
            )
        if not _GRADE.fullmatch(rel_s):
            # 1e3: trec_eval's atol reads the leading digits only (1), float() the
            # whole number (helper-133)
            raise ValueError(
                f"{p}:{lineno}: relevance {shown(rel_s)} of document {shown(did)} for query {shown(qid)} is not "
                "written as a plain ASCII integer (trec_eval's atol would read another number)"
            )
        rel = int(value)
        if not -(2**31) <= rel < 2**31:
            raise ValueError(
                f"{p}:{lineno}: relevance {shown(rel_s)} of document {shown(did)} for query {shown(qid)} is out of "
                "range (grades are 32-bit integers in trec_eval and pytrec_eval)"
            )
        key = (qid, did)
        if key in seen:
            raise ValueError(
                f"{p}:{lineno}: document {shown(did)} is judged twice for query {shown(qid)} (first on line "
                f"{seen[key]}); trec_eval refuses duplicate docs"
            )
        seen[key] = lineno
        qrels.setdefault(qid, {})[did] = rel
    if not qrels:
        if header is not None:
            raise ValueError(
                f"{p}: no judgements: its only judgement line (line {header[0]}) was taken as a header, "
                f"its relevance {shown(header[1])} not being an integer"
            )
        raise ValueError(f"{p}: no judgements (the qrels file is empty)")
    return qrels


# a grade as trec_eval's atol reads it whole: an integer, or one with a fraction of zeros (2.0)
_GRADE = re.compile(r"[+-]?[0-9]+(\.0*)?")  # ASCII digits: atol reads others (١, ２) as 0


def read_run(path: str | os.PathLike[str]) -> Run:
    """Read a TREC run (``qid Q0 docid rank score tag``); returns ``{qid: {docid: score}}``.

    Blank lines and ``#`` comments are skipped. A malformed line, a score that is not a
    number or is NaN, a document listed twice for one query or a file that is not UTF-8
    raises :class:`ValueError` naming the file and line (see the module docstring); so does a
    file with no result at all. ``"-"`` reads standard input.
    """
    run: Run = {}
    seen: dict[tuple[str, str], int] = {}
    p = file_name(path)
    for lineno, s in _lines(path):
        parts = s.split()
        if len(parts) != 6:
            raise ValueError(
                f"{p}:{lineno}: expected 6 fields 'qid Q0 docid rank score tag', got {len(parts)}"
            )
        qid, _, did, _, score_s, _ = parts
        try:
            score = _trec_float(score_s)
        except ValueError:
            raise ValueError(f"{p}:{lineno}: score {shown(score_s)} is not a number") from None
        if math.isnan(score):
            raise ValueError(f"{p}:{lineno}: score of document {shown(did)} for query {shown(qid)} is NaN")
        key = (qid, did)
        if key in seen:
            raise ValueError(
                f"{p}:{lineno}: document {shown(did)} is listed twice for query {shown(qid)} (first on line "
                f"{seen[key]}); trec_eval refuses duplicate docs"
            )
        seen[key] = lineno
        run.setdefault(qid, {})[did] = score
    if not run:
        raise ValueError(f"{p}: no results (the run file is empty)")
    return run


def _for(qid: Any) -> str:
    return "" if qid is None else f" for query {shown(qid)}"


def _score(x: Any, qid: Any, did: Any) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"score of document {shown(did)}{_for(qid)} is {a_type(x)} ({shown(x)}), not a number"
        )
    v = float(x)
    if math.isnan(v):
        raise ValueError(f"score of document {shown(did)}{_for(qid)} is NaN")
    return v


def _id_text(x: Any, what: str, where: str = "") -> str:
    """``str(x)`` of an id of a run or qrels: a str or an int (numpy's too). None, True, 1.0
    or b'q' were taken as their Python text ("None", "1.0"), so a qrels doc id read as a float
    by pandas (10.0) never matched the run's "10" and scored 0 without a word (helper-135,
    helper-136)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (str, int, np.integer)):
        raise TypeError(f"{what} {shown(x)}{where} is {a_type(x)}: ids are strings or integers")
    return str(x)


def _scored(docs: Any, qid: Any) -> list[tuple[str, float]]:
    """``[(docid, score), ...]`` of one query's run entry (a dict or a list of pairs), checked."""
    if isinstance(docs, Mapping):
        pairs = list(docs.items())
    elif isinstance(docs, (str, bytes)) or not isinstance(docs, Iterable):
        raise ValueError(
            f"run entry{_for(qid)} is {a_type(docs)}: expected {{docid: score}} or "
            "[(docid, score), ...]"
        )
    else:
        pairs = []
        for item in docs:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError(f"run entry{_for(qid)}: {shown(item)} is not a (docid, score) pair")
            pairs.append((item[0], item[1]))
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for d, x in pairs:
        did = _id_text(d, "doc id", _for(qid))
        if did in seen:
            raise ValueError(
                f"document {shown(did)} is listed twice{_for(qid)} (trec_eval refuses duplicate docs)"
            )
        seen.add(did)
        out.append((did, _score(x, qid, did)))
    return out


def rank(docs: Mapping[str, float] | Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order documents as trec_eval does: score descending (compared as float32, as trec_eval
    stores scores), then document id descending.

    Raises :class:`ValueError` for a NaN score, a score that is not a number, or a document
    listed twice.
    """
    return _ranked(_scored(docs, None))


def _ranked(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``items`` in trec_eval's order: score descending *as a float32* (trec_eval keeps a
    run's scores in C floats, so 1.00000001 and 1.0 tie, as in ir_measures: helper-125), then
    document id descending. The scores themselves are kept."""
    if not items:
        return []
    with np.errstate(over="ignore"):  # beyond float32's range: infinite, as C's conversion
        f32 = np.asarray([x for _, x in items], dtype=np.float64).astype(np.float32).tolist()
    order = sorted(range(len(items)), key=lambda i: (f32[i], items[i][0]), reverse=True)
    return [items[i] for i in order]


def is_run_word(s: str) -> bool:
    """Whether ``s`` can be an id of a TREC run or qrels line: not empty and no whitespace
    (readers split the lines on whitespace)."""
    return bool(s) and not re.search(r"\s", s)


def _check_run_id(x: Any, what: str, where: str = "") -> None:
    """An id a TREC run can hold (:func:`_id_text`), one non-empty word."""
    if not is_run_word(_id_text(x, what, where)):
        raise ValueError(f"{what} {shown(x)}{where} is empty or holds whitespace: a TREC run cannot hold it")


def write_run(
    run: Mapping[str, Mapping[str, float] | Sequence[tuple[str, float]]],
    path: str | os.PathLike[str] | Any,
    tag: str = "sparsedex",
    k: int | None = None,
) -> None:
    """Write a TREC run file (``path``: a file name, or an open text file).
    ``{qid: {docid: score}}`` is ranked with :func:`rank`; ``{qid: [(docid, score), ...]}``
    keeps the given order. ``k`` keeps the top k per query."""
    if re.search(r"\s", tag) or not tag:
        raise ValueError(f"run tag must be a non-empty word, got {tag!r}")
    if k is not None:
        k = check_int(k, "k", 1, MAX_K)
    lines = []
    for qid, docs in run.items():
        ranked = (
            _ranked(_scored(docs, qid))
            if isinstance(docs, Mapping)
            else _scored(docs, qid)
        )
        if k is not None:
            ranked = ranked[:k]
        if ranked:
            _check_run_id(qid, "query id")
            if str(qid).startswith("#"):  # readers skip the line as a comment (helper-135)
                raise ValueError(f"query id {shown(qid)} starts with '#': a run reader skips such lines as comments")
        for r, (did, score) in enumerate(ranked, 1):
            _check_run_id(did, "doc id", f" of query {shown(qid)}")
            lines.append(f"{qid} Q0 {did} {r} {score!r} {tag}\n")
    if hasattr(path, "write"):  # an open text file (sys.stdout: `sparsedex run -o -`)
        path.write("".join(lines))
        return
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
    if not isinstance(name, str):
        raise TypeError(f"a metric is a name such as 'ndcg@10' (or a Metric), got {a_type(name)}")
    s = name.strip().lower()
    m = re.fullmatch(r"([a-z_]+?)(?:(?:@|_)([0-9]+))?", s)  # ASCII digits (helper-142: "ndcg@٣" read as 3)
    if not m or m.group(1) not in _ALIASES:
        raise ValueError(
            f"unknown metric {shown(name)}: use ndcg, ap/map, rr/mrr, r/recall or p, "
            "optionally with @k (e.g. ndcg@10, map, r@100)"
        )
    kind = _ALIASES[m.group(1)]
    k = int(m.group(2)) if m.group(2) else None
    if k is not None and not 1 <= k <= MAX_K:
        raise ValueError(f"metric {name!r}: the cutoff must be between 1 and 2**63 - 1")
    if kind == "p" and k is None:
        raise ValueError(f"metric {name!r}: precision needs a cutoff, e.g. p@10")
    return Metric(kind, k)


# The largest grade exponential gains take: 2**grade - 1 is a float up to grade 1023, and at
# 1000 the sum of the gains of millions of documents (the ideal DCG) stays finite too.
MAX_EXPONENTIAL_GRADE = 1000


def _gain(rel: int, gains: str) -> float:
    if rel <= 0:
        return 0.0
    # in floats: 2**rel of a Python int built a number of rel bits first (a grade of 1e11
    # took 12.5 GB, helper-115); grades above MAX_EXPONENTIAL_GRADE are refused by evaluate()
    return math.ldexp(1.0, rel) - 1.0 if gains == "exponential" else float(rel)


def _check_exponential_grades(qrels: Mapping[str, Mapping[str, int]], metrics: Sequence[Metric], gains: str,
                               where: str = "") -> None:
    """With exponential gains and an nDCG among ``metrics``, refuse a grade whose gain
    overflows a float, naming its query and document (``where``: the qrels file, for messages)."""
    if gains != "exponential" or not any(m.kind == "ndcg" for m in metrics):
        return
    for qid, judged in qrels.items():
        for doc, rel in judged.items():
            if rel > MAX_EXPONENTIAL_GRADE:
                raise ValueError(
                    f"{where}qrels: query {shown(qid)} document {shown(doc)}: grade {rel} is too large for exponential "
                    f"gains, which take grades up to {MAX_EXPONENTIAL_GRADE} (2**grade - 1, and the sums of "
                    "such gains, soon pass a float's range): use linear gains, or grades on a smaller scale"
                )


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
    (the latter re-ranked too, so a list and a dict of the same scores evaluate alike).
    Checked as a run file is (see the module docstring)."""
    if not isinstance(run, Mapping):
        raise TypeError("run must be {qid: {docid: score}} or {qid: [(docid, score), ...]}")
    out: dict[str, list[str]] = {}
    for qid, docs in run.items():
        q = _id_text(qid, "query id", " of the run")
        if q in out:
            raise ValueError(f"query {shown(q)} appears twice in the run (as {shown(qid)} and as its string)")
        items = _scored(docs, q)
        out[q] = [d for d, _ in _ranked(items)]
    return out


def _grade(x: Any, qid: str, did: str) -> int:
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (float, np.floating)) and math.isfinite(x) and float(x) == int(x):
        return int(x)
    what = "NaN" if isinstance(x, (float, np.floating)) and math.isnan(x) else shown(x)
    # the reason fits the value: a fraction, or a value of another type (helper-115: a bool or a
    # string was told about truncated fractions)
    why = ("trec_eval would truncate a fractional grade" if isinstance(x, (float, np.floating))
           else f"not a {type(x).__name__}")
    raise ValueError(
        f"relevance of document {shown(did)} for query {shown(qid)} is {what}: grades are integers ({why})"
    )


def _as_qrels(qrels: Any) -> dict[str, dict[str, int]]:
    """``{qid: {docid: grade}}`` with string ids and int grades, checked (module docstring)."""
    if not isinstance(qrels, Mapping):
        raise TypeError("qrels must be {qid: {docid: relevance}} or a path to a qrels file")
    out: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        q = _id_text(qid, "query id", " of the qrels")
        if q in out:
            raise ValueError(f"query {shown(q)} appears twice in the qrels (as {shown(qid)} and as its string)")
        if not isinstance(judged, Mapping):
            raise ValueError(f"qrels of query {shown(q)} is {a_type(judged)}, expected {{docid: relevance}}")
        docs: dict[str, int] = {}
        for d, r in judged.items():
            did = _id_text(d, "doc id", f" for query {shown(q)} in the qrels")
            if did in docs:
                raise ValueError(f"document {shown(did)} is judged twice for query {shown(q)} (as {shown(d)} and as its string)")
            docs[did] = _grade(r, q, did)
        out[q] = docs
    if not out:
        # every mean would be NaN (no judged query): as an empty qrels file is an error
        raise ValueError("qrels is empty: no judged query to evaluate")
    return out


def evaluate_per_query(
    run: Any,
    qrels: Mapping[str, Mapping[str, int]],
    metrics: str | Metric | Sequence[str | Metric] = ("ndcg@10", "map", "r@100"),
    *,
    rel_threshold: int = 1,
    gains: str = "linear",
    missing: str = "zero",
) -> dict[str, dict[str, float]]:
    """``{metric name: {qid: value}}`` over the judged queries (see the module docstring).

    Raises :class:`ValueError` naming the query and document for a run or qrels that breaks
    the input rules (duplicate document, NaN score, fractional grade, ...)."""
    if gains not in _GAINS:
        raise ValueError(f"gains must be one of {_GAINS}, got {gains!r}")
    if missing not in ("zero", "skip"):
        raise ValueError(f"missing must be 'zero' or 'skip', got {missing!r}")
    # grades are integers (a fractional grade is an error), so is the threshold they meet
    if isinstance(rel_threshold, bool) or not isinstance(rel_threshold, (int, np.integer)):
        raise TypeError(f"rel_threshold must be an integer grade, got {shown(rel_threshold)} ({type(rel_threshold).__name__})")
    if isinstance(metrics, (str, Metric)):  # one metric: not the characters of its name
        metrics = [metrics]
    elif isinstance(metrics, (bytes, bytearray)) or not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a metric name or a list of them, got {type(metrics).__name__}")
    metrics = list(metrics)  # read twice below (a generator would give no names, review34)
    if not metrics:
        raise ValueError("metrics is empty: name at least one (e.g. 'ndcg@10')")
    parsed = [parse_metric(m) for m in metrics]
    # the names as parse_metric reads them, spaces around them dropped, as --metrics drops them
    # ("ndcg@10, map"): "ndcg@10 " was returned under a key with its space (helper-145)
    names = [m.strip() if isinstance(m, str) else str(m) for m in metrics]
    ranked = _as_run(run)
    checked = _as_qrels(qrels)
    _check_exponential_grades(checked, parsed, gains)
    result: dict[str, dict[str, float]] = {n: {} for n in names}
    for qid, judged in checked.items():
        if qid not in ranked:
            if missing == "skip":
                continue
            docs: list[str] = []
        else:
            docs = ranked[qid]
        values = _query_values(docs, judged, parsed, rel_threshold, gains)
        for n, v in zip(names, values):
            result[n][qid] = v
    if not any(q in ranked for q in checked):
        # nearly always query ids that do not match (1 and "q1"): every mean would be NaN
        # (skip) or 0 (zero, as ir_measures gives; said so, for an empty run too: helper-145)
        ids = f"(qrels queries e.g. {_some_ids(checked)}; run queries e.g. {_some_ids(ranked)})"
        if missing == "skip":
            raise ValueError(f"missing='skip': no query of the qrels is in the run, nothing to average over {ids}")
        if ranked:
            warnings.warn(f"no query of the run is judged in the qrels: every metric is 0 {ids}", UserWarning, stacklevel=3)
        else:  # (empty qrels are refused above)
            warnings.warn(f"the run holds no query: every metric is 0 (qrels queries e.g. {_some_ids(checked)})",
                          UserWarning, stacklevel=3)
    return result


def _some_ids(queries: Mapping[str, Any]) -> str:
    """The first three query ids of ``queries``, shown, for a message; ``none`` when empty."""
    return ", ".join(shown(q) for q in itertools.islice(queries, 3)) or "none"


def evaluate(
    run: Any,
    qrels: Mapping[str, Mapping[str, int]],
    metrics: str | Metric | Sequence[str | Metric] = ("ndcg@10", "map", "r@100"),
    *,
    rel_threshold: int = 1,
    gains: str = "linear",
    missing: str = "zero",
    per_query: bool = False,
) -> Any:
    """Mean of each metric over the judged queries: ``{metric name: value}``.

    ``run``: ``{qid: {docid: score}}`` or ``{qid: [(docid, score), ...]}``, or a path to a
    TREC run file; ``qrels``: ``{qid: {docid: rel}}`` or a path. ``gains``: ``"linear"``
    (default, trec_eval's and ir_measures' nDCG) or ``"exponential"`` (``2**rel - 1``). With
    ``per_query=True`` returns ``(means, per_query_values)``. Bad input raises
    :class:`ValueError` naming the file and line, or the query and document.
    """
    per_query = check_bool(per_query, "per_query")
    if isinstance(run, (str, os.PathLike)):
        run = read_run(run)
    if isinstance(qrels, (str, os.PathLike)):
        qrels = read_qrels(qrels)
    pq = evaluate_per_query(
        run, qrels, metrics, rel_threshold=rel_threshold, gains=gains, missing=missing
    )
    means = {n: (sum(v.values()) / len(v) if v else math.nan) for n, v in pq.items()}
    return (means, pq) if per_query else means
