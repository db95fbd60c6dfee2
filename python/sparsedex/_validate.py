"""Validation at the door: what an index accepts, checked before anything changes.

Every check here runs in ``add`` / ``upsert`` / ``delete`` / ``search`` *before* the index is
touched, so a refused call changes nothing, and nothing that could make a later ``commit()``
fail is ever staged. Each error names the document (``document 3``) or the argument, and what
is wrong with it. The rules:

- **Texts** are ``str`` holding valid Unicode: a lone surrogate (``"\\ud800"``, which Python
  strings can hold but UTF-8 cannot) is refused, naming the text and the character.
- **Ids** are ``int`` within the signed 64-bit range ``-2**63 .. 2**63 - 1`` (numpy integers
  are taken as the int equal to them) or ``str`` (valid Unicode). ``bool``, ``float`` and
  other types are refused, in lookups (``get``, ``delete``, ``explain``) too: ``True`` is not
  the id ``1`` and ``1.0`` is not the id ``1``.
- **Payloads**: see :func:`sparsedex.filters.normalize_payload` (stored exactly, or refused).
- **Weights** are at most :data:`~sparsedex.vectors.MAX_WEIGHT` (``1e14``) besides being
  finite and ``>= 0``, so no score can overflow float32 (see :mod:`sparsedex.vectors`).
- **Sizes**: ``k`` is an integer in ``1 .. MAX_K`` (``2**63 - 1``); a ``k`` above the number
  of documents returns every matching one, and the engine never allocates more than the
  documents it has, so a huge ``k`` costs nothing extra; ``threads`` in ``1 .. max_threads()`` (four times the cores
  this process may run on); ``vocab_size`` in ``1 .. MAX_VOCAB_SIZE`` (``2**32 - 1``), and a
  document's term ids below ``vocab_size`` or, without one, any 32-bit unsigned value (each
  segment maps the ids it holds through a term dictionary, so any id costs the same, see
  :mod:`sparsedex.vectors`).
  An integer outside its range is a :class:`ValueError` stating the range, a value that is
  not an integer a :class:`TypeError`.

The index modules call these functions at their doors; the rules live here once.
"""

from __future__ import annotations

import decimal
import json
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ._shown import shown
from .filters import MAX_DEPTH, PayloadError, normalize_payload
from .vectors import MAX_VOCAB_SIZE as _MAX_VOCAB
from .vectors import MAX_WEIGHT
from .vectors import _is_int

__all__ = [
    "MAX_K",
    "MAX_VOCAB_SIZE",
    "ID_MIN",
    "ID_MAX",
    "max_threads",
    "check_int",
    "check_k",
    "check_threads",
    "check_vocab_size",
    "check_text",
    "check_texts",
    "check_id",
    "check_new_ids",
    "lookup_id",
    "lookup_ids",
    "documents_list",
    "normalize_payloads",
    "check_csr_weights",
    "check_csr_terms",
    "check_weight",
    "vocab_limit",
]

