"""Payload filters: a small Mongo-like language, evaluated over a whole segment at once.

Each document may carry a payload: a JSON-like ``dict`` or ``None``. A filter is a plain,
JSON-serialisable dict. :func:`compile_filter` validates it once into a :class:`Filter`;
:meth:`Filter.mask` evaluates it over a :class:`PayloadColumns` (one segment's payloads,
turned into typed numpy columns once per field path) and returns a boolean mask, one entry
per document, with numpy work only. :meth:`Filter.matches` evaluates the same semantics on
one payload in plain Python; it is the reference the vectorised path is tested against.

Language
--------
- ``{"genre": "drama"}`` is equality, shorthand for ``{"genre": {"$eq": "drama"}}``.
- Field operators: ``$eq``, ``$ne``, ``$in`` (list), ``$nin`` (list), ``$gt``, ``$gte``,
  ``$lt``, ``$lte`` (number bounds only), ``$exists`` (``true``/``false``). Several
  operators on one field are ANDed: ``{"year": {"$gte": 1980, "$lt": 1990}}``.
- Several keys in one dict are ANDed: ``{"genre": "drama", "year": {"$gte": 1980}}``.
- Logical: ``{"$and": [f, ...]}``, ``{"$or": [f, ...]}`` (non-empty lists), ``{"$not": f}``.
- Field names are dotted paths into nested dicts: ``"meta.lang"`` reads
  ``payload["meta"]["lang"]``. A payload key that itself contains a dot cannot be addressed,
  and paths do not descend into lists (``"tags.name"`` does not look inside a list of dicts).
- ``{"$elemMatch": {...}}`` on a field: at least ONE value of the field satisfies every
  operator inside at once; inside it only ``$gt``, ``$gte``, ``$lt``, ``$lte`` and ``$nin``
  are allowed: ``{"x": {"$elemMatch": {"$gt": 1, "$lt": 3}}}`` does not match
  ``{"x": [0, 5]}``, and ``{"tags": {"$elemMatch": {"$nin": ["a", None]}}}`` matches when some
  non-null value is not ``"a"`` (a list or dict value counts as such a value). A missing field,
  or ``[]``, has no value, so it never matches.
- ``{"$ids": [id, ...]}``: the documents whose id (not payload) is listed (ints or strings).
  A search refuses an id of the other kind than the index's ids (a str on an index of int
  ids, or an int on one of str ids: ``1`` never equals ``"1"``, so it could match nothing) with
  a :class:`FilterError` naming it, and so is an int outside the signed 64-bit range of
  integer ids on an index of int ids (no document can have it); a search of a commit without
  live documents (none added yet, or all deleted) is not checked: there such a filter matches
  nothing.
- ``{}`` matches every document.

Semantics
---------
- A field is *missing* when the path does not exist: the payload is ``None``, a key is
  absent, or an intermediate value is not a dict.
- The *values* of a present field are the elements of the value when it is a list, else the
  value itself. Elements that are lists or dicts match no predicate (only ``$exists``).
- JSON equality: numbers compare by value across int and float (``1 == 1.0``); bools are
  not numbers (``True != 1``, ``False != 0``); strings by exact value; ``null`` equals only
  ``null`` (a missing field does not equal ``null``). Only scalars (null, bool, number,
  string) can be compared; a list or dict operand is a :class:`FilterError`, and so is a
  non-finite float.
- ``$eq``, ``$in`` and the ranges match when ANY value of the field matches (as in Mongo and
  Qdrant). Each operator is tested on its own, so ``{"x": {"$gt": 1, "$lt": 3}}`` matches
  ``{"x": [0, 5]}`` (``$elemMatch`` asks for one value meeting them all). ``$in: []`` matches
  nothing.
- ``$ne: x`` is exactly ``$not: {$eq: x}`` and ``$nin`` is ``$not: {$in: ...}``: both match
  documents where the field is missing.
- ``$exists: true`` matches when the path exists, whatever the value (``null``, ``[]`` and
  ``{}`` included); ``$exists: false`` is its negation.
- Ranges match numbers only (never bools, strings or null). A bound must be a number (an int
  that is not a bool, or a finite float); anything else is a :class:`FilterError`.
- Integers of any size are compared exactly, in payloads and in filters: the columns keep
  integers within +-2**53 (and all floats) as float64, which is exact for them, and larger
  integers apart as Python ints, compared in Python (such values are rare, so that path is
  small). A float64 column is compared with a filter bound beyond 2**53 through the two
  floats around the bound, never through a rounded bound. So nothing needs rejecting at add
  time for size.

Payloads: what is stored
------------------------
A payload is stored exactly as given, or refused; it is never rewritten silently.
:func:`normalize_payload` (run by ``SparseIndex.add`` / ``upsert`` on every payload) returns
the copy that is stored and raises :class:`ValueError` naming the document and the field for
anything else:

- ``None``, or a dict (any ``Mapping``) whose keys are strings;
- values: ``None``, ``bool``, ``int`` (any size up to 4,300 digits, Python's limit for
  writing an integer as text), finite ``float``, ``str``, and lists and dicts of those,
  nested at most :data:`MAX_DEPTH` levels;
- numpy scalars (``np.int64``, ``np.float32``, ``np.bool_``, ``np.str_``, ...) are stored as
  the Python value equal to them (``np.float32(0.1)`` becomes ``0.10000000149011612``, the
  exact value of that float32); a numpy float that no Python float equals (``np.longdouble``
  beyond float64) is refused;
- refused: tuples and sets (JSON would turn them into lists), non-string keys (JSON would
  turn ``1`` into ``"1"``), NaN and infinities, bytes, numpy arrays (pass ``.tolist()``),
  dates, ``pandas.NA`` and any other object, and strings holding a lone surrogate
  (``"\\ud800"``: not valid Unicode, so it cannot be written as UTF-8).

Filter operands follow the same value rules: numpy scalars compare as the Python value equal
to them, and ``$in`` / ``$nin`` take a list, a tuple or a 1-D numpy array.

Errors
------
A malformed filter raises :class:`FilterError` (a :class:`ValueError`) naming where it is,
for example ``filter at $and[1].year: unknown operator '$gtx' (known: $eq, $ne, ...)``.
A filter nested deeper than :data:`MAX_DEPTH` levels is a :class:`FilterError` too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np

from ._core import SparsedexError
from ._shown import cut, shown

__all__ = [
    "FilterError",
    "Filter",
    "PayloadColumns",
    "compile_filter",
    "check_payload_value",
    "normalize_payload",
    "PayloadError",
    "MAX_DEPTH",
]

#: Deepest nesting of a payload (dicts and lists) or of a filter expression.
MAX_DEPTH = 64

_EXACT = 2**53  # integers with |v| <= 2**53 are exact in float64

_FIELD_OPS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$elemMatch")
_LOGICAL_OPS = ("$and", "$or", "$not", "$ids")
_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")

_MISSING = object()


class FilterError(SparsedexError, ValueError):
    """A filter expression is malformed; the message names the offending part."""


def _numpy_scalar(x: Any) -> Any:
    """The Python scalar equal to numpy scalar ``x`` (``x`` itself when it is not one).

    Raises :class:`ValueError` when no Python value equals it (a long double beyond float64,
    a complex number, a datetime).
    """
    if not isinstance(x, np.generic):
        return x
    if isinstance(x, (np.datetime64, np.timedelta64)):  # before np.integer: timedelta64 is one,
        # and int() of it raised Python's own TypeError (helper-163)
        if np.isnat(x):
            from ._validate import missing_value  # here: _validate imports this module

            raise ValueError(f"a missing value ({missing_value(x)}) is not a JSON value (for null, use None)")
        raise ValueError(f"{type(x).__name__} is not a JSON value")
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        f = float(x)
        if not (f == x or (math.isnan(f) and np.isnan(x))):
            raise ValueError(f"{type(x).__name__} {x} has no exact float64 value (convert it to float first)")
        return f
    if isinstance(x, np.str_):
        return str(x)
    raise ValueError(f"{type(x).__name__} is not a JSON value")


# --------------------------------------------------------------------------- values


def _is_number(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, float)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, str)) or _is_number(v)


def _json_eq(a: Any, b: Any) -> bool:
    """JSON equality of two scalars (reference semantics)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_number(a) and _is_number(b):
        return a == b  # Python compares int and float exactly
    return False


