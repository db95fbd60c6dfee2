"""Sparse vectors: :class:`SparseEmbedding` and the vector contract.

A sparse vector is a pair of equally long 1-D arrays: ``indices`` (term ids) and
``values`` (weights). The class has the same field names and methods as fastembed's
``SparseEmbedding``, so objects of either kind can be passed wherever the other is
expected (fastembed objects are accepted by duck typing; nothing here imports fastembed).

The contract every vector handed to an index must meet (see DESIGN.md, "Vectors"):

- term ids are integers, ``0 <= id < vocab_size`` when the vocabulary size is known,
  otherwise any 32-bit unsigned value ``0 .. 2**32 - 1``, unique within the vector (see
  below: any id costs the same);
- weights are finite numbers, ``>= 0`` and at most :data:`MAX_WEIGHT` (``1e14``); zero
  weights carry no information and are dropped;
- ``indices`` and ``values`` are 1-D and have the same length.

:func:`validate_embedding` checks it and raises :class:`ValueError` naming the row and the
field at fault (a ``{term_id: weight}`` dict's bad term id by its key: ``query: key -1 is
negative``, and a weight that is no number by its term: ``query: the weight of term 1 is null
(None), not a number``; lists and arrays by position: ``indices[1] = -1``). It never repairs a vector silently (dropping zeros is part of the
contract, not a repair, and can be switched off). In particular:

- ``True`` / ``False`` are not weights or term ids (a bool array, or a list holding a
  bool, is refused rather than read as 1.0 / 0.0);
- weights above ``1e14`` are refused: scores are float32 sums of products, and with every
  weight at most 1e14 no dot product can overflow (``1e14 * 1e14 * 2**32 < 3.4e38``), where
  finite weights near the float32 limit would give ``inf`` scores that rank wrongly.

Any 32-bit term id costs the same: each index segment keeps a term dictionary that maps the
external term ids it holds to dense internal ones, so memory and disk follow the number of
*distinct* terms, never the value of the largest id. Hashed vocabularies (fastembed's
``Qdrant/bm25`` and BM42 use 32-bit ``mmh3`` hashes; feature-hashed vectors) are used as they
are. A declared ``vocab_size`` is at most :data:`MAX_VOCAB_SIZE` (``2**32 - 1``), since it is
kept in 32 bits; a query term id that no document holds matches nothing and costs nothing.

What counts as one sparse vector (:func:`as_sparse_embedding`): a :class:`SparseEmbedding`
(or fastembed's), ``(indices, values)``, ``{term_id: weight}``, ``{"indices": ...,
"values": ...}``, a scipy.sparse row (a ``1 x V`` matrix or a 1-D sparse array; duplicate
entries are summed, as scipy defines them) or a pandas Series of weights indexed by term id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._shown import cut, shown
from . import _core

__all__ = [
    "MAX_WEIGHT",
    "MAX_VOCAB_SIZE",
    "SparseEmbedding",
    "as_sparse_embedding",
    "sparse_matrix_rows",
    "validate_embedding",
    "validate_embeddings",
    "validate_embeddings_csr",
    "to_csr_arrays",
]

_MAX_TERM_ID = 2**32 - 1  # term ids are 32-bit unsigned

#: Largest vocabulary size an index can declare (kept in 32 bits); without a declared size,
#: term ids are any 32-bit unsigned value (see the module docstring).
MAX_VOCAB_SIZE = 2**32 - 1

#: Largest weight a vector may hold (see the module docstring): with every weight at most
#: 1e14, a dot product is at most 1e14 * 1e14 * 2**32 ~ 4.3e37, below float32's 3.4e38.
MAX_WEIGHT = 1e14
_MAX_WEIGHT32 = np.float32(MAX_WEIGHT)


@dataclass(eq=False)
class SparseEmbedding:
    """A sparse vector: ``indices`` (int32/uint32 term ids) and ``values`` (float32 weights).

    Lists are converted to arrays; ``values`` is stored as float32. Nothing else is
    checked on construction (use :func:`validate_embedding` for the full contract).
    """

    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        indices = _int_array(self.indices)
        if indices.size == 0 and indices.dtype.kind not in "iu":
            indices = indices.astype(np.int32)
        self.indices = indices
        values = _array(self.values)
        if values.size == 0 and values.dtype == object:  # no weights, as an empty list gives
            values = values.astype(np.float32)
        if values.dtype.kind in "fiu" and not _overflows_float32(values):
            values = values.astype(np.float32, copy=False)
        self.values = values

    # fastembed-compatible API -------------------------------------------------------
    def as_object(self) -> dict[str, np.ndarray]:
        """``{"values": ..., "indices": ...}`` (the arrays themselves, not copies)."""
        return {"values": self.values, "indices": self.indices}

    def as_dict(self) -> dict[int, float]:
        """``{term_id: weight}`` with Python ints and floats."""
        return {int(i): float(v) for i, v in zip(self.indices.tolist(), self.values.tolist())}

    @classmethod
    def from_dict(cls, data: Mapping[int, float]) -> SparseEmbedding:
        """Build from ``{term_id: weight}``."""
        if len(data) == 0:
            return cls(indices=np.zeros(0, dtype=np.int32), values=np.zeros(0, dtype=np.float32))
        keys = list(data.keys())
        return cls(indices=_int_array(keys), values=_array([data[k] for k in keys]))

    # conveniences --------------------------------------------------------------------
    @classmethod
    def empty(cls) -> SparseEmbedding:
        return cls(indices=np.zeros(0, dtype=np.int32), values=np.zeros(0, dtype=np.float32))

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0]) if self.indices.ndim else 1

    def __len__(self) -> int:
        return self.nnz

    def sorted(self) -> SparseEmbedding:
        """A copy with indices in ascending order."""
        order = np.argsort(self.indices, kind="stable")
        return SparseEmbedding(indices=self.indices[order], values=self.values[order])

    def dot(self, other: Any) -> float:
        """Dot product with another sparse vector (float64 accumulation)."""
        o = as_sparse_embedding(other)
        a = dict(zip(self.indices.tolist(), self.values.tolist()))
        return float(sum(a.get(i, 0.0) * v for i, v in zip(o.indices.tolist(), o.values.tolist())))

    def __eq__(self, other: object) -> bool:
        if not (hasattr(other, "indices") and hasattr(other, "values")):
            return NotImplemented
        return bool(
            np.array_equal(np.asarray(self.indices), np.asarray(other.indices))
            and np.array_equal(np.asarray(self.values), np.asarray(other.values))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.indices.ndim == 1 and self.indices.shape[0] > 6:
            head = ", ".join(
                f"{int(i)}: {float(v):.4g}" for i, v in zip(self.indices[:6], self.values[:6])
            )
            return f"SparseEmbedding(nnz={self.indices.shape[0]}, {{{head}, ...}})"
        return f"SparseEmbedding(indices={self.indices!r}, values={self.values!r})"


def _overflows_float32(values: np.ndarray) -> bool:
    """True when finite values would become inf in float32 (kept as is for validation to name)."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or values.size == 0:
        return False
    if np.abs(values).max() <= np.finfo(np.float32).max:  # the common case, in one reduction
        return False  # (False for NaN too: it goes on to the full check)
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)))


