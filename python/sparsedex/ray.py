"""sparsedex on a Ray cluster: encode with Ray Data, build one index per shard, search them as one.

Install the extra: ``pip install 'sparsedex[ray]'`` (``ray[data,serve]``). The core package
never imports Ray; this module does.

>>> import ray, sparsedex.ray as sdr                                    # doctest: +SKIP
>>> ds = ray.data.read_json("corpus.jsonl")                             # doctest: +SKIP
>>> ds = sdr.encode(ds, "splade-tiny", concurrency=(1, 4))              # doctest: +SKIP
>>> sdr.build_shards(ds, "idx", num_shards=8)                           # doctest: +SKIP
>>> index = sdr.ShardedIndex("idx", replicas=2)                         # doctest: +SKIP
>>> index.search("a movie about music", k=10)                           # doctest: +SKIP

What is exact, and why
----------------------
A sharded index answers **exactly** what one :class:`~sparsedex.SparseIndex` over the same
documents answers (same ids, same scores, same tie order):

- Every shard is scored in one arithmetic. ``u8`` shards share **one quantization grid**
  (``impact = round(w * 255 / max_weight)``, ``max_weight`` the largest weight of the whole
  collection unless given), written in ``shards.json`` and checked when a shard opens; a
  given ``max_weight`` is a bound: a weight above it is refused, at build and at
  :meth:`ShardedIndex.add`, naming the document (it would be scored on another grid).
  ``float`` shards are exact too: float vectors add a document's contributions in ascending
  term id (the same ids in every shard), and float BM25 adds them exactly, in fixed point,
  so no score depends on a shard's own term dictionary (see the README, "quantization").
- BM25 uses the statistics of the whole collection (N, df per term, average document length),
  gathered from the shards (:meth:`SparseIndex.collection_stats`) after every commit; df is
  summed by term *text* (each shard keeps its own term dictionary) and sent with each query,
  and each shard's engine scores with them (``collection_stats=``). The engine's ``u8`` BM25
  grid is fixed (``255 / (k1 + 1)``), the same in every shard.
- Documents go to shard ``blake2b-64(key) mod num_shards`` with ``key = "i:<decimal>"`` for an
  int id and ``"s:<utf-8>"`` for a string id: the same id lands on the same shard on every
  machine and Python version (unlike ``hash()``).
- The per-shard top-k are merged by (score descending, id ascending), the canonical order of
  a single index's ties.

Layout of a sharded index directory: ``shards.json`` (format, index id, shard count, routing,
quantization grid, encoder identity, shard names and sizes) and one ordinary sparsedex index
per shard (``shard-00000`` ...), each holding ``sparsedex-shard.json`` (index id, shard number,
grid) so that a shard copied from another index, or rebuilt with another grid, is refused
by name.

SPLADE shards store vectors only: :class:`ShardedIndex` encodes a text query once, on the
caller's side, and sends the vector to the shards. BM25 shards keep their texts and encode
queries themselves (BM25 query weights need their term dictionaries).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import ray
    import ray.exceptions as _rex
except ImportError as e:  # pragma: no cover - exercised without the extra
    raise ImportError("sparsedex.ray needs Ray: pip install 'sparsedex[ray]'") from e

from . import _http, _validate
from ._core import SparsedexError
from ._validate import shown
from .filters import normalize_payload
from .index import Document, Explanation, Hit, SparseIndex, TermMatch, encode_for_index
from .vectors import SparseEmbedding, validate_embedding

__all__ = [
    "encode",
    "build_shards",
    "ShardedIndex",
    "ShardError",
    "ShardUnavailableError",
    "shard_of",
    "MANIFEST",
]

MANIFEST = "shards.json"
_MARKER = "sparsedex-shard.json"
_FORMAT = "sparsedex-shards"
_VERSION = 1


class ShardError(SparsedexError):
    """A shard of a sharded index is missing, belongs to another index, has another
    quantization grid, or failed; the message names the shard."""


class ShardUnavailableError(ShardError):
    """No live replica of a shard answered (its actor died, or did not answer within the
    timeout)."""


# routing ------------------------------------------------------------------------------------
def _null_id(id: Any) -> bool:
    """A missing id: None, or the NaN a numpy float column holds for a null."""
    return id is None or (isinstance(id, (float, np.floating)) and id != id)


def _route_key(id: Any) -> bytes:
    if _null_id(id):
        raise TypeError("a document has no id (None / null; Arrow reads a missing integer id as NaN): "
                        "every row needs an int or str id")
    if isinstance(id, (bool, np.bool_)):
        raise TypeError(f"id {shown(id)} is a bool: ids are ints or strings")
    if isinstance(id, (int, np.integer)):
        return b"i:" + str(int(id)).encode("ascii")
    if isinstance(id, str):
        return b"s:" + id.encode("utf-8", "surrogatepass")
    hint = ""
    if isinstance(id, (float, np.floating)) and float(id).is_integer():
        hint = (" (a whole number stored as a float: pandas and numpy turn an int column with a "
                "missing value into floats, so a null id elsewhere in the column may be the cause)")
    raise TypeError(f"id {shown(id)} is a {type(id).__name__}{hint}: ids are ints or strings")


def shard_of(id: Any, num_shards: int) -> int:
    """The shard (``0 .. num_shards-1``) that document ``id`` (an int or a str) lives in:
    ``blake2b(key, digest_size=8)`` read little-endian, mod ``num_shards``; stable across
    processes, machines and Python versions. TypeError for another kind of id."""
    h = hashlib.blake2b(_route_key(id), digest_size=8).digest()
    return int.from_bytes(h, "little") % int(num_shards)


def _shard_column(ids: Any, num_shards: int) -> np.ndarray:
    return np.fromiter((shard_of(x, num_shards) for x in ids), dtype=np.int64, count=len(ids))


def _plain_id(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.str_):
        return str(x)
    return x


# encoders -----------------------------------------------------------------------------------
def _encoder_identity(encoder: Any) -> dict[str, Any]:
    """The picklable identity an actor re-creates ``encoder`` from (the model is loaded in the
    actor, never shipped)."""
    if isinstance(encoder, Mapping):
        return dict(encoder)
    from .index import _make_encoder

    enc = _make_encoder(encoder)
    if enc is None or not hasattr(enc, "identity"):
        raise TypeError(f"encoder {encoder!r} has no identity(): pass a model name, a directory or a SpladeEncoder")
    return dict(enc.identity())


def _is_bm25_identity(ident: Mapping[str, Any] | None) -> bool:
    return ident is not None and ident.get("kind") == "bm25"


class _EncodeActor:
    """A Ray Data actor: loads the encoder once, then encodes batch after batch."""

    def __init__(self, identity: dict[str, Any], text_column: str, cuda: bool, threads: int | None,
                 report_bad: bool = False) -> None:
        from .encoders.registry import load_encoder

        kwargs: dict[str, Any] = {}
        if cuda:
            kwargs["cuda"] = True  # onnxruntime's CUDAExecutionProvider (ProviderNotAvailableError without it)
        if threads is not None:
            kwargs["threads"] = threads
        kwargs["progress"] = False
        self.encoder = load_encoder(identity, **kwargs)
        self.text_column = text_column
        # build_shards: a row that is not a text is reported in column BAD_TEXT (and encoded as
        # an empty vector) for the router to raise with the document's id; Ray Data would wrap
        # an exception raised here in a RayTaskError that hides it
        self.report_bad = report_bad

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.text_column not in batch:
            raise KeyError(f"the dataset has no column {self.text_column!r} (columns: {sorted(batch)})")
        texts = batch[self.text_column].tolist()
        bad = [""] * len(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                if not self.report_bad:
                    raise TypeError(f"column {self.text_column!r}: row {i} of a batch is a {type(t).__name__}, not a text")
                from ._validate import a_type

                bad[i] = f"the text column {self.text_column!r} holds {'None' if t is None else a_type(t)}, not a text"
                texts[i] = ""
        vecs = encode_for_index(self.encoder, texts) if texts else []
        out = dict(batch)
        if self.report_bad:
            out[_BAD_TEXT] = np.asarray(bad, dtype=object)
        ind = np.empty(len(vecs), dtype=object)
        val = np.empty(len(vecs), dtype=object)
        for i, v in enumerate(vecs):
            ind[i] = np.asarray(v.indices, dtype=np.uint32)
            val[i] = np.asarray(v.values, dtype=np.float32)
        out["indices"], out["values"] = ind, val
        return out


def encode(
    dataset: "ray.data.Dataset",
    encoder: Any = "splade-tiny",
    *,
    text_column: str = "text",
    batch_size: int = 64,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    _report_bad: bool = False,
) -> "ray.data.Dataset":
    """Encode a Ray Dataset's texts into sparse vectors on a pool of actors.

    Parameters
    ----------
    dataset:
        A ``ray.data.Dataset`` with a text column.
    encoder:
        A SPLADE model (``"splade-tiny"``, a model name or directory, a
        :class:`~sparsedex.encoders.SpladeEncoder`, or its ``identity()`` dict). The model is
        loaded **once per actor** from its identity (never pickled), then every batch the
        actor receives is encoded with it. BM25 is not encoded here: its weights need the
        whole collection (give texts to :func:`build_shards` with ``encoder="bm25"``).
    text_column:
        The column holding the texts (each a ``str``).
    batch_size:
        Rows per batch handed to an actor.
    concurrency:
        Number of encoder actors (or ``(min, max)`` for an autoscaling pool, which grows as
        far as the CPUs allow). A fixed size (or minimum) whose actors would leave Ray Data
        no CPU to read the dataset with is a ValueError up front (the read would wait for
        ever); a materialized dataset needs no such CPU.
    num_cpus:
        CPUs reserved per actor; the encoder runs that many ONNX Runtime threads (at least 1).
    num_gpus:
        GPUs per actor; when ``> 0`` the actor runs ONNX Runtime's ``CUDAExecutionProvider``
        (install ``onnxruntime-gpu``, see the GPU page; an actor without it fails with
        :class:`~sparsedex.ProviderNotAvailableError`).

    Returns
    -------
    ray.data.Dataset
        The same rows (other columns pass through) with ``indices`` (uint32 term ids,
        ascending) and ``values`` (float32 weights > 0) columns added: variable-length arrays,
        one vector per row, equal to ``SpladeEncoder.encode_documents(text, blank_as_empty=True)``
        (the vectors :class:`~sparsedex.SparseIndex` stores: a blank text has none).

    Raises
    ------
    ValueError
        For BM25, or a bad ``batch_size`` / ``concurrency``, or ``concurrency x num_cpus``
        plus the CPU Ray Data reads with above the cluster's CPUs (the message says what fits).
    KeyError, TypeError
        (when the dataset executes) a missing text column or a row that is not a text.
    """
    ident = _encoder_identity(encoder)
    if _is_bm25_identity(ident) or ident.get("kind") not in ("splade", "fastembed-bm25"):
        raise ValueError(
            f"encode() runs SPLADE models, not {ident.get('kind')!r}: BM25 weights depend on the whole "
            "collection, so give the texts to build_shards(..., encoder='bm25', text_column=...)"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be a positive int, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (num_cpus > 0 and num_gpus >= 0):
        raise ValueError(f"num_cpus must be > 0 and num_gpus >= 0, got {num_cpus!r}, {num_gpus!r}")
    threads = max(1, int(math.floor(num_cpus)))
    def _count(x: Any) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 1

    if isinstance(concurrency, tuple):
        # helper-150: (1,) was an IndexError, (0, 2) and (2, 1) Ray's own tuples
        if len(concurrency) != 2 or not all(map(_count, concurrency)) or concurrency[0] > concurrency[1]:
            raise ValueError(f"concurrency must be a positive int or a (min, max) pair of positive ints with "
                             f"min <= max, got {concurrency!r}")
        pool = ray.data.ActorPoolStrategy(min_size=int(concurrency[0]), max_size=int(concurrency[1]))
        fixed = int(concurrency[0])
    elif isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        pool = ray.data.ActorPoolStrategy(size=concurrency)
        fixed = concurrency
    else:
        raise ValueError(f"concurrency must be a positive int or a (min, max) pair, got {concurrency!r}")
    _check_encode_cpus(dataset, concurrency, fixed, num_cpus, num_gpus)
    return dataset.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={
            "identity": ident, "text_column": text_column, "cuda": num_gpus > 0, "threads": threads,
            "report_bad": _report_bad,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=pool,
        num_cpus=num_cpus,
        num_gpus=num_gpus if num_gpus > 0 else None,
    )


def _check_encode_cpus(dataset: Any, concurrency: Any, actors: int, num_cpus: float, num_gpus: float = 0) -> None:
    """A ValueError when ``actors`` encoder actors of ``num_cpus`` each would leave Ray Data no
    CPU for the tasks that produce the dataset's rows (reading a file, an earlier ``map``): the
    actors start first and hold the CPUs, the read task waits for one, and the dataset never
    finishes (helper-147: 4 actors on 2 CPUs, stuck). A materialized dataset has no such tasks
    (its blocks are in memory): its actors may take every CPU, and Ray Data then runs with the
    actors that fit. Checked against the cluster's CPUs now (an autoscaling cluster may add
    nodes later: size it first). Likewise actors reserving more GPUs than the cluster has
    (a materialized dataset too: the actors themselves would never start)."""
    from ray.data.dataset import MaterializedDataset

    if not ray.is_initialized():
        ray.init()
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0.0))
    if num_gpus > 0 and actors * float(num_gpus) > gpus + 1e-9:
        # the actors would wait for ever for GPUs the cluster does not have (helper-150)
        raise ValueError(
            f"encode(concurrency={concurrency!r}, num_gpus={num_gpus:g}) starts {actors} encoder actor(s) "
            f"reserving {actors * float(num_gpus):g} GPU(s), but the cluster has {gpus:g}: pass fewer actors or "
            "num_gpus=0, or use a cluster with GPUs"
        )
    if isinstance(dataset, MaterializedDataset):
        return
    total = float(resources.get("CPU", 0.0))
    need = actors * float(num_cpus) + _DATA_CPUS
    if need > total + 1e-9:
        fits = max(0, int(math.floor((total - _DATA_CPUS) / float(num_cpus) + 1e-9)))
        raise ValueError(
            f"encode(concurrency={concurrency!r}, num_cpus={num_cpus:g}) starts {actors} encoder actor(s) "
            f"reserving {actors * float(num_cpus):g} CPU(s), and Ray Data needs {_DATA_CPUS:g} more to read the "
            f"dataset, but the cluster has {total:g} CPUs: the actors would hold them and the read would wait "
            "for ever. "
            + (f"Pass concurrency={fits}, or concurrency=(1, {max(actors, 2)}) (a pool that grows as the CPUs "
               "allow), or " if fits >= 1 else "Pass a smaller num_cpus, or ")
            + "materialize the dataset first (ds.materialize()), or use a larger cluster"
        )


# building -----------------------------------------------------------------------------------
_BAD_TEXT = "__sparsedex_bad_text"  # see _EncodeActor.report_bad
_BUILDING = ".sparsedex-building"  # build_shards' work directory (see there)


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def _grid_fits(weight: float, max_weight: float) -> bool:
    """Whether ``weight`` fits the u8 grid of ``max_weight``: the engine's own test (in
    float32, ``w * (255 / max_weight) <= 255``), under which a segment keeps the shared grid."""
    scale = np.float32(255.0) / np.float32(max_weight)
    return bool(np.float32(weight) * scale <= np.float32(255.0))


def _check_grid_fits(weight: float, max_weight: float, who: str, where: str) -> None:
    """A ValueError naming ``who`` if ``weight`` does not fit the grid of ``max_weight``."""
    if not _grid_fits(weight, max_weight):
        raise ValueError(
            f"{who} has weight {weight!r}, above max_weight={max_weight!r} (the u8 grid every shard shares, "
            f"impact = round(w * 255 / max_weight)): its shard would score it on a coarser grid of its own, and "
            f"the sharded index would no longer score exactly as one index; {where} with max_weight >= {weight!r} "
            "(or max_weight=None: the largest weight of the data)"
        )


def _check_add_fits(docs: list[Any], ids: list[Any], max_weight: float, given: bool) -> None:
    """Vectors added to a sharded ``u8`` index must fit its grid: a ValueError naming the first
    document that does not when ``max_weight`` was given to :func:`build_shards` (the caller's
    bound), a warning when the grid is the build data's largest weight (adding heavier
    documents later is ordinary: that shard's new segment then gets a coarser grid of its own,
    and the sharded scores may differ from one index's by that u8 rounding)."""
    import warnings

    for i, (_, v) in enumerate(docs):
        if not len(v):
            continue
        w = float(np.max(v))
        if _grid_fits(w, max_weight):
            continue
        if given:
            _check_grid_fits(w, max_weight, f"document {i} (id {shown(ids[i])})", "rebuild the index (build_shards)")
        warnings.warn(
            f"document {i} (id {shown(ids[i])}) has weight {w!r}, above the largest weight the index was built with "
            f"({max_weight!r}, the u8 grid every shard shares): the segment it lands in gets a coarser grid of its "
            "own, and its shard's scores may differ from one index's by that rounding; build with a larger "
            "max_weight to keep one grid",
            UserWarning,
            stacklevel=4,
        )
        return