def _resolve(payload: Any, keys: tuple[str, ...]) -> Any:
    v = payload
    for k in keys:
        if not isinstance(v, dict):
            return _MISSING
        v = v.get(k, _MISSING)
    return v


def _elements(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _float_bracket(b: int) -> tuple[float, float]:
    """The floats ``lo <= b <= hi`` adjacent to the integer ``b`` (equal when exact)."""
    try:
        f = float(b)
    except OverflowError:
        f = math.inf if b > 0 else -math.inf
    if f == b:
        return f, f
    if f > b:
        return math.nextafter(f, -math.inf), f
    return f, math.nextafter(f, math.inf)


def _as_float(x: Any) -> float | None:
    """``x`` (a number) as the float64 equal to it, or None when no float equals it."""
    if isinstance(x, float):
        return x
    lo, hi = _float_bracket(x)
    return lo if lo == hi else None


# --------------------------------------------------------------------------- columns


class _Part:
    """One typed slice of a field: values plus the docs they belong to.

    Dense when every document has at most one value of this type: ``vals`` then has one
    entry per document (``fill`` where there is none) and a predicate on ``vals`` is the mask
    itself. Otherwise ``docs[i]`` is the document of ``vals[i]`` and results are scattered.
    """

    __slots__ = ("n", "docs", "vals")

    def __init__(self, n: int, docs: list[int], vals: list[Any], dtype: Any, fill: Any) -> None:
        self.n = n
        d = np.asarray(docs, dtype=np.int64)
        v = np.asarray(vals, dtype=dtype)
        if d.size == 0 or not np.any(d[1:] == d[:-1]):  # docs ascend; repeats are adjacent
            dense = np.full(n, fill, dtype=dtype)
            dense[d] = v
            self.docs: np.ndarray | None = None
            self.vals = dense
        else:
            self.docs = d
            self.vals = v

    def scatter(self, sel: np.ndarray) -> np.ndarray:
        if self.docs is None:
            return sel
        out = np.zeros(self.n, dtype=bool)
        out[self.docs[sel]] = True
        return out


def _path_values(payloads: Sequence[Any], path: str) -> tuple[list[int], list[Any]]:
    """The documents whose payload holds ``path`` and the value there, documents ascending."""
    keys = tuple(path.split("."))
    docs: list[int] = []
    vals: list[Any] = []
    for i, p in enumerate(payloads):
        v = p
        for k in keys:
            if not isinstance(v, dict):
                v = _MISSING
                break
            v = v.get(k, _MISSING)
        if v is _MISSING:
            continue
        docs.append(i)
        vals.append(v)
    return docs, vals


class _Column:
    """All values found at one field path of a segment: ``docs`` (ascending) hold the path,
    with values ``vals`` (JSON values), out of ``n`` documents."""

    def __init__(self, n: int, docs: Sequence[int], vals: Sequence[Any]) -> None:
        if self._init_uniform(n, docs, vals):
            return
        present = np.zeros(n, dtype=bool)
        num_d: list[int] = []
        num_v: list[float] = []
        str_d: list[int] = []
        str_v: list[int] = []
        codes: dict[str, int] = {}
        true_d: list[int] = []
        false_d: list[int] = []
        null_d: list[int] = []
        big: list[tuple[int, int]] = []
        other_d: list[int] = []
        for i, v in zip(docs, vals):
            i = int(i)
            present[i] = True
            for e in v if isinstance(v, list) else (v,):
                if isinstance(e, str):
                    str_d.append(i)
                    str_v.append(codes.setdefault(e, len(codes)))
                elif isinstance(e, bool):
                    (true_d if e else false_d).append(i)
                elif isinstance(e, int):
                    if -_EXACT <= e <= _EXACT:
                        num_d.append(i)
                        num_v.append(float(e))
                    else:
                        big.append((i, e))
                elif isinstance(e, float):
                    num_d.append(i)
                    num_v.append(e)
                elif e is None:
                    null_d.append(i)
                else:  # lists and dicts (inside lists, or a dict value): only $exists and $elemMatch/$nin
                    other_d.append(i)
        self.n = n
        self.present = present
        self.num = _Part(n, num_d, num_v, np.float64, np.nan)
        self.str = _Part(n, str_d, str_v, np.int64, -1)
        self.codes = codes
        self.true = _doc_mask(n, true_d)
        self.false = _doc_mask(n, false_d)
        self.null = _doc_mask(n, null_d)
        self.other = _doc_mask(n, other_d)
        self.big = big

    def _init_uniform(self, n: int, docs: Sequence[int], vals: Sequence[Any]) -> bool:
        """The common case in C-level passes: every value is a string, or every value a number
        (ints within +-2**53, or floats). Builds exactly what the general loop builds (codes
        in order of first sight); False, having done nothing, otherwise."""
        types = set(map(type, vals))
        if types == {str}:
            codes = {s: i for i, s in enumerate(dict.fromkeys(vals))}
            num_d: Any = []
            num_v: Any = []
            str_d: Any = docs
            str_v: Any = list(map(codes.__getitem__, vals))
        elif types and types <= {int, float}:
            if int in types and not -_EXACT <= min(vals) <= max(vals) <= _EXACT:
                return False  # big integers: the general loop keeps them exact
            codes = {}
            num_d, num_v = docs, np.asarray(vals, dtype=np.float64)
            str_d, str_v = [], []
        else:
            return False
        d = np.asarray(docs, dtype=np.int64)
        present = np.zeros(n, dtype=bool)
        present[d] = True
        self.n = n
        self.present = present
        self.num = _Part(n, num_d, num_v, np.float64, np.nan)
        self.str = _Part(n, str_d, str_v, np.int64, -1)
        self.codes = codes
        self.true = self.false = self.null = self.other = None
        self.big = []
        return True

    def _none(self) -> np.ndarray:
        return np.zeros(self.n, dtype=bool)

    def _big_mask(self, test: Callable[[int], bool]) -> np.ndarray | None:
        hits = [d for d, v in self.big if test(v)]
        return _doc_mask(self.n, hits) if hits else None

    def eq(self, x: Any) -> np.ndarray:
        if x is None:
            return self._none() if self.null is None else self.null.copy()
        if isinstance(x, bool):
            m = self.true if x else self.false
            return self._none() if m is None else m.copy()
        return self.isin([x])  # strings and numbers

    def isin(self, xs: list[Any]) -> np.ndarray:
        out = self._none()
        strs = [x for x in xs if isinstance(x, str)]
        nums = [x for x in xs if _is_number(x)]
        if strs and self.codes:
            found = [self.codes[s] for s in strs if s in self.codes]
            if found:
                table = np.zeros(len(self.codes) + 1, dtype=bool)
                table[np.asarray(found, dtype=np.int64) + 1] = True
                out |= self.str.scatter(table[self.str.vals + 1])
        if nums:
            floats = [f for f in map(_as_float, nums) if f is not None]
            if floats and self.num.vals.size:
                out |= self.num.scatter(np.isin(self.num.vals, np.asarray(floats, np.float64)))
            if self.big:
                wanted = set(nums)  # no bools in it; int/float hashes agree with ==
                m = self._big_mask(lambda v: v in wanted)
                if m is not None:
                    out |= m
        if None in xs and self.null is not None:
            out |= self.null
        for b, m in ((True, self.true), (False, self.false)):
            if m is not None and any(x is b for x in xs):
                out |= m
        return out

    def range(self, op: str, bound: int | float) -> np.ndarray:
        out = self.num.scatter(_range_sel(self.num.vals, op, bound))
        if self.big:
            py_op = _PY_COMPARE[op]
            m = self._big_mask(lambda v: py_op(v, bound))
            if m is not None:
                out = out | m
        return out

    def elem_match(self, ranges: list[tuple[str, int | float]], nin: list[Any] | None) -> np.ndarray:
        """Documents with one value satisfying every range and not JSON-equal to any of ``nin``."""
        vals = self.num.vals
        sel = ~np.isnan(vals)  # a dense part fills documents without a number with NaN
        for op, bound in ranges:
            sel &= _range_sel(vals, op, bound)
        if nin is not None:
            floats = [f for f in map(_as_float, [x for x in nin if _is_number(x)]) if f is not None]
            if floats:
                sel &= ~np.isin(vals, np.asarray(floats, np.float64))
        out = self.num.scatter(sel)
        if self.big:
            excluded = [x for x in (nin or []) if _is_number(x)]
            m = self._big_mask(
                lambda v: all(_PY_COMPARE[op](v, b) for op, b in ranges) and not any(v == x for x in excluded)
            )
            if m is not None:
                out |= m
        if ranges or nin is None:
            return out
        codes = self.str.vals
        s_sel = codes >= 0
        found = [self.codes[x] for x in nin if isinstance(x, str) and x in self.codes]
        if found:
            s_sel &= ~np.isin(codes, np.asarray(found, dtype=np.int64))
        out |= self.str.scatter(s_sel)
        for m, present in (
            (self.true, any(x is True for x in nin)),
            (self.false, any(x is False for x in nin)),
            (self.null, any(x is None for x in nin)),
            (self.other, False),
        ):
            if m is not None and not present:
                out |= m
        return out


def _range_sel(vals: np.ndarray, op: str, bound: int | float) -> np.ndarray:
    """``vals op bound`` element-wise, exact for integer bounds beyond 2**53 (NaN: False)."""
    if isinstance(bound, float) or -_EXACT <= bound <= _EXACT:
        return _COMPARE[op](vals, float(bound))  # type: ignore[no-any-return]
    lo, hi = _float_bracket(bound)
    if lo == hi:
        return _COMPARE[op](vals, lo)  # type: ignore[no-any-return]
    if op in ("$gt", "$gte"):
        return vals >= hi  # type: ignore[no-any-return]
    return vals <= lo  # type: ignore[no-any-return]


def _doc_mask(n: int, docs: list[int]) -> np.ndarray | None:
    if not docs:
        return None
    m = np.zeros(n, dtype=bool)
    m[np.asarray(docs, dtype=np.int64)] = True
    return m


_COMPARE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "$gt": np.greater,
    "$gte": np.greater_equal,
    "$lt": np.less,
    "$lte": np.less_equal,
}
_PY_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


