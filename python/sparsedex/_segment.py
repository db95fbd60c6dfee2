"""SegmentView: the engine's own read-only view of one immutable segment (not for users).

Users have one index class, :class:`sparsedex.SparseIndex` (``SparseIndex(None)`` or
``SparseIndex.create(path)`` for vectors you bring, bulk CSR / scipy input included), one
directory format (rust/core/FORMAT.md) and one id system. ``SegmentView`` wraps one engine
segment (``_core.Index``): built from CSR arrays, a scipy sparse matrix or a list of vectors,
searched exactly, written to and read from one segment file (``seg-N.sdx`` of the index
directory format). The tests use it as the reference beside the store, and the benchmark
harness to measure the engine without the store around it.

sparsedex 0.1's ``VectorIndex`` directories (``sparsedex.json`` + ``vectors.sdx``) are opened
by :meth:`sparsedex.SparseIndex.open` (see ``_legacy.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ._shown import shown
from . import _core, _validate
from .vectors import _array, _clean_by_engine, _first_pandas_missing, repeated_entry, to_csr_arrays

__all__ = ["SegmentView", "to_csr", "to_query"]


def _row(v: Any, i: int | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One sparse vector as (indices uint32, values float32); errors name the row."""
    where = f"{what} {i}" if i is not None else what
    if hasattr(v, "indices") and hasattr(v, "values"):  # SparseEmbedding, fastembed's too
        idx, val = v.indices, v.values
    elif isinstance(v, dict):
        idx, val = list(v.keys()), list(v.values())
    elif isinstance(v, (tuple, list)) and len(v) == 2:
        idx, val = v
    else:
        raise TypeError(f"{where}: expected (indices, values), a dict {{term_id: weight}} or a SparseEmbedding, got {type(v).__name__}")
    idx = _array(idx)  # a list holding a bool stays an object array: refused below
    val = _array(val)
    if idx.ndim != 1 or val.ndim != 1:
        raise ValueError(f"{where}: indices and values must be 1-d")
    if idx.shape != val.shape:
        raise ValueError(f"{where}: indices and values have different lengths ({idx.shape[0]} vs {val.shape[0]})")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{where}: term ids must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() > np.iinfo(np.uint32).max):
        bad = idx[(idx < 0) | (idx > np.iinfo(np.uint32).max)][0]
        raise ValueError(f"{where}: term id {bad} is out of range")
    if val.size and not (np.issubdtype(val.dtype, np.floating) or np.issubdtype(val.dtype, np.integer)):
        raise ValueError(f"{where}: weights must be numbers, got dtype {val.dtype}")
    return _validate.c_array(idx, np.uint32), _validate.c_array(val, np.float32)


