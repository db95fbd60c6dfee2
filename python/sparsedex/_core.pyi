"""Type stubs of the native module (rust/py). Checked by `python -m mypy.stubtest sparsedex._core`."""

import os
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = ["CorruptIndexError", "Index", "SparsedexError", "DocSet", "algorithms", "clean_csr", "search_segments", "search_segments_batch", "similarity_order", "simd_kernel", "synthetic_corpus"]

class SparsedexError(Exception): ...
class CorruptIndexError(SparsedexError): ...

@final
class Index:
    @staticmethod
    def build(
        indptr: npt.NDArray[np.uint64],
        indices: npt.NDArray[np.uint32],
        values: npt.NDArray[np.float32],
        *,
        n_terms: int | None = None,
        quantization: str = "u8",
        scale: float | None = None,
        ids_int: npt.NDArray[np.int64] | None = None,
        ids_str: list[str] | None = None,
        store_vectors: bool = True,
        reorder: bool = True,
    ) -> Index: ...
    @staticmethod
    def open(path: str | os.PathLike[str]) -> Index: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    def search(
        self,
        indices: npt.NDArray[np.uint32],
        values: npt.NDArray[np.float32],
        k: int = 10,
        algorithm: str = "auto",
        allowed: npt.NDArray[np.uint64] | None = None,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
    def search_batch(
        self,
        indptr: npt.NDArray[np.uint64],
        indices: npt.NDArray[np.uint32],
        values: npt.NDArray[np.float32],
        k: int = 10,
        algorithm: str = "auto",
        threads: int | None = None,
        allowed: npt.NDArray[np.uint64] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
    def explain(
        self, indices: npt.NDArray[np.uint32], values: npt.NDArray[np.float32], doc: int
    ) -> list[tuple[int, float, float, float]]: ...
    def get(self, doc: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
    def vectors(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
    def ids(self) -> npt.NDArray[np.int64] | list[str] | None: ...
    def stats(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...
    @property
    def n_terms(self) -> int: ...
    @property
    def has_vectors(self) -> bool: ...

def algorithms() -> list[str]: ...
def simd_kernel() -> str: ...
def similarity_order(
    indptr: npt.NDArray[np.uint64],
    indices: npt.NDArray[np.uint32],
    values: npt.NDArray[np.float32],
    n_terms: int | None = None,
) -> npt.NDArray[np.uint32]: ...
@final
class DocSet:
    def __new__(cls, words: npt.NDArray[np.uint64], n_docs: int) -> DocSet: ...
    def __len__(self) -> int: ...

def search_segments(
    indexes: list[Index],
    allowed: list[DocSet | None],
    indices: npt.NDArray[np.uint32],
    values: npt.NDArray[np.float32],
    k: int = 10,
    algorithm: str = "auto",
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def search_segments_batch(
    indexes: list[Index],
    allowed: list[DocSet | None],
    indptr: npt.NDArray[np.uint64],
    indices: npt.NDArray[np.uint32],
    values: npt.NDArray[np.float32],
    k: int = 10,
    algorithm: str = "auto",
    threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def clean_csr(
    indptr: npt.NDArray[np.uint64],
    indices: npt.NDArray[np.uint32],
    values: npt.NDArray[np.float32],
    n_terms: int | None = None,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def synthetic_corpus(
    n_docs: int,
    n_queries: int = 1000,
    seed: int = 42,
    *,
    vocab_size: int = 30522,
    doc_nnz: float = 120.0,
    query_nnz: float = 45.0,
    n_topics: int = 1000,
) -> tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float32],
]: ...