class PayloadColumns:
    """Columns of one segment's payloads, built once, evaluated many times.

    The columns of a field path are built on first use (one Python pass over the payloads, or
    over the values a documents store finds at that path: ``source.path_values(path)``) and
    cached. Two threads may build the same path at once: both build, one result is kept,
    and built columns are never modified. Payload dicts must not be mutated afterwards.
    """

    def __init__(
        self,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
        *,
        source: Any = None,
        locate: Callable[[Any], int | None] | None = None,
    ) -> None:
        if (payloads is None) == (source is None):
            raise TypeError("PayloadColumns takes payloads or source=, one of the two")
        # source: anything with ``n`` and ``path_values(path) -> (docs, values)`` (a segment's
        # documents, sparsedex.docs.SegmentDocs): columns are then built from the values at
        # one path, never from whole payloads
        self._payloads = None if payloads is None else list(payloads)
        self._source = source
        self._n = len(self._payloads) if self._payloads is not None else int(source.n)
        self._columns: dict[str, _Column] = {}
        if ids is not None and not callable(ids) and len(ids) != self._n:
            raise ValueError(f"{len(ids)} ids for {self._n} payloads")
        # the documents' ids, in the same order (what ``$ids`` tests), or a function giving
        # them on first use; None when not given
        self._ids = ids
        # locate(id) -> the position of the document with that id, or None (a lookup, where
        # ``ids`` is a scan): lets ``$ids`` with a few ids skip the scan of every id
        self.locate = locate

    @property
    def ids(self) -> Sequence[Any] | None:
        """The documents' ids in document order (what ``$ids`` tests); None when not given."""
        if callable(self._ids):
            ids = list(self._ids())
            if len(ids) != self._n:
                raise ValueError(f"{len(ids)} ids for {self._n} payloads")
            self._ids = ids
        return self._ids

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"PayloadColumns({len(self)} documents, {len(self._columns)} fields built)"

    def column(self, path: str) -> _Column:
        col = self._columns.get(path)
        if col is None:
            if self._payloads is not None:
                docs, vals = _path_values(self._payloads, path)
            else:
                docs, vals = self._source.path_values(path)
            col = self._columns.setdefault(path, _Column(self._n, docs, vals))
        return col


