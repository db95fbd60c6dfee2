"""Hybrid search: fuse ranked lists from any retrievers into one ranking.

Two methods, over any number of *runs* (ranked lists, best first): sparsedex hits, a dense
retriever's results, BM25's, Qdrant ``ScoredPoint`` lists, ...

- :func:`reciprocal_rank_fusion` (RRF; Cormack, Clarke & Büttcher, SIGIR 2009, "Reciprocal
  Rank Fusion outperforms Condorcet and individual Rank Learning Methods"): a document's
  score is ``sum_i w_i / (k + rank_i)`` over the runs that hold it, ``rank_i`` counted from 1,
  ``k = 60`` as in the paper. Only the order of each run matters.
- :func:`distribution_based_score_fusion` (DBSF, as Qdrant defines it): each run's scores are
  mapped to ``(s - (mean - 3 std)) / (6 std)`` (``mean`` and sample ``std`` of that run's
  scores; a run of one score, or of equal scores, maps to 0.5; values outside
  ``mean ± 3 std`` are not clipped), and a document's score is ``sum_i w_i * s_i`` over the
  runs that hold it. Scores must be "higher is better" (negate distances first).

What a run may hold, item by item: an object with ``.id`` and ``.score`` (a sparsedex
:class:`~sparsedex.Hit`, a Qdrant ``ScoredPoint``; its ``.payload``, if any, is carried
over), an ``(id, score)`` pair, or, for RRF only, a bare id. A ``{id: score}`` mapping is a
run too (ranked by score, highest first). Ids are compared after turning numpy scalars into
Python ones (``np.int64(3)`` and ``3`` are the same document); an id may appear once per run.

The result is a list of :class:`~sparsedex.Hit` (``id``, fused ``score``, and the ``payload``
of the first item met for that id that has one; a sparsedex ``Hit`` keeps its other fields),
best first.
Ties (equal fused scores) keep the order in which the documents were first met, reading the
runs in the order given, each best first: the first run breaks ties. Deterministic, and
independent of how ids compare or hash.

Relation to Qdrant's ``FusionQuery``: Qdrant's RRF scores ``1 / (k_qdrant + rank - 1)``
(default ``k_qdrant = 2``), which is this RRF with ``k = k_qdrant - 1`` (so ``k=1``
reproduces Qdrant's default RRF scores; weights are applied differently). Qdrant's DBSF is the
same normalisation, computed in float32 with Welford's method; here in float64, so fused
scores agree to about 1e-6.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

import numpy as np

from ._validate import MAX_K, a_type, check_int, shown
from .index import Hit, batch_queries

__all__ = [
    "reciprocal_rank_fusion",
    "distribution_based_score_fusion",
    "fuse",
    "hybrid_search",
    "hybrid_search_batch",
    "rrf",
    "dbsf",
    "METHODS",
]

#: Names accepted by :func:`fuse`.
METHODS = ("rrf", "dbsf")


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


class _Item:
    __slots__ = ("id", "score", "source")

    def __init__(self, id: Any, score: float | None, source: Any) -> None:
        self.id = id
        self.score = score
        self.source = source


def _item(x: Any, run: int, pos: int, need_score: bool) -> _Item:
    if hasattr(x, "id") and hasattr(x, "score") and not isinstance(x, (tuple, list, str, bytes)):
        return _Item(_plain(x.id), _score(x.score, run, pos), x)
    if isinstance(x, tuple) and len(x) == 2:
        return _Item(_plain(x[0]), _score(x[1], run, pos), None)
    if isinstance(x, (list, tuple, Mapping, set)) or (hasattr(x, "__len__") and not isinstance(x, (str, bytes))):
        raise TypeError(
            f"run {run}, item {pos} is {a_type(x)}: an item is a hit (.id, .score), an "
            "(id, score) pair or an id; pass the runs as a list of ranked lists"
        )
    if need_score:
        raise ValueError(
            f"run {run}, item {pos} is a bare id ({shown(x)}): distribution-based fusion needs scores "
            "(hits or (id, score) pairs)"
        )
    return _Item(_plain(x), None, None)


def _number(x: Any) -> bool:
    """Whether ``x`` is a real number (Python's, numpy's, a Fraction or Decimal; not a bool,
    nor a string that float() would read)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:  # a 0-d array, as float() takes it
        return x.dtype.kind in "iuf"
    return isinstance(x, (numbers.Real, decimal.Decimal)) and not isinstance(x, (bool, np.bool_))


