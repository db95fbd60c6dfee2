"""BM25: a term dictionary, term-frequency vectors, and the textbook weighting functions.

The encoder does not weight anything: documents become vectors of raw term frequencies (tf)
with their lengths (dl = number of terms after analysis = sum of tf), queries become vectors
of query term frequencies (qtf). The index keeps tf and dl and weights at query time with its
own statistics (N documents, average length avgdl, document frequency df per term), so scores
stay right as documents are added:

    score(q, d) = sum over query terms t of  idf(t) * qtf(t) * tf(t,d) * (k1 + 1)
                                              / (tf(t,d) + k1 * (1 - b + b * dl / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

(the formula of REFERENCE_RESULTS.json ``_settings``; same ranking as bm25s ``method="lucene"``).
:func:`bm25_doc_weights`, :func:`bm25_idf` and :func:`bm25_query_weights` compute it.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import iter_texts
from ..vectors import SparseEmbedding, as_sparse_embedding
from .analysis import Analyzer

__all__ = [
    "Bm25Encoder",
    "TermDictionary",
    "bm25_idf",
    "bm25_doc_weights",
    "bm25_query_weights",
    "bm25_weight_vectors",
    "collection_stats",
]

_FORMAT = "sparsedex-bm25"
_FORMAT_VERSION = 1


# pure functions ------------------------------------------------------------------------
def bm25_idf(df: Any, n_docs: int) -> np.ndarray:
    """``ln(1 + (N - df + 0.5) / (df + 0.5))`` (float64; always > 0 for 0 <= df <= N)."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((float(n_docs) - df + 0.5) / (df + 0.5))


