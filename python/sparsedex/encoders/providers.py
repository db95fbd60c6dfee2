"""ONNX Runtime execution providers: CPU by default, CUDA on request, and a clear error when the
requested provider cannot run.

``providers`` is ONNX Runtime's own list (names, or ``(name, options)`` pairs), passed through
as it is; ``cuda=True`` is shorthand for ``[("CUDAExecutionProvider", {"device_id": N}),
"CPUExecutionProvider"]``. ONNX Runtime quietly falls back to the CPU when a provider fails to
start (no driver, no device, mismatched CUDA libraries); here that is an error instead, so a
job meant for a GPU never runs on the CPU unnoticed.

GPU set-up: ``pip install 'sparsedex[gpu]'`` brings ``onnxruntime-gpu``. ``onnxruntime`` and
``onnxruntime-gpu`` install the same ``onnxruntime`` module, so when both are installed the one
installed last wins; if ``onnxruntime.get_available_providers()`` lacks
``CUDAExecutionProvider`` after installing the extra, run
``pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._core import SparsedexError

__all__ = ["ProviderNotAvailableError", "resolve_providers", "check_available", "check_session"]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

_GPU_HELP = (
    "install the GPU build of ONNX Runtime: pip install 'sparsedex[gpu]' (if CUDA is still "
    "missing: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu), "
    "with a CUDA driver and libraries that match it "
    "(https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html)"
)


class ProviderNotAvailableError(SparsedexError, RuntimeError):
    """An ONNX Runtime execution provider that was asked for (e.g. CUDA) cannot run here."""


def _name(p: Any) -> str:
    if isinstance(p, str):
        return p
    if isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], dict):
        return p[0]
    raise TypeError(
        f"a provider is a name or a (name, options dict) pair, got {p!r} "
        "(e.g. 'CPUExecutionProvider' or ('CUDAExecutionProvider', {'device_id': 0}))"
    )


def resolve_providers(
    providers: Sequence[Any] | None, cuda: bool = False, device_id: int | None = None
) -> list[Any]:
    """The provider list for an ``InferenceSession``: ``providers`` as given, the CUDA
    shorthand for ``cuda=True``, else ``["CPUExecutionProvider"]``."""
    if cuda and providers:
        raise ValueError("pass cuda=True or providers=[...], not both")
    if device_id is not None and not cuda:
        raise ValueError("device_id applies with cuda=True only")
    if cuda:
        return [(CUDA, {"device_id": int(device_id or 0)}), CPU]
    if providers is None:
        return [CPU]
    if isinstance(providers, str):
        raise TypeError(f"providers is a list of providers, not a str: write providers=[{providers!r}]")
    out = list(providers)
    if not out:
        raise ValueError("providers is empty: leave it out for the CPU, or name at least one provider")
    for p in out:
        _name(p)
    return out


def check_available(providers: Sequence[Any], available: Sequence[str]) -> None:
    """Raise :class:`ProviderNotAvailableError` when a provider is not in this build of ONNX Runtime."""
    missing = [n for n in (_name(p) for p in providers) if n not in available]
    if not missing:
        return
    have = ", ".join(available) or "none"
    if CUDA in missing:
        raise ProviderNotAvailableError(
            f"CUDA was asked for (cuda=True or {CUDA} in providers) but this onnxruntime has no "
            f"{CUDA} (available: {have}); {_GPU_HELP}"
        )
    raise ProviderNotAvailableError(
        f"execution provider(s) {', '.join(missing)} are not in this onnxruntime build (available: {have})"
    )


def check_session(session: Any, providers: Sequence[Any]) -> None:
    """Raise when ONNX Runtime dropped a requested accelerator provider while creating ``session``
    (it falls back to the CPU with only a logged warning)."""
    active = list(session.get_providers())
    dropped = [n for n in (_name(p) for p in providers) if n != CPU and n not in active]
    if not dropped:
        return
    if CUDA in dropped:
        raise ProviderNotAvailableError(
            f"CUDA was asked for but ONNX Runtime could not start {CUDA} (no GPU visible, or the "
            f"CUDA/cuDNN libraries do not match this onnxruntime-gpu; it would have run on "
            f"{', '.join(active)}): check nvidia-smi and "
            "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements"
        )
    raise ProviderNotAvailableError(
        f"ONNX Runtime could not start {', '.join(dropped)} (running providers: {', '.join(active)})"
    )