# --------------------------------------------------------------------------- filter tree


class _Node:
    def mask(self, cols: PayloadColumns) -> np.ndarray:
        raise NotImplementedError

    def matches(self, payload: Any, id: Any = None) -> bool:
        raise NotImplementedError


class _And(_Node):
    def __init__(self, children: list[_Node]) -> None:
        self.children = children

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        out = np.ones(len(cols), dtype=bool)
        for c in self.children:
            out &= c.mask(cols)
        return out

    def matches(self, payload: Any, id: Any = None) -> bool:
        return all(c.matches(payload, id) for c in self.children)


class _Or(_Node):
    def __init__(self, children: list[_Node]) -> None:
        self.children = children

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        out = np.zeros(len(cols), dtype=bool)
        for c in self.children:
            out |= c.mask(cols)
        return out

    def matches(self, payload: Any, id: Any = None) -> bool:
        return any(c.matches(payload, id) for c in self.children)


class _Not(_Node):
    def __init__(self, child: _Node) -> None:
        self.child = child

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        return ~self.child.mask(cols)

    def matches(self, payload: Any, id: Any = None) -> bool:
        return not self.child.matches(payload, id)


class _Pred(_Node):
    """One positive predicate on a field: $eq, $in, a range or $exists true."""

    def __init__(self, path: str, op: str, operand: Any) -> None:
        self.path = path
        self.keys = tuple(path.split("."))
        self.op = op
        self.operand = operand

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        col = cols.column(self.path)
        if self.op == "$exists":
            return col.present.copy()
        if self.op == "$eq":
            return col.eq(self.operand)
        if self.op == "$in":
            return col.isin(self.operand)
        return col.range(self.op, self.operand)

    def matches(self, payload: Any, id: Any = None) -> bool:
        v = _resolve(payload, self.keys)
        if v is _MISSING:
            return False
        if self.op == "$exists":
            return True
        elems = _elements(v)
        if self.op == "$eq":
            return any(_json_eq(e, self.operand) for e in elems)
        if self.op == "$in":
            return any(_json_eq(e, x) for e in elems for x in self.operand)
        compare = _PY_COMPARE[self.op]
        return any(_is_number(e) and compare(e, self.operand) for e in elems)


