"""The ``sparsedex`` command line (also ``python -m sparsedex``).

Commands: ``demo``, ``index``, ``add``, ``delete``, ``merge``, ``search``, ``explain``,
``eval``, ``run``, ``info``; ``sparsedex COMMAND --help`` describes each with an example.

Errors never print a traceback: every failure is one line on stderr, ``sparsedex: error:
...``, naming the file, line and field where there is one (``corpus.jsonl:2000: id 'x'
repeats the id of line 17``), with exit code 1; usage errors (an unknown option, ``-k 0``)
exit with 2. Warnings (``sparsedex: warning: ...``) go to stderr too and do not change the
exit code.

Input records (JSONL, one object a line):

- **ids**: ``--id-field`` names the field; without it the first of ``id``, ``_id`` (BEIR),
  ``docid``, ``doc_id``, ``pid``, ``docno`` present is used (for queries also ``qid``,
  ``query_id``). When none is present but a field looks like an id (``uuid``, ``doc_key``,
  ``DocID``, ...), the command stops and names it; when no field looks like one, ``index``
  numbers the documents 0, 1, 2, ... in file order and says so on stderr.
- **texts**: ``--text-field`` names the field, or several joined with a space
  (``--text-field title,text``; a missing or null field counts as empty). Without it:
  ``text`` (preceded by ``title`` when the record has a non-empty one, as BEIR corpora are
  indexed), else ``contents`` (Pyserini); for queries ``text``, ``query``,
  else ``title``.
- every other field is the document's payload. Each id, text and payload is checked before
  anything is encoded (valid Unicode, ids unique and all of one kind, payload values that
  can be stored exactly: see :func:`sparsedex.filters.normalize_payload`).

Query files for ``eval`` and ``run`` may also be TSV, ``qid<TAB>text`` a line (MS MARCO's
``queries.tsv``): a file whose first line is not a JSON object is read that way. A query id
is taken as written, in TSV as in JSONL: one holding whitespace (`` q1``) is an error naming
the line, not trimmed.

An input file named ``-`` (corpus, queries, qrels) is standard input (``./-`` for a file
of that name). Every text file (corpus, queries, qrels) is read by one rule, the one of
:mod:`sparsedex.eval` too (``sparsedex._textfile``): UTF-8, a byte-order mark at the start
of the file dropped (``utf-8-sig``); another byte that is not UTF-8 is an error naming the
file, line and byte. A key twice in one JSON object is an error naming the file, line and
key (``json`` would keep the last one without a word).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import re
import signal
import socket
import sys
import textwrap
import threading
import time
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from . import _validate
from ._shown import shown

__all__ = ["main", "read_jsonl", "evaluate_index", "load_records", "Records"]

PROG = "sparsedex"

DOC_ID_FIELDS = ("id", "_id", "docid", "doc_id", "pid", "docno")
QUERY_ID_FIELDS = ("id", "_id", "qid", "query_id", "query-id", "topic_id")
DOC_TEXT_FIELDS = ("text", "contents")
QUERY_TEXT_FIELDS = ("text", "query", "title")
_ID_LIKE = re.compile(r"(?:^|[_\-. ])(?:id|ids|no|num|number|key|uuid|guid)$|^(?:uuid|guid|key|docno|docnum|url)$")
_CAMEL_ID = re.compile(r"[a-z0-9](?:Id|ID)$|^ID$")


class UserError(Exception):
    """An error reported as one line, without a traceback."""


def _blank_note(index: Any, query: str) -> str:
    """Why a query found nothing, when its vector is empty: a blank text, or one whose every
    word the encoder drops (stopwords, characters the tokenizer ignores), or one whose words it
    keeps but none of whose terms occurs in the index (a BM25 vocabulary, or Qdrant/bm25's
    hashed terms: the encoder was blamed for it, helper-159, helper-161)."""
    if not query.strip():
        return " (an empty or blank query matches no document)"
    if index.encoder is not None and not index.decode(query):
        enc = index.encoder
        if getattr(enc, "kind", None) == "bm25":  # its query vector holds only the index's words
            kept = bool(enc.analyzer(query))
        else:
            kept = any(len(v.indices) for v in enc.encode_queries([query]))  # as the index encodes it
        if kept:
            return " (none of this query's terms occurs in the index's documents, so it matches no document)"
        return " (the encoder keeps no term of this query, so it matches no document)"
    return ""


def _count(n: int, one: str, many: str | None = None) -> str:
    """``"1 document"``, ``"2 documents"``."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _warn(msg: str) -> None:
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    _warn(str(message))


# input files ----------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing a key twice in one object (json keeps the last one)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _text_lines(p: str | Path) -> Any:
    """``(line number, line)`` of a text file by the one reader rule (``_textfile``: UTF-8,
    a leading byte-order mark dropped; ``-``: standard input); not UTF-8 is a UserError naming
    file and line."""
    from ._textfile import utf8_lines

    try:
        yield from utf8_lines(p)
    except ValueError as e:
        raise UserError(str(e)) from None


