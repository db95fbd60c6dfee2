"""Sparse vectors: :class:`SparseEmbedding` and the vector contract.

A sparse vector is a pair of equally long 1-D arrays: ``indices`` (term ids) and
``values`` (weights). The class has the same field names and methods as fastembed's
``SparseEmbedding``, so objects of either kind can be passed wherever the other is
expected (fastembed objects are accepted by duck typing; nothing here imports fastembed).

The contract every vector handed to an index must meet (see DESIGN.md, "Vectors"):

- term ids are integers, ``0 <= id < vocab_size`` (when the vocabulary size is known) and
  below 2**32, unique within the vector;
- weights are finite and ``>= 0``; zero weights carry no information and are dropped;
- ``indices`` and ``values`` are 1-D and have the same length.

:func:`validate_embedding` checks it and raises :class:`ValueError` naming the row and the
field at fault. It never repairs a vector silently (dropping zeros is part of the
contract, not a repair, and can be switched off).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SparseEmbedding",
    "as_sparse_embedding",
    "validate_embedding",
    "validate_embeddings",
    "to_csr_arrays",
]

_MAX_TERM_ID = 2**32 - 1


@dataclass(eq=False)
class SparseEmbedding:
    """A sparse vector: ``indices`` (int32/uint32 term ids) and ``values`` (float32 weights).

    Lists are converted to arrays; ``values`` is stored as float32. Nothing else is
    checked on construction (use :func:`validate_embedding` for the full contract).
    """

    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        if indices.size == 0 and indices.dtype.kind not in "iu":
            indices = indices.astype(np.int32)
        self.indices = indices
        values = np.asarray(self.values)
        if values.dtype.kind in "fiub" and not _overflows_float32(values):
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
        return cls(
            indices=_int_array(keys),
            values=np.asarray([data[k] for k in keys], dtype=np.float32),
        )

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
    with np.errstate(invalid="ignore"):
        return bool(np.any(np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)))


def _int_array(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        return arr
    if arr.size == 0:
        return arr.astype(np.int32)
    return arr  # left as is: validation names the problem


def as_sparse_embedding(obj: Any) -> SparseEmbedding:
    """Convert what users pass for a sparse vector into a :class:`SparseEmbedding`.

    Accepts a :class:`SparseEmbedding`, any object with ``indices`` and ``values``
    attributes (fastembed's ``SparseEmbedding``), a mapping ``{"indices": ..., "values": ...}``
    (``as_object()`` output), a mapping ``{term_id: weight}`` (``as_dict()`` output), or a pair
    ``(indices, values)``. Raises :class:`TypeError` for anything else. Values are not
    checked here (see :func:`validate_embedding`).
    """
    if isinstance(obj, SparseEmbedding):
        return obj
    if hasattr(obj, "indices") and hasattr(obj, "values") and not isinstance(obj, Mapping):
        return SparseEmbedding(indices=_int_array(obj.indices), values=np.asarray(obj.values))
    if isinstance(obj, Mapping):
        if set(obj.keys()) == {"indices", "values"}:
            return SparseEmbedding(indices=_int_array(obj["indices"]), values=np.asarray(obj["values"]))
        return SparseEmbedding.from_dict(obj)
    if isinstance(obj, tuple) and len(obj) == 2:
        return SparseEmbedding(indices=_int_array(obj[0]), values=np.asarray(obj[1]))
    raise TypeError(
        f"cannot interpret {type(obj).__name__} as a sparse vector: pass a SparseEmbedding, "
        "an object with .indices and .values, {term_id: weight}, "
        '{"indices": [...], "values": [...]} or (indices, values)'
    )


def _where(row: int | None) -> str:
    return f"row {row}" if row is not None else "vector"


def validate_embedding(
    embedding: Any,
    vocab_size: int | None = None,
    *,
    row: int | None = None,
    drop_zeros: bool = True,
) -> SparseEmbedding:
    """Check one vector against the contract; return it as uint32 indices / float32 values.

    ``row`` is the position used in error messages. Zero weights are removed when
    ``drop_zeros`` (the default). Anything else that breaks the contract raises
    :class:`ValueError` (or :class:`TypeError` when the object is not a sparse vector at
    all) naming the row and the field.
    """
    where = _where(row)
    try:
        emb = as_sparse_embedding(embedding)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None
    idx, val = np.asarray(emb.indices), np.asarray(emb.values)
    if idx.ndim != 1:
        raise ValueError(f"{where}: indices must be 1-D, got shape {idx.shape}")
    if val.ndim != 1:
        raise ValueError(f"{where}: values must be 1-D, got shape {val.shape}")
    if idx.shape[0] != val.shape[0]:
        raise ValueError(
            f"{where}: indices and values differ in length ({idx.shape[0]} != {val.shape[0]})"
        )
    if idx.dtype.kind not in "iu":
        if idx.dtype.kind == "b" or idx.dtype == object:
            raise ValueError(f"{where}: indices must be integers, got dtype {idx.dtype}")
        if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
            raise ValueError(
                f"{where}: indices must have an integer dtype, got {idx.dtype} "
                "(convert with np.asarray(indices, dtype=np.uint32))"
            )
        raise ValueError(f"{where}: indices must be integers, got dtype {idx.dtype}")
    if val.dtype.kind not in "fiu":
        raise ValueError(f"{where}: values must be numbers, got dtype {val.dtype}")
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0:
            bad = int(np.argmax(idx < 0))
            raise ValueError(f"{where}: indices[{bad}] = {int(idx[bad])} is negative")
        limit = _MAX_TERM_ID if vocab_size is None else int(vocab_size) - 1
        if hi > limit:
            bad = int(np.argmax(idx > limit))
            what = "the vocabulary size" if vocab_size is not None else "2**32"
            bound = vocab_size if vocab_size is not None else 2**32
            raise ValueError(
                f"{where}: indices[{bad}] = {int(idx[bad])} is not below {what} ({bound})"
            )
    if _overflows_float32(val):
        bad = int(np.argmax(np.isfinite(val) & (np.abs(val) > np.finfo(np.float32).max)))
        raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is not finite in float32")
    val32 = val.astype(np.float32, copy=False)
    if val32.size:
        finite = np.isfinite(val32)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is not finite")
        if (val32 < 0).any():
            bad = int(np.argmax(val32 < 0))
            raise ValueError(f"{where}: values[{bad}] = {float(val[bad])!r} is negative")
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
    embeddings: Iterable[Any], vocab_size: int | None = None, *, drop_zeros: bool = True
) -> list[SparseEmbedding]:
    """:func:`validate_embedding` on each item, rows numbered from 0."""
    return [
        validate_embedding(e, vocab_size, row=i, drop_zeros=drop_zeros)
        for i, e in enumerate(embeddings)
    ]


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