class _ElemMatch(_Node):
    """One value of the field satisfies every range and is JSON-equal to none of ``nin``."""

    def __init__(self, path: str, ranges: list[tuple[str, int | float]], nin: list[Any] | None) -> None:
        self.path = path
        self.keys = tuple(path.split("."))
        self.ranges = ranges
        self.nin = nin

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        return cols.column(self.path).elem_match(self.ranges, self.nin)

    def _one(self, e: Any) -> bool:
        if self.ranges and not (_is_number(e) and all(_PY_COMPARE[op](e, b) for op, b in self.ranges)):
            return False
        return self.nin is None or not any(_json_eq(e, x) for x in self.nin)

    def matches(self, payload: Any, id: Any = None) -> bool:
        v = _resolve(payload, self.keys)
        return v is not _MISSING and any(self._one(e) for e in _elements(v))


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class _Ids(_Node):
    """The document's id is one of ``ids`` (ints and strings; ``1`` never equals ``"1"``);
    ``loc``: where the list is in the filter (``"$or[1].$ids"``), for messages."""

    def __init__(self, ids: list[Any], loc: str = "$ids", where: str = "filter") -> None:
        self.ids = ids
        self.loc = loc
        self.where = where  # "query_filter": loc is a place in a Qdrant filter (must_not[0].has_id)
        self._ints = {x for x in ids if isinstance(x, int)}
        self._strs = {x for x in ids if isinstance(x, str)}

    def _has(self, i: Any) -> bool:
        return i in self._strs if isinstance(i, str) else i in self._ints

    def mask(self, cols: PayloadColumns) -> np.ndarray:
        n = len(cols)
        if cols.locate is not None and len(self.ids) <= max(64, n // 8):
            # a few ids: look each one up (a binary search, about 1.3 us) instead of testing
            # every document's id, about 0.15 us each (9 ms per new filter at 60k documents;
            # lookups stay cheaper up to about n / 7 ids, helper-106)
            out = np.zeros(n, dtype=bool)
            for x in self.ids:
                if isinstance(x, int) and not _I64_MIN <= x <= _I64_MAX:
                    continue  # no stored id is outside int64
                d = cols.locate(x)
                if d is not None:
                    out[d] = True
            return out
        if cols.ids is None:
            raise FilterError("filter at $ids: these documents come without their ids")
        return np.fromiter(map(self._has, cols.ids), dtype=bool, count=len(cols.ids))

    def matches(self, payload: Any, id: Any = None) -> bool:
        if id is None:
            raise FilterError("filter at $ids: matches() needs the document's id (id=...)")
        return self._has(_plain(id, "$ids"))


# --------------------------------------------------------------------------- compiling


def _type_name(x: Any) -> str:
    """``x``'s type name, for messages; pandas' NA and NaT as the missing values they are,
    in the words used elsewhere ("got NAType" named no missing value, helper-160)."""
    name = type(x).__name__
    if name in ("NAType", "NaTType"):
        from ._validate import missing_value  # here: _validate imports this module

        return f"a missing value ({missing_value(x)})"
    return name


def _where(loc: str) -> str:
    return f"filter at {cut(loc)}" if loc else "filter"


def _join(loc: str, part: str) -> str:
    return f"{loc}.{part}" if loc else part


def _plain(x: Any, loc: str) -> Any:
    try:
        x = _numpy_scalar(x)
    except ValueError as e:
        raise FilterError(f"{_where(loc)}: {e}") from None
    if type(x) is int and _too_many_digits(x):
        # the filter's canonical JSON raised Python's own message (helper-129); a payload
        # cannot hold such an integer either
        raise FilterError(f"{_where(loc)}: the integer has too many digits to be written as text")
    return x


def _too_many_digits(v: int) -> bool:
    """Whether ``str(v)`` passes Python's limit on the digits of an integer's text."""
    if v.bit_length() <= 14_000:  # about 4,200 digits: beyond, ask Python
        return False
    try:
        str(v)
    except ValueError:
        return True
    return False


def _scalar(x: Any, loc: str) -> Any:
    x = _plain(x, loc)
    if isinstance(x, str) and _has_surrogate(x):
        raise FilterError(f"{_where(loc)}: the string holds a lone surrogate (not valid Unicode)")
    if isinstance(x, float) and not math.isfinite(x):
        raise FilterError(f"{_where(loc)}: expected a finite number, got {x!r}")
    if not _is_scalar(x):
        why = "for null, use None" if type(x).__name__ in ("NAType", "NaTType") else "only scalars can be compared"
        raise FilterError(
            f"{_where(loc)}: expected a scalar (null, bool, number or string), got "
            f"{_type_name(x)}; {why}"
        )
    return x


def _number(x: Any, loc: str) -> int | float:
    x = _plain(x, loc)
    if not _is_number(x):
        raise FilterError(f"{_where(loc)}: expected a number, got {_type_name(x)}")
    if isinstance(x, float) and not math.isfinite(x):
        raise FilterError(f"{_where(loc)}: expected a finite number, got {x!r}")
    return x


def _id(x: Any, loc: str) -> int | str:
    """An id of an ``$ids`` list, as a plain int or str; FilterError naming ``loc`` else."""
    x = _plain(x, loc)
    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise FilterError(f"{_where(loc)}: an id is an int or a str, got {_type_name(x)}")
    if isinstance(x, str) and _has_surrogate(x):
        raise FilterError(f"{_where(loc)}: the string holds a lone surrogate (not valid Unicode)")
    return x


class _PlacedIds(list):  # type: ignore[type-arg]
    """The id list of an ``$ids`` clause translated from a Qdrant ``has_id``, carrying where
    the ``has_id`` is in the Qdrant filter (``place``: ``"must_not[0].has_id"``): errors about
    its ids name that place, not the translation's (``$and[1].$not.$ids``, helper-160). It is
    a list, equal to the same ids in a plain list."""

    place: str | None = None

    def __init__(self, ids: Any = (), place: str | None = None) -> None:
        super().__init__(ids)
        self.place = place


def _check_path(path: Any, loc: str) -> str:
    if not isinstance(path, str):
        raise FilterError(f"{_where(loc)}: field names must be strings, got {_type_name(path)}")
    if _has_surrogate(path):
        raise FilterError(f"filter: the field name {shown(path)} holds a lone surrogate (not valid Unicode)")
    if path.startswith("$"):
        raise FilterError(
            f"{_where(loc)}: unknown logical operator {shown(path)} (known: {', '.join(_LOGICAL_OPS)})"
        )
    if path == "" or "" in path.split("."):
        raise FilterError(f"{_where(loc)}: invalid field path {shown(path)} (empty segment)")
    return path


def _compile(expr: Any, loc: str, depth: int = 1) -> tuple[_Node, dict[str, Any]]:
    """Validate ``expr``; return its tree and its canonical form."""
    if depth > MAX_DEPTH:
        raise FilterError(f"{_where(loc)}: the filter is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(expr, dict):
        # a qdrant_client model here is a Filter given to filter= (helper-140): say where it goes
        hint = ""
        if type(expr).__module__.startswith("qdrant_client"):
            hint = ("; a qdrant_client Filter goes to query_filter=" if type(expr).__name__ == "Filter"
                    else "; qdrant_client conditions go in a Filter, given to query_filter=")
        raise FilterError(f"{_where(loc)}: expected a dict, got {_type_name(expr)}{hint}")
    nodes: list[_Node] = []
    canon: dict[str, Any] = {}
    for key, value in expr.items():
        if isinstance(key, str) and key in ("$and", "$or"):
            here = _join(loc, key)
            if not isinstance(value, list) or not value:
                got = "an empty list" if isinstance(value, list) else _type_name(value)
                raise FilterError(f"{_where(here)}: expected a non-empty list, got {got}")
            parts = [_compile(f, f"{here}[{i}]", depth + 1) for i, f in enumerate(value)]
            children = [p[0] for p in parts]
            nodes.append(_And(children) if key == "$and" else _Or(children))
            canon[key] = [p[1] for p in parts]
        elif key == "$not":
            node, c = _compile(value, _join(loc, key), depth + 1)
            nodes.append(_Not(node))
            canon[key] = c
        elif key == "$ids":
            here = _join(loc, key)
            if isinstance(value, np.ndarray) and value.ndim == 1:
                value = list(value)
            if not isinstance(value, (list, tuple)):
                raise FilterError(f"{_where(here)}: expected a list of ids, got {_type_name(value)}")
            ids = [_id(x, f"{here}[{i}]") for i, x in enumerate(value)]
            # a Qdrant filter's has_id, translated, names its own place (sparsedex._qdrant)
            place = getattr(value, "place", None)
            nodes.append(_Ids(ids, here) if place is None else _Ids(ids, place, "query_filter"))
            canon[key] = ids
        else:
            path = _check_path(key, _join(loc, str(key)))
            node, c = _compile_field(path, value, _join(loc, path))
            nodes.append(node)
            canon[path] = c
    node = nodes[0] if len(nodes) == 1 else _And(nodes)
    return node, canon


def _compile_field(path: str, value: Any, loc: str) -> tuple[_Node, dict[str, Any]]:
    if not isinstance(value, dict):
        x = _scalar(value, loc)
        return _Pred(path, "$eq", x), {"$eq": x}
    if not value:
        raise FilterError(f"{_where(loc)}: empty operator dict (an equality with a dict is not supported)")
    nodes: list[_Node] = []
    canon: dict[str, Any] = {}
    for op, arg in value.items():
        if not (isinstance(op, str) and op.startswith("$")):
            raise FilterError(
                f"{_where(loc)}: {op!r} is not an operator; only scalars can be compared, "
                f"and nested fields are addressed by a dotted path ('{path}.{op}')"
            )
        here = _join(loc, op)
        if op in ("$eq", "$ne"):
            x = _scalar(arg, here)
            node: _Node = _Pred(path, "$eq", x)
            nodes.append(_Not(node) if op == "$ne" else node)
            canon[op] = x
        elif op in ("$in", "$nin"):
            if isinstance(arg, np.ndarray) and arg.ndim == 1:
                arg = list(arg)
            if not isinstance(arg, (list, tuple)):
                raise FilterError(f"{_where(here)}: expected a list, got {_type_name(arg)}")
            xs = [_scalar(x, f"{here}[{i}]") for i, x in enumerate(arg)]
            node = _Pred(path, "$in", xs)
            nodes.append(_Not(node) if op == "$nin" else node)
            canon[op] = xs
        elif op in _RANGE_OPS:
            b = _number(arg, here)
            nodes.append(_Pred(path, op, b))
            canon[op] = b
        elif op == "$elemMatch":
            if not isinstance(arg, dict) or not arg:
                raise FilterError(f"{_where(here)}: expected a non-empty dict of operators, got {_type_name(arg)}")
            ranges: list[tuple[str, int | float]] = []
            nin: list[Any] | None = None
            sub: dict[str, Any] = {}
            for op2, arg2 in arg.items():
                here2 = _join(here, str(op2))
                if op2 in _RANGE_OPS:
                    b = _number(arg2, here2)
                    ranges.append((op2, b))
                    sub[op2] = b
                elif op2 == "$nin":
                    if isinstance(arg2, np.ndarray) and arg2.ndim == 1:
                        arg2 = list(arg2)
                    if not isinstance(arg2, (list, tuple)):
                        raise FilterError(f"{_where(here2)}: expected a list, got {_type_name(arg2)}")
                    nin = [_scalar(x, f"{here2}[{i}]") for i, x in enumerate(arg2)]
                    sub[op2] = nin
                else:
                    raise FilterError(
                        f"{_where(here)}: operator {op2!r} is not allowed in $elemMatch "
                        "(allowed: $gt, $gte, $lt, $lte, $nin)"
                    )
            nodes.append(_ElemMatch(path, ranges, nin))
            canon[op] = sub
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"{_where(here)}: expected true or false, got {_type_name(arg)}")
            node = _Pred(path, "$exists", True)
            nodes.append(node if arg else _Not(node))
            canon[op] = arg
        else:
            raise FilterError(f"{_where(loc)}: unknown operator {shown(op, 60)} (known: {', '.join(_FIELD_OPS)})")
    return (nodes[0] if len(nodes) == 1 else _And(nodes)), canon


class Filter:
    """A validated filter expression; build it with :func:`compile_filter`."""

    __slots__ = ("_node", "_json", "_id_lists")

    def __init__(self, node: _Node, canonical: dict[str, Any]) -> None:
        self._node = node
        self._json = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=False)
        self._id_lists = list(_ids_nodes(node))  # the $ids clauses, for check_id_kind

    def check_id_kind(self, kind: type | None, whose: str = "the index's ids are") -> None:
        """Raise :class:`FilterError` naming the first id of an ``$ids`` clause that is not of
        ``kind`` (int or str: the type of the index's ids; None, an index without documents
        yet, checks nothing), or, where ``kind`` is int, outside the signed 64-bit range of
        integer ids: such an id could match no document (``1`` never equals ``"1"``), and a
        filter naming it matched nothing without a word (helper-155, helper-160)."""
        if kind is None:
            return
        for node in self._id_lists:
            for i, x in enumerate(node.ids):
                at = f"{node.where} at {cut(f'{node.loc}[{i}]')}"
                if not isinstance(x, kind):
                    got = "a str" if isinstance(x, str) else "an int"
                    raise FilterError(
                        f"{at}: id {shown(x)} is {got} but {whose} "
                        f"{'strings' if kind is str else 'ints'}: an id of the other kind matches no document"
                    )
                if isinstance(x, int) and not _I64_MIN <= x <= _I64_MAX:  # kind is int here
                    # it matched nothing without a word (helper-160), as an id of the other kind did
                    raise FilterError(
                        f"{at}: id {shown(x)} is outside the signed 64-bit range of integer ids "
                        "(-2**63 .. 2**63 - 1): no document can have it"
                    )

    def mask(self, columns: PayloadColumns) -> np.ndarray:
        """Boolean mask over the documents of ``columns``: True where the filter matches."""
        if not isinstance(columns, PayloadColumns):
            raise TypeError(f"expected PayloadColumns, got {_type_name(columns)}")
        return self._node.mask(columns)

    def matches(self, payload: dict[str, Any] | None, id: Any = None) -> bool:
        """Whether one payload matches (the reference semantics, in plain Python); ``id``:
        the document's id, needed by ``$ids`` only."""
        return self._node.matches(payload, id)

    def to_json(self) -> str:
        """Canonical JSON (shorthand expanded, keys sorted, no spaces): a cache key."""
        return self._json

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other._json == self._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"Filter({self._json})"


