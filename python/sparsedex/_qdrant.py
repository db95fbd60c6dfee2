"""Qdrant-shaped search: ``limit``, ``with_payload``, ``with_vectors``, ``query_filter``,
``score_threshold``, and Qdrant's IDF modifier for ``Qdrant/bm25`` indexes.

:meth:`SparseIndex.search <sparsedex.SparseIndex.search>` takes the keywords of
``QdrantClient.search`` / ``query_points``; this module turns them into what the engine runs.

Filters
-------
``query_filter`` is a ``qdrant_client.models.Filter`` or the same structure as a dict (the
REST JSON: ``{"must": [{"key": "year", "range": {"gte": 1990}}]}``). It is *translated* into
a :mod:`sparsedex.filters` expression, so it is applied inside the traversal like any filter
(the hits are the true top-k of the matching documents). What translates, and to what:

=============================================  =============================================
Qdrant                                         sparsedex filter
=============================================  =============================================
``Filter(must=[a, b])``                        ``{"$and": [a, b]}``
``Filter(should=[a, b])`` (``[]``: no limit)   ``{"$or": [a, b]}``
``Filter(must_not=[a, b])``                    ``{"$and": [{"$not": a}, {"$not": b}]}``
``min_should=MinShould(conditions, min_count)`` ``$or`` of the ``$and`` of each combination
                                               (at most 256 combinations)
a ``Filter`` as a condition                    its translation, nested
``FieldCondition(key, match=MatchValue(v))``   ``{key: {"$eq": v}}`` (``v``: str, int, bool)
``FieldCondition(key, match=MatchAny(any))``   ``{key: {"$in": any}}``
``FieldCondition(key, match=MatchExcept(x))``  ``{key: {"$elemMatch": {"$nin": x + [None]}}}``
``FieldCondition(key, range=Range(gte=a))``    ``{key: {"$gte": a}}``
``Range`` with several bounds                  ``{key: {"$elemMatch": {"$gte": a, "$lt": b}}}``
``FieldCondition(key, is_null=True)``,         ``{key: {"$eq": None}}``
``IsNullCondition(is_null=PayloadField(key))``
``HasIdCondition(has_id=[...])``               ``{"$ids": [...]}``
=============================================  =============================================

These have the semantics of Qdrant (as qdrant-client's local mode implements them, which the
tests compare against on random payloads): a condition on an array matches when any element
does; a range needs one element within all its bounds; ``except`` needs one non-null value
outside the list (a missing field, ``null`` and ``[]`` do not match). One difference:
sparsedex compares JSON numbers by value, so ``MatchValue(3)`` also matches a payload value
``3.0``, which Qdrant (integers only) does not.

Not translatable, each a :class:`~sparsedex.filters.FilterError` naming the condition and
where it is (``query_filter.must[1]``): full-text, phrase, prefix and substring matches
(``MatchText``, ``MatchTextAny``, ``MatchPhrase``, ``MatchPrefix``, ``MatchSubstring``),
``DatetimeRange``, geo conditions, ``values_count``, ``is_empty``, ``NestedCondition``,
``HasVectorCondition``, ``SliceCondition``, and keys with array syntax (``a[].b``, ``a[0]``).
Other errors name their place in the Qdrant filter too: a value sparsedex refuses (a string
with a lone surrogate, pandas' NA), or, at search, a ``has_id`` id of the other kind than the
index's ids (``query_filter at must_not[0].has_id[0]: id '1' is a str but the index's ids are
ints: ...``).

Scores
------
Scores are the dot products Qdrant computes when the index is built with
``quantization="float"`` (f32 weights; ``"u8"`` rounds document weights to 8 bits). An index
whose encoder is ``"Qdrant/bm25"`` applies IDF to every query (text or vector) as a Qdrant
collection with ``Modifier.IDF`` does: ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` over the
live documents.
"""

from __future__ import annotations

import datetime
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _validate
from . import filters as _filters
from .filters import Filter, FilterError, compile_filter
from .vectors import SparseEmbedding

__all__ = ["SearchOptions", "translate_filter", "select_payload", "apply_idf", "collection_df"]

