"""Type stubs of the native module (rust/py). Checked by `python -m mypy.stubtest sparsedex._core`.

The engine (`Index`, one immutable segment), searches over several segments, and the store
(`Store`, `Snapshot`): the segment lifecycle of an index, in memory or in a directory. Every
file format is described in rust/core/FORMAT.md.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_BUCKET_QUERIES",
    "_after_fork",
    "Bm25Stats",
    "CancelToken",
    "ConflictError",
    "CorruptIndexError",
    "DocSet",
    "Index",
    "PendingCalibration",
    "PreparedMerge",
    "PreparedSave",
    "Reservation",
    "Snapshot",
    "SparsedexError",
    "Store",
    "algorithm_name",
    "algorithms",
    "bp_order",
    "calibration_counters",
    "clean_csr",
    "clean_row",
    "distinct_queries",
    "row_is_clean",
    "merge",
    "search_segments",
    "search_segments_batch",
    "similarity_order",
    "simd_kernel",
    "synthetic_corpus",
    "write_atomically",
    "index_dir_may_hold",
    "is_our_current",
]

_Path = str | os.PathLike[str]
_U32 = npt.NDArray[np.uint32]
_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]
_F32 = npt.NDArray[np.float32]

class SparsedexError(Exception):
    """Base class of sparsedex errors."""

class CorruptIndexError(SparsedexError):
    """An index file is truncated, corrupted, of another format version, or not an index file."""

class ConflictError(SparsedexError):
    """The index was changed by another writer meanwhile, or a call came in the wrong order."""

@final
class CancelToken:
    """Cancels the long engine calls of the thread that installed it (KeyboardInterrupt
    "cancelled" at their next check)."""

    def __init__(self) -> None: ...
    def install(self) -> None: ...
    @staticmethod
    def uninstall() -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@final
class Bm25Stats:
    """Collection statistics of a BM25 search: N, total length, df of each term (df <= N)."""

    def __new__(
        cls,
        n_docs: int,
        total_len: int,
        terms: _U32 | npt.ArrayLike,
        df: _U64 | npt.ArrayLike,
        words: list[str] | None = None,
    ) -> Bm25Stats: ...
    @staticmethod
    def sum(parts: Iterable[Bm25Stats]) -> Bm25Stats: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def words(self) -> list[str] | None: ...
    @property
    def n_docs(self) -> int: ...
    @property
    def total_len(self) -> int: ...
    @property
    def terms(self) -> _U32: ...
    @property
    def df(self) -> _U64: ...

@final
class Index:
    """One immutable engine segment (build, open, save, search, explain, get)."""

    @staticmethod
    def build(
        indptr: _U64,
        indices: _U32,
        values: _F32,
        *,
        n_terms: int | None = None,
        quantization: str = "u8",
        scale: float | None = None,
        ids_int: _I64 | None = None,
        ids_str: list[str] | None = None,
        store_vectors: bool = True,
        reorder: bool | str = True,
        bm25: tuple[float, float] | None = None,
        doc_len: _U32 | None = None,
    ) -> Index: ...
    @staticmethod
    def build_with_order(
        indptr: _U64,
        indices: _U32,
        values: _F32,
        *,
        n_terms: int | None = None,
        quantization: str = "u8",
        scale: float | None = None,
        ids_int: _I64 | None = None,
        ids_str: list[str] | None = None,
        store_vectors: bool = True,
        reorder: bool | str = True,
        bm25: tuple[float, float] | None = None,
        doc_len: _U32 | None = None,
    ) -> tuple[Index, _U32]: ...
    @staticmethod
    def open(path: _Path) -> Index: ...
    def save(self, path: _Path) -> None: ...
    def calibrate(self, indptr: _U64, indices: _U32, values: _F32) -> bool: ...
    def search(
        self,
        indices: _U32,
        values: _F32,
        k: int = 10,
        algorithm: str = "auto",
        allowed: _U64 | None = None,
        stats: Bm25Stats | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> tuple[_U32, _F32]: ...
    def search_batch(
        self,
        indptr: _U64,
        indices: _U32,
        values: _F32,
        k: int = 10,
        algorithm: str = "auto",
        threads: int | None = None,
        allowed: _U64 | None = None,
        stats: Bm25Stats | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> tuple[_I64, _F32]: ...
    def explain(
        self, indices: _U32, values: _F32, doc: int, stats: Bm25Stats | None = None, scores: str = "vectors"
    ) -> list[tuple[int, float, float, float]]: ...
    def get(self, doc: int) -> tuple[_U32, _F32]: ...
    def vectors(self) -> tuple[_U64, _U32, _F32]: ...
    def ids(self) -> _I64 | list[str] | None: ...
    def id(self, doc: int) -> int | str: ...
    def locate(self, id: int | str) -> int | None: ...
    def bm25_stats(self, terms: _U32) -> Bm25Stats: ...
    def auto_standing(self) -> tuple[str | None, list[tuple[str, float]]]: ...
    def stats(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...
    @property
    def vocabulary(self) -> int: ...
    @property
    def n_terms(self) -> int: ...
    @property
    def has_vectors(self) -> bool: ...
    def term_ids(self) -> _U32: ...

@final
class DocSet:
    """A set of allowed internal doc ids of one segment (bit d%64 of word d//64)."""

    def __new__(cls, words: _U64, n_docs: int) -> DocSet: ...
    def words(self) -> _U64: ...
    def __len__(self) -> int: ...

@final
class PreparedMerge:
    """A merged segment built by `Store.merge`, waiting for `Store.finish_merge`."""

    @property
    def name(self) -> str: ...
    @property
    def members(self) -> list[str]: ...
    def origin(self) -> tuple[_U32, _U32]: ...

@final
class Reservation:
    """A segment name reserved for a merge (`Store.reserve_segment`)."""

    @property
    def name(self) -> str: ...

@final
class PreparedSave:
    """A copy being saved by `Store.prepare_save`, waiting for `Store.finish_save`."""

    def names(self) -> list[tuple[str, str]]: ...
    @property
    def dest(self) -> str: ...

@final
class PendingCalibration:
    """A segment's calibration on queries, made (Snapshot.calibrate_pending) but not applied."""

@final
class Snapshot:
    """A commit of a store: immutable, safe to search from many threads."""

    @property
    def generation(self) -> int: ...
    @property
    def uuid(self) -> str: ...
    @property
    def directory(self) -> os.PathLike[str] | str | None: ...
    def __len__(self) -> int: ...
    def settings(self) -> dict[str, Any]: ...
    def segments(self) -> list[dict[str, Any]]: ...
    def vocabulary(self, start: int = 0) -> list[str]: ...
    def vocabulary_extends(self, file: str, size: int, crc32: int, n_terms: int) -> bool: ...
    def index(self, pos: int) -> Index: ...
    def live(self, pos: int) -> DocSet | None: ...
    def locate(self, id: int | str) -> tuple[int, int] | None: ...
    def calibrate(
        self,
        pos: int,
        indptr: npt.NDArray[np.uint64] | None = None,
        indices: _U32 | None = None,
        values: npt.NDArray[np.float32] | None = None,
    ) -> bool: ...
    def calibrate_pending(
        self, pos: int, indptr: npt.NDArray[np.uint64], indices: _U32, values: npt.NDArray[np.float32]
    ) -> PendingCalibration | None: ...
    def apply_calibration(self, pos: int, pending: PendingCalibration) -> None: ...
    def calibration(
        self, pos: int, target: float
    ) -> tuple[bool, list[tuple[int | None, int, float, float, float, float, bool]]] | None: ...
    def calibrates(self, pos: int) -> bool: ...
    def calibration_progress(self, pos: int) -> tuple[int, int]: ...
    def live_df(self, terms: _U32) -> tuple[int, npt.NDArray[np.uint64]]: ...
    def bm25_stats(self, terms: _U32) -> Bm25Stats: ...
    def search(
        self,
        indices: _U32,
        values: _F32,
        k: int = 10,
        algorithm: str = "auto",
        filters: list[DocSet | None] | None = None,
        stats: Bm25Stats | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> tuple[_U32, _U32, _F32]: ...
    def search_batch(
        self,
        indptr: _U64,
        indices: _U32,
        values: _F32,
        k: int = 10,
        algorithm: str = "auto",
        threads: int | None = None,
        filters: list[DocSet | None] | None = None,
        stats: Bm25Stats | None = None,
        target_recall: float | None = None,
        scores: str = "vectors",
    ) -> tuple[_I64, _I64, _F32]: ...
    def explain(
        self,
        indices: _U32,
        values: _F32,
        segment: int,
        doc: int,
        stats: Bm25Stats | None = None,
        with_score: bool = False,
        scores: str = "vectors",
    ) -> list[tuple[int, float, float, float]] | tuple[list[tuple[int, float, float, float]], float]: ...

@final
class Store:
    """An index's segments, deletions and commits, in memory or in a directory.

    Every write call must be made holding the directory's writer lock (its LOCK file).
    """

    @staticmethod
    def create(
        path: _Path | None = None,
        *,
        quantization: str = "u8",
        max_weight: float | None = None,
        vocab_size: int | None = None,
        bm25: tuple[float, float] | None = None,
        settings_json: str = "{}",
        reorder: bool | str = True,
    ) -> Store: ...
    @staticmethod
    def open(path: _Path) -> Store: ...
    @property
    def path(self) -> str | None: ...
    def snapshot(self) -> Snapshot: ...
    def refresh(self) -> bool: ...
    def begin_write(self) -> None: ...
    def end_write(self) -> None: ...
    def stage_add(
        self,
        indptr: _U64,
        indices: _U32,
        values: _F32,
        *,
        ids_int: _I64 | None = None,
        ids_str: list[str] | None = None,
        doc_len: _U32 | None = None,
        replace: bool = False,
    ) -> tuple[int, int]: ...
    def stage_delete(
        self, *, ids_int: _I64 | None = None, ids_str: list[str] | None = None, missing_ok: bool = False
    ) -> int: ...
    def locate(self, id: int | str) -> tuple[str, int, int] | None: ...
    def changed_file(self) -> str | None: ...
    def check_directory(self) -> None: ...
    def _hold_writer_for_test(self, held: Callable[[], object], wait: Callable[[], object]) -> None: ...
    def has_staged(self) -> bool: ...
    def next_int_id(self) -> int: ...
    def reserve_int_ids(self, next: int) -> None: ...
    def rollback(self) -> None: ...
    def release(self) -> None: ...
    def prepare_commit(
        self,
    ) -> tuple[str, _U32, tuple[int, float, float, bool, int, int] | None] | None: ...
    def write_prepared(self) -> None: ...
    def finish_commit(self, attachments: list[str] = ..., settings_json: str | None = None) -> int: ...
    def stage_terms(self, first: int, terms: list[str]) -> None: ...
    def plan_merges(self, factor: int = 10, floor_docs: int = 1000, max_deleted: float = 0.5) -> list[list[str]]: ...
    def plan_merge_to(self, max_segments: int) -> list[str]: ...
    def merge(self, names: list[str], reserved: Reservation | None = None) -> PreparedMerge: ...
    def reserve_segment(self) -> Reservation: ...
    def concat_origin(self, names: list[str]) -> tuple[_U32, _U32]: ...
    def plan_reorders(self) -> list[str]: ...
    def reorder(self, name: str) -> PreparedMerge: ...
    def finish_merge(self, prepared: PreparedMerge, attachments: list[str] = ...) -> int | None: ...
    def save_copy(self, dest: _Path) -> int: ...
    def prepare_save(self, dest: _Path, snapshot: Snapshot | None = None, copy_attachments: bool = True) -> PreparedSave: ...
    def finish_save(
        self,
        prepared: PreparedSave,
        attachments: list[str] = ...,
        settings_json: str | None = None,
        terms: list[str] | None = None,
    ) -> int: ...
    def verify_attachment(self, name: str) -> None: ...
    def collect_garbage(self) -> None: ...
    def abandon_merge(self, prepared: PreparedMerge) -> None: ...

def _after_fork() -> None: ...
def algorithms() -> list[str]: ...
def algorithm_name(name: str) -> str: ...
def calibration_counters() -> tuple[int, int, int]: ...
def simd_kernel() -> str: ...
def write_atomically(path: _Path, data: bytes) -> None: ...
def index_dir_may_hold(name: str) -> bool: ...
def is_our_current(head: bytes) -> bool: ...
def bp_order(
    indptr: _U64,
    indices: _U32,
    values: _F32,
    n_terms: int | None = None,
    *,
    init: _U32 | None = None,
    leaf_size: int | None = None,
    align: int | None = None,
    max_depth: int | None = None,
    max_iterations: int | None = None,
    deep_iterations: int | None = None,
    deep_size: int | None = None,
    min_swap_fraction: float | None = None,
    min_df: int | None = None,
    max_df_fraction: float | None = None,
    weighting: str | None = None,
    min_weight_ratio: float | None = None,
) -> _U32: ...
def similarity_order(
    indptr: _U64,
    indices: _U32,
    values: _F32,
    n_terms: int | None = None,
) -> _U32: ...
def merge(
    indexes: list[Index],
    live: list[DocSet | None],
    quantization: str | None = None,
    scale: float | None = None,
    reorder: bool | str = True,
) -> tuple[Index, _U32, _U32]: ...
def search_segments(
    indexes: list[Index],
    allowed: list[DocSet | None],
    indices: _U32,
    values: _F32,
    k: int = 10,
    algorithm: str = "auto",
    stats: Bm25Stats | None = None,
    target_recall: float | None = None,
    scores: str = "vectors",
) -> tuple[_U32, _U32, _F32]: ...
def search_segments_batch(
    indexes: list[Index],
    allowed: list[DocSet | None],
    indptr: _U64,
    indices: _U32,
    values: _F32,
    k: int = 10,
    algorithm: str = "auto",
    threads: int | None = None,
    stats: Bm25Stats | None = None,
    target_recall: float | None = None,
    scores: str = "vectors",
) -> tuple[_I64, _I64, _F32]: ...
MIN_BUCKET_QUERIES: int
def row_is_clean(indices: _U32, values: _F32, n_terms: int | None = None) -> bool: ...
def clean_row(
    indices: npt.NDArray[Any], values: npt.NDArray[Any], n_terms: int | None = None
) -> tuple[_U32, _F32] | None: ...
def clean_csr(
    indptr: _U64,
    indices: _U32,
    values: _F32,
    n_terms: int | None = None,
) -> tuple[_U64, _U32, _F32]: ...
def distinct_queries(indptr: _U64, indices: _U32, values: _F32) -> int: ...
def synthetic_corpus(
    n_docs: int,
    n_queries: int = 1000,
    seed: int = 42,
    *,
    vocab_size: int = 30522,
    doc_nnz: float = 120.0,
    query_nnz: float = 45.0,
    n_topics: int = 1000,
) -> tuple[_U64, _U32, _F32, _U64, _U32, _F32]: ...
