"""The pooling graph built on the protobuf bytes equals the onnx-package one; onnx is not needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsedex.encoders import SpladeEncoder
from sparsedex.encoders import onnx_graph as og
from sparsedex.encoders.splade import add_pooling_to_graph

PKG_MODEL = Path(__file__).resolve().parents[1] / "python" / "sparsedex" / "models" / "splade-tiny"


def _session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])


def _onnx_pooled(raw: bytes, logits: str, mask: str, add_mask: bool) -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(raw)
    if add_mask:
        proto.graph.input.append(helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"]))
    add_pooling_to_graph(proto, logits, mask)
    return proto.SerializeToString()


def _feed(names, rng, batch=3, seq=11, vocab_ids=30522):
    lengths = [seq, 5, 1][:batch]
    ids = rng.integers(1000, vocab_ids, size=(batch, seq), dtype=np.int64)
    mask = np.zeros((batch, seq), dtype=np.int64)
    for r, n in enumerate(lengths):
        mask[r, :n] = 1
        ids[r, n:] = 0
    feed = {"input_ids": ids}
    for n in names:
        if n in ("attention_mask", "input_mask", "sparsedex_attention_mask"):
            feed[n] = mask
        elif n in ("token_type_ids", "segment_ids"):
            feed[n] = np.zeros_like(ids)
    return feed


def test_interface_of_splade_tiny():
    info = og.read_interface((PKG_MODEL / "model.onnx").read_bytes())
    assert info.opset == 17 and not info.external_data
    assert [(i.name, i.elem_type) for i in info.inputs] == [
        ("input_ids", og.ELEM_INT64), ("attention_mask", og.ELEM_INT64), ("token_type_ids", og.ELEM_INT64)]
    (out,) = info.outputs
    assert out.name == "logits" and out.elem_type == og.ELEM_FLOAT and len(out.shape) == 3 and out.shape[-1] == 30522


def test_pooled_splade_tiny_equals_the_onnx_built_graph():
    raw = (PKG_MODEL / "model.onnx").read_bytes()
    ours = _session(og.with_pooling(raw, "logits", "attention_mask"))
    ref = _session(_onnx_pooled(raw, "logits", "attention_mask", False))
    assert [o.name for o in ours.get_outputs()] == [og.POOLED_OUTPUT]
    feed = _feed([i.name for i in ours.get_inputs()], np.random.default_rng(1))
    (a,) = ours.run(None, feed)
    (b,) = ref.run(None, feed)
    assert a.shape == (3, 30522)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opset,mask_name", [(11, "attention_mask"), (13, None), (18, "input_mask")])
def test_toy_graphs_every_opset_branch(tmp_path, opset, mask_name):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(opset)
    table = rng.normal(0, 1, size=(50, 7)).astype(np.float32)
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])]
    if mask_name:
        inputs.append(helper.make_tensor_value_info(mask_name, TensorProto.INT64, ["b", "s"]))
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["logits"], axis=0)], "toy", inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", 7])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    raw = model.SerializeToString()
    mask = mask_name or "sparsedex_attention_mask"
    ours = _session(og.with_pooling(raw, "logits", mask, add_mask_input=mask_name is None))
    ref = _session(_onnx_pooled(raw, "logits", mask, mask_name is None))
    ids = np.array([[1, 2, 3], [4, 5, 0]], dtype=np.int64)
    m = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)
    (a,) = ours.run(None, {"input_ids": ids, mask: m})
    (b,) = ref.run(None, {"input_ids": ids, mask: m})
    np.testing.assert_array_equal(a, b)
    want = np.log(1 + np.maximum(np.stack([table[[1, 2, 3]].max(0), table[[4, 5]].max(0)]), 0))
    np.testing.assert_allclose(a, want, atol=1e-6)


def test_not_an_onnx_file(tmp_path):
    for bad in (b"", b"\xff" * 20, b"hello world, this is text", (PKG_MODEL / "model.onnx").read_bytes()[:1000]):
        with pytest.raises(og.OnnxFormatError):
            og.read_interface(bad)
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"\x08\x07garbage-that-is-not-a-model")
    shutil.copy(PKG_MODEL / "tokenizer.json", d / "tokenizer.json")
    with pytest.raises(ValueError, match="model.onnx of model .* is not a readable ONNX model"):
        SpladeEncoder(d)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(n):
    enc = og._enc_varint(n)
    assert og._varint(memoryview(enc), 0) == (n, len(enc))


def test_encoder_runs_without_the_onnx_package():
    script = r"""
import sys, json
sys.modules["onnx"] = None  # importing onnx now fails
from sparsedex.encoders import SpladeEncoder
e = SpladeEncoder("splade-tiny", progress=False)
v = e.encode_documents(["Hello World", "a movie about music"])
print(json.dumps([[v_.indices.tolist(), v_.values.tolist()] for v_ in v]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = SpladeEncoder("splade-tiny", progress=False).encode_documents(["Hello World", "a movie about music"])
    for (idx, val), w in zip(got, want):
        assert idx == w.indices.tolist() and np.array_equal(np.float32(val), w.values)
