"""Encoding in worker processes: what ``embed(..., parallel=N)`` runs.

The documents are cut into batches of ``batch_size`` texts; N worker processes, started
with the ``spawn`` method (safe on every platform and under threads; it is the only method
on Windows and the default on macOS), each build the encoder once from a small picklable
*spec* and encode whole batches. Results come back in input order. At most ``2 * N``
batches are in flight, so a generator of any length streams through in bounded memory.

Rules, the same as fastembed's where fastembed has one:

- ``parallel=None`` encodes in this process; ``parallel=0`` means one worker per core this
  process may use; ``parallel=N >= 1`` asks for N workers.
- Fewer batches than workers: only as many workers start as there are batches; a single
  batch is encoded in this process (starting a process to encode one batch only adds the
  start-up time, and the vectors are the same).
- Spawned workers import the caller's ``__main__`` module: a script that calls
  ``embed(..., parallel=N)`` at import time must guard it with
  ``if __name__ == "__main__":`` (Python's multiprocessing rule; without it Python stops with
  its own "bootstrapping phase" RuntimeError).
- An exception in a worker is raised here, with its type; a worker that dies (killed, out of
  memory) raises :class:`RuntimeError` naming ``parallel``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from .vectors import SparseEmbedding

__all__ = ["available_cores", "build_from_spec", "check_batch_size", "embed_maybe_parallel", "resolve_parallel"]

_encoder: Any = None  # the worker process's encoder


def available_cores() -> int:
    """Cores this process may run on (``sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_parallel(parallel: Any) -> int | None:
    """``None`` -> None (this process); ``0`` -> every available core; ``N >= 1`` -> N."""
    if parallel is None:
        return None
    if isinstance(parallel, bool) or not isinstance(parallel, (int, np.integer)) or parallel < 0:
        raise ValueError(f"parallel must be None, 0 (all cores) or a positive number of processes, got {parallel!r}")
    return available_cores() if int(parallel) == 0 else int(parallel)


def build_from_spec(spec: dict[str, Any]) -> Any:
    """The encoder a spec describes (``{"kind": ..., ...}``; see the encoders' ``worker_spec``)."""
    kind = spec.get("kind")
    if kind == "fastembed-bm25":
        from .encoders.fastembed_bm25 import FastembedBm25Encoder

        return FastembedBm25Encoder(**spec["config"])
    if kind == "splade":
        from .encoders.splade import SpladeEncoder

        enc = SpladeEncoder(spec["model"], **spec["kwargs"])
        want = spec.get("model_sha256")
        if want and want != enc.identity().get("model_sha256"):
            raise RuntimeError(
                f"worker loaded model {spec['model']!r} with a different sha256 than the parent's: "
                "the model files changed while encoding"
            )
        return enc
    raise ValueError(f"unknown encoder spec kind {kind!r}")


def _init_worker(spec: dict[str, Any], slots: Any) -> None:
    global _encoder
    if spec.get("kind") == "splade":
        kwargs = dict(spec["kwargs"])
        if kwargs.get("threads") is None:  # share the cores among the workers
            kwargs["threads"] = max(1, int(spec.get("cores", 1)) // int(spec.get("workers", 1)))
        if slots is not None and spec.get("device_ids"):
            slot = slots.get()
            device = spec["device_ids"][slot % len(spec["device_ids"])]
            kwargs.pop("cuda", None)
            kwargs["providers"] = [("CUDAExecutionProvider", {"device_id": device}), "CPUExecutionProvider"]
        spec = dict(spec, kwargs=kwargs)
    try:
        _encoder = build_from_spec(spec)
    except Exception as e:  # raised with the first batch: an initializer error would only break the pool
        _encoder = e


def _encode_batch(texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(_encoder, Exception):
        raise _encoder
    vecs = _encoder.encode_documents(texts)
    return [(np.asarray(v.indices), np.asarray(v.values)) for v in vecs]


def _batches(documents: str | Iterable[str], size: int) -> Iterator[list[str]]:
    """Batches of ``size`` texts, each checked here (``_validate.check_text``, labelled
    ``text N`` by position in ``documents``) before any process encodes it."""
    from ._validate import check_text, text_batch

    it = iter(text_batch(documents))
    start = 0
    while True:
        batch = list(itertools.islice(it, size))
        if not batch:
            return
        for j, t in enumerate(batch):
            check_text(t, f"text {start + j}")
        start += len(batch)
        yield batch


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as an int: TypeError for a non-integer (as the encoders' own
    ``batch_size=`` raises, helper-115), ValueError for one below 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be a positive integer, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def embed_maybe_parallel(
    encoder: Any,
    spec: dict[str, Any],
    documents: str | Iterable[str],
    batch_size: int,
    parallel: Any,
    local: Callable[[list[str]], list[SparseEmbedding]] | None = None,
) -> Iterator[SparseEmbedding]:
    """Document vectors of ``documents``, in order, from this process or ``parallel`` workers.

    ``local`` encodes one batch in this process (default ``encoder.encode_documents``).
    Arguments are checked now; encoding starts when the generator is first advanced.
    """
    size = check_batch_size(batch_size)
    workers = resolve_parallel(parallel)
    run_local = local or encoder.encode_documents
    batches = _batches(documents, size)
    if workers is None:
        return (v for batch in batches for v in run_local(batch))
    return _parallel(spec, batches, workers, run_local)


def _parallel(
    spec: dict[str, Any],
    batches: Iterator[list[str]],
    workers: int,
    run_local: Callable[[list[str]], list[SparseEmbedding]],
) -> Iterator[SparseEmbedding]:
    head = list(itertools.islice(batches, workers))
    if len(head) <= 1:
        for batch in head:
            yield from run_local(batch)
        return
    n = len(head) if len(head) < workers else workers
    spec = dict(spec, workers=n)
    ctx = multiprocessing.get_context("spawn")
    slots = None
    if spec.get("device_ids"):
        slots = ctx.Queue()
        for i in range(n):
            slots.put(i)
    pending: deque[Future[list[tuple[np.ndarray, np.ndarray]]]] = deque()
    try:
        with ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(spec, slots)
        ) as pool:
            try:
                for batch in itertools.chain(head, batches):
                    pending.append(pool.submit(_encode_batch, batch))
                    while len(pending) >= 2 * n:
                        yield from _unpack(pending.popleft())
                while pending:
                    yield from _unpack(pending.popleft())
            finally:
                for f in pending:
                    f.cancel()
    except BrokenProcessPool as e:
        raise RuntimeError(
            f"a worker process of embed(parallel={workers}) died before finishing its batch: it was "
            "killed or ran out of memory (try fewer workers or a smaller batch_size), or it could not "
            "start (spawned workers re-import the main script: guard the script's code with "
            "`if __name__ == '__main__':`; code fed on stdin cannot be re-imported) "
            f"[{e}]"
        ) from None


def _unpack(future: Future[list[tuple[np.ndarray, np.ndarray]]]) -> Iterator[SparseEmbedding]:
    for idx, val in future.result():
        yield SparseEmbedding(indices=idx, values=val)