def _as_float(x: Any, what: str) -> float:
    """``float(x)`` of a number :func:`_number` accepted; ValueError naming ``what`` for one
    beyond float's range (an int of 400 digits raised a bare OverflowError, helper-130)."""
    try:
        return float(x)
    except OverflowError:
        raise ValueError(f"{what} {shown(x)} is beyond the range of a float") from None


def _score(s: Any, run: int, pos: int) -> float:
    if not _number(s):  # "1.0" and True were taken as 1.0 (helper-129)
        raise TypeError(f"run {run}, item {pos}: score {shown(s)} is not a number")
    v = _as_float(s, f"run {run}, item {pos}: score")
    if math.isnan(v):
        raise ValueError(f"run {run}, item {pos}: score is NaN")
    return v


def _looks_like_a_pair(run: Any) -> bool:
    """Whether a "run" is a (docid, score) pair: one run passed without its outer list, whose
    pairs would each be taken as a run, and the scores as documents (review34, breaker34b): two
    items, the second a number, and the first a str or the second a float (ids are ints or
    strs; two ints stay a run of two bare ids)."""
    if not isinstance(run, (tuple, list)) or len(run) != 2:
        return False
    a, b = run
    return _number(b) and (isinstance(a, str) or isinstance(b, (float, np.floating)))


def _runs(runs: Iterable[Any], need_score: bool) -> list[list[_Item]]:
    if isinstance(runs, (str, bytes, Mapping)) or not isinstance(runs, Iterable):
        raise TypeError(f"runs must be a list of ranked lists, got {type(runs).__name__}")
    out: list[list[_Item]] = []
    for r, run in enumerate(runs):
        if isinstance(run, Mapping):
            pairs = list(run.items())
            order = sorted(range(len(pairs)), key=lambda i: -_score(pairs[i][1], r, i))
            items = [_Item(_plain(pairs[i][0]), _score(pairs[i][1], r, i), None) for i in order]
        elif isinstance(run, (str, bytes)) or not isinstance(run, Iterable) or hasattr(run, "score"):
            raise TypeError(
                f"run {r} is {a_type(run)}, not a ranked list: pass runs=[list_1, list_2, ...]"
            )
        elif _looks_like_a_pair(run):
            # one run of (docid, score) pairs passed bare: its pairs would each be a run, and
            # the scores documents (review34)
            raise TypeError(
                f"run {r} is a (docid, score) pair, not a ranked list: pass runs=[list_1, list_2, ...], "
                "each a list of such pairs"
            )
        else:
            items = [_item(x, r, p, need_score) for p, x in enumerate(run)]
        seen: set[Any] = set()
        for p, it in enumerate(items):
            if isinstance(it.id, bool) or not isinstance(it.id, (int, str)):
                # True, 1.0, Decimal(1) equal 1 and hash alike: they merged with id 1; None and
                # b'a' were ids too (helper-133, helper-135, helper-136)
                raise TypeError(f"run {r}, item {p}: id {shown(it.id)} is {a_type(it.id)}: document ids are ints or strings")
            if it.id in seen:
                raise ValueError(f"run {r} ranks id {shown(it.id)} twice (item {p}): a run holds each document once")
            seen.add(it.id)
        out.append(items)
    return out


def _weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Iterable):
        raise TypeError(f"weights must be a list of numbers, one per run, got {type(weights).__name__}")
    w = []
    for i, x in enumerate(weights):
        if not _number(x):  # float() named the value, not the weight (helper-129)
            raise TypeError(f"weight {i} is {shown(x)}: weights must be numbers, one per run")
        w.append(_as_float(x, f"weight {i}"))
    if len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} runs: give one weight per run")
    for i, x in enumerate(w):
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"weight {i} is {x}: weights must be finite and >= 0")
    if n and not any(w):
        # every fused score 0: an order by document id alone, not a ranking (breaker34)
        raise ValueError("weights are all 0: at least one run must weigh more than 0")
    return w