def read_jsonl(path: str | Path, what: str = "file") -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line (blank lines skipped); errors name the line.

    Read by the one text-file rule (UTF-8; a byte-order mark at the start is dropped). A key
    twice in one object is an error (``{"id": "a", "id": "b"}`` would silently keep ``b``).
    Each object gets its line number under ``"__line__"``. ``-`` reads standard input.
    """
    from ._textfile import file_name, is_stdin

    p = file_name(path)  # "-": "standard input"
    if not is_stdin(path):
        if not Path(path).exists():
            raise UserError(f"{p}: no such {what}")
        if Path(path).is_dir():
            raise UserError(f"{p}: is a directory, expected a JSONL {what}")
    out = []
    for lineno, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.rstrip("\r\n"), object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as e:
            raise UserError(f"{p}:{lineno}: key {e.args[0]!r} appears twice in one JSON object: keep one") from None
        except RecursionError:
            raise UserError(f"{p}:{lineno}: bad JSON line (nested too deeply)") from None
        except json.JSONDecodeError as e:
            # the position within the line (json's own "line 1 column 18" read as another line)
            hint = (f"; a {what} is JSONL, one JSON object a line, not TSV"
                    if "\t" in line and not line.lstrip().startswith("{") else "")
            where = "column" if e.msg.endswith(" at") else "at column"  # "Unterminated string starting at"
            raise UserError(f"{p}:{lineno}: bad JSON line ({e.msg} {where} {e.colno}){hint}") from None
        except ValueError as e:
            raise UserError(f"{p}:{lineno}: bad JSON line ({e})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        rec["__line__"] = lineno
        out.append(rec)
    return out


@dataclass
class Records:
    """Checked input records: ids (None: numbered by the index), texts, payloads, the line
    of each record, and the fields used."""

    path: str
    ids: list[Any] | None
    texts: list[str]
    payloads: list[dict[str, Any] | None]
    lines: list[int]
    id_field: str | None
    text_fields: list[str]


def _looks_like_id(name: str) -> bool:
    return bool(_ID_LIKE.search(name.lower()) or _CAMEL_ID.search(name))


def _pick_id_field(path: str, recs: list[dict[str, Any]], id_field: str | None, candidates: Sequence[str],
                   *, required: bool, no_ids_hint: str) -> str | None:
    if id_field is not None:
        return id_field
    first = recs[0]
    for name in candidates:
        if name in first:
            return name
    fields = [k for k in first if k != "__line__"]
    looks = [k for k in fields if _looks_like_id(k) and isinstance(first[k], (str, int)) and not isinstance(first[k], bool)]
    looked = ", ".join(candidates)
    if looks:
        raise UserError(
            f"{path}:{first['__line__']}: no id field (looked for {looked}); field {looks[0]!r} looks like one: "
            f"pass --id-field {looks[0]}" + ("" if required or not no_ids_hint else f", or {no_ids_hint}")
        )
    if required:
        raise UserError(
            f"{path}:{first['__line__']}: no id field (looked for {looked}; fields here: "
            f"{', '.join(fields) or 'none'}): pass --id-field NAME"
        )
    return None


def _pick_text_fields(path: str, recs: list[dict[str, Any]], text_field: str | None,
                      candidates: Sequence[str], what: str) -> tuple[list[str], bool]:
    """(fields, auto_title): the fields whose values make the text."""
    if text_field is not None:
        fields = [f.strip() for f in text_field.split(",") if f.strip()]
        if not fields:
            raise UserError(f"--text-field is empty: name a field, or several separated by commas (title,text)")
        return fields, False
    first = recs[0]
    for name in candidates:
        if name in first:
            return [name], name == "text" and what != "queries"
    fields = [k for k in first if k != "__line__"]
    raise UserError(
        f"{path}:{first['__line__']}: no text field (looked for {', '.join(candidates)}; fields here: "
        f"{', '.join(fields) or 'none'}): pass --text-field NAME (several: --text-field title,text)"
    )


def _text_of(path: str, r: dict[str, Any], line: int, fields: list[str], auto_title: bool) -> str:
    from ._validate import _surrogate_problem

    if len(fields) == 1 and not auto_title:
        name = fields[0]
        if name not in r:
            raise UserError(f"{path}:{line}: no {name!r} field (choose it with --text-field)")
        t = r.pop(name)
        if not isinstance(t, str):
            raise UserError(f"{path}:{line}: field {name!r} is {_json_type(t)}, not a string")
    else:
        if auto_title and fields[0] not in r:
            raise UserError(f"{path}:{line}: no {fields[0]!r} field (choose it with --text-field)")
        if auto_title and r[fields[0]] is None:  # a null title is no title; a null text is no document
            raise UserError(f"{path}:{line}: field {fields[0]!r} is null, not a string")
        names = ["title", *fields] if auto_title and "title" in r else list(fields)
        if not any(r.get(n) is not None for n in names):
            raise UserError(
                f"{path}:{line}: none of the fields {', '.join(map(repr, names))} "
                f"({'all null' if any(n in r for n in names) else 'choose with --text-field'})"
            )
        parts = []
        for name in names:
            v = r.pop(name, None)
            if v is None:
                continue
            if not isinstance(v, str):
                raise UserError(f"{path}:{line}: field {name!r} is {_json_type(v)}, not a string")
            if v:
                parts.append(v)
        t = " ".join(parts)
        name = "+".join(names)
    problem = _surrogate_problem(t)
    if problem:
        raise UserError(f"{path}:{line}: field {name!r} {problem}")
    return t


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def load_records(
    path: str | Path,
    text_field: str | None = None,
    id_field: str | None = None,
    what: str = "corpus file",
    *,
    ids: str = "optional",
    no_ids_hint: str = "--no-ids to number the documents 0, 1, ...",
) -> Records:
    """Read and check a JSONL corpus or queries file (see the module docstring).

    ``ids``: ``"optional"`` (auto-numbered when no field looks like an id), ``"required"``
    or ``"none"`` (never read ids: number the documents). Raises :class:`UserError` naming
    the file, line and field of the first problem.
    """
    from ._validate import ID_MAX, ID_MIN, _surrogate_problem
    from .filters import PayloadError, normalize_payload

    from ._textfile import file_name

    recs = read_jsonl(path, what)  # before str(): Path("./-") is a file named -, "-" standard input
    path = file_name(path)  # for messages: "-" is "standard input"
    if not recs:
        return Records(path, None if ids != "required" else [], [], [], [], None, [])
    queries = what.startswith("quer")
    fields, auto_title = _pick_text_fields(path, recs, text_field, QUERY_TEXT_FIELDS if queries else DOC_TEXT_FIELDS,
                                           "queries" if queries else "corpus")
    idf = None
    if ids != "none":
        idf = _pick_id_field(path, recs, id_field, QUERY_ID_FIELDS if queries else DOC_ID_FIELDS,
                             required=ids == "required", no_ids_hint=no_ids_hint)
    if idf is not None and idf in fields:
        raise UserError(
            f"{path}: field {idf!r} is the id field, so it cannot also be the text: pass --text-field with another "
            f"field" + ("" if id_field is not None else f", or --id-field NAME to take the ids from another field")
        )
    out_ids: list[Any] | None = [] if idf is not None else None
    seen: dict[Any, int] = {}
    kind: tuple[type, int] | None = None
    texts: list[str] = []
    payloads: list[dict[str, Any] | None] = []
    lines: list[int] = []
    for r in recs:
        line = r.pop("__line__")
        lines.append(line)
        if out_ids is not None:
            assert idf is not None
            if idf not in r:
                raise UserError(f"{path}:{line}: no {idf!r} field (the id field; choose it with --id-field)")
            x = r.pop(idf)
            if isinstance(x, bool) or not isinstance(x, (int, str)):
                raise UserError(f"{path}:{line}: field {idf!r} must be a string or an integer, got {json.dumps(x)[:40]}")
            if isinstance(x, int) and not ID_MIN <= x <= ID_MAX:
                raise UserError(f"{path}:{line}: field {idf!r}: integer id {x} is outside the signed 64-bit range")
            if isinstance(x, str):
                problem = _surrogate_problem(x)
                if problem:
                    raise UserError(f"{path}:{line}: field {idf!r} {problem}")
            k = str if isinstance(x, str) else int
            if kind is None:
                kind = (k, line)
            elif k is not kind[0]:
                raise UserError(
                    f"{path}:{line}: id {shown(x)} is {'a string' if k is str else 'an integer'} but the id on line "
                    f"{kind[1]} is {'a string' if kind[0] is str else 'an integer'}: ids must be all strings or all "
                    "integers"
                )
            if x in seen:
                raise UserError(f"{path}:{line}: id {shown(x)} repeats the id of line {seen[x]}")
            seen[x] = line
            out_ids.append(x)
        texts.append(_text_of(path, r, line, fields, auto_title))
        try:
            payloads.append(normalize_payload(r, 0) if r else None)
        except PayloadError as e:
            where = f"field {e.path!r}" if e.path else "payload"
            raise UserError(f"{path}:{line}: {where}: {e.problem}") from None
    return Records(path, out_ids, texts, payloads, lines, idf, (["title"] if auto_title else []) + fields)


def _records(path: str, text_field: str | None, id_field: str | None, what: str) -> tuple[list[Any] | None, list[str], list[dict[str, Any]]]:
    """``(ids or None, texts, payloads)`` of a JSONL file (kept for callers of earlier versions)."""
    r = load_records(path, text_field, id_field, what)
    return r.ids, r.texts, [p or {} for p in r.payloads]


def load_queries(path: str, text_field: str | None, id_field: str | None) -> list[tuple[str, str]]:
    """``[(qid, text), ...]`` of a JSONL queries file, or of a TSV file ``qid<TAB>text`` (blank
    lines and lines starting with ``#`` skipped); ``-`` reads standard input."""
    from ._textfile import file_name, first_content_bytes, is_stdin
    from ._validate import _surrogate_problem

    p = file_name(path)  # "-": "standard input"
    if not is_stdin(path):
        if not Path(path).exists():
            raise UserError(f"{p}: no such queries file")
        if Path(path).is_dir():
            raise UserError(f"{p}: is a directory, expected a queries file")
    head = first_content_bytes(path)
    if head.startswith(b"{") or not head:
        r = load_records(path, text_field, id_field, "queries file", ids="required")
        assert r.ids is not None
        qids = [str(q) for q in r.ids]
        for qid, lineno in zip(qids, r.lines):
            _check_query_id(qid, p, lineno)
        return list(zip(qids, r.texts))
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for lineno, line in _text_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue  # blank lines and comments, as the run and qrels readers skip them (helper-136)
        qid, sep, text = line.partition("\t")
        if not sep:
            raise UserError(f"{p}:{lineno}: expected 'qid<TAB>text' (or a JSONL queries file)")
        # the id as written: " q1" was silently "q1" here while a JSONL queries file refused it
        # (the line end, "\r\n" too, is stripped above)
        _check_query_id(qid, p, lineno)
        if qid in seen:
            raise UserError(f"{p}:{lineno}: query id {shown(qid)} repeats the id of line {seen[qid]}")
        problem = _surrogate_problem(text)
        if problem:
            raise UserError(f"{p}:{lineno}: query text {problem}")
        seen[qid] = lineno
        out.append((qid, text))
    return out


def _check_query_id(qid: str, p: str, lineno: int) -> None:
    """A query id must be one non-empty word not starting with ``#``: TREC runs and qrels are
    split on whitespace and their readers skip lines starting with ``#``, so such an id made a
    run file no reader (sparsedex's included) could read back whole (helper-133, helper-135)."""
    if not qid:
        raise UserError(f"{p}:{lineno}: empty query id")
    if re.search(r"\s", qid):
        raise UserError(f"{p}:{lineno}: query id {shown(qid)} holds whitespace: a TREC run or qrels file cannot hold it")
    if qid.startswith("#"):  # helper-135: its run lines were skipped as comments when read back
        raise UserError(f"{p}:{lineno}: query id {shown(qid)} starts with '#': run and qrels readers skip such lines as comments")


def _warn_run_ids(path: str, recs: Records) -> None:
    """Warn about document ids a TREC run cannot hold (empty, or holding whitespace): the index
    takes them, `search` and the Python API return them, but `run` and `eval --run-out`
    refuse to write them (helper-137: found only after indexing)."""
    from .eval import is_run_word

    if not recs.ids:
        return
    bad = [(line, x) for line, x in zip(recs.lines, recs.ids) if isinstance(x, str) and not is_run_word(x)]
    if bad:
        line, x = bad[0]
        _warn(f"{path}:{line}: document id {shown(x)} is empty or holds whitespace"
              + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
              + ": `sparsedex run` and `eval --run-out` cannot write such ids to a TREC run")


# index helpers --------------------------------------------------------------------------------
def _open_index(path: str, encoder: str | None = None) -> Any:
    """Open the index at ``path``; ``encoder`` (``--encoder``): the model to encode texts with
    instead of the one recorded with the index (checked to be the same model by open())."""
    from .index import SparseIndex

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such index directory")
    index = SparseIndex.open(p, encoder=encoder)
    if encoder is not None and index._store.settings.get("encoder") is None:
        # helper-139: the user's term ids were matched against the model's words, and `add`
        # recorded the model as the index's
        index.close()
        raise UserError(f"{p} holds vectors you bring (no model is recorded with it): --encoder names another "
                        "copy of the model an index was built with")
    return index


def _doc_id(index: Any, raw: str) -> Any:
    if index._id_kind() is int:
        # a plain decimal integer: int() also reads "1_0" as 10 and other scripts' digits (helper-130)
        if not re.fullmatch(r"[+-]?[0-9]+", raw):
            raise UserError(f"no document with id {shown(raw)} in the index (its ids are integers)")
        return int(raw)
    return raw


def _printable(s: str) -> str:
    """``s`` with its control characters (C0, C1), format characters (Unicode category Cf:
    bidi marks and overrides, zero-width and invisible characters) and line / paragraph
    separators escaped (``\\x1b``, ``\\u202e``): stored texts and ids are printed to a
    terminal, where a NUL or an ESC sequence in a corpus recoloured or rewrote it and a bidi
    override reversed a row (helper-137, helper-139, helper-141)."""
    if s.isascii() and s.isprintable():
        return s
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or unicodedata.category(ch) in ("Cf", "Zl", "Zp"):
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _label(hit: Any, index: Any, width: int = 70) -> str:
    p = hit.payload or {}
    for key in ("title", "name", "movie_name"):
        if isinstance(p.get(key), str):
            text = p[key]
            break
    else:
        doc = index.get(hit.id)
        text = doc.text or (json.dumps(p, ensure_ascii=False) if p else "")
    # escaped character by character and cut at the width as printed, never inside an escape
    # (helper-141), however many escapes (helper-143: 200 zero-width spaces printed 1,200 wide)
    # (a title too: helper-139); only the characters up to the width are escaped, not a whole
    # document's
    out: list[str] = []
    n = fit = 0  # columns so far; characters that fit before a "..."
    for ch in " ".join(text.split()):
        p = _printable(ch)
        c = _columns(p)
        if n + c <= width - 3:
            fit = len(out) + 1
        n += c
        if n > width:
            return "".join(out[:fit]) + "..."
        out.append(p)
    return "".join(out)


def _columns(part: str) -> int:
    """Terminal columns of one printed character (or its escape; ``sum(map(_columns, s))`` for
    a whole printed string, whose escapes are ASCII): 2 for East Asian wide and
    full-width characters, 0 for combining marks (helper-144: 60 CJK characters took 120)."""
    if len(part) != 1:
        return len(part)
    if unicodedata.combining(part):
        return 0
    return 2 if unicodedata.east_asian_width(part) in ("W", "F") else 1


def _progress(total: int, desc: str, unit: str = "doc") -> Any:
    from ._progress import progress_bar

    return progress_bar(total, desc, None, unit=unit, min_total=2)


_ROW = re.compile(r"\b(document|row|text) (\d+)\b")


def _add_in_chunks(index: Any, recs: Records, chunk: int = 1024, upsert: bool = False, new_ids: bool = False) -> None:
    """Add the records in chunks under one progress bar, which advances per encoding batch
    (SPLADE) or per chunk (BM25) and shows a live rate. An error about a document of a chunk
    names its file and line."""
    enc = index.encoder
    per_batch = hasattr(enc, "progress")
    texts, ids, payloads = recs.texts, recs.ids, recs.payloads
    with _progress(len(texts), "indexing") as bar:
        saved = getattr(enc, "progress", None)
        if per_batch:
            enc.progress = bar
        try:
            for s in range(0, len(texts), chunk):
                part = texts[s : s + chunk]
                try:
                    (index.upsert if upsert else index.add)(
                        part,
                        ids=None if (ids is None or new_ids) else ids[s : s + chunk],
                        payloads=payloads[s : s + chunk],
                    )
                except (ValueError, TypeError) as e:
                    msg = _message(e)
                    m = _ROW.search(msg)
                    if m is not None and int(m.group(2)) < len(part):
                        line = recs.lines[s + int(m.group(2))]
                        msg = f"{recs.path}:{line}: " + _ROW.sub("the document", msg, count=1)
                    raise UserError(msg) from None
                if not per_batch:
                    bar.update(len(part))
        finally:
            if per_batch:
                enc.progress = saved


# evaluation ---------------------------------------------------------------------------------
def _search_all(index: Any, queries: Sequence[tuple[str, str]], k: int, algorithm: str,
                filter: Any = None, target_recall: Optional[float] = None) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` of ``queries`` on ``index``, 256 queries a batch
    (``target_recall``: approximate search's target, with ``algorithm="approximate"``)."""
    kw = {} if target_recall is None else {"target_recall": target_recall}
    enc = index.encoder
    saved = getattr(enc, "progress", None)
    if hasattr(enc, "progress"):
        enc.progress = False
    try:
        with _progress(len(queries), "searching", unit="query") as bar:
            results = []
            for s in range(0, len(queries), 256):
                part = [t for _, t in queries[s : s + 256]]
                results.extend(index.search_batch(part, k=k, algorithm=algorithm, filter=filter, **kw))
                bar.update(len(part))
    finally:
        if hasattr(enc, "progress"):
            enc.progress = saved
    return {str(qid): {str(h.id): h.score for h in hits} for (qid, _), hits in zip(queries, results)}


def evaluate_index(
    index: Any,
    queries: Sequence[tuple[str, str]],
    qrels: Any,
    metrics: Sequence[str] = ("ndcg@10", "map", "r@100"),
    k: int = 1000,
    *,
    gains: str = "linear",
    rel_threshold: int = 1,
    algorithm: str = "auto",
    target_recall: Optional[float] = None,
    qrels_name: Optional[str] = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Search ``queries`` ((id, text) pairs) on ``index`` and score the run against ``qrels``
    (a path or ``{qid: {docid: rel}}``): returns (means by metric, run ``{qid: {docid: score}}``).
    ``gains``: nDCG gains, ``"linear"`` (trec_eval's, default) or ``"exponential"``;
    ``target_recall``: approximate search's target, with ``algorithm="approximate"``;
    ``qrels_name``: the qrels file's name for messages, when ``qrels`` is a dict read from it."""
    from .eval import _check_exponential_grades, evaluate, parse_metric, read_qrels

    where = qrels_name or ("" if isinstance(qrels, dict) else str(qrels))
    if not isinstance(qrels, dict):
        qrels = read_qrels(qrels)
    # before the search, which can take minutes, rather than after it
    _check_exponential_grades(qrels, [parse_metric(m) for m in metrics], gains, f"{where}: " if where else "")
    run = _search_all(index, queries, k, algorithm, target_recall=target_recall)
    means = evaluate(run, qrels, list(metrics), gains=gains, rel_threshold=rel_threshold)
    return means, run


def _eval_warnings(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], metrics: list[Any], k: int,
                   qrels_path: str) -> None:
    retrieved = {d for docs in run.values() for d in docs}
    judged = {d for docs in qrels.values() for d in docs}
    if retrieved and not retrieved & judged:
        ex_run = ", ".join(repr(d) for d in sorted(retrieved)[:3])
        ex_qrels = ", ".join(repr(d) for d in sorted(judged)[:3])
        n = len(retrieved)
        what = "the one document retrieved does not appear" if n == 1 else f"none of the {n} documents retrieved appear"
        _warn(
            f"{what} in {qrels_path}: do the index's ids match the qrels' document ids? "
            f"(index: {ex_run}{', ...' if n > 3 else ''}; qrels: {ex_qrels}{', ...' if len(judged) > 3 else ''})"
        )
    for m in metrics:
        if m.k is not None and m.k > k:
            _warn(f"{m} looks at the top {m.k} but -k {k} retrieves only {k} documents a query: pass -k {m.k} or more")


# commands -----------------------------------------------------------------------------------
def _check_new_index_dir(path: str, overwrite: bool) -> Any:
    """Refuse ``path`` unless it is missing, empty, or (with ``overwrite``) an index no one
    writes; for the last, returns its writer lock, taken: held while the documents are encoded
    (minutes) so that no writer starts meanwhile only to have its commits replaced, and handed
    to the save. None otherwise."""
    p = Path(path)
    if not p.exists():
        return None
    if not p.is_dir():
        raise UserError(f"{p}: exists and is not a directory")
    if not any(p.iterdir()):
        return None
    if (p / "CURRENT").is_file():
        if overwrite:
            from .lock import IndexLockedError, WriterLock

            lock = WriterLock(p)
            try:
                lock.acquire()
            except IndexLockedError:
                raise UserError(
                    f"{p}: another process is writing this index ({lock._holder()}): --overwrite replaces an "
                    "index no one is writing; wait for that process to finish (or stop it), then run again"
                ) from None
            return lock
        raise UserError(
            f"{p}: holds an index already: pass --overwrite to replace it, or use `sparsedex add {p} CORPUS` "
            "to add documents to it"
        )
    if _being_written(p):
        raise UserError(_WRITING.format(p=p))
    raise UserError(f"{p}: exists, is not empty and is not a sparsedex index: choose another directory"
                    + (" (--overwrite replaces only a sparsedex index)" if overwrite else ""))


# a save into the directory in progress (another `sparsedex index`), or one killed midway
_WRITING = ("{p}: holds the files of an index but not its CURRENT yet: another process is writing an index into "
            "it (wait for it to finish, then pass --overwrite to replace that index or use `sparsedex add`), "
            "or a save into it was killed (remove the directory)")


def _being_written(p: Path) -> bool:
    """Whether ``p`` looks like an index being saved (helper-112: its writer lock file and
    segment files are there before its ``CURRENT``). Only looked at, never locked: a probe
    taking the lock could make that save fail."""
    from .lock import LOCK_FILE

    try:
        return (p / LOCK_FILE).is_file() and any(x.name.startswith("seg-") for x in p.iterdir())
    except OSError:
        return False


def cmd_index(a: argparse.Namespace) -> int:
    from .index import SparseIndex
    from .lock import IndexLockedError

    held = _check_new_index_dir(a.index_dir, a.overwrite)
    try:
        recs = load_records(a.corpus, a.text_field, a.id_field, "corpus file",
                            ids="none" if a.no_ids else "optional")
        if not recs.texts:
            raise UserError(f"{recs.path}: no documents")
        if recs.ids is None and not a.no_ids:
            _warn(f"{recs.path} has no id field: documents are numbered 0 to {len(recs.texts) - 1} in file order")
        _warn_run_ids(recs.path, recs)
        t0 = time.perf_counter()
        index = SparseIndex(a.encoder, a.quantization, store_texts=not a.no_texts)
        _add_in_chunks(index, recs)
        try:
            # Without --overwrite, an index another process saved there meanwhile (two `sparsedex
            # index` runs side by side) is not replaced: both checked an empty directory at start.
            # With it, the later save replaces it, as it would one there from the start (helper-113).
            index.save(a.index_dir, _held=held, _replace=bool(a.overwrite))
        except IndexLockedError:
            if a.overwrite:
                # the library's wording ("close() the other index") speaks to Python code
                raise UserError(
                    f"{a.index_dir}: another process is writing an index into it: wait for it to finish, then run "
                    "again to replace that index"
                ) from None
            raise UserError(
                f"{a.index_dir}: another process is writing an index into it: wait for it to finish, then pass "
                "--overwrite to replace that index or use `sparsedex add` to add to it"
            ) from None
        except FileExistsError:
            if a.overwrite or not (Path(a.index_dir) / "CURRENT").exists():
                raise
            raise UserError(
                f"{a.index_dir}: holds an index already, saved there by another process while this one was "
                "indexing: pass --overwrite to replace it"
            ) from None
        dt = time.perf_counter() - t0
    finally:
        if held is not None:
            held.release()
    ident = index.encoder_identity or {}
    print(
        f"indexed {_count(len(index), 'document')} into {a.index_dir} "
        f"(encoder {ident.get('model') or ident.get('kind')}, {index.quantization} impacts) in {dt:.1f} s"
    )
    return 0


def _filter_arg(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        flt = json.loads(raw)
    except RecursionError:
        raise UserError("--filter is nested too deeply") from None
    except ValueError as e:
        raise UserError(f"--filter is not valid JSON ({e}): e.g. --filter '{{\"year\": {{\"$gte\": 1990}}}}'") from None
    from .filters import compile_filter

    return compile_filter(flt)


def cmd_add(a: argparse.Namespace) -> int:
    recs = load_records(a.corpus, a.text_field, a.id_field, "corpus file", ids="none" if a.new_ids else "optional",
                        no_ids_hint="--new-ids to add the documents as new ones")
    if not recs.texts:
        raise UserError(f"{recs.path}: no documents")
    if recs.ids is None and not a.new_ids:
        raise UserError(
            f"{recs.path}: no id field: `add` replaces documents by id, so without ids it would add every "
            "document again; pass --id-field NAME, or --new-ids to add them as new documents"
        )
    _warn_run_ids(recs.path, recs)
    index = _open_index(a.index_dir, a.encoder)
    have = index._id_kind()  # the index's id type (None: no document yet)
    if a.new_ids and have is str:
        raise UserError(
            f"{a.index_dir} has string ids and --new-ids numbers the new documents 0, 1, ...: give each document "
            "an id field (--id-field NAME) and run `sparsedex add` without --new-ids"
        )
    if recs.ids and have is not None and not isinstance(recs.ids[0], have):
        want, got = ("strings", "an integer") if have is str else ("integers", "a string")
        raise UserError(
            f"{recs.path}:{recs.lines[0]}: id {shown(recs.ids[0])} is {got} but the ids of {a.index_dir} are {want}: "
            "ids must be all strings or all integers"
        )
    t0 = time.perf_counter()
    before = len(index)
    _add_in_chunks(index, recs, upsert=not a.new_ids, new_ids=a.new_ids)
    gen = index.commit()
    index.wait_for_merges()  # lets a merge the commit started finish
    after, nseg = len(index), len(index.segments())
    index.close()
    verb = "added" if a.new_ids else "added or replaced"
    print(
        f"{verb} {_count(len(recs.texts), 'document')} in {a.index_dir} ({before} -> {_count(after, 'document')}, "
        f"commit {gen}, {_count(nseg, 'segment')}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    ids = []
    for x in a.doc_ids:
        try:
            ids.append(_doc_id(index, x))
        except UserError:
            if not a.missing_ok:
                raise
            # not a number in an index of integer ids: no such document, as --missing-ok
            # takes one of the right type (helper-128)
    n = index.delete(ids, missing_ok=a.missing_ok)
    gen = index.commit() if n else index.generation  # nothing deleted: no new commit (helper-142)
    left = len(index)
    index.close()
    print(f"deleted {n} document{'' if n == 1 else 's'} from {a.index_dir} ({left} left, commit {gen})")
    return 0


def cmd_merge(a: argparse.Namespace) -> int:
    index = _open_index(a.index_dir)
    before, gen0 = len(index.segments()), index.generation
    try:
        gen = index.merge(a.max_segments)
    except KeyboardInterrupt:
        # Merges installed before a Ctrl-C stay committed, and the reordering after them runs
        # as a commit of its own (SparseIndex.merge): "interrupted" alone read as "nothing
        # changed" (helper-128).
        if index.generation != gen0:
            print(f"{PROG}: {a.index_dir} was merged in part before the interrupt: {before} -> "
                  f"{len(index.segments())} segments (commit {index.generation}); the rest was not done",
                  file=sys.stderr)
        raise
    after = len(index.segments())
    index.close()
    print(f"merged {a.index_dir}: {before} -> {_count(after, 'segment')} (commit {gen})")
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    flt = _filter_arg(a.filter)
    _check_query_arg(a.query)
    index = _open_index(a.index_dir, a.encoder)
    if index.encoder_identity is None:
        raise UserError(
            f"{a.index_dir} holds vectors you bring (no encoder): the command line searches by text; "
            "search it from Python with a sparse vector (SparseIndex.open(...).search(vector))"
        )
    kw = {} if a.target_recall is None else {"target_recall": a.target_recall}
    hits = index.search(a.query, k=a.k, algorithm=a.algorithm, filter=flt, **kw)
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
        print("no matching documents" + _blank_note(index, a.query))
        return 0
    # ids are printed whole, but pad the column to 40 at most (one id of a million characters
    # padded every row to a million, breaker34b); measured in terminal columns, as titles are
    # (helper-145: a CJK id took twice its length and pushed its row's document right)
    ids = [_printable(str(h.id)) for h in hits]
    cols = [sum(map(_columns, x)) for x in ids]
    idw = min(40, max(len("id"), *cols))
    print(f"{'rank':>4}  {'score':>9}  {'id':<{idw}}  document")
    for r, (h, x, c) in enumerate(zip(hits, ids, cols), 1):
        print(f"{r:>4}  {h.score:9.4f}  {x}{' ' * (idw - c)}  {_label(h, index)}")
        if a.explain:
            print(_indent(index.explain(a.query, h.id).table(limit=10), 6))
    return 0


def _check_query_arg(query: str) -> None:
    """A query from the command line that is not UTF-8: Python hands its bytes over as lone
    surrogates U+DC80..U+DCFF (PEP 383); name the byte and point at the shell's encoding."""
    m = re.search("[\udc80-\udcff]", query)
    if m is not None:
        raise UserError(
            f"the query is not UTF-8 text (byte 0x{ord(m.group()) - 0xDC00:02x} at character {m.start() + 1}): "
            "type it in a UTF-8 terminal (e.g. LANG=C.UTF-8), or convert it first (iconv -t UTF-8)"
        )


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
    _check_query_arg(a.query)
    index = _open_index(a.index_dir, a.encoder)
    doc_id = _doc_id(index, a.doc_id)
    if doc_id not in index:
        # the id as read (an int is not quoted), and why no document can have it, as delete says
        raise UserError(f"no document with id {shown(doc_id)} in {a.index_dir}"
                        f"{_validate.other_kind(doc_id, index._id_kind())}")
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


_GAINS_NOTE = {
    "linear": "nDCG gains: linear (rel), as trec_eval and ir_measures; --gains exponential for 2^rel-1",
    "exponential": "nDCG gains: exponential (2^rel-1); trec_eval and ir_measures use linear gains (the default)",
}


def cmd_eval(a: argparse.Namespace) -> int:
    from ._textfile import file_name, is_stdin
    from .eval import parse_metric, read_qrels, write_run

    metrics = [m.strip() for m in a.metrics.split(",") if m.strip()]  # checked by _metrics_arg
    parsed = [parse_metric(m) for m in metrics]
    qp = Path(a.qrels)
    if is_stdin(a.qrels) and is_stdin(a.queries):
        raise UserError("QUERIES and QRELS are both - (standard input): read one of them from a file")
    if not is_stdin(a.qrels):
        if not qp.exists():
            raise UserError(f"{file_name(a.qrels)}: no such qrels file")
        if qp.is_dir():
            raise UserError(f"{file_name(a.qrels)}: a directory, not a qrels file")
    if a.run_out == "-":
        raise UserError("--run-out -: the metrics are printed on stdout; name a file for the run "
                        "(`sparsedex run TOPICS INDEX -o -` prints a run)")
    if a.run_out:
        _check_run_file(Path(a.run_out), a.overwrite, "--run-out")
    qrels = read_qrels(a.qrels)
    queries = load_queries(a.queries, a.text_field, a.id_field)
    if not queries:
        raise UserError(f"{file_name(a.queries)}: no queries")
    index = _open_index(a.index_dir, a.encoder)
    t0 = time.perf_counter()
    means, run = evaluate_index(
        index, queries, qrels, metrics, a.k,
        gains=a.gains, rel_threshold=a.rel_threshold, algorithm=a.algorithm, target_recall=a.target_recall,
        qrels_name=file_name(a.qrels),
    )
    dt = time.perf_counter() - t0
    _eval_warnings(run, qrels, parsed, a.k, file_name(a.qrels))
    if a.run_out:
        _write_run_file(run, Path(a.run_out), a.run_tag)
    judged_run = sum(1 for q in qrels if q in run)
    uses_ndcg = any(m.kind == "ndcg" for m in parsed)
    if a.json:
        out: dict[str, Any] = {"metrics": means, "judged_queries": len(qrels), "queries": len(queries), "k": a.k}
        if uses_ndcg:
            out["gains"] = a.gains
        print(json.dumps(out, indent=1))
        return 0
    w = max(len("metric"), *(len(m) for m in metrics))
    print(f"{'metric':<{w}}  value")
    for m in metrics:
        v = means[m]
        print(f"{m:<{w}}  {'nan' if math.isnan(v) else f'{v:.4f}'}")
    print(f"{_count(len(qrels), 'judged query', 'judged queries')} ({judged_run} of them in the "
          f"{_count(len(queries), 'query', 'queries')} run), "
          f"top {a.k}, {dt:.1f} s" + (f"; run written to {a.run_out}" if a.run_out else ""))
    if uses_ndcg:
        print(_GAINS_NOTE[a.gains])
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from ._textfile import file_name
    from .eval import is_run_word, write_run

    flt = _filter_arg(a.filter)
    queries = load_queries(a.topics, a.text_field, a.id_field)
    if not queries:
        raise UserError(f"{file_name(a.topics)}: no queries")
    out = None if a.output == "-" else Path(a.output)  # "-": the run on stdout
    if out is not None:
        _check_run_file(out, a.overwrite, "-o")
    index = _open_index(a.index_dir, a.encoder)
    t0 = time.perf_counter()
    run = _search_all(index, queries, a.k, a.algorithm, flt, a.target_recall)
    bad = next(((q, d) for q, docs in run.items() for d in docs if not is_run_word(d)), None)
    if bad is not None:
        raise UserError(f"query {shown(bad[0])}: document id {shown(bad[1])} is empty or holds whitespace: a TREC "
                        f"run cannot hold it (search the index with `sparsedex search`, or re-index with one-word ids)")
    n = sum(len(d) for d in run.values())
    took = time.perf_counter() - t0
    if out is None:
        write_run(run, sys.stdout, tag=a.run_tag)
        sys.stdout.flush()
        print(f"wrote {_count(n, 'result')} for {_count(len(queries), 'query', 'queries')} (top {a.k}) to stdout "
              f"in {took:.1f} s", file=sys.stderr)
        return 0
    _write_run_file(run, out, a.run_tag)
    print(f"wrote {_count(n, 'result')} for {_count(len(queries), 'query', 'queries')} (top {a.k}) to {out} "
          f"in {took:.1f} s")
    return 0


def _check_run_file(out: Path, overwrite: bool, flag: str) -> None:
    """Refuse a run file path before any search: a directory, a missing folder, or an
    existing file without --overwrite (`eval --run-out` replaced any file silently, even the
    qrels it was reading or an index's CURRENT: helper-125)."""
    if out.is_dir():
        raise UserError(f"{out}: is a directory, expected a run file name ({flag})")
    if out.exists() and not overwrite:
        raise UserError(f"{out}: exists: pass --overwrite to replace it ({flag})")
    if not out.parent.is_dir():
        raise UserError(f"{out}: its folder {out.parent} does not exist ({flag})")


def _write_run_file(run: Any, out: Path, tag: str) -> None:
    """Write a TREC run; a failed write is an error naming the file."""
    from .eval import write_run

    try:
        write_run(run, out, tag=tag)
    except OSError as e:
        raise UserError(f"{out}: cannot write the run: {e.strerror or e}") from None


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
        norm = an.get("normalization")
        if norm:
            text = f"Unicode {norm}" + (" + case folding" if an.get("lowercase") else "")
        else:
            text = "lowercase" if an.get("lowercase") else "case kept"
        pattern = an.get("token_pattern")
        analysis = ", ".join(
            [text,
             f"tokens {pattern}" if pattern else "words with their combining marks",
             f"stemmer {an.get('language')}" if an.get("stemming") else "no stemming",
             "no stopwords" if not stop else f"stopwords {stop if isinstance(stop, str) else len(stop)}"]
        )
        rows.append(("encoder", f"BM25 k1={enc.get('k1')} b={enc.get('b')}, {enc.get('vocab_size')} terms ({analysis})"))
    elif enc.get("kind") == "fastembed-bm25":
        rows.append(("encoder", f"Qdrant/bm25 (language {enc.get('language')}, k {enc.get('k')}, b {enc.get('b')})"))
    else:
        rows.append(("encoder", f"{enc.get('kind')} {enc.get('model')} ({enc.get('source')}, max_length {enc.get('max_length')})"))
    rows.append(("quantization", info["quantization"]))
    segs = info["segments"]
    rows.append(("commit", info["generation"]))
    dead = sum(s['documents'] - s['live'] for s in segs)
    rows.append(("segments", f"{len(segs)} ({_count(dead, 'deleted document')} not yet merged away)"))
    for k, v in (info["engine"] or {}).items():
        if k not in ("documents", "quantization"):
            if isinstance(v, float) or (isinstance(v, (tuple, list)) and v and all(isinstance(x, float) for x in v)):
                import numpy as np

                # the engine's f32 numbers by their shortest text (1.2, not 1.2000000476837158)
                v = ", ".join(str(np.float32(x)) for x in (v if isinstance(v, (tuple, list)) else [v]))
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
    if not hits:
        print(f"no matching documents{_blank_note(index, a.query)}")
        return 0
    print(f"{'rank':>4}  {'score':>7}  film")
    for r, h in enumerate(hits, 1):
        print(f"{r:>4}  {h.score:7.3f}  {(h.payload or {}).get('title', h.id)}")
    top = hits[0]
    e = index.explain(a.query, top.id, top_terms=15)
    doc = index.get(top.id)
    print(f"\nWhy {(top.payload or {}).get('title', top.id)!r} is first:")
    print(f"  its description:  {doc.text}")
    shared = (_words(a.query) & _words(doc.text or "")) - _STOP
    print("  words in common:  " + (", ".join(sorted(shared)) if shared else "none; the match comes from SPLADE expanding both texts"))
    print(f"  query expanded to:       {_terms_line(e.query_terms, 15)}")
    print(f"  description expanded to: {_terms_line(e.document_terms, 15)}")
    print("\nMatched terms (query weight x document weight = contribution; they sum to the score):")
    print(_indent(e.table(limit=12), 2))
    return 0


_STOP = frozenset("a an and about are as at be by for from in into is it of on or the this that to with".split())


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower())}


# parser -------------------------------------------------------------------------------------
def _bounded_int(lo: int, hi: int) -> Any:
    def parse(raw: str) -> int:
        try:
            v = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {v}")
        return v

    parse.__name__ = "integer"
    return parse


def _seconds(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {raw!r}") from None
    if not (v >= 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {raw}")
    return v


_seconds.__name__ = "seconds"


def _algorithm_type(raw: str) -> str:
    from .index import _check_algorithm

    try:
        _check_algorithm(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return raw


_algorithm_type.__name__ = "algorithm"


def _target_recall_type(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {raw!r}") from None
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"target_recall must be a number in (0, 1], got {raw}")
    return v


_target_recall_type.__name__ = "target recall"


def _run_tag_type(raw: str) -> str:
    if not raw or re.search(r"\s", raw):
        raise argparse.ArgumentTypeError(f"must be one non-empty word (no spaces: the run file's last column), got {raw!r}")
    return raw


_run_tag_type.__name__ = "run tag"


def _model_type(raw: str) -> str:
    if not raw.strip():
        raise argparse.ArgumentTypeError("empty: name a model (splade-tiny, bm25, ...) or a model directory")
    return raw


_model_type.__name__ = "model"


def _field_type(raw: str) -> str:
    if not raw.replace(",", "").strip():  # "", " " or "," (helper-139)
        raise argparse.ArgumentTypeError(f"{raw!r} names no field: name a JSON field, e.g. id or text")
    return raw


_field_type.__name__ = "field name"


def _k_type() -> Any:
    from ._validate import MAX_K

    return _bounded_int(1, MAX_K)


def _sub(sub: Any, name: str, help: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(  # type: ignore[no-any-return]
        name, help=help, description=textwrap.fill(description, 88), epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


_TEXT_HELP = ("JSON field(s) holding the text; several joined with a space, e.g. title,text "
              "(default: text, preceded by title when present; else contents)")
_ID_HELP = ("JSON field holding the id (default: the first of id, _id, docid, doc_id, pid, docno; "
            "without one, documents are numbered 0, 1, ...)")
_QTEXT_HELP = "JSON field(s) holding the query text (default: text, else query, else title)"
_QID_HELP = "JSON field holding the query id (default: the first of id, _id, qid, query_id)"
_OPEN_ENCODER_HELP = ("encode texts with this model (a name or directory) instead of the one recorded with the "
                      "index, e.g. when its directory moved; it must be the same model")


class _Terminated(BaseException):
    """SIGTERM while ``sparsedex serve`` runs, raised in the main thread as Ctrl-C raises
    KeyboardInterrupt (a BaseException: the server's request loop lets it through)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise _Terminated


def cmd_serve(a: argparse.Namespace) -> int:
    from ._http import check_route_prefix

    try:
        prefix = check_route_prefix(a.route_prefix)
    except ValueError as e:
        a._subparser.error(f"argument --route-prefix: {e}")  # a usage error: exit 2, as other flags
    if a.ray:
        try:
            from .ray import MANIFEST, ShardedIndex
        except ImportError as e:
            raise UserError(f"{e}") from None
        import ray

        if not (Path(a.index_dir) / MANIFEST).is_file():
            raise UserError(f"{a.index_dir}: no {MANIFEST}; --ray serves a sharded index (sparsedex.ray.build_shards)")
        ray.init(address=a.address)
        # SIGTERM as for the plain server: ray.init installs Ray's C++ handler, which printed a
        # stack dump and ended the process by SIGABRT (exit -6); ours replaces it from here on
        main_thread = threading.current_thread() is threading.main_thread()
        terminated: list[int] = []

        def on_sigterm(signum: int, frame: Any) -> None:
            terminated.append(signum)
            _on_sigterm(signum, frame)

        previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
        try:
            # checks every shard (and --encoder against the index), then hands over; --encoder
            # reaches the deployment (it was ignored: an index built from vectors could not be
            # searched with texts, helper-147)
            with ShardedIndex(a.index_dir, replicas=a.replicas, encoder=a.encoder) as index:
                encoder = index._given_encoder()
            from ._serve import run

            print(f"serving {a.index_dir} with Ray Serve on http://{a.host}:{a.port}{prefix}/", flush=True)
            run(a.index_dir, replicas=a.replicas, host=a.host, port=a.port, blocking=True, refresh_s=a.refresh_s,
                route_prefix=prefix or "/", max_k=a.max_k, max_batch=a.max_batch, encoder=encoder)
        except BaseException as stop:
            # SIGTERM while starting may reach us inside Ray's Cython code, which hands it on as a
            # SystemError ("... returned a result with an exception set", helper-153): whatever
            # it became, after a SIGTERM this is the stop
            if not terminated and not isinstance(stop, KeyboardInterrupt):
                raise
            # the application ends with the command, also on a cluster given by --address (where
            # Serve outlives this process); a local cluster ends with the process
            from ray import serve

            with contextlib.suppress(Exception):
                serve.delete("sparsedex")
            if not terminated:
                raise
            print(f"{PROG}: terminated (SIGTERM): stopped serving", file=sys.stderr, flush=True)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        return 0
    if a.replicas != 1 or a.address is not None:
        raise UserError("--replicas and --address need --ray")
    from ._http import serve_index

    if (Path(a.index_dir) / "shards.json").is_file():  # sparsedex.ray.MANIFEST (ray itself may be missing)
        raise UserError(f"{a.index_dir} is a sharded index (it has shards.json): serve it with --ray "
                        "(sparsedex serve DIR --ray), which needs ray[serve]")
    index = _open_index(a.index_dir, a.encoder)
    # the model loads now, not at the first request: one that moved fails here with the CLI's
    # message, not every search with a 500 (helper-139)
    index.encoder  # noqa: B018
    # SIGTERM (a supervisor's stop: systemd, docker, Kubernetes) stops the server as Ctrl-C
    # does, requests being answered finished (serve_index), and exits 0 with a line that says
    # so; it killed the process mid-request, exit -15 (helper-147)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        serve_index(index, host=a.host, port=a.port, refresh_s=a.refresh_s, route_prefix=prefix or "/",
                    max_k=a.max_k, max_batch=a.max_batch)
    except _Terminated:
        print(f"{PROG}: terminated (SIGTERM): stopped serving", file=sys.stderr, flush=True)
        return 0
    except OSError as e:
        if getattr(e, "errno", None) in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None), socket.EAI_AGAIN,
                                         socket.EAI_FAMILY, errno.EADDRNOTAVAIL):
            raise UserError(f"--host {a.host}: {e.strerror or e}") from None
        if getattr(e, "errno", None) in (errno.EADDRINUSE, errno.EACCES):
            raise UserError(f"--port {a.port}: {e.strerror or e} on {a.host} (choose another --port)") from None
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        index.close()
    return 0



def _index_dir_arg(value: str) -> str:
    """INDEX_DIR as given; an empty one is a usage error (it was searched as ".", the current
    directory, and reported as such: helper-92)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("INDEX_DIR is empty: name the index directory")
    return value


def _metrics_arg(value: str) -> str:
    """--metrics as given, each name checked first: an unknown one is a usage error (exit 2),
    as every other malformed argument (it exited 1 after loading the index: helper-92)."""
    from .eval import parse_metric

    if not value.strip():
        raise argparse.ArgumentTypeError("empty: name at least one metric, e.g. ndcg@10")
    names = [m.strip() for m in value.split(",")]
    if "" in names:  # helper-142: "ndcg@10,,map" skipped the empty item without a word
        raise argparse.ArgumentTypeError(f"{value!r} has an empty item: metrics are separated by single commas")
    seen: dict[Any, str] = {}
    for m in names:
        try:
            parsed = parse_metric(m)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if parsed in seen:  # the same metric twice printed two rows
            raise argparse.ArgumentTypeError(f"{m!r} names the same metric as {seen[parsed]!r}")
        seen[parsed] = m
    return value

def build_parser() -> argparse.ArgumentParser:
    try:
        from importlib.metadata import version

        __version__ = version("sparsedex")
    except Exception:  # pragma: no cover - not installed as a distribution
        __version__ = "unknown"

    from ._http import DEFAULT_MAX_BATCH, DEFAULT_MAX_K, DRAIN_S

    k_type = _k_type()
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Learned sparse retrieval: index, search, explain and evaluate.",
        epilog="Run 'sparsedex COMMAND --help' for a command's options and examples.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = _sub(sub, "demo", "index 20 film descriptions with the bundled SPLADE model and explain a search",
             "Index the 20 film descriptions shipped with sparsedex using the bundled splade-tiny model "
             "(offline), search them and explain the top hit term by term.",
             ["sparsedex demo", 'sparsedex demo --query "a film about a heist" -k 10'])
    d.add_argument("--query", default=DEMO_QUERY, help=f"the query (default: {DEMO_QUERY!r})")
    d.add_argument("-k", type=k_type, default=5, help="hits to show (default 5)")
    d.set_defaults(func=cmd_demo)

    i = _sub(sub, "index", "index a JSONL corpus into a new directory",
             "Encode every document of a JSONL corpus (one JSON object a line) and write a new index "
             "directory. The id field becomes the document id (BEIR's _id, docid and pid are recognised), "
             "the text field(s) are encoded, every other field is kept as the payload, returned with hits "
             "and usable in --filter. An existing index is replaced only with --overwrite.",
             ["sparsedex index corpus.jsonl my-index",
              "sparsedex index beir/scifact/corpus.jsonl scifact-bm25 --encoder bm25   # _id, title + text",
              "sparsedex index passages.jsonl ix --id-field pid --text-field title,text --quantization float"])
    i.add_argument("corpus", metavar="CORPUS.jsonl", help="the JSONL corpus (- for standard input)")
    i.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    i.add_argument("--encoder", default="splade-tiny", type=_model_type,
                   help="splade-tiny (default, bundled), bm25, prithivida/Splade_PP_en_v1, or a model directory")
    i.add_argument("--quantization", choices=["u8", "float"], default="u8",
                   help="impact precision (default u8)")
    i.add_argument("--text-field", default=None, type=_field_type, help=_TEXT_HELP)
    # one or the other: with both, the numbering won and the id became a payload field (helper-133)
    ids = i.add_mutually_exclusive_group()
    ids.add_argument("--id-field", default=None, type=_field_type, help=_ID_HELP)
    ids.add_argument("--no-ids", action="store_true", help="ignore any id field: number the documents 0, 1, ...")
    i.add_argument("--no-texts", action="store_true", help="do not keep the texts in the index")
    i.add_argument("--overwrite", action="store_true", help="replace an index already in INDEX_DIR")
    i.set_defaults(func=cmd_index)

    s = _sub(sub, "search", "search an index",
             "Search an index with a text query and print the best hits, optionally explained term by term "
             "and restricted by a payload filter.",
             ['sparsedex search my-index "a movie about music"',
              'sparsedex search my-index "heist" -k 5 --explain',
              'sparsedex search my-index "band" --filter \'{"year": {"$gte": 1990}}\' --json'])
    s.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    s.add_argument("query")
    s.add_argument("-k", type=k_type, default=10, help="hits (default 10)")
    s.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    s.add_argument("--explain", action="store_true", help="explain each hit term by term")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--algorithm", default="auto", type=_algorithm_type, help="traversal algorithm (default auto)")
    s.set_defaults(_subparser=s)  # its usage line for errors main() finds
    s.add_argument("--target-recall", type=_target_recall_type, metavar="R",
                   help="with --algorithm approximate: the recall@10 target in (0, 1] (default 0.97)")
    s.add_argument("--filter", metavar="JSON", help='payload filter, e.g. \'{"year": {"$gte": 1990}, "genre": "drama"}\'')
    s.set_defaults(func=cmd_search)

    ad = _sub(sub, "add", "add or replace (by id) the documents of a JSONL corpus in an index, and commit",
              "Add the documents of a JSONL corpus to an existing index, replacing any document with the same "
              "id, and commit. Ids are required (a corpus without them would be added again on every run); "
              "--new-ids adds the documents as new ones, numbered after the index's largest id.",
              ["sparsedex add my-index more.jsonl", "sparsedex add my-index more.jsonl --id-field docid",
               "sparsedex add my-index notes.jsonl --new-ids"])
    ad.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    ad.add_argument("corpus", metavar="CORPUS.jsonl", help="the JSONL documents to add (- for standard input)")
    ad.add_argument("--text-field", default=None, type=_field_type, help=_TEXT_HELP)
    ids = ad.add_mutually_exclusive_group()
    ids.add_argument("--id-field", default=None, type=_field_type, help="JSON field holding the id (default: id, _id, docid, doc_id, pid or docno)")
    ids.add_argument("--new-ids", action="store_true", help="add every document as a new one, with new ids")
    ad.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    ad.set_defaults(func=cmd_add)

    de = _sub(sub, "delete", "delete documents by id from an index, and commit",
              "Delete documents by id and commit. An id that is not in the index is an error unless "
              "--missing-ok.",
              ["sparsedex delete my-index doc-17 doc-42", "sparsedex delete my-index 3 --missing-ok"])
    de.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    de.add_argument("doc_ids", metavar="DOC_ID", nargs="+")
    de.add_argument("--missing-ok", action="store_true", help="ignore ids that are not in the index")
    de.set_defaults(func=cmd_delete)

    mg = _sub(sub, "merge", "merge an index's segments (drops deleted documents)",
              "Merge an index's segments down to --max-segments, dropping deleted documents, and commit.",
              ["sparsedex merge my-index", "sparsedex merge my-index --max-segments 4"])
    mg.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    mg.add_argument("--max-segments", type=_bounded_int(1, 2**31 - 1), default=1, help="segments to keep (default 1)")
    mg.set_defaults(func=cmd_merge)

    x = _sub(sub, "explain", "explain one document's score for a query",
             "Show why one document scored what it did for a query: both texts expanded into weighted terms, "
             "and the matched terms whose contributions sum to the score.",
             ['sparsedex explain my-index "a movie about music" spinal', 'sparsedex explain my-index "heist" 3 --all'])
    x.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    x.add_argument("query")
    x.add_argument("doc_id", metavar="DOC_ID")
    x.add_argument("--all", action="store_true", help="list every matched term")
    x.add_argument("--json", action="store_true", help="print JSON")
    x.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    x.set_defaults(func=cmd_explain)

    e = _sub(sub, "eval", "run queries and score them against qrels",
             "Search every query of QUERIES (JSONL, or TSV 'qid<TAB>text') and score the run against QRELS "
             "('qid docid rel' or TREC's 'qid iter docid rel') with trec_eval's definitions (equal to "
             "ir_measures). nDCG uses linear gains (rel), as trec_eval and ir_measures; --gains exponential "
             "uses 2^rel-1. Warns when no retrieved id is in the qrels and when a metric looks deeper than -k.",
             ["sparsedex eval my-index queries.jsonl qrels.tsv",
              "sparsedex eval my-index queries.jsonl qrels.tsv --metrics ndcg@10,mrr@10,r@1000 -k 1000 --run-out run.trec"])
    e.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    e.add_argument("queries", metavar="QUERIES.jsonl", help="the queries, JSONL or TSV (- for standard input)")
    e.add_argument("qrels", metavar="QRELS.tsv", help="the relevance judgements (- for standard input)")
    e.add_argument("--metrics", default="ndcg@10,map,r@100", type=_metrics_arg,
                   help="comma-separated (default ndcg@10,map,r@100)")
    e.add_argument("-k", type=k_type, default=1000, help="documents retrieved per query (default 1000)")
    e.add_argument("--run-out", metavar="RUN.trec", help="write the run in TREC format")
    e.add_argument("--overwrite", action="store_true", help="replace RUN.trec if it exists")
    e.add_argument("--run-tag", default="sparsedex", type=_run_tag_type, help="tag column of the run file")
    e.add_argument("--gains", choices=["linear", "exponential"], default="linear",
                   help="nDCG gains: rel (default, as trec_eval and ir_measures) or 2^rel-1")
    e.add_argument("--rel-threshold", type=int, default=1, help="lowest relevant grade (default 1)")
    e.add_argument("--text-field", default=None, type=_field_type, help=_QTEXT_HELP)
    e.add_argument("--id-field", default=None, type=_field_type, help=_QID_HELP)
    e.add_argument("--algorithm", default="auto", type=_algorithm_type)
    e.set_defaults(_subparser=e)  # its usage line for errors main() finds
    e.add_argument("--target-recall", type=_target_recall_type, metavar="R",
                   help="with --algorithm approximate: the recall@10 target in (0, 1] (default 0.97)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    e.set_defaults(func=cmd_eval)

    r = _sub(sub, "run", "search every query of a topics file and write a TREC run (no qrels needed)",
             "Search every query of TOPICS (JSONL with an id and a text field, or TSV 'qid<TAB>text') and "
             "write the top -k documents of each as a TREC run file ('qid Q0 docid rank score tag'), ready for "
             "trec_eval or ir_measures. No qrels are needed.",
             ["sparsedex run queries.jsonl my-index -o run.trec",
              "sparsedex run queries.tsv my-index -o run.trec -k 100 --run-tag splade-tiny"])
    r.add_argument("topics", metavar="TOPICS", help="the queries, JSONL or TSV (- for standard input)")
    r.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    r.add_argument("-o", "--output", required=True, metavar="RUN.trec", help="the run file to write (- for stdout)")
    r.add_argument("-k", type=k_type, default=1000, help="documents per query (default 1000)")
    r.add_argument("--run-tag", default="sparsedex", type=_run_tag_type, help="tag column of the run file (default sparsedex)")
    r.add_argument("--text-field", default=None, type=_field_type, help=_QTEXT_HELP)
    r.add_argument("--id-field", default=None, type=_field_type, help=_QID_HELP)
    r.add_argument("--algorithm", default="auto", type=_algorithm_type)
    r.set_defaults(_subparser=r)  # its usage line for errors main() finds
    r.add_argument("--target-recall", type=_target_recall_type, metavar="R",
                   help="with --algorithm approximate: the recall@10 target in (0, 1] (default 0.97)")
    r.add_argument("--filter", metavar="JSON", help="payload filter applied to every query")
    r.add_argument("--overwrite", action="store_true", help="replace RUN.trec if it exists")
    r.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    r.set_defaults(func=cmd_run)

    n = _sub(sub, "info", "describe an index",
             "Print an index's size, encoder (model, or BM25 parameters and text analysis), quantization, "
             "commit and segments.",
             ["sparsedex info my-index", "sparsedex info my-index --json"])
    n.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    n.add_argument("--json", action="store_true", help="print JSON")
    n.set_defaults(func=cmd_info)

    sv = _sub(sub, "serve", "search an index over HTTP (JSON)",
              "Serve search over HTTP: POST /search {\"query\": ..., \"k\": 10, \"filter\": {...}} answers "
              "{\"hits\": [{\"id\", \"score\", \"payload\"}]}; also /search_batch, /get, /explain and GET /health. "
              "Without --ray, one index in this process; with --ray, a sharded index (sparsedex.ray) through Ray "
              "Serve (needs pip install 'sparsedex[ray]'). Without --ray, Ctrl-C or SIGTERM stops the server: it "
              f"stops accepting connections, lets the requests being answered finish (up to {DRAIN_S:g} s), closes the "
              "index and exits (SIGTERM: exit 0, \"sparsedex: terminated (SIGTERM): stopped serving\"; "
              "Ctrl-C: 130). With --ray, they end the Ray Serve application (also on a cluster given by "
              "--address) and exit the same way.",
              ["sparsedex serve my-index --port 8000",
               "sparsedex serve my-sharded-index --ray --replicas 2",
               "curl -s localhost:8000/search -d '{\"query\": \"a movie about music\", \"k\": 3}'"])
    sv.add_argument("index_dir", metavar="INDEX_DIR", type=_index_dir_arg)
    sv.add_argument("--ray", action="store_true", help="serve a sharded index with Ray Serve")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_bounded_int(1, 65535), default=8000, help="port (default 8000)")
    sv.add_argument("--replicas", type=_bounded_int(1, 64), default=1, help="--ray: actors per shard (default 1)")
    sv.add_argument("--address", default=None, help="--ray: the Ray cluster to join (default: start a local one)")
    sv.add_argument("--refresh-s", type=_seconds, default=1.0,
                    help="follow the index directory's commits (sparsedex add / delete, other writers): check "
                         "for a newer commit at most every this many seconds, before a request (default 1; "
                         "0: before every request)")
    sv.add_argument("--route-prefix", default="/", metavar="PATH",
                    help="serve the endpoints under this path (e.g. /api/v1: POST /api/v1/search); "
                         "default /")
    sv.add_argument("--max-k", type=k_type, default=DEFAULT_MAX_K, metavar="N",
                    help=f"the most hits per query a request may ask for (\"k\" or \"limit\"); more is a 400 "
                         f"(default {DEFAULT_MAX_K})")
    sv.add_argument("--max-batch", type=k_type, default=DEFAULT_MAX_BATCH, metavar="N",
                    help="the most queries one /search_batch request may hold; more is a 413 "
                         f"(default {DEFAULT_MAX_BATCH})")
    sv.add_argument("--encoder", default=None, metavar="MODEL", type=_model_type, help=_OPEN_ENCODER_HELP)
    sv.set_defaults(func=cmd_serve, _subparser=sv)  # its usage line for errors
    return p


def _message(e: BaseException) -> str:
    cli = getattr(e, "cli_message", None)  # ModelNotAvailableError: advice for the command line
    if isinstance(cli, str):
        return cli
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, OSError) and e.errno is not None and e.strerror:
        return " ".join(e.strerror.split())  # the engine's message, without "[Errno N]"
    msg = str(e) or type(e).__name__
    return " ".join(msg.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if getattr(a, "target_recall", None) is not None and getattr(a, "algorithm", None) != "approximate":
        # the subcommand's usage line, as argparse gives for its other usage errors (helper-111)
        getattr(a, "_subparser", parser).error("--target-recall applies only with --algorithm approximate")
    from ._core import SparsedexError

    try:
        # the library's warnings (a run and qrels without a common query, ...) as the CLI's own
        # one-line warnings, not Python's "file:line: UserWarning" with the source line after
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(a.func(a) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (UserError, SparsedexError, OSError, ValueError, TypeError, KeyError) as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 1
    except RecursionError:
        print(f"{PROG}: error: input nested too deeply", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        return 1
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - a bug; still one line, never a traceback
        print(f"{PROG}: error: internal error ({type(e).__name__}: {_message(e)}); please report it", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
