"""Text encoders: SPLADE (ONNX Runtime) and BM25, plus the model registry."""

from .analysis import Analyzer
from .bm25 import Bm25Encoder, TermDictionary, bm25_doc_weights, bm25_idf, bm25_query_weights
from .registry import ModelNotAvailableError, list_supported_models, load_encoder, resolve_model
from .splade import SpladeEncoder

__all__ = [
    "Analyzer",
    "Bm25Encoder",
    "ModelNotAvailableError",
    "SpladeEncoder",
    "TermDictionary",
    "bm25_doc_weights",
    "bm25_idf",
    "bm25_query_weights",
    "list_supported_models",
    "load_encoder",
    "resolve_model",
]