def _is_int_vector(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and (np.issubdtype(x.dtype, np.integer) or x.size == 0)
    if isinstance(x, (list, range)):
        return all(isinstance(e, (int, np.integer)) for e in x)
    return False


def to_csr(docs: Any, what: str = "document", vocab_size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise documents to CSR arrays (indptr uint64, indices uint32, values float32).

    Accepts a tuple (indptr, indices, values), a scipy.sparse matrix, or a sequence of vectors
    (SparseEmbedding, (indices, values) pairs or {term_id: weight} dicts). A weight above
    1e14 (:data:`sparsedex.vectors.MAX_WEIGHT`), or a document term id at or above
    ``vocab_size`` (default: none, any 32-bit id) is a ValueError
    naming its row.
    """
    csr = _to_csr(docs, what)
    if what == "document" and vocab_size is None:  # with a vocabulary size, the engine names the row
        _validate.check_csr_terms(csr[0], csr[1], what)
    _validate.check_csr_weights(csr[0], csr[2], what, csr[1])
    return csr


_U32_MAX = 2**32 - 1
_F32_MAX = float(np.finfo(np.float32).max)


def _at(indptr: Any, pos: int) -> tuple[int, int]:
    """(row, position within the row) of flat position ``pos`` of a CSR batch."""
    ip = np.asarray(indptr, dtype=np.int64)
    row = int(np.searchsorted(ip, pos, side="right")) - 1
    return row, pos - int(ip[row])


def _check_term_ids(indptr: Any, indices: np.ndarray, what: str) -> None:
    """ValueError naming the document and position of the first term id that is not an
    integer in 0 .. 2**32 - 1 (checked before the cast to uint32, which would wrap it)."""
    if indices.size == 0:
        return
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{_plural(what)}: term ids must be integers in 0..2**32-1, got dtype {indices.dtype}")
    if int(indices.min()) >= 0 and int(indices.max()) <= _U32_MAX:  # the common case: two passes
        return
    pos = int(np.argmax((indices < 0) | (indices > _U32_MAX)))
    row, j = _at(indptr, pos)
    v = int(indices[pos])
    why = "is negative" if v < 0 else "is not below 2**32 = 4294967296 (term ids are 32-bit unsigned)"
    raise ValueError(f"{what} {row}: indices[{j}] = {shown(v, 40)} {why}")


def _check_values_dtype(values: Any, where: str) -> None:
    """ValueError unless CSR ``values`` are real numbers: booleans are not weights (as in a
    dict or pair row), and strings, complex or other objects get a message naming the array.
    ``where`` begins the message ("documents: CSR", say)."""
    v = np.asarray(values)
    if v.dtype.kind == "b":
        raise ValueError(f"{where} values are booleans (dtype bool): True/False are not weights")
    if v.dtype.kind in "fiu":
        return
    if v.dtype.kind == "O":  # Python numbers in an object array convert; anything else is named
        try:
            np.asarray(v, dtype=np.float64)
            return
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{where} values must be real numbers, got an array of dtype {v.dtype}")


def _check_float32_range(indptr: Any, values: Any, what: str) -> None:
    """ValueError naming the document and position of the first finite weight too large for
    float32 (the cast would make it inf, with a numpy warning, and the message would say inf)."""
    v = np.asarray(values)
    if v.size == 0 or v.dtype.kind != "f" or v.dtype.itemsize <= 4:
        return
    with np.errstate(invalid="ignore"):
        big = np.isfinite(v) & (np.abs(v) > _F32_MAX)
    if big.any():
        pos = int(np.argmax(big))
        row, j = _at(indptr, pos)
        raise ValueError(f"{what} {row}: values[{j}] = {float(v[pos])!r} is not finite in float32")


def _plural(what: str) -> str:
    return "queries" if what == "query" else f"{what}s"


def _pandas_1d(x: Any) -> bool:
    """Whether ``x`` is a 1-d pandas object (a Series, an Index, an array such as ``Int64``)."""
    return type(x).__module__.startswith("pandas") and getattr(x, "ndim", None) == 1 and hasattr(x, "to_numpy")


def _pandas_indptr(x: Any) -> bool:
    """Whether pandas object ``x`` is a CSR indptr as a numpy array would be: a pandas array
    (``Int64`` and the like) or an Index of integers (of strings: texts, helper-163), never one
    vector. A Series is not: a Series of weights indexed by term id is one vector, and an
    integer Series on the default index (term frequencies, ``pd.Series(np.bincount(tokens))``)
    is one too (helper-161: three such Series read as CSR arrays made 2 result lists of 3
    queries)."""
    return _pandas_1d(x) and not hasattr(x, "index") and getattr(x.dtype, "kind", None) in ("i", "u")


def _csr_given(x: Any) -> bool:
    """Whether ``x`` is given as CSR arrays: a tuple whose first item is an array (or, as
    before, a tuple of three whose first item is a list of integers), or a list of three arrays
    whose first is a 1-d integer array. A first item that is a pandas array or Index counts as
    an array (:func:`_pandas_indptr`; the parts after it may be Series, helper-159); a Series
    first is a vector. Anything else is read as one vector a row."""
    if isinstance(x, tuple) and x:
        return isinstance(x[0], np.ndarray) or _pandas_indptr(x[0]) or (len(x) == 3 and (
            _is_int_vector(x[0]) or (x[0] is None and any(isinstance(a, np.ndarray) for a in x[1:]))))
    return (isinstance(x, list) and len(x) == 3 and all(isinstance(a, np.ndarray) or _pandas_1d(a) for a in x)
            and ((isinstance(x[0], np.ndarray) and x[0].ndim == 1 and x[0].dtype.kind in "iu")
                 or _pandas_indptr(x[0])))


def csr_arrays(x: Any, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """CSR arrays ``(indptr, indices, values)`` of a batch (``what``: "document" or "query",
    one a row) with their structure checked, as ``(indptr as int64, indices, values)`` arrays
    (term ids and weights are the caller's to check); None when ``x`` is not given as CSR
    arrays (see :func:`_csr_given`).

    ValueError naming what is wrong: not three arrays; indptr None or not a 1-d integer array,
    empty, not starting at 0, decreasing (naming the row), or not ending at the number of
    entries; indices and values not 1-d arrays of one length, indices not integers, values not
    real numbers.
    """
    if not _csr_given(x):
        return None
    where = f"{_plural(what)}: CSR arrays"
    if len(x) != 3:
        raise ValueError(f"{where} are (indptr, indices, values), got a {type(x).__name__} of {len(x)} items")
    if x[0] is None:
        raise ValueError(f"{where}: indptr is None (give a 1-d integer array: row i is entries indptr[i]:indptr[i+1])")
    for name, part in zip(("indptr", "indices", "values"), x):
        # pandas' <NA> in a nullable array, which numpy makes NaN (or an object), named by position
        hit = _first_pandas_missing(part)
        if hit is not None:
            kind = "a number" if name == "values" else "an integer"
            raise ValueError(f"{where}: {name}[{hit[0]}] is a missing value ({hit[1]}), not {kind}")
    indptr, indices, values = np.asarray(x[0]), np.asarray(x[1]), np.asarray(x[2])
    if indptr.ndim != 1:
        raise ValueError(f"{where}: indptr must be a 1-d array, got shape {indptr.shape}")
    if indptr.size == 0:
        raise ValueError(f"{where}: indptr is empty (it has one entry more than there are rows: [0] for none)")
    if indptr.dtype.kind not in "iu":
        raise ValueError(f"{where}: indptr must have an integer dtype, got {indptr.dtype}")
    if indices.ndim != 1 or values.ndim != 1 or indices.shape != values.shape:
        raise ValueError(
            f"{where}: indices and values must be 1-d arrays of one length, got shapes {indices.shape} "
            f"and {values.shape}"
        )
    if indices.size and indices.dtype.kind not in "iu":
        raise ValueError(f"{where}: indices (term ids) must have an integer dtype, got {indices.dtype}")
    _check_values_dtype(values, f"{where}:")
    if indptr.dtype == np.uint64 and int(indptr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{where}: indptr holds {int(indptr.max())}, more than there can be entries")
    ip = indptr.astype(np.int64)
    if ip[0] != 0:
        raise ValueError(f"{where}: indptr must start at 0, got {int(ip[0])}")
    steps = np.diff(ip)
    if steps.size and int(steps.min()) < 0:
        i = int(np.argmax(steps < 0))
        raise ValueError(f"{where}: indptr decreases at {what} {i}: indptr[{i}] = {int(ip[i])} > "
                         f"indptr[{i + 1}] = {int(ip[i + 1])}")
    if ip[-1] != indices.size:
        raise ValueError(f"{where}: indptr must end at the number of entries ({indices.size}), got {int(ip[-1])}")
    return ip, indices, values


def _to_csr(docs: Any, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    csr = csr_arrays(docs, what)
    if csr is not None:
        indptr, indices, values = csr  # structure and dtypes checked by csr_arrays
        _check_term_ids(indptr, indices, what)
        _check_float32_range(indptr, values, what)
        return (
            _validate.c_array(indptr, np.uint64),
            _validate.c_array(indices, np.uint32),
            _validate.c_array(values, np.float32),
        )
    if hasattr(docs, "tocsr"):  # scipy.sparse
        # COO input whose entries repeat is refused, as CSR's is: tocsr() would sum them,
        # rewriting the input without a word (helper-140)
        rep = repeated_entry(docs) if getattr(docs, "format", None) == "coo" else None
        if rep is not None:
            raise ValueError(f"{what} {rep[0]}: term id {rep[1]} appears more than once")
        m = docs.tocsr()
        if not m.has_sorted_indices:
            if m is docs:  # never reorder the caller's matrix in place
                m = m.copy()
            m.sort_indices()
        _check_term_ids(m.indptr, np.asarray(m.indices), what)
        _check_values_dtype(m.data, f"{_plural(what)}: CSR")
        _check_float32_range(m.indptr, m.data, what)
        return (
            _validate.c_array(m.indptr, np.uint64),
            _validate.c_array(m.indices, np.uint32),
            _validate.c_array(m.data, np.float32),
        )
    rows = [_row(v, i, what) for i, v in enumerate(docs)]  # checked here for row-naming errors
    indptr, indices, values = to_csr_arrays(rows, validate=False)
    return indptr.astype(np.uint64), indices, values


def to_query(query: Any, values: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalise one query: `(indices, values)`, a SparseEmbedding or a dict."""
    if values is not None and _clean_by_engine(query, values):
        return query, values  # a clean, sorted uint32 / float32 query: one engine pass
    idx, val = _row((query, values), None, "query") if values is not None else _row(query, None, "query")
    _validate.check_csr_weights(np.array([0, val.size]), val, "query", idx)
    return idx, val


class SegmentView:
    """An immutable, exact top-k index over non-negative sparse vectors.

    >>> ix = SegmentView.build([([1, 7], [0.5, 1.2]), ([7, 9], [2.0, 0.1])], ids=["a", "b"])
    >>> ids, scores = ix.search([7], [1.0], k=1)
    >>> ids.tolist()
    ['b']
    """

    #: Traversal algorithms; "auto" picks one per query.
    algorithms: tuple[str, ...] = tuple(_core.algorithms())

    def __init__(self, core: _core.Index):
        self._core = core
        ids = core.ids()
        if isinstance(ids, list):
            ids = np.array(ids, dtype=object)
        self._ids: np.ndarray | None = ids
        self._row_of: dict[Any, int] | None = None

    # construction -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        docs: Any,
        ids: Sequence[Any] | np.ndarray | None = None,
        *,
        vocab_size: int | None = None,
        quantization: str = "u8",
        scale: float | None = None,
        store_vectors: bool = True,
        reorder: bool | str = True,
    ) -> "SegmentView":
        """Build from documents (see :func:`to_csr` for accepted shapes).

        ids: one external id per document, all ints or all strings (default: row numbers).
        vocab_size: term ids must be below it (then larger query ids are errors too).
        quantization: "u8" (default; impacts round(w * scale), scale = 255 / max weight unless
        given) or "float" (f32 impacts, float scores).
        store_vectors: keep the original vectors, for `get` (and `explain`'s document weights).
        reorder: the document order: "bp" (the default; True means it), recursive graph
        bisection (Dhulipala et al., KDD 2016; Mackenzie et al., TKDE 2023), "signature" (a
        sort by each document's two heaviest distinctive terms: cheaper, looser blocks) or
        "none" (False). Similar documents next to each other make block-max pruning faster;
        ids, results and the order of equal scores (by id ascending) are unaffected. A ValueError for another name.
        """
        vocab_size = _validate.check_vocab_size(vocab_size)
        indptr, indices, values = to_csr(docs, vocab_size=vocab_size)
        n = len(indptr) - 1
        ids_int = ids_str = None
        if ids is not None:
            if isinstance(ids, (str, bytes, bytearray)):  # one id per character / byte (review34)
                raise TypeError("ids must be a sequence (one id per document), not a string")
            _validate.refuse_unordered(ids, "ids", " (one id per document)")  # helper-145: taken in hash order
            ids_list = list(ids) if not isinstance(ids, np.ndarray) else ids
            if len(ids_list) != n:
                raise ValueError(f"{len(ids_list)} ids given for {n} documents")
            if isinstance(ids_list, np.ndarray) and np.issubdtype(ids_list.dtype, np.integer):
                ids_int = np.ascontiguousarray(ids_list, dtype=np.int64)
            elif all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ids_list):
                ids_int = np.asarray(ids_list, dtype=np.int64)
            elif all(isinstance(x, str) for x in ids_list):
                ids_str = list(ids_list)
            else:
                bad = next((i for i, x in enumerate(ids_list) if not isinstance(x, (str, int, np.integer)) or isinstance(x, bool)), None)
                if bad is not None:
                    raise TypeError(f"id of document {bad} is {_validate.a_type(ids_list[bad])}: ids must be all ints or all strings")
                raise TypeError("ids must be all ints or all strings, not a mix")
            uniq = len(set(ids_list.tolist() if isinstance(ids_list, np.ndarray) else ids_list))
            if uniq != n:
                _validate.refuse_duplicate_ids(ids_list)
        core = _core.Index.build(
            indptr,
            indices,
            values,
            n_terms=vocab_size,
            quantization=quantization,
            scale=scale,
            ids_int=ids_int,
            ids_str=ids_str,
            store_vectors=store_vectors,
            reorder=reorder,
        )
        return cls(core)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "SegmentView":
        """Open one segment file (memory-mapped, checksums verified).

        Raises FileNotFoundError if there is no such file, CorruptIndexError if it is not a
        whole, valid segment."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no segment file there")
        return cls(_core.Index.open(str(p)))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the segment to file ``path`` atomically (a failed write leaves no temporary file)."""
        self._core.save(str(Path(path)))

    def calibrate(self, queries: Any) -> bool:
        """Calibrate approximate search on ``queries`` (a sample of real queries, as
        :meth:`search_batch` takes them: a CSR triple or a scipy.sparse matrix), replacing the
        calibration on pseudo-queries a first approximate search would make. Returns False
        (nothing done) when the segment is searched exactly by approximate searches (no stored
        vectors, or fewer than 8,192 documents). Raises ValueError naming a malformed query, or
        for queries none of which has 10 matching documents or too few for every query-length
        bucket (fewer than 30 in each): the segment keeps its calibration then. Evaluate the
        recall reached on *other* queries than these."""
        ip, ix, vx = to_csr(queries, "query")
        return bool(self._core.calibrate(_validate.c_array(ip, np.uint64),
                                         _validate.c_array(ix, np.uint32),
                                         _validate.c_array(vx, np.float32)))

    # search -----------------------------------------------------------------------------
    def _external(self, rows: np.ndarray) -> np.ndarray:
        if self._ids is None:
            return rows.astype(np.int64, copy=False)
        return self._ids[rows]

    def search(
        self,
        query: Any,
        values: Any = None,
        k: int = 10,
        algorithm: str = "auto",
        target_recall: float | None = None,
        *,
        scores: str = "vectors",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of one query: (ids, scores), best first (ties: lower id first). A u8
        segment returns ``scores``: ``"vectors"`` (the exact float32 top-k of the stored
        vectors; the default) or ``"impacts"`` (the 8-bit scores, see
        :meth:`sparsedex.SparseIndex.search`).

        The query is `(indices, values)` as two arguments or one pair, a SparseEmbedding or a
        dict {term_id: weight}. ``algorithm="approximate"`` with ``target_recall`` in (0, 1]
        (default 0.97) searches approximately at that calibrated recall@10 (see
        :meth:`sparsedex.SparseIndex.search`); it needs ``store_vectors=True`` (searches exactly
        otherwise).
        """
        k = _validate.check_k(k)
        target_recall = _validate.check_target_recall(target_recall)
        idx, val = to_query(query, values)
        rows, out = self._core.search(idx, val, k, algorithm, target_recall=target_recall, scores=scores)
        return self._external(rows), out

    def search_batch(
        self,
        queries: Any,
        k: int = 10,
        algorithm: str = "auto",
        threads: int | None = None,
        target_recall: float | None = None,
        *,
        scores: str = "vectors",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of many queries on all cores: (ids [nq, c], scores [nq, c]), where
        c = min(k, number of documents); ``scores`` as in :meth:`search`.

        Missing hits (fewer than c matching documents) are -1 (None for string ids) with NaN scores.
        """
        k = _validate.check_k(k)
        target_recall = _validate.check_target_recall(target_recall)
        threads = _validate.check_threads(threads)
        indptr, indices, values = to_csr(queries, what="query")
        rows, out_scores = self._core.search_batch(
            indptr, indices, values, k, algorithm, threads, target_recall=target_recall, scores=scores
        )
        if self._ids is None:
            return rows, out_scores
        out = np.empty(rows.shape, dtype=self._ids.dtype)
        ok = rows >= 0
        out[ok] = self._ids[rows[ok]]
        out[~ok] = -1 if self._ids.dtype != object else None
        return out, out_scores

    # documents ----------------------------------------------------------------------------
    def row(self, id: Any) -> int:
        """Internal row number of external id `id` (KeyError if absent)."""
        if self._ids is None:
            if isinstance(id, (int, np.integer)) and 0 <= int(id) < len(self):
                return int(id)
            raise KeyError(id)
        if self._row_of is None:
            self._row_of = {(x.item() if isinstance(x, np.generic) else x): i for i, x in enumerate(self._ids)}
        try:
            return self._row_of[id]
        except KeyError:
            raise KeyError(id) from None

    def get(self, id: Any) -> tuple[np.ndarray, np.ndarray]:
        """The stored vector of document `id`: (indices, values)."""
        return self._core.get(self.row(id))

    def explain(self, query: Any, id: Any, values: Any = None, *, scores: str = "vectors") -> list[dict[str, float]]:
        """Why document `id` scored what it did: one dict per matched term (term, query_weight,
        doc_weight, contribution), largest contribution first; contributions sum to the score
        (``scores`` as in :meth:`search`). A term matches by a positive contribution, as a
        document is a hit by a positive score (a product that underflows float32 is 0)."""
        idx, val = to_query(query, values)
        return [
            {"term": t, "query_weight": qw, "doc_weight": dw, "contribution": c}
            for t, qw, dw, c in self._core.explain(idx, val, self.row(id), scores=scores)
            if c > 0
        ]

    def ids(self) -> np.ndarray:
        """External ids in row order."""
        return self._ids if self._ids is not None else np.arange(len(self), dtype=np.int64)

    def stats(self) -> dict[str, Any]:
        """Counts and sizes: documents, postings, blocks, bytes, quantization, ..."""
        return self._core.stats()

    def __len__(self) -> int:
        return len(self._core)

    def __repr__(self) -> str:
        s = self.stats()
        return f"SegmentView({s['documents']} documents, {s['postings']} postings, {s['quantization']})"