def _ids_nodes(node: _Node) -> Any:
    """The ``$ids`` clauses of a filter tree, in the filter's order."""
    if isinstance(node, _Ids):
        yield node
    elif isinstance(node, (_And, _Or)):
        for c in node.children:
            yield from _ids_nodes(c)
    elif isinstance(node, _Not):
        yield from _ids_nodes(node.child)


def compile_filter(expr: Any) -> Filter:
    """Validate a filter expression (a dict) into a :class:`Filter`; a Filter is returned as is.

    Raises :class:`FilterError` naming the offending part when ``expr`` is malformed.
    """
    if isinstance(expr, Filter):
        return expr
    node, canon = _compile(expr, "")
    return Filter(node, canon)


# --------------------------------------------------------------------------- payload check

_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(s: str) -> bool:
    return not s.isascii() and _SURROGATE.search(s) is not None


def _surrogate_note(s: str) -> str:
    m = _SURROGATE.search(s)
    assert m is not None
    return (
        f"the string holds a lone surrogate (U+{ord(m.group()):04X} at character {m.start()}), "
        "which is not valid Unicode and cannot be stored"
    )


class PayloadError(SparsedexError, ValueError):
    """A payload value that cannot be stored exactly: ``path`` is where (``"a.b[2]"``, ``""``
    for the payload itself) and ``problem`` what is wrong; ``str()`` names the document."""

    def __init__(self, label: str, path: str, problem: str, prefix: str = "") -> None:
        self.label = label
        self.path = path
        self.problem = problem
        self.prefix = prefix
        at = f" at {cut(path)}" if path else ""
        super().__init__(f"{prefix}payload of {label}{at}: {problem}")

    def __reduce__(self) -> Any:  # pickles whole (across processes: Ray, multiprocessing)
        return (type(self), (self.label, self.path, self.problem, self.prefix))