_FILTER_KEYS = ("must", "should", "must_not", "min_should")
_MATCH_UNSUPPORTED = {
    "text": "MatchText (full-text match)",
    "text_any": "MatchTextAny (full-text match)",
    "phrase": "MatchPhrase (phrase match)",
    "prefix": "MatchPrefix (prefix match)",
    "substring": "MatchSubstring (substring match)",
}
_FIELD_UNSUPPORTED = {
    "geo_bounding_box": "a geo bounding box condition",
    "geo_radius": "a geo radius condition",
    "geo_polygon": "a geo polygon condition",
    "values_count": "a values_count condition",
    "is_empty": "an is_empty condition",
}
_OTHER_UNSUPPORTED = {
    "is_empty": "IsEmptyCondition",
    "nested": "NestedCondition",
    "has_vector": "HasVectorCondition",
    "slice": "SliceCondition",
}
_MAX_COMBINATIONS = 256


def _where(loc: str) -> str:
    return f"query_filter at {loc}" if loc else "query_filter"


def _checked(check: Callable[[Any, str], Any], x: Any, loc: str) -> Any:
    """``check(x, loc)``, a check of :mod:`sparsedex.filters`, its error naming ``loc`` in the
    Qdrant filter: left to the compiling of the translation, the error named the translation's
    place (``filter at $and[1].$not.$ids[0]`` for ``must_not[0].has_id[0]``, helper-160)."""
    try:
        return check(x, loc)
    except FilterError as e:
        raise FilterError(f"query_{e}") from None  # its messages begin "filter at <loc>"


def _item(x: Any, loc: str) -> Any:
    """Numpy scalar ``x`` as its Python value (``x`` itself else); numpy's NaT, whose value is
    None (read "got a NoneType", as if null were given, helper-163), a FilterError naming it."""
    if isinstance(x, (np.datetime64, np.timedelta64)) and np.isnat(x):
        raise FilterError(f"{_where(loc)}: got a missing value ({_validate.missing_value(x)}), not a value to compare")
    return x.item() if isinstance(x, np.generic) else x


