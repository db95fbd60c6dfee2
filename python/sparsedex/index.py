"""SparseIndex: text (or vectors you bring) in, ranked and explained hits out.

>>> from sparsedex import SparseIndex
>>> index = SparseIndex("splade-tiny")                         # doctest: +SKIP
>>> index.add(["a rock band on tour", "a detective story"], payloads=[{"year": 1984}, None])
>>> index.search("A movie about music", k=1)                  # doctest: +SKIP
[Hit(id=0, score=9.31, payload={'year': 1984})]
>>> print(index.explain("A movie about music", 0))            # doctest: +SKIP

A SparseIndex keeps an encoder (SPLADE, BM25, or none when you bring vectors) and a
:class:`~sparsedex.store.Store`: immutable segments (Rust engine indexes) with the documents'
ids, texts and payloads, deletion bitmaps, and atomic commits.

- In memory (``SparseIndex(encoder)``): what :meth:`~SparseIndex.add` stages is committed
  implicitly before the next read, so a search always sees every added document.
- On disk (``SparseIndex(encoder, path=...)`` or :meth:`SparseIndex.open`): adds, upserts and
  deletes are staged until :meth:`~SparseIndex.commit`, which makes all of them durable and
  visible at once. The first write takes the index's writer lock; readers (other processes,
  or other ``SparseIndex.open`` handles) see the commit they opened until
  :meth:`~SparseIndex.refresh`.

Filters (``search(..., filter={"year": {"$gte": 1990}})``, see :mod:`sparsedex.filters`) and
deletions are applied inside the traversal as allowed-document sets, so a filtered search
returns the true top-k of the matching documents.

BM25 indexes store term frequencies and document lengths; the engine scores
``idf * qtf * tf*(k1+1)/(tf+k1*(1-b+b*dl/avgdl))`` with ``idf = ln(1+(N-df+0.5)/(df+0.5))``
at query time from the live collection's statistics (N, df, average length over the documents
currently in the index), as Lucene and tantivy do (Robertson & Zaragoza, "The Probabilistic
Relevance Framework: BM25 and Beyond", 2009). A commit costs what its new documents cost, and
scores equal a fresh index's over the surviving documents, across adds and deletes. The
statistics can also come from outside (:meth:`SparseIndex.collection_stats`,
``search(..., collection_stats=...)``), so that N shards score exactly like one index.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._shown import shown
from . import _core
from ._core import CorruptIndexError, SparsedexError
from . import _qdrant, _validate
from .filters import Filter, compile_filter
from .lock import calibration_lock
from .store import ClosedIndexError, IndexLockedError, MergePolicy, Snapshot, Store, index_destination
from .vectors import (
    SparseEmbedding,
    checked_csr,
    scipy_matrix_csr,
    sparse_matrix_rows,
    to_csr_arrays,
    validate_embedding,
    validate_embeddings_csr,
)

__all__ = ["SparseIndex", "Hit", "Document", "Explanation", "TermMatch", "IndexLockedError", "MergePolicy"]

_QUANTIZATIONS = ("u8", "float")


# results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One search result: the document's id, its score, its payload (None if it has none, or
    with ``with_payload=False``) and, with ``with_vectors=True``, its stored vector (a
    :class:`~sparsedex.SparseEmbedding`, as :meth:`SparseIndex.get` returns it; None otherwise).

    The stored vector is the one added, in float32 (BM25 indexes: the term frequencies). The
    score is the float32 dot product of the query with ``vector`` (f32 products added in
    ascending term id order: the score a ``"float"`` index gives; scipy or numpy in float32
    agree up to their own summation order), for
    ``quantization="float"`` and, by default, for ``quantization="u8"`` too: a ``u8`` index
    finds candidates with its 8-bit impacts and ranks them by the stored vectors, with a
    bound on the 8-bit rounding that proves no other document could enter, so its exact
    algorithms return the exact float32 top-k. Three exceptions keep the 8-bit score (each
    weight rounded to the index's grid, e.g. 0.5 scores as 0.502): ``scores="impacts"`` (see
    :meth:`SparseIndex.search`); a low-level ``u8`` segment built without its vectors
    (``SegmentView.build(..., store_vectors=False)``; a :class:`SparseIndex` always keeps
    them), which has no float vectors to rank by; and a BM25 index with ``quantization="u8"``
    (the default of ``SparseIndex("bm25")``), whose stored vectors are term frequencies: its
    scores use 8-bit BM25 term weights (within about 0.5% of float BM25; ``quantization="float"``
    gives float BM25 scores). ``algorithm="approximate"`` hits carry float32 scores wherever
    float vectors are stored."""

    id: Any
    score: float
    payload: dict[str, Any] | None = None
    vector: SparseEmbedding | None = None

    def __repr__(self) -> str:
        p = "" if self.payload is None else f", payload={self.payload!r}"
        v = "" if self.vector is None else f", vector=<{self.vector.nnz} terms>"
        return f"Hit(id={self.id!r}, score={self.score:.4f}{p}{v})"


_new_object = object.__new__
_set_attribute = object.__setattr__


def _hit(id: Any, score: float, payload: Any = None, vector: Any = None) -> Hit:
    """``Hit(id, float(score), payload, vector)`` made directly, as the search paths make
    tens of them per call: the frozen dataclass's ``__init__`` adds a call and its checks to
    the four ``object.__setattr__`` it makes (0.43 against 0.33 us per hit on a quiet
    machine). The same object, of the same size (setting the fields one by one keeps the
    instance dictionary shared-key; assigning a whole ``__dict__`` doubled it, review33)."""
    h = _new_object(Hit)
    _set_attribute(h, "id", id)
    _set_attribute(h, "score", float(score))
    _set_attribute(h, "payload", payload)
    _set_attribute(h, "vector", vector)
    return h


@dataclass(frozen=True)
class Document:
    """A stored document: id, text (None if not kept), payload and its stored vector: the
    one added, in float32 (BM25 indexes: the term frequencies), not the 8-bit impacts a
    ``u8`` index scores with (see :class:`Hit`)."""

    id: Any
    text: str | None
    payload: dict[str, Any] | None
    vector: SparseEmbedding

    def __repr__(self) -> str:
        text = self.text if self.text is None or len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"Document(id={self.id!r}, text={text!r}, payload={self.payload!r}, "
            f"vector=<{self.vector.nnz} terms>)"  # not a field of its own (helper-111: nnz= read as one)
        )