def _has_bool(items: list[Any] | tuple[Any, ...]) -> bool:
    types = set(map(type, items))
    return bool in types or np.bool_ in types


def _array(x: Any) -> np.ndarray:
    """``np.asarray(x)``, except that a list holding a bool stays an object array (numpy
    would read ``[True, 0.5]`` as ``[1.0, 0.5]``), for validation to refuse by position."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)) and x and _has_bool(x):
        return np.asarray(x, dtype=object)
    return np.asarray(x)


def _first_bool(arr: np.ndarray) -> int | None:
    for i, v in enumerate(arr.tolist()):
        if isinstance(v, bool):
            return i
    return None


def repeated_entry(m: Any, trust_canonical: bool = True) -> tuple[int, int] | None:
    """The first (row, column) a scipy.sparse COO matrix or array holds more than once, by
    row then column (a 1-D array's row is 0); None when none repeats (at once when
    ``trust_canonical`` and scipy's flag says so). Rows and columns are compared as pairs (a
    key ``row * width + column`` overflowed for wide shapes: helper-141)."""
    if trust_canonical and getattr(m, "has_canonical_format", False):
        return None
    coords = [np.asarray(c, np.int64) for c in getattr(m, "coords", None) or (m.row, m.col)]
    if coords[0].size < 2:
        return None
    rows, cols = (np.zeros_like(coords[0]), coords[0]) if len(coords) == 1 else (coords[0], coords[1])
    order = np.lexsort((cols, rows))
    r, c = rows[order], cols[order]
    dup = np.flatnonzero((r[1:] == r[:-1]) & (c[1:] == c[:-1]))
    if not dup.size:
        return None
    j = order[dup[0]]
    return int(rows[j]), int(cols[j])


def summed_duplicates(obj: Any, fmt: str, recheck: bool = False) -> Any:
    """A copy of scipy.sparse ``obj`` in format ``fmt`` ("coo" or "csr") with repeated entries
    summed, in float64 for narrower floats, before any conversion sums them: then a query's sum
    does not depend on the order a format sums in (breaker36: float32 sums in COO and CSR order
    differed in the last bit between search and search_batch). ``recheck``: do not trust
    scipy's sorted / canonical flags, which stay set after arrays are edited in place
    (helper-132): the copy is sorted and summed again (a sort of the whole copy, so for single
    rows)."""
    canonical = not recheck and getattr(obj, "has_canonical_format", False)
    if obj.dtype.kind == "f" and obj.dtype.itemsize < 8 and not canonical:
        obj = obj.astype(np.float64)
    m = obj.tocoo(copy=True) if fmt == "coo" else obj.tocsr(copy=True)
    if recheck:
        if hasattr(m, "has_sorted_indices"):
            m.has_sorted_indices = False
        m.has_canonical_format = False
    m.sum_duplicates()
    return m


def _scipy_row(obj: Any) -> SparseEmbedding | None:
    """A scipy.sparse row (``1 x V`` or 1-D) as a vector; None when ``obj`` is not scipy.sparse."""
    if not type(obj).__module__.startswith("scipy.sparse") or not hasattr(obj, "tocoo"):
        return None
    shape = tuple(obj.shape)
    if len(shape) not in (1, 2):
        raise TypeError(
            f"a sparse array of shape {shape} has {len(shape)} dimensions: a vector is 1-D "
            "or one row (1 x vocabulary), a batch 2-D (one row per vector)"
        )
    if len(shape) == 2 and shape[0] != 1:
        raise TypeError(
            f"a sparse matrix with {shape[0]} rows is {shape[0]} vectors, not one: "
            "pass it to search_batch (or add), or take one row"
        )
    width = shape[-1]
    if getattr(obj, "format", None) == "csr" and len(shape) == 2:
        # One CSR row whose arrays are exactly the row, columns strictly increasing within its
        # width (what slicing a CSR matrix gives): its arrays, copied (not shared with the
        # caller's matrix), nothing to sum; the conversion below took about 70 us a query.
        # Checked here rather than taken from scipy's has_canonical_format, which stays True
        # after the arrays are edited in place (helper-132).
        idx, data, ip = obj.indices, obj.data, obj.indptr
        n = len(idx)
        if (
            len(data) == n and ip.tolist() == [0, n] and idx.dtype.kind in "iu"
            and (n == 0 or (int(idx[0]) >= 0 and int(idx[-1]) < width and bool((idx[1:] > idx[:-1]).all())))
        ):
            return SparseEmbedding(indices=idx.copy(), values=data.copy())
    try:
        # scipy's meaning of repeated entries: their sum; through CSR for a 1 x V row, as
        # search_batch reads a matrix
        m = summed_duplicates(obj, "csr" if len(shape) == 2 else "coo", recheck=True)
    except ValueError as e:  # arrays assigned by hand that disagree with indptr or the shape
        raise ValueError(f"scipy cannot read this sparse row ({e}): check its indptr, indices and data") from None
    if len(shape) == 2:
        a, b = int(m.indptr[0]), int(m.indptr[1])
        cols, vals = m.indices[a:b], m.data[a:b]
    else:
        cols, vals = (m.coords[-1] if hasattr(m, "coords") else m.col), m.data
    cols = np.asarray(cols)
    lo, hi = (int(cols.min()), int(cols.max())) if cols.size and cols.dtype.kind in "iu" else (0, -1)
    if lo < 0 or hi >= width:
        bad = lo if lo < 0 else hi
        raise ValueError(f"column {bad} is outside the sparse row's {width} columns (its arrays were edited by hand?)")
    return SparseEmbedding(indices=cols, values=np.asarray(vals))


def _pandas_series(obj: Any) -> SparseEmbedding | None:
    """A pandas Series of weights indexed by term id; None when ``obj`` is not one."""
    if not type(obj).__module__.startswith("pandas") or not hasattr(obj, "to_numpy"):
        return None
    if getattr(obj, "ndim", 1) != 1 or not hasattr(obj, "index"):
        raise TypeError(f"a pandas {type(obj).__name__} is not one sparse vector: pass a Series {{term_id: weight}}")
    return SparseEmbedding(indices=_int_array(obj.index.to_numpy()), values=obj.to_numpy())


def _int_array(x: Any) -> np.ndarray:
    arr = _array(x)
    if arr.dtype.kind in "iu":
        return arr
    if arr.size == 0:
        return arr.astype(np.int32)
    if isinstance(x, (list, tuple)) and _all_ints(x):
        # integers numpy promoted to float64 (numpy uint64 beside Python or int64 ones, the
        # keys of a dict) or kept as objects (past 64 bits): as Python ints, so that the checks
        # see the ids given and name one out of range
        ints = [int(v) for v in x]
        lo, hi = min(ints), max(ints)
        if lo >= 0 and hi < 2**64:
            return np.array(ints, dtype=np.uint64)
        if -(2**63) <= lo and hi < 2**63:
            return np.array(ints, dtype=np.int64)
        return np.array(ints, dtype=object)
    return arr  # left as is: validation names the problem


def _is_int(x: Any) -> bool:
    """Whether ``x`` is an integer (Python or numpy), not a bool nor a timedelta64 (an
    np.integer to numpy: its NaT made int() fail on None, another one passed for the int it
    counts). The one test of an integer for term ids, ids and ``k`` (``_validate`` too)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_, np.timedelta64))