def _grid(quantization: str, bm25: bool, max_weight: float | None) -> dict[str, Any]:
    if quantization == "float":
        return {"quantization": "float"}
    if bm25:
        return {"quantization": "u8", "max_weight": "bm25-live"}
    return {"quantization": "u8", "max_weight": float(max_weight)} if max_weight is not None else {"quantization": "u8"}


class _ShardBuilder:
    """One shard being built (a Ray actor): collects its documents as the dataset streams
    by, then writes one ordinary sparsedex index with the grid every shard shares."""

    def __init__(self, root: str, spec: dict[str, Any], shard: int) -> None:
        self.root, self.spec, self.shard = Path(root), spec, shard
        self.name = _shard_name(shard)
        self.ids: list[Any] = []
        self.docs: list[Any] = []
        self.payloads: list[Any] = []
        self.texts: list[Any] = []
        self.wmax = 0.0
        self.wmax_id: Any = None  # the id of the document holding it

    def add(self, ids: list[Any], docs: list[Any], payloads: list[Any], texts: list[Any] | None = None) -> int:
        self.ids += ids
        self.docs += docs
        self.payloads += payloads
        self.texts += texts if texts is not None else [None] * len(ids)
        if not self.spec["bm25"]:
            for i, (_, v) in zip(ids, docs):
                if len(v) and float(np.max(v)) > self.wmax:
                    self.wmax, self.wmax_id = float(np.max(v)), i
        return len(ids)

    def max_weight(self) -> float:
        """The largest weight this shard holds (vectors; 0.0 for BM25)."""
        return self.wmax

    def heaviest(self) -> tuple[float, Any]:
        """The largest weight this shard holds and the id of a document holding it
        (``(0.0, None)`` for BM25 or no weights)."""
        return self.wmax, self.wmax_id

    def build(self, grid: dict[str, Any]) -> int:
        """Write the shard (documents in id order) and its member file; returns its size."""
        spec = self.spec
        order = sorted(range(len(self.ids)), key=lambda i: self.ids[i])  # ties stored id-ascending
        ids = [self.ids[i] for i in order]
        for a, b in zip(ids, ids[1:]):
            if a == b and type(a) is type(b):  # sorted: a repeated id sits next to itself
                raise ValueError(f"{self.name}: id {shown(a)} appears more than once in the dataset (ids must be unique)")
        docs = [self.docs[i] for i in order]
        payloads = [self.payloads[i] for i in order] if spec["payload_columns"] else None
        texts = [self.texts[i] for i in order]
        keep_texts = bool(spec.get("store_texts")) and not spec["bm25"]
        kw: dict[str, Any] = {"quantization": grid["quantization"], "path": self.root / self.name}
        try:
            if spec["bm25"]:
                idx = SparseIndex(_bm25_encoder(spec), store_texts=True, **kw)
            else:
                mw = grid.get("max_weight")
                idx = SparseIndex(None, store_texts=keep_texts, vocab_size=spec["vocab_size"],
                                  max_weight=mw if isinstance(mw, float) else None, **kw)
            if ids and not spec["bm25"]:
                # one CSR matrix: checked and cleaned in Rust, not vector by vector in Python
                indptr = np.zeros(len(docs) + 1, dtype=np.int64)
                np.cumsum([len(d[0]) for d in docs], out=indptr[1:])
                indices = np.concatenate([d[0] for d in docs]).astype(np.uint32, copy=False)
                values = np.concatenate([d[1] for d in docs]).astype(np.float32, copy=False)
                if keep_texts:
                    _add_vectors_with_texts(idx, (indptr, indices, values), ids, payloads, texts, upsert=False)
                else:
                    idx.add((indptr, indices, values), ids=ids, payloads=payloads)
            elif ids:
                idx.add(docs, ids=ids, payloads=payloads)
            idx.commit()
            idx.close()
        except (ValueError, TypeError, KeyError) as e:
            raise _prefixed(e, f"{self.name}: ") from None
        _write_json(self.root / self.name / _MARKER, {
            "format": _FORMAT + "-member", "index_id": spec["index_id"], "shard": self.shard, "grid": grid,
        })
        self.ids, self.docs, self.payloads, self.texts = [], [], [], []
        return len(ids)


def _add_vectors_with_texts(idx: SparseIndex, docs: Any, ids: Sequence[Any], payloads: Any,
                            texts: Sequence[Any], *, upsert: bool) -> None:
    """Add (or upsert) vectors together with the texts they were encoded from, to an index
    without an encoder (a SPLADE shard: the encoder runs once, upstream) that keeps texts."""
    with idx._lock:
        new_ids, csr, pls, _ = idx._prepare(docs, ids, payloads, upsert=upsert)
        if not new_ids:
            return
        txt = [None if t is None else _validate.check_text(t, f"document {i}") for i, t in enumerate(texts)]
        idx._store.add(csr, new_ids, pls, txt, replace=upsert)