#: Largest ``k`` a search accepts (the engine clamps its work to the documents it has).
MAX_K = 2**63 - 1
#: Largest vocabulary an index holds (see :data:`sparsedex.vectors.MAX_VOCAB_SIZE`).
MAX_VOCAB_SIZE = _MAX_VOCAB
#: Integer ids are signed 64-bit integers.
ID_MIN, ID_MAX = -(2**63), 2**63 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The most threads a call may ask for: four times the cores this process may run on."""
    return 4 * _cores()



def c_array(x: Any, dtype: Any) -> np.ndarray:
    """``x`` as a C-contiguous, aligned array of ``dtype``, for the engine (which reads arrays
    in place): ``np.ascontiguousarray``, copied when the result is not aligned (an array made
    with ``np.frombuffer(..., offset=1)`` is contiguous but not aligned, and the engine refuses
    it)."""
    a = np.ascontiguousarray(x, dtype=dtype)
    return a if a.flags.aligned else a.copy()


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an int when it is an integer in ``lo .. hi`` (inclusive).

    :class:`TypeError` when it is not an integer (bools are not), :class:`ValueError` stating
    the range when it is outside it.
    """
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, got {type(value).__name__} "
                        f"{shown(value)}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {shown(v)}")
    return v


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool when it is True or False (numpy's too); :class:`TypeError` naming
    ``name`` otherwise (``"x"`` or ``1`` were taken as True, helper-134)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {shown(value)}")
    return bool(value)


def check_k(k: Any) -> int:
    """``k`` (hits per query): an integer in ``1 .. MAX_K``."""
    return check_int(k, "k", 1, MAX_K)


def check_threads(threads: Any) -> int | None:
    """``threads``: None (all cores) or an integer in ``1 .. max_threads()``."""
    if threads is None:
        return None
    return check_int(threads, "threads", 1, max_threads())


def check_vocab_size(vocab_size: Any) -> int | None:
    """``vocab_size``: None (any 32-bit term id) or an integer in ``1 .. MAX_VOCAB_SIZE``."""
    if vocab_size is None:
        return None
    return check_int(vocab_size, "vocab_size", 1, MAX_VOCAB_SIZE)


# texts ------------------------------------------------------------------------------------
def _surrogate_problem(s: str) -> str | None:
    if s.isascii():
        return None
    m = _SURROGATE.search(s)
    if m is None:
        return None
    return (
        f"holds a lone surrogate (U+{ord(m.group()):04X} at character {m.start()}), which is not "
        "valid Unicode (decode the bytes it came from with errors='replace')"
    )


def a_type(x: Any) -> str:
    """``x``'s type name with its article, for messages: ``"an int"``, ``"a str"``."""
    name = type(x).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def wrong_id_kind(x: Any, i: int, want: type, whose: str = "the index's ids are") -> TypeError:
    """The error for id ``x`` of document ``i``, whose type is not ``want`` (int or str), the
    type of ``whose`` ids."""
    return TypeError(
        f"id {shown(x)} of document {i} is {a_type(x)} but {whose} "
        f"{'strings' if want is str else 'ints'}: ids must be all ints or all strings"
    )


def other_kind(x: Any, kind: type | None, whose: str = "the index's ids are") -> str:
    """``" (a str; the index's ids are ints)"`` (or the reverse) when id ``x`` is
    not of ``kind`` (the type of the index's ids; None: no kind yet), ``" (outside the signed
    64-bit range of int ids)"`` for such an int on an index of int ids, else ``""``: the end of
    a KeyError for an id that no document can have (helper-160: "no document with id '1'"
    did not say why, where the ``$ids`` filter's FilterError did)."""
    if kind is int and isinstance(x, int) and not isinstance(x, bool) and not ID_MIN <= x <= ID_MAX:
        return " (outside the signed 64-bit range of int ids)"  # helper-161: $ids said so, get did not
    if kind is None or isinstance(x, kind):
        return ""
    return f" ({a_type(x)}; {whose} {'strings' if kind is str else 'ints'})"  # short: the id may be long


def missing_value(x: Any) -> str | None:
    """How ``x`` reads as a missing value (``None``, a NaN, pandas' ``NA`` / ``NaT``, numpy's
    ``NaT``), for messages; None when it is not one (helper-137, helper-139: "document 1 is a
    float")."""
    if x is None:
        return "None"
    if isinstance(x, (float, np.floating)) and x != x:
        return "NaN"
    if type(x).__name__ == "Decimal" and x.is_nan():
        return f"{x!r}"
    if isinstance(x, (np.datetime64, np.timedelta64)) and np.isnat(x):
        return f"{x!r}"
    if type(x).__name__ in ("NAType", "NaTType"):
        return f"pandas' {x!r}"
    return None


def check_text(text: Any, label: str) -> str:
    """``text`` when it is a ``str`` of valid Unicode; else TypeError / ValueError naming ``label``."""
    if not isinstance(text, str):
        missing = missing_value(text)
        if missing is not None:
            raise TypeError(f"{label} is a missing value ({missing}), not a str")
        raise TypeError(f"{label} is {a_type(text)}, not a str")
    problem = _surrogate_problem(text)
    if problem:
        raise ValueError(f"{label} {problem}")
    return text


def text_batch(texts: Any, what: str = "text") -> Iterable[Any]:
    """The texts of an encoder call: a ``str`` is one text, any other iterable a batch.

    Raises TypeError for what is neither (``None``, a number, ``bytes``: iterating bytes
    would give ints); the items are checked one by one with :func:`check_text`, labelled
    ``f"{what} {i}"``, by the caller (:func:`iter_texts`).
    """
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("texts is None: pass a text or a list of texts")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"texts is {a_type(texts)}: pass a str (decode the bytes first, e.g. b.decode('utf-8')) or a list of str"
        )
    try:
        iter(texts)
    except TypeError:
        raise TypeError(f"texts is {a_type(texts)}: pass a text (str) or a list of texts") from None
    return texts  # type: ignore[no-any-return]