def _all_ints(items: Any) -> bool:
    """Whether every item is an integer (:func:`_is_int`)."""
    return all(_is_int(v) for v in items)


def _all_numbers(items: Any) -> bool:
    """Whether every item is an int or a float (Python or numpy), none a bool or a timedelta64."""
    return all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_, np.timedelta64))
        for v in items
    )


def as_sparse_embedding(obj: Any) -> SparseEmbedding:
    """Convert what users pass for a sparse vector into a :class:`SparseEmbedding`.

    Accepts a :class:`SparseEmbedding`, any object with ``indices`` and ``values``
    attributes (fastembed's ``SparseEmbedding``), a mapping ``{"indices": ..., "values": ...}``
    (``as_object()`` output), a mapping ``{term_id: weight}`` (``as_dict()`` output), a pair
    ``(indices, values)``, a scipy.sparse row (``1 x V`` matrix or 1-D array; repeated entries
    summed) or a pandas Series of weights indexed by term id. Raises :class:`TypeError` for
    anything else (a sparse matrix of several rows included). Values are not checked here
    (see :func:`validate_embedding`).
    """
    if isinstance(obj, SparseEmbedding):
        return obj
    row = _scipy_row(obj)
    if row is not None:
        return row
    series = _pandas_series(obj)
    if series is not None:
        return series
    if hasattr(obj, "indices") and hasattr(obj, "values") and not isinstance(obj, Mapping):
        return SparseEmbedding(indices=_int_array(obj.indices), values=_array(obj.values))
    if isinstance(obj, Mapping):
        keys = set(obj.keys())
        if keys == {"indices", "values"}:
            return SparseEmbedding(indices=_int_array(obj["indices"]), values=_array(obj["values"]))
        if keys & {"indices", "values"}:
            # not a {term_id: weight} dict either: numpy's "inhomogeneous shape" or "values must
            # be 1-D" said nothing of the keys (helper-134, helper-135)
            missing = sorted({"indices", "values"} - keys)
            if missing:
                raise TypeError(f'a {{"indices": ..., "values": ...}} vector has no {missing[0]!r} key')
            extra = sorted(map(repr, keys - {"indices", "values"}))
            raise TypeError(
                f'a {{"indices": ..., "values": ...}} vector holds no other key, got {", ".join(extra[:3])}'
            )
        return SparseEmbedding.from_dict(obj)
    if isinstance(obj, tuple) and len(obj) == 2:
        return SparseEmbedding(indices=_int_array(obj[0]), values=_array(obj[1]))
    raise TypeError(
        f"cannot interpret {type(obj).__name__} as a sparse vector: pass a SparseEmbedding, "
        "an object with .indices and .values, {term_id: weight}, "
        '{"indices": [...], "values": [...]}, (indices, values), a scipy.sparse row or a '
        "pandas Series"
    )


