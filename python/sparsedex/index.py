"""SparseIndex: text (or vectors you bring) in, ranked and explained hits out.

>>> from sparsedex import SparseIndex
>>> index = SparseIndex("splade-tiny")                         # doctest: +SKIP
>>> index.add(["a rock band on tour", "a detective story"], payloads=[{"year": 1984}, None])
>>> index.search("A movie about music", k=1)                  # doctest: +SKIP
[Hit(id=0, score=9.31, payload={'year': 1984})]
>>> print(index.explain("A movie about music", 0))            # doctest: +SKIP

A SparseIndex keeps an encoder (SPLADE, BM25, or none when you bring vectors), the documents'
ids, texts and payloads, and a :class:`~sparsedex.VectorIndex` (the Rust engine) over their
vectors. Documents can be added at any time; the engine's index is immutable, so the first
search after an :meth:`SparseIndex.add` rebuilds it from all stored vectors (kept in memory as
numpy arrays until then). That costs a full build per add-then-search cycle: add in large
batches. Incremental segments are a later feature.

BM25 indexes store term frequencies and document lengths. Document weights
``tf*(k1+1)/(tf+k1*(1-b+b*dl/avgdl))`` are computed from the index's own statistics whenever the
engine's index is (re)built, and query weights ``idf*qtf`` with
``idf = ln(1+(N-df+0.5)/(df+0.5))`` from its own N and df at query time, so scores stay the
textbook BM25 of the current collection as documents are added.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._core import CorruptIndexError, SparsedexError
from .vector_index import VectorIndex
from .vectors import SparseEmbedding, to_csr_arrays, validate_embedding

__all__ = ["SparseIndex", "Hit", "Document", "Explanation", "TermMatch"]

_FORMAT = "sparsedex-index"
_FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_ENCODER = "encoder.json"
_VECTORS = "vectors"
_BM25 = "bm25_tf.npz"
_QUANTIZATIONS = ("u8", "float")


# results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One search result: the document's id, its score and its payload (None if it has none)."""

    id: Any
    score: float
    payload: dict[str, Any] | None = None

    def __repr__(self) -> str:
        p = "" if self.payload is None else f", payload={self.payload!r}"
        return f"Hit(id={self.id!r}, score={self.score:.4f}{p})"


@dataclass(frozen=True)
class Document:
    """A stored document: id, text (None if not kept), payload and its vector as indexed
    (for BM25: the BM25 document weights under the current collection statistics)."""

    id: Any
    text: str | None
    payload: dict[str, Any] | None
    vector: SparseEmbedding

    def __repr__(self) -> str:
        text = self.text if self.text is None or len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"Document(id={self.id!r}, text={text!r}, payload={self.payload!r}, "
            f"nnz={self.vector.nnz})"
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

    ``matches``: the terms query and document share, largest contribution first; their
    contributions sum to ``score`` (computed in the index's own arithmetic, so with a ``u8``
    index the weights are the dequantized ones the index scores). ``query_terms`` and
    ``document_terms``: the two vectors decoded to (token, weight), highest first, which shows
    how an expanding encoder such as SPLADE rewrote both texts.
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
        """The matched terms as a text table (``limit`` rows, the rest summed in one line)."""
        rows = self.matches if limit is None else self.matches[:limit]
        width = max([len("term")] + [len(m.token) for m in rows])
        lines = [
            f"{'term':<{width}}  {'query':>8}  {'document':>8}  {'contribution':>12}",
            f"{'-' * width}  {'-' * 8}  {'-' * 8}  {'-' * 12}",
        ]
        for m in rows:
            lines.append(
                f"{m.token:<{width}}  {m.query_weight:8.4f}  {m.doc_weight:8.4f}  {m.contribution:12.4f}"
            )
        rest = self.matches[len(rows):]
        if rest:
            s = sum(m.contribution for m in rest)
            label = f"({len(rest)} more)"
            lines.append(f"{label:<{width}}  {'':>8}  {'':>8}  {s:12.4f}")
        lines.append(f"{'total':<{width}}  {'':>8}  {'':>8}  {self.score:12.4f}")
        return "\n".join(lines)

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
        from .encoders.splade import SpladeEncoder

        return SpladeEncoder(name)
    if not (hasattr(encoder, "encode_documents") and hasattr(encoder, "encode_queries")):
        raise TypeError(
            f"encoder must be 'splade-tiny', 'bm25', a model name or directory, a SpladeEncoder, "
            f"a Bm25Encoder or None (vectors you bring), got {type(encoder).__name__}"
        )
    return encoder


