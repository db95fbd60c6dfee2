"""fastembed's ``Qdrant/bm25``: BM25 document weights with hashed term ids, reproduced exactly.

This is the BM25 of fastembed (``fastembed.sparse.bm25.Bm25``, checked against fastembed
0.9.1), meant for an index that applies IDF at query time (Qdrant's ``modifier="idf"``).
A text becomes terms by these steps, in this order:

1. every character that is neither a word character (``\\w``, Unicode) nor whitespace becomes
   a space; the text is lowercased; every non-word character becomes a space; the words are
   the whitespace-separated pieces (so ``"RUNNER's run-time!"`` gives ``runner s run time``);
2. a word is dropped if it is a single punctuation character (Unicode category ``P*``; only
   ``_`` can be one), if it is a stopword, or if it is longer than ``token_max_length`` (40)
   characters;
3. the Snowball stemmer of ``language`` (the ``py_rust_stemmers`` implementation fastembed
   uses: its English differs from PyStemmer's on words such as "international" or
   "organization") stems it; an empty stem is dropped;
4. a stem's term id is ``abs(murmur3_x86_32(utf8(stem), seed=0))`` read as a signed 32-bit
   integer (the ``mmh3`` package, as fastembed): ids lie in ``[0, 2**31]``.

A document's vector holds, for each distinct term, the BM25 term-frequency factor

    w(t, d) = tf * (k + 1) / (tf + k * (1 - b + b * |d| / avg_len))

with ``|d|`` the number of terms kept in step 3, ``k = 1.2``, ``b = 0.75`` and a fixed
``avg_len = 256`` (not the collection's average: that is how fastembed does it), computed in
float64 in fastembed's operation order and stored as float32 (sparse vectors here, and in
Qdrant, are float32). Entries are in order of first occurrence. A hash collision keeps the
later term's weight, as fastembed does. A query's vector holds 1.0 for each distinct term
(fastembed's order: ``list(set(ids))``); the index multiplies by
``idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))`` at query time, which makes
``score = sum over query terms of idf(t) * w(t, d)``: BM25 (Robertson & Zaragoza 2009, "The
Probabilistic Relevance Framework: BM25 and Beyond").

Stopwords: by default the English list shipped in ``sparsedex/encoders/stopwords/english.txt``
(NLTK's 179 words, the list of the hub repo ``Qdrant/bm25``; see the PROVENANCE.md beside it).
``disable_stopwords=True`` keeps every word, ``stopwords=[...]`` uses your list (matched after
lowercasing, before stemming), ``stopwords_dir=DIR`` reads ``DIR/<language>.txt`` (a local copy
of the hub repo, as fastembed's ``specific_model_path``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int
from ..vectors import SparseEmbedding, as_sparse_embedding

__all__ = [
    "FastembedBm25Encoder",
    "SUPPORTED_LANGUAGES",
    "compute_token_id",
    "fastembed_words",
    "bundled_stopwords",
]

#: Languages of fastembed's Bm25 (Snowball stemmers of py_rust_stemmers).
SUPPORTED_LANGUAGES = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek",
    "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian", "spanish",
    "swedish", "tamil", "turkish",
)  # fmt: skip

_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")
_WORD = re.compile(r"\w+")
_MAX_REVERSE = 1 << 20  # term ids remembered for id_to_token (explanations), at most


def fastembed_words(text: str) -> list[str]:
    """Step 1 of the module docstring: the lowercased words of ``text``, in order.

    Equal to fastembed's ``SimpleTokenizer.tokenize(remove_non_alphanumeric(text))``: after
    non-word characters became spaces, the whitespace-separated pieces are exactly the
    maximal runs of word characters.
    """
    return _WORD.findall(_NOT_WORD_OR_SPACE.sub(" ", text).lower())


def compute_token_id(term: str) -> int:
    """``abs(mmh3.hash(term))``: the 32-bit murmur3 (seed 0) of the UTF-8 bytes, made
    non-negative; in ``[0, 2**31]``."""
    import mmh3

    return abs(mmh3.hash(term))


def bundled_stopwords(language: str = "english") -> list[str] | None:
    """The stopword list shipped for ``language`` (one word per line), or None if there is none."""
    f = resources.files("sparsedex").joinpath("encoders", "stopwords", f"{language}.txt")
    if not f.is_file():
        return None
    return f.read_text(encoding="utf-8").splitlines()


def _is_punctuation(word: str) -> bool:
    return len(word) == 1 and unicodedata.category(word).startswith("P")


class FastembedBm25Encoder:
    """Text to fastembed ``Qdrant/bm25`` vectors (see the module docstring for the exact recipe).

    Parameters
    ----------
    k:
        BM25 term-frequency saturation (fastembed: 1.2).
    b:
        BM25 length normalisation, in [0, 1] (fastembed: 0.75).
    avg_len:
        The assumed average document length in terms (fastembed: 256, whatever the collection).
    language:
        Snowball stemmer language (:data:`SUPPORTED_LANGUAGES`) and stopword list name.
    token_max_length:
        Words longer than this many characters are dropped (fastembed: 40).
    disable_stemmer:
        Keep words unstemmed; as in fastembed this also disables the default stopword list
        (an explicit ``stopwords`` list still applies).
    stopwords:
        ``None``: the language's default list. An iterable of words: that list instead
        (lowercased; an empty one disables stopwords, as in fastembed).
    disable_stopwords:
        Keep every word (the setting of the shared reference vectors).
    stopwords_dir:
        A directory holding ``<language>.txt`` (e.g. a local copy of the hub repo
        ``Qdrant/bm25``); when the file is there it replaces the bundled list.

    Raises
    ------
    ValueError
        Unknown language without ``disable_stemmer``; no stopword list for the language (pass
        ``stopwords``, ``disable_stopwords=True`` or ``stopwords_dir``); bad parameters.
    ImportError
        ``mmh3`` or ``py_rust_stemmers`` is missing (both are dependencies of sparsedex).
    """

    kind = "fastembed-bm25"
    model_name = "Qdrant/bm25"

    def __init__(
        self,
        *,
        k: float = 1.2,
        b: float = 0.75,
        avg_len: float = 256.0,
        language: str = "english",
        token_max_length: int = 40,
        disable_stemmer: bool = False,
        stopwords: Iterable[str] | None = None,
        disable_stopwords: bool = False,
        stopwords_dir: str | Path | None = None,
    ) -> None:
        for name, v in (("k", k), ("b", b), ("avg_len", avg_len)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        if k < 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ValueError(f"need k >= 0, 0 <= b <= 1, avg_len > 0; got k={k}, b={b}, avg_len={avg_len}")
        if isinstance(token_max_length, bool) or not isinstance(token_max_length, int) or token_max_length < 1:
            raise ValueError(f"token_max_length must be a positive integer, got {token_max_length!r}")
        if not isinstance(language, str):
            raise TypeError(f"language must be a str, got {type(language).__name__}")
        if disable_stopwords and stopwords is not None:
            raise ValueError("pass either stopwords=[...] or disable_stopwords=True, not both")
        if isinstance(stopwords, str):
            raise TypeError("stopwords must be an iterable of words, not a str")
        self.k = k
        self.b = b
        self.avg_len = avg_len
        self.language = language
        self.token_max_length = token_max_length
        self.disable_stemmer = bool(disable_stemmer)
        self.disable_stopwords = bool(disable_stopwords)
        self.stopwords_dir = None if stopwords_dir is None else str(stopwords_dir)

        self._stopwords_spec: Any
        if self.disable_stopwords:
            self.stopwords: frozenset[str] = frozenset()
            self._stopwords_spec = None
        elif stopwords is not None:
            self.stopwords = frozenset(w.lower() for w in stopwords)
            self._stopwords_spec = sorted(self.stopwords)
        elif self.disable_stemmer:
            self.stopwords = frozenset()  # fastembed: disable_stemmer also drops the default list
            self._stopwords_spec = None
        else:
            self.stopwords = frozenset(self._default_stopwords())
            self._stopwords_spec = "default"

        import mmh3  # noqa: F401  (fail here, not at the first text)

        self._stemmer: Any = None
        if not self.disable_stemmer:
            if language not in SUPPORTED_LANGUAGES:
                raise ValueError(
                    f"no Snowball stemmer for language {language!r} (supported: "
                    f"{', '.join(SUPPORTED_LANGUAGES)}); pass disable_stemmer=True to keep words unstemmed"
                )
            from py_rust_stemmers import SnowballStemmer

            self._stemmer = SnowballStemmer(language)
        self._reverse: dict[int, str] = {}

    def _default_stopwords(self) -> list[str]:
        if self.stopwords_dir is not None:
            f = Path(self.stopwords_dir).expanduser() / f"{self.language}.txt"
            if f.is_file():
                return f.read_text(encoding="utf-8").splitlines()
        words = bundled_stopwords(self.language)
        if words is not None:
            return words
        if self.language == "tamil":
            return []  # fastembed's hub repo has no tamil.txt: no stopwords
        where = f" or in {self.stopwords_dir}" if self.stopwords_dir else ""
        raise ValueError(
            f"no stopword list for {self.language!r} is shipped{where} (fastembed reads it from the hub "
            f"repo Qdrant/bm25, file {self.language}.txt): pass stopwords=[...], "
            "disable_stopwords=True, or stopwords_dir=DIR holding that file"
        )

    # analysis ----------------------------------------------------------------------------------
    def terms(self, text: str) -> list[str]:
        """The stems of ``text`` that count (steps 1-3), in order, repeats kept."""
        if not isinstance(text, str):
            raise TypeError(f"expected str, got {type(text).__name__}")
        limit = self.token_max_length
        stop = self.stopwords
        kept = []
        for word in fastembed_words(text):
            if _is_punctuation(word):
                continue
            low = word.lower()
            if low in stop or len(word) > limit:
                continue
            kept.append(low)
        if self._stemmer is not None and kept:
            kept = self._stemmer.stem_words(kept)
        return [t for t in kept if t]

    def token_id(self, term: str) -> int:
        """The term id of an analysed term (a stem): :func:`compute_token_id`."""
        tid = compute_token_id(term)
        if len(self._reverse) < _MAX_REVERSE:
            self._reverse.setdefault(tid, term)
        return tid

    def id_to_token(self, term_id: int) -> str:
        """The term this encoder last hashed to ``term_id``; KeyError if it has not seen one
        (hashing cannot be undone)."""
        try:
            return self._reverse[int(term_id)]
        except KeyError:
            raise KeyError(f"term id {term_id} has not been produced by this encoder") from None

    def term_weights(self, text: str) -> dict[int, float]:
        """``{term_id: w(t, d)}`` in float64, first-occurrence order (fastembed's document vector)."""
        stems = self.terms(text)
        counts: dict[str, int] = {}
        for s in stems:
            counts[s] = counts.get(s, 0) + 1
        doc_len = len(stems)
        k, b, avg_len = self.k, self.b, self.avg_len
        out: dict[int, float] = {}
        for s, n in counts.items():
            # fastembed's operation order, for bit-equal float64 results
            w = n * (k + 1)
            w /= n + k * (1 - b + b * doc_len / avg_len)
            out[self.token_id(s)] = w
        return out

    def token_count(self, texts: str | Iterable[str]) -> int:
        """Words in ``texts`` before stopwords and stemming (fastembed's ``token_count``)."""
        return sum(len(fastembed_words(t)) for t in _texts(texts))

    # vectors -----------------------------------------------------------------------------------
    def encode_document(self, text: str) -> SparseEmbedding:
        """One document vector (float32 weights, uint32 ids)."""
        tw = self.term_weights(text)
        return SparseEmbedding(
            indices=np.fromiter(tw.keys(), dtype=np.uint32, count=len(tw)),
            values=np.fromiter(tw.values(), dtype=np.float64, count=len(tw)),
        )

    def encode_query(self, text: str) -> SparseEmbedding:
        """One query vector: 1.0 per distinct term (IDF is the index's job)."""
        ids = list({self.token_id(s) for s in self.terms(text)})
        return SparseEmbedding(
            indices=np.asarray(ids, dtype=np.uint32), values=np.ones(len(ids), dtype=np.float32)
        )

    def encode_documents(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """One vector per text (a single string counts as one text)."""
        return [self.encode_document(t) for t in _texts(texts)]

    def encode_queries(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """One query vector per text."""
        return [self.encode_query(t) for t in _texts(texts)]

    def embed(
        self, documents: str | Iterable[str], batch_size: int = 256, parallel: int | None = None
    ) -> Iterator[SparseEmbedding]:
        """fastembed-compatible: a generator of document vectors.

        ``parallel=N`` encodes in N worker processes (see :class:`sparsedex.SparseTextEmbedding`).
        """
        from .._workers import embed_maybe_parallel

        return embed_maybe_parallel(self, self.worker_spec(), documents, batch_size, parallel)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """Same as :meth:`embed`."""
        return self.embed(texts, **kwargs)

    def query_embed(self, query: str | Iterable[str]) -> Iterator[SparseEmbedding]:
        """A generator of query vectors (1.0 per distinct term)."""
        return (self.encode_query(t) for t in _texts(query))

    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """``[(term, weight), ...]`` highest weight first (ties: lower id first); ids this
        encoder has not produced show as ``#id``."""
        emb = as_sparse_embedding(embedding)
        idx = np.asarray(emb.indices, dtype=np.int64)
        val = np.asarray(emb.values, dtype=np.float64)
        order = np.lexsort((idx, -val))
        if top_k is not None:
            order = order[: check_int(top_k, "top_k", 0, 2**63 - 1)]
        return [(self._reverse.get(int(idx[i]), f"#{int(idx[i])}"), float(val[i])) for i in order]

    # identity ----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments that re-create this encoder."""
        cfg: dict[str, Any] = {
            "k": self.k,
            "b": self.b,
            "avg_len": self.avg_len,
            "language": self.language,
            "token_max_length": self.token_max_length,
            "disable_stemmer": self.disable_stemmer,
        }
        if self.disable_stopwords:
            cfg["disable_stopwords"] = True
        elif isinstance(self._stopwords_spec, list):
            cfg["stopwords"] = list(self._stopwords_spec)
        elif self._stopwords_spec == "default" and self.stopwords_dir is not None:
            cfg["stopwords"] = sorted(self.stopwords)  # the directory's list, frozen
        return cfg

    def identity(self) -> dict[str, Any]:
        """What re-creates this encoder (saved with an index)."""
        return {"kind": self.kind, "model": self.model_name, **self.config()}

    @classmethod
    def from_identity(cls, identity: dict[str, Any], **_: Any) -> FastembedBm25Encoder:
        """Re-create an encoder from :meth:`identity`."""
        if identity.get("kind") != cls.kind:
            raise ValueError(f"not a {cls.kind} encoder identity (kind={identity.get('kind')!r})")
        cfg = {k: v for k, v in identity.items() if k not in ("kind", "model")}
        return cls(**cfg)

    def worker_spec(self) -> dict[str, Any]:
        """What a worker process needs to build the same encoder."""
        return {"kind": self.kind, "config": self.config()}

    @property
    def vocab_size(self) -> None:
        """None: hashed ids range over ``[0, 2**31]``, there is no vocabulary."""
        return None

    def __repr__(self) -> str:
        sw = "off" if not self.stopwords else f"{len(self.stopwords)} words"
        return (
            f"FastembedBm25Encoder(k={self.k}, b={self.b}, avg_len={self.avg_len}, "
            f"language={self.language!r}, stemmer={'off' if self.disable_stemmer else 'snowball'}, "
            f"stopwords={sw})"
        )


def _texts(texts: str | Iterable[str]) -> Iterator[str]:
    """The texts, checked as every encoder checks them (``_validate.iter_texts``: ``str``
    of valid Unicode; a lone surrogate, ``None``, bytes or a number is refused)."""
    from .._validate import iter_texts

    yield from iter_texts(texts)
