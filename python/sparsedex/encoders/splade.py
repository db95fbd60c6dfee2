"""SPLADE encoder on ONNX Runtime and HF tokenizers, behaving as fastembed's ``SpladePP``.

Vector of a text = max over its tokens of ``log(1 + relu(logits)) * attention_mask``; the
non-zero entries form the sparse vector (no threshold, no special-token removal), with
the text truncated to ``max_length`` tokens and ``token_type_ids`` all zero, as fastembed does.

Memory. The model's output is ``logits[batch, seq, vocab]`` (30,522 floats per token). It is
never returned to Python: the pooling is appended to the ONNX graph when the model is loaded
(in memory, nothing is written to disk, and without the ``onnx`` package: see
:mod:`sparsedex.encoders.onnx_graph`), so a session call returns ``[batch, vocab]``. Since
``f(x) = log(1 + relu(x))`` is monotone non-decreasing and ``f >= 0``,
``max_t mask_t * f(x_t) == f(max_{t: mask_t = 1} x_t)`` exactly, so the graph takes the max
of the logits over unmasked tokens first (padding set to -inf by a broadcast add) and applies
relu / +1 / log to ``[batch, vocab]`` only. ORT still materialises ``logits`` for one call, so
texts are sorted by length and sent in sub-batches whose padded size stays under
``token_budget`` tokens: ORT's working memory is a few ``token_budget * vocab * 4`` bytes
(measured with splade-tiny, budget 1024: ~0.5-0.6 GB above the loaded model) whatever the
batch size or text length. Keep ORT's memory arena on: without it every call maps and
zeroes fresh pages and encoding runs 3-4x slower.

Cost bounded by the model window. Only the first ``max_length`` tokens of a text reach the
model, so only a window of the text is tokenised (:class:`TextWindow`): a text longer than
``16 * max_length`` characters is cut there (for a left-truncating tokenizer: its end) and
tokenised; if the window holds more than the tokens kept, all of them from words that end
well inside the window, those tokens are exactly the ones the whole text would give, and the
window is used; otherwise the window grows fourfold and is tried again, up to the whole
text. Time and memory per text are therefore bounded by the window, whatever the text's
length, and the vectors are identical to tokenising the whole text (tested on texts of every
size and on tokenizers of each family: WordPiece, byte-level BPE, SentencePiece Unigram).

One numerical difference to fastembed: ONNX has no ``log1p``; ``log(1 + x)`` in float32
differs from ``log1p(x)`` by at most ~6e-8 absolute, and a pooled logit in (0, 6e-8) becomes
0 (dropped) instead of a ~1e-8 weight.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validate import check_int, check_text, iter_texts, max_threads, text_batch
from ..vectors import SparseEmbedding, as_sparse_embedding
from .onnx_graph import (
    ELEM_BOOL,
    ELEM_FLOAT,
    ELEM_INT32,
    ELEM_INT64,
    OnnxFormatError,
    read_interface,
    with_pooling,
)
from .providers import ProviderNotAvailableError, check_available, check_session, resolve_providers
from .registry import ModelNotAvailableError, ResolvedModel, list_supported_models, resolve_model

__all__ = [
    "SpladeEncoder",
    "TextWindow",
    "ModelNotAvailableError",
    "ProviderNotAvailableError",
    "list_supported_models",
    "add_pooling_to_graph",
]

_POOLED = "sparsedex_sparse_vector"
_EXTRA_MASK = "sparsedex_attention_mask"
_IDS_NAMES = ("input_ids",)
_MASK_NAMES = ("attention_mask", "input_mask")
_TYPE_NAMES = ("token_type_ids", "segment_ids")


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 1


def add_pooling_to_graph(model: Any, logits: str, mask: str, output: str = _POOLED) -> Any:
    """Append SPLADE max-pooling to an ONNX ModelProto (in place; also returned).

    Adds ``output[batch, vocab] = log(1 + relu(max_{t: mask[b,t] != 0} logits[b, t, :]))`` and
    makes it the graph's only output. ``mask`` must be a graph input ``[batch, seq]``. Needs
    the ``onnx`` package; the encoder itself uses :func:`sparsedex.encoders.onnx_graph.with_pooling`,
    which appends the same nodes on the serialized bytes (used here for models with external
    data, and in the tests as the reference).
    """
    from onnx import TensorProto, helper, numpy_helper

    opset = _opset(model)
    g = model.graph
    p = "sparsedex_pool_"

    def const(name: str, arr: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(arr, name=p + name))
        return p + name

    zero = const("zero", np.array(0.0, dtype=np.float32))
    neg_inf = const("neg_inf", np.array(-np.inf, dtype=np.float32))
    one = const("one", np.array(1.0, dtype=np.float32))
    nodes = [helper.make_node("Cast", [mask], [p + "mask_bool"], to=TensorProto.BOOL)]
    if opset >= 13:
        axes_last = const("axes_last", np.array([-1], dtype=np.int64))
        nodes.append(helper.make_node("Unsqueeze", [p + "mask_bool", axes_last], [p + "mask3"]))
    else:
        nodes.append(helper.make_node("Unsqueeze", [p + "mask_bool"], [p + "mask3"], axes=[-1]))
    nodes += [
        # bias[b, t, 1] = 0 for real tokens, -inf for padding; logits + 0 == logits exactly
        helper.make_node("Where", [p + "mask3", zero, neg_inf], [p + "bias"]),
        helper.make_node("Add", [logits, p + "bias"], [p + "masked"]),
    ]
    if opset >= 18:
        axes_seq = const("axes_seq", np.array([1], dtype=np.int64))
        nodes.append(
            helper.make_node("ReduceMax", [p + "masked", axes_seq], [p + "max"], keepdims=0)
        )
    else:
        nodes.append(helper.make_node("ReduceMax", [p + "masked"], [p + "max"], axes=[1], keepdims=0))
    nodes += [
        helper.make_node("Relu", [p + "max"], [p + "relu"]),
        helper.make_node("Add", [p + "relu", one], [p + "plus1"]),
        helper.make_node("Log", [p + "plus1"], [output]),
    ]
    g.node.extend(nodes)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", "vocab"]))
    return model


def _pooled_with_onnx(r: ResolvedModel, raw: bytes, logits: str, mask: str, add_mask: bool,
                      model_file: str = "model.onnx") -> tuple[bytes, str]:
    """The pooled graph of a model whose weights live in external data files (those need the
    ``onnx`` package to be read in; models over 2 GB are saved that way), and the sha256 of
    those weights: ``model.onnx``'s own hash leaves them out, so another model of the same
    graph file was taken as the index's (helper-141)."""
    try:
        import onnx
        from onnx import TensorProto, helper
        from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model
    except ImportError:
        raise ImportError(
            f"model {r.name!r} keeps its weights in external data files; loading such a model "
            "needs the onnx package: pip install onnx"
        ) from None
    if not isinstance(r.root, Path):
        raise ValueError(f"model {r.name!r} has external data but is not in a directory")
    proto = onnx.load_from_string(raw)
    tensors = [t for t in proto.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    external = [t.name for t in tensors]
    # a data file not copied with model.onnx: onnx's own ValidationError named neither the model
    # directory nor that model.onnx keeps its weights there (helper-145)
    files = list(dict.fromkeys(ExternalDataInfo(t).location for t in tensors))
    missing = [f for f in files if not (r.root / f).is_file()]
    if missing:
        raise ModelNotAvailableError(
            f"model directory {r.root} lacks {', '.join(missing)}: its {model_file} keeps its weights in external "
            f"data ({', '.join(files)}); copy {'it' if len(files) == 1 else 'them'} into the directory with {model_file}"
        )
    try:
        load_external_data_for_model(proto, str(r.root))
    except Exception as e:  # noqa: BLE001 - onnx's ValidationError (a path out of the directory, ...)
        raise ValueError(f"model directory {r.root}: the external data of {model_file} cannot be read ({e})") from None
    h = hashlib.sha256()
    by_name = {t.name: t for t in proto.graph.initializer}
    for name in external:  # graph order: the same files in the same places hash alike
        h.update(name.encode())
        h.update(by_name[name].raw_data)
    if add_mask:
        proto.graph.input.append(helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"]))
    add_pooling_to_graph(proto, logits, mask)
    return bytes(proto.SerializeToString()), h.hexdigest()


def _read_json(resolved: ResolvedModel, name: str) -> dict[str, Any]:
    if not resolved.has(name):
        return {}
    try:
        data = json.loads(resolved.file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{name} of model {resolved.name!r} is not valid JSON: {e}") from None
    return data if isinstance(data, dict) else {}


def _valid_len(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000 else None


class TextWindow:
    """Tokenise only the part of each text a model with a ``max_length`` window sees.

    ``encode(texts)`` returns, for every text, exactly the encoding
    ``tokenizer.encode(text)`` returns (truncation on, at ``max_length`` tokens, special
    tokens added), while tokenising at most a window of the text (see the module docstring):
    the first try cuts the text at ``chars_per_token * max_length`` characters. The window
    is accepted when it yields more content tokens than are kept and the last kept token
    (the first one, truncating from the left) belongs to a word that ends at least
    ``margin`` characters inside the window, where ``margin`` exceeds twice the longest added
    token: then no word, added token or normaliser context that the cut touched can reach a
    kept token. Otherwise the window grows fourfold, up to the whole text.

    ``tokenizer``: a ``tokenizers.Tokenizer`` with truncation set (``max_length``, direction)
    and padding off; it is copied, not changed.
    """

    def __init__(self, tokenizer: Any, max_length: int, chars_per_token: int = 16) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = tokenizer
        raw = Tokenizer.from_str(tokenizer.to_str())
        raw.no_truncation()
        raw.no_padding()
        self._raw = raw
        self.max_length = int(max_length)
        self.budget = self.max_length - tokenizer.num_special_tokens_to_add(False)
        self.direction = (tokenizer.truncation or {}).get("direction", "right")
        self.chars = max(1, int(chars_per_token) * self.max_length)
        added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
        self.margin = 2 * max((len(a) for a in added), default=0) + 16

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """One ``tokenizers.Encoding`` per text, as ``tokenizer.encode_batch(texts)`` gives."""
        out: list[Any] = [None] * len(texts)
        short = [i for i, t in enumerate(texts) if len(t) <= self.chars or self.budget < 1]
        if short:
            for i, e in zip(short, self.tokenizer.encode_batch([texts[i] for i in short])):
                out[i] = e
        pending = [i for i, t in enumerate(texts) if out[i] is None]
        cut = self.chars
        while pending:
            windows = [self._cut(texts[i], cut) for i in pending]
            encs = self._raw.encode_batch(windows, add_special_tokens=False)
            later = []
            for i, w, e in zip(pending, windows, encs):
                if len(w) == len(texts[i]) or self._complete(e, len(w)):
                    out[i] = self.tokenizer.post_process(e)
                else:
                    later.append(i)
            pending = later
            cut *= 4
        return out

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids of each text (truncated, special tokens included)."""
        return [e.ids for e in self.encode(texts)]

    def _cut(self, text: str, n: int) -> str:
        if n >= len(text):
            return text
        return text[:n] if self.direction == "right" else text[len(text) - n :]

    def _complete(self, enc: Any, length: int) -> bool:
        """Whether the kept tokens of ``enc`` (the window's encoding, no special tokens) are
        the whole text's: more tokens than kept, and the kept ones clear of the cut."""
        n, b = len(enc.ids), self.budget
        if n <= b:
            return False
        words, offsets = enc.word_ids, enc.offsets
        if self.direction == "right":
            k, edge = b - 1, n - 1
            if words[k] is None or words[edge] is None or not words[k] < words[edge]:
                return False
            return bool(offsets[k][1] + self.margin <= length)
        k, edge = n - b, 0
        if words[k] is None or words[edge] is None or not words[edge] < words[k]:
            return False
        return bool(offsets[k][0] >= self.margin)


class SpladeEncoder:
    """Text to SPLADE sparse vectors (fastembed SpladePP semantics) on ONNX Runtime.

    Parameters
    ----------
    model:
        ``"splade-tiny"`` (bundled, default), ``"prithivida/Splade_PP_en_v1"`` (downloaded from
        the hub repo ``Qdrant/Splade_PP_en_v1`` into the Hugging Face cache), or a directory
        holding ``model.onnx`` and ``tokenizer.json``.
    max_length:
        Texts are truncated to this many tokens (special tokens included); capped at the
        model's own limit (tokenizer_config.json ``model_max_length``); at least one more than
        the special tokens the model adds (3 for BERT's ``[CLS]`` and ``[SEP]``). Only a window of a
        long text is tokenised (see :class:`TextWindow`), with identical vectors.
    threads:
        ORT intra-op threads; ``None`` uses every core this process may run on.
    batch_size:
        Most texts per ONNX call.
    token_budget:
        Most padded tokens (texts x longest text) per ONNX call; bounds ORT's
        ``[tokens, vocab]`` intermediate. Raised to ``max_length`` if smaller.
    cache_dir, local_files_only:
        Where hub downloads go; ``local_files_only`` (or ``HF_HUB_OFFLINE=1``) never downloads.
    progress:
        ``None``: a bar on stderr for long runs when it is a terminal; ``True``/``False`` force it;
        or a tqdm-like object with ``update(n)``, advanced by the number of texts of every
        ONNX batch (the bar then shows a live rate) and never closed here.
    providers:
        ONNX Runtime execution providers, passed through as given: names or
        ``(name, options)`` pairs, e.g. ``[("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider"]``. Default: ``["CPUExecutionProvider"]``.
    cuda:
        Shorthand for ``providers=[("CUDAExecutionProvider", {"device_id": 0}),
        "CPUExecutionProvider"]`` (needs ``pip install 'sparsedex[gpu]'``).

    Raises
    ------
    ModelNotAvailableError
        The model's files are not here and cannot be downloaded.
    ProviderNotAvailableError
        A requested provider (CUDA) is not in this onnxruntime build, or ONNX Runtime could not
        start it (it would otherwise fall back to the CPU without telling).
    ValueError
        Bad arguments, or a model this encoder cannot drive (no ``input_ids`` input, inputs
        it cannot fill, not an ONNX file). When encoding: a text that is not valid Unicode (a
        lone surrogate such as ``"\\ud800"``), named (``text 3``) before any text is encoded.
    TypeError
        When encoding: a text that is not a ``str`` (``None``, a number), named likewise.
    """

    kind = "splade"

    def __init__(
        self,
        model: str | os.PathLike[str] = "splade-tiny",
        *,
        max_length: int = 512,
        threads: int | None = None,
        batch_size: int = 64,
        token_budget: int = 1024,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        progress: bool | None = None,
        providers: Sequence[Any] | None = None,
        cuda: bool = False,
    ) -> None:
        max_length = check_int(max_length, "max_length", 1, 1_000_000)  # at least the model's specials + 1: below
        batch_size = check_int(batch_size, "batch_size", 1, 1 << 20)
        token_budget = check_int(token_budget, "token_budget", 1, 1 << 30)
        if threads is not None:
            threads = check_int(threads, "threads", 1, max_threads())
        self._resolved = resolve_model(model, cache_dir=cache_dir, local_files_only=local_files_only)
        self.model_name = self._resolved.name
        self.batch_size = int(batch_size)
        self.progress = progress
        self.threads = int(threads) if threads else _available_cores()
        self._model_sha256: str | None = None
        self._data_sha256: str | None = None  # of the weights in external data files, if any
        self._load_tokenizer(max_length)
        self.token_budget = max(int(token_budget), self.max_length)
        self._load_session(providers, cuda)

    # loading -----------------------------------------------------------------------------
    def _load_tokenizer(self, max_length: int) -> None:
        from tokenizers import AddedToken, Tokenizer

        r = self._resolved
        tok_cfg = _read_json(r, "tokenizer_config.json")
        self._config = _read_json(r, "config.json")
        special = _read_json(r, "special_tokens_map.json")
        tok_text = r.file("tokenizer.json").read_text(encoding="utf-8")
        try:
            tok = Tokenizer.from_str(tok_text)
        except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception on a bad file
            why = " ".join(str(e).split())[:200] or type(e).__name__
            try:  # valid JSON of another shape: say what is missing, not where serde stopped
                doc = json.loads(tok_text)
            except ValueError:
                doc = None
            missing = sorted({"model", "normalizer", "pre_tokenizer"} - doc.keys()) if isinstance(doc, dict) else []
            if missing:
                why = f"valid JSON, but with no {', '.join(repr(m) for m in missing)} section"
            elif doc is not None and not isinstance(doc, dict):
                why = f"valid JSON, but {type(doc).__name__}, not an object"
            raise ValueError(
                f"tokenizer.json of model {r.name!r} is not a readable Hugging Face tokenizer file ({why})"
            ) from None
        limits = [
            x
            for x in (
                _valid_len(tok_cfg.get("model_max_length")),
                _valid_len(tok_cfg.get("max_length")),
            )
            if x is not None
        ]
        if not limits and _valid_len(self._config.get("max_position_embeddings")):
            limits = [self._config["max_position_embeddings"]]
        self.max_length = min([int(max_length), *limits])
        n_special = tok.num_special_tokens_to_add(False)
        if self.max_length <= n_special:
            # a window of only the special tokens: every text would encode to the same vector
            cap = "" if self.max_length == int(max_length) else f" (capped at the model's limit {self.max_length})"
            raise ValueError(
                f"max_length must leave room for text: model {r.name!r} adds {n_special} special tokens to "
                f"every text, so max_length must be at least {n_special + 1}, got {int(max_length)}{cap}"
            )
        trunc = tok.truncation or {}
        tok.enable_truncation(
            max_length=self.max_length,
            direction=tok_cfg.get("truncation_side") or trunc.get("direction", "right"),
        )
        for value in special.values():  # as fastembed: make sure special tokens are special
            for t in value if isinstance(value, list) else [value]:
                if isinstance(t, str):
                    tok.add_special_tokens([t])
                elif isinstance(t, dict):
                    tok.add_special_tokens([AddedToken(**t)])
        pad = tok.padding or {}
        pad_token = pad.get("pad_token") or tok_cfg.get("pad_token") or "[PAD]"
        pad_id = pad.get("pad_id", self._config.get("pad_token_id"))
        if pad_id is None:
            pad_id = tok.token_to_id(pad_token)
        self._pad_id = int(pad_id) if pad_id is not None else 0
        tok.no_padding()  # padding is done per sub-batch here
        self._tokenizer = tok
        self._window = TextWindow(tok, self.max_length)

    def _load_session(self, providers: Sequence[Any] | None, cuda: bool = False) -> None:
        """Read the model's interface, append the pooling (onnx_graph: no ``onnx`` needed) and
        start an ONNX Runtime session on the requested providers (see providers.py)."""
        import onnxruntime as ort

        plist = resolve_providers(providers, cuda)
        check_available(plist, ort.get_available_providers())
        r = self._resolved
        model_file = r.description.model_file if r.description else "model.onnx"
        raw = r.file(model_file).read_bytes()
        self._model_sha256 = hashlib.sha256(raw).hexdigest()
        try:
            info = read_interface(raw)
        except OnnxFormatError as e:
            raise ValueError(f"{model_file} of model {r.name!r} is not a readable ONNX model: {e}") from None

        inputs = {i.name: i for i in info.inputs}
        self._ids_name = next((n for n in _IDS_NAMES if n in inputs), None)
        if self._ids_name is None:
            raise ValueError(
                f"model {r.name!r} has no input_ids input (inputs: {sorted(inputs)})"
            )
        self._mask_name = next((n for n in _MASK_NAMES if n in inputs), None)
        self._type_name = next((n for n in _TYPE_NAMES if n in inputs), None)
        unknown = set(inputs) - {self._ids_name, self._mask_name, self._type_name}
        if unknown:
            raise ValueError(f"model {r.name!r} has inputs this encoder cannot fill: {sorted(unknown)}")
        self._input_dtypes = {name: _onnx_int_dtype(vi.elem_type) for name, vi in inputs.items()}

        outputs = info.outputs
        out = next((o for o in outputs if o.name == "logits"), None)
        if out is None:
            rank3 = [o for o in outputs if o.shape is not None and len(o.shape) == 3]
            out = rank3[0] if rank3 else (outputs[0] if outputs else None)
        if out is None:
            raise ValueError(f"model {r.name!r} has no output")
        if out.shape is not None and len(out.shape) != 3:
            # helper-137: a [batch, seq] output was pooled into vectors of nonsense terms
            raise ValueError(
                f"model {r.name!r}: output {out.name!r} has {len(out.shape)} dimensions; a SPLADE model outputs "
                "[batch, sequence, vocabulary] logits"
            )
        last = out.shape[-1] if out.shape else None
        n_tokens = self._tokenizer.get_vocab_size(with_added_tokens=False)
        if isinstance(last, int) and 0 < last < n_tokens:
            # a warning, not an error: toy models of few terms over a real tokenizer are legitimate
            # in tests; a real model of another tokenizer is what this catches (helper-137)
            warnings.warn(
                f"model {r.name!r}: output {out.name!r} scores {last} terms but its tokenizer has {n_tokens} tokens: "
                "term ids will not be token ids, and explain() will name the wrong tokens (are model.onnx and "
                "tokenizer.json of one model?)",
                stacklevel=3,
            )
        vocab = last if isinstance(last, int) and last > 0 else None
        if vocab is None:
            vocab = _valid_len(self._config.get("vocab_size")) or self._tokenizer.get_vocab_size(
                with_added_tokens=True
            )
        self._vocab_size = int(vocab)

        add_mask = self._mask_name is None
        self._pool_mask_name = _EXTRA_MASK if add_mask else str(self._mask_name)
        if add_mask:
            self._input_dtypes[_EXTRA_MASK] = np.dtype(np.int64)
        if info.external_data:
            serialized, self._data_sha256 = _pooled_with_onnx(r, raw, out.name, self._pool_mask_name, add_mask,
                                                              model_file)
        else:
            serialized = with_pooling(raw, out.name, self._pool_mask_name, add_mask_input=add_mask, interface=info)
        del raw

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        # fatal only: ONNX Runtime also logs the errors it raises (a model's output that cannot be
        # pooled printed its own red line before sparsedex's message: helper-141)
        so.log_severity_level = 4
        self._providers = plist
        self._session = ort.InferenceSession(serialized, sess_options=so, providers=plist)
        check_session(self._session, plist)

    @property
    def providers(self) -> list[str]:
        """The execution providers the ONNX Runtime session runs on, first choice first."""
        return list(self._session.get_providers())

    # properties ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def tokenizer(self) -> Any:
        """The HF ``tokenizers.Tokenizer`` (truncation set, padding off)."""
        return self._tokenizer

    @property
    def input_names(self) -> list[str]:
        """The ONNX inputs this encoder feeds."""
        return [i.name for i in self._session.get_inputs()]

    def identity(self) -> dict[str, Any]:
        """What re-creates this encoder (saved with an index): kind, model, sha256, max_length."""
        return {
            "kind": self.kind,
            "model": self.model_name,
            "source": self._resolved.source,
            "model_sha256": self._model_sha256,
            "max_length": self.max_length,
            "vocab_size": self.vocab_size,
            # only for models with external data: the identity of other models is unchanged
            **({"data_sha256": self._data_sha256} if self._data_sha256 else {}),
        }

    @classmethod
    def from_identity(
        cls, identity: dict[str, Any], *, verify: bool = True, **kwargs: Any
    ) -> SpladeEncoder:
        """Re-create an encoder from :meth:`identity`; with ``verify`` the model's sha256 must match."""
        if identity.get("kind", "splade") != "splade":
            raise ValueError(f"not a SPLADE encoder identity: {identity!r}")
        kwargs.setdefault("max_length", identity.get("max_length", 512))
        enc = cls(identity["model"], **kwargs)
        for key, have in (("model_sha256", enc._model_sha256), ("data_sha256", enc._data_sha256)):
            want = identity.get(key)
            if verify and want and want != have:
                what = "sha256" if key == "model_sha256" else "external data's sha256"
                raise ValueError(
                    f"model {identity['model']!r} has changed: {what} {have} differs from "
                    f"the saved {want}; its vectors would not match the index (pass verify=False to "
                    "load it anyway)"
                )
        return enc

    # encoding --------------------------------------------------------------------------
    def encode_documents(self, texts: str | Iterable[str], *, blank_as_empty: bool = False) -> list[SparseEmbedding]:
        """One sparse vector per text (a single string counts as one text), as fastembed gives
        it. ``blank_as_empty``: a text without a token of its own (empty, whitespace, characters
        the tokenizer drops) gets the empty vector, as :meth:`encode_queries` gives blank
        queries, instead of the model's weights of its special tokens; :class:`SparseIndex`
        adds documents so, since those weights (``is``, ``means``, ``and``, ...) made every blank
        document outrank real ones for common words."""
        return list(self._encode(texts, desc="encoding documents", blank_as_empty=blank_as_empty))

    def encode_queries(self, texts: str | Iterable[str]) -> list[SparseEmbedding]:
        """Queries are encoded as documents are (SPLADE++ uses one encoder for both), except
        that a query without a token (empty, whitespace, or characters the tokenizer drops
        such as a zero-width space or a control character) gets the empty vector, so it
        matches no document, as with every other encoder (BM25, Qdrant/bm25). The model
        itself would give such a text the weights of its special tokens ([CLS], [SEP]) and
        rank documents by them; :meth:`query_embed` / :meth:`embed` still return exactly
        that, as fastembed.
        """
        return list(self._encode(list(iter_texts(texts)), desc="encoding queries", blank_as_empty=True))

    def embed(
        self,
        documents: str | Iterable[str],
        batch_size: int | None = None,
        parallel: int | None = None,
        **kwargs: Any,
    ) -> Iterator[SparseEmbedding]:
        """fastembed-compatible: a generator of vectors, in order.

        ``batch_size``: texts per model call (default: the encoder's). ``parallel``: ``None``
        encodes in this process; ``N >= 1`` in N spawned worker processes (``0``: one per
        core), each loading this model once and taking whole batches of ``batch_size`` texts,
        with the cores shared among them (see :mod:`sparsedex._workers`; a script calling this
        at import time needs an ``if __name__ == "__main__":`` guard). Raises
        :class:`TypeError` for an unknown keyword and :class:`ValueError` for a bad
        ``parallel`` or ``batch_size``.
        """
        if kwargs:
            raise TypeError(f"embed() got unexpected argument(s) {', '.join(sorted(kwargs))}")
        from .._workers import check_batch_size, embed_maybe_parallel, resolve_parallel

        bs = self.batch_size if batch_size is None else check_batch_size(batch_size)
        if resolve_parallel(parallel) is None:
            return self._encode(documents, desc="encoding", batch_size=bs)
        return embed_maybe_parallel(
            self, self.worker_spec(), documents, bs, parallel,
            local=lambda batch: list(self._encode(batch, desc="encoding", batch_size=bs)),
        )

    def worker_spec(self) -> dict[str, Any]:
        """What a worker process needs to build the same encoder (same model file, checked by
        sha256; the same providers; ONNX Runtime threads shared among the workers)."""
        from .._workers import available_cores

        ident = self.identity()
        r = self._resolved
        return {
            "kind": "splade",
            "model": str(r.root) if r.source == "hf" else ident["model"],  # the downloaded files
            "model_sha256": ident.get("model_sha256"),
            "kwargs": {
                "max_length": self.max_length,
                "batch_size": self.batch_size,
                "token_budget": self.token_budget,
                "progress": False,
                "local_files_only": True,
                "providers": list(self._providers),
                "threads": None,
            },
            "cores": self.threads or available_cores(),
        }

    def passage_embed(self, texts: Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        return self.embed(texts, **kwargs)

    def query_embed(self, query: str | Iterable[str], **kwargs: Any) -> Iterator[SparseEmbedding]:
        return self.embed(query, **kwargs)

    def _encode(
        self, texts: str | Iterable[str], *, desc: str, batch_size: int | None = None, blank_as_empty: bool = False
    ) -> Iterator[SparseEmbedding]:
        texts = text_batch(texts)
        total = len(texts) if isinstance(texts, Sequence) else None
        bs = check_int(batch_size, "batch_size", 1, 1 << 20) if batch_size is not None else self.batch_size
        chunk = max(1024, 4 * bs)  # texts tokenized and length-sorted together
        external: Any = self.progress if hasattr(self.progress, "update") else None
        bar: Any = external if external is not None else progress_bar(
            total, desc, self.progress, unit="text", min_total=2 * chunk
        )
        try:
            start = 0
            for part in _chunks(texts, chunk):
                for j, t in enumerate(part):
                    check_text(t, f"text {start + j}")
                yield from self._encode_chunk(part, bs, bar.update, blank_as_empty)
                start += len(part)
        finally:
            if external is None:
                bar.close()

    def _encode_chunk(
        self, texts: list[str], batch_size: int, on_batch: Any = None, blank_as_empty: bool = False
    ) -> list[SparseEmbedding]:
        """The vectors of ``texts``, run through the model in batches of similar length;
        with ``blank_as_empty``, texts without a token of their own (only the special tokens
        the tokenizer adds) get the empty vector instead of the model's."""
        ids = self._window.token_ids(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        out: list[SparseEmbedding | None] = [None] * len(texts)
        if blank_as_empty:
            blank = lengths <= self._n_special_tokens()
            for k in np.flatnonzero(blank).tolist():
                out[k] = SparseEmbedding(indices=np.zeros(0, dtype=np.uint32), values=np.zeros(0, dtype=np.float32))
            order = order[~blank[order]]
            if on_batch is not None and blank.any():
                on_batch(int(blank.sum()))
        i = 0
        while i < len(order):
            longest = max(int(lengths[order[i]]), 1)
            n = max(1, min(batch_size, self.token_budget // longest, len(order) - i))
            group = order[i : i + n]
            pooled = self._run([ids[k] for k in group], longest)
            for row, k in zip(pooled, group):
                # via a bool mask: numpy's nonzero of a float row of the vocabulary's 30,522
                # weights took 67 us, of the bool row 6 us (same entries: x != 0)
                nz = np.flatnonzero(row != 0)
                out[k] = SparseEmbedding(indices=nz.astype(np.int32), values=row[nz])
            i += n
            if on_batch is not None:
                on_batch(len(group))
        return out  # type: ignore[return-value]

    def _n_special_tokens(self) -> int:
        """How many tokens the tokenizer adds to every text ([CLS] and [SEP]: those of "")."""
        n = getattr(self, "_n_special", None)
        if n is None:
            n = self._n_special = len(self._window.token_ids([""])[0])
        return n

    def _run(self, ids: list[list[int]], width: int) -> np.ndarray:
        n = len(ids)
        input_ids = np.full((n, width), self._pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for r, row in enumerate(ids):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feed: dict[str, np.ndarray] = {self._ids_name: input_ids}  # type: ignore[dict-item]
        feed[self._pool_mask_name] = mask
        if self._type_name is not None:
            feed[self._type_name] = np.zeros((n, width), dtype=np.int64)
        for name, arr in feed.items():
            want = self._input_dtypes.get(name)
            if want is not None and arr.dtype != want:
                feed[name] = arr.astype(want)
        try:
            (pooled,) = self._session.run([_POOLED], feed)
        except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own classes
            text = " ".join(str(e).split())
            if "Gather" in text and "must be within" in text:
                # a token id the model has no embedding row for (helper-93): the tokenizer's ids
                # go past the model's vocabulary
                raise ValueError(
                    f"model {self._resolved.name!r} has no embedding for a token id its tokenizer.json gave (largest "
                    f"in this batch: {int(input_ids.max())}): the tokenizer and model.onnx do not belong together "
                    f"(ONNX Runtime: {text[:200]})"
                ) from None
            if "sparsedex_pool" in text:
                # the pooling appended to the model failed on its output: an output of undeclared
                # shape that is not [batch, sequence, vocabulary] (helper-139: ONNX Runtime's bare
                # broadcasting error)
                raise ValueError(
                    f"model {self._resolved.name!r}: its output could not be pooled as [batch, sequence, vocabulary] "
                    f"logits, which a SPLADE model outputs (ONNX Runtime: {text[:200]})"
                ) from None
            raise
        if pooled.ndim != 2:  # an output of undeclared shape, one rank too many (helper-141)
            raise ValueError(
                f"model {self._resolved.name!r}: its output has {pooled.ndim + 1} dimensions; a SPLADE model "
                "outputs [batch, sequence, vocabulary] logits"
            )
        if pooled.shape[1] != self._vocab_size:
            # a width other than the declared or assumed vocabulary: term ids past it broke
            # explain() and decoding later (helper-139)
            raise ValueError(
                f"model {self._resolved.name!r} scored {pooled.shape[1]} terms per text; its declared output, "
                f"config.json or tokenizer give a vocabulary of {self._vocab_size}"
            )
        return pooled

    # tokens ----------------------------------------------------------------------------
    def token_id(self, token: str) -> int:
        """The vocabulary id of ``token``; KeyError if it is not in the vocabulary."""
        i = self._tokenizer.token_to_id(token)
        if i is None:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return int(i)

    def token_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.token_id(t) for t in tokens]

    def id_to_token(self, token_id: int) -> str:
        t = self._tokenizer.id_to_token(int(token_id))
        if t is None:
            raise KeyError(f"token id {token_id} is not in the vocabulary")
        return str(t)

    def tokenize(self, text: str) -> list[str]:
        """The tokens the model sees for ``text`` (special tokens included, truncated)."""
        check_text(text, "text")
        return list(self._window.encode([text])[0].tokens)

    def decode(self, embedding: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """``[(token, weight), ...]`` highest weight first (ties: lower id first)."""
        return decode_with(embedding, self.id_to_token, top_k)

    def __repr__(self) -> str:
        return (
            f"SpladeEncoder(model={self.model_name!r}, max_length={self.max_length}, "
            f"threads={self.threads}, vocab_size={self.vocab_size})"
        )


def decode_with(embedding: Any, id_to_token: Any, top_k: int | None = None) -> list[tuple[str, float]]:
    """Shared by the encoders: sort a vector's entries by weight, map ids to tokens."""
    emb = as_sparse_embedding(embedding)
    idx = np.asarray(emb.indices)
    val = np.asarray(emb.values, dtype=np.float64)
    order = np.lexsort((idx, -val))
    if top_k is not None:
        # an int >= 0, as explain's top_terms (a negative one returned nothing quietly)
        order = order[: check_int(top_k, "top_k", 0, 2**63 - 1)]
    return [(id_to_token(int(idx[k])), float(val[k])) for k in order]


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    if isinstance(items, Sequence):
        for s in range(0, len(items), size):
            yield list(items[s : s + size])
        return
    buf: list[str] = []
    for x in items:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _onnx_int_dtype(elem_type: int | None) -> np.dtype:
    """numpy dtype of an ONNX input's element type (TensorProto.DataType); int64 if unknown."""
    table: dict[int, np.dtype] = {
        ELEM_INT32: np.dtype(np.int32),
        ELEM_INT64: np.dtype(np.int64),
        ELEM_FLOAT: np.dtype(np.float32),
        ELEM_BOOL: np.dtype(np.bool_),
    }
    return table.get(int(elem_type) if elem_type is not None else ELEM_INT64, np.dtype(np.int64))