def _split_batch(batch: Any, payload_columns: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
    """(numpy columns, payload columns as Python values) of a batch. Ray Data hands batches
    over as Arrow tables here: payload columns are read with ``to_pylist`` (an int stays an
    int and a null is None, where numpy would turn a nullable int column into floats with
    NaN), the others as the numpy batch Ray Data would have given."""
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        from ray.data.block import BlockAccessor

        payload = {c: batch.column(c).to_pylist() for c in payload_columns}
        rest = batch.select([c for c in batch.column_names if c not in payload])
        return BlockAccessor.for_block(rest).to_batch_format("numpy"), payload
    return batch, {c: batch[c].tolist() for c in payload_columns}


def _route_batch(batch: Any, builders: list[Any], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """Ray Data map_batches: send each row of the batch to its shard's builder. A bad row's
    ValueError / TypeError / KeyError comes back as data (column ``error``, pickled), which
    the driver raises as it is: Ray Data would wrap a raised one in a UserCodeException that
    loses it on the way."""
    err: BaseException | None = None
    n_rows: tuple[int, Any] = (0, None)
    try:
        n_rows = _route_rows(batch, builders, spec)
    except (ValueError, TypeError, KeyError) as e:
        err = e
    except _rex.RayTaskError as e:  # a builder refused the rows
        err = _user_cause(e)
        if err is e:
            raise
    if err is None:
        # one of the batch's ids (all ints or all strings by now): the driver checks that every
        # batch has the kind of the first (a shard holding both could not order its ids)
        return {"n": np.array([n_rows[0]], dtype=np.int64), "error": np.array([b""], dtype=object),
                "id": np.array([pickle.dumps(n_rows[1])], dtype=object)}
    return {"n": np.array([0], dtype=np.int64), "error": np.array([pickle.dumps(_prefixed(err, ""))], dtype=object),
            "id": np.array([pickle.dumps(None)], dtype=object)}


def _raise_routed(raw: Any) -> None:
    """Raise the error :func:`_route_batch` sent back (if any)."""
    if raw is None or len(raw) == 0:
        return
    try:
        e = pickle.loads(raw)
    except Exception:  # noqa: BLE001 - an exception class this process cannot rebuild
        e = ValueError(repr(raw))
    raise e


def _route_rows(batch: Any, builders: list[Any], spec: dict[str, Any]) -> tuple[int, Any]:
    """Send each row of ``batch`` to its shard's builder; (rows sent, the first row's id)."""
    n = len(builders)
    id_col = spec["id_column"]
    # ids read as Python values, like payloads: Arrow -> numpy turns an int column with a null
    # into floats, and the first row (not the null one) would be reported as "id 0.0 is a float"
    batch, cols = _split_batch(batch, list(dict.fromkeys([*spec["payload_columns"], id_col])))
    ids = [_plain_id(x) for x in cols[id_col]]
    for i, x in enumerate(ids):
        if _null_id(x):
            before = [y for y in ids[:i] if not _null_id(y)]
            after = [y for y in ids[i + 1:] if not _null_id(y)]
            where = (f", after the document with id {shown(before[-1])}" if before else
                     f", before the document with id {shown(after[0])}" if after else "")
            raise TypeError(f"a document has no id: the id column {id_col!r} is null in row {i} of a batch "
                            f"of {len(ids)}{where}; every row needs an int or str id")
    strs = [x for x in ids if isinstance(x, str)]
    if strs and len(strs) < len(ids):
        num = next(x for x in ids if not isinstance(x, str))
        if isinstance(num, int) and not isinstance(num, bool):  # else shard_of names the bad id
            raise TypeError(_mixed_ids(num, strs[0]))
    if id_col not in spec["payload_columns"]:
        del cols[id_col]
    shards = _shard_column(ids, n)
    if spec["bm25"]:
        docs = batch[spec["text_column"]].tolist()
        for i, d in enumerate(docs):
            if not isinstance(d, str):
                from ._validate import a_type

                raise TypeError(f"document {ids[i]!r}: the text column {spec['text_column']!r} holds "
                                f"{a_type(d)}, not a text (a BM25 index encodes texts)")
    else:
        if _BAD_TEXT in batch:
            for i, m in enumerate(batch[_BAD_TEXT].tolist()):
                if m:
                    raise TypeError(f"document {shown(ids[i])}: {m}")
        ind, val = batch["indices"], batch["values"]
        docs = [_vector_row(ind[i], val[i], ids[i]) for i in range(len(ids))]
    texts = batch[spec["text_column"]].tolist() if spec.get("store_texts") and spec.get("texts_given") else None
    # checked here, where the document's id is known (a shard's builder knows rows only)
    pls = [normalize_payload({c: _json_value(cols[c][i]) for c in cols}, f"document {ids[i]!r}") if cols else None
           for i in range(len(ids))]
    refs = []
    for s in np.unique(shards).tolist():
        rows = np.flatnonzero(shards == s).tolist()
        refs.append(builders[s].add.remote([ids[i] for i in rows], [docs[i] for i in rows], [pls[i] for i in rows],
                                           None if texts is None else [texts[i] for i in rows]))
    ray.get(refs)  # backpressure: a batch is done when its shards hold it
    return len(ids), (ids[0] if ids else None)


def _mixed_ids(num: int, text: str) -> str:
    return f"id {shown(num)} is an int and id {shown(text)} a str: ids must be all ints or all strings"


def _prefixed(e: BaseException, prefix: str) -> BaseException:
    """``e`` with ``prefix`` before its message, of the same class when that class can be
    built from one message (else of its standard base: ValueError, TypeError, KeyError), so
    that it crosses process boundaries (Ray pickles it) intact."""
    from .filters import PayloadError

    if isinstance(e, PayloadError):
        return PayloadError(e.label, e.path, e.problem, prefix + e.prefix)
    return _remade(e, f"{prefix}{_message(e)}")


def _message(e: BaseException) -> str:
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def _remade(e: BaseException, msg: str) -> BaseException:
    """``e`` with message ``msg`` (see :func:`_prefixed`)."""
    try:
        out = type(e)(msg)
        if str(out) == msg or isinstance(e, KeyError):
            return out
    except Exception:  # noqa: BLE001 - a constructor that takes other arguments
        pass
    for base in (KeyError, TypeError, ValueError):
        if isinstance(e, base):
            return base(msg)
    return e


_DOCUMENT_N = re.compile(r"\bdocument (\d+)\b")


def _relabel(e: BaseException, positions: Sequence[int]) -> BaseException:
    """A shard's error about ``document j`` of its slice of a batch, renamed ``document
    positions[j]``: the document's position in the caller's batch (the first such mention)."""
    from .filters import PayloadError

    def fix(text: str) -> str:
        m = _DOCUMENT_N.search(text)
        if m is None or int(m.group(1)) >= len(positions):
            return text
        return f"{text[:m.start(1)]}{positions[int(m.group(1))]}{text[m.end(1):]}"

    if isinstance(e, PayloadError):
        return PayloadError(fix(e.label), e.path, e.problem, e.prefix)
    msg = _message(e)
    return e if fix(msg) == msg else _remade(e, fix(msg))


def _user_cause(e: BaseException) -> BaseException:
    """The user's exception inside a RayTaskError (Ray Data wraps it in a UserCodeException,
    itself the RayTaskError's cause)."""
    if not isinstance(e, _rex.RayError):
        return e
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (ValueError, TypeError, KeyError)) and not isinstance(cur, _rex.RayError):
            return cur
        nxt = getattr(cur, "cause", None) if isinstance(cur, _rex.RayTaskError) else None
        cur = nxt if nxt is not None else (cur.__cause__ or cur.__context__)
    return e


_ROUTE_CPUS = 0.5  # a Ray Data routing task (it only hands rows to the builders)
_DATA_CPUS = 1.0  # kept free for Ray Data's tasks (reading and routing batches)


def _cpu_share(x: float) -> float:
    """``x`` CPUs rounded down to Ray's step of 0.0001 (Ray refuses a non-zero reservation
    below it; 0 is fine: builders and shard actors mostly wait)."""
    return math.floor(max(0.0, x) * 10_000 + 1e-9) / 10_000


def _builder_cpus(num_shards: int, num_cpus: float | None, encoders: int) -> float:
    """CPUs to reserve per shard builder so that ``num_shards`` of them still leave Ray Data
    room to run (every builder is placed before the dataset starts: builders holding every
    CPU would make the routing tasks, and so build_shards, wait forever)."""
    if not ray.is_initialized():
        ray.init()
    need = _DATA_CPUS + float(encoders)  # each SPLADE encoder actor reserves 1 CPU
    if num_cpus is not None and not (
        isinstance(num_cpus, (int, float)) and not isinstance(num_cpus, bool) and num_cpus >= 0
    ):
        raise ValueError(f"num_cpus must be a number >= 0, got {num_cpus!r}")
    total = float(ray.cluster_resources().get("CPU", 0.0))
    builders = 0.0 if num_cpus is None else float(num_cpus) * num_shards
    # What is free now: other actors (an open ShardedIndex's shard actors, another job's) may
    # hold CPUs, and a build whose Ray Data tasks cannot get theirs waits forever without a
    # word (helper-112: a ShardedIndex of 3 shards x 2 replicas left 0.5 of 2 CPUs free).
    # Briefly waited for: CPUs a finished job's tasks still hold come back within moments.
    avail = _free_cpus(need + builders if builders <= total - need + 1e-9 else need)
    if avail + 1e-9 < need:
        enc = f" and its {encoders} SPLADE encoder actor(s)" if encoders else ""
        raise ValueError(
            f"build_shards needs {need:g} free CPU(s) for Ray Data's tasks (reading and routing batches){enc}, "
            f"but only {avail:g} of the cluster's {total:g} CPUs are free: other actors hold the rest (an open "
            "ShardedIndex reserves num_cpus per shard replica: close() it, or open it with num_cpus=0), "
            "or use a larger cluster"
        )
    if num_cpus is None:
        # builders may get 0 (they mostly wait)
        return _cpu_share(min(0.25, max(0.0, avail - need) / num_shards))
    room = total - need
    if num_cpus * num_shards > room + 1e-9:
        raise ValueError(
            f"build_shards would reserve num_cpus={num_cpus:g} x num_shards={num_shards} = "
            f"{num_cpus * num_shards:g} CPUs for its shard builders, but the cluster has {total:g} CPUs "
            f"and Ray Data's tasks need {need:g}"
            + (f" (with {encoders} encoder actor(s))" if encoders else "")
            + f": pass num_cpus <= {max(room, 0) / num_shards:.4g} (builders mostly wait; num_cpus=0 is "
            "fine), or num_cpus=None to size it from the free CPUs, or use fewer shards or a larger cluster"
        )
    if builders > avail - need + 1e-9:
        raise ValueError(
            f"build_shards would reserve num_cpus={num_cpus:g} x num_shards={num_shards} = {builders:g} CPUs for "
            f"its shard builders and Ray Data's tasks need {need:g}, but only {avail:g} of the cluster's "
            f"{total:g} CPUs are free: pass num_cpus <= {max(avail - need, 0) / num_shards:.4g} (builders mostly "
            "wait; num_cpus=0 is fine), or num_cpus=None to size it from the free CPUs, or close what holds "
            "the others (an open ShardedIndex)"
        )
    return float(num_cpus)


def _free_cpus(want: float, wait_s: float = 3.0) -> float:
    """The cluster's free CPUs, waiting up to ``wait_s`` seconds for ``want`` of them."""
    deadline = time.monotonic() + wait_s
    while True:
        free = float(ray.available_resources().get("CPU", 0.0))
        if free + 1e-9 >= want or time.monotonic() >= deadline:
            return free
        time.sleep(0.1)


def _bm25_encoder(spec: dict[str, Any]) -> Any:
    """A fresh BM25 encoder with the given parameters and analysis (its own, empty, term
    dictionary: every shard grows its own)."""
    from .encoders.bm25 import Bm25Encoder

    ident = {k: v for k, v in (spec["encoder"] or {}).items() if k not in ("vocabulary", "vocab_size")}
    return Bm25Encoder.from_identity(ident) if ident else Bm25Encoder()


def _json_value(x: Any) -> Any:
    """A payload value as Ray Data / Arrow hands it over, back as the plain JSON value the user
    wrote: numpy scalars and arrays (lists become arrays on the way, at any depth) to Python."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return [_json_value(v) for v in x.tolist()] if x.dtype == object else x.tolist()
    if isinstance(x, dict):
        return {k: _json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_value(v) for v in x]
    return x


_U32_MAX = 2**32 - 1
_MAX_WEIGHT = 1e14


def _vector_row(ind: Any, val: Any, id: Any) -> tuple[np.ndarray, np.ndarray]:
    """One routed document's vector, checked as :meth:`SparseIndex.add` checks it (term ids
    integers in 0 .. 2**32-1, weights finite in 0 .. 1e14) before any cast, so that a float,
    negative or too large term id is refused, naming the document, instead of being wrapped
    or truncated. The quick checks are numpy reductions; the full check (and its message)
    runs only for a row that fails them."""
    a, v = np.asarray(ind), np.asarray(val)
    ok = a.ndim == 1 and v.ndim == 1 and a.shape == v.shape and a.dtype.kind in "iu" and v.dtype.kind in "fiu"
    if ok and a.size:
        ok = bool(a.min() >= 0 and a.max() <= _U32_MAX)
        if ok and v.dtype.kind == "f":
            ok = bool(np.isfinite(v).all())
        ok = ok and bool(v.min() >= 0 and v.max() <= _MAX_WEIGHT)
    if not ok:
        validate_embedding((a, v), drop_zeros=False, what=f"document {id!r}")
    return a.astype(np.uint32, copy=False), v.astype(np.float32, copy=False)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def build_shards(
    dataset: "ray.data.Dataset",
    path: str | os.PathLike[str],
    *,
    num_shards: int,
    encoder: Any = None,
    id_column: str = "id",
    text_column: str | None = None,
    payload_columns: Sequence[str] | None = None,
    quantization: str = "u8",
    max_weight: float | None = None,
    encode_concurrency: int = 1,
    batch_size: int = 1024,
    num_cpus: float | None = None,
    store_texts: bool = True,
) -> dict[str, Any]:
    """Build a sharded index at ``path``: one ordinary sparsedex index per shard, in parallel.

    Parameters
    ----------
    dataset:
        A ``ray.data.Dataset``, one row per document, with an ``id_column`` (ints or strings,
        unique) and, with ``encoder=None``, ``indices`` / ``values`` columns (as
        :func:`encode` produces); with an encoder, a ``text_column``.
    path:
        A new or empty directory (on a file system every Ray node sees at that path).
    num_shards:
        Number of shards (1 .. 65536). Document ``id`` goes to shard
        :func:`shard_of` ``(id, num_shards)``.
    encoder:
        ``None`` (vectors in the dataset), ``"bm25"`` (BM25 with the whole collection's
        statistics: shards keep texts and their own term dictionaries), or a SPLADE model,
        which :func:`encode` runs first (``encode_concurrency`` actors).
    text_column:
        The text column with an encoder (default ``"text"``).
    payload_columns:
        Columns stored as each document's payload (filterable), JSON values.
    quantization:
        ``"u8"`` or ``"float"``. For ``u8``, one grid for every shard: ``max_weight`` if
        given, else the largest weight of the whole dataset (BM25: the engine's fixed grid
        ``255 / (k1 + 1)``). A document weight above a given ``max_weight`` is a ValueError
        naming the document's id and the weight (it would leave the shared grid, and the
        shards would no longer score exactly as one index); so is a later :meth:`ShardedIndex.add`
        of such a weight (without ``max_weight``, a later heavier weight is a warning).
    batch_size:
        Rows per batch routed to the shard builders.
    num_cpus:
        CPUs reserved per shard builder (one Ray actor per shard, all alive at once). Default
        (None): 0.25, or less when ``num_shards`` builders would not leave the cluster room
        for Ray Data's own tasks (``_DATA_CPUS`` = 1 CPU for reading and routing batches, plus
        1 per SPLADE encoder actor): each then gets ``(available CPUs - that) / num_shards``
        (builders mostly wait; 0 is allowed). Given explicitly, a reservation that leaves no
        room is a ValueError up front (it would otherwise wait forever for a CPU).
    store_texts:
        Keep each document's text in its shard (returned by ``get``), as
        :class:`~sparsedex.SparseIndex` does by default: with an encoder, the texts of the
        dataset; built from vectors, the texts of documents added later as texts (through a
        :class:`ShardedIndex` opened with the encoder). BM25 shards always keep texts.

    Returns
    -------
    dict
        The manifest written to ``path/shards.json``.

    Raises
    ------
    ValueError, TypeError
        Bad arguments; a bad document (the message starts with its shard's name and names
        the document); duplicate ids; ``max_weight`` with BM25 or float; a weight above
        ``max_weight`` (the message names the document's id and the weight).
    KeyError
        A column that the dataset does not have.
    FileExistsError
        ``path`` holds something already (checked first, and again when the built index is
        renamed into place).

    Notes
    -----
    The index is built in a hidden directory (``.sparsedex-building-<id>`` beside a missing
    ``path``, ``.sparsedex-building`` inside an existing empty one, where a second build into
    the same directory meets it and fails at once) and moved into place once every
    shard and the manifest are written: a build that fails removes it (and the parent
    directories it created) and leaves ``path`` as it was, so the same call can simply be
    retried. An existing ``path`` stays the same directory (a mount point works).

    The dataset streams through once: each batch is routed row by row to its shard's builder
    actor, which keeps its documents until every batch has passed, then (with the global
    grid now known) writes its index. A shard's documents must therefore fit in one worker's
    memory: choose ``num_shards`` accordingly (see the sizing table of the Ray page).
    """
    if not (isinstance(num_shards, int) and not isinstance(num_shards, bool) and 1 <= num_shards <= 65536):
        raise ValueError(f"num_shards must be an int in 1 .. 65536, got {num_shards!r}")
    if quantization not in ("u8", "float"):
        raise ValueError(f"quantization must be 'u8' or 'float', got {quantization!r}")
    ident: dict[str, Any] | None = None if encoder is None else _encoder_identity(encoder)
    if ident is not None and ident.get("kind") not in ("bm25", "splade"):
        raise ValueError(
            f"build_shards encodes with 'bm25' or a SPLADE model, not {encoder!r} (kind "
            f"{ident.get('kind')!r}): encode the documents yourself and pass their vectors "
            "(indices / values columns, encoder=None)"
        )
    bm25 = _is_bm25_identity(ident)
    if max_weight is not None:
        if quantization != "u8" or bm25:
            raise ValueError("max_weight applies to u8 vectors (not float, not BM25, whose u8 grid is fixed by k1)")
        if not (isinstance(max_weight, (int, float)) and math.isfinite(max_weight) and max_weight > 0):
            raise ValueError(f"max_weight must be a positive finite number, got {max_weight!r}")
        max_weight = float(max_weight)
    builder_cpus = _builder_cpus(num_shards, num_cpus, 0 if (ident is None or bm25) else encode_concurrency)
    root = Path(path).resolve()  # a symbolic link: the directory it points to
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        hint = ""
        if (root / _BUILDING).is_dir():
            hint = (f" (another build_shards is writing into it, or one was killed: remove {root / _BUILDING} "
                    "if none runs)")
        raise FileExistsError(f"{root} exists and is not an empty directory{hint}")
    try:
        cols = dataset.columns()
    except Exception as e:  # Ray unifies its blocks' Arrow schemas here
        if "incompatible types" not in str(e):
            raise
        hint = (f" (the id column {id_column!r}: ids must be all ints or all strings)"
                if f"Field {id_column} " in str(e) else "")
        raise TypeError(f"the dataset's blocks give a column different types: {e}{hint}") from None
    if id_column not in cols:
        raise KeyError(f"the dataset has no id column {id_column!r} (columns: {cols})")
    for c in payload_columns or ():
        if c not in cols:
            raise KeyError(f"the dataset has no payload column {c!r} (columns: {cols})")
    vocab_size = None
    if ident is not None:
        text_column = text_column or "text"
        if text_column not in cols:
            raise KeyError(f"the dataset has no text column {text_column!r} (columns: {cols})")
        if not bm25:
            dataset = encode(dataset, ident, text_column=text_column, concurrency=encode_concurrency, _report_bad=True)
            from .encoders.registry import load_encoder

            vocab_size = int(load_encoder(ident, progress=False).vocab_size)
    else:
        for c in ("indices", "values"):
            if c not in cols:
                raise KeyError(f"the dataset has no {c!r} column: pass vectors (see encode()) or an encoder")
    index_id = uuid.uuid4().hex
    max_weight_given = max_weight is not None
    spec = {
        "index_id": index_id, "id_column": id_column, "text_column": text_column,
        "payload_columns": list(payload_columns or ()), "bm25": bm25,
        "encoder": ident if bm25 else None, "vocab_size": vocab_size,
        # shards built from vectors keep the texts of later adds too (ShardedIndex opened with
        # the encoder), as a SparseIndex of vectors opened with one does (helper-147)
        "store_texts": bool(store_texts) and not bm25,
        "texts_given": ident is not None and not bm25,  # a text column to keep (SPLADE)
    }
    # built in a hidden directory and moved into place at the end: a failed build leaves
    # ``path`` as it was (a retry at the same path works) and a reader never finds half a
    # sharded index. Beside a missing ``path`` (then renamed to it); inside an existing empty
    # one, whose entries then move up into it: it stays the same directory (a mount point, a
    # process's working directory, its permissions), on its own file system; its fixed name
    # makes a second build into the same directory fail at once (mkdir), not both at the end
    made = [d for d in root.parents if not d.exists()]
    into = root.is_dir()
    work = root / _BUILDING if into else root.parent / f"{_BUILDING}-{index_id[:12]}"  # short: any name fits
    done = mine = False
    writes: list[Any] = []
    builders: list[Any] = []
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            work.mkdir()
        except FileExistsError:
            raise FileExistsError(f"{root}: another build_shards is writing into it ({work} exists; remove it "
                                  "if none runs)") from None
        mine = True
        opts = {"num_cpus": builder_cpus, "max_restarts": 0}
        builders = [ray.remote(_ShardBuilder).options(**opts).remote(str(work), spec, i) for i in range(num_shards)]
        # every builder placed before the dataset starts: Ray Data would otherwise fill the
        # CPUs with routing tasks that wait on builders that cannot be scheduled
        ray.get([b.max_weight.remote() for b in builders])
        routed = dataset.map_batches(
            _route_batch, fn_kwargs={"builders": builders, "spec": spec}, batch_size=batch_size,
            batch_format="pyarrow", num_cpus=_ROUTE_CPUS,
        )
        # consumed here (no aggregation task: it would need a whole CPU the builders may hold)
        n_docs = 0
        first_id: Any = None
        for b in routed.iter_batches(batch_format="numpy", batch_size=None):
            for raw in b["error"].tolist():
                _raise_routed(raw)
            for raw in b["id"].tolist():
                x = pickle.loads(raw)
                if first_id is None:
                    first_id = x
                elif x is not None and isinstance(x, str) != isinstance(first_id, str):
                    raise TypeError(_mixed_ids(*((first_id, x) if isinstance(x, str) else (x, first_id))))
            n_docs += int(b["n"].sum())
        if quantization == "u8" and not bm25:
            heaviest = max(ray.get([b.heaviest.remote() for b in builders]), key=lambda h: h[0])
            if max_weight is None:
                max_weight = heaviest[0] or 1.0
            else:
                _check_grid_fits(heaviest[0], max_weight, f"the document with id {heaviest[1]!r}", "build_shards")
        grid = _grid(quantization, bm25, max_weight)
        writes = [b.build.remote(grid) for b in builders]
        counts = ray.get(writes)
        if sum(counts) != n_docs:  # pragma: no cover - a bug in routing
            raise RuntimeError(f"shards hold {sum(counts)} documents, the dataset {n_docs}")
        manifest = {
            "format": _FORMAT, "version": _VERSION, "index_id": index_id, "num_shards": num_shards,
            "routing": {"hash": "blake2b-64-le", "key": "i:<decimal int id> | s:<utf-8 str id>",
                        "shard": "hash mod num_shards"},
            "grid": grid, "max_weight_given": max_weight_given, "encoder": ident, "bm25": bm25,
            "shards": [{"name": _shard_name(i), "documents": counts[i]} for i in range(num_shards)],
        }
        _write_json(work / MANIFEST, manifest)
        done = True
    except Exception as e:  # a RayTaskError, or Ray Data's UserCodeException around the user's error
        cause = _user_cause(e)
        if cause is e:
            raise
        raise cause from None
    finally:
        if not done and writes:
            # the other builders may still be writing their shards (one failed): they finish
            # before the work directory is removed. A kill does not wait for its worker to stop
            # writing, and files landing after the removal were left behind (seen in CI)
            ray.wait(writes, num_returns=len(writes), timeout=300)
        free = float(ray.available_resources().get("CPU", 0.0))
        for b in builders:
            ray.kill(b)
        if done and builders:
            # returns once Ray has the builders' CPUs back (moments after the kills): a
            # ShardedIndex opened right after found them still reserved and was refused (helper-113)
            total = float(ray.cluster_resources().get("CPU", 0.0))
            _free_cpus(min(total, free + builder_cpus * len(builders)))
        if not done and mine:
            shutil.rmtree(work, ignore_errors=True)
        if not done:
            for d in made:  # the parents this call created, innermost first
                try:
                    d.rmdir()
                except OSError:
                    break
    _move_into_place(work, root, into)
    return manifest


def _move_into_place(work: Path, root: Path, into: bool) -> None:
    """Move a built sharded index from ``work`` to ``root``: rename ``work`` to ``root`` (not
    ``into``: ``root`` was missing), or move ``work``'s entries up into ``root`` (``work``
    inside it), the shards first and ``shards.json`` last, so that a reader finds a complete
    index or none. FileExistsError, naming where the built index is left, when something else
    filled ``root`` meanwhile."""
    def filled() -> FileExistsError:
        return FileExistsError(f"{root} was filled by something else while the shards were built; the built "
                               f"index is left at {work} (move its contents where you want them)")

    if into or root.is_dir():  # (an empty directory made meanwhile by someone else: kept, filled)
        if any(p != work for p in root.iterdir()):
            raise filled()
        for e in sorted(work.iterdir(), key=lambda p: p.name == MANIFEST):
            os.rename(e, root / e.name)
        work.rmdir()
        return
    try:
        os.rename(work, root)
    except OSError as e:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise filled() from None
        raise OSError(e.errno, f"cannot rename {work} to {root} ({e.strerror}); the built index is left at "
                               f"{work}") from None


# shard actors -------------------------------------------------------------------------------
def _hits_out(hits: list[Hit]) -> list[tuple[Any, float, Any]]:
    return [(h.id, h.score, h.payload) for h in hits]


class _Bm25Query:
    """A BM25 query as every shard takes it: terms (text) present in the collection, their
    query term frequencies ``qtf`` (float32) and their document frequencies ``df`` in the
    whole collection; each shard's engine applies ``idf(df, N)`` from the collection's
    statistics, as a single index over every document does."""

    __slots__ = ("terms", "weights", "df")

    def __init__(self, terms: list[str], weights: np.ndarray, df: list[int]) -> None:
        self.terms, self.weights, self.df = terms, weights, df

    def __reduce__(self) -> Any:
        return (_Bm25Query, (self.terms, self.weights, self.df))


class _Shard:
    """One shard's index, opened memory-mapped in a Ray actor."""

    def __init__(self, root: str, manifest: dict[str, Any], shard: int) -> None:
        self.name = _shard_name(shard)
        self.error: str | None = None
        self._collection = (0, 0)  # the whole collection's N and total length (BM25)
        try:
            self.index = _open_shard(Path(root), manifest, shard)
        except Exception as e:  # reported by describe(), where the caller asks
            self.error = str(e) if isinstance(e, ShardError) else f"{type(e).__name__}: {e}"

    def _ok(self) -> SparseIndex:
        if self.error is not None:
            raise ShardError(self.error)
        return self.index

    def describe(self) -> dict[str, Any]:
        idx = self._ok()
        kind = idx._id_kind()
        return {"documents": len(idx), "generation": idx.generation,
                "id_kind": None if kind is None else ("str" if kind is str else "int")}

    def ping(self) -> bool:
        return True

    # BM25 statistics
    def bm25_stats(self) -> tuple[int, int, dict[str, int]]:
        """This shard's live N, total length and df by term text (SparseIndex.collection_stats)."""
        idx = self._ok()
        st = idx.collection_stats(None)
        terms = idx.encoder.vocabulary.terms
        return int(st.n_docs), int(st.total_len), {
            terms[t]: int(d) for t, d in zip(st.terms.tolist(), st.df.tolist()) if d > 0
        }

    def set_bm25_stats(self, n: int, total: int, df: Mapping[str, int], max_weight: float | None) -> float:
        """The whole collection's N and total length (df comes with each query). The engine's
        BM25 u8 grid is fixed (255 / (k1 + 1)), the same in every shard: nothing to share."""
        self._ok()
        self._collection = (int(n), int(total))
        return 0.0

    def _stats_for(self, qs: list[SparseEmbedding], dfs: list[list[int]]) -> Any:
        """The collection statistics covering the terms of ``qs`` (this shard's term ids),
        with the whole collection's df of each."""
        from ._core import Bm25Stats

        n, total = self._collection
        by_term: dict[int, int] = {}
        for q, df in zip(qs, dfs):
            for t, d in zip(q.indices.tolist(), df):
                by_term[int(t)] = int(d)
        terms = np.asarray(sorted(by_term), dtype=np.uint32)
        return Bm25Stats(n, total, terms, np.asarray([by_term[t] for t in terms.tolist()], dtype=np.uint64))

    def _local(self, q: Any, unseen: dict[str, int] | None = None) -> Any:
        """A query as this shard's index takes it: a BM25 query (weighted by the coordinator
        with the whole collection's statistics) maps its terms to this shard's term ids; a
        term this shard never saw gets an id past its dictionary (it matches nothing here, but
        stays in the query: u8 query quantization depends on every query weight). ``unseen``
        maps such terms to their ids across the queries of one batch, whose statistics are
        gathered into one table: two different unseen terms must not share an id there (one
        would get the other's df, so another weight and another quantized query)."""
        if isinstance(q, _Bm25Query):
            vocab = self.index.encoder.vocabulary
            n = len(vocab)
            unseen = {} if unseen is None else unseen
            ids = []
            for t in q.terms:
                i = vocab.get(t)
                if i is None:
                    i = unseen.setdefault(t, n + len(unseen))
                ids.append(i)
            order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
            v = SparseEmbedding(indices=np.asarray(ids, dtype=np.uint32)[order],
                                values=np.asarray(q.weights, dtype=np.float32)[order])
            return v, [int(q.df[i]) for i in order.tolist()]
        return q, None

    # reads
    def _canonical(
        self, q: Any, k: int, algorithm: str, filter: Any, hits: list[Hit] | None = None, stats: Any = None,
        target_recall: float | None = None, scores: str = "vectors",
    ) -> list[Hit]:
        """This shard's top-k in canonical order (score descending, then id ascending). The
        engine returns exactly that whatever the shard's layout (BP order, segments, merges):
        equal scores go to the smaller id (integers numerically, strings by their UTF-8 bytes,
        which is Python's order of ``str``), so the k hits are the shard's share of the single
        index's top-k and no re-asking is needed."""
        if hits is None:
            hits = self.index.search(q, k=k, algorithm=algorithm, filter=filter, collection_stats=stats,
                                     target_recall=target_recall, scores=scores)
        return hits[:k]

    def search(self, q: Any, k: int, algorithm: str, filter: Any,
               target_recall: float | None = None, scores: str = "vectors") -> list[tuple[Any, float, Any]]:
        self._ok()
        q, df = self._local(q)
        if isinstance(q, SparseEmbedding) and q.nnz == 0:
            return []
        stats = None if df is None else self._stats_for([q], [df])
        return _hits_out(self._canonical(q, k, algorithm, filter, stats=stats, target_recall=target_recall,
                                         scores=scores))

    def search_batch(self, qs: list[Any], k: int, algorithm: str, filter: Any,
                     target_recall: float | None = None, scores: str = "vectors") -> list[list[tuple[Any, float, Any]]]:
        idx = self._ok()
        unseen: dict[str, int] = {}
        pairs = [self._local(q, unseen) for q in qs]
        local = [q for q, _ in pairs]
        live = [i for i, q in enumerate(local) if not (isinstance(q, SparseEmbedding) and q.nnz == 0)]
        out: list[list[tuple[Any, float, Any]]] = [[] for _ in qs]
        if live:
            bm25 = pairs[live[0]][1] is not None
            stats = self._stats_for([local[i] for i in live], [pairs[i][1] for i in live]) if bm25 else None
            res = idx.search_batch(
                [local[i] for i in live], k=k, algorithm=algorithm, filter=filter, threads=1, collection_stats=stats,
                target_recall=target_recall, scores=scores,
            )
            for i, h in zip(live, res):
                out[i] = _hits_out(self._canonical(local[i], k, algorithm, filter, hits=h, stats=stats))
        return out

    def get(self, id: Any) -> Document | None:
        idx = self._ok()
        return idx.get(id) if id in idx else None

    def explain(self, q: Any, id: Any, top_terms: int | None, scores: str = "vectors") -> Explanation | None:
        idx = self._ok()
        if id not in idx:
            return None
        v, df = self._local(q)
        stats = None if df is None else self._stats_for([v], [df])
        return idx.explain(v, id, top_terms=top_terms, collection_stats=stats, scores=scores)

    def contains(self, ids: list[Any]) -> list[bool]:
        idx = self._ok()
        return [x in idx for x in ids]

    # writes (the writer replica)
    def present(self, ids: list[Any]) -> list[bool]:
        """Whether each id is in this shard as its writer sees it (staged adds and deletes
        included), before :meth:`ShardedIndex.add` sends any shard its slice."""
        idx = self._ok()
        return [idx._store.locate(x) is not None for x in ids]

    def add(self, docs: list[Any], ids: list[Any], payloads: Any, upsert: bool, texts: list[Any] | None = None,
            positions: Sequence[int] | None = None) -> int:
        """Add (or upsert) a slice of a batch; ``positions``: each document's position in the
        caller's batch, which an error names."""
        import warnings

        idx = self._ok()
        try:
            with warnings.catch_warnings():
                # a weight above the shared grid: ShardedIndex.add warned the caller already,
                # naming the document in the caller's batch (this one reached the driver too)
                warnings.filterwarnings("ignore", message=r"document \d+ \(id .*above the max_weight",
                                        category=UserWarning)
                if texts is not None and idx.store_texts and not getattr(idx, "_bm25", False):
                    _add_vectors_with_texts(idx, docs, ids, payloads, texts, upsert=upsert)
                else:
                    (idx.upsert if upsert else idx.add)(docs, ids=ids, payloads=payloads)
        except (ValueError, TypeError, KeyError) as e:
            if positions is None:
                raise
            raise _relabel(e, positions) from None
        return len(ids)

    def delete(self, ids: list[Any], missing_ok: bool) -> int:
        return self._ok().delete(ids, missing_ok=missing_ok)

    def commit(self) -> int:
        return self._ok().commit()

    def refresh(self) -> bool:
        return self._ok().refresh()

    def poll(self) -> bool:
        """Move to the newest commit of the shard's directory unless this replica has staged
        writes of its own (then it is the writer, which sees its commits anyway)."""
        idx = self._ok()
        if idx._store.has_staged():
            return False
        return idx.refresh()

    def close(self, wait_for_merges: bool = True) -> None:
        if self.error is None:
            self.index.close(wait_for_merges)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise ShardError(f"{what}: unreadable {path.name} ({e})") from None
    if not isinstance(obj, dict):
        raise ShardError(f"{what}: {path.name} is not a JSON object")
    return obj