def _plain(obj: Any) -> Any:
    """A qdrant-client model as its REST JSON (aliases, no unset fields); else ``obj``."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump) and type(obj).__module__.startswith("qdrant_client"):
        return dump(by_alias=True, exclude_none=True)
    return obj


def _untranslatable(loc: str, what: str, why: str = "") -> FilterError:
    tail = f": {why}" if why else ""
    return FilterError(
        f"{_where(loc)}: {what} cannot be translated into a sparsedex filter{tail} "
        "(translatable: must / should / must_not / min_should, nested filters, match value / any / "
        "except, range, is_null, has_id)"
    )


def translate_filter(query_filter: Any) -> dict[str, Any]:
    """The :mod:`sparsedex.filters` expression of a Qdrant filter (a ``models.Filter`` or its
    dict form). Raises :class:`~sparsedex.filters.FilterError` for what does not translate
    (see the module docstring), naming the condition and its place."""
    return _filter(_plain(query_filter), "")


def _as_list(x: Any, loc: str) -> list[Any]:
    x = _plain(x)
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, Mapping) or hasattr(x, "model_dump"):
        return [x]
    raise FilterError(f"{_where(loc)}: expected a condition or a list of conditions, got {type(x).__name__}")


def _filter(f: Any, loc: str) -> dict[str, Any]:
    if not isinstance(f, Mapping):
        raise FilterError(f"{_where(loc)}: expected a Filter or a dict, got {type(f).__name__}")
    unknown = [k for k in f if k not in _FILTER_KEYS]
    if unknown:
        raise FilterError(
            f"{_where(loc)}: unknown key(s) {', '.join(map(repr, unknown))} of a Qdrant filter "
            f"(known: {', '.join(_FILTER_KEYS)}); a sparsedex filter goes in filter=, not query_filter="
        )
    parts: list[dict[str, Any]] = []
    if f.get("must") is not None:
        parts += [_condition(c, f"{_join(loc, 'must')}[{i}]") for i, c in enumerate(_as_list(f["must"], _join(loc, "must")))]
    if f.get("must_not") is not None:
        parts += [
            {"$not": _condition(c, f"{_join(loc, 'must_not')}[{i}]")}
            for i, c in enumerate(_as_list(f["must_not"], _join(loc, "must_not")))
        ]
    if f.get("should") is not None:
        should = [
            _condition(c, f"{_join(loc, 'should')}[{i}]")
            for i, c in enumerate(_as_list(f["should"], _join(loc, "should")))
        ]
        if should:  # Qdrant: an empty should states no alternative, it does not limit
            parts.append(should[0] if len(should) == 1 else {"$or": should})
    if f.get("min_should") is not None:
        parts.append(_min_should(_plain(f["min_should"]), _join(loc, "min_should")))
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _join(loc: str, part: str) -> str:
    return f"{loc}.{part}" if loc else part


def _min_should(ms: Any, loc: str) -> dict[str, Any]:
    if not isinstance(ms, Mapping) or "conditions" not in ms or "min_count" not in ms:
        raise FilterError(f"{_where(loc)}: expected {{'conditions': [...], 'min_count': n}}")
    conds = [_condition(c, f"{loc}.conditions[{i}]") for i, c in enumerate(_as_list(ms["conditions"], loc))]
    n = ms["min_count"]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FilterError(f"{_where(loc)}: min_count must be an integer >= 1, got {n!r}")
    n = int(n)
    if n > len(conds):
        return {"$ids": []}  # never satisfiable: matches nothing, as in Qdrant
    combos = math.comb(len(conds), n)
    if combos > _MAX_COMBINATIONS:
        raise _untranslatable(loc, f"min_should with min_count={n} of {len(conds)} conditions",
                              f"{combos} combinations (at most {_MAX_COMBINATIONS})")
    alts = [c[0] if n == 1 else {"$and": list(c)} for c in itertools.combinations(conds, n)]
    return alts[0] if len(alts) == 1 else {"$or": alts}


_ARRAY_SYNTAX = re.compile(r"[\[\]\"]")


def _key(key: Any, loc: str) -> str:
    if not isinstance(key, str) or not key:
        raise FilterError(f"{_where(loc)}: key must be a non-empty string, got {key!r}")
    if _ARRAY_SYNTAX.search(key):
        raise _untranslatable(loc, f"key {key!r}", "array paths ([] and [i]) and quoted keys are not supported; "
                              "a condition on an array field already matches when any element does")
    if key.startswith("$"):  # the filters' message spoke of logical operators (helper-160)
        raise _untranslatable(loc, f"key {key!r}", "a sparsedex filter cannot address a key beginning with $")
    return _checked(_filters._check_path, key, loc)


def _condition(c: Any, loc: str) -> dict[str, Any]:
    c = _plain(c)
    if not isinstance(c, Mapping):
        raise FilterError(f"{_where(loc)}: expected a condition, got {type(c).__name__}")
    if not c or any(k in c for k in _FILTER_KEYS):
        return _filter(c, loc)
    if "key" in c:
        return _field(c, loc)
    if "has_id" in c:
        ids = c["has_id"]
        if isinstance(ids, np.ndarray) and ids.ndim == 1:  # as sparsedex's $ids takes one
            ids = list(ids)
        if not isinstance(ids, (list, tuple)):
            raise FilterError(f"{_where(loc)}: has_id must be a list of ids, got {type(ids).__name__}")
        out = []
        for i, x in enumerate(ids):
            x = _item(x, f"{loc}.has_id[{i}]")
            if type(x).__name__ == "UUID":
                x = str(x)
            out.append(_checked(_filters._id, x, f"{loc}.has_id[{i}]"))
        # its errors at search (an id of the other kind) name this place, not the translation's
        return {"$ids": _filters._PlacedIds(out, f"{loc}.has_id")}
    if "is_null" in c:
        field = _plain(c["is_null"])
        key = field.get("key") if isinstance(field, Mapping) else None
        return {_key(key, f"{loc}.is_null"): {"$eq": None}}
    for k, name in _OTHER_UNSUPPORTED.items():
        if k in c:
            raise _untranslatable(loc, name)
    raise FilterError(f"{_where(loc)}: not a Qdrant condition (keys: {', '.join(map(str, c))})")


def _field(c: Mapping[str, Any], loc: str) -> dict[str, Any]:
    key = _key(c["key"], loc)
    given = [k for k in c if k != "key" and c[k] is not None]
    for k in given:
        if k in _FIELD_UNSUPPORTED:
            raise _untranslatable(loc, f"{_FIELD_UNSUPPORTED[k]} on {key!r}")
        if k not in ("match", "range", "is_null"):
            raise FilterError(f"{_where(loc)}: unknown field condition {k!r} on {key!r}")
    if len(given) != 1:
        raise FilterError(
            f"{_where(loc)}: a field condition on {key!r} needs exactly one of match, range, is_null "
            f"(got {', '.join(given) or 'none'})"
        )
    kind = given[0]
    if kind == "is_null":
        if not isinstance(c["is_null"], bool):
            raise FilterError(f"{_where(loc)}: is_null must be true or false")
        node = {key: {"$eq": None}}
        return node if c["is_null"] else {"$not": node}
    if kind == "range":
        return _range(key, _plain(c["range"]), f"{loc}.range")
    return _match(key, _plain(c["match"]), f"{loc}.match")


def _operand(x: Any, loc: str, key: str) -> Any:
    x = _item(x, loc)
    if isinstance(x, float):
        raise FilterError(
            f"{_where(loc)}: {x!r} on {key!r}: Qdrant matches str, int and bool values exactly "
            "(a float is a range: range=Range(gte=x, lte=x))"
        )
    if not isinstance(x, (str, int)):  # bool is an int
        raise FilterError(f"{_where(loc)}: match values are str, int or bool, got {_filters._type_name(x)}")
    return _checked(_filters._scalar, x, loc)


def _match(key: str, m: Any, loc: str) -> dict[str, Any]:
    if not isinstance(m, Mapping) or len(m) != 1:
        raise FilterError(f"{_where(loc)}: expected one of value / any / except, got {m!r}")
    ((kind, arg),) = m.items()
    if kind in _MATCH_UNSUPPORTED:
        raise _untranslatable(loc, f"{_MATCH_UNSUPPORTED[kind]} on {key!r}",
                              "sparsedex filters compare whole values")
    if kind == "value":
        return {key: {"$eq": _operand(arg, loc, key)}}
    if kind in ("any", "except", "except_"):
        if not isinstance(arg, (list, tuple, np.ndarray)):
            raise FilterError(f"{_where(loc)}: {kind} expects a list, got {type(arg).__name__}")
        xs = [_operand(x, f"{loc}.{kind}[{i}]", key) for i, x in enumerate(list(arg))]
        if kind == "any":
            return {key: {"$in": xs}}
        return {key: {"$elemMatch": {"$nin": xs + [None]}}}  # one non-null value outside the list
    raise FilterError(f"{_where(loc)}: unknown match {kind!r} on {key!r} (known: value, any, except)")


def _range(key: str, r: Any, loc: str) -> dict[str, Any]:
    if not isinstance(r, Mapping):
        raise FilterError(f"{_where(loc)}: expected a Range, got {type(r).__name__}")
    unknown = [k for k in r if k not in ("gt", "gte", "lt", "lte")]
    if unknown:
        raise FilterError(f"{_where(loc)}: unknown range bound(s) {unknown} (known: gt, gte, lt, lte)")
    bounds: dict[str, Any] = {}
    for k in ("gt", "gte", "lt", "lte"):
        v = r.get(k)
        if v is None:
            continue
        v = _item(v, f"{loc}.{k}")
        if type(v).__name__ in ("NAType", "NaTType"):
            raise FilterError(f"{_where(loc)}: the {k} bound of a range on {key!r} is "
                              f"{_filters._type_name(v)}, not a number")
        if isinstance(v, (str, datetime.date, np.datetime64)):  # a DatetimeRange's bound
            raise _untranslatable(loc, f"a range on {key!r} with a {type(v).__name__} bound",
                                  "DatetimeRange is not supported; bounds are numbers")
        if isinstance(v, bool) or not isinstance(v, (int, float)):  # a list, a dict...: no DatetimeRange's
            raise FilterError(f"{_where(loc)}: the {k} bound of a range on {key!r} must be a number, "
                              f"got {_validate.a_type(v)}")
        if isinstance(v, float) and not math.isfinite(v):  # an int is exact (10**400 overflowed isfinite)
            raise FilterError(f"{_where(loc)}: the {k} bound of a range on {key!r} must be a finite number, got {v!r}")
        bounds["$" + k] = _checked(_filters._number, v, f"{loc}.{k}")
    if not bounds:
        raise FilterError(f"{_where(loc)}: a range on {key!r} needs at least one bound")
    if len(bounds) == 1:
        return {key: bounds}
    return {key: {"$elemMatch": bounds}}  # one value within all the bounds, as Qdrant


# search options -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchOptions:
    """The Qdrant-shaped keywords of a search, checked once."""

    k: int
    filter: Filter | None
    with_payload: Any
    with_vectors: bool
    score_threshold: float | None

    @classmethod
    def resolve(
        cls,
        *,
        k: Any,
        limit: Any,
        filter: Any,
        query_filter: Any,
        with_payload: Any,
        with_vectors: Any,
        score_threshold: Any,
    ) -> "SearchOptions":
        if limit is not None:
            if k is not None and k != 10 and k != limit:
                raise ValueError(f"pass k or limit (its Qdrant name), not both: k={k!r}, limit={limit!r}")
            k = limit
        elif k is None:
            k = 10
        exprs = []
        if filter is not None:
            exprs.append(compile_filter(filter))
        translated = None
        if query_filter is not None:
            translated = translate_filter(query_filter)
            exprs.append(compile_filter(translated))
        if len(exprs) == 2:
            flt: Filter | None = compile_filter({"$and": [_expr_of(exprs[0]), translated]})
            # the $ids checks at search name each filter's own places: filter='s "$ids[0]", not
            # the combination's "$and[0].$ids[0]" (helper-161), and query_filter's has_id places
            flt._id_lists = exprs[0]._id_lists + exprs[1]._id_lists
        else:
            flt = exprs[0] if exprs else None
        if not isinstance(with_vectors, (bool, np.bool_)):
            raise TypeError(
                f"with_vectors must be True or False, got {with_vectors!r} (a sparsedex index holds one "
                "vector per document, there are no named vectors to choose from)"
            )
        thr = None
        if score_threshold is not None:
            if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float, np.number)):
                raise TypeError(f"score_threshold must be a number, got {type(score_threshold).__name__}")
            thr = float(score_threshold)
            if math.isnan(thr):
                raise ValueError("score_threshold is NaN")
        return cls(k, flt, _check_selector(with_payload), bool(with_vectors), thr)

    def keep(self, score: float) -> bool:
        """Qdrant's rule: hits scoring strictly above the threshold (the server's "scores better
        than this threshold"; qdrant-client's local mode agrees since qdrant/qdrant-client#1387)."""
        return self.score_threshold is None or score > self.score_threshold

    def payload(self, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        return select_payload(payload, self.with_payload)

    @property
    def wants_payload(self) -> bool:
        """Whether hits carry payloads at all (``with_payload=False``: none is read)."""
        return self.with_payload is not False


def _expr_of(f: Filter) -> Any:
    import json

    return json.loads(f.to_json())


def _payload_key(key: Any) -> str:
    if not isinstance(key, str) or not key or _ARRAY_SYNTAX.search(key) or "" in key.split("."):
        raise ValueError(
            f"with_payload: {key!r} is not a payload key (a non-empty dotted path such as 'meta.lang'; "
            "array paths like 'a[].b' are not supported)"
        )
    return key


def _check_selector(sel: Any) -> Any:
    sel = _plain(sel)
    if isinstance(sel, (bool, np.bool_)):
        return bool(sel)
    if isinstance(sel, str):  # Qdrant takes a bool, a list or a selector, not a bare key
        raise TypeError(
            f"with_payload={sel!r}: a bare string is not a payload selector; pass a list of keys "
            f"([{sel!r}]), True, False, or PayloadSelectorInclude / PayloadSelectorExclude"
        )
    if isinstance(sel, (list, tuple)):
        return {"include": [_payload_key(k) for k in sel]}
    if isinstance(sel, Mapping) and len(sel) == 1 and next(iter(sel)) in ("include", "exclude"):
        ((kind, keys),) = sel.items()
        if isinstance(keys, str) or not isinstance(keys, (list, tuple)):
            raise TypeError(f"with_payload {kind} must be a list of keys")
        return {kind: [_payload_key(k) for k in keys]}
    # the dict forms are accepted above: say what was wrong with this one (helper-134: the
    # message said dicts were not taken at all)
    if isinstance(sel, Mapping):
        got = f"a dict with keys {', '.join(sorted(map(repr, sel))[:3])}" if sel else "an empty dict"
    else:
        got = type(sel).__name__
    raise TypeError(
        "with_payload must be True, False, a list of keys, {'include': [keys]}, {'exclude': [keys]}, "
        f"or PayloadSelectorInclude / PayloadSelectorExclude, got {got}"
    )


def select_payload(payload: dict[str, Any] | None, selector: Any) -> dict[str, Any] | None:
    """``payload`` as ``with_payload`` asks: all (True), none (False: None), or only / all but
    the dotted keys of an ``{"include": [...]}`` / ``{"exclude": [...]}`` selector."""
    if selector is True or payload is None:
        return payload
    if selector is False:
        return None
    if "include" in selector:
        out: dict[str, Any] = {}
        for key in selector["include"]:
            _copy_path(payload, out, key.split("."))
        return out
    out = _deep_copy_dicts(payload)
    for key in selector["exclude"]:
        _drop_path(out, key.split("."))
    return out


def _copy_path(src: dict[str, Any], dst: dict[str, Any], keys: list[str]) -> None:
    head, rest = keys[0], keys[1:]
    if head not in src:
        return
    if not rest:
        dst[head] = src[head]
        return
    if isinstance(src[head], dict):
        sub = dst.get(head)
        if not isinstance(sub, dict):
            sub = dst[head] = {}
        _copy_path(src[head], sub, rest)


def _deep_copy_dicts(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy_dicts(v) if isinstance(v, dict) else v for k, v in d.items()}


def _drop_path(d: dict[str, Any], keys: list[str]) -> None:
    head, rest = keys[0], keys[1:]
    if head not in d:
        return
    if not rest:
        del d[head]
    elif isinstance(d[head], dict):
        _drop_path(d[head], rest)


# IDF modifier ---------------------------------------------------------------------------------
def requires_idf(encoder: Any) -> bool:
    """Whether an index with this encoder applies IDF at query time (Qdrant/bm25)."""
    return getattr(encoder, "kind", None) == "fastembed-bm25" or bool(getattr(encoder, "requires_idf", False))


def collection_df(vectors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Document frequencies over live documents: ``(terms, df, n_live)``, ``terms`` sorted.

    ``vectors``: per segment ``(indptr, indices, values, live)`` with ``live`` a boolean mask
    over its documents (None: all live). A term counts in a document that stores it (as
    Qdrant counts the indices of a sparse vector).
    """
    parts = []
    n_live = 0
    for indptr, indices, values, live in vectors:
        indptr = np.asarray(indptr, dtype=np.int64)
        n = len(indptr) - 1
        idx = np.asarray(indices, dtype=np.uint32)
        if live is not None:
            idx = idx[np.repeat(np.asarray(live, dtype=bool), np.diff(indptr))]
            n_live += int(np.count_nonzero(live))
        else:
            n_live += n
        parts.append(idx)
    allt = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    terms, df = np.unique(allt, return_counts=True)
    return terms, df.astype(np.int64), n_live


def apply_idf(q: SparseEmbedding, terms: np.ndarray, df: np.ndarray, n_live: int) -> SparseEmbedding:
    """Query weights times Qdrant's IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``; terms no live
    document holds are dropped (they score nothing)."""
    idx = np.asarray(q.indices, dtype=np.uint32)
    pos = np.searchsorted(terms, idx)
    pos_c = np.minimum(pos, max(len(terms) - 1, 0))
    found = (pos < len(terms)) & (terms[pos_c] == idx) if len(terms) else np.zeros(idx.shape, bool)
    d = df[pos_c[found]].astype(np.float64)
    idf = np.log((n_live - d + 0.5) / (d + 0.5) + 1.0)
    w = idf * np.asarray(q.values, dtype=np.float64)[found]
    return SparseEmbedding(indices=idx[found], values=w.astype(np.float32))


def idf_query(index: Any, q: SparseEmbedding, snap: Any) -> SparseEmbedding:
    """``q`` with Qdrant's IDF applied from the live documents of snapshot ``snap``: the
    engine counts each query term's live document frequency (one lookup per term and
    segment, a postings scan where a segment has deletions), so a query costs what its terms
    cost, whatever the collection's size."""
    idx = np.unique(np.asarray(q.indices, dtype=np.uint32))
    n_live, df = snap.core.live_df(idx)
    keep = df > 0
    return apply_idf(q, idx[keep], np.asarray(df, dtype=np.int64)[keep], int(n_live))