def _is_bm25(encoder: Any) -> bool:
    return getattr(encoder, "kind", None) == "bm25"


def _plain_id(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _json_payload(p: Any, row: int) -> dict[str, Any] | None:
    if p is None:
        return None
    if not isinstance(p, Mapping):
        raise TypeError(f"payload of document {row} is a {type(p).__name__}: payloads are dicts (or None)")
    try:
        return json.loads(json.dumps(dict(p), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"payload of document {row} is not JSON-serialisable: {e}") from None


def _csr(vectors: Sequence[SparseEmbedding]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays of already validated vectors."""
    return to_csr_arrays(vectors, validate=False)


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished directory ``tmp`` to ``dest``, replacing what is there."""
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old / "index")
        try:
            os.replace(tmp, dest)
        except BaseException:
            os.replace(old / "index", dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


# the index ----------------------------------------------------------------------------------
class SparseIndex:
    """A searchable, explainable collection of documents.

    Parameters
    ----------
    encoder:
        ``"splade-tiny"`` (default; bundled, works offline), ``"bm25"``, another SPLADE model
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
        Vectors-you-bring only: term ids must be below it (default: no limit).

    Documents are added with :meth:`add`; the first search after an add rebuilds the engine's
    immutable index from all stored vectors (see the module docstring).
    """

    def __init__(
        self,
        encoder: Any = "splade-tiny",
        quantization: str = "u8",
        *,
        store_texts: bool = True,
        vocab_size: int | None = None,
    ) -> None:
        if quantization not in _QUANTIZATIONS:
            raise ValueError(f"quantization must be 'u8' or 'float', got {quantization!r}")
        self.quantization = quantization
        self.store_texts = bool(store_texts)
        self._encoder = _make_encoder(encoder)
        self._encoder_identity: dict[str, Any] | None = None  # for a lazily re-created encoder
        self._vocab_size = vocab_size if self._encoder is None else None
        self._ids: list[Any] = []
        self._row_of: dict[Any, int] = {}
        self._texts: list[str | None] = []
        self._payloads: list[dict[str, Any] | None] = []
        # source vectors: weights (SPLADE, vectors you bring) or term frequencies (BM25);
        # None while they only live in the engine index (after open()) and are not needed
        self._vectors: list[SparseEmbedding] | None = []
        self._engine: VectorIndex | None = None
        self._stale = False
        # BM25 statistics of the collection the engine index was built on
        self._df: np.ndarray | None = None

    # encoder ----------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The encoder (None for vectors you bring); re-created on first use after open()."""
        if self._encoder is None and self._encoder_identity is not None:
            from .encoders.registry import load_encoder

            self._encoder = load_encoder(self._encoder_identity)
            self._encoder_identity = None
        return self._encoder

    @property
    def encoder_identity(self) -> dict[str, Any] | None:
        """What re-creates the encoder (saved with the index); None for vectors you bring."""
        if self._encoder_identity is not None:
            return self._encoder_identity
        enc = self._encoder
        if enc is None:
            return None
        if not hasattr(enc, "identity"):
            return {"kind": "custom", "class": type(enc).__name__}
        if _is_bm25(enc):
            return enc.identity(include_vocabulary=False)
        return enc.identity()

    @property
    def _has_encoder(self) -> bool:
        return self._encoder is not None or self._encoder_identity is not None

    @property
    def _bm25(self) -> bool:
        ident = self._encoder_identity
        if ident is not None:
            return ident.get("kind") == "bm25"
        return _is_bm25(self._encoder)

    # adding -----------------------------------------------------------------------------------
    def add(
        self,
        documents: str | Iterable[Any],
        ids: Sequence[Any] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Any]:
        """Add documents: texts (with an encoder) or sparse vectors (without one).

        documents: a list of texts, or of vectors (SparseEmbedding, ``(indices, values)``,
        ``{term_id: weight}``); one text alone is one document.
        ids: one per document, all ints or all strings, unique in the index (default: running
        integers continuing from the largest int id).
        payloads: one JSON-like dict (or None) per document, returned with hits.
        Returns the ids of the added documents.
        """
        if isinstance(documents, str) or (not isinstance(documents, Sequence) and hasattr(documents, "indices")):
            documents = [documents]
        docs = list(documents)
        n = len(docs)
        texts: list[str | None]
        if self._has_encoder:
            for i, d in enumerate(docs):
                if not isinstance(d, str):
                    raise TypeError(
                        f"document {i} is a {type(d).__name__}: this index encodes texts "
                        f"(create SparseIndex(encoder=None) to add vectors you bring)"
                    )
            texts = list(docs)
        else:
            for i, d in enumerate(docs):
                if isinstance(d, str):
                    raise TypeError(
                        f"document {i} is a text but this index has no encoder: pass vectors, or "
                        "create SparseIndex('splade-tiny') / SparseIndex('bm25') for texts"
                    )
            texts = [None] * n
        new_ids = self._check_ids(ids, n)
        if payloads is None:
            pls: list[dict[str, Any] | None] = [None] * n
        else:
            raw = list(payloads)
            if len(raw) != n:
                raise ValueError(f"{len(raw)} payloads given for {n} documents")
            pls = [_json_payload(p, i) for i, p in enumerate(raw)]
        if self._has_encoder:
            vectors = list(self.encoder.encode_documents(docs)) if n else []
        else:
            vectors = [validate_embedding(d, self._vocab_size, row=i) for i, d in enumerate(docs)]
        if n == 0:
            return []
        self._ensure_vectors()
        assert self._vectors is not None
        self._vectors.extend(vectors)
        for i in new_ids:
            self._row_of[i] = len(self._ids)
            self._ids.append(i)
        self._texts.extend(texts if self.store_texts else [None] * n)
        self._payloads.extend(pls)
        self._stale = True
        return new_ids

    def _check_ids(self, ids: Sequence[Any] | None, n: int) -> list[Any]:
        if ids is None:
            if self._ids and isinstance(self._ids[0], str):
                raise ValueError("this index has string ids: pass ids= for the new documents")
            start = max(self._ids) + 1 if self._ids else 0
            return list(range(start, start + n))
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a sequence (one id per document), not a string")
        out = [_plain_id(x) for x in ids]
        if len(out) != n:
            raise ValueError(f"{len(out)} ids given for {n} documents")
        want: type | None = None
        if self._ids:
            want = str if isinstance(self._ids[0], str) else int
        seen: set[Any] = set()
        for i, x in enumerate(out):
            if isinstance(x, bool) or not isinstance(x, (int, str)):
                raise TypeError(f"id of document {i} is a {type(x).__name__}: ids are ints or strings")
            kind = str if isinstance(x, str) else int
            if want is None:
                want = kind
            elif kind is not want:
                raise TypeError(
                    f"id {x!r} of document {i} is a {kind.__name__} but the index's ids are "
                    f"{want.__name__}s: ids must be all ints or all strings"
                )
            if x in seen or x in self._row_of:
                raise ValueError(f"id {x!r} of document {i} is already in the index")
            seen.add(x)
        return out

    # engine -----------------------------------------------------------------------------------
    def _ensure_vectors(self) -> None:
        """Bring the source vectors back from the engine index (after open())."""
        if self._vectors is not None:
            return
        assert self._engine is not None and not self._bm25
        vecs = []
        for r in range(len(self._ids)):
            idx, val = self._engine.get(self._ids[r])
            vecs.append(SparseEmbedding(indices=idx, values=val))
        self._vectors = vecs

    def _engine_index(self) -> VectorIndex | None:
        if self._engine is not None and not self._stale:
            return self._engine
        if not self._ids:
            return None
        assert self._vectors is not None
        indptr, indices, values = _csr(self._vectors)
        vocab = None
        if self._bm25:
            values, self._df = self._bm25_doc_weights(indptr, indices, values)
            vocab = max(self.encoder.vocab_size, 1)
        elif self._encoder is not None:
            vocab = getattr(self._encoder, "vocab_size", None)
        else:
            vocab = self._vocab_size
        ids = self._ids
        self._engine = VectorIndex.build(
            (indptr, indices, values), ids=ids, vocab_size=vocab, quantization=self.quantization
        )
        self._stale = False
        return self._engine

    def _bm25_doc_weights(self, indptr: np.ndarray, indices: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .encoders.bm25 import bm25_doc_weights

        enc = self.encoder
        lens: np.ndarray = np.diff(indptr.astype(np.int64)).astype(np.int64)
        n = len(lens)
        dl_doc = np.bincount(np.repeat(np.arange(n), lens), weights=tf.astype(np.float64), minlength=n)
        avgdl = float(dl_doc.mean()) if n else 0.0
        dl = np.repeat(dl_doc, lens)
        w = bm25_doc_weights(tf, dl, avgdl, enc.k1, enc.b).astype(np.float32) if tf.size else tf
        df = np.bincount(indices.astype(np.int64), minlength=enc.vocab_size)
        return w, df

    def _bm25_query(self, qtf: SparseEmbedding) -> SparseEmbedding:
        from .encoders.bm25 import bm25_idf

        assert self._df is not None
        idx = np.asarray(qtf.indices, dtype=np.int64)
        known = idx < self._df.shape[0]
        idx = idx[known]
        df = self._df[idx]
        has = df > 0
        idx, df = idx[has], df[has]
        w = bm25_idf(df, len(self._ids)) * np.asarray(qtf.values, dtype=np.float64)[known][has]
        return SparseEmbedding(indices=idx.astype(np.uint32), values=w.astype(np.float32))

    def _query_vector(self, query: Any, what: str = "query") -> SparseEmbedding:
        if isinstance(query, str):
            if not self._has_encoder:
                raise TypeError(f"{what} is a text but this index has no encoder: pass a sparse vector")
            (v,) = self.encoder.encode_queries([query])
            if self._bm25:
                self._engine_index()
                v = self._bm25_query(v) if self._df is not None else SparseEmbedding.empty()
            return v
        return validate_embedding(query, row=None)

    # searching --------------------------------------------------------------------------------
    def search(self, query: Any, k: int = 10, algorithm: str = "auto") -> list[Hit]:
        """The ``k`` best documents for ``query`` (a text, or a sparse vector), best first.

        Scores are exact dot products of the query and document vectors in the index's
        arithmetic; ties go to the document added first. ``algorithm``: ``"auto"`` or one of
        :attr:`VectorIndex.algorithms` (all return the same hits).
        """
        k = self._check_k(k)
        q = self._query_vector(query)
        engine = self._engine_index()
        if engine is None or q.nnz == 0:
            return []
        ids, scores = engine.search(q.indices, q.values, k=k, algorithm=algorithm)
        return [self._hit(i, s) for i, s in zip(ids.tolist(), scores.tolist())]

    def search_batch(
        self, queries: Iterable[Any], k: int = 10, algorithm: str = "auto", threads: int | None = None
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries (texts or vectors) at once, on ``threads`` cores
        (default: all)."""
        k = self._check_k(k)
        qs = list(queries)
        if not qs:
            return []
        texts = [q for q in qs if isinstance(q, str)]
        if texts and len(texts) != len(qs):
            raise TypeError("queries must be all texts or all vectors")
        if texts:
            if not self._has_encoder:
                raise TypeError("queries are texts but this index has no encoder: pass sparse vectors")
            vecs = list(self.encoder.encode_queries(texts))
            if self._bm25:
                self._engine_index()
                vecs = [self._bm25_query(v) if self._df is not None else SparseEmbedding.empty() for v in vecs]
        else:
            vecs = [validate_embedding(q, row=i) for i, q in enumerate(qs)]
        engine = self._engine_index()
        if engine is None:
            return [[] for _ in qs]
        ids, scores = engine.search_batch(_csr(vecs), k=k, algorithm=algorithm, threads=threads)
        out = []
        for row_ids, row_scores in zip(ids.tolist(), scores.tolist()):
            out.append([self._hit(i, s) for i, s in zip(row_ids, row_scores) if not (s != s)])
        return out

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        return int(k)

    def _hit(self, id: Any, score: float) -> Hit:
        return Hit(id, float(score), self._payloads[self._row_of[id]])

    # documents --------------------------------------------------------------------------------
    def _row(self, id: Any) -> int:
        try:
            return self._row_of[_plain_id(id)]
        except (KeyError, TypeError):
            raise KeyError(f"no document with id {id!r} in the index") from None

    def __contains__(self, id: Any) -> bool:
        try:
            return _plain_id(id) in self._row_of
        except TypeError:
            return False

    def get(self, id: Any) -> Document:
        """The stored document ``id`` (KeyError if there is none)."""
        row = self._row(id)
        engine = self._engine_index()
        assert engine is not None
        idx, val = engine.get(self._ids[row])
        return Document(self._ids[row], self._texts[row], self._payloads[row], SparseEmbedding(indices=idx, values=val))

    def ids(self) -> list[Any]:
        """All document ids, in the order they were added."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    # explaining -------------------------------------------------------------------------------
    def explain(self, query: Any, id: Any, top_terms: int | None = 30) -> Explanation:
        """Why document ``id`` scored what it did for ``query`` (a text or a vector).

        The matched terms come decoded to tokens (the encoder's vocabulary, or BM25's term
        dictionary) with query weight, document weight and contribution; the contributions sum
        to the score :meth:`search` gives. ``top_terms`` bounds the decoded query and document
        vectors kept in the explanation (None: all).
        """
        row = self._row(id)
        q = self._query_vector(query)
        engine = self._engine_index()
        assert engine is not None
        parts = engine._core.explain(np.asarray(q.indices, dtype=np.uint32), np.asarray(q.values, dtype=np.float32), engine.row(self._ids[row]))
        matches = [
            TermMatch(int(t), self._token(int(t)), float(qw), float(dw), float(c)) for t, qw, dw, c in parts
        ]
        score = float(np.float32(math.fsum(m.contribution for m in matches)))
        d_idx, d_val = engine.get(self._ids[row])
        doc_terms = self.decode(SparseEmbedding(indices=d_idx, values=d_val), top_k=top_terms)
        return Explanation(self._ids[row], score, matches, self.decode(q, top_k=top_terms), doc_terms)

    def _token(self, term_id: int) -> str:
        enc = self.encoder
        if enc is None:
            return str(term_id)
        try:
            return str(enc.id_to_token(term_id))
        except (KeyError, IndexError):
            return f"#{term_id}"

    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """A vector (or a text, encoded as a query) as ``[(token, weight), ...]``, highest
        weight first. Without an encoder the tokens are the term ids as strings."""
        v = self._query_vector(embedding) if isinstance(embedding, str) else validate_embedding(embedding)
        idx = np.asarray(v.indices, dtype=np.int64)
        val = np.asarray(v.values, dtype=np.float64)
        order = np.lexsort((idx, -val))
        if top_k is not None:
            order = order[: max(0, int(top_k))]
        return [(self._token(int(idx[i])), float(val[i])) for i in order]

    # persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to directory ``path``: the engine index, the BM25 term frequencies
        (BM25), ``encoder.json`` (the encoder's identity) and ``manifest.json`` (ids, texts,
        payloads). The directory is replaced as a whole (written beside it, then renamed);
        an existing directory that is not a sparsedex index is never overwritten."""
        dest = Path(path)
        if dest.exists():
            if not dest.is_dir():
                raise FileExistsError(f"{dest} exists and is not a directory")
            if any(dest.iterdir()) and not (dest / _MANIFEST).is_file():
                raise FileExistsError(f"{dest} exists and is not a sparsedex index: not overwriting it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        engine = self._engine_index()
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            if engine is not None:
                engine.save(tmp / _VECTORS)
            ident = self.encoder_identity
            if self._bm25:
                enc = self.encoder
                ident = enc.identity(include_vocabulary=True)
                assert self._vectors is not None
                indptr, indices, values = _csr(self._vectors)
                with open(tmp / _BM25, "wb") as f:
                    np.savez(f, indptr=indptr, indices=indices, tf=values)
            if ident is not None and ident.get("kind") == "custom":
                raise ValueError(
                    f"cannot save an index whose encoder ({ident['class']}) has no identity(): "
                    "use SpladeEncoder, Bm25Encoder or vectors you bring"
                )
            (tmp / _ENCODER).write_text(json.dumps(ident, ensure_ascii=False), encoding="utf-8")
            manifest = {
                "format": _FORMAT,
                "version": _FORMAT_VERSION,
                "documents": len(self._ids),
                "quantization": self.quantization,
                "store_texts": self.store_texts,
                "vocab_size": self._vocab_size,
                "encoder": None if ident is None else {k: v for k, v in ident.items() if k != "vocabulary"},
                "ids": self._ids,
                "texts": self._texts,
                "payloads": self._payloads,
            }
            (tmp / _MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], encoder: Any = None) -> "SparseIndex":
        """Open an index written by :meth:`save`.

        The encoder is re-created from its saved identity on first use (the bundled model by
        name, a local model directory by its path, BM25 with its saved term dictionary and
        parameters); pass ``encoder=`` to use another one (e.g. the model moved elsewhere).
        """
        p = Path(path)
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: no index directory there")
        mpath = p / _MANIFEST
        if not mpath.is_file():
            raise CorruptIndexError(f"{p}: missing {_MANIFEST} (not a sparsedex index directory)")
        try:
            m = json.loads(mpath.read_text(encoding="utf-8"))
            ident = json.loads((p / _ENCODER).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise CorruptIndexError(f"{p}: missing {Path(e.filename).name}") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptIndexError(f"{p}: unreadable manifest ({e})") from None
        if not isinstance(m, dict) or m.get("format") != _FORMAT:
            raise CorruptIndexError(f"{mpath}: not a {_FORMAT} manifest")
        if m.get("version") != _FORMAT_VERSION:
            raise CorruptIndexError(
                f"{mpath}: format version {m.get('version')} is not supported (this build reads {_FORMAT_VERSION})"
            )
        try:
            ids, texts, payloads = m["ids"], m["texts"], m["payloads"]
            n = int(m["documents"])
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptIndexError(f"{mpath}: incomplete manifest ({e})") from None
        if not (len(ids) == len(texts) == len(payloads) == n):
            raise CorruptIndexError(f"{mpath}: ids, texts and payloads do not match the document count {n}")
        self = cls(None, m.get("quantization", "u8"), store_texts=m.get("store_texts", True), vocab_size=m.get("vocab_size"))
        if encoder is not None:
            self._encoder = _make_encoder(encoder)
            self._vocab_size = None
        elif ident is not None:
            if ident.get("kind") == "bm25":
                from .encoders.bm25 import Bm25Encoder

                self._encoder = Bm25Encoder.from_identity(ident)
            else:
                self._encoder_identity = ident
        self._ids = ids
        self._row_of = {x: i for i, x in enumerate(ids)}
        if len(self._row_of) != n:
            raise CorruptIndexError(f"{mpath}: duplicate document ids")
        self._texts = texts
        self._payloads = payloads
        if n:
            self._engine = VectorIndex.open(p / _VECTORS)
            if len(self._engine) != n:
                raise CorruptIndexError(f"{p}: the engine index has {len(self._engine)} documents, the manifest {n}")
            self._vectors = None
            if self._bm25:
                try:
                    with np.load(p / _BM25) as z:
                        indptr, indices, tf = z["indptr"], z["indices"], z["tf"]
                except (OSError, KeyError, ValueError) as e:
                    raise CorruptIndexError(f"{p / _BM25}: unreadable ({e})") from None
                if len(indptr) != n + 1:
                    raise CorruptIndexError(f"{p / _BM25}: has {len(indptr) - 1} documents, the manifest {n}")
                self._vectors = [
                    SparseEmbedding(indices=indices[a:b], values=tf[a:b])
                    for a, b in zip(indptr[:-1].tolist(), indptr[1:].tolist())
                ]
                self._df = np.bincount(indices.astype(np.int64), minlength=self.encoder.vocab_size)
        return self

    # misc -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Documents, encoder identity (without the BM25 term list), quantization and the engine's stats."""
        ident = self.encoder_identity
        engine = self._engine_index()
        return {
            "documents": len(self),
            "encoder": None if ident is None else {k: v for k, v in ident.items() if k != "vocabulary"},
            "quantization": self.quantization,
            "engine": engine.stats() if engine is not None else None,
        }

    @property
    def vector_index(self) -> VectorIndex | None:
        """The engine index over the current documents (built now if needed)."""
        return self._engine_index()

    def __repr__(self) -> str:
        ident = self.encoder_identity
        enc = "vectors" if ident is None else (ident.get("model") or ident.get("kind"))
        return f"SparseIndex({len(self)} documents, encoder={enc!r}, quantization={self.quantization!r})"