@dataclass(frozen=True)
class TermMatch:
    """One matched term of an explanation."""

    term_id: int
    token: str
    query_weight: float
    doc_weight: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why document ``id`` scored ``score`` for a query.

    ``matches``: the terms query and document share whose contribution is positive, largest
    contribution first (a shared term whose product underflows float32 to 0 is not a match, as
    a document scoring 0 is not a hit of :meth:`SparseIndex.search`); their
    contributions sum to ``score`` (computed in the index's own arithmetic, so with a ``u8``
    index the weights are the dequantized ones the index scores), and each is
    ``query_weight * doc_weight``. ``query_terms`` and
    ``document_terms``: the two vectors decoded to (token, weight), highest first, which shows
    how an expanding encoder such as SPLADE rewrote both texts (BM25: the query's ``idf * qtf``
    and the document's term frequencies, its stored vector; ``matches`` give the document
    weights BM25 scores).
    """

    id: Any
    score: float
    matches: list[TermMatch]
    query_terms: list[tuple[str, float]] = field(default_factory=list)
    document_terms: list[tuple[str, float]] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.matches)

    def __len__(self) -> int:
        return len(self.matches)

    def table(self, limit: int | None = 20) -> str:
        """The matched terms as a text table (``limit`` rows, an integer >= 0 or None for all;
        the rest summed in one line)."""
        if limit is not None:
            # -1 took all rows but the last (helper-129)
            limit = _validate.check_int(limit, "limit", 0, 2**63 - 1)
        rows = self.matches if limit is None else self.matches[:limit]
        rest = self.matches[len(rows):]
        label = f"({len(rest)} more)"
        cells = [(m.token, f"{m.query_weight:.4f}", f"{m.doc_weight:.4f}", f"{m.contribution:.4f}") for m in rows]
        if rest:
            cells.append((label, "", "", f"{sum(m.contribution for m in rest):.4f}"))
        cells.append(("total", "", "", f"{self.score:.4f}"))
        head = ("term", "query", "document", "contribution")
        # each column as wide as its widest cell (a weight of 1e8 pushed the columns after it
        # out of line, helper-130; the rest's label the term column, helper-129)
        w = [max([len(head[c]), 8 if c in (1, 2) else 0] + [len(r[c]) for r in cells]) for c in range(4)]

        def line(r: tuple[str, ...]) -> str:
            return f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}"

        return "\n".join([line(head), line(tuple("-" * x for x in w)), *map(line, cells)])

    def __str__(self) -> str:
        head = f"document {self.id!r}: score {self.score:.4f} from {len(self.matches)} matched terms"
        return head + "\n" + self.table()

    def __repr__(self) -> str:
        top = ", ".join(f"{m.token}={m.contribution:.3g}" for m in self.matches[:5])
        more = ", ..." if len(self.matches) > 5 else ""
        return f"Explanation(id={self.id!r}, score={self.score:.4f}, matches=[{top}{more}])"


# helpers ------------------------------------------------------------------------------------
def _make_encoder(encoder: Any) -> Any:
    if encoder is None:
        return None
    if isinstance(encoder, (str, os.PathLike)):
        name = os.fspath(encoder)
        if name.lower() == "bm25":
            from .encoders.bm25 import Bm25Encoder

            return Bm25Encoder()
        if name.lower() == "qdrant/bm25":  # fastembed's BM25; the index applies IDF (Qdrant's Modifier.IDF)
            from .encoders.fastembed_bm25 import FastembedBm25Encoder

            return FastembedBm25Encoder()
        from .encoders.splade import SpladeEncoder

        return SpladeEncoder(name)
    if not (hasattr(encoder, "encode_documents") and hasattr(encoder, "encode_queries")):
        raise TypeError(
            f"encoder must be 'splade-tiny', 'bm25', 'Qdrant/bm25', a model name or directory, a SpladeEncoder, "
            f"a Bm25Encoder or None (vectors you bring), got {type(encoder).__name__}"
        )
    return encoder


def encode_for_index(encoder: Any, texts: list[str]) -> list[Any]:
    """The vectors an index stores for document ``texts``: ``encoder.encode_documents``, with
    blank texts (no token of their own) as empty vectors for SPLADE encoders, as blank queries
    are (the model would give them the weights of its special tokens, and they would rank
    first for common words); BM25 encoders give blank texts empty vectors already."""
    from .encoders.splade import SpladeEncoder

    if isinstance(encoder, SpladeEncoder):
        return list(encoder.encode_documents(texts, blank_as_empty=True))
    return list(encoder.encode_documents(texts))


def _is_bm25(encoder: Any) -> bool:
    return getattr(encoder, "kind", None) == "bm25"


# Encoder kinds whose term ids mean different things: an index built with one is searched with
# another only by mistake (its queries' term ids name other terms, and the next commit would
# record the other encoder as the index's).
_KNOWN_KINDS = ("splade", "bm25", "fastembed-bm25")


def _kind_of(ident: Any) -> Any:
    """What of an encoder identity decides its vectors (None: vectors you bring): a SPLADE
    model's kind, model and vocabulary size; every other setting of other kinds (BM25's term
    dictionary aside, which grows with the index)."""
    if not isinstance(ident, Mapping):
        return None
    if ident.get("kind") == "splade":
        return ("splade", ident.get("model_sha256") or ident.get("model"), ident.get("vocab_size"))
    rest = {k: v for k, v in ident.items() if k not in ("vocabulary", "vocab_size")}
    return json.dumps(rest, sort_keys=True, default=str)


#: Engine stats of one segment that do not add up over segments (``info()``).
_PER_INDEX_STATS = ("vocabulary", "terms", "scale")


def _check_saved_identity(path: Any, ident: Any, bm25_engine: bool) -> None:
    """:class:`CorruptIndexError` naming ``path`` unless ``ident``, the encoder identity of an
    index's settings, is one this library writes: none, or an object naming its kind (a
    custom encoder's ``identity()`` names its own, and such an index opens with
    ``encoder=``), BM25 exactly where the engine weights with BM25, a SPLADE model named by a
    string. Hand-edited settings (checksums and all) gave AttributeError or KeyError at the
    first text search, or opened a BM25 engine as an index of vectors you bring (helper-127)."""
    kind = ident.get("kind") if isinstance(ident, dict) else None
    problem = None
    if ident is None:
        if bm25_engine:
            problem = "the engine weights with BM25 but the settings name no encoder"
    elif not isinstance(ident, dict):
        problem = f"the encoder identity is a {type(ident).__name__}, not an object"
    elif not (isinstance(kind, str) and kind):
        problem = f"the encoder identity names no kind (kind {kind!r})"
    elif (kind == "bm25") != bm25_engine:
        engine = "weights with BM25" if bm25_engine else "does not weight with BM25"
        problem = f"the settings name a {kind} encoder but the engine {engine}"
    elif kind == "splade" and not (isinstance(ident.get("model"), str) and ident["model"]):
        problem = "the SPLADE encoder names no model"
    if problem is not None:
        raise CorruptIndexError(f"{path}: unreadable encoder settings ({problem})")


def _describe_identity(ident: Mapping[str, Any]) -> str:
    kind = ident.get("kind")
    if kind == "splade":
        return f"SPLADE ({ident.get('model')!s}, vocabulary of {ident.get('vocab_size')})"
    if kind == "bm25":
        return "BM25"
    if kind == "fastembed-bm25":
        return f"Qdrant/bm25 ({ident.get('language')})"
    return repr(kind)


def _missing_query(q: Any) -> str | None:
    """How a query that is a missing value reads in a message ("None", "a missing value
    (pandas' <NA>)"); None for any other query."""
    m = _validate.missing_value(q)
    return m if m is None or q is None else f"a missing value ({m})"


def _encoder_mismatch(saved: Any, encoder: Any) -> str | None:
    """Why ``encoder`` cannot encode for an index whose saved encoder identity is ``saved``,
    or None when it can (or when either side is unknown: vectors you bring, a custom encoder).
    Another kind of encoder, a SPLADE model of another vocabulary, BM25 or Qdrant/bm25 of any
    other setting (analyzer, k1 / b, language, ...): each gives term ids or weights that do not
    match the index's documents. A BM25 encoder for an index of vectors you bring (saved
    ``None``) too: BM25 indexes keep term frequencies and document lengths, and its term ids
    would name the vectors' terms (helper-111: accepted, the user's vectors matched BM25 query
    words, and the next commit recorded the index as a BM25 index); and Qdrant/bm25, whose
    queries are weighted by the index's idf (helper-112: the same vector query scored 1.04 where
    it scored 1.5)."""
    if not hasattr(encoder, "identity") or not (saved is None or isinstance(saved, Mapping)):
        return None
    given = encoder.identity(include_vocabulary=False) if _is_bm25(encoder) else encoder.identity()
    if not isinstance(given, Mapping):
        return None
    if saved is None:
        if given.get("kind") in ("bm25", "fastembed-bm25"):
            return f"the index was built from vectors you bring, not with {_describe_identity(given)}"
        return None
    sk, gk = saved.get("kind"), given.get("kind")
    if sk not in _KNOWN_KINDS or gk not in _KNOWN_KINDS:
        return None
    if sk != gk:
        return f"the index was built with {_describe_identity(saved)}, not {_describe_identity(given)}"
    if sk == "splade":
        if saved.get("vocab_size") != given.get("vocab_size"):
            return (f"the index was built with {_describe_identity(saved)}; this model has a vocabulary of "
                    f"{given.get('vocab_size')}")
        for key, what in (("model_sha256", "model.onnx"), ("data_sha256", "external data")):
            ss, gs = saved.get(key), given.get(key)
            if ss and gs and ss != gs:
                # helper-139, helper-141: a model of the same vocabulary size was taken, and searched
                # with vectors of another model (loading the recorded model checks them likewise)
                # helper-145: the same model in another file layout (weights inline or in an external
                # data file, or saved again by onnx.save) hashes differently too: refused, but said so
                return (f"the index was built with {_describe_identity(saved)}, whose {what} has sha256 "
                        f"{ss[:16]}...; this model's is {gs[:16]}... (another model, or one changed since; the "
                        "same model saved in another file layout, its weights inline or in an external data file "
                        "or saved again by onnx.save, differs too: use the copy of the model the index was built "
                        "with, or re-index with this one)")
        return None
    # BM25 and Qdrant/bm25: every setting but the term dictionary, which grows with the index
    keys = [k for k in dict.fromkeys([*saved, *given]) if k not in ("vocabulary", "vocab_size")]
    differ = [k for k in keys if saved.get(k) != given.get(k)]
    if differ:
        shown = ", ".join(f"{k} {saved.get(k)!r} (given {given.get(k)!r})" for k in differ)
        return f"the index was built with {_describe_identity(saved)} of other settings: {shown}"
    return None


def check_encoder_matches(path: Any, saved: Any, encoder: Any) -> None:
    """ValueError naming both when ``encoder`` cannot encode for the index at ``path``, whose
    saved encoder identity is ``saved`` (:func:`_encoder_mismatch`)."""
    why = _encoder_mismatch(saved, encoder)
    if why is not None:
        head = f"{path}: {why}, whose vectors do not match its documents'"
        err = ValueError(head + " (open it without encoder= to use its own)")
        err.cli_message = head + " (run it without --encoder to use its own)"  # type: ignore[attr-defined]
        raise err


#: The largest BM25 k1 a u8 index takes without a warning: top-10 agreement with a float index
#: on Cranfield (60 queries) is 0.997 up to k1=10, 0.985 at 30, 0.953 at 100, 0.860 at 300.
_U8_BM25_K1 = 20.0


def _bulk_csr(docs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """CSR arrays of a scipy.sparse matrix or of CSR arrays ``(indptr, indices, values)``, else
    None (term ids and weights unchecked: the caller checks them once, against its vocabulary;
    the arrays' structure is checked, a ValueError naming what is wrong)."""
    from ._segment import _csr_given, _to_csr

    if hasattr(docs, "tocsr") or _csr_given(docs):
        return _to_csr(docs, "document")
    return None


def query_rows(queries: Any) -> list[Any] | None:
    """The rows of a scipy.sparse matrix (as vectors) or of CSR arrays ``(indptr, indices,
    values)`` (as ``(indices, values)`` pairs), one query a row; None for anything else (a list
    of queries). For the batch calls of SparseIndex and ShardedIndex."""
    rows: list[Any] | None = sparse_matrix_rows(queries)
    return rows if rows is not None else _csr_triple_rows(queries)


def batch_queries(queries: Any) -> list[Any]:
    """The queries of a batch call (SparseIndex and ShardedIndex ``search_batch``,
    ``calibrate``, ``fusion.hybrid_search_batch``), one item a query: a bare text is one
    query, as :meth:`SparseIndex.add` takes one text (iterating it searched each of its
    characters, breaker34); the rows of a scipy.sparse matrix or of CSR arrays ``(indptr,
    indices, values)``; else the items of any iterable. TypeError saying what to pass for None,
    bytes, a dict (that is one vector query) or anything not iterable."""
    if isinstance(queries, str):
        return [queries]
    rows = query_rows(queries)
    if rows is not None:
        return rows
    if queries is None:
        raise TypeError("queries is None: pass a list of texts or sparse vectors")
    if isinstance(queries, Mapping):
        raise TypeError("queries is a dict, which is one vector query: pass a list of queries (or call search())")
    if isinstance(queries, (bytes, bytearray)) or not isinstance(queries, Iterable):
        raise TypeError(f"queries must be a list of texts or sparse vectors, got {type(queries).__name__}")
    if type(queries).__module__.startswith("pandas") and hasattr(queries, "columns"):
        raise TypeError("queries is a pandas DataFrame: pass one column, e.g. df['query']")
    return list(queries)


def _csr_triple(queries: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Queries given as CSR arrays ``(indptr, indices, values)``, one a row, as arrays (indptr
    int64; Python numbers as float64, as add takes them); None when ``queries`` is not given as
    CSR arrays. ValueError when the arrays do not form a CSR matrix
    (:func:`sparsedex._segment.csr_arrays` says which way)."""
    from ._segment import csr_arrays

    csr = csr_arrays(queries, "query")
    if csr is None:
        return None
    ip, indices, values = csr
    if values.dtype.kind == "O":  # Python numbers (checked by csr_arrays)
        values = values.astype(np.float64)
    return ip, indices, values


def _csr_triple_rows(queries: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The rows of CSR arrays (:func:`_csr_triple`) as ``(indices, values)`` pairs, which the
    caller validates as any query vector (errors name ``query i``)."""
    csr = _csr_triple(queries)
    if csr is None:
        return None
    ip, indices, values = csr
    return [(indices[a:b], values[a:b]) for a, b in zip(ip[:-1].tolist(), ip[1:].tolist())]


def _whole_query_csr(queries: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The CSR arrays ``(indptr int64, indices, values)`` of queries given as a 2-D scipy.sparse
    matrix (as :func:`query_rows` reads it) or as CSR arrays; None for anything else, and for
    arrays whose structure is wrong (:func:`query_rows` then raises)."""
    m = scipy_matrix_csr(queries)
    if m is not None:
        return m
    try:
        return _csr_triple(queries)
    except ValueError:
        return None


def _csr(vectors: Sequence[SparseEmbedding]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays of already validated vectors (int64 indptr; no rows for none)."""
    if not vectors:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.float32)
    return to_csr_arrays(vectors, validate=False)


# the index ----------------------------------------------------------------------------------



def _one_view(method: Any) -> Any:
    """Run a read on one view of the index (snapshot and encoder: see ``SparseIndex._view``)."""

    @functools.wraps(method)
    def read(self: "SparseIndex", *args: Any, **kwargs: Any) -> Any:
        pins = self._pins
        if getattr(pins, "view", None) is not None:  # a nested call reads the caller's view
            return method(self, *args, **kwargs)
        pins.view = self._view()
        try:
            store = getattr(self, "_store", None)
            if store is not None:
                store.check_rewritten(pins.view[0])
            return method(self, *args, **kwargs)
        except (SparsedexError, ValueError) as e:
            err = _files_changed_under(self, e)
            if err is e:
                raise
            raise err from e
        finally:
            pins.view = None

    return read


def _files_changed_under(ix: "SparseIndex", e: Exception) -> Exception:
    """``e``, or, when it is the engine's internal error or a ValueError and a file of the
    handle's commit was rewritten under it since it was read (files copied over the directory
    of an open index: the memory-mapped bytes changed under the search; get()'s KeyError too), a
    :class:`CorruptIndexError` that says so (it read "internal error (please report it)", or
    named statistics the user never gave, helper-88)."""
    # a documents file that fails to read (SQLite's "malformed") may be one rewritten under the
    # handle too: then say so (helper-114: it read "unreadable" alone)
    if isinstance(e, SparsedexError) and not (str(e).startswith("internal error") or isinstance(e, CorruptIndexError)):
        return e
    store = getattr(ix, "_store", None)
    err = store.rewritten_files_error() if store is not None else None
    return e if err is None else err


# Every SparseIndex of this process: a fork() child gets fresh locks for them, as for the
# stores (see store._after_fork_in_child); a refresh() another thread had half done at the fork
# is not waited for by the child's reads (its odd epoch would make them wait for ever).
_HANDLES: "weakref.WeakSet[SparseIndex]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for ix in list(_HANDLES):
        ix._lock = threading.RLock()
        if ix._epoch & 1:
            ix._epoch += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

class SparseIndex:
    """A searchable, explainable, updatable collection of documents.

    Parameters
    ----------
    encoder:
        ``"splade-tiny"`` (default; bundled, works offline), ``"bm25"``, ``"Qdrant/bm25"``
        (fastembed's BM25 vectors; IDF applied to every query, as Qdrant's ``Modifier.IDF``), another SPLADE model
        name (``"prithivida/Splade_PP_en_v1"``) or a directory holding ``model.onnx`` and
        ``tokenizer.json``, a :class:`~sparsedex.encoders.SpladeEncoder` or
        :class:`~sparsedex.encoders.Bm25Encoder` instance, or ``None`` to add and search with
        sparse vectors you bring.
    quantization:
        ``"u8"`` (8-bit impacts: smaller, faster, scores slightly rounded) or ``"float"``
        (f32 impacts, exact float scores). The default ``"u8"`` moves the reference
        effectiveness numbers of the test collections by at most 0.003 (see README).
    store_texts:
        Keep each added text (returned by :meth:`get`, saved with the index).
    vocab_size:
        Vectors-you-bring only: term ids must be below it, an integer in ``1 .. 2**32 - 1``
        (default: none, any 32-bit term id; memory follows the number of distinct terms, see
        :mod:`sparsedex.vectors`).
    path:
        A directory for a durable index (created; it must not hold an index already). Changes
        are then staged until :meth:`commit`. Without a path the index lives in memory.
    merge_policy:
        How segments are merged as documents arrive (default :class:`MergePolicy`:
        tiered, factor 10). ``MergePolicy(factor=0)`` never merges on its own.
    max_weight:
        ``u8`` only: the largest document weight the 8-bit grid covers (impact =
        ``round(w * 255 / max_weight)``), shared by every segment. Default: the largest weight
        of the first commit. Search results do not depend on it (exact search returns float32
        scores from the stored vectors); the 8-bit scores of ``scores="impacts"`` do. A
        segment holding a larger weight gets its own, coarser grid (its 8-bit scores then
        differ from a single index's by the rounding); with an explicit ``max_weight``, adding
        such a weight also warns (``UserWarning`` naming the document and the weight). Weights
        are never clipped.
    reorder:
        The document order inside each segment, at every commit and merge (kept with the
        index): ``"bp"`` (the default; True means it), recursive graph bisection (Dhulipala et
        al., "Compressing graphs and indexes with recursive graph bisection", KDD 2016;
        Mackenzie et al., "Tradeoff options for bipartite graph partitioning", TKDE 2023),
        which puts documents about the same thing in the same 64-document blocks so that
        block-max pruning skips more; ``"signature"``, a sort by each document's two heaviest
        distinctive terms (cheaper to build, looser blocks); ``"none"`` (False), the order of
        arrival. With ``"bp"``, a commit of fewer than 32,768 documents gets the signature
        order: BP costs about four times a build and small segments are soon merged. Merges
        concatenate their members (no reordering); a merged segment of at least 32,768
        documents is reordered later by a background job, when the writer is idle or the
        segment has lived through many commits (:class:`MergePolicy`; force it with
        ``wait_for_merges(reorder=True)`` or ``merge()``), so a bulk load does not pay for
        orders its segments keep only until their next merge (``benches/updates.py``). Ids,
        results, scores and the order of equal scores (by id) do not depend on it. A ValueError for another name.

    Notes
    -----
    Reads (search, get, ids, len, explain) see the last commit. An in-memory index commits
    implicitly before each read, so it always shows every added document.

    What is accepted (checked at the door: a refused call changes nothing, and nothing that
    could make a later commit fail is ever staged; see :mod:`sparsedex._validate`): texts of
    valid Unicode (a lone surrogate such as ``"\\ud800"`` is refused); ids that are ints in the
    signed 64-bit range or strings; payloads stored exactly or refused
    (:func:`sparsedex.filters.normalize_payload`: JSON values, numpy scalars as the Python
    value equal to them; tuples, non-string keys, NaN are refused); vectors meeting
    :mod:`sparsedex.vectors`' contract (weights finite, ``>= 0``, at most 1e14; no bools);
    ``k`` in ``1 .. 2**63 - 1`` and ``threads`` in ``1 .. 4 x cores``. Errors name the
    document (``document 3``) or the query and what is wrong.
    """

    def __init__(
        self,
        encoder: Any = "splade-tiny",
        quantization: str = "u8",
        *,
        store_texts: bool = True,
        vocab_size: int | None = None,
        path: str | os.PathLike[str] | None = None,
        merge_policy: MergePolicy | None = None,
        max_weight: float | None = None,
        reorder: str | bool = True,
    ) -> None:
        if quantization not in _QUANTIZATIONS:
            raise ValueError(f"quantization must be 'u8' or 'float', got {quantization!r}")
        self._init_common()
        self._encoder = _make_encoder(encoder)
        self._encoder_identity = None  # for a lazily re-created encoder
        self._encoder_given = self._encoder is not None
        if vocab_size is not None and self._encoder is not None:
            raise ValueError(
                "vocab_size is for vectors you bring (encoder=None); the encoder fixes the term ids "
                f"(got vocab_size={vocab_size!r} with an encoder)"
            )
        vocab = _validate.check_vocab_size(vocab_size) if self._encoder is None else None
        if max_weight is not None:
            max_weight = _validate.check_weight(max_weight, "max_weight")
        bm25 = (float(self._encoder.k1), float(self._encoder.b)) if _is_bm25(self._encoder) else None
        if bm25 is not None and quantization == "u8" and bm25[0] > _U8_BM25_K1:
            # the 8-bit grid is sized to BM25's bound (k1 + 1) x idf; with a large k1 the weights
            # of real documents use a few of its steps (helper-142: tied and misordered at k1=1000)
            warnings.warn(
                f"BM25 k1={bm25[0]:g} on a u8 index: its 8-bit impacts lose precision past k1={_U8_BM25_K1:g} "
                "(top-10 agreement with a float index 0.985 at k1=30, 0.95 at k1=100 and 0.86 at k1=300 on "
                "Cranfield); use quantization='float'",
                stacklevel=2,
            )
        self._store = Store(
            path,
            quantization=quantization,
            vocab_size=vocab,
            # an explicit max_weight is remembered: a heavier weight is then warned about
            settings={"encoder": self._identity_for_store(),
                      **({"max_weight": max_weight} if max_weight is not None else {})},
            merge_policy=merge_policy,
            store_texts=store_texts,
            max_weight=max_weight,
            bm25=bm25,
            reorder=reorder,
        )

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str] | None = None,
        encoder: Any = None,
        quantization: str = "u8",
        **kwargs: Any,
    ) -> "SparseIndex":
        """A new index (at ``path``, or in memory for None); by default for vectors you bring
        (``encoder=None``). Same parameters as the constructor, e.g.
        ``SparseIndex.create("ix", max_weight=3.0)`` fixes the u8 grid (``255 / max_weight``)
        so that 8-bit scores (``scores="impacts"``) do not depend on how documents fall into
        segments or shards."""
        return cls(encoder, quantization, path=path, **kwargs)

    def _init_common(self) -> None:
        self._lock = threading.RLock()
        _HANDLES.add(self)
        self._enc: Any = None
        self._enc_ident: dict[str, Any] | None = None
        self._pins = threading.local()
        self._epoch = 0  # odd while refresh() moves the snapshot and the encoder
        self._vocab_session = 0  # the store's write session whose dictionary _sync_vocabulary checked

    # one view per read ------------------------------------------------------------------------
    # A read (search, search_batch, explain, ...) works on one snapshot and the encoder that
    # goes with it. refresh() moves the snapshot, then the encoder (a directory switched to
    # another BM25 index has another term dictionary): a search that took the new snapshot
    # with the old dictionary, or the other way round, scored other words than the query's
    # (recheck40b H1: 1,194 wrong hits of 15,708 under `serve --refresh-s 0`). A read takes
    # the pair between two refreshes (a seqlock on _epoch) and keeps it, on its thread, for
    # the whole call, nested calls included.
    def _between_refreshes(self, read: Callable[[], Any]) -> Any:
        """``read()`` run with no refresh() moving this handle meanwhile (a seqlock on
        ``_epoch``: run again when one did)."""
        while True:
            e = self._epoch
            if e & 1:  # a refresh is moving this handle: wait for it
                with self._lock:
                    pass
                continue
            out = read()
            if self._epoch == e:
                return out

    def _view(self) -> tuple[Snapshot, Any, Any]:
        # an in-memory index commits what is staged (_snap)
        return self._between_refreshes(lambda: (self._snap(), self._enc, self._enc_ident))

    @property
    def _encoder(self) -> Any:
        view = getattr(self._pins, "view", None)
        return self._enc if view is None else view[1]

    @_encoder.setter
    def _encoder(self, enc: Any) -> None:
        self._enc = enc
        view = getattr(self._pins, "view", None)
        if view is not None:  # loaded lazily during a read: the read's view has it too
            self._pins.view = (view[0], enc, view[2] if enc is None else None)

    @property
    def _encoder_identity(self) -> dict[str, Any] | None:
        view = getattr(self._pins, "view", None)
        return self._enc_ident if view is None else view[2]

    @_encoder_identity.setter
    def _encoder_identity(self, ident: dict[str, Any] | None) -> None:
        self._enc_ident = ident

    def _encoder_pair(self) -> tuple[Any, dict[str, Any] | None]:
        """(encoder, identity) of one index: the read's view when one is pinned, else the pair
        between two refreshes (the same seqlock as :meth:`_view`; no snapshot taken, so an
        in-memory index's staged changes stay staged)."""
        view = getattr(self._pins, "view", None)
        if view is not None:
            return view[1], view[2]
        return self._between_refreshes(lambda: (self._enc, self._enc_ident))

    # encoder ----------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The encoder (None for vectors you bring); re-created on first use after open()."""
        enc, ident = self._encoder_pair()
        if enc is None and ident is not None:
            from .encoders.registry import ModelNotAvailableError, load_encoder

            try:
                enc = load_encoder(ident)  # seconds, outside the lock
            except ModelNotAvailableError as e:
                # the model recorded with the index moved or was removed (helper-137: the bare
                # "unknown model" did not say it was the index's, nor how to give another)
                head = (f"{self.path or 'this index'}: the encoder recorded with the index cannot be "
                        f"re-created: {e}. ")
                err = ModelNotAvailableError(
                    head + "Put the model back, or open the index with another copy of the same model: "
                    "SparseIndex.open(path, encoder=DIR)")
                err.cli_message = head + "Put the model back, or pass --encoder DIR (another copy of the same model)"
                raise err from e
            with self._lock:
                if self._enc is None and self._enc_ident is ident:
                    self._encoder, self._encoder_identity = enc, None
                elif getattr(self._pins, "view", None) is not None:
                    # refresh() moved the handle to another index meanwhile: this read keeps
                    # the encoder of the snapshot it reads
                    self._pins.view = (self._pins.view[0], enc, None)
                elif self._encoder is None:
                    # refresh() moved the handle to another index meanwhile: its encoder
                    return self.encoder
                else:  # loaded meanwhile by another thread, or refresh() set another
                    return self._encoder
        return enc

    @property
    def encoder_identity(self) -> dict[str, Any] | None:
        """What re-creates the encoder (saved with the index); None for vectors you bring."""
        enc, ident = self._encoder_pair()
        if ident is not None:
            return ident
        if enc is None:
            return None
        if not hasattr(enc, "identity"):
            return {"kind": "custom", "class": type(enc).__name__}
        if _is_bm25(enc):
            return enc.identity(include_vocabulary=False)
        return enc.identity()

    def _stamp_encoder(self) -> None:
        """Record the encoder's identity with the next commit when there are staged changes,
        and stage BM25's new terms (those past the committed ones) for the vocabulary file:
        a commit appends only them, whatever the size of the vocabulary."""
        if self._store.has_staged():
            self._store.set_settings({**self._store.settings, "encoder": self._identity_for_store()})
            if self._bm25:
                self._sync_vocabulary()  # a handle that only deleted: its dictionary may be stale
                self._store.stage_terms(self.encoder.vocabulary)

    def _identity_for_store(self) -> dict[str, Any] | None:
        """The encoder identity kept in the index settings. BM25's term dictionary is not in
        it: it lives in the append-only vocabulary file (``vocab-<G>``, see
        rust/core/FORMAT.md), so the settings do not change as the vocabulary grows."""
        ident = self.encoder_identity
        if self._bm25 and ident is not None:
            ident = {k: v for k, v in ident.items() if k not in ("vocabulary", "vocab_size")}
        if isinstance(ident, dict) and ident.get("kind") == "custom":
            # a custom encoder (no identity()) given to open() encodes for the index's own: the
            # index keeps the identity that re-creates it (recording {"kind": "custom"} made the
            # index unopenable without that object: breaker38 recheck)
            saved = self._store.settings.get("encoder") if hasattr(self, "_store") else None
            if isinstance(saved, dict) and saved.get("kind") in _KNOWN_KINDS:
                return saved
        return ident

    def _bm25_terms(self, ident: dict[str, Any]) -> list[str]:
        """The committed BM25 term dictionary: the vocabulary file's terms, or, for an index
        written before the file existed (not yet upgraded by a writer), its settings'."""
        if self._store.vocabulary_len() is not None:
            return self._store.vocabulary()
        terms = ident.get("vocabulary", [])
        return terms if isinstance(terms, list) else []

    def _sync_vocabulary(self) -> None:
        """Give the BM25 encoder the terms other writers committed since it was loaded (the
        dictionary only grows), before it assigns ids to new terms or a commit appends them.
        Under the handle's lock, as the writer.

        The first time after this handle became the writer, its dictionary (loaded from an
        earlier commit) is compared with the committed one: the directory may hold a copy of
        the index that took other terms since (a backup restored with ``cp -r``, a symbolic
        link switched between two copies; same uuid, so the writer's check does not refuse it).
        A dictionary that is not a prefix of the committed one is replaced by it, as
        :meth:`refresh` would: extending it would give committed terms the wrong ids, or append
        terms the index already has (unopenable: "term appears twice")."""
        n = self._store.vocabulary_len()
        if n is None:
            return
        enc = self._enc  # the writer's encoder (not a read's pinned view)
        if enc is None:  # not loaded yet: loaded from the commit the handle is on when used
            if self._epoch & 1:
                return
            enc = self.encoder
        vocab = enc.vocabulary
        session = self._store.write_sessions
        if session != self._vocab_session:
            mark = getattr(vocab, "committed", None)
            if mark is not None and len(vocab) == mark[3] and self._store.vocabulary_extends(mark):
                pass  # the committed vocabulary begins with this dictionary (by its checksum)
            elif len(vocab) > n or self._store.vocabulary(0)[: len(vocab)] != vocab.terms_from(0):
                with self._moving():
                    self._reload_bm25_encoder()
                vocab = self._enc.vocabulary
            self._vocab_session = session
        if len(vocab) < n:
            vocab.extend(self._store.vocabulary(len(vocab)))

    def _writer_moves(self, load: Callable[[], Any]) -> None:
        """Run by the store as this handle becomes the writer (its first add, delete, commit
        or merge): ``load`` moves it to the newest commit, and BM25's term dictionary moves
        with it (:meth:`_sync_vocabulary`), in one step for reads (the seqlock of
        :meth:`_view`), as :meth:`refresh` moves both. Before, after a ``merge()`` or
        ``delete()`` the handle searched the newer commit with its old dictionary (another
        writer's new words found nothing, or, after a backup was restored under it, other
        documents) until its next add, and reads in between paired the two (helper-87)."""
        # every path here holds the lock already (the order is this lock, then the store's)
        with self._lock, self._moving():
            load()
            if self._enc is not None and self._bm25 and hasattr(self._enc, "vocabulary"):
                self._sync_vocabulary()

    @contextlib.contextmanager
    def _moving(self) -> Iterator[None]:
        """The writer side of the seqlock of :meth:`_view`: ``_epoch`` is odd while the handle
        moves its snapshot and encoder (reads wait, then read the pair again). Re-entrant: a
        move inside a move (the dictionary reloaded while the writer moves, inside a refresh)
        leaves the count alone. The caller holds ``_lock``."""
        if self._epoch & 1:
            yield
            return
        self._epoch += 1  # odd: reads wait
        try:
            yield
        finally:
            self._epoch += 1

    @property
    def _has_encoder(self) -> bool:
        return self._encoder is not None or self._encoder_identity is not None

    @property
    def _bm25(self) -> bool:
        ident = self._encoder_identity
        if ident is not None:
            return ident.get("kind") == "bm25"
        return _is_bm25(self._encoder)

    @property
    def quantization(self) -> str:
        return self._store.quantization

    @property
    def store_texts(self) -> bool:
        return self._store.store_texts

    @property
    def path(self) -> Path | None:
        """The index directory (None for an in-memory index)."""
        return self._store.path

    # adding -----------------------------------------------------------------------------------
    def _prepare(
        self,
        documents: Any,
        ids: Sequence[Any] | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        *,
        upsert: bool,
    ) -> tuple[list[Any], tuple[np.ndarray, np.ndarray, np.ndarray], list[dict[str, Any] | None], list[str | None]]:
        new_ids, csr, pls, _stored, texts = self._prepare_stored(documents, ids, payloads, upsert=upsert)
        return new_ids, csr, pls, texts

    def _prepare_stored(
        self,
        documents: Any,
        ids: Sequence[Any] | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        *,
        upsert: bool,
    ) -> tuple[
        list[Any], tuple[np.ndarray, np.ndarray, np.ndarray], list[dict[str, Any] | None], list[str | None],
        list[str | None],
    ]:
        """ids, CSR arrays (term ids and weight limits checked; the rest is the store's check
        as it stages them), payload copies, their stored JSON forms, texts."""
        bulk = _bulk_csr(documents)
        if bulk is not None:
            if self._has_encoder:
                raise TypeError("this index encodes texts: pass a list of texts, not a sparse matrix")
            # checked here for the errors that name the vocabulary and the weight limit; the
            # rest (NaN, negative, repeated term ids) once, by the store as it stages the rows
            indptr, indices, values = bulk
            _validate.check_csr_terms(indptr, indices, vocab_size=self._store.vocab_size)
            _validate.check_csr_weights(indptr, values, indices=indices)
            csr = (indptr, indices, values)
            n = len(indptr) - 1
            texts: list[str | None] = [None] * n
        else:
            if isinstance(documents, str) or (not isinstance(documents, Sequence) and hasattr(documents, "indices")):
                documents = [documents]
            docs = _validate.documents_list(documents)
            n = len(docs)
            if self._has_encoder:
                for i, d in enumerate(docs):
                    if _validate.missing_value(d) is not None:
                        _validate.check_text(d, f"document {i}")  # None, NaN, pandas' NA: named so
                    if not isinstance(d, str):
                        raise TypeError(
                            f"document {i} is {_validate.a_type(d)}: this index encodes texts "
                            f"(create SparseIndex(encoder=None) to add vectors you bring)"
                        )
                texts = list[str | None](_validate.check_texts(docs))
            else:
                for i, d in enumerate(docs):
                    if isinstance(d, str):
                        raise TypeError(
                            f"document {i} is a text but this index has no encoder: pass vectors, or "
                            "create SparseIndex('splade-tiny') / SparseIndex('bm25') for texts"
                        )
                texts = [None] * n
        new_ids = self._check_ids(ids, n, upsert=upsert)
        pls, stored = _validate.normalize_payloads_stored(payloads, n)
        if bulk is not None:
            return new_ids, csr, pls, stored, texts
        if self._has_encoder:
            vectors = encode_for_index(self.encoder, docs) if n else []
        else:
            limit, name = _validate.vocab_limit(self._store.vocab_size)
            return new_ids, validate_embeddings_csr(docs, limit, what="document", limit_name=name), pls, stored, texts
        return new_ids, _csr(vectors), pls, stored, texts

    def add(
        self,
        documents: str | Iterable[Any],
        ids: Sequence[Any] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Any]:
        """Add documents: texts (with an encoder) or sparse vectors (without one).

        documents: a list of texts, or of vectors (SparseEmbedding, ``(indices, values)``,
        ``{term_id: weight}``); one text alone is one document. Many vectors at once go fastest
        as a scipy.sparse matrix or CSR arrays ``(indptr, indices, values)`` (one row each).
        ids: one per document, all ints or all strings, unique in the index (default: running
        integers continuing from the largest int id ever added). An id already in the index
        is an error: :meth:`upsert` replaces documents. The kind of the index's ids is set by
        its first add (only a :meth:`rollback` of it, before any commit, undoes it) and kept
        for good, also once every document is deleted, whether or not a commit came between
        the delete and the next add: an index of int ids takes no str id, and the reverse.
        payloads: one JSON-like dict (or None) per document, returned with hits and usable in
        filters; stored exactly or refused (:func:`sparsedex.filters.normalize_payload`).
        Returns the ids of the added documents. On a durable index they become visible (and
        durable) at the next :meth:`commit`.

        Raises :class:`ValueError` or :class:`TypeError` naming the document and what is wrong
        (a lone surrogate in a text, id or payload; an id outside the signed 64-bit range, a
        bool or float id; a tuple, NaN or non-string key in a payload; a negative, NaN, bool
        or above-1e14 weight; a term id at or above the vocabulary size), before anything is
        encoded or staged: a refused add changes nothing (see the class docstring).
        """
        return self._add(documents, ids, payloads, upsert=False)

    def upsert(
        self,
        documents: str | Iterable[Any],
        ids: Sequence[Any],
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Any]:
        """Add documents, replacing any document that has the same id (as :meth:`add`)."""
        if ids is None:
            raise ValueError("upsert() needs ids: they say which documents to replace")
        return self._add(documents, ids, payloads, upsert=True)

    def _add(self, documents: Any, ids: Any, payloads: Any, *, upsert: bool) -> list[Any]:
        with self._lock:
            # encoding grows BM25's term dictionary: a refused add must leave it as it was
            if (self._bm25 or ids is None) and self._store.path is not None and not self._store.closed:
                # term ids are assigned by encoding, and default document ids continue from the
                # largest one ever added: as the writer, knowing every commit (a handle opened
                # while another writer added numbered from its stale commit: "id 3 is already in
                # the index", helper-90)
                self._store.begin_write()
                if self._bm25:
                    self._sync_vocabulary()
            vocab = getattr(self._encoder, "vocabulary", None) if self._bm25 else None
            mark = len(vocab) if vocab is not None else None
            try:
                new_ids, csr, pls, stored, texts = self._prepare_stored(documents, ids, payloads, upsert=upsert)
                if not new_ids:
                    return []
                self._warn_above_max_weight(csr, new_ids)
                self._store.add(csr, new_ids, pls, texts, replace=upsert, stored_payloads=stored)
            except BaseException:
                if vocab is not None and mark is not None:
                    vocab.truncate(mark)
                raise
            return new_ids

    def _warn_above_max_weight(self, csr: Any, ids: list[Any]) -> None:
        """Warn (naming the document and the weight) when a weight is above the ``max_weight``
        this index was created with: its segment then gets a coarser grid of its own."""
        mw = self._store.settings.get("max_weight")
        if not isinstance(mw, float) or self.quantization != "u8" or self._bm25:
            return
        indptr, values = np.asarray(csr[0]), np.asarray(csr[2], dtype=np.float32)
        if values.size == 0:
            return
        # the engine's own test, in float32: w * (255 / max_weight) <= 255 keeps the shared grid
        # (monotone in w: when the largest weight passes, all do; NaN goes on to the full test)
        factor = np.float32(255.0) / np.float32(mw)
        if values.max() * factor <= np.float32(255.0):
            return
        over = np.flatnonzero(values * factor > np.float32(255.0))
        if over.size:
            row = int(np.searchsorted(indptr, over[0], side="right")) - 1
            warnings.warn(
                f"document {row} (id {_validate.shown(ids[row])}) has weight {float(values[over[0]])!r}, above the "
                f"max_weight={mw!r} this index was created with: the segment it lands in gets a coarser u8 grid "
                "of its own (255 / its largest weight), so its 8-bit scores (scores='impacts') are rounded more "
                "coarsely and depend on how documents fall into segments; create the index with a larger "
                "max_weight to keep one grid",
                UserWarning,
                stacklevel=4,
            )

    def delete(self, ids: Any, *, missing_ok: bool = False) -> int:
        """Delete documents by id (one id or a list). An unknown id is a KeyError unless
        ``missing_ok`` (saying so for an id of the other kind than the index's ids). Returns how many documents were deleted. On a durable index the
        deletion becomes visible (and durable) at the next :meth:`commit`."""
        lookup = _validate.lookup_ids(ids)
        with self._lock:
            return self._store.delete(lookup, missing_ok=missing_ok)

    def commit(self) -> int:
        """Make every add, upsert and delete so far durable and visible, atomically (a crash
        at any moment leaves the previous commit intact). Returns the commit's generation.

        With ``quantization="u8"``, warns (``UserWarning``, once per handle, after the commit
        is done, naming the document holding the largest weight) when the new segment's 8-bit
        grid leaves 99.9% of its weights (256 or more) on impacts 1..8: one weight far above
        the rest set the grid, and exact search, still exact, then reranks most matching
        documents from their stored vectors, which is much slower. Such data wants
        ``quantization="float"``."""
        with self._lock:
            self._stamp_encoder()
            return self._store.commit()

    def wait_for_merges(self, reorder: bool = False) -> None:
        """Block until background merges are done (see :class:`MergePolicy`). With
        ``reorder=True``, then rebuild every merged segment still waiting for its reorder job
        in the index's document order (``reorder``, e.g. BP), so that searches are as fast as
        they get; results are the same either way."""
        reorder = _validate.check_bool(reorder, "reorder")
        if reorder:  # may become the writer: under this handle's lock, as every write (_writer_moves)
            with self._lock:
                self._store.wait_for_merges(reorder)
        else:
            self._store.wait_for_merges(reorder)

    def rollback(self) -> None:
        """Forget every change since the last commit."""
        with self._lock:
            self._store.rollback()

    def merge(self, max_segments: int = 1) -> int:
        """Merge segments until at most ``max_segments`` remain (deleted documents are dropped)
        and put every segment in the index's document order (see :class:`MergePolicy`);
        commits staged changes first. Returns the new generation. A Ctrl-C (KeyboardInterrupt)
        stops it within about half a second, its documents copy included: merges installed
        before stay, the one running leaves the index as it was."""
        max_segments = _validate.check_int(max_segments, "max_segments", 1, 2**63 - 1)
        with self._lock:
            self._stamp_encoder()
            return self._store.merge(max_segments)

    def refresh(self) -> bool:
        """Move this handle to the newest commit in its directory, and take the calibration
        files (``seg-<N>.cal``) another handle or process rewrote since (a ``calibrate(queries)``
        there; a damaged one is not taken).

        Returns True when it moved to a newer commit, else False. A calibration file taken
        while the commit stays the same does not make it return True: a calibration is no
        commit (it changes no document, and the exact results are the same), yet this
        handle's approximate searches use it from then on (``calibrate()`` without queries
        reports it, ``calibrated_on``).

        When the directory now holds another index (replaced by :meth:`save` or ``sparsedex
        index --overwrite``) built with another encoder, the handle takes that index's encoder;
        an encoder given to :meth:`open` is kept only where it matches the new index (else a
        warning says the handle switched)."""
        with self._lock, self._moving():
            return self._refresh()

    def _refresh(self) -> bool:
        before = self._store.settings.get("encoder")
        changed = self._store.refresh()
        after = self._store.settings.get("encoder")
        if changed and _kind_of(before) != _kind_of(after):
            # The directory now holds another index (replaced by save() or `sparsedex index
            # --overwrite`) of another encoder: searches must encode with its encoder. An
            # encoder given at open is kept where it still matches; else a warning says the
            # handle now uses the index's own.
            given = self._encoder if self._encoder_given else None
            why = _encoder_mismatch(after, given) if given is not None else None
            if why is not None:
                warnings.warn(
                    f"{self._store.path} now holds another index: {why}; this handle now encodes "
                    "with the index's own encoder",
                    stacklevel=3,
                )
                given = None
            self._encoder_given = given is not None
            self._take_encoder(given)
        elif changed and self._bm25:
            self._reload_bm25_encoder()
        return changed

    def close(self, wait_for_merges: bool = True) -> None:
        """Forget uncommitted changes and release the writer lock (if this handle holds it),
        after background merges finish (``wait_for_merges=False``, or a Ctrl-C while waiting,
        cancels a running merge instead, and closing waits the fraction of a second it takes to
        stop; the index stays as its last commit left it).

        Closing is final and idempotent (a second ``close()`` does nothing): afterwards every
        other method, reads (search, get, ids, len, explain, ...) and writes (add, commit, ...)
        alike, raises :class:`~sparsedex.ClosedIndexError` (a ``ValueError``, as a closed
        Python file does), and the handle never takes the writer lock again; open the
        directory again with :meth:`open` for more. ``with SparseIndex.open(path) as ix:``
        closes on leaving the block."""
        self._store.close(_validate.check_bool(wait_for_merges, "wait_for_merges"))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called on this handle."""
        return self._store.closed

    def __enter__(self) -> "SparseIndex":
        if self._store.closed:
            raise ClosedIndexError("this index is closed: open it again (SparseIndex.open) to read or write")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def generation(self) -> int:
        """The generation of the commit this handle reads."""
        return self._snap().generation

    def segments(self) -> list[dict[str, Any]]:
        """One entry per segment: name, documents, live documents."""
        return [
            {"name": st.segment.name, "documents": st.segment.n, "live": st.live}
            for st in self._snap().states
        ]

    def _check_ids(self, ids: Sequence[Any] | None, n: int, *, upsert: bool = False) -> list[Any]:
        if ids is None and n == 0:
            return []  # nothing to add, nothing to number
        snap_ids_kind = self._id_kind()
        if ids is None:
            if snap_ids_kind is str:
                raise ValueError("this index has string ids: pass ids=[...] (one string per new document)")
            start = self._store.next_int_id()
            if start == _validate.ID_MAX and self._store.locate(start) is not None:
                start += 1  # the core's counter stops at the largest id: it is taken
            if start + n - 1 > _validate.ID_MAX:
                raise ValueError(
                    f"cannot number {n} new documents from {start}: integer ids are signed 64-bit "
                    "(at most 2**63 - 1); pass ids=[...] for the new documents"
                )
            return list(range(start, start + n))
        if not self._has_encoder or upsert:
            fast = _validate.int_ids_fast(ids, n, snap_ids_kind)
            if fast is not None:
                return fast
        out: list[Any] = _validate.check_new_ids(ids, n)
        want = snap_ids_kind
        seen: set[Any] = set()
        for i, x in enumerate(out):
            kind = str if isinstance(x, str) else int
            if want is None:
                want = kind
            elif kind is not want:
                raise _validate.wrong_id_kind(x, i, want)
            if x in seen:
                raise ValueError(f"id {_validate.shown(x)} of document {i} is a duplicate")
            seen.add(x)
            if not upsert and self._has_encoder and self._store.locate(x) is not None:  # before encoding
                raise ValueError(f"id {_validate.shown(x)} of document {i} is already in the index (upsert() replaces documents)")
        # vectors: ids already in the index are refused by the store before it changes anything
        # ("document i: id x is already in the index"), without a lookup per id here
        return out

    def _id_kind(self) -> type | None:
        return self._store.id_kind

    def _checked_filter(self, flt: Filter | None, snap: Snapshot) -> Filter | None:
        """``flt``, after refusing an ``$ids`` id of the other kind than the ids of ``snap``'s
        documents (:meth:`Filter.check_id_kind`): it matched nothing without a word
        (helper-155). A snapshot without live documents matches nothing whatever the filter,
        and is not checked: an emptied index remembered a kind or not depending on whether a
        commit came between its add and delete (helper-157)."""
        if flt is not None and flt._id_lists and snap.live:
            kind = snap.settings()["id_kind"]
            flt.check_id_kind(None if kind is None else (str if kind == "str" else int))
        return flt

    # snapshot ---------------------------------------------------------------------------------
    def _snap(self) -> Snapshot:
        """The snapshot reads use: an in-memory index commits staged changes first."""
        view = getattr(self._pins, "view", None)
        if view is not None:
            return view[0]
        st = self._store
        if st.path is None and st.has_staged():
            with self._lock:
                self._stamp_encoder()
                st.commit()
        return st.snapshot

    def _reload_bm25_encoder(self) -> None:
        ident = self._store.settings.get("encoder")
        if isinstance(ident, dict) and ident.get("kind") == "bm25":
            self._encoder = self._load_bm25_encoder(ident)

    def _load_bm25_encoder(self, ident: dict[str, Any]) -> Any:
        """The BM25 encoder of the committed index: its parameters from the settings, its
        term dictionary from the vocabulary file (or, in older indexes, the settings)."""
        from .encoders.bm25 import Bm25Encoder

        record = self._store.vocabulary_record()
        terms = self._bm25_terms(ident)
        ident = {k: v for k, v in ident.items() if k != "vocab_size" or "vocabulary" in ident}
        try:
            enc = Bm25Encoder.from_identity({**ident, "vocabulary": terms})
        except (ValueError, TypeError, KeyError, AttributeError, re.error) as e:
            # AttributeError: an analyzer that is not an object; re.error: its token pattern
            raise CorruptIndexError(f"{self._store.path}: unreadable BM25 encoder settings ({e})") from None
        if record is not None and record[3] == len(terms):
            enc.vocabulary.committed = record
        return enc

    def _query_vector(self, query: Any, what: str = "query", snap: Snapshot | None = None) -> SparseEmbedding:
        """A query as the engine takes it: SPLADE weights, BM25 query term frequencies (the
        engine applies idf), or your vector, validated (Qdrant/bm25: with IDF from the live
        documents of ``snap``, Qdrant's IDF modifier)."""
        if isinstance(query, str):
            if not self._has_encoder:
                raise TypeError(f"{what} is a text but this index has no encoder: pass a sparse vector")
            _validate.check_text(query, what)
            (v,) = self.encoder.encode_queries([query])
            if self._idf:
                v = _qdrant.idf_query(self, v, snap if snap is not None else self._snap())
            return v
        missing = _missing_query(query)
        if missing is not None and self._has_encoder:
            # "cannot interpret NoneType as a sparse vector" said nothing of texts (helper-115),
            # nor of pandas' NA (helper-145)
            raise TypeError(f"{what} is {missing}: pass a text (this index encodes them) or a sparse vector")
        v = self._validate_query(query, None, what)
        return _qdrant.idf_query(self, v, snap if snap is not None else self._snap()) if self._idf else v

    def _query_term_limit(self) -> tuple[int | None, str]:
        """The bound on the term ids of a query vector and its name for messages: the declared
        ``vocab_size`` (vectors you bring), or a SPLADE encoder's vocabulary (no document of
        the index can hold a term at or above it, so such a query term is a mistake, as it is
        in :meth:`add`); none for BM25 (its dictionary grows as documents come, and a reader may
        lag a writer), Qdrant/bm25 (hashed ids) and other encoders. Read from the encoder's
        identity when it is not loaded (no model is loaded for it)."""
        if not self._has_encoder:
            return self._store.vocab_size, "the vocabulary size"
        if self._encoder is not None and not hasattr(self._encoder, "identity"):
            return None, ""
        ident = self._encoder_identity if self._encoder is None else None
        if ident is None:
            ident = {"kind": getattr(self._encoder, "kind", None), "vocab_size": getattr(self._encoder, "vocab_size", None)}
        size = ident.get("vocab_size")
        if ident.get("kind") == "splade" and isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size, "the encoder's vocabulary size"
        return None, ""

    def _validate_query(self, q: Any, row: int | None, what: str) -> SparseEmbedding:
        limit, name = self._query_term_limit()
        return validate_embedding(q, limit, row=row, what=what, limit_name=name)

    @property
    def _idf(self) -> bool:
        """Qdrant/bm25: IDF applied to every query at search time (Qdrant's Modifier.IDF)."""
        ident = self._encoder_identity
        if ident is not None:
            return ident.get("kind") == "fastembed-bm25"
        return _qdrant.requires_idf(self._encoder)

    # BM25 collection statistics -----------------------------------------------------------------
    @_one_view
    def collection_stats(self, terms: Any = None) -> _core.Bm25Stats:
        """BM25 collection statistics of the live documents: ``(n_docs, total_len, df)`` for
        ``terms`` (term ids: an int array, or a text / list of texts analysed as queries; None:
        every term of the index's BM25 dictionary).

        Returns a :class:`sparsedex._core.Bm25Stats` (``n_docs``: live documents N;
        ``total_len``: the sum of their lengths; ``terms``: uint32 term ids ascending, unique;
        ``df``: uint64 documents holding each term; ``words``: each term's text, where the
        index has a term dictionary). Statistics of several shards add up
        (``Bm25Stats.sum([...])``, by word: shards built apart each grow their own dictionary,
        so one term id names different words in each); pass the sum to :meth:`search` /
        :meth:`search_batch` (``collection_stats=``) so that N shards score exactly like one
        index over all their documents: each shard looks the words up in its own dictionary.
        TypeError for an index that is not BM25.
        """
        if not self._bm25:
            raise TypeError("collection_stats() is for BM25 indexes (this index scores dot products)")
        snap = self._snap()
        st = snap.core.bm25_stats(self._stat_terms(terms))
        vocab = getattr(self.encoder, "vocabulary", None)
        if vocab is None or not hasattr(vocab, "term"):
            return st
        words = [vocab.term(t) for t in st.terms.tolist()]
        return _core.Bm25Stats(st.n_docs, st.total_len, st.terms, st.df, words=words)

    def _stat_terms(self, terms: Any) -> np.ndarray:
        if terms is None:
            return np.arange(self.encoder.vocab_size, dtype=np.uint32)
        if isinstance(terms, str):
            terms = [terms]
        if isinstance(terms, (list, tuple)) and terms and all(isinstance(t, str) for t in terms):
            _validate.check_texts(terms, "query")
            vs = self.encoder.encode_queries(list(terms))
            ids = [np.asarray(v.indices, dtype=np.int64) for v in vs]
            return np.unique(np.concatenate(ids) if ids else np.zeros(0, np.int64)).astype(np.uint32)
        arr = np.asarray(terms)
        if arr.ndim != 1 or (arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 2**32 - 1)):
            raise ValueError("terms must be a 1-d array of term ids in 0 .. 2**32 - 1, or texts")
        return arr.astype(np.uint32)

    def _check_stats(self, stats: Any) -> _core.Bm25Stats | None:
        if stats is None:
            return None
        if not self._bm25:
            raise TypeError("collection_stats= applies to BM25 indexes only")
        if not isinstance(stats, _core.Bm25Stats):
            raise TypeError(
                f"collection_stats must be a Bm25Stats (from collection_stats(), or Bm25Stats.sum of "
                f"several), got {type(stats).__name__}"
            )
        return self._stats_by_word(stats)

    def _stats_by_word(self, stats: _core.Bm25Stats) -> _core.Bm25Stats:
        """``stats`` keyed by this index's term ids: statistics that carry words (from
        :meth:`collection_stats`, maybe summed over shards built apart, whose dictionaries
        differ) are looked up word by word in this index's dictionary; words it lacks match
        no query term here and are left out. Kept for the last statistics seen (a loop of
        searches with one sum looks its words up once)."""
        words = stats.words
        vocab = getattr(self.encoder, "vocabulary", None)
        if words is None or vocab is None or not hasattr(vocab, "get"):
            return stats
        # keyed on the dictionary object too: refresh() to another index gives the handle
        # another dictionary, which may hold as many terms (recheck40)
        cached = getattr(self, "_stats_keyed", None)
        if cached is not None and cached[0] is stats and cached[1] is vocab and cached[2] == len(vocab):
            return cached[3]
        terms = stats.terms.tolist()
        ids = [vocab.get(w) for w in words]
        if ids == terms:
            out = stats
        else:
            rows = sorted((i, d) for i, d in zip(ids, stats.df.tolist()) if i is not None)
            out = _core.Bm25Stats(
                stats.n_docs, stats.total_len,
                np.asarray([r[0] for r in rows], dtype=np.uint32), np.asarray([r[1] for r in rows], dtype=np.uint64),
                words=[vocab.term(r[0]) for r in rows],
            )
        self._stats_keyed = (stats, vocab, len(vocab), out)
        return out

    def _with_unseen_words(
        self, texts: list[Any], vecs: list[SparseEmbedding], given: Any, stats: _core.Bm25Stats | None
    ) -> tuple[list[SparseEmbedding], _core.Bm25Stats | None]:
        """Text queries scored with statistics that carry words (``given``, e.g. summed over
        shards built apart; ``stats``, the same keyed by this index's term ids): each query word
        this index's dictionary lacks but the statistics hold joins the query with an id past
        the dictionary, and the statistics with its df. It matches nothing here, but on a u8
        index the query's 16-bit quantization depends on every query weight, so without it a
        shard scored its documents a rounding apart from one index over all the shards (as
        ``sparsedex.ray``'s shards do; recheck40). Ids are shared across the queries of a batch:
        two different words never share one."""
        words = getattr(given, "words", None)
        vocab = getattr(self.encoder, "vocabulary", None) if self._bm25 else None
        if stats is None or words is None or vocab is None or not hasattr(vocab, "get"):
            return vecs, stats
        analyzer = getattr(self.encoder, "analyzer", None)
        if analyzer is None:
            return vecs, stats
        from collections import Counter

        df_of = {w: d for w, d in zip(words, given.df.tolist()) if d > 0}
        n = len(vocab)
        unseen: dict[str, int] = {}
        out = []
        for text, v in zip(texts, vecs):
            if not isinstance(text, str):
                out.append(v)
                continue
            extra = [(unseen.setdefault(w, n + len(unseen)), c) for w, c in Counter(analyzer(text)).items()
                     if w in df_of and vocab.get(w) is None]
            if not extra:
                out.append(v)
                continue
            idx = np.concatenate([np.asarray(v.indices, dtype=np.int64), np.asarray([e[0] for e in extra], np.int64)])
            val = np.concatenate([np.asarray(v.values, dtype=np.float32), np.asarray([e[1] for e in extra], np.float32)])
            order = np.argsort(idx, kind="stable")
            out.append(SparseEmbedding(indices=idx[order].astype(np.int32), values=val[order]))
        if not unseen:
            return out, stats
        # ``stats`` (keyed by _stats_by_word) carries words and ascending ids below ``n``; the
        # unseen words' ids follow in the order they were given
        merged = _core.Bm25Stats(
            stats.n_docs, stats.total_len,
            np.concatenate([stats.terms, np.fromiter(unseen.values(), np.uint32, len(unseen))]),
            np.concatenate([stats.df, np.fromiter((df_of[w] for w in unseen), np.uint64, len(unseen))]),
            words=[*stats.words, *unseen],
        )
        return out, merged

    def _check_stats_cover(self, stats: _core.Bm25Stats | None, terms: Any, query: int | None = None,
                           text: Any = None) -> None:
        """``stats`` must give a document frequency for every term of the query: the error names
        the missing terms as the words typed in ``text`` (the query, where it is a text), else
        as the dictionary's terms (the engine's names only a term id, and the user passed
        words to :meth:`collection_stats`)."""
        if stats is None:
            return
        terms = np.asarray(terms, dtype=np.uint32)
        missing = terms[~np.isin(terms, np.asarray(stats.terms, dtype=np.uint32))]
        if not missing.size:
            self._check_stats_df(stats, terms, query)
            return
        vocab = getattr(getattr(self.encoder, "vocabulary", None), "terms", None)
        typed: dict[int, str] = {}
        if isinstance(text, str):
            import re

            # each word of the text analysed alone: which one became a missing term (a stem)
            for w in dict.fromkeys(re.findall(r"\w+", text)[:256]):
                try:
                    ids = self.encoder.encode_queries([w])[0].indices.tolist()
                except Exception:  # noqa: BLE001 - only for a friendlier message
                    break
                for t in ids:
                    typed.setdefault(int(t), w)
        words = []
        for t in missing.tolist()[:5]:
            term = repr(vocab[t]) if vocab is not None and t < len(vocab) else f"term {t}"
            words.append(f"{typed[t]!r} (term {term})" if t in typed and repr(typed[t]) != term else term)
        more = f" and {missing.size - 5} more" if missing.size > 5 else ""
        where = "the query" if query is None else f"query {query}"
        raise ValueError(
            f"the BM25 statistics given (collection_stats=) have no document frequency for {', '.join(words)}{more} "
            f"of {where}: make them with collection_stats() over every query's text (or with no terms: all of them)"
        )

    def _check_stats_batch(self, stats: _core.Bm25Stats, csr: Any, queries: Any) -> None:
        """:meth:`_check_stats_cover` for a batch: one pass over all its terms, then the
        per-query check (for its message) only of the queries holding a term the statistics
        miss or give document frequency 0 (instead of two set operations over the statistics
        per query)."""
        indptr = np.asarray(csr[0], dtype=np.int64)
        terms = np.asarray(csr[1], dtype=np.uint32)
        known = np.asarray(stats.terms, dtype=np.uint32)
        suspect = ~np.isin(terms, known)
        zero = known[np.asarray(stats.df, dtype=np.uint64) == 0]
        if zero.size:
            suspect |= np.isin(terms, zero)
        if not suspect.any():
            return
        texts = queries if isinstance(queries, (list, tuple)) else None
        for qi in np.unique(np.searchsorted(indptr, np.flatnonzero(suspect), side="right") - 1).tolist():
            self._check_stats_cover(stats, terms[indptr[qi]: indptr[qi + 1]], qi,
                                    text=texts[qi] if texts is not None else None)

    def _check_stats_df(self, stats: _core.Bm25Stats, terms: np.ndarray, query: int | None) -> None:
        """A document frequency of 0 in ``stats`` for a query term that documents of this index
        hold cannot be (statistics count every document of the collection, this index's too):
        the engine takes df 0 for a term absent from the collection and left it out, so the
        search found nothing, silently (helper-88)."""
        zero = np.asarray(stats.terms, dtype=np.uint32)[np.asarray(stats.df, dtype=np.uint64) == 0]
        zero = np.intersect1d(zero, terms)
        if not zero.size:
            return
        local = self._snap().core.bm25_stats(zero)
        held = [(int(t), int(d)) for t, d in zip(local.terms.tolist(), local.df.tolist()) if d > 0]
        if not held:
            return
        vocab = getattr(getattr(self.encoder, "vocabulary", None), "terms", None)
        t, d = held[0]
        term = repr(vocab[t]) if vocab is not None and t < len(vocab) else f"term {t}"
        where = "the query" if query is None else f"query {query}"
        raise ValueError(
            f"the BM25 statistics given (collection_stats=) give document frequency 0 for {term} of {where}, "
            f"which {d} document(s) of this index hold: statistics must count every document of the collection, "
            f"this index's included (make them with collection_stats(), summed over shards with Bm25Stats.sum)"
        )

    # searching --------------------------------------------------------------------------------
    @_one_view
    def search(
        self,
        query: Any,
        k: int = 10,
        algorithm: str = "auto",
        filter: Any = None,
        collection_stats: Any = None,
        *,
        limit: int | None = None,
        query_filter: Any = None,
        with_payload: Any = True,
        with_vectors: bool = False,
        score_threshold: float | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> list[Hit]:
        """The ``k`` best documents for ``query`` (a text, or a sparse vector), best first.

        Scores are exact dot products of the query and the stored document vectors, in
        float32 (BM25: the BM25 score under the live collection statistics, or under
        ``collection_stats``, see :meth:`collection_stats`). A ``quantization="u8"`` index
        traverses its 8-bit impacts and reranks the candidates by their stored float vectors,
        with a bound on the rounding error that keeps every document that could enter (see
        :class:`Hit`): the hits are the exact float32 top-k, as a ``"float"`` index or scipy
        gives them. ``scores="impacts"`` asks a ``u8`` index for the raw 8-bit scoring
        instead: the exact top-k of the query's dot products with the 8-bit impacts, the
        cheapest exact search over impacts (no rerank; a ranking off the float one by the
        rounding, recall@10 about 0.99 against it on SPLADE vectors), for callers who rank by
        the index's own arithmetic or time the traversal alone. ``"float"`` and BM25 indexes
        ignore ``scores`` (a ``u8`` BM25 index always scores with its 8-bit BM25 weights, see
        :class:`Hit`). Any other value is a ValueError. ``k``: 1 .. 2**63 - 1 (at most
        every matching document is returned); a vector query may be anything
        :func:`sparsedex.vectors.as_sparse_embedding` takes (a scipy.sparse row, a pandas
        Series, ...); an invalid query is a ValueError / TypeError that starts with "query".
        A query with no terms (``{}``, ``([], [])``, or a blank text) matches no document:
        ``[]`` (over HTTP, ``{"indices": [], "values": []}`` answers ``{"hits": []}``).
        ``algorithm``: ``"auto"`` or one of :attr:`SparseIndex.algorithms` (all return the same
        hits). ``filter``: a payload filter (see :mod:`sparsedex.filters`), e.g.
        ``{"genre": "drama", "year": {"$gte": 1990}}``; the hits are then the true top-k of the
        documents that match it (evaluated inside the traversal); an ``$ids`` id of the other
        kind than the index's ids (a str where they are ints, or the reverse) is a
        :class:`~sparsedex.filters.FilterError` naming it. Equal scores come by id
        ascending (ints numerically, strings by code point), whatever the storage order.

        Qdrant's keywords (see :mod:`sparsedex._qdrant`): ``limit`` (another name for ``k``),
        ``query_filter`` (a ``qdrant_client.models.Filter`` or its dict form, translated into a
        filter and ANDed with ``filter``; a condition that does not translate is a
        :class:`~sparsedex.filters.FilterError` naming it), ``with_payload`` (True, False, a list
        of dotted keys, or an include / exclude selector), ``with_vectors`` (``Hit.vector``
        holds the document's stored float vector, as :meth:`get` returns it, whose dot
        product with the query is the hit's score, see :class:`Hit`) and
        ``score_threshold`` (only hits scoring above it). With ``quantization="float"`` the
        scores are the ones Qdrant computes.

        ``algorithm="approximate"`` trades exactness for speed at a recall target
        ``target_recall`` in (0, 1] (default 0.97): each segment is calibrated once, before
        the first approximate search that meets it (seconds for a large segment, on every core;
        Ctrl-C stops it), on pseudo-queries drawn from its stored vectors (kept in the segment's
        calibration file, so a reopened index is not calibrated again; see :meth:`calibrate`),
        and the fastest setting (by its search time, measured on the segment while
        calibrating; the exact search is one of the settings) whose
        calibration recall@10 reaches the target by 1.5 standard errors of that mean is used
        (so that a setting is not chosen for the luck of a small sample; query cut by weight
        share, then an
        exact rerank of the cut query's best candidates from the stored vectors; after Seismic,
        Bruch et al. SIGIR 2024, and BMP's beta, Mallia et al. SIGIR 2024). Scores of returned
        hits are exact: with ``quantization="u8"`` they are the float32 dot products of the
        stored (unrounded) vectors with the query, the scores a ``"float"`` index gives (and
        the exact algorithms give), and ``target_recall`` is recall against those float
        scores. Filters and deletions are honoured. ``target_recall`` with another
        algorithm is a ValueError.
        """
        opts = _qdrant.SearchOptions.resolve(
            k=k, limit=limit, filter=filter, query_filter=query_filter, with_payload=with_payload,
            with_vectors=with_vectors, score_threshold=score_threshold,
        )
        k = self._check_k(opts.k)
        _check_algorithm(algorithm, target_recall)
        _check_scores(scores, algorithm)
        stats = self._check_stats(collection_stats)
        snap = self._snap()
        flt = self._checked_filter(opts.filter, snap)
        q = self._query_vector(query, snap=snap)
        if q.nnz == 0 or not snap.states:
            return []
        _ready_for_approximate(snap, algorithm, self.path)
        (q,), stats = self._with_unseen_words([query], [q], collection_stats, stats)
        self._check_stats_cover(stats, q.indices, text=query)
        hits = snap.search_triples(
            np.asarray(q.indices, dtype=np.uint32), np.asarray(q.values, dtype=np.float32), k,
            algorithm, flt, stats, target_recall=target_recall, scores=scores,
        )
        if opts.score_threshold is not None:
            hits = [h for h in hits if opts.keep(h[2])]
        return self._hits(snap, hits, opts)

    @_one_view
    def search_batch(
        self,
        queries: Iterable[Any],
        k: int = 10,
        algorithm: str = "auto",
        threads: int | None = None,
        filter: Any = None,
        collection_stats: Any = None,
        *,
        limit: int | None = None,
        query_filter: Any = None,
        with_payload: Any = True,
        with_vectors: bool = False,
        score_threshold: float | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries (texts or vectors, or a scipy.sparse matrix or CSR
        arrays ``(indptr, indices, values)``, one query a row) at once, on ``threads`` cores (default: all; at most 4 x the cores this process
        may use); ``filter``, ``collection_stats`` (BM25 statistics must then cover every
        query's terms), ``target_recall``, ``scores`` and the Qdrant keywords of :meth:`search`
        apply to every query. Errors name the query (``query 3``). The calibration a first
        approximate search makes (segments not calibrated yet) runs on every core whatever
        ``threads`` says, as :meth:`calibrate` does: call that first to keep it out of a batch."""
        opts = _qdrant.SearchOptions.resolve(
            k=k, limit=limit, filter=filter, query_filter=query_filter, with_payload=with_payload,
            with_vectors=with_vectors, score_threshold=score_threshold,
        )
        k = self._check_k(opts.k)
        _check_algorithm(algorithm, target_recall)
        _check_scores(scores, algorithm)
        threads = _validate.check_threads(threads)
        stats = self._check_stats(collection_stats)
        snap = self._snap()
        flt = self._checked_filter(opts.filter, snap)
        if stats is not None and getattr(collection_stats, "words", None) is not None and self._bm25:
            qs = batch_queries(queries)
            vecs, stats = self._with_unseen_words(qs, self._vectors_of(qs, snap), collection_stats, stats)
            queries = qs
            csr = _csr(vecs)
        else:
            csr = self._batch_query_csr(queries, snap)
        nq = len(csr[0]) - 1
        if not nq:
            return []
        if not snap.states:
            return [[] for _ in range(nq)]
        if stats is not None:
            self._check_stats_batch(stats, csr, queries)
        _ready_for_approximate(snap, algorithm, self.path)
        S, D, V = snap.search_batch(
            csr, k, algorithm, threads, flt, stats, target_recall=target_recall, scores=scores
        )
        triples = [
            [(si, d, v) for si, d, v in zip(srow, drow, vrow) if d >= 0 and opts.keep(v)]
            for srow, drow, vrow in zip(S.tolist(), D.tolist(), V.tolist())
        ]
        flat = self._hits(snap, [t for row in triples for t in row], opts)
        out, at = [], 0
        for row in triples:
            out.append(flat[at:at + len(row)])
            at += len(row)
        return out

    def _batch_query_csr(self, queries: Any, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's query vectors as checked CSR arrays. A scipy.sparse matrix or CSR arrays
        whose entries all pass the batch checks (:func:`sparsedex.vectors.checked_csr`) go
        straight through, without an object per query (about 4 us a query saved); anything
        else, and a batch with a fault somewhere, goes query by query (:meth:`_batch_vectors`:
        the error names the query)."""
        if not self._idf:
            whole = _whole_query_csr(queries)
            if whole is not None:
                fast = checked_csr(*whole, self._query_term_limit()[0])
                if fast is not None:
                    return fast
        qs = batch_queries(queries)
        self._refuse_none_queries(qs)
        if not self._idf and qs and not any(isinstance(q, str) for q in qs):
            limit, name = self._query_term_limit()
            return validate_embeddings_csr(qs, limit, what="query", limit_name=name)
        return _csr(self._vectors_of(qs, snap))

    def _batch_vectors(self, queries: Any, snap: Snapshot) -> list[SparseEmbedding]:
        """Many queries (texts or vectors, or a scipy.sparse matrix) as query vectors, checked
        (errors name the query); see :func:`batch_queries`."""
        return self._vectors_of(batch_queries(queries), snap)

    def _refuse_none_queries(self, qs: list[Any]) -> None:
        """A None (or another missing value: NaN, pandas' NA) among the queries of an index that
        encodes texts: a TypeError that says so ("cannot interpret NoneType as a sparse vector"
        said nothing of texts, helper-115)."""
        if self._has_encoder:
            hit = next(((i, m) for i, q in enumerate(qs) if (m := _missing_query(q)) is not None), None)
            if hit is not None:
                raise TypeError(f"query {hit[0]} is {hit[1]}: pass texts (this index encodes them) or sparse vectors")

    def _vectors_of(self, qs: list[Any], snap: Snapshot) -> list[SparseEmbedding]:
        """:meth:`_batch_vectors` of the queries :func:`batch_queries` listed."""
        if not qs:
            return []
        self._refuse_none_queries(qs)
        texts = [q for q in qs if isinstance(q, str)]
        if texts and len(texts) != len(qs):
            first = isinstance(qs[0], str)
            i = next(i for i, q in enumerate(qs) if isinstance(q, str) != first)
            raise TypeError(
                f"queries must be all texts or all vectors: query 0 is {_validate.a_type(qs[0])}, "
                f"query {i} {_validate.a_type(qs[i])}"
            )
        if texts:
            if not self._has_encoder:
                raise TypeError("queries are texts but this index has no encoder: pass sparse vectors")
            _validate.check_texts(texts, "query")
            vecs = list(self.encoder.encode_queries(texts))
        else:
            limit, name = self._query_term_limit()
            vecs = [validate_embedding(q, limit, row=i, what="query", limit_name=name) for i, q in enumerate(qs)]
        if self._idf:
            vecs = [_qdrant.idf_query(self, v, snap) for v in vecs]
        return vecs

    def calibrate(
        self, queries: Any = None, *, target_recall: float | None = 0.97, progress: bool | None = None
    ) -> list[dict[str, Any]]:
        """Calibrate approximate search now, rather than on the first
        ``algorithm="approximate"`` query (which calibrates, the same way, every segment of the
        index not calibrated yet before it searches), and report the recall each segment's
        chosen parameters reached.

        Afterwards every segment is ready for approximate search: calibrated, and its *high
        layer* made (the large postings of each term, which the layered cuts read; kept in
        memory, counted in ``info()["engine"]["derived_bytes"]``), which the first approximate search
        would otherwise make (0.33 s for a segment of a million documents). So after opening
        an index, ``calibrate()`` is the warm-up: it reads the calibration files and makes the
        layers, without calibrating again.

        queries: None, to calibrate every segment not calibrated yet on pseudo-queries (stored
        rows of random documents cut to their heaviest 6..160 terms and, for queries of more
        than 32 terms, as many multi-topic ones: sums of the rows of 2-16 random documents, at
        most one per 10 terms, cut alike; a setting must reach the target on both kinds); or queries as
        :meth:`search_batch` takes them (texts with an encoder, vectors otherwise; ideally a
        sample of a few hundred real queries), to recalibrate every segment on them. Only
        query-length buckets with at least 30 of them are measured: a bucket with fewer keeps
        the segment's calibration on pseudo-queries (its own, or one made then for those
        buckets alone), and is listed with ``"calibrated_on": "pseudo-queries"`` and the
        pseudo-queries' count; where pseudo-queries do not fill it either (stored rows
        shorter than the bucket), it is listed with its count and takes the parameters (and
        recall) of the nearest bucket with enough, as its searches do. Queries too few for every bucket
        of a segment, and queries none of which has 10 matching documents in it, are a
        ValueError: the segment keeps its calibration (too few queries would have made
        approximate search the exact search there).
        target_recall: the target in (0, 1] the report is for (searches may use any target;
        the calibration covers them all); None is the default, 0.97, as in :meth:`search`.
        progress: True, False or None: show a progress bar per segment being calibrated
        (calibration queries evaluated; None: when stderr is a terminal, unless
        ``SPARSEDEX_PROGRESS=0``). A segment of a million documents takes several seconds.
        Calibrations in one process run one at a time (each on every core), first approximate
        searches' included: a call waits for the one running (Ctrl-C stops the wait).

        Returns one dict per segment of the current snapshot: ``name``, ``documents`` (its
        rows, deleted documents included, as :meth:`segments` reports them), ``live`` (those not
        deleted), ``approximate`` (False: the segment is searched exactly by approximate searches, as it
        holds fewer than 8,192 documents or no stored vectors), ``calibrated_on``
        (``"pseudo-queries"``, or ``"queries"`` after a ``calibrate(queries)``; None where
        ``approximate`` is False) and ``buckets`` (empty where it is False): per query length (queries are
        grouped by their number of terms present in the segment, ``max_terms``; None for the
        longest bucket) the number of calibration ``queries``, the parameters chosen for the
        target (``beta``, the share of the query's bound the cut keeps; ``gamma``, the layered
        cut of quantized segments: postings contributing less than this fraction of the query's
        largest term contribution are skipped, 0 for none; ``rerank``, candidates
        reranked as a multiple of k) and ``recall``, the mean recall@10 they reached on those
        queries (the fastest parameters, by their search time measured on the segment while
        calibrating, whose mean exceeds the target by 1.5 standard errors of it; the exact
        search, beta 1, gamma 0 and rerank 1 at recall 1, is one of them, so a target is always
        reachable) and ``calibrated_on``, the bucket's own (``"pseudo-queries"`` or
        ``"queries"``). A segment's calibration is kept with it in memory and, for an index
        directory, in the segment's calibration file ``seg-<N>.cal`` (rust/core/FORMAT.md
        §6a), which a later open reads: a reopened index is not calibrated again; a merge's
        new segment is, and a damaged calibration file, or one an older version of sparsedex
        wrote, is ignored (recalibrated on pseudo-queries, rewritten: a calibration made from
        your queries must then be made again).
        A ``calibrate()`` without queries running beside a ``calibrate(queries)`` (another
        thread) never replaces the calibration on queries. Ctrl-C stops a ``calibrate()``, or
        the calibration a first approximate search makes, within about half a second
        (KeyboardInterrupt; the segments finished keep theirs, but for ``calibrate(queries)``,
        which changes no segment then; only on the main thread, where Python delivers signals).
        Raises ValueError for a target outside (0, 1], or naming the segment in which none of the
        queries has 10 matching documents or no query-length bucket has 30 of them, with the
        count per bucket (a calibration on queries replaces every segment's or none: no
        segment is changed then, nor by a Ctrl-C during it), TypeError for a ``progress`` other than True, False or None, and
        the errors of :meth:`search_batch` for bad queries.
        """
        if target_recall is None:  # the default, as in search and search_batch
            target_recall = 0.97
        _check_algorithm("approximate", target_recall)
        if progress is not None and not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True, False or None, not {progress!r}")
        snap = self._snap()
        csr = None
        if queries is not None:
            vecs = self._batch_vectors(queries, snap)
            if not vecs:
                raise ValueError("calibration queries: the list is empty")
            ip, ix, vx = _csr(vecs)
            csr = (np.ascontiguousarray(ip, dtype=np.uint64), ix, vx)
            distinct = _core.distinct_queries(*csr)
            if distinct < len(vecs):
                warnings.warn(
                    f"calibration queries: {len(vecs) - distinct} of the {len(vecs)} queries repeat another "
                    f"(or scale it: the same terms, weights in the same proportions, rank alike); "
                    f"each distinct query counts once ({distinct})",
                    stacklevel=2,
                )
        core, target = snap.core, float(target_recall)
        # one calibration at a time, the first approximate searches' included, in this process
        # and (on an index on disk) in others; waiting for another's stops on Ctrl-C (helper-109)
        with _calibration_turn(self.path):
            if csr is not None:
                # every segment's calibration on the queries is made before any is applied: a
                # refusal in one segment changes none (helper-153: the segments before it had
                # been recalibrated, and their files rewritten)
                made = [_calibrate_segment(core, pos, st.segment.name, progress, csr)
                        for pos, st in enumerate(snap.states)]
                for pos, pending in enumerate(made):
                    if pending is not None:
                        core.apply_calibration(pos, pending)
                return [_calibration_entry(st, None if pending is None else core.calibration(pos, target))
                        for pos, (st, pending) in enumerate(zip(snap.states, made))]
            out = []
            for pos, st in enumerate(snap.states):
                rep = core.calibration(pos, target)
                if rep is None:
                    if _calibrate_segment(core, pos, st.segment.name, progress):
                        rep = core.calibration(pos, target)
                else:  # calibrated already (in memory or its file): make its high layer, the warm-up
                    core.calibrate(pos)
                out.append(_calibration_entry(st, rep))
        return out

    #: Traversal algorithms; "auto" picks one per query.
    algorithms: tuple[str, ...] = tuple(_core.algorithms())

    def _check_k(self, k: int) -> int:
        return _validate.check_k(k)

    def _hits(self, snap: Snapshot, triples: list[tuple[int, int, float]], opts: Any = None) -> list[Hit]:
        """Hits for (segment position, internal doc, score), payloads read per segment at once;
        ``opts`` (Qdrant keywords): payload selection and vectors."""
        want_payload = opts is None or opts.wants_payload
        states = snap.states
        if opts is not None and not want_payload and not opts.with_vectors:  # ids and scores only
            ids = [s.segment.index.id for s in states]
            return [_hit(ids[si](d), score) for si, d, score in triples]
        by_seg: dict[int, list[int]] = {}
        for si, d, _ in triples:
            by_seg.setdefault(si, []).append(d)
        payloads: dict[tuple[int, int], Any] = {}
        if want_payload:
            for si, docs in by_seg.items():
                seg = states[si].segment
                for d, p in zip(docs, seg.docs.payloads(docs)):
                    payloads[(si, d)] = p
        out = []
        for si, d, score in triples:
            index = states[si].segment.index
            p = payloads.get((si, d))
            vector = None
            if opts is not None:
                p = opts.payload(p) if want_payload else None
                if opts.with_vectors:
                    idx, val = index.get(d)
                    vector = SparseEmbedding(indices=idx, values=val)
            out.append(_hit(index.id(d), score, p, vector))
        return out

    # documents --------------------------------------------------------------------------------
    def _locate(self, snap: Snapshot, id: Any) -> tuple[int, int]:
        key = _validate.lookup_id(id)
        try:
            return snap.locate(key)
        except (KeyError, TypeError, ValueError, OverflowError):
            # reads see the last commit, while add() sees the staged ids too: say so, rather
            # than "not in the index" beside add's "already in the index" (helper-134)
            # an id of the other kind: say so (helper-160: the KeyError did not say why)
            why = _validate.other_kind(key, self._id_kind())
            if not why and self._store.has_staged():
                why = " (reads see the last commit; this handle has uncommitted changes)"
            # the id as the plain int / str looked up: np.str_('1') is numpy's repr of '1'
            raise KeyError(f"no document with id {_validate.shown(key)} in the index{why}") from None

    def __contains__(self, id: Any) -> bool:
        snap = self._snap()  # ClosedIndexError on a closed index
        try:
            key = _validate.lookup_id(id)
            return snap.core.locate(key) is not None
        except (TypeError, ValueError, OverflowError):
            return False

    def get(self, id: Any) -> Document:
        """The stored document ``id`` (KeyError if there is none, saying so for an id of the
        other kind than the index's ids): its text (None if not kept), payload and vector as
        stored (BM25: term frequencies). Reads only this document."""
        snap = self._snap()
        self._store.check_rewritten(snap)
        try:
            si, d = self._locate(snap, id)
            seg = snap.states[si].segment
            idx, val = seg.index.get(d)
            doc = seg.docs.text(d), seg.docs.payload(d)
        except (KeyError, ValueError, SparsedexError) as e:
            err = _files_changed_under(self, e)  # a KeyError over files rewritten under it
            if err is e:
                raise
            raise err from e
        return Document(seg.index.id(d), doc[0], doc[1], SparseEmbedding(indices=idx, values=val))

    def ids(self) -> list[Any]:
        """All document ids (segment by segment; within a segment in storage order)."""
        return self._snap().ids()

    def __len__(self) -> int:
        return self._snap().live

    # explaining -------------------------------------------------------------------------------
    @_one_view
    def explain(
        self, query: Any, id: Any, top_terms: int | None = 30, collection_stats: Any = None, *, scores: str = "vectors"
    ) -> Explanation:
        """Why document ``id`` scored what it did for ``query`` (a text or a vector).

        The matched terms come decoded to tokens (the encoder's vocabulary, or BM25's term
        dictionary) with query weight, document weight and contribution; the contributions sum
        to the score :meth:`search` gives (BM25: the query weight is ``idf * qtf`` and the
        document weight ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` under the live
        statistics, or ``collection_stats``). ``top_terms`` bounds the decoded query and
        document vectors kept in the explanation (None: all). With ``quantization="u8"`` the score
        explained is the one :meth:`search` returns: the float32 dot product of the stored
        vector with the query (document weights: the stored float weights), or with
        ``scores="impacts"`` the 8-bit score (document weights: the dequantized impacts). Where
        the 8-bit scores are explained (``scores="impacts"``, and BM25 indexes with u8 impacts),
        query weights are the ones those scores use, rounded to a 16-bit grid, so that
        ``query_weight * doc_weight`` is each contribution (the lightest terms' weights move
        by up to a few percent).
        """
        _check_scores(scores)
        if top_terms is not None:
            top_terms = _validate.check_int(top_terms, "top_terms", 0, 2**63 - 1)
        stats = self._check_stats(collection_stats)
        snap = self._snap()
        si, d = self._locate(snap, id)
        q = self._query_vector(query)
        (q,), stats = self._with_unseen_words([query], [q], collection_stats, stats)
        self._check_stats_cover(stats, q.indices, text=query)
        seg = snap.states[si].segment
        parts, score = snap.core.explain(
            np.asarray(q.indices, dtype=np.uint32), np.asarray(q.values, dtype=np.float32), si, d, stats,
            with_score=True, scores=scores,
        )
        # a term counts as matched only by a positive contribution, as a document counts as a
        # hit only by a positive score: weights of 1e-30 multiply to 0 in float32, and such a
        # document, which search never returns, was explained as matched (the core lists every
        # shared term: export reads document weights from it)
        matches = [
            TermMatch(int(t), self._token(int(t)), float(qw), float(dw), float(c)) for t, qw, dw, c in parts if c > 0
        ]
        matches.sort(key=lambda m: (-m.contribution, m.term_id))
        score = float(score)  # bit-identical to the hit's score
        d_idx, d_val = seg.index.get(d)
        doc_terms = self.decode(SparseEmbedding(indices=d_idx, values=d_val), top_k=top_terms)
        shown = self._bm25_query_weights(q, stats) if self._bm25 else q
        return Explanation(seg.index.id(d), score, matches, self.decode(shown, top_k=top_terms), doc_terms)

    def _token(self, term_id: int) -> str:
        enc = self.encoder
        if enc is None:
            return str(term_id)
        try:
            return str(enc.id_to_token(term_id))
        except (KeyError, IndexError):
            return f"#{term_id}"

    def _bm25_query_weights(self, q: SparseEmbedding, stats: Any = None) -> SparseEmbedding:
        """A BM25 query's term weights ``idf * qtf`` under the live statistics (or ``stats``),
        for display: terms absent from the index are left out."""
        from .encoders.bm25 import bm25_idf

        idx = np.asarray(q.indices, dtype=np.uint32)
        st = stats if stats is not None else self._snap().core.bm25_stats(idx)
        df_of = dict(zip(st.terms.tolist(), st.df.tolist()))
        df = np.asarray([df_of.get(int(t), 0) for t in idx.tolist()], dtype=np.uint64)
        has = df > 0
        w = bm25_idf(df[has], st.n_docs) * np.asarray(q.values, dtype=np.float64)[has]
        return SparseEmbedding(indices=idx[has], values=w.astype(np.float32))

    @_one_view
    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """A vector (or a text, encoded as a query) as ``[(token, weight), ...]``, highest
        weight first. Without an encoder the tokens are the term ids as strings. A text
        decoded by a BM25 index shows the query weights ``idf * qtf`` of its terms."""
        if top_k is not None:
            top_k = _validate.check_int(top_k, "top_k", 0, 2**63 - 1)
        if isinstance(embedding, str):
            v = self._query_vector(embedding)
            if self._bm25:
                v = self._bm25_query_weights(v)
        else:
            v = self._validate_query(embedding, None, "vector")
        idx = np.asarray(v.indices, dtype=np.int64)
        val = np.asarray(v.values, dtype=np.float64)
        order = np.lexsort((idx, -val))
        if top_k is not None:
            order = order[:top_k]
        return [(self._token(int(idx[i])), float(val[i])) for i in order]

    # persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, _held: Any = None, _replace: bool = True) -> None:
        """Write the index to directory ``path``.

        For the index's own directory this is :meth:`commit`. Otherwise the committed state
        (an in-memory index: everything added) is written as a new index at ``path``, which
        must be empty, missing (then written beside it and renamed into place: a reader opening
        ``path`` meanwhile finds no directory, never half an index), or hold a sparsedex index
        (then replaced atomically: its readers keep their snapshot). Uncommitted changes of a
        durable index are not copied: a UserWarning says so when there are any (call
        :meth:`commit` first to include them). A symbolic link to a missing directory is followed (the
        index is written where it points), and a path ending in ``..`` is resolved first.

        Raises :class:`FileExistsError` when ``path`` is a file, a loop of symbolic links, or a
        directory holding something other than a sparsedex index (another program's files, or
        its ``CURRENT``); :class:`NotADirectoryError` when a file stands where a parent
        directory should be; :class:`FileNotFoundError` for ``x/..`` when ``x`` is missing.
        """
        dest = index_destination(Path(path), "save to")
        if self.path is not None and dest.resolve() == self.path.resolve():
            self.commit()
            return
        if dest.exists():
            if not dest.is_dir():
                raise FileExistsError(f"{dest} exists and is not a directory")
            from ._legacy import foreign_reason

            why = foreign_reason(dest)
            if why is not None:
                raise FileExistsError(f"{dest} exists and is not a sparsedex index ({why}): not overwriting it")
        ident = self._identity_for_store()
        if ident is not None and ident.get("kind") == "custom":
            raise ValueError(
                f"cannot save an index whose encoder ({ident['class']}) has no identity(): "
                "use SpladeEncoder, Bm25Encoder or vectors you bring"
            )
        if self.path is not None and self._store.has_staged():
            warnings.warn(
                f"save({str(dest)!r}) writes the last commit of {str(self.path)!r}: the adds and deletes made "
                "since are not committed and are not in the copy; call commit() first to include them",
                UserWarning,
                stacklevel=2,
            )
        self._snap()  # an in-memory index commits what is staged
        with self._lock:
            terms = self.encoder.vocabulary.terms if self._bm25 else None
            self._store.save_copy(dest, settings={**self._store.settings, "encoder": ident}, terms=terms,
                                  held=_held, replace=_replace)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        encoder: Any = None,
        *,
        merge_policy: MergePolicy | None = None,
    ) -> "SparseIndex":
        """Open the last commit of the index at ``path``.

        Reading needs no lock; the first add, upsert, delete or commit takes the writer lock
        (:class:`IndexLockedError` if another writer holds it). The encoder is re-created from
        its saved identity on first use (the bundled model by name, a local model directory by
        its path, BM25 with its saved term dictionary and parameters); pass ``encoder=`` to use
        another one of the same kind (e.g. the model moved elsewhere). An encoder whose vectors
        cannot match the documents' is refused with a :class:`ValueError` naming both: another
        kind (SPLADE, BM25, Qdrant/bm25), a SPLADE model of another vocabulary size, BM25 or
        Qdrant/bm25 of other parameters; a BM25 encoder given takes the index's term
        dictionary. :meth:`refresh` follows an index replaced by one of another encoder.

        Raises :class:`FileNotFoundError` when ``path`` is not a directory or holds no index
        (none of an index's files: an empty directory, another program's), and
        :class:`~sparsedex.errors.CorruptIndexError` when the index there is damaged (a file
        missing, truncated or changed since its commit).
        """
        self = cls.__new__(cls)
        self._init_common()
        self._store = Store.open(path, merge_policy=merge_policy)
        self._store.on_writer_move = weakref.WeakMethod(self._writer_moves)
        self._encoder = None
        self._encoder_identity = None
        self._encoder_given = encoder is not None
        try:
            self._take_encoder(_make_encoder(encoder) if encoder is not None else None)
        except BaseException:
            self._store.close()
            raise
        return self

    def _take_encoder(self, given: Any) -> None:
        """Set this handle's encoder for the committed index: ``given`` (checked against the
        saved identity: ValueError naming both when they do not match; a BM25 encoder takes
        the index's term dictionary), or, without one, the saved identity's.
        :class:`CorruptIndexError` when the saved identity is none this library writes."""
        ident = self._store.settings.get("encoder")
        _check_saved_identity(self._store.path, ident, self._store.bm25 is not None)
        if given is not None:
            check_encoder_matches(self._store.path, ident, given)
            if _is_bm25(given) and isinstance(ident, dict) and ident.get("kind") == "bm25":
                given = self._load_bm25_encoder(ident)  # the index's term dictionary
            self._encoder, self._encoder_identity = given, None
        elif isinstance(ident, dict):
            if ident.get("kind") == "bm25":
                self._encoder, self._encoder_identity = self._load_bm25_encoder(ident), None
            else:
                self._encoder, self._encoder_identity = None, ident
        else:
            self._encoder, self._encoder_identity = None, None

    # misc -------------------------------------------------------------------------------------
    @_one_view
    def info(self) -> dict[str, Any]:
        """Documents, encoder identity (without the BM25 term list), quantization, segments
        and the engine's stats: counts summed over segments; ``vocabulary`` the largest
        segment's, ``terms`` the distinct terms of all segments, ``scale`` None where segments
        have 8-bit grids of their own."""
        ident = self.encoder_identity
        snap = self._snap()
        engine: dict[str, Any] | None = None
        indexes = [st.segment.index for st in snap.states]
        stats = [ix.stats() for ix in indexes]
        for s in stats:
            if engine is None:
                engine = dict(s)
            else:
                for key, val in s.items():
                    if key not in _PER_INDEX_STATS and isinstance(val, int) and isinstance(engine.get(key), int):
                        engine[key] += val
        if engine is not None and len(indexes) > 1:
            # Counts add up over segments; the vocabulary and the distinct terms do not (a term
            # held by 3 segments counted 3 times, helper-129), nor a u8 grid of its own each.
            engine["vocabulary"] = max(s["vocabulary"] for s in stats)
            engine["terms"] = int(np.unique(np.concatenate([ix.term_ids() for ix in indexes])).size)
            if len({s.get("scale") for s in stats}) > 1:
                engine["scale"] = None  # each segment on its own 8-bit grid
        return {
            "documents": len(self),
            "encoder": None if ident is None else {k: v for k, v in ident.items() if k != "vocabulary"},
            "quantization": self.quantization,
            "generation": snap.generation,
            "segments": self.segments(),
            "engine": engine,
        }

    def __repr__(self) -> str:
        where = "" if self.path is None else f", path={str(self.path)!r}"
        if self._store.closed:
            return f"SparseIndex(closed{where})"
        ident = self.encoder_identity
        enc = "vectors" if ident is None else (ident.get("model") or ident.get("kind"))
        return f"SparseIndex({len(self)} documents, encoder={enc!r}, quantization={self.quantization!r}{where})"


def _ready_for_approximate(snap: Snapshot, algorithm: str, directory: Path | None = None) -> None:
    """Before an approximate search: calibrate the segments of ``snap`` it would calibrate on
    their first use (pseudo-queries; or read their calibration file), as ``calibrate()`` does,
    on every core, with a progress bar on a terminal and stoppable by Ctrl-C
    (KeyboardInterrupt within about half a second; the engine's own first-use calibration, on
    one core inside the search, cannot be: helper-108, 9.7 s on debian). Once per snapshot;
    one calibration at a time (:func:`_calibration_turn`: threads, and processes on the index
    in ``directory``, that start approximate searches together wait for the first one's and
    read its calibration rather than calibrate beside it)."""
    if snap.approximate_ready or algorithm.lower() not in _APPROXIMATE:
        return
    core = snap.core

    def missing() -> list[int]:
        # segments searched exactly (small, or without stored vectors) have nothing to wait for
        return [
            pos
            for pos, st in enumerate(snap.states)
            if st.live and core.calibrates(pos) and core.calibration(pos, 0.97) is None
        ]

    if not missing():  # calibrated already (in memory), or nothing to calibrate: no lock to take
        snap.approximate_ready = True
        return
    with _calibration_turn(directory):
        for pos in missing():
            _calibrate_segment(core, pos, snap.states[pos].segment.name, None)
        snap.approximate_ready = True


def _calibrate_segment(core: Any, pos: int, name: str, progress: bool | None, csr: Any = None) -> Any:
    """Calibrate segment ``pos`` of ``core`` on pseudo-queries unless its calibration file
    serves (False for a segment approximate search searches exactly, else True), or make its
    calibration on the query CSR ``csr`` without applying it (``core.apply_calibration``; None
    for a segment searched exactly), with a progress bar when ``progress`` allows and the
    segment calibrates at all. A ValueError names the segment (its position means nothing to
    the user)."""
    bar = progress if core.calibrates(pos) else False
    with _calibration_bar(core, pos, name, bar):
        try:
            return core.calibrate(pos) if csr is None else core.calibrate_pending(pos, *csr)
        except ValueError as e:
            raise ValueError(f"segment {name!r}: {e}") from None


def _calibration_entry(st: Any, rep: Any) -> dict[str, Any]:
    """:meth:`SparseIndex.calibrate`'s report of segment state ``st`` whose calibration report
    from the engine is ``rep`` (None: searched exactly)."""
    entry: dict[str, Any] = {
        "name": st.segment.name,
        "documents": st.segment.n,
        "live": st.live,
        "approximate": rep is not None,
        "calibrated_on": None,
        "buckets": [],
    }
    if rep is not None:
        pseudo, buckets = rep
        entry["calibrated_on"] = "pseudo-queries" if pseudo else "queries"
        entry["buckets"] = [
            {
                "max_terms": m,
                "queries": nq,
                "beta": round(float(b), 4),
                "gamma": round(float(g), 4),
                "rerank": round(float(r), 4),
                "recall": round(float(rc), 4),
                "calibrated_on": "pseudo-queries" if from_pseudo else "queries",
            }
            for m, nq, b, g, r, rc, from_pseudo in buckets
        ]
    return entry


_CALIBRATION = threading.Lock()


def _calibration_lock_after_fork() -> None:
    """In a ``fork()``ed child: a new process calibration lock. The child has none of the
    parent's threads, so a lock one of them held at the fork (a ``calibrate()`` on a thread
    while a pool forks its workers) would be held forever there: every worker hung on its first
    approximate search (helper-110). The directory's lock file still keeps the child waiting
    until the parent's calibration is written (``flock``, released by the parent's unlock)."""
    global _CALIBRATION
    _CALIBRATION = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_calibration_lock_after_fork)


@contextlib.contextmanager
def _calibration_turn(directory: Path | None = None) -> Iterator[None]:
    """Hold the process's calibration lock (one calibration at a time: each takes every core),
    then, for an index on disk, ``directory``'s calibration lock, which other processes take too
    (:func:`~sparsedex.lock.calibration_lock`: the second process to calibrate a segment reads
    the first one's ``.cal`` file instead). Both are waited for in short steps, so that Ctrl-C
    stops the wait: a process-directed SIGINT may be caught on another thread, and a main thread
    asleep in a plain ``acquire()`` then waited for the whole calibration of the thread holding
    the lock (helper-109: 4-14 s)."""
    lock, got = _CALIBRATION, False  # the lock taken is the one released, across a fork too
    try:
        while not got:
            got = lock.acquire(timeout=0.05)
        with calibration_lock(directory):
            yield
    finally:
        if got:
            lock.release()


@contextlib.contextmanager
def _calibration_bar(core: Any, pos: int, name: str, enabled: bool | None) -> Iterator[None]:
    """A progress bar of segment ``pos``'s calibration while the body runs it: a thread reads
    the engine's count of calibration queries evaluated every 0.1 s (the calibration itself
    runs with the GIL released)."""
    from ._progress import progress_bar, progress_enabled

    if not progress_enabled(enabled):
        yield
        return
    done = threading.Event()

    def poll() -> None:
        with progress_bar(None, f"calibrating {name}", True, unit="query") as bar:
            while True:
                last = done.wait(0.1)
                try:
                    n, total = core.calibration_progress(pos)
                except Exception:  # the index closed meanwhile: the call itself will say so
                    break
                if n < bar.n:  # a new calibration started after the one the bar showed
                    bar.reset(total=total or None)
                if total and bar.total != total:
                    bar.total = total
                    bar.refresh()
                if n > bar.n:
                    bar.update(n - bar.n)
                if last:
                    break

    t = threading.Thread(target=poll, name="sparsedex-calibration-progress", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()

_ALIASES = {"taat", "oracle", "block_max_wand", "blockmaxwand", "block_max_maxscore", "blockmaxmaxscore",
            "taat_maxscore", "tms", "block_max_pruning"}


_APPROXIMATE = {"approximate", "approx"}


_SCORES = ("vectors", "impacts")


def _check_scores(scores: Any, algorithm: Any = None) -> None:
    if not isinstance(scores, str) or scores not in _SCORES:
        raise ValueError(f"scores must be 'vectors' or 'impacts', got {scores!r}")
    if scores == "impacts" and isinstance(algorithm, str) and algorithm.lower() in _APPROXIMATE:
        raise ValueError(
            "scores='impacts' applies to the exact algorithms; algorithm='approximate' always "
            "returns the float32 scores of the stored vectors"
        )


def _check_algorithm(name: str, target_recall: float | None = None) -> None:
    algos = SparseIndex.algorithms
    if not isinstance(name, str) or (name.lower() not in algos and name.lower() not in _ALIASES | _APPROXIMATE):
        choices = ", ".join((*algos, "approximate"))
        raise ValueError(f"unknown algorithm {shown(name, 60)} (choose one of: {choices})")
    if target_recall is None:
        return
    if name.lower() not in _APPROXIMATE:
        raise ValueError(f"target_recall applies to algorithm='approximate' only, got algorithm={name!r}")
    _validate.check_target_recall(target_recall)