def iter_texts(texts: Any, what: str = "text") -> Iterable[str]:
    """Each text of :func:`text_batch`, checked with :func:`check_text` as it is reached
    (so a generator of texts is read once, lazily)."""
    for i, t in enumerate(text_batch(texts, what)):
        yield check_text(t, f"{what} {i}")


def check_texts(texts: Iterable[Any], what: str = "document") -> list[str]:
    """Every text checked with :func:`check_text`, labelled ``f"{what} {i}"``."""
    return [check_text(t, f"{what} {i}") for i, t in enumerate(texts)]


# ids --------------------------------------------------------------------------------------
def check_id(x: Any, label: str) -> int | str:
    """A new document's id as a plain int or str; errors name ``label`` (``"document 3"``)."""
    if _is_int(x):
        v = int(x)
        if not ID_MIN <= v <= ID_MAX:
            raise ValueError(f"id of {label} is {v}: integer ids are signed 64-bit (-2**63 .. 2**63 - 1)")
        return v
    if isinstance(x, str):
        problem = _surrogate_problem(x)
        if problem:
            raise ValueError(f"id of {label} {problem}")
        return str(x)
    missing = missing_value(x)
    if missing is not None:
        raise TypeError(f"id of {label} is a missing value ({missing}): ids are ints or strings")
    raise TypeError(f"id of {label} is {a_type(x)}: ids are ints or strings")


def refuse_unordered(x: Any, name: str, hint: str = "") -> None:
    """A TypeError when ``x`` is a set: its items would fall on the documents in hash order
    (helper-137: documents, helper-139: ids); ``hint`` follows "pass a list"."""
    if isinstance(x, (set, frozenset)):
        raise TypeError(f"{name} is a {type(x).__name__}, which has no order: pass a list{hint}")


def refuse_duplicate_ids(ids: Iterable[Any]) -> None:
    """A ValueError naming the first id given twice in ``ids`` (hashable ids)."""
    seen: set[Any] = set()
    for i, x in enumerate(ids):
        if x in seen:
            raise ValueError(f"id {shown(x)} of document {i} is a duplicate")
        seen.add(x)


def check_new_ids(ids: Any, n: int) -> list[int | str]:
    """``ids`` for ``n`` new documents: a sequence (not a string) of valid ids, one each."""
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a sequence (one id per document), not a string")
    if isinstance(ids, Mapping) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be a sequence (one id per document), got {type(ids).__name__}")
    refuse_unordered(ids, "ids", " (one id per document)")
    out = [check_id(x, f"document {i}") for i, x in enumerate(ids)]
    if len(out) != n:
        raise ValueError(f"{len(out)} ids given for {n} documents")
    return out


def int_ids_fast(ids: Any, n: int, kind: type | None) -> list[int] | None:
    """``ids`` as a list of ``n`` distinct plain ints in the signed 64-bit range, checked as a
    batch (numpy), or None when they are anything else (strings, bools, numpy scalars, a
    duplicate, a wrong count...): then :func:`check_new_ids` and the caller's own checks go
    document by document and name the first one at fault."""
    if kind is str or type(ids) is not list or len(ids) != n or n == 0:
        return None
    if not all(type(x) is int for x in ids):  # bool, numpy scalars, str: the slow path names them
        return None
    try:
        a = np.fromiter(ids, dtype=np.int64, count=n)
    except OverflowError:
        return None
    if n > 1:
        s = np.sort(a)
        if bool((s[1:] == s[:-1]).any()):
            return None
    return list(ids)


def lookup_id(x: Any) -> int | str:
    """An id to look up (get, explain, delete): a plain int or str, or TypeError.

    No conversion between kinds: ``True``, ``1.0`` and ``"1"`` do not find the id ``1``.
    """
    if _is_int(x):
        return int(x)
    if isinstance(x, str):
        return str(x)
    missing = missing_value(x)
    if missing is not None and x is not None:
        raise TypeError(f"a document id is an int or a str, got a missing value ({missing})")
    raise TypeError(f"a document id is an int or a str, got {type(x).__name__} {shown(x)}")