def _open_shard(root: Path, manifest: dict[str, Any], shard: int) -> SparseIndex:
    """Open shard ``shard`` after checking it is there, is this index's, and has its grid."""
    name = _shard_name(shard)
    d = root / name
    if not d.is_dir():
        raise ShardError(f"shard {name} is missing: no directory {d}")
    try:
        marker = _read_json(d / _MARKER, f"shard {name}")
    except FileNotFoundError:
        raise ShardError(f"shard {name}: {d / _MARKER} is missing (not a shard of a sharded index)") from None
    if marker.get("index_id") != manifest["index_id"]:
        raise ShardError(
            f"shard {name} belongs to another index (index id {marker.get('index_id')!r}, shard "
            f"{marker.get('shard')!r}; this index is {manifest['index_id']!r})"
        )
    if marker.get("shard") != shard:
        raise ShardError(
            f"shard {name} holds shard {marker.get('shard')!r}, expected shard {shard} (shard directories "
            "swapped or renamed? each document's shard is fixed by its id's hash)"
        )
    grid = manifest["grid"]
    if marker.get("grid") != grid:
        raise ShardError(f"shard {name} has quantization grid {marker.get('grid')!r}, the index {grid!r}")
    try:
        idx = SparseIndex.open(d)
    except Exception as e:
        raise ShardError(f"shard {name}: {type(e).__name__}: {e}") from None
    why = _scoring_mismatch(idx, manifest)
    if why is not None:
        idx.close()
        raise ShardError(f"shard {name} {why} (shards must score as one index)")
    actual = _actual_grid(idx)
    want_q = grid["quantization"]
    if actual[0] != want_q or (isinstance(grid.get("max_weight"), float) and
                                (actual[1] is None or not math.isclose(actual[1], grid["max_weight"], rel_tol=1e-6))):
        idx.close()
        raise ShardError(
            f"shard {name} is quantized {actual[0]!r} with max_weight {actual[1]!r}, but the index's grid is {grid!r}"
        )
    return idx


