"""Known models and where their files come from.

A model is found by name in :data:`SUPPORTED_MODELS` (the bundled ``splade-tiny``,
``prithivida/Splade_PP_en_v1`` downloaded from the Hugging Face hub, and ``Qdrant/bm25``,
fastembed's hashed BM25, which has no model file), or given as a local
directory holding ``model.onnx`` and ``tokenizer.json`` (optionally ``config.json``,
``tokenizer_config.json``, ``special_tokens_map.json``).

Nothing is ever written into the package directory: downloads go to the Hugging Face cache
(``cache_dir``, else ``SPARSEDEX_CACHE_DIR``, else the hub's default cache).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .._core import SparsedexError


def snapshot_download(*args: Any, **kwargs: Any) -> str:
    """huggingface_hub's ``snapshot_download``, imported on first use (importing
    huggingface_hub costs a quarter of a second that most uses never need)."""
    try:
        from huggingface_hub import snapshot_download as hub_snapshot_download
    except ImportError:  # pragma: no cover - a hard dependency, but keep the error readable
        raise ModelNotAvailableError("downloading models needs huggingface_hub (pip install huggingface_hub)") from None
    return str(hub_snapshot_download(*args, **kwargs))

__all__ = [
    "ModelDescription",
    "ModelNotAvailableError",
    "ResolvedModel",
    "SUPPORTED_MODELS",
    "HUB_FILES",
    "list_supported_models",
    "resolve_model",
    "bundled_model_dir",
    "load_encoder",
]

#: Files fetched from a hub repo; model.onnx and tokenizer.json are required.
HUB_FILES = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
]
REQUIRED_FILES = ["model.onnx", "tokenizer.json"]


class ModelNotAvailableError(SparsedexError, FileNotFoundError):
    """The model's files are not on this machine and could not be downloaded."""


@dataclass(frozen=True)
class ModelDescription:
    """One supported model (the fields of fastembed's ``SparseModelDescription``)."""

    model: str
    vocab_size: int
    description: str
    license: str
    size_in_GB: float
    sources: dict[str, str]
    model_file: str = "model.onnx"
    aliases: tuple[str, ...] = field(default=())
    #: "splade" (an ONNX model run by SpladeEncoder) or "fastembed-bm25" (no model file:
    #: FastembedBm25Encoder, hashed term ids).
    kind: str = "splade"
    #: The index must apply IDF at query time (fastembed's field of the same name).
    requires_idf: bool = False


SUPPORTED_MODELS: list[ModelDescription] = [
    ModelDescription(
        model="splade-tiny",
        vocab_size=30522,
        description=(
            "SPLADE-tiny-msmarco (BERT-MLM, 2 layers, hidden 128), bundled in the package: "
            "works offline right after install; below BM25 on classic collections."
        ),
        license="apache-2.0",
        size_in_GB=0.018,
        sources={"bundled": "sparsedex/models/splade-tiny"},
    ),
    ModelDescription(
        model="prithivida/Splade_PP_en_v1",
        vocab_size=30522,
        description="Independent Implementation of SPLADE++ Model for English.",
        license="apache-2.0",
        size_in_GB=0.532,
        sources={"hf": "Qdrant/Splade_PP_en_v1"},
        aliases=("prithvida/Splade_PP_en_v1", "Qdrant/Splade_PP_en_v1", "Qdrant/SPLADE_PP_en_v1"),
    ),
    ModelDescription(
        model="Qdrant/bm25",
        vocab_size=0,
        description=(
            "BM25 as sparse embeddings, as fastembed computes them (Snowball stemming, mmh3-hashed "
            "term ids, k=1.2, b=0.75, avg_len=256); the index applies IDF at query time."
        ),
        license="apache-2.0",
        size_in_GB=0.0,
        sources={"bundled": "sparsedex/encoders/stopwords"},
        model_file="",
        kind="fastembed-bm25",
        requires_idf=True,
    ),
]


def list_supported_models() -> list[dict[str, Any]]:
    """The supported models as dicts, like fastembed's ``list_supported_models()``."""
    out = []
    for d in SUPPORTED_MODELS:
        item = asdict(d)
        item["aliases"] = list(d.aliases)
        out.append(item)
    return out