def lookup_ids(ids: Any) -> list[int | str]:
    """One id or an iterable of ids, for ``delete``; TypeError for anything else."""
    if ids is None:
        raise TypeError("ids is None: pass one id or a list of ids to delete")
    if _is_int(ids) or isinstance(ids, str):
        return [lookup_id(ids)]
    missing = missing_value(ids)
    if missing is not None:
        raise TypeError(f"ids is a missing value ({missing}): pass one id or a list of ids to delete")
    if isinstance(ids, (bytes, Mapping)) or not isinstance(ids, Iterable):
        raise TypeError(f"ids must be one id (int or str) or a list of them, got {type(ids).__name__}")
    return [lookup_id(x) for x in ids]


# documents and payloads -------------------------------------------------------------------
def documents_list(documents: Any) -> list[Any]:
    """``documents`` (a list, tuple, pandas Series, generator, ...) as a list; None and
    non-iterables are a TypeError saying what to pass."""
    if documents is None:
        raise TypeError("documents is None: pass a list of texts (or of sparse vectors for an index without encoder)")
    if isinstance(documents, (bytes, Mapping)) or not isinstance(documents, Iterable):
        raise TypeError(
            f"documents must be a list of texts or vectors, got {type(documents).__name__}"
        )
    refuse_unordered(documents, "documents")
    if type(documents).__module__.startswith("pandas") and hasattr(documents, "columns"):
        # iterating a DataFrame gives its column names, not its rows
        raise TypeError("documents is a pandas DataFrame: pass one column, e.g. df['text']")
    return list(documents)


def normalize_payloads(raw: Any, n: int) -> list[dict[str, Any] | None]:
    """The stored copies of ``n`` payloads (see :func:`sparsedex.filters.normalize_payload`).

    Fast path: one JSON round trip of the batch, accepted only when the copy equals the input
    (so no key or value was rewritten) and encodes as UTF-8; otherwise document by document,
    naming the first offending one.
    """
    if raw is None:
        return [None] * n
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        raise TypeError(f"payloads must be a list (one dict or None per document), got {type(raw).__name__}")
    items = list(raw)
    if len(items) != n:
        raise ValueError(f"{len(items)} payloads given for {n} documents")
    if all(p is None or type(p) is dict for p in items):
        try:
            text = json.dumps(items, allow_nan=False, ensure_ascii=False)
            text.encode("utf-8")
            copy = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            if copy == items and _depth_ok(text, items):
                return copy  # type: ignore[no-any-return]
    out = []
    for i, p in enumerate(items):
        try:
            out.append(normalize_payload(p, i))
        except PayloadError as e:
            if e.problem.startswith("expected a dict"):
                raise TypeError(str(e)) from None
            raise
    return out


def normalize_payloads_stored(raw: Any, n: int) -> tuple[list[dict[str, Any] | None], list[str | None]]:
    """:func:`normalize_payloads` and the stored form of each copy
    (:func:`sparsedex.docs.payloads_json`), encoding each payload once: the fast path checks
    the batch through the JSON array of those stored forms (accepted only when its copy
    equals the input), and a commit writes the strings as they are."""
    from .docs import payloads_json

    if raw is None:
        return [None] * n, [None] * n
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        raise TypeError(f"payloads must be a list (one dict or None per document), got {type(raw).__name__}")
    items = list(raw)
    if len(items) == n and all(p is None or type(p) is dict for p in items):
        try:
            stored = payloads_json(items)
            text = "[" + ",".join("null" if p is None else p for p in stored) + "]"
            text.encode("utf-8")
            copy = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            if copy == items and _depth_ok(text, items):
                return copy, stored
    out = normalize_payloads(items, n)
    return out, payloads_json(out)


def _depth_ok(text: str, items: list[Any]) -> bool:
    """Whether the JSON array ``text`` of the payloads ``items`` (dicts or None) nests its
    payloads at most :data:`MAX_DEPTH` deep. A bound first, from two character counts: each
    dict holds at least one opening bracket, so the deepest one holds at most
    ``openers - len(dicts)`` beyond the array's own (brackets inside strings only raise the
    bound); the exact depth (:func:`_json_depth`) only when the bound is above the limit."""
    dicts = len(items) - items.count(None)
    if text.count("{") + text.count("[") - dicts <= MAX_DEPTH:
        return True
    return _json_depth(text) - 1 <= MAX_DEPTH