def _scoring_mismatch(idx: SparseIndex, manifest: Mapping[str, Any]) -> str | None:
    """How shard ``idx`` would score otherwise than the index of ``manifest`` says, or None.
    A BM25 shard has the index's BM25 parameters and text analysis (each shard grows its own
    term dictionary, which is not compared); a vector shard has no encoder."""
    enc = getattr(idx, "encoder", None)
    if not manifest.get("bm25"):
        return None if enc is None else f"has an encoder ({type(enc).__name__}), the index holds vectors"
    have = enc.identity() if enc is not None and hasattr(enc, "identity") else None
    if not isinstance(have, Mapping) or have.get("kind") != "bm25":
        return f"has no BM25 encoder ({type(enc).__name__ if enc is not None else 'vectors'}), the index is BM25"
    def flat(d: Mapping[str, Any], at: str = "") -> dict[str, Any]:  # analyzer.stopwords, ...
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k in ("vocabulary", "vocab_size"):
                continue
            if isinstance(v, Mapping):
                out.update(flat(v, f"{at}{k}."))
            else:
                out[at + k] = v
        return out

    have = flat(json.loads(json.dumps(have)))
    want = flat(json.loads(json.dumps(manifest.get("encoder") or {})))
    diff = [f"{k} {shown(have.get(k))} (the index: {shown(want.get(k))})"
            for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
    return f"has another BM25 encoder: {', '.join(diff)}" if diff else None


def _check_manifest_shards(root: Path, m: Mapping[str, Any]) -> int:
    """``num_shards`` of ``shards.json``, after checking it against its shard list and the
    shard directories present (routing depends on it: a wrong count sends ids to wrong shards)."""
    n = m.get("num_shards")
    if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 65536):
        raise ShardError(f"{root / MANIFEST}: num_shards is {n!r}, expected an int in 1 .. 65536")
    listed = m.get("shards")
    if not isinstance(listed, list) or len(listed) != n:
        raise ShardError(
            f"{root / MANIFEST}: num_shards is {n} but its shard list has "
            f"{len(listed) if isinstance(listed, list) else 'no'} entries"
        )
    extra = sorted(p.name for p in root.glob("shard-*") if p.is_dir() and p.name[6:].isdigit() and int(p.name[6:]) >= n)
    if extra:
        raise ShardError(
            f"{root / MANIFEST}: num_shards is {n} but {root} also holds {', '.join(extra)}: the manifest and "
            "the shard directories disagree"
        )
    return n