def _find_description(name: str) -> ModelDescription | None:
    low = name.lower()
    for d in SUPPORTED_MODELS:
        if low == d.model.lower() or low in (a.lower() for a in d.aliases):
            return d
    return None


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are: ``root`` is a directory path (or importlib Traversable)."""

    name: str  # registry name, or the absolute directory path
    root: Any  # pathlib.Path or importlib.resources Traversable
    description: ModelDescription | None
    source: str  # "bundled" | "hf" | "local"

    def file(self, name: str) -> Any:
        return self.root.joinpath(name)

    def has(self, name: str) -> bool:
        return bool(self.root.joinpath(name).is_file())


def bundled_model_dir(name: str = "splade-tiny") -> Any:
    """The bundled model directory as an importlib.resources Traversable."""
    return resources.files("sparsedex").joinpath("models").joinpath(name)


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in {"1", "true", "yes", "on"}


def _how_to_provide(desc: ModelDescription) -> str:
    repo = desc.sources.get("hf", "?")
    files = ", ".join(HUB_FILES)
    return (
        f"To use it offline, fetch the files {files} of the hub repo {repo} on a machine "
        f"with network access (e.g. `huggingface-cli download {repo} {' '.join(HUB_FILES)} "
        f"--local-dir DIR`), copy DIR here and pass it: SpladeEncoder('DIR'). "
        f"The bundled model 'splade-tiny' works without any download."
    )


def _hub_download(desc: ModelDescription, cache_dir: str | None, local_files_only: bool) -> Path:
    repo = desc.sources["hf"]
    cache = cache_dir or os.environ.get("SPARSEDEX_CACHE_DIR") or None
    offline = local_files_only or _truthy(os.environ.get("HF_HUB_OFFLINE"))
    errors: list[str] = []
    attempts = [True] if offline else [False, True]  # online, then whatever is cached
    for only_local in attempts:
        try:
            path = Path(
                snapshot_download(
                    repo,
                    allow_patterns=HUB_FILES,
                    cache_dir=cache,
                    local_files_only=only_local,
                )
            )
        except Exception as e:  # network errors, offline cache misses, auth errors, ...
            errors.append(f"{type(e).__name__}: {e}".splitlines()[0][:300])
            continue
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            errors.append(f"downloaded snapshot {path} lacks {', '.join(missing)}")
            continue
        return path
    why = "offline (HF_HUB_OFFLINE=1 or local_files_only) and not in the cache" if offline else (
        "download failed"
    )
    raise ModelNotAvailableError(
        f"model {desc.model!r} is not available: {why} ({'; '.join(errors)}). "
        + _how_to_provide(desc)
    )


def resolve_model(
    model: str | os.PathLike[str],
    cache_dir: str | None = None,
    local_files_only: bool = False,
) -> ResolvedModel:
    """Find a model's files: a registry name (bundled or downloaded) or a local directory."""
    if isinstance(model, str):
        desc = _find_description(model)
        if desc is not None and desc.kind != "splade":
            raise ModelNotAvailableError(
                f"{desc.model!r} is not an ONNX model but fastembed's hashed BM25: use "
                f"sparsedex.SparseTextEmbedding({desc.model!r}) or "
                "sparsedex.encoders.FastembedBm25Encoder()"
            )
        if desc is not None:
            if "bundled" in desc.sources:
                root = bundled_model_dir(desc.model)
                if not root.joinpath(desc.model_file).is_file():
                    raise ModelNotAvailableError(
                        f"the bundled model {desc.model!r} is missing from the installed package "
                        f"({root}); reinstall sparsedex"
                    )
                return ResolvedModel(desc.model, root, desc, "bundled")
            return ResolvedModel(
                desc.model, _hub_download(desc, cache_dir, local_files_only), desc, "hf"
            )
    path = Path(os.fspath(model)).expanduser()
    if path.is_dir():
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise ModelNotAvailableError(
                f"model directory {path} lacks {', '.join(missing)} (a model directory holds "
                "model.onnx and tokenizer.json, and optionally config.json, "
                "tokenizer_config.json and special_tokens_map.json)"
            )
        return ResolvedModel(str(path.resolve()), path.resolve(), None, "local")
    if path.is_file() and path.suffix == ".onnx":
        raise ModelNotAvailableError(
            f"{path} is a file: pass the directory that holds model.onnx and tokenizer.json"
        )
    known = ", ".join(repr(d.model) for d in SUPPORTED_MODELS)
    raise ModelNotAvailableError(
        f"unknown model {os.fspath(model)!r}: not a supported model ({known}) "
        "and not a directory holding model.onnx and tokenizer.json"
    )


def load_encoder(identity: dict[str, Any], **kwargs: Any) -> Any:
    """Re-create an encoder from its ``identity()`` dict (as saved with an index)."""
    kind = identity.get("kind")
    if kind == "splade":
        from .splade import SpladeEncoder

        return SpladeEncoder.from_identity(identity, **kwargs)
    if kind == "bm25":
        from .bm25 import Bm25Encoder

        return Bm25Encoder.from_identity(identity, **kwargs)
    if kind == "fastembed-bm25":
        from .fastembed_bm25 import FastembedBm25Encoder

        return FastembedBm25Encoder.from_identity(identity, **kwargs)
    raise ValueError(f"unknown encoder kind {kind!r} in identity {identity!r}")