def _json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in ``json.dumps`` output (brackets inside strings
    do not count). In that output a quote inside a string is always escaped (``\\"``) and a
    backslash doubled, so after dropping escaped pairs every quote delimits a string."""
    b = np.frombuffer(text.replace("\\\\", "").replace('\\"', "").encode("utf-8"), dtype=np.uint8)
    if b.size == 0:
        return 0
    outside = (np.cumsum(b == ord('"')) & 1) == 0
    step = ((b == ord("[")) | (b == ord("{"))).astype(np.int8) - ((b == ord("]")) | (b == ord("}")))
    step[~outside] = 0
    return int(np.cumsum(step, dtype=np.int32).max())


# vectors ----------------------------------------------------------------------------------
def check_weight(value: Any, name: str) -> float:
    """A positive finite weight of at most :data:`MAX_WEIGHT` (e.g. ``max_weight``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (0 < v <= MAX_WEIGHT):
        raise ValueError(f"{name} must be a number in (0, 1e14], got {value!r}")
    return v


def vocab_limit(vocab_size: int | None) -> tuple[int, str]:
    """The bound on documents' term ids and its name for messages."""
    if vocab_size is not None:
        return vocab_size, "the vocabulary size"
    return 2**32, "2**32 = 4294967296 (term ids are 32-bit unsigned)"


def check_csr_terms(indptr: np.ndarray, indices: np.ndarray, what: str = "document",
                    vocab_size: int | None = None) -> None:
    """ValueError naming the row of the first term id at or above the vocabulary size (or
    2**32 without one)."""
    ix = np.asarray(indices)
    if ix.size == 0 or ix.dtype.kind not in "iu":
        return
    limit, name = vocab_limit(vocab_size)
    if int(ix.max()) < limit:  # one pass, no temporary: the common case
        return
    over = ix >= limit
    if over.any():
        pos = int(np.argmax(over))
        row = int(np.searchsorted(np.asarray(indptr, dtype=np.int64), pos, side="right")) - 1
        shown = name if vocab_size is None else f"{name} ({limit})"  # 2**32's name holds its value
        raise ValueError(f"{what} {row}: term id {int(ix[pos])} is not below {shown}")


def check_csr_weights(indptr: np.ndarray, values: np.ndarray, what: str = "document",
                      indices: np.ndarray | None = None) -> None:
    """ValueError naming the row (and with ``indices``, the term) of the first finite weight
    above :data:`MAX_WEIGHT` (NaN, infinities and negative weights are left to the engine's
    own check, which names them)."""
    v = np.asarray(values)
    if v.size == 0:
        return
    top = v.max()
    if top <= np.float32(MAX_WEIGHT):  # one pass, no temporary (False for NaN: checked below)
        return
    with np.errstate(invalid="ignore"):
        over = np.isfinite(v) & (v > np.float32(MAX_WEIGHT))  # NaN and inf: the engine names them
    if over.any():
        pos = int(np.argmax(over))
        row = int(np.searchsorted(np.asarray(indptr, dtype=np.int64), pos, side="right")) - 1
        term = "" if indices is None else f" of term {int(np.asarray(indices)[pos])}"
        raise ValueError(
            f"{what} {row}: weight {v[pos]!s}{term} is above the largest weight sparsedex accepts "
            "(1e14); larger weights could overflow float32 scores"
        )


def check_target_recall(target_recall: Any) -> float | None:
    """``target_recall`` as a float in (0, 1] (None stays None): a real number (Python, numpy,
    ``Fraction``, ``Decimal``), not a bool. ValueError naming the value otherwise."""
    if target_recall is None:
        return None
    if (isinstance(target_recall, (bool, np.bool_))
            or not isinstance(target_recall, (numbers.Real, decimal.Decimal, np.integer, np.floating))
            or not 0 < float(target_recall) <= 1):
        raise ValueError(f"target_recall must be a number in (0, 1], got {target_recall!r}")
    return float(target_recall)