def _actual_grid(idx: SparseIndex) -> tuple[str, float | None]:
    """(quantization, max_weight of the shared u8 grid or None) of an open index."""
    if getattr(idx, "_bm25", False):
        return idx.quantization, None  # the engine's BM25 u8 grid is fixed: 255 / (k1 + 1)
    scale = idx._store._core_settings().get("scale")  # the store's fixed u8 scale (255 / max_weight)
    return idx.quantization, (255.0 / scale if scale else None)


ShardActor = ray.remote(_Shard)


# the sharded index --------------------------------------------------------------------------
def _check_actor_cpus(num_shards: int, replicas: int, num_cpus: Any) -> float:
    """The CPUs each shard actor reserves: ``num_cpus``, or when None, 0.25 or less so that
    every actor fits in the CPUs free now (a multiple of 0.0001, Ray's step). An explicit
    value whose actors do not fit in the CPUs free now is refused before any actor starts: Ray would start those that fit and leave the rest
    pending, and opening would wait for them until ``start_timeout_s``. Checked against the
    CPUs of the cluster's nodes (an autoscaling cluster may add nodes: pass ``num_cpus=0``
    there, or size it first)."""
    if num_cpus is None:
        if not ray.is_initialized():
            ray.init()
        free = float(ray.available_resources().get("CPU", 0.0))
        # Ray takes fractions of a CPU in steps of 0.0001: round down (0 is fine, actors mostly wait)
        return _cpu_share(min(0.25, max(0.0, free) / (num_shards * replicas)))
    if not (isinstance(num_cpus, (int, float)) and not isinstance(num_cpus, bool) and math.isfinite(num_cpus)
            and num_cpus >= 0):
        raise ValueError(f"num_cpus must be a number >= 0, got {num_cpus!r}")
    if num_cpus == 0:
        return 0.0
    if not ray.is_initialized():
        ray.init()
    need = num_shards * replicas * float(num_cpus)
    total = float(ray.cluster_resources().get("CPU", 0.0))
    free = _free_cpus(need) if need <= total + 1e-9 else float(ray.available_resources().get("CPU", 0.0))
    if need > free + 1e-9:
        fits = _cpu_share(free / (num_shards * replicas))
        raise ValueError(
            f"{num_shards} shard(s) x replicas={replicas} x num_cpus={num_cpus:g} = {need:g} CPUs for the "
            f"shard actors, but the cluster has {free:g} of its {total:g} CPUs free: pass num_cpus <= {fits:g} "
            "(or num_cpus=None to size it; num_cpus=0 also works: a shard actor mostly waits), fewer "
            "replicas, close what holds the CPUs, or add nodes"
        )
    return float(num_cpus)


