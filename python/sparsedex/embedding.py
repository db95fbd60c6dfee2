"""``SparseTextEmbedding``: fastembed's sparse-embedding class, backed by sparsedex's encoders.

Code written for fastembed runs with its import changed::

    from sparsedex import SparseTextEmbedding     # was: from fastembed import SparseTextEmbedding

    model = SparseTextEmbedding("Qdrant/bm25")    # or "prithivida/Splade_PP_en_v1", "splade-tiny"
    doc_vectors = list(model.embed(documents, batch_size=256, parallel=None))
    query_vector = next(model.query_embed("a movie about music"))

The vectors are :class:`~sparsedex.SparseEmbedding` objects (``indices``, ``values``,
``as_object()``, ``as_dict()``), the same fields as fastembed's. Models:

- ``"splade-tiny"``: the bundled SPLADE model (no download), through
  :class:`~sparsedex.encoders.SpladeEncoder`.
- ``"prithivida/Splade_PP_en_v1"``: SPLADE++ (downloaded from the hub repo
  ``Qdrant/Splade_PP_en_v1``, or ``specific_model_path=DIR`` with its files), fastembed's
  SpladePP vectors.
- ``"Qdrant/bm25"``: fastembed's BM25 with hashed term ids, reproduced exactly
  (:class:`~sparsedex.encoders.FastembedBm25Encoder`); query vectors are 1.0 per term and
  need an index that applies IDF at query time.

What differs from fastembed, on purpose: an argument that does not apply is an error, not
ignored (``cuda=True`` for BM25, an unknown keyword, ``parallel=-1``); vector values are
float32 (as Qdrant stores them; BM25 weights are computed in float64 exactly as fastembed does
and rounded once); ``parallel`` workers start with ``spawn`` (see :mod:`sparsedex._workers`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ._workers import available_cores, check_batch_size, embed_maybe_parallel, resolve_parallel
from .encoders.fastembed_bm25 import FastembedBm25Encoder
from .encoders.registry import ModelDescription, _find_description, list_supported_models
from .vectors import SparseEmbedding

__all__ = ["SparseTextEmbedding"]

_BM25_KWARGS = frozenset(
    {"k", "b", "avg_len", "language", "token_max_length", "disable_stemmer", "stopwords", "disable_stopwords"}
)
_SPLADE_KWARGS = frozenset({"max_length", "batch_size", "token_budget", "local_files_only", "progress"})


def _cuda_flag(cuda: Any, runs_model: bool) -> bool:
    """``cuda`` as a bool: True / "cuda" -> True, False / "cpu" -> False, "auto" -> whether this
    onnxruntime has CUDA (only where a model runs and no providers were given)."""
    if isinstance(cuda, bool):
        return cuda
    if isinstance(cuda, str):  # also fastembed's Device enum, a str enum
        v = str(getattr(cuda, "value", cuda)).lower()
        if v == "cuda":
            return True
        if v == "cpu":
            return False
        if v == "auto":
            if not runs_model:
                return False
            import onnxruntime as ort

            return "CUDAExecutionProvider" in ort.get_available_providers()
    raise ValueError(f"cuda must be True, False, 'cuda', 'cpu' or 'auto', got {cuda!r}")


class SparseTextEmbedding:
    """Sparse text embeddings with fastembed's interface.

    Parameters
    ----------
    model_name:
        ``"splade-tiny"``, ``"prithivida/Splade_PP_en_v1"`` (aliases: ``"Qdrant/Splade_PP_en_v1"``,
        ...), ``"Qdrant/bm25"`` (case does not matter), or a SPLADE model directory. See
        :meth:`list_supported_models`.
    cache_dir:
        Where SPLADE++ is downloaded to (default: ``SPARSEDEX_CACHE_DIR``, else the Hugging Face
        cache). Qdrant/bm25 downloads nothing.
    threads:
        SPLADE: ONNX Runtime threads per process (default: every core; with ``parallel=N``,
        cores / N per worker). Not accepted for Qdrant/bm25.
    providers:
        SPLADE: ONNX Runtime execution providers, passed through as given (names or
        ``(name, options)`` pairs). Not accepted for Qdrant/bm25 (it runs no model).
    cuda:
        SPLADE: ``True`` (or ``"cuda"``) runs on CUDA device ``device_ids[0]`` (default 0);
        CUDA that is missing or fails to start raises
        :class:`~sparsedex.encoders.providers.ProviderNotAvailableError`. ``"auto"`` (fastembed's
        ``Device.AUTO``) uses CUDA when this onnxruntime has it, else the CPU. ``False`` /
        ``"cpu"``: the CPU. Qdrant/bm25 runs no model: only ``False``, ``"cpu"`` or ``"auto"``.
    device_ids:
        With ``cuda=True``: the CUDA devices; ``parallel`` workers take them in turn.
    lazy_load:
        Load the model at the first call instead of now.
    specific_model_path:
        SPLADE: a directory holding the model's files (``model.onnx``, ``tokenizer.json``, ...),
        used instead of a download. Qdrant/bm25: a directory holding ``<language>.txt``
        stopwords (a local copy of the hub repo), used instead of the bundled list.
    **kwargs:
        Qdrant/bm25: ``k``, ``b``, ``avg_len``, ``language``, ``token_max_length``,
        ``disable_stemmer``, ``stopwords``, ``disable_stopwords`` (see
        :class:`~sparsedex.encoders.FastembedBm25Encoder`). SPLADE: ``max_length``,
        ``batch_size`` (most texts per ONNX call), ``token_budget``, ``local_files_only``,
        ``progress`` (see :class:`~sparsedex.encoders.SpladeEncoder`). Anything else raises
        :class:`TypeError`.

    Raises
    ------
    ModelNotAvailableError
        Unknown model name, or SPLADE++ files neither cached nor downloadable.
    TypeError, ValueError
        An argument that does not apply to the model, or a bad value.
    """

    def __init__(
        self,
        model_name: str,
        cache_dir: str | None = None,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        cuda: bool | str = False,
        device_ids: Sequence[int] | None = None,
        lazy_load: bool = False,
        specific_model_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model_name, (str, os.PathLike)):
            raise TypeError(f"model_name must be a str, got {type(model_name).__name__}")
        desc = _find_description(os.fspath(model_name))
        self.model_name = desc.model if desc is not None else os.fspath(model_name)
        self._description: ModelDescription | None = desc
        self._kind = desc.kind if desc is not None else "splade"
        cuda = _cuda_flag(cuda, runs_model=self._kind == "splade" and providers is None)
        if device_ids is not None:
            device_ids = [int(d) for d in device_ids]
            if not cuda:
                raise ValueError("device_ids applies with cuda=True only")
            if not device_ids:
                raise ValueError("device_ids is empty")
        self.cuda = bool(cuda)
        self.device_ids = device_ids
        self.threads = threads
        self.cache_dir = cache_dir
        self.specific_model_path = None if specific_model_path is None else os.fspath(specific_model_path)
        if self._kind == "fastembed-bm25":
            given = [n for n, v in (("threads", threads), ("providers", providers)) if v is not None]
            if cuda:
                given.append("cuda")
            if given:
                raise ValueError(
                    f"{', '.join(given)} do(es) not apply to {self.model_name!r}: it runs no model "
                    "(for several processes, use embed(..., parallel=N))"
                )
            kwargs.pop("local_files_only", None)  # nothing to download
            self._check_kwargs(kwargs, _BM25_KWARGS)
            self._kwargs = dict(kwargs)
        else:
            self._check_kwargs(kwargs, _SPLADE_KWARGS)
            self._kwargs = dict(kwargs)
            if cuda and device_ids:
                providers = [("CUDAExecutionProvider", {"device_id": device_ids[0]}), "CPUExecutionProvider"]
                cuda = False
        self._providers = providers
        self._cuda_flag = cuda
        self._model: Any = None
        if not lazy_load:
            self._model = self._load()

    def _check_kwargs(self, kwargs: dict[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(
                f"unexpected argument(s) {', '.join(unknown)} for {self.model_name!r}; "
                f"accepted: {', '.join(sorted(allowed))}"
            )

    def _load(self) -> Any:
        if self._kind == "fastembed-bm25":
            return FastembedBm25Encoder(stopwords_dir=self.specific_model_path, **self._kwargs)
        from .encoders.splade import SpladeEncoder

        kwargs = dict(self._kwargs)
        kwargs.setdefault("progress", False)
        return SpladeEncoder(
            self.specific_model_path or self.model_name,
            threads=self.threads,
            cache_dir=self.cache_dir,
            providers=self._providers,
            cuda=self._cuda_flag,
            **kwargs,
        )

    def token_count(self, texts: str | Iterable[str], batch_size: int = 1024) -> int:
        """Tokens in ``texts``: SPLADE, the model's tokens (special tokens included, truncated
        at ``max_length``); Qdrant/bm25, the words before stopwords and stemming."""
        check_batch_size(batch_size)
        model = self.model
        if self._kind == "fastembed-bm25":
            return int(model.token_count(texts))
        items = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, not str")
        return sum(len(e.ids) for e in model.tokenizer.encode_batch(items, add_special_tokens=True))

    # the model -----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The encoder doing the work (a SpladeEncoder or a FastembedBm25Encoder)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def kind(self) -> str:
        """``"splade"`` or ``"fastembed-bm25"``."""
        return self._kind

    @property
    def requires_idf(self) -> bool:
        """True when the index must apply IDF at query time (Qdrant/bm25)."""
        return self._kind == "fastembed-bm25"

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        """The supported models as dicts (``model``, ``vocab_size``, ``description``, ``license``,
        ``size_in_GB``, ``sources``, ``requires_idf``, ...), like fastembed's."""
        return list_supported_models()

    # embedding -----------------------------------------------------------------------------
    def embed(
        self,
        documents: str | Iterable[str],
        batch_size: int = 256,
        parallel: int | None = None,
        **kwargs: Any,
    ) -> Iterator[SparseEmbedding]:
        """Document vectors, one per text, in order (a generator).

        ``batch_size`` texts are encoded together. ``parallel``: ``None`` encodes in this
        process; ``N >= 1`` in N worker processes (``0``: one per core), each loading the
        model once; fewer start when there are fewer batches, and a single batch is encoded
        here. Worker processes are spawned: a script calling this at import time needs an
        ``if __name__ == "__main__":`` guard. Raises :class:`TypeError` for a non-str document
        (naming its position) or an unknown keyword.
        """
        if kwargs:
            raise TypeError(f"embed() got unexpected argument(s) {', '.join(sorted(kwargs))}")
        model = self.model
        if self._kind == "fastembed-bm25":
            return model.embed(documents, batch_size=batch_size, parallel=parallel)
        size = check_batch_size(batch_size)
        if resolve_parallel(parallel) is None:
            return model.embed(documents, batch_size=size)  # type: ignore[no-any-return]
        return embed_maybe_parallel(model, self._splade_spec(), documents, size, parallel)

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """Same as :meth:`embed` (SPLADE and BM25 treat passages as documents)."""
        return self.embed(texts, **kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        """Query vectors (a generator). SPLADE encodes queries as documents; Qdrant/bm25 gives
        1.0 per distinct term. ``batch_size`` is accepted (SPLADE)."""
        batch_size = kwargs.pop("batch_size", None)
        if kwargs:
            raise TypeError(f"query_embed() got unexpected argument(s) {', '.join(sorted(kwargs))}")
        model = self.model
        if self._kind == "fastembed-bm25":
            return model.query_embed(query)
        return model.query_embed(query, batch_size=batch_size)

    def _splade_spec(self) -> dict[str, Any]:
        ident = self.model.identity()
        kwargs = dict(self._kwargs, progress=False, local_files_only=True, threads=self.threads,
                      cache_dir=self.cache_dir)
        if self._providers is not None:
            kwargs["providers"] = self._providers
        if self._cuda_flag:
            kwargs["cuda"] = True
        spec: dict[str, Any] = {
            "kind": "splade",
            "model": ident["model"],
            "model_sha256": ident.get("model_sha256"),
            "kwargs": kwargs,
            "cores": available_cores(),
        }
        if self.cuda and self.device_ids:
            spec["device_ids"] = list(self.device_ids)
        return spec

    # what an index needs from an encoder ----------------------------------------------------
    def encode_documents(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """Document vectors as a list (the encoder interface of :class:`~sparsedex.SparseIndex`)."""
        return list(self.model.encode_documents(texts))

    def encode_queries(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """Query vectors as a list."""
        return list(self.model.encode_queries(texts))

    def identity(self) -> dict[str, Any]:
        """The underlying encoder's identity (what re-creates it)."""
        return dict(self.model.identity())

    def id_to_token(self, term_id: int) -> str:
        """The token (SPLADE) or stem (BM25, when seen) of a term id."""
        return str(self.model.id_to_token(term_id))

    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """``[(token, weight), ...]`` highest weight first."""
        return list(self.model.decode(embedding, top_k))

    @property
    def vocab_size(self) -> int | None:
        """SPLADE: the vocabulary size; Qdrant/bm25: None (hashed ids)."""
        return self.model.vocab_size  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"SparseTextEmbedding(model_name={self.model_name!r}, model={self._model!r})"
