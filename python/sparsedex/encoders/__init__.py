"""Text encoders: SPLADE (ONNX Runtime), BM25, fastembed's hashed BM25, plus the model registry."""

from .analysis import Analyzer
from .bm25 import Bm25Encoder, TermDictionary, bm25_doc_weights, bm25_idf, bm25_query_weights
from .fastembed_bm25 import FastembedBm25Encoder
from .providers import ProviderNotAvailableError
from .registry import ModelNotAvailableError, list_supported_models, load_encoder, resolve_model
from .splade import SpladeEncoder

__all__ = [
    "Analyzer",
    "Bm25Encoder",
    "FastembedBm25Encoder",
    "ModelNotAvailableError",
    "ProviderNotAvailableError",
    "SpladeEncoder",
    "TermDictionary",
    "bm25_doc_weights",
    "bm25_idf",
    "bm25_query_weights",
    "list_supported_models",
    "load_encoder",
    "resolve_model",
]