class _Problem(Exception):
    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem


def normalize_payload(payload: Any, row: int | str) -> dict[str, Any] | None:
    """The copy of ``payload`` that an index stores, or :class:`PayloadError` (a ValueError).

    ``row`` names the document in messages (an int: ``"document 3"``; a string is used as
    is). The rules are in the module docstring ("Payloads: what is stored"): JSON values
    exactly, numpy scalars as the Python value equal to them, anything else refused.
    """
    label = f"document {row}" if isinstance(row, int) else str(row)
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise PayloadError(label, "", f"expected a dict or None, got {_type_name(payload)}")
    try:
        return _plain_dict(payload, "", 1)
    except _Problem as e:
        raise PayloadError(label, e.path, e.problem) from None


def _plain_dict(d: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _Problem(path, f"nested more than {MAX_DEPTH} levels deep")
    out: dict[str, Any] = {}
    for k, x in d.items():
        if not isinstance(k, str):
            kind = _type_name(k)  # pandas' NA / NaT: "a missing value (pandas' <NA>)" shows it once
            raise _Problem(path, f"keys must be strings, got {kind}"
                                 + ("" if kind.startswith("a missing value") else f" {shown(k)}"))
        here = f"{path}.{k}" if path else k
        if _has_surrogate(k):
            raise _Problem(path, f"key {shown(k)}: " + _surrogate_note(k))
        out[str(k)] = _plain_value(x, here, depth)
    return out


def _plain_value(v: Any, path: str, depth: int) -> Any:
    if v is None or v is True or v is False:
        return v
    t = type(v)
    if t is str:
        if _has_surrogate(v):
            raise _Problem(path, _surrogate_note(v))
        return v
    if t is int:
        if _too_many_digits(v):
            raise _Problem(path, "the integer has too many digits to be written as text")
        return v
    if t is float:
        if not math.isfinite(v):
            raise _Problem(path, f"expected a finite number, got {v!r}")
        return v
    if t is dict or (isinstance(v, Mapping) and not isinstance(v, np.ndarray)):
        return _plain_dict(v, path, depth + 1)
    if t is list:
        if depth + 1 > MAX_DEPTH:
            raise _Problem(path, f"nested more than {MAX_DEPTH} levels deep")
        return [_plain_value(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
    if isinstance(v, (np.datetime64, np.timedelta64)) and np.isnat(v):  # as pandas' NaT is named
        # ("datetime64 is not a JSON value" named no missing value; timedelta64's was int()'s TypeError)
        from ._validate import missing_value  # here: _validate imports this module

        raise _Problem(path, f"a missing value ({missing_value(v)}) is not a JSON value (for null, store None)")
    if isinstance(v, np.generic):
        try:
            return _plain_value(_numpy_scalar(v), path, depth)
        except ValueError as e:
            raise _Problem(path, str(e)) from None
    if isinstance(v, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(v)
    if isinstance(v, str):  # str subclasses: the plain string equal to it
        return _plain_value(str(v), path, depth)
    if isinstance(v, int):  # int subclasses (IntEnum, ...): the plain int equal to it
        return _plain_value(int(v), path, depth)
    if isinstance(v, float):
        return _plain_value(float(v), path, depth)
    if isinstance(v, np.ndarray):
        raise _Problem(path, "a numpy array is not a JSON value (pass .tolist() to store a list)")
    if isinstance(v, (tuple, set, frozenset)):
        raise _Problem(path, f"{_type_name(v)} is not a JSON value (JSON would store a list: pass a list)")
    if type(v).__name__ in ("NAType", "NaTType"):  # pandas' NA: None stores null (helper-160)
        raise _Problem(path, f"{_type_name(v)} is not a JSON value (for null, store None)")
    raise _Problem(path, f"{_type_name(v)} is not a JSON value")


def check_payload_value(payload: dict[str, Any] | None, row: int) -> None:
    """Raise :class:`ValueError` naming document ``row`` and the field path when ``payload``
    cannot be stored exactly (see :func:`normalize_payload`, which returns the stored copy)."""
    normalize_payload(payload, row)