def bm25_doc_weights(tf: Any, dl: Any, avgdl: float, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` elementwise (float64).

    ``tf`` and ``dl`` broadcast (e.g. the tf of one posting list and the lengths of its
    documents). ``avgdl`` must be > 0 (an all-empty collection has no postings to weight).
    """
    tf = np.asarray(tf, dtype=np.float64)
    dl = np.asarray(dl, dtype=np.float64)
    if not avgdl > 0:
        raise ValueError(f"avgdl must be > 0, got {avgdl}")
    return tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / float(avgdl)))


def bm25_query_weights(qtf: Any, df: Any, n_docs: int) -> np.ndarray:
    """Query term weights ``idf(df, N) * qtf`` (float64)."""
    return bm25_idf(df, n_docs) * np.asarray(qtf, dtype=np.float64)


def collection_stats(doc_vectors: Sequence[Any], vocab_size: int | None = None) -> dict[str, Any]:
    """``{"n_docs", "avgdl", "df", "dl"}`` of tf vectors (``dl`` = sum of tf per document)."""
    embs = [as_sparse_embedding(v) for v in doc_vectors]
    dl = np.array([float(np.sum(e.values, dtype=np.float64)) for e in embs], dtype=np.float64)
    hi = max((int(e.indices.max()) + 1 for e in embs if e.indices.size), default=0)
    size = max(hi, vocab_size or 0)
    df = np.zeros(size, dtype=np.int64)
    for e in embs:
        df[np.asarray(e.indices, dtype=np.int64)] += 1
    n = len(embs)
    return {"n_docs": n, "avgdl": float(dl.mean()) if n else 0.0, "df": df, "dl": dl}


def bm25_weight_vectors(
    doc_vectors: Sequence[Any], k1: float = 1.2, b: float = 0.75, vocab_size: int | None = None
) -> tuple[list[SparseEmbedding], dict[str, Any]]:
    """Turn tf vectors into BM25 document-weight vectors (float32) plus the collection stats.

    With these, ``score = dot(query_weights, doc_weights)`` where the query vector holds
    :func:`bm25_query_weights` (``stats["df"]``, ``stats["n_docs"]``). A convenience for
    exhaustive baselines; an index computes the same from its own statistics.
    """
    stats = collection_stats(doc_vectors, vocab_size)
    out = []
    for e, dl in zip((as_sparse_embedding(v) for v in doc_vectors), stats["dl"]):
        w = bm25_doc_weights(e.values, dl, stats["avgdl"], k1, b) if e.values.size else e.values
        out.append(SparseEmbedding(indices=e.indices, values=np.asarray(w, dtype=np.float32)))
    return out, stats


# term dictionary ------------------------------------------------------------------------
class TermDictionary:
    """A growing map term -> id (ids 0, 1, 2, ... in order of first sight) and back."""

    def __init__(self, terms: Iterable[str] = ()) -> None:
        self._terms: list[str] = list(terms)
        # the vocabulary record (file, bytes, crc32, terms) of the index commit these terms were
        # read from, set by the index that read them: its writer checks the committed vocabulary
        # still begins with them by that record's checksum, not term by term
        self.committed: tuple[str, int, int, int] | None = None
        # one C-level pass (opening a BM25 index builds this for its whole vocabulary)
        self._ids: dict[str, int] = dict(zip(self._terms, range(len(self._terms))))
        if len(self._ids) != len(self._terms):
            seen: set[str] = set()
            for t in self._terms:
                if t in seen:
                    raise ValueError(f"term {t!r} appears twice in the term list")
                seen.add(t)

    def __len__(self) -> int:
        return len(self._terms)

    def __contains__(self, term: object) -> bool:
        return term in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def get(self, term: str) -> int | None:
        """The term's id, or ``None``."""
        return self._ids.get(term)

    def add(self, term: str) -> int:
        """The term's id, adding it if new."""
        i = self._ids.get(term)
        if i is None:
            i = self._ids[term] = len(self._terms)
            self._terms.append(term)
        return i

    def term(self, term_id: int) -> str:
        """The term with id ``term_id``; KeyError if none."""
        i = int(term_id)
        if not 0 <= i < len(self._terms):
            raise KeyError(f"term id {term_id} is not in the dictionary ({len(self)} terms)")
        return self._terms[i]

    def terms_from(self, n: int) -> list[str]:
        """The terms with ids ``n ..`` in id order (a copy of just those)."""
        return self._terms[n:]

    def extend(self, terms: Iterable[str]) -> None:
        """Append new terms (ids ``len(self) ..``); ValueError for a term already there."""
        for t in terms:
            if t in self._ids:
                raise ValueError(f"term {t!r} is already in the dictionary (id {self._ids[t]})")
            self._ids[t] = len(self._terms)
            self._terms.append(t)

    def truncate(self, n: int) -> None:
        """Forget every term with id ``>= n`` (undoes the terms a refused add introduced)."""
        for t in self._terms[n:]:
            del self._ids[t]
        del self._terms[n:]

    @property
    def terms(self) -> list[str]:
        """All terms in id order (a copy)."""
        return list(self._terms)

    def to_json(self) -> list[str]:
        return list(self._terms)

    @classmethod
    def from_json(cls, data: Any) -> TermDictionary:
        if not isinstance(data, list) or not set(map(type, data)) <= {str}:
            raise ValueError("a term dictionary is a JSON list of strings (terms in id order)")
        return cls(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TermDictionary) and self._terms == other._terms

    def __repr__(self) -> str:
        return f"TermDictionary({len(self)} terms)"


# encoder -------------------------------------------------------------------------------
#: The largest k1 taken: BM25's term-frequency saturation is long reached (usual values 0.5-3).
MAX_K1 = 1000.0


def _parameter(x: Any, name: str) -> float:
    """A BM25 parameter as a float: a real number (int, float, numpy's, Fraction, Decimal);
    numpy's narrow floats by their shortest text (``np.float32(1.2)`` is 1.2, not
    1.2000000476837158, which reopening with ``k1=1.2`` then refused: helper-139). TypeError
    naming it for anything else (``k1='1'`` gave a bare comparison error: helper-137)."""
    import decimal
    import numbers

    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, decimal.Decimal)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__} {x!r}")
    if isinstance(x, decimal.Decimal) and x.is_nan():  # float() of a signaling NaN raises
        raise ValueError(f"{name} must be finite and >= 0, got {x!r}")
    try:
        return float(str(x)) if isinstance(x, np.floating) and x.itemsize < 8 else float(x)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got an integer of {len(str(abs(int(x))))} digits") from None


class Bm25Encoder:
    """Text to term-frequency vectors for BM25 (weights are computed by the index).

    ``k1`` and ``b`` are carried here (and in :meth:`identity`) so the index knows which
    BM25 to compute. Documents add their terms to the dictionary; queries never do (a query
    term no document has matches nothing, so it is dropped).
    """

    kind = "bm25"

    def __init__(
        self,
        analyzer: Analyzer | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        vocabulary: TermDictionary | Iterable[str] | None = None,
    ) -> None:
        k1, b = _parameter(k1, "k1"), _parameter(b, "b")
        if not (k1 >= 0 and math.isfinite(k1)):
            raise ValueError(f"k1 must be finite and >= 0, got {k1}")
        if k1 > MAX_K1:
            # term frequencies saturate long before; past it float32 scores lost their order too
            # (helper-142: 64.0 for every document at k1=1e20)
            raise ValueError(f"k1 must be at most {MAX_K1:g} (usual values are 0.5 to 3), got {k1!r}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be in [0, 1], got {b}")
        self.analyzer = analyzer if analyzer is not None else Analyzer()
        self.k1 = float(k1)
        self.b = float(b)
        if vocabulary is None:
            self.vocabulary = TermDictionary()
        elif isinstance(vocabulary, TermDictionary):
            self.vocabulary = vocabulary
        else:
            self.vocabulary = TermDictionary(vocabulary)

    @property
    def vocab_size(self) -> int:
        """Current number of terms (grows as documents are encoded)."""
        return len(self.vocabulary)

    def _vector(self, terms: list[str], grow: bool) -> SparseEmbedding:
        counts = Counter(terms)
        ids: list[int] = []
        tfs: list[int] = []
        for term, c in counts.items():
            i = self.vocabulary.add(term) if grow else self.vocabulary.get(term)
            if i is not None:
                ids.append(i)
                tfs.append(c)
        if not ids:
            return SparseEmbedding.empty()
        idx = np.asarray(ids, dtype=np.int32)
        order = np.argsort(idx, kind="stable")
        return SparseEmbedding(indices=idx[order], values=np.asarray(tfs, dtype=np.float32)[order])

    def encode_documents(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """Term-frequency vectors (values = tf, float32); new terms join the dictionary.

        A document's length dl is ``values.sum()`` (see :meth:`encode_documents_with_lengths`).
        """
        return self.encode_documents_with_lengths(texts)[0]

    def encode_documents_with_lengths(
        self, texts: str | Iterable[str]
    ) -> tuple[list[SparseEmbedding], np.ndarray]:
        """``(tf vectors, dl)``: dl (int64) = number of terms of each document after analysis."""
        vecs: list[SparseEmbedding] = []
        lengths: list[int] = []
        for text in iter_texts(texts):
            terms = self.analyzer(text)
            vecs.append(self._vector(terms, grow=True))
            lengths.append(len(terms))
        return vecs, np.asarray(lengths, dtype=np.int64)

    def encode_queries(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """Query vectors: values = query term frequency; unknown terms dropped."""
        out = []
        for text in iter_texts(texts, "query"):
            out.append(self._vector(self.analyzer(text), grow=False))
        return out

    def embed(self, documents: str | Iterable[str], **_: Any) -> Iterator[SparseEmbedding]:
        """fastembed-style generator of document tf vectors."""
        return iter(self.encode_documents(documents))

    def query_embed(self, query: str | Iterable[str], **_: Any) -> Iterator[SparseEmbedding]:
        return iter(self.encode_queries(query))

    # terms -------------------------------------------------------------------------------
    def token_id(self, term: str) -> int:
        """The id of an (already analysed) term; KeyError if unknown."""
        i = self.vocabulary.get(term)
        if i is None:
            raise KeyError(f"term {term!r} is not in the dictionary")
        return i

    def token_ids(self, terms: Iterable[str]) -> list[int]:
        return [self.token_id(t) for t in terms]

    def id_to_token(self, term_id: int) -> str:
        return self.vocabulary.term(term_id)

    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """``[(term, value), ...]`` highest value first (ties: lower id first)."""
        from .splade import decode_with

        return decode_with(embedding, self.id_to_token, top_k)

    # persistence -------------------------------------------------------------------------
    def identity(self, include_vocabulary: bool = True) -> dict[str, Any]:
        """Settings (and by default the term dictionary) that re-create this encoder."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "k1": self.k1,
            "b": self.b,
            "analyzer": self.analyzer.config(),
            "vocab_size": self.vocab_size,
        }
        if include_vocabulary:
            d["vocabulary"] = self.vocabulary.to_json()
        return d

    @classmethod
    def from_identity(cls, identity: dict[str, Any], **_: Any) -> Bm25Encoder:
        if identity.get("kind") != "bm25":
            raise ValueError(f"not a BM25 encoder identity (kind={identity.get('kind')!r})")
        if identity.get("version", 1) > _FORMAT_VERSION:
            raise ValueError(
                f"BM25 encoder format version {identity['version']} is newer than this "
                f"sparsedex understands ({_FORMAT_VERSION})"
            )
        vocab = TermDictionary.from_json(identity.get("vocabulary", []))
        if "vocab_size" in identity and identity["vocab_size"] != len(vocab):
            raise ValueError(
                f"BM25 vocabulary has {len(vocab)} terms but vocab_size says {identity['vocab_size']}"
            )
        k1 = identity.get("k1", 1.2)
        enc = cls(
            Analyzer.from_config(identity.get("analyzer", {})),
            k1=min(k1, MAX_K1) if isinstance(k1, (int, float)) else k1,
            b=identity.get("b", 0.75),
            vocabulary=vocab,
        )
        # a saved index keeps its k1: MAX_K1 applies to new encoders (an index saved with k1=1500
        # before the limit became unopenable: helper-143)
        enc.k1 = float(k1)
        return enc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`identity` (with the vocabulary) as JSON, atomically."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.identity(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bm25Encoder:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not a BM25 encoder file (invalid JSON: {e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: not a BM25 encoder file")
        return cls.from_identity(data)

    def __repr__(self) -> str:
        return f"Bm25Encoder(k1={self.k1}, b={self.b}, {self.analyzer!r}, vocab_size={self.vocab_size})"