class ShardedIndex:
    """A sharded index (built by :func:`build_shards`) served by Ray actors, searched as one.

    Parameters
    ----------
    path:
        The directory holding ``shards.json`` and the shards (on a file system every Ray node
        sees at that path).
    replicas:
        Actors per shard (each opens the shard memory-mapped). With ``replicas > 1`` a read
        goes to the replicas in turn and moves on to another when one dies or times out.
        Writes go to replica 0 (the shard's writer); after :meth:`commit` the others refresh.
    num_cpus:
        CPUs reserved per actor (fractional: ``0.25`` lets 8 actors share 2 cores). None (the
        default): 0.25, or less when ``num_shards x replicas`` actors would not fit in the
        CPUs free now (shard actors mostly wait; 0 is fine). An explicit value whose actors
        do not fit in the CPUs free now is a ``ValueError`` before any actor starts.
    timeout_s:
        How long a call waits for a shard's answer before trying another replica (then
        :class:`ShardUnavailableError` naming the shard and the timeout). A timeout fails
        that call only: the replica may just be busy and stays in rotation; only an actor
        that died is dropped.
    start_timeout_s:
        How long opening waits for the actors to start and open their shards.
    encoder:
        The query encoder for a SPLADE index (default: re-created from ``shards.json``): a
        model name or directory, a :class:`~sparsedex.encoders.SpladeEncoder`, or its
        ``identity()``. An index built from vectors needs it for text queries and text adds;
        :meth:`serve` hands it to the deployment.

    Raises
    ------
    ShardError
        A shard is missing, belongs to another index, holds another shard of this index, or
        has another quantization grid (the message names it); ``shards.json`` is missing,
        unreadable, or its ``num_shards`` disagrees with its shard list or the shard
        directories. After :meth:`close`, every call raises
        :class:`~sparsedex.errors.ClosedIndexError`.

    Notes
    -----
    Results equal a single :class:`~sparsedex.SparseIndex` over the same documents (ids,
    scores, tie order: score descending, then id ascending). Adding documents needs ids
    (they choose the shard). Needs ``ray.init()`` first (or starts a local cluster as Ray does).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        replicas: int = 1,
        num_cpus: float | None = None,
        timeout_s: float = 60.0,
        start_timeout_s: float = 300.0,
        encoder: Any = None,
    ) -> None:
        if not (isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 1):
            raise ValueError(f"replicas must be a positive int, got {replicas!r}")
        if not (timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self._closed = False
        self.path = Path(path)
        try:
            m = _read_json(self.path / MANIFEST, str(self.path))
        except FileNotFoundError:
            raise ShardError(f"{self.path}: no {MANIFEST} (not a sharded index)") from None
        if m.get("format") != _FORMAT or m.get("version") != _VERSION:
            raise ShardError(f"{self.path / MANIFEST}: format {m.get('format')!r} v{m.get('version')!r}, expected {_FORMAT} v{_VERSION}")
        self.manifest = m
        self.num_shards = _check_manifest_shards(self.path, m)
        self.replicas = replicas
        self.timeout_s = float(timeout_s)
        self._bm25 = bool(m.get("bm25"))
        self._encoder: Any = None
        if encoder is not None:
            # as SparseIndex.open: an encoder whose vectors cannot match the shards' documents
            # (another kind, vocabulary or settings) is refused, not searched with
            from .index import _make_encoder, check_encoder_matches

            if isinstance(encoder, Mapping):  # an identity() (serve() hands the encoder over so)
                from .encoders.registry import load_encoder

                self._encoder = load_encoder(dict(encoder), progress=False)
            else:
                self._encoder = _make_encoder(encoder)
            check_encoder_matches(self.path, m.get("encoder"), self._encoder)
        self._encoder_given = self._encoder is not None
        self._bm25_analyzer: Any = None
        self._bm25_stats: tuple[int, int, dict[str, int]] = (0, 0, {})
        self._id_kind: type | None = None  # int or str once a shard holds a document (_check_id_kind)
        self._lock = threading.RLock()
        self._rr = 0
        for i in range(self.num_shards):  # cheap checks first, by name, before any actor starts
            d = self.path / _shard_name(i)
            if not d.is_dir():
                raise ShardError(f"shard {_shard_name(i)} is missing: no directory {d}")
        num_cpus = _check_actor_cpus(self.num_shards, replicas, num_cpus)
        opts = {"num_cpus": num_cpus, "max_restarts": 0, "max_task_retries": 0}
        self._actors: list[list[Any]] = [
            [ShardActor.options(**opts).remote(str(self.path), m, i) for _ in range(replicas)]
            for i in range(self.num_shards)
        ]
        self._dead: set[tuple[int, int]] = set()
        try:
            # actors start, shards open
            described = self._fan("describe", timeout_s=max(self.timeout_s, start_timeout_s),
                                  timeout_name="start_timeout_s")
            kinds = self._id_kinds(described)
            if len(kinds) == 1:  # the ids' type, for _check_id_kind (both: refused at the first write)
                self._id_kind = kinds.pop()
            if self._bm25:
                self._sync_bm25()
        except BaseException:
            self.close()
            raise

    # calls ------------------------------------------------------------------------------------
    def _err(self, shard: int, why: str) -> ShardUnavailableError:
        return ShardUnavailableError(
            f"shard {_shard_name(shard)} is unavailable: {why}"
            + ("" if self.replicas > 1 else " (it has no other replica: open with replicas > 1 to keep answering)")
        )

    def _fan(self, method: str, *args: Any, shards: Iterable[int] | None = None, writer: bool = False,
             per_shard: Mapping[int, tuple[Any, ...]] | None = None, timeout_s: float | None = None,
             timeout_name: str = "timeout_s") -> dict[int, Any]:
        """Call ``method`` on one live replica of each shard (replica 0 if ``writer``), retrying
        another replica on death or timeout; returns {shard: result}."""
        self._check_open()
        todo = list(range(self.num_shards)) if shards is None else list(shards)
        out: dict[int, Any] = {}
        tried: dict[int, set[int]] = {s: set() for s in todo}
        last: dict[int, str] = {}
        while todo:
            refs: dict[Any, tuple[int, int]] = {}
            with self._lock:
                self._rr += 1
                rr = self._rr
            # a replica for every shard before any call goes out: a shard without one (a writer
            # known dead) refuses the call before another shard runs it (a commit committed the
            # shards before the dead one, helper-147)
            picks = {}
            for s in todo:
                r = self._pick(s, tried[s], rr, writer)
                if r is None:
                    raise self._err(s, last.get(s, "every replica is dead"))
                picks[s] = r
            for s, r in picks.items():
                tried[s].add(r)
                a = per_shard[s] if per_shard is not None else args
                refs[getattr(self._actors[s][r], method).remote(*a)] = (s, r)
            wait = self.timeout_s if timeout_s is None else timeout_s
            limit = "timeout_s" if timeout_s is None else timeout_name
            ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=wait)
            retry = []
            for ref in ready:
                s, r = refs[ref]
                try:
                    out[s] = ray.get(ref)
                except _rex.ActorUnavailableError as e:  # transient (network, a busy node): not dead
                    last[s] = f"its actor is unavailable for now ({type(e).__name__})"
                    retry.append(s)
                except _rex.RayActorError as e:  # ActorDiedError: dropped for good
                    self._dead.add((s, r))
                    last[s] = f"its actor died ({type(e).__name__})"
                    retry.append(s)
                except _rex.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) is not None else e
                    if isinstance(cause, ShardError):
                        raise type(cause)(str(cause)) from None
                    if isinstance(cause, (ValueError, TypeError, KeyError, SparsedexError)):
                        raise cause from None
                    raise ShardError(f"shard {_shard_name(s)}: {type(cause).__name__}: {cause}") from None
            for ref in pending:
                # a timeout fails this call on this replica, nothing more: the actor may only be
                # busy (a long batch, a backlog), so it stays in rotation; only an actor that
                # died (RayActorError above) is dropped
                s, r = refs[ref]
                if not writer:  # a read still queued is dropped; a write stays queued, in order
                    ray.cancel(ref, force=False)
                last[s] = f"no answer within {wait:g} s ({limit})"
                retry.append(s)
            if writer and retry:
                s = retry[0]
                raise ShardUnavailableError(
                    f"shard {_shard_name(s)}: its writer (replica 0) is dead ({last[s]}): writes go to "
                    "replica 0; reopen the index to restart it" if (s, 0) in self._dead else
                    f"shard {_shard_name(s)}: its writer (replica 0) did not answer: {last[s]}"
                    + ("; the write stays queued on it and applies in order"
                       if "no answer" in last[s] and method not in ("ping", "present") else "")
                )
            todo = retry
        return out

    def _pick(self, s: int, tried: set[int], rr: int, writer: bool) -> int | None:
        if writer:
            if (s, 0) in self._dead:
                raise ShardUnavailableError(
                    f"shard {_shard_name(s)}: its writer (replica 0) is dead: writes go to replica 0 of "
                    "each shard; reopen the index to restart it"
                    + (" (reads still go to its other replicas)"
                       if any((s, r) not in self._dead for r in range(1, self.replicas)) else "")
                )
            return None if 0 in tried else 0
        n = self.replicas
        for j in range(n):
            r = (rr + j) % n
            if r not in tried and (s, r) not in self._dead:
                return r
        return None

    # BM25 statistics --------------------------------------------------------------------------
    def _sync_bm25(self) -> None:
        """Gather N, total length and df (by term text) from every shard; each shard gets the
        whole collection's N and total length, and each query carries its terms' df."""
        stats = self._fan("bm25_stats", writer=False)
        n = sum(int(v[0]) for v in stats.values())
        total = int(sum(int(v[1]) for v in stats.values()))
        df: dict[str, int] = {}
        for s in sorted(stats):
            for t, c in stats[s][2].items():
                df[t] = df.get(t, 0) + c
        self._bm25_stats = (n, total, df)
        # every shard gets N and the total length; df travels with each query (terms only)
        self._all_replicas("set_bm25_stats", n, total, {}, None)

    def _check_open(self) -> None:
        if self._closed:
            from .store import ClosedIndexError

            raise ClosedIndexError(f"{self!r} is closed: open a new ShardedIndex({str(self.path)!r})")

    def _all_replicas(self, method: str, *args: Any, timeout_s: float | None = None) -> list[Any]:
        self._check_open()
        refs = {}
        for s in range(self.num_shards):
            for r in range(self.replicas):
                if (s, r) not in self._dead:
                    refs[getattr(self._actors[s][r], method).remote(*args)] = (s, r)
        wait = self.timeout_s if timeout_s is None else timeout_s
        ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=wait)
        out = []
        for ref in ready:
            try:
                out.append(ray.get(ref))
            except _rex.ActorUnavailableError:
                pass  # transient: the replica stays in rotation
            except _rex.RayActorError:
                self._dead.add(refs[ref])
        # a replica that did not answer in time is busy, not dead: its call stays queued and
        # runs before any later call from here (Ray keeps one caller's actor calls in order)
        for s in range(self.num_shards):
            if all((s, r) in self._dead for r in range(self.replicas)):
                raise self._err(s, "every replica is dead")
        return out

    def _dead_replicas(self, timeout_s: float) -> list[tuple[int, int]]:
        """Every (shard, replica) whose actor died, after one ping to each replica not known
        dead (one that does not answer within ``timeout_s`` is busy, not dead)."""
        try:
            self._all_replicas("ping", timeout_s=timeout_s)
        except ShardUnavailableError:
            pass  # every replica of a shard is dead: listed below
        return sorted(self._dead)

    # queries ----------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The query encoder of a SPLADE index (None for BM25, whose shards encode, and for
        vectors you bring)."""
        if self._bm25:
            return None
        if self._encoder is None and self.manifest.get("encoder"):  # an encoder given is made at open
            from .encoders.registry import load_encoder

            self._encoder = load_encoder(self.manifest["encoder"], progress=False)
        return self._encoder

    def _query(self, q: Any, what: str = "query") -> Any:
        """What a shard receives: a BM25 query (terms, qtf and the collection's df), else an
        (indices, values) vector (a text encoded here, once)."""
        if self._bm25:
            return self._bm25_query(q, what)
        if isinstance(q, str):
            if self.encoder is None:
                raise TypeError(
                    f"{what} is a text but this index has no encoder (built from vectors, encoder=None): "
                    "pass a sparse vector, or open it with the model that encoded the documents, "
                    "ShardedIndex(path, encoder=\"splade-tiny\") (a name or a model directory)"
                )
            (v,) = self.encoder.encode_queries([q])
        else:
            # a SPLADE index's shards hold no term at or above its encoder's vocabulary: such a
            # query term is a mistake, named here (as SparseIndex.search does)
            v = validate_embedding(q, self._vocab_limit(), row=None, what=what,
                                   limit_name="the encoder's vocabulary size")
        return (np.asarray(v.indices, dtype=np.uint32), np.asarray(v.values, dtype=np.float32))

    def _bm25_query(self, text: Any, what: str) -> _Bm25Query:
        from collections import Counter

        from .encoders.bm25 import Bm25Encoder

        if not isinstance(text, str):
            # a sparse vector too: each shard numbers its BM25 terms itself, so term ids do not
            # name the same word across shards (helper-112: "is a tuple" read as an internal error)
            kind = "a sparse vector" if isinstance(text, (tuple, list, dict)) or hasattr(text, "indices") else (
                f"a {type(text).__name__}")
            raise TypeError(f"{what} is {kind}: a sharded BM25 index is searched with texts (each shard numbers "
                            "its terms itself, so term ids name no word across shards)")
        _validate.check_text(text, what)
        if self._bm25_analyzer is None:
            ident = {k: v for k, v in self.manifest["encoder"].items() if k not in ("vocabulary", "vocab_size")}
            self._bm25_analyzer = Bm25Encoder.from_identity(ident).analyzer
        _, _, df = self._bm25_stats
        counts = Counter(self._bm25_analyzer(text))
        terms = [t for t in counts if df.get(t, 0) > 0]
        qtf = np.asarray([counts[t] for t in terms], dtype=np.float32)
        return _Bm25Query(terms, qtf, [int(df[t]) for t in terms])

    @staticmethod
    def _merge(parts: Iterable[list[tuple[Any, float, Any]]], k: int) -> list[Hit]:
        rows = [h for p in parts for h in p]
        # ints before strings on a tie: an index written before ids were checked across
        # shards can hold both (comparing them raised)
        rows.sort(key=lambda h: (-h[1], isinstance(h[0], str), h[0]))
        return [Hit(i, s, p) for i, s, p in rows[:k]]

    def search(self, query: Any, k: int = 10, algorithm: str = "auto", filter: Any = None,
               target_recall: float | None = None, scores: str = "vectors") -> list[Hit]:
        """The ``k`` best documents of the whole collection for ``query`` (a text or a sparse
        vector), best first: every shard's top-k merged by (score descending, id ascending),
        which is exactly :meth:`SparseIndex.search` over the same documents. ``filter``
        applies in every shard. ``algorithm="approximate"`` searches every shard approximately
        at ``target_recall`` (each shard's segments calibrated on their own; 1.0 is the exact
        search). ``scores``: as :meth:`SparseIndex.search` (``"impacts"``: a u8 index's 8-bit
        scores). Errors as :meth:`SparseIndex.search`, plus :class:`ShardUnavailableError`."""
        from .index import _check_algorithm, _check_scores

        k = _validate.check_k(10 if k is None else k)  # None: the default, as SparseIndex.search
        _check_algorithm(algorithm, target_recall)
        _check_scores(scores, algorithm)
        q = self._query(query)
        res = self._fan("search", q, k, algorithm, filter, target_recall, scores)
        return self._merge((res[s] for s in sorted(res)), k)

    def search_batch(self, queries: Iterable[Any], k: int = 10, algorithm: str = "auto",
                     filter: Any = None, target_recall: float | None = None,
                     scores: str = "vectors") -> list[list[Hit]]:
        """:meth:`search` for many queries (texts or vectors, or a scipy.sparse matrix or CSR
        arrays ``(indptr, indices, values)``, one query a row); one call per shard."""
        from .index import _check_algorithm, _check_scores

        k = _validate.check_k(10 if k is None else k)  # None: the default, as SparseIndex.search
        _check_algorithm(algorithm, target_recall)
        _check_scores(scores, algorithm)
        from .index import batch_queries

        qs = batch_queries(queries)  # a bare text: one query; a sparse matrix or CSR arrays: one a row
        if not qs:
            return []
        sent = [self._query(q, what=f"query {i}") for i, q in enumerate(qs)]
        if not self._bm25:
            sent = [SparseEmbedding(indices=a, values=b) for a, b in sent]
        res = self._fan("search_batch", sent, k, algorithm, filter, target_recall, scores)
        return [self._merge((res[s][i] for s in sorted(res)), k) for i in range(len(qs))]

    def _owner(self, id: Any) -> int:
        return shard_of(_validate.lookup_id(id), self.num_shards)

    def get(self, id: Any) -> Document:
        """The stored document ``id`` (from the one shard it hashes to; KeyError if none)."""
        s = self._owner(id)
        d = self._fan("get", id, shards=[s])[s]
        if d is None:
            raise KeyError(f"no document with id {shown(_validate.lookup_id(id))} in the index{self._other_kind(id)}")
        return d

    def _other_kind(self, id: Any) -> str:
        """What a KeyError for ``id`` adds when it is of the other kind than the index's ids
        (``" (a str; the index's ids are ints)"``, as SparseIndex says, helper-160); else ""."""
        return _validate.other_kind(_validate.lookup_id(id), self._id_kind)

    def __contains__(self, id: Any) -> bool:
        try:
            s = self._owner(id)
        except TypeError:
            return False
        return bool(self._fan("contains", [id], shards=[s])[s][0])

    def explain(self, query: Any, id: Any, top_terms: int | None = 30, *, scores: str = "vectors") -> Explanation:
        """Why document ``id`` scored what it did (as :meth:`SparseIndex.explain`, ``scores``
        too; a SPLADE index decodes term ids to tokens with its encoder)."""
        from .index import _check_scores

        _check_scores(scores)
        s = self._owner(id)
        e = self._fan("explain", self._query(query), id, top_terms, scores, shards=[s])[s]
        if e is None:
            raise KeyError(f"no document with id {shown(_validate.lookup_id(id))} in the index{self._other_kind(id)}")
        enc = self.encoder
        if enc is not None and hasattr(enc, "id_to_token"):
            tok = enc.id_to_token
            e = Explanation(
                e.id, e.score, [TermMatch(m.term_id, tok(m.term_id), m.query_weight, m.doc_weight,
                                          m.contribution) for m in e.matches],
                [(tok(int(t)), w) for t, w in e.query_terms], [(tok(int(t)), w) for t, w in e.document_terms],
            )
        return e

    def __len__(self) -> int:
        return sum(v["documents"] for v in self._fan("describe").values())

    # writes -----------------------------------------------------------------------------------
    def _route(self, ids: Sequence[Any]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for i, x in enumerate(ids):
            try:
                key = _validate.lookup_id(x)
            except (TypeError, ValueError) as e:
                raise type(e)(f"document {i}: {e}") from None
            groups.setdefault(shard_of(key, self.num_shards), []).append(i)
        return groups

    @staticmethod
    def _id_kinds(described: Mapping[int, Any]) -> set[type]:
        """The types of the ids the shards hold, from their ``describe`` answers."""
        return {str if v["id_kind"] == "str" else int for v in described.values() if v.get("id_kind")}

    def _check_id_kind(self, ids: Sequence[Any]) -> None:
        """Refuse ids of another type than the index's (TypeError naming the first such id),
        as :meth:`SparseIndex.add` does: each shard checks only its own documents, so an int
        index took a string id routed to a shard without documents yet, and a search whose
        hits tied an int and a string id then failed (helper-124). The index's type is known
        from the shards when the index opens, else asked of them once they hold documents."""
        if not ids:
            return
        if self._id_kind is None:
            kinds = self._id_kinds(self._fan("describe"))
            if len(kinds) > 1:
                raise TypeError("the shards hold both int and string ids (written before this check "
                                "existed): rebuild the index with ids of one type")
            if kinds:
                self._id_kind = kinds.pop()
        want = self._id_kind
        whose = "the index's ids are" if want else "the ids before it are"
        for i, x in enumerate(ids):
            kind = str if isinstance(x, str) else int
            if want is None:
                want = kind
            elif kind is not want:
                raise _validate.wrong_id_kind(x, i, want, whose)

    def _write_docs(self, documents: Sequence[Any], ids: Sequence[Any] | None, payloads: Any, upsert: bool) -> list[Any]:
        """Check the whole batch as :meth:`SparseIndex.add` would (documents, ids, payloads,
        and, for an add, ids already in their shards, asked of every shard's writer), then send
        each shard its slice: a refused batch changes no shard, and errors name the document's
        position in the caller's batch. (Each shard took its slice in turn, checking it itself:
        a refused batch left the slices before the bad document staged, helper-147.)"""
        docs = [documents] if isinstance(documents, str) else _validate.documents_list(documents)
        if ids is None:
            raise ValueError("a sharded index needs ids to add documents (the id chooses the shard)")
        # a string is refused, not taken as one id per character (review34), as SparseIndex does
        ids = _validate.check_new_ids(ids, len(docs))
        self._check_id_kind(ids)  # before any encoding
        _validate.refuse_duplicate_ids(ids)  # (all ints or all strings by now)
        if payloads is not None:
            if isinstance(payloads, (str, bytes, Mapping)) or not isinstance(payloads, Iterable):
                raise TypeError(f"payloads must be a list (one dict or None per document), got {type(payloads).__name__}")
            payloads = list(payloads)
            if len(payloads) != len(docs):
                raise ValueError(f"{len(docs)} documents but {len(payloads)} payloads")
            payloads = _validate.normalize_payloads(payloads, len(docs))  # names the document at fault
        texts: list[Any] | None = None
        if self._bm25:
            for i, d in enumerate(docs):  # as SparseIndex.add of a BM25 index checks them
                if _validate.missing_value(d) is not None:
                    _validate.check_text(d, f"document {i}")
                if not isinstance(d, str):
                    raise TypeError(f"document {i} is {_validate.a_type(d)}: this index encodes texts")
            docs = _validate.check_texts(docs)
        else:
            if any(isinstance(d, str) for d in docs):
                if self.encoder is None:
                    raise TypeError(
                        "documents are texts but this index has no encoder (built from vectors, encoder=None): "
                        "pass sparse vectors, or open it with the model that encoded the others, "
                        "ShardedIndex(path, encoder=\"splade-tiny\")"
                    )
                for i, d in enumerate(docs):
                    if not isinstance(d, str):
                        raise TypeError(f"document {i} is {_validate.a_type(d)}: pass all texts or all vectors")
                texts = list(_validate.check_texts(docs))
                docs = encode_for_index(self.encoder, docs)
            limit = self._vocab_limit()
            docs = [validate_embedding(d, limit, row=i, what="document", limit_name="the vocabulary size")
                    for i, d in enumerate(docs)]
            docs = [(np.asarray(d.indices, dtype=np.uint32), np.asarray(d.values, dtype=np.float32)) for d in docs]
            mw = self.manifest.get("grid", {}).get("max_weight")
            if isinstance(mw, float):  # the shared u8 grid: a heavier weight would leave it
                _check_add_fits(docs, ids, mw, bool(self.manifest.get("max_weight_given")))
        groups = self._route(ids)
        # every shard taking a slice answers first (its writer: it sees its staged writes), so
        # that an id already there, or a writer found dead, refuses the batch before any shard
        # stages its slice
        if upsert:
            self._fan("ping", shards=sorted(groups), writer=True)
        else:
            have = self._fan("present", shards=sorted(groups), writer=True,
                             per_shard={s: ([ids[i] for i in rows],) for s, rows in groups.items()})
            there = [rows[j] for s, rows in groups.items() for j, ok in enumerate(have[s]) if ok]
            if there:
                i = min(there)
                raise ValueError(f"document {i}: id {shown(ids[i])} is already in the index (replace it with an upsert)")
        per = {s: ([docs[i] for i in rows], [ids[i] for i in rows],
                   None if payloads is None else [payloads[i] for i in rows], upsert,
                   None if texts is None else [texts[i] for i in rows], rows)
               for s, rows in groups.items()}
        self._fan("add", shards=sorted(per), writer=True, per_shard=per)
        return ids

    def _vocab_limit(self) -> int | None:
        """The term ids a SPLADE index's shards may hold: below its encoder's vocabulary size
        (None: any 32-bit id)."""
        enc = self.manifest.get("encoder") or {}
        size = enc.get("vocab_size") if enc.get("kind") == "splade" else None
        return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    def add(self, documents: Any, ids: Sequence[Any], payloads: Any = None) -> list[Any]:
        """Add documents (texts or vectors, as the index takes) with their ids, each to the
        shard its id hashes to; visible after :meth:`commit`. The whole batch is checked before
        any shard takes its slice: a refused add leaves every shard as it was, and its error
        names the document's position in ``documents``. An id already in its shard is an
        error (as :meth:`SparseIndex.add`); so is, on a ``u8`` index of vectors built with an
        explicit ``max_weight``, a weight above it (ValueError naming the document and the
        weight, before anything is written: it would leave the grid every shard shares). On a
        grid taken from the build data's largest weight, a heavier weight is a ``UserWarning``
        (its shard's new segment gets a coarser grid of its own)."""
        return self._write_docs(documents, ids, payloads, upsert=False)

    def upsert(self, documents: Any, ids: Sequence[Any], payloads: Any = None) -> list[Any]:
        """Add or replace documents by id (routed as :meth:`add`)."""
        return self._write_docs(documents, ids, payloads, upsert=True)

    def delete(self, ids: Any, *, missing_ok: bool = False) -> int:
        """Delete documents by id (routed); an unknown id is a KeyError unless ``missing_ok``.
        Visible after :meth:`commit`."""
        ids = _validate.lookup_ids(ids)  # one id, or many; bytes or a bare number type refused by name
        groups = self._route(ids)
        per = {s: ([ids[i] for i in rows], missing_ok) for s, rows in groups.items()}
        if not missing_ok:  # check every shard first: a refused delete changes nothing
            have = self._fan("contains", shards=sorted(groups), per_shard={s: (p[0],) for s, p in per.items()})
            for s, flags in have.items():
                for x, ok in zip(per[s][0], flags):
                    if not ok:
                        raise KeyError(f"no document with id {shown(x)} in the index{self._other_kind(x)}")
        return sum(self._fan("delete", shards=sorted(per), writer=True, per_shard=per).values())

    def commit(self) -> int:
        """Commit every shard (each atomically), refresh the other replicas and, for BM25, the
        collection statistics. Returns the largest shard generation.

        Every shard's writer is asked first whether it is alive: when one is dead (or does not
        answer within ``timeout_s``), :class:`ShardUnavailableError` and no shard commits (their
        staged writes stay staged; reopening the index forgets them). There is no commit
        across shards: a writer that dies after that check, while the shards commit, leaves
        the shards that committed before it committed (see the Ray page, "Failures")."""
        self._fan("ping", writer=True)
        gens = self._fan("commit", writer=True)
        if self.replicas > 1:
            self._all_replicas("refresh")
        if self._bm25:
            self._sync_bm25()
        return max(gens.values())

    def refresh(self) -> bool:
        """Move every replica to its shard's newest commit (made by another process or another
        :class:`ShardedIndex` on the same path; this object's own :meth:`commit` refreshes its
        replicas already), and for BM25 gather the collection statistics again. Returns True
        if any shard moved to a newer commit (a calibration file another process rewrote is
        taken too, as :meth:`SparseIndex.refresh` takes it, but is no move). A replica holding
        uncommitted writes of its own stays where it is. Cheap when nothing changed (each
        replica reads its ``CURRENT``)."""
        moved = any(self._all_replicas("poll"))
        if moved and self._bm25:
            self._sync_bm25()
        return moved

    # lifecycle --------------------------------------------------------------------------------
    def close(self, wait_for_merges: bool = True) -> None:
        """Close every shard's index, as :meth:`SparseIndex.close` does (uncommitted changes
        are forgotten; after the shard's background merges finish, or cancelling them with
        ``wait_for_merges=False``), then stop the shard actors. A replica that has not closed
        within ``timeout_s`` is stopped anyway (its directory stays as its last commit left
        it). Closing is final and idempotent; afterwards every method raises
        :class:`~sparsedex.ClosedIndexError`."""
        wait = _validate.check_bool(wait_for_merges, "wait_for_merges")
        self._closed = True
        actors, self._actors = getattr(self, "_actors", []), []
        dead = getattr(self, "_dead", set())
        refs = []
        for s, reps in enumerate(actors):
            for r, a in enumerate(reps):
                if (s, r) not in dead:
                    try:
                        refs.append(a.close.remote(wait))
                    except Exception:  # noqa: BLE001 - already gone
                        pass
        if refs:
            try:
                ray.wait(refs, num_returns=len(refs), timeout=getattr(self, "timeout_s", None))
            except Exception:  # noqa: BLE001 - a dead actor's call: it is stopped below anyway
                pass
        for reps in actors:
            for a in reps:
                try:
                    ray.kill(a)
                except Exception:  # noqa: BLE001 - already gone
                    pass

    def __enter__(self) -> "ShardedIndex":
        self._check_open()  # as SparseIndex: `with` on a closed index is an error (helper-139)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def actors(self) -> list[list[Any]]:
        """The actor handles, ``[shard][replica]`` (for monitoring and tests)."""
        return [list(r) for r in self._actors]

    def serve(self, *, host: str = "127.0.0.1", port: int = 8000, route_prefix: str = "/",
              name: str = "sparsedex", blocking: bool = False, refresh_s: float = 1.0,
              max_k: int = _http.DEFAULT_MAX_K, max_batch: int = _http.DEFAULT_MAX_BATCH) -> str:
        """Serve this index over HTTP with Ray Serve; returns the base URL.

        ``POST {route_prefix}search`` with ``{"query": text | {"indices": [...], "values":
        [...]}, "k": 10, "filter": {...}, "algorithm": "auto"}`` answers ``{"hits": [{"id",
        "score", "payload"}]}``; ``search_batch`` takes ``"queries"`` and answers
        ``{"hits": [[...], ...]}``; ``get`` takes ``{"id"}``; ``explain`` takes ``{"query",
        "id"}``. Bad input: HTTP 400 with ``{"error": message}``; an unavailable shard: 503.
        The deployment opens its own :class:`ShardedIndex` on this path (same replicas; its
        actors reserve up to 0.25 CPU each, less when fewer are free, so that serving
        next to this object's actors does not wait for CPUs) and
        follows the directory's commits: a request arriving ``refresh_s`` seconds or more after
        the last check first calls :meth:`refresh` (one cheap call per shard replica), so a
        commit (this object's, another process's, ``sparsedex add``) is served within about
        ``refresh_s`` of it (0: checked before every request). A request for more than
        ``max_k`` hits per query is a 400, a ``search_batch`` of more than ``max_batch``
        queries a 413 (ValueError here unless both are integers >= 1). The deployment opens
        the index with the ``encoder`` this object was opened with (an index built from vectors
        needs it for text queries).

        Ray Serve checks each deployment replica every few seconds: one whose shard actors
        died (nothing restarts an actor) fails the check, and Serve replaces it, with new shard
        actors. Until then, a request its live shards can answer is answered; one that needs
        a dead shard is a 503 naming it, and ``/health`` shows the reason as ``refresh_error``.
        """
        self._check_open()
        from ._serve import run

        return run(str(self.path), replicas=self.replicas, host=host, port=port,
                   route_prefix=route_prefix, name=name, blocking=blocking, timeout_s=self.timeout_s,
                   refresh_s=refresh_s, max_k=max_k, max_batch=max_batch, encoder=self._given_encoder())

    def _given_encoder(self) -> dict[str, Any] | None:
        """The identity of the encoder given when this index was opened (None: none given),
        for another process to open the index with it (the model is loaded there, not pickled)."""
        return _encoder_identity(self._encoder) if self._encoder_given else None

    def __repr__(self) -> str:
        closed = ", closed" if getattr(self, "_closed", False) else ""
        return f"ShardedIndex({str(self.path)!r}, shards={self.num_shards}, replicas={self.replicas}{closed})"
