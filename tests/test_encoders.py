"""SpladeEncoder (bundled splade-tiny, toy ONNX models, download path), registry, progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsedex._progress import progress_bar, progress_enabled
from sparsedex.encoders import ModelNotAvailableError, SpladeEncoder, list_supported_models, load_encoder
from sparsedex.encoders import registry
from sparsedex.vectors import SparseEmbedding

PKG_MODEL = Path(__file__).resolve().parents[1] / "python" / "sparsedex" / "models" / "splade-tiny"
TEXTS = [
    "A movie about music",
    "This Is Spinal Tap follows a fictional British heavy metal band on tour.",
    "",
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft .",
    "naïve café — 東京 emoji 🎸 and [SEP] [MASK] special tokens",
    " ".join(["a long text about boundary layers and shock waves"] * 80),  # > 512 tokens
]


@pytest.fixture(scope="module")
def enc():
    return SpladeEncoder("splade-tiny", progress=False)


# -- the bundled model ------------------------------------------------------------------
@pytest.mark.model
def test_golden_vectors(enc):
    ref = json.loads((PKG_MODEL / "reference_vectors.json").read_text())
    vecs = enc.encode_documents([v["text"] for v in ref["vectors"]])
    for v, got in zip(ref["vectors"], vecs):
        assert [enc.token_id(t) for t in enc.tokenize(v["text"])] == v["input_ids"]
        np.testing.assert_array_equal(got.indices, np.asarray(v["indices"]))
        np.testing.assert_allclose(got.values, np.asarray(v["values"]), atol=1e-4, rtol=0)
        assert [enc.id_to_token(i) for i in got.indices] == v["tokens"]


@pytest.mark.model
def test_matches_fastembed(enc, monkeypatch):
    fastembed = pytest.importorskip("fastembed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fe = fastembed.SparseTextEmbedding("prithivida/Splade_PP_en_v1", specific_model_path=str(PKG_MODEL))
    theirs = list(fe.embed(TEXTS, batch_size=4))
    ours = enc.encode_documents(TEXTS)
    for t, o in zip(theirs, ours):
        np.testing.assert_array_equal(o.indices, t.indices)
        np.testing.assert_allclose(o.values, t.values, atol=1e-5, rtol=0)


@pytest.mark.model
def test_batching_does_not_change_vectors(enc):
    base = enc.encode_documents(TEXTS)
    small = SpladeEncoder("splade-tiny", batch_size=1, token_budget=1, progress=False)
    assert small.token_budget == small.max_length
    for a, b in zip(base, small.encode_documents(TEXTS)):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.values, b.values, atol=1e-5)
    # order is kept although texts are length-sorted inside
    assert [v.nnz for v in enc.encode_documents(TEXTS[::-1])] == [v.nnz for v in base][::-1]


@pytest.mark.model
def test_api_surface(enc):
    assert enc.vocab_size == 30522
    assert enc.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    # the session returns [batch, vocab]: pooling runs inside the graph
    out = enc._session.get_outputs()
    assert len(out) == 1 and len(out[0].shape) == 2
    (v,) = enc.encode_queries("A movie about music")
    assert v.indices.dtype == np.int32 and v.values.dtype == np.float32
    assert np.all(np.diff(v.indices) > 0) and np.all(v.values > 0)
    decoded = enc.decode(v)
    assert [w for _, w in decoded] == sorted((w for _, w in decoded), reverse=True)
    assert {"music", "movie"} <= {t for t, _ in decoded[:10]}
    assert enc.decode(v, top_k=3) == decoded[:3]
    assert enc.decode(v.as_dict()) == decoded
    gen = enc.embed(["a", "b"])
    assert not isinstance(gen, list) and len(list(gen)) == 2
    assert list(enc.query_embed("x"))[0] == enc.encode_queries(["x"])[0]
    assert enc.encode_documents([]) == []
    assert enc.encode_documents(iter(["music", "film"]))[1] == enc.encode_documents(["film"])[0]
    with pytest.raises(TypeError, match="text 1"):
        enc.encode_documents(["ok", None])
    with pytest.raises(KeyError):
        enc.token_id("notatokenxyz")
    assert enc.token_ids(["music", "[CLS]"]) == [2189, 101]
    assert len(enc.tokenize(TEXTS[-1])) == 512


@pytest.mark.model
def test_identity_roundtrip(enc, tmp_path):
    ident = json.loads(json.dumps(enc.identity()))
    assert ident["kind"] == "splade" and ident["model"] == "splade-tiny"
    assert len(ident["model_sha256"]) == 64
    again = load_encoder(ident)
    assert again.encode_queries(["music"])[0] == enc.encode_queries(["music"])[0]
    bad = dict(ident, model_sha256="0" * 64)
    with pytest.raises(ValueError, match="has changed"):
        load_encoder(bad)
    assert load_encoder(bad, verify=False).vocab_size == 30522
    # a local directory is identified by its absolute path
    d = tmp_path / "copy"
    shutil.copytree(PKG_MODEL, d)
    local = SpladeEncoder(str(d), max_length=128)
    li = local.identity()
    assert li["model"] == str(d.resolve()) and li["model_sha256"] == ident["model_sha256"]
    assert li["max_length"] == 128 and load_encoder(li).max_length == 128


def test_bundled_model_is_a_package_resource():
    root = registry.bundled_model_dir()
    for f in ["model.onnx", "tokenizer.json", "config.json", "LICENSE", "PROVENANCE.md", "reference_vectors.json"]:
        assert root.joinpath(f).is_file(), f


def test_list_supported_models():
    models = list_supported_models()
    names = [m["model"] for m in models]
    assert names == ["splade-tiny", "prithivida/Splade_PP_en_v1", "Qdrant/bm25"]
    for m in models:
        assert {"model", "vocab_size", "description", "license", "size_in_GB", "sources", "requires_idf"} <= set(m)
        assert m["vocab_size"] == (30522 if m["kind"] == "splade" else 0)
    assert [m["requires_idf"] for m in models] == [False, False, True]
    assert models[1]["sources"] == {"hf": "Qdrant/Splade_PP_en_v1"}
    json.dumps(models)


# -- the download path, with a stand-in for the hub -------------------------------------------
def _fake_hub(tmp_path, calls, fail_online=False, fail_all=False):
    snap = tmp_path / "hub" / "snapshot"

    def fake_snapshot_download(repo_id, *, allow_patterns=None, cache_dir=None, local_files_only=False, **kw):
        calls.append((repo_id, tuple(allow_patterns), cache_dir, local_files_only))
        if fail_all or (fail_online and not local_files_only):
            raise OSError("network is unreachable")
        if not snap.exists():
            snap.mkdir(parents=True)
            for f in allow_patterns:
                if (PKG_MODEL / f).exists():
                    shutil.copy(PKG_MODEL / f, snap / f)
        return str(snap)

    return fake_snapshot_download


@pytest.mark.model
def test_download_path(monkeypatch, tmp_path):
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "snapshot_download", _fake_hub(tmp_path, calls))
    e = SpladeEncoder("prithivida/Splade_PP_en_v1", cache_dir=str(tmp_path / "cache"), progress=False)
    assert calls[0][0] == "Qdrant/Splade_PP_en_v1"
    assert set(registry.HUB_FILES) == set(calls[0][1]) and calls[0][2] == str(tmp_path / "cache")
    assert calls[0][3] is False
    assert e.identity()["model"] == "prithivida/Splade_PP_en_v1"
    assert e.encode_queries(["music"])[0].nnz > 0
    # later, offline: served from the cache, never online
    calls.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    SpladeEncoder("prithivida/Splade_PP_en_v1", cache_dir=str(tmp_path / "cache"))
    assert [c[3] for c in calls] == [True]


def test_offline_error_says_how_to_provide_files(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(registry, "snapshot_download", _fake_hub(tmp_path, calls, fail_all=True))
    with pytest.raises(ModelNotAvailableError) as ei:
        SpladeEncoder("prithivida/Splade_PP_en_v1")
    msg = str(ei.value)
    assert "offline" in msg and "Qdrant/Splade_PP_en_v1" in msg
    assert "model.onnx" in msg and "tokenizer.json" in msg and "SpladeEncoder('DIR')" in msg
    assert [c[3] for c in calls] == [True]
    assert isinstance(ei.value, FileNotFoundError)


def test_failed_download_falls_back_to_cache_then_errors(monkeypatch, tmp_path):
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "snapshot_download", _fake_hub(tmp_path, calls, fail_all=True))
    with pytest.raises(ModelNotAvailableError, match="download failed"):
        registry.resolve_model("prithivida/Splade_PP_en_v1")
    assert [c[3] for c in calls] == [False, True]
    calls.clear()
    monkeypatch.setattr(registry, "snapshot_download", _fake_hub(tmp_path, calls, fail_online=True))
    r = registry.resolve_model("prithivida/Splade_PP_en_v1")  # the cached copy
    assert r.source == "hf" and (r.root / "model.onnx").is_file()


def test_bad_local_dirs(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="unknown model"):
        SpladeEncoder(str(tmp_path / "nope"))
    (tmp_path / "m").mkdir()
    shutil.copy(PKG_MODEL / "model.onnx", tmp_path / "m" / "model.onnx")
    with pytest.raises(ModelNotAvailableError, match="tokenizer.json"):
        SpladeEncoder(tmp_path / "m")
    with pytest.raises(ModelNotAvailableError, match="directory"):
        SpladeEncoder(tmp_path / "m" / "model.onnx")



def test_max_length_must_leave_room_for_text():
    # max_length=2 held only [CLS] and [SEP]: every text, whatever its words, encoded to the
    # empty vector (review33). 3 keeps one word piece of the text.
    with pytest.raises(ValueError, match="at least 3, got 2"):
        SpladeEncoder("splade-tiny", max_length=2)
    enc = SpladeEncoder("splade-tiny", max_length=3)
    a, b = enc.embed(["music", "football"])
    assert a.nnz > 0 and b.nnz > 0 and not np.array_equal(a.indices, b.indices)

# -- toy ONNX models: input-name aliases, undeclared inputs ------------------------------------
def _toy_model(dirpath: Path, mask_name: str | None, type_name: str | None, vocab: int = 16, opset: int = 17):
    """logits[b, s, :] = table[input_ids[b, s]] (+ 0 * each extra input), plus splade-tiny's tokenizer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.normal(0, 1.0, size=(30522, vocab)).astype(np.float32)
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["g"], axis=0)]
    last = "g"
    for i, name in enumerate(n for n in (mask_name, type_name) if n):
        inputs.append(helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"]))
        nodes += [
            helper.make_node("Cast", [name], [f"c{i}"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", [f"c{i}", "ax"], [f"u{i}"]),
            helper.make_node("Mul", [f"u{i}", "zero"], [f"z{i}"]),
            helper.make_node("Add", [last, f"z{i}"], [f"a{i}"]),
        ]
        last = f"a{i}"
    nodes.append(helper.make_node("Identity", [last], ["logits"]))
    graph = helper.make_graph(
        nodes, "toy", inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([-1], np.int64), "ax"),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    dirpath.mkdir()
    onnx.save(model, str(dirpath / "model.onnx"))
    shutil.copy(PKG_MODEL / "tokenizer.json", dirpath / "tokenizer.json")
    shutil.copy(PKG_MODEL / "tokenizer_config.json", dirpath / "tokenizer_config.json")
    return table


@pytest.mark.parametrize(
    "mask_name,type_name,opset",
    [("input_mask", "segment_ids", 17), ("attention_mask", None, 13), (None, None, 18), (None, "token_type_ids", 17)],
)
@pytest.mark.filterwarnings("ignore:model .* scores 16 terms but its tokenizer")
def test_toy_models_aliases_and_declared_inputs(tmp_path, mask_name, type_name, opset):
    table = _toy_model(tmp_path / "toy", mask_name, type_name, opset=opset)
    e = SpladeEncoder(tmp_path / "toy", progress=False)
    expected_inputs = ["input_ids"] + [n for n in (mask_name, type_name) if n]
    if mask_name is None:
        expected_inputs.append("sparsedex_attention_mask")  # added for the pooling only
    assert sorted(e.input_names) == sorted(expected_inputs)
    assert e.vocab_size == 16
    texts = ["hello world", "a somewhat longer text, to get padding in the batch", ""]
    for text, got in zip(texts, e.encode_documents(texts)):
        ids = e.tokenizer.encode(text).ids
        want = np.log1p(np.maximum(table[ids], 0)).max(axis=0)
        nz = np.flatnonzero(want)
        np.testing.assert_array_equal(got.indices, nz)
        np.testing.assert_allclose(got.values, want[nz], atol=1e-6)


# -- memory: 64 passages of 512 tokens never become a [64, 512, 30522] tensor -------------------
@pytest.mark.model
def test_memory_bounded_for_long_batches():
    script = r"""
import resource, sys
from sparsedex.encoders import SpladeEncoder
e = SpladeEncoder("splade-tiny", threads=1, batch_size=64, progress=False)
e.encode_documents(["warm up"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
texts = [" ".join(f"token{i} physics" for i in range(400))] * 64
v = e.encode_documents(texts)
assert len(v) == 64 and len(e.tokenize(texts[0])) == 512
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""
    env = dict(os.environ)  # the installed package, as users get it
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    growth_mb = int(out.stdout.strip().splitlines()[-1])
    full_tensor_mb = 64 * 512 * 30522 * 4 // 2**20  # 3815 MB
    assert growth_mb < 1024, f"RSS grew by {growth_mb} MB (a full logits tensor is {full_tensor_mb} MB)"


# -- progress helper ----------------------------------------------------------------------------
def test_progress_helper(monkeypatch, capsys):
    assert not progress_enabled(False)
    assert progress_enabled(True)
    monkeypatch.setenv("SPARSEDEX_PROGRESS", "0")
    assert not progress_enabled(None)
    monkeypatch.delenv("SPARSEDEX_PROGRESS")
    assert not progress_enabled(None, total=10)  # pytest captures stderr: not a TTY
    with progress_bar(10, "x", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""
    bar = progress_bar(10, "encoding", enabled=True)
    bar.update(10)
    bar.close()
    assert "encoding" in capsys.readouterr().err


def test_sparse_embedding_is_what_encoders_return():
    assert SparseEmbedding.__dataclass_fields__.keys() == {"indices", "values"}


def test_model_outputs_of_another_shape(tmp_path):
    """helper-137: a [batch, seq] output was pooled into nonsense vectors without a word; a
    [batch, seq, 1] output against a 30,522-token tokenizer likewise (now a warning: toy
    models of few terms, as above, are legitimate)."""
    import onnx
    from onnx import TensorProto, helper

    d = tmp_path / "flat"
    d.mkdir()
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    graph = helper.make_graph([helper.make_node("Cast", ["input_ids"], ["logits"], to=TensorProto.FLOAT)], "flat",
                              [ids], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(d / "model.onnx"))
    shutil.copy(PKG_MODEL / "tokenizer.json", d / "tokenizer.json")
    with pytest.raises(ValueError, match=r"output 'logits' has 2 dimensions; a SPLADE model outputs \[batch, sequence, vocabulary\]"):
        SpladeEncoder(d, progress=False)
    _toy_model(tmp_path / "one", None, None, vocab=1)
    with pytest.warns(UserWarning, match="scores 1 terms but its tokenizer has 30522 tokens"):
        SpladeEncoder(tmp_path / "one", progress=False)