def sparse_matrix_rows(obj: Any) -> list[SparseEmbedding] | None:
    """The rows of a 2-D scipy.sparse matrix / array as vectors (repeated entries summed);
    None when ``obj`` is not one."""
    if not type(obj).__module__.startswith("scipy.sparse") or not hasattr(obj, "tocsr"):
        return None
    if len(obj.shape) != 2:
        return [as_sparse_embedding(obj)]
    ip, indices, data = scipy_matrix_csr(obj)  # type: ignore[misc]
    return [
        SparseEmbedding(indices=np.asarray(indices[a:b]), values=np.asarray(data[a:b]))
        for a, b in zip(ip[:-1].tolist(), ip[1:].tolist())
    ]


def scipy_matrix_csr(obj: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The CSR arrays ``(indptr int64, indices, values)`` of a 2-D scipy.sparse matrix / array,
    repeated entries summed (:func:`summed_duplicates`); None when ``obj`` is not one."""
    if not type(obj).__module__.startswith("scipy.sparse") or not hasattr(obj, "tocsr") or len(obj.shape) != 2:
        return None
    m = summed_duplicates(obj, "csr")
    return np.asarray(m.indptr, dtype=np.int64), np.asarray(m.indices), np.asarray(m.data)


def _where(row: int | None, what: str | None) -> str:
    if what is None:
        return f"row {row}" if row is not None else "vector"
    return f"{what} {row}" if row is not None else what


def _clean_by_engine(idx: Any, val: Any, n_terms: int | None = None) -> bool:
    """Whether ``idx`` / ``val`` are 1-d uint32 / float32 arrays that already meet the vector
    contract (ids ascending and below ``n_terms`` when given, weights positive, finite, at most
    1e14), checked by the engine in one pass (:func:`sparsedex._core.row_is_clean`); False
    (anything else, including non-contiguous or unaligned arrays) means the checks that name
    what is wrong must run."""
    return (
        type(idx) is np.ndarray and type(val) is np.ndarray
        and idx.dtype == np.uint32 and val.dtype == np.float32
        and idx.ndim == 1 and val.ndim == 1
        and _core.row_is_clean(idx, val, n_terms)
    )


def validate_embedding(
    embedding: Any,
    vocab_size: int | None = None,
    *,
    row: int | None = None,
    drop_zeros: bool = True,
    what: str | None = None,
    limit_name: str = "the vocabulary size",
) -> SparseEmbedding:
    """Check one vector against the contract; return it as uint32 indices / float32 values.

    ``row`` is the position used in error messages and ``what`` the word before it
    (``what="query", row=3``: "query 3: ..."; ``what="query"`` alone: "query: ..."; default
    "row 3" / "vector"); ``limit_name`` says what ``vocab_size`` is in the message about a
    term id at or above it. Zero weights are removed when ``drop_zeros`` (the default).
    Anything else that breaks the contract raises :class:`ValueError` (or
    :class:`TypeError` when the object is not a sparse vector at all) naming the row and the
    field.
    """
    where = _where(row, what)
    shape = tuple(getattr(embedding, "shape", ()))
    if (what == "document" and type(embedding).__module__.startswith("scipy.sparse") and hasattr(embedding, "tocoo")
            and (len(shape) == 1 or (len(shape) == 2 and shape[0] == 1))):  # a row; a matrix is named below
        # a stored vector is kept exactly as given: a scipy row's repeated entries, which
        # as_sparse_embedding sums (a query's meaning), are refused in a document, as a whole
        # COO matrix's are (helper-143: a 1-D coo_array in a list was summed)
        rep = repeated_entry(embedding.tocoo(), trust_canonical=False)  # flags survive edits (helper-132)
        if rep is not None:
            raise ValueError(f"{where}: term id {rep[1]} appears more than once")
    try:
        emb = as_sparse_embedding(embedding)
    except (TypeError, ValueError) as e:  # plain types: a subclass may take other arguments
        from ._validate import missing_value  # here: _validate imports this module

        missing = missing_value(embedding) if isinstance(e, TypeError) else None
        if missing is not None:  # "cannot interpret NAType" named no missing value (helper-145)
            raise TypeError(f"{where} is a missing value ({missing}), not a sparse vector") from None
        named = _list_item_error(where, embedding) if isinstance(e, ValueError) else None
        if named is not None:  # a list inside a list: numpy's "inhomogeneous shape"
            raise named from None
        raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{where}: {e}") from None
    idx, val = emb.indices, emb.values
    if vocab_size is None or (isinstance(vocab_size, (int, np.integer)) and not isinstance(vocab_size, bool)
                              and 0 < vocab_size):  # any other vocab_size: the checks below, as before
        n_terms = None if vocab_size is None or vocab_size > _MAX_TERM_ID else int(vocab_size)
        # a clean, sorted uint32 / float32 vector: checked by the engine in one pass
        if _clean_by_engine(idx, val, n_terms):
            return emb if emb is not embedding else SparseEmbedding(indices=idx, values=val)
        # other dtypes (int64 ids and float64 weights from a dict or a list, fastembed's
        # vectors): converted and checked by the engine in one pass when they are clean
        if (type(idx) is np.ndarray and type(val) is np.ndarray
                and not (idx.dtype == np.uint32 and val.dtype == np.float32)):  # refused just above
            clean = _core.clean_row(idx, val, n_terms)
            if clean is not None:
                return SparseEmbedding(indices=clean[0], values=clean[1])
    return _full_checks(idx, val, vocab_size, where, drop_zeros, limit_name, embedding)


def _id_limit(vocab_size: Any, limit_name: str) -> tuple[int, str]:
    """The largest term id a vector may hold under ``vocab_size``, and that bound as messages
    name it, with its value: below the vocabulary size, and never past 32 bits (a
    ``vocab_size`` above 2**32 let ids of 2**32 and more through, to wrap to their low 32
    bits in uint32, review33)."""
    if vocab_size is None or int(vocab_size) - 1 >= _MAX_TERM_ID:  # 2**32 itself is the 32-bit bound
        return _MAX_TERM_ID, "2**32 = 4294967296 (term ids are 32-bit unsigned)"
    return int(vocab_size) - 1, f"{limit_name} ({vocab_size})"


def _bad_id(where: str, i: int, t: int, vocab_size: Any, limit_name: str, by_key: bool = False) -> ValueError:
    """The error for term id ``t`` at position ``i``: negative, or past the limit. ``by_key``:
    the vector was a ``{term_id: weight}`` dict, whose key is named (``key -1 is negative``:
    "indices[1]" named a list the caller never wrote, helper-155)."""
    at = f"key {shown(t, 40)}" if by_key else f"indices[{i}] = {shown(t, 40)}"
    if t < 0:
        return ValueError(f"{where}: {at} is negative")
    what = _id_limit(vocab_size, limit_name)[1]
    return ValueError(f"{where}: {at} is not below {what}")


def _is_term_dict(obj: Any) -> bool:
    """Whether ``obj`` is a ``{term_id: weight}`` mapping (not ``{"indices", "values"}``)."""
    return isinstance(obj, Mapping) and set(obj.keys()) != {"indices", "values"}


def _given_lists(obj: Any) -> tuple[Any, Any, list[Any] | None] | None:
    """``(indices, values, terms)`` of a vector as given when it is a pair or an
    ``{"indices", "values"}`` mapping (``terms``: None) or a ``{term_id: weight}`` mapping
    (``terms``: its keys), for :func:`_list_item_error`; None for anything else."""
    if _is_term_dict(obj):
        keys = list(obj.keys())
        return keys, [obj[k] for k in keys], keys
    parts = _pandas_parts(obj)  # a pair, an {"indices", "values"} mapping, a Series, .indices / .values
    return None if parts is None else (parts[0], parts[1], None)


def _as_items(x: Any) -> Any:
    """``x`` as a sequence of items when it is a list or tuple, or a 1-D array-like of dtype
    object (numpy, pandas), whose items numpy left as Python objects (``None``, ``pd.NA``);
    None otherwise."""
    if isinstance(x, (list, tuple)):
        return x
    dtype = getattr(x, "dtype", None)
    dtype = getattr(dtype, "numpy_dtype", dtype)  # a pandas array of numpy's object dtype
    if isinstance(dtype, np.dtype) and dtype == object and getattr(x, "ndim", None) == 1:
        try:
            return list(x)
        except TypeError:
            return None
    return None


def _item(v: Any) -> str:
    """An item of a list of indices or values, for a message: a JSON client never made a
    numpy array, so its value and kind, not a dtype (helper-147)."""
    if v is None:
        return "null (None)"
    if isinstance(v, (bool, np.bool_)):
        return f"a bool ({v!r})"
    if isinstance(v, str):
        return f"a string ({cut(json.dumps(v, ensure_ascii=False), 40)})"
    if isinstance(v, (list, tuple)):  # a tuple named a tuple: "a list ((1.0,))" was not what was written
        return f"a {'tuple' if isinstance(v, tuple) else 'list'} ({shown(v, 40)})"
    if isinstance(v, Mapping):
        return f"a dict ({shown(v, 40)})"
    if isinstance(v, (float, np.floating)):
        return shown(float(v), 40)
    from ._validate import missing_value  # here: _validate imports this module

    missing = missing_value(v)
    if missing is not None:  # "<NA> (a NAType)" named no missing value
        return f"a missing value ({missing})"
    return f"{shown(v, 40)} (a {type(v).__name__})"


def _dict_key_error(where: str, embedding: Any) -> ValueError | None:
    """For a ``{term_id: weight}`` dict, the error naming its first key that is not an integer
    term id by the key (``key "1" (a str) is not a term id``: "indices[0]" named no list the
    caller wrote); None when every key is an integer (or it is no such dict)."""
    if not _is_term_dict(embedding):
        return None
    from ._validate import missing_value  # here: _validate imports this module

    for k in embedding.keys():
        if _is_int(k):
            continue
        missing = missing_value(k)
        if missing is not None:
            return ValueError(f"{where}: a key is a missing value ({missing}), not a term id")
        key = cut(json.dumps(k, ensure_ascii=False), 40) if isinstance(k, str) else shown(k, 40)
        return ValueError(f"{where}: key {key} (a {type(k).__name__}) is not a term id")
    return None


def _list_item_error(where: str, embedding: Any) -> ValueError | None:
    """For indices or values given as a Python list or tuple (a JSON array), the error naming
    the first item that is not an integer term id or not a number, by position and value
    ("values[0] is a string ("a"), not a number"), instead of the dtype numpy made of the list;
    None when the lists hold no such item (or were not lists). Only on an error: the lists
    are looked at item by item. A dict's key that is no term id is named by the key."""
    named = _dict_key_error(where, embedding)
    if named is not None:
        return named
    given = _given_lists(embedding)
    if given is None:
        return None
    idx, val, terms = given
    idx, val = _as_items(idx), _as_items(val)  # object arrays too: numpy named only their dtype
    if idx is not None:
        for i, v in enumerate(idx):
            if not _is_int(v):
                return ValueError(f"{where}: indices[{i}] is {_item(v)}, not an integer")
    if val is not None:
        for i, v in enumerate(val):
            if not _all_numbers([v]):
                # a {term_id: weight} dict's weight by its key: "values[0]" named a list the
                # caller never wrote (helper-159)
                at = f"the weight of term {shown(terms[i], 40)}" if terms is not None else f"values[{i}]"
                return ValueError(f"{where}: {at} is {_item(v)}, not a number")
    return None


def _pandas_parts(obj: Any) -> tuple[Any, Any] | None:
    """``(indices, values)`` of a vector as given, where either may be a pandas object (a
    pair, an ``{"indices", "values"}`` mapping, an object with ``.indices`` / ``.values``, or a
    Series, whose index holds the term ids); None for anything else."""
    if isinstance(obj, tuple) and len(obj) == 2:
        return obj[0], obj[1]
    if isinstance(obj, Mapping):
        return (obj["indices"], obj["values"]) if set(obj.keys()) == {"indices", "values"} else None
    if type(obj).__module__.startswith("pandas") and hasattr(obj, "index") and hasattr(obj, "array"):
        return obj.index, obj.array
    if hasattr(obj, "indices") and hasattr(obj, "values"):
        return obj.indices, obj.values
    return None


def _first_pandas_missing(x: Any) -> tuple[int, str] | None:
    """``(position, how it reads)`` of the first pandas missing value (``pd.NA``, ``NaT``) in
    pandas array, Index or Series ``x``; None when it holds none, or ``x`` is no pandas object.
    numpy makes NaN of a nullable array's ``pd.NA`` (``Float64``, ``Int64``), which read as
    "nan is not finite" or "indices must be integers, got dtype float64" (helper-155)."""
    if not type(x).__module__.startswith("pandas") or not hasattr(x, "isna"):
        return None
    try:
        mask = np.asarray(x.isna(), dtype=bool)
    except (TypeError, ValueError):
        return None
    if mask.ndim != 1 or not mask.any():
        return None
    i = int(np.argmax(mask))
    from ._validate import missing_value  # here: _validate imports this module

    items = x.array if hasattr(x, "array") else x
    missing = missing_value(items[i])
    # a NaN of a numpy-backed Series is left to the checks below ("nan is not finite")
    return (i, missing) if missing is not None and missing.startswith("pandas'") else None


def _pandas_missing_error(where: str, given: Any, idx: np.ndarray) -> ValueError | None:
    """The error naming a pandas missing value among the indices or values of ``given`` (a
    nullable ``Int64`` / ``Float64`` array, a Series...) by position, as a list holding one is
    named (``values[1] is a missing value (pandas' <NA>), not a number``); None when none."""
    parts = _pandas_parts(given)
    if parts is None:
        return None
    hit = _first_pandas_missing(parts[0])
    if hit is not None:
        return ValueError(f"{where}: indices[{hit[0]}] is a missing value ({hit[1]}), not an integer")
    hit = _first_pandas_missing(parts[1])
    if hit is not None:
        i = hit[0]
        term = (f" (the weight of term {int(idx[i])})"
                if idx.ndim == 1 and idx.dtype.kind in "iu" and i < idx.shape[0] else "")
        return ValueError(f"{where}: values[{i}] is a missing value ({hit[1]}), not a number{term}")
    return None


def _full_checks(
    idx: Any, val: Any, vocab_size: Any, where: str, drop_zeros: bool, limit_name: str,
    given: Any = None,
) -> SparseEmbedding:
    """:func:`validate_embedding`'s checks one by one, naming what is wrong (its fast paths
    must return what these return, tests/test_vectors.py). ``given``: the vector as given, to
    name an item of its lists that is not a number rather than the dtype (:func:`_list_item_error`),
    or a key of a dict that is not a term id (:func:`_dict_key_error`)."""
    named = _dict_key_error(where, given)
    if named is not None:
        raise named
    by_key = _is_term_dict(given)  # its indices are its keys, in order: a bad one is named as a key
    idx, val = np.asarray(idx), np.asarray(val)
    named = _pandas_missing_error(where, given, idx) if given is not None else None
    if named is not None:
        raise named
    if idx.ndim == 1 and idx.dtype == object and idx.size and _all_ints(idx.tolist()):
        # integers past 64 bits (or an object array of integers): named if out of range
        ints = [int(v) for v in idx.tolist()]
        limit = _id_limit(vocab_size, limit_name)[0]
        bad = next((i for i, t in enumerate(ints) if not 0 <= t <= limit), None)
        if bad is not None:
            raise _bad_id(where, bad, ints[bad], vocab_size, limit_name, by_key)
        idx = np.array(ints, dtype=np.int64)
    if val.ndim == 1 and val.dtype == object and val.size and _all_numbers(val.tolist()):
        # numbers numpy kept as objects (integers past 64 bits): as floats, or named
        floats = []
        for i, w in enumerate(val.tolist()):
            try:
                floats.append(float(w))
            except OverflowError:
                shown = str(w) if len(str(w)) <= 30 else f"an integer of {len(str(abs(w)))} digits"
                if w < 0:
                    raise ValueError(f"{where}: values[{i}] = {shown} is negative") from None
                raise ValueError(
                    f"{where}: values[{i}] = {shown} is above the largest weight sparsedex accepts (1e14); "
                    "larger weights could overflow float32 scores"
                ) from None
        val = np.array(floats, dtype=np.float64)
    if idx.ndim != 1:
        raise ValueError(f"{where}: indices must be 1-D, got shape {idx.shape}")
    if val.ndim != 1:  # a weight that is a list ({1: [1.0]}): named, not the shape numpy made
        raise _list_item_error(where, given) or ValueError(f"{where}: values must be 1-D, got shape {val.shape}")
    if idx.shape[0] != val.shape[0]:
        raise ValueError(
            f"{where}: indices and values differ in length ({idx.shape[0]} != {val.shape[0]})"
        )
    if idx.dtype.kind not in "iu":
        bad = _first_bool(idx) if idx.dtype == object else None
        if bad is not None:
            raise ValueError(f"{where}: indices[{bad}] is a bool ({idx[bad]!r}), not a term id")
        named = _list_item_error(where, given)
        if named is not None:
            raise named
        if idx.dtype.kind == "b" or idx.dtype == object:
            raise ValueError(f"{where}: indices must be integers, got dtype {idx.dtype}")
        if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
            raise ValueError(
                f"{where}: indices must have an integer dtype, got {idx.dtype} "
                "(convert with np.asarray(indices, dtype=np.uint32))"
            )
        raise ValueError(f"{where}: indices must be integers, got dtype {idx.dtype}")
    if val.dtype.kind == "b":
        raise ValueError(
            f"{where}: values are booleans (dtype bool), not weights; convert them "
            "(values.astype(np.float32)) if 1.0 / 0.0 is what you mean"
        )
    if val.dtype == object:
        bad = _first_bool(val)
        if bad is not None:
            if by_key:  # a dict's bool weight by its key, as an np.bool_ one is ("values[1]"
                # named a list the caller never wrote)
                raise ValueError(f"{where}: the weight of term {int(idx[bad])} is a bool ({val[bad]!r}), not a number")
            raise ValueError(f"{where}: values[{bad}] is a bool ({val[bad]!r}), not a weight")
    if val.dtype.kind not in "fiu":
        raise _list_item_error(where, given) or ValueError(f"{where}: values must be numbers, got dtype {val.dtype}")
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0:
            bad = int(np.argmax(idx < 0))
            raise _bad_id(where, bad, int(idx[bad]), vocab_size, limit_name, by_key)
        limit = _id_limit(vocab_size, limit_name)[0]
        if hi > limit:
            bad = int(np.argmax(idx > limit))
            raise _bad_id(where, bad, int(idx[bad]), vocab_size, limit_name, by_key)
    # the term a bad weight belongs to, named too: for a dict {term: weight} "values[0]" says
    # nothing (helper-140)
    def of_term(i: int) -> str:
        return f" (the weight of term {int(idx[i])})"

    if _overflows_float32(val):
        bad = int(np.argmax(np.isfinite(val) & (np.abs(val) > np.finfo(np.float32).max)))
        raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is not finite in float32{of_term(bad)}")
    val32 = val.astype(np.float32, copy=False)
    if val32.size:
        finite = np.isfinite(val32)
        if not finite.all():
            bad = int(np.argmin(finite))
            if by_key and np.isnan(val32[bad]):  # a dict's missing weight, by its key alone, as
                # None's (helper-159)
                raise ValueError(f"{where}: the weight of term {int(idx[bad])} is a missing value (NaN), not a number")
            raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is not finite{of_term(bad)}")
        if (val32 < 0).any():
            bad = int(np.argmax(val32 < 0))
            raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is negative{of_term(bad)}")
        if (val32 > _MAX_WEIGHT32).any():
            bad = int(np.argmax(val32 > _MAX_WEIGHT32))
            raise ValueError(
                f"{where}: values[{bad}] = {val[bad]!s} is above the largest weight sparsedex "
                f"accepts (1e14); larger weights could overflow float32 scores{of_term(bad)}"
            )
    idx32 = idx.astype(np.uint32, copy=False)
    if idx32.size > 1:
        uniq = np.unique(idx32)
        if uniq.shape[0] != idx32.shape[0]:
            s = np.sort(idx32)
            dup = int(s[np.argmax(s[1:] == s[:-1]) + 1])
            raise ValueError(f"{where}: indices contain term id {dup} more than once")
    if drop_zeros and val32.size and (val32 == 0).any():
        keep = val32 != 0
        idx32, val32 = idx32[keep], val32[keep]
    return SparseEmbedding(indices=idx32, values=val32)


def validate_embeddings(
    embeddings: Iterable[Any],
    vocab_size: int | None = None,
    *,
    drop_zeros: bool = True,
    what: str | None = None,
) -> list[SparseEmbedding]:
    """:func:`validate_embedding` on each item, rows numbered from 0 (a 2-D scipy.sparse
    matrix counts as its rows)."""
    rows = sparse_matrix_rows(embeddings)
    items = rows if rows is not None else embeddings
    return [
        validate_embedding(e, vocab_size, row=i, drop_zeros=drop_zeros, what=what)
        for i, e in enumerate(items)
    ]


def validate_embeddings_csr(
    embeddings: Sequence[Any],
    vocab_size: int | None = None,
    *,
    what: str | None = None,
    limit_name: str = "the vocabulary size",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`validate_embedding` of each vector (rows numbered from 0, zero weights
    dropped), stacked as CSR arrays ``(indptr int64, indices uint32, values float32)``:
    the same arrays as ``to_csr_arrays(validate_embeddings(...))``, and the same errors.

    The checks run once over the whole batch (numpy) rather than vector by vector; only when
    the batch breaks the contract somewhere, or holds something the batch checks do not
    cover (indices not increasing within a vector, a vector that is not 1-D, mixed dtypes),
    does it go vector by vector, so that the error names the first vector at fault and the
    field. Raises :class:`ValueError` / :class:`TypeError` as :func:`validate_embedding`.
    """
    items = embeddings if isinstance(embeddings, list) else list(embeddings)
    # documents that are scipy rows go one by one: validate_embedding refuses their repeated
    # entries, which the batch path's as_sparse_embedding sums (helper-143)
    scipy_docs = what == "document" and any(type(e).__module__.startswith("scipy.sparse") for e in items)
    fast = None if scipy_docs else _batch_csr(items, vocab_size)
    if fast is not None:
        return fast
    embs = [
        validate_embedding(e, vocab_size, row=i, what=what, limit_name=limit_name) for i, e in enumerate(items)
    ]
    return to_csr_arrays(embs, validate=False)


def _batch_csr(items: list[Any], vocab_size: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The CSR arrays of valid vectors with indices increasing in each, checked as a batch;
    None when any check fails (the caller then goes vector by vector for the error)."""
    n = len(items)
    if n == 0:
        return None
    try:
        embs = [as_sparse_embedding(e) for e in items]
    except (TypeError, ValueError):  # named per vector by the caller's second pass
        return None
    idxs = [np.asarray(e.indices) for e in embs]
    vals = [np.asarray(e.values) for e in embs]
    if any(a.ndim != 1 or a.dtype.kind not in "iu" for a in idxs):
        return None
    if any(v.ndim != 1 or v.dtype.kind not in "fiu" for v in vals):
        return None
    lens = np.fromiter((a.shape[0] for a in idxs), dtype=np.int64, count=n)
    if not np.array_equal(lens, np.fromiter((v.shape[0] for v in vals), dtype=np.int64, count=n)):
        return None
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    return checked_csr(indptr, np.concatenate(idxs), np.concatenate(vals), vocab_size)


def checked_csr(
    indptr: np.ndarray, idx: np.ndarray, val: np.ndarray, vocab_size: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The batch checks of :func:`validate_embeddings_csr` on CSR arrays (``indptr`` int64,
    well formed): term ids integers below ``vocab_size``'s limit and strictly increasing in each
    row, weights finite, non-negative and within float32's range; the arrays as ``(indptr
    int64, indices uint32, values float32)`` with zero weights dropped, or None when any check
    fails (the caller then goes vector by vector, for the error that names the vector)."""
    if idx.dtype.kind not in "iu" or val.dtype.kind not in "fiu":  # (uint64 with int64 concatenates to float64)
        return None
    if idx.size == 0:
        return indptr, idx.astype(np.uint32), val.astype(np.float32)
    limit = _id_limit(vocab_size, "")[0]
    if idx.min() < 0 or idx.max() > limit or _overflows_float32(val):
        return None
    val32 = val.astype(np.float32, copy=False)
    if not np.isfinite(val32).all() or (val32 < 0).any() or (val32 > _MAX_WEIGHT32).any():
        return None
    idx32 = idx.astype(np.uint32, copy=False)
    # strictly increasing within each vector: no repeated term id (else: vector by vector)
    up = idx32[1:] > idx32[:-1]
    starts = indptr[1:-1]
    up[starts[(starts > 0) & (starts < idx32.size)] - 1] = True
    if not up.all():
        return None
    zero = val32 == 0
    if zero.any():
        keep = ~zero
        kept = np.zeros(idx32.size + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        indptr = kept[indptr]
        idx32, val32 = idx32[keep], val32[keep]
    return indptr, np.ascontiguousarray(idx32), np.ascontiguousarray(val32)


def to_csr_arrays(
    embeddings: Iterable[Any], vocab_size: int | None = None, *, validate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack vectors into CSR arrays ``(indptr int64, indices uint32, values float32)``.

    ``scipy.sparse.csr_matrix((values, indices, indptr), shape=(n, vocab_size))`` turns the
    result into a matrix. Vectors are validated first unless ``validate=False``.
    """
    embs = (
        validate_embeddings(embeddings, vocab_size)
        if validate
        else [as_sparse_embedding(e) for e in embeddings]
    )
    lengths = np.fromiter((e.indices.shape[0] for e in embs), dtype=np.int64, count=len(embs))
    indptr = np.zeros(len(embs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if embs:
        indices = np.concatenate([np.asarray(e.indices, dtype=np.uint32) for e in embs])
        values = np.concatenate([np.asarray(e.values, dtype=np.float32) for e in embs])
    else:
        indices = np.zeros(0, dtype=np.uint32)
        values = np.zeros(0, dtype=np.float32)
    return indptr, indices, values