def _limit(limit: int | None, name: str = "limit") -> int | None:
    """None, or an integer >= 1 (as :meth:`SparseIndex.search <sparsedex.SparseIndex.search>`:
    ``limit=0`` is refused, not answered with an empty list)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"{name} must be None or an integer >= 1, got {limit!r}")
    return int(limit)


def _rrf_constant(method: str, rrf_k: float | None, k: float | None) -> float | None:
    """RRF's rank constant from ``rrf_k`` or its alias ``k``: None for ``"dbsf"`` (where
    either is a ValueError, as it would be ignored), 60 for ``"rrf"`` when neither is given."""
    if rrf_k is not None and k is not None:
        raise ValueError("give RRF's rank constant once: rrf_k= or its alias k=, not both")
    given = rrf_k if rrf_k is not None else k
    name = "rrf_k" if rrf_k is not None else "k"
    if str(method).lower() == "dbsf":
        if given is not None:
            raise ValueError(
                f"{name}={given!r} is RRF's rank constant and does not apply to method='dbsf' "
                "(the number of hits is limit=)"
            )
        return None
    return 60.0 if given is None else given


def _remember(first: dict[Any, _Item], it: _Item) -> None:
    """Keep, per id, the first item that carries a payload (else the first item)."""
    have = first.get(it.id)
    if have is None or (getattr(have.source, "payload", None) is None and getattr(it.source, "payload", None) is not None):
        first[it.id] = it


def _result(scores: dict[Any, float], first: dict[Any, _Item], limit: int | None) -> list[Hit]:
    # stable sort: equal scores keep first-met order (dict insertion order)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if limit is not None:
        ranked = ranked[:limit]
    out = []
    for id_, s in ranked:
        src = first[id_].source
        if isinstance(src, Hit):
            out.append(dataclasses.replace(src, score=float(s)))
        else:
            payload = getattr(src, "payload", None) if src is not None else None
            out.append(Hit(id_, float(s), payload if isinstance(payload, dict) or payload is None else dict(payload)))
    return out


def reciprocal_rank_fusion(
    runs: Iterable[Any],
    *,
    k: float = 60,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """Reciprocal rank fusion (Cormack et al. 2009): ``score(d) = sum_i w_i / (k + rank_i(d))``.

    Parameters
    ----------
    runs:
        Ranked lists, best first (see the module docstring for what an item may be).
    k:
        The rank constant (> 0; 60 in the paper). Larger ``k`` flattens the rank discount.
    weights:
        One non-negative weight per run (default all 1), not all 0.
    limit:
        Return the best ``limit`` documents (default: every document of every run).

    Returns
    -------
    list[Hit]
        Best first; ties keep first-met order (first run first).

    Raises
    ------
    TypeError, ValueError
        A run that is not a list, an item that is not a hit / pair / id, an id twice in one
        run, a bad ``k``, weight or limit (``limit`` is None or >= 1); the message names the
        run and the item.
    """
    if not _number(k):  # "abc" said "could not convert string to float", True was 1 (helper-129)
        raise TypeError(f"k must be a finite number > 0, got {shown(k)}")
    kk = _as_float(k, "k")
    if not math.isfinite(kk) or kk <= 0:
        raise ValueError(f"k must be a finite number > 0, got {k!r}")
    parsed = _runs(runs, need_score=False)
    w = _weights(weights, len(parsed))
    lim = _limit(limit)
    scores: dict[Any, float] = {}
    first: dict[Any, _Item] = {}
    for wi, items in zip(w, parsed):
        for rank, it in enumerate(items, start=1):
            scores[it.id] = scores.get(it.id, 0.0) + wi / (kk + rank)
            _remember(first, it)
    return _result(scores, first, lim)


def _distribution_normalised(items: list[_Item]) -> list[float]:
    n = len(items)
    if n == 0:
        return []
    if n == 1:
        return [0.5]
    s = np.array([it.score for it in items], dtype=np.float64)
    if s.max() == s.min():  # equal scores: std is 0 (a rounded mean would make it ~1e-16)
        return [0.5] * n
    big = float(np.abs(s).max())
    if not 1e-150 < big < 1e150:
        # The normalised scores do not change when a run's scores are all divided by one
        # number: dividing by the largest magnitude keeps the squares from overflowing (scores
        # from about 1e154 on gave NaN, helper-129) or underflowing (below about 1e-162 every
        # score normalised to 0.5, helper-130).
        s = s / big
    mean = math.fsum(s.tolist()) / n
    std = math.sqrt(math.fsum(((s - mean) ** 2).tolist()) / (n - 1))
    lo, hi = mean - 3.0 * std, mean + 3.0 * std
    if not hi > lo:
        return [0.5] * n
    return ((s - lo) / (hi - lo)).tolist()


def distribution_based_score_fusion(
    runs: Iterable[Any],
    *,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """Distribution-based score fusion (Qdrant's DBSF): each run's scores normalised with its
    mean ± 3 sample standard deviations, then ``score(d) = sum_i w_i * normalised_i(d)``.

    Parameters
    ----------
    runs:
        Ranked lists with scores, higher is better (hits, ``(id, score)`` pairs, or
        ``{id: score}``).
    weights:
        One non-negative weight per run (default all 1), not all 0.
    limit:
        Return the best ``limit`` documents (default: all).

    Returns
    -------
    list[Hit]
        Best first; ties keep first-met order (first run first).

    Raises
    ------
    TypeError, ValueError
        As :func:`reciprocal_rank_fusion`, plus: a bare id (no score), a score that is not a
        number or is NaN. Infinite scores make the normalisation undefined: ValueError.
    """
    parsed = _runs(runs, need_score=True)
    for r, items in enumerate(parsed):
        for p, it in enumerate(items):
            if it.score is None or not math.isfinite(it.score):
                raise ValueError(f"run {r}, item {p}: score {it.score} is not finite")
    w = _weights(weights, len(parsed))
    lim = _limit(limit)
    scores: dict[Any, float] = {}
    first: dict[Any, _Item] = {}
    for wi, items in zip(w, parsed):
        for it, norm in zip(items, _distribution_normalised(items)):
            scores[it.id] = scores.get(it.id, 0.0) + wi * norm
            _remember(first, it)
    return _result(scores, first, lim)


def fuse(
    runs: Iterable[Any],
    method: str = "rrf",
    *,
    rrf_k: float | None = None,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
    k: float | None = None,
) -> list[Hit]:
    """:func:`reciprocal_rank_fusion` (``method="rrf"``, with the rank constant ``rrf_k``,
    default 60; ``k`` is an alias kept for earlier code) or
    :func:`distribution_based_score_fusion` (``method="dbsf"``, where ``rrf_k`` / ``k`` does
    not apply and is a ValueError). ``limit`` is the number of fused hits (None: all)."""
    m = str(method).lower()
    if m not in METHODS:
        raise ValueError(f"unknown fusion method {method!r}: use one of {', '.join(METHODS)}")
    const = _rrf_constant(m, rrf_k, k)
    if m == "rrf":
        assert const is not None
        return reciprocal_rank_fusion(runs, k=const, weights=weights, limit=limit)
    return distribution_based_score_fusion(runs, weights=weights, limit=limit)


def _hybrid_args(
    indexes: Any, weights: Any, limit: Any, depth: Any
) -> tuple[list[Any], list[float] | None, int, int]:
    """The indexes, the weights (a list: a generator is read here once, breaker34b), limit and
    depth of a hybrid search, all checked before any search."""
    from .index import SparseIndex

    if isinstance(indexes, SparseIndex) or not isinstance(indexes, Sequence) or not indexes:
        raise TypeError("indexes must be a non-empty list of SparseIndex (e.g. [bm25_index, splade_index])")
    for i, ix in enumerate(indexes):
        if not isinstance(ix, SparseIndex):
            raise TypeError(f"indexes[{i}] is {a_type(ix)}, not a SparseIndex")
    w = None
    if weights is not None:  # before any search (review34)
        if isinstance(weights, Sized) and len(weights) != len(indexes):
            raise ValueError(f"{len(weights)} weights for {len(indexes)} indexes")
        w = _weights(weights, len(indexes))
    lim = _limit(limit)
    if lim is None or lim < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if depth is None:
        depth = max(lim, 100)
    dep = _limit(depth, "depth")
    if dep is None or dep < lim:
        raise ValueError(f"depth must be an integer >= limit ({lim}), got {depth!r}")
    # each index is searched for depth hits: named here, not as the search's k (helper-129)
    check_int(dep, "depth", lim, MAX_K)
    return list(indexes), w, lim, dep


def _warn_k(k: Any) -> None:
    """Say that hybrid search's ``k`` is RRF's rank constant: everywhere else in sparsedex
    ``k`` is the number of hits, and ``hybrid_search(ixs, q, k=3)`` returned 10 hits fused
    with constant 3 without a word (helper-133)."""
    if k is not None:
        warnings.warn(
            f"hybrid search's k={k!r} is RRF's rank constant (an alias of rrf_k), not the number of "
            "hits: pass limit= for the number of hits, rrf_k= for the constant",
            UserWarning,
            stacklevel=3,
        )


def hybrid_search(
    indexes: Sequence[Any],
    query: Any,
    *,
    method: str = "rrf",
    limit: int = 10,
    depth: int | None = None,
    weights: Sequence[float] | None = None,
    rrf_k: float | None = None,
    k: float | None = None,
    **search_kwargs: Any,
) -> list[Hit]:
    """Hybrid search in one call: ``query`` (a text) searched in every index of ``indexes``
    (typically ``[bm25_index, splade_index]``, each encoding the text its own way), the
    ``depth`` best hits of each (default ``max(limit, 100)``) fused with :func:`fuse`
    (``method`` ``"rrf"`` with its rank constant ``rrf_k``, default 60, or ``"dbsf"``;
    ``weights`` one per index), the ``limit`` best fused hits returned. ``k`` is an alias of
    ``rrf_k`` kept for earlier code: RRF's constant, not a hit count (that is ``limit``); with
    ``method="dbsf"`` either is a ValueError, as it would not apply.

    ``search_kwargs`` go to every :meth:`SparseIndex.search <sparsedex.SparseIndex.search>`
    (``filter``, ``query_filter``, ``with_payload``, ``with_vectors``, ``algorithm``,
    ``score_threshold``...). The fused hits carry the payload (and vector) of the first index
    that returned them. Documents are matched across indexes by id, so the indexes should hold
    the same documents under the same ids.
    """
    ixs, weights, lim, dep = _hybrid_args(indexes, weights, limit, depth)
    fuse([], method, rrf_k=rrf_k, k=k)  # a method or constant that does not fit: before searching
    _warn_k(k)
    runs = [ix.search(query, limit=dep, **search_kwargs) for ix in ixs]
    return fuse(runs, method, rrf_k=rrf_k, k=k, weights=weights, limit=lim)


def hybrid_search_batch(
    indexes: Sequence[Any],
    queries: Sequence[Any],
    *,
    method: str = "rrf",
    limit: int = 10,
    depth: int | None = None,
    weights: Sequence[float] | None = None,
    rrf_k: float | None = None,
    k: float | None = None,
    **search_kwargs: Any,
) -> list[list[Hit]]:
    """:func:`hybrid_search` for many queries: one :meth:`search_batch
    <sparsedex.SparseIndex.search_batch>` per index (all cores), then one fusion per query."""
    ixs, weights, lim, dep = _hybrid_args(indexes, weights, limit, depth)
    fuse([], method, rrf_k=rrf_k, k=k)  # a method or constant that does not fit: before searching
    _warn_k(k)
    queries = batch_queries(queries)  # one list for every index (a generator would be used up)
    per_index = [ix.search_batch(queries, limit=dep, **search_kwargs) for ix in ixs]
    return [
        fuse([r[i] for r in per_index], method, rrf_k=rrf_k, k=k, weights=weights, limit=lim)
        for i in range(len(queries))
    ]


rrf = reciprocal_rank_fusion
dbsf = distribution_based_score_fusion
