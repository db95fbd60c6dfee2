"""SparseTextEmbedding: fastembed's surface over SPLADE and Qdrant/bm25; parallel workers; providers."""

from __future__ import annotations

import json
import multiprocessing
import types
from pathlib import Path

import numpy as np
import pytest

from sparsedex import ModelNotAvailableError, ProviderNotAvailableError, SparseEmbedding, SparseIndex, SparseTextEmbedding
from sparsedex.encoders import FastembedBm25Encoder, SpladeEncoder
from sparsedex.encoders import providers as prov

PKG_MODEL = Path(__file__).resolve().parents[1] / "python" / "sparsedex" / "models" / "splade-tiny"


def _same(a: SparseEmbedding, b: SparseEmbedding) -> None:
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.fixture(scope="module")
def tiny():
    return SparseTextEmbedding("splade-tiny")


@pytest.fixture(scope="module")
def passages(shared):
    lines = (shared / "data" / "vaswani" / "corpus.jsonl").read_text().splitlines()[:40]
    return [json.loads(x)["text"] for x in lines]


# -- models and arguments ----------------------------------------------------------------------
def test_list_supported_models():
    names = [m["model"] for m in SparseTextEmbedding.list_supported_models()]
    assert names == ["splade-tiny", "prithivida/Splade_PP_en_v1", "Qdrant/bm25"]
    bm25 = SparseTextEmbedding.list_supported_models()[2]
    assert bm25["requires_idf"] is True and bm25["kind"] == "fastembed-bm25"


def test_names_and_kinds():
    m = SparseTextEmbedding("qdrant/BM25")
    assert m.model_name == "Qdrant/bm25" and m.kind == "fastembed-bm25" and m.requires_idf
    assert isinstance(m.model, FastembedBm25Encoder) and m.vocab_size is None
    lazy = SparseTextEmbedding("splade-tiny", lazy_load=True, max_length=64)
    assert lazy._model is None
    assert lazy.vocab_size == 30522 and isinstance(lazy.model, SpladeEncoder) and lazy.model.max_length == 64
    with pytest.raises(ModelNotAvailableError, match="unknown model"):
        SparseTextEmbedding("no/such-model")


def test_arguments_that_do_not_apply_are_errors():
    with pytest.raises(ValueError, match="cuda.*runs no model"):
        SparseTextEmbedding("Qdrant/bm25", cuda=True)
    with pytest.raises(ValueError, match="threads, providers"):
        SparseTextEmbedding("Qdrant/bm25", threads=2, providers=["CPUExecutionProvider"])
    with pytest.raises(TypeError, match="max_length.*accepted: avg_len"):
        SparseTextEmbedding("Qdrant/bm25", max_length=10)
    with pytest.raises(TypeError, match="'k'|k for 'splade-tiny'|unexpected argument"):
        SparseTextEmbedding("splade-tiny", k=1.2)
    with pytest.raises(ValueError, match="device_ids applies with cuda=True"):
        SparseTextEmbedding("splade-tiny", device_ids=[0])
    m = SparseTextEmbedding("Qdrant/bm25", local_files_only=True)  # fastembed's, harmless: nothing to fetch
    with pytest.raises(TypeError, match="unexpected argument.*foo"):
        m.embed(["x"], foo=1)
    with pytest.raises(TypeError, match="unexpected argument.*foo"):
        m.query_embed("x", foo=1)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="parallel"):
            list(m.embed(["x"], parallel=bad))
    for bad in (0, -3):
        with pytest.raises(ValueError, match="batch_size"):
            list(m.embed(["x"], batch_size=bad))
    for bad in (2.5, True, None):  # a TypeError, as SpladeEncoder(batch_size=...) raises (helper-115)
        with pytest.raises(TypeError, match="batch_size"):
            list(m.embed(["x"], batch_size=bad))
    with pytest.raises(TypeError, match="text 2 is an int, not a str"):
        list(m.embed(["a", "b", 7], batch_size=2, parallel=2))


def test_bm25_embed_query_passage():
    m = SparseTextEmbedding("Qdrant/bm25")
    docs = ["The quick brown fox", "Lazy dogs sleep all day"]
    it = m.embed(docs)
    assert not isinstance(it, list)  # a generator, as fastembed's
    got = list(it)
    assert len(got) == 2 and all(isinstance(v, SparseEmbedding) for v in got)
    _same(got[0], m.model.encode_document(docs[0]))
    assert [v.as_dict() for v in m.passage_embed(docs)] == [v.as_dict() for v in got]
    (q,) = list(m.query_embed("quick fox"))
    assert q.values.tolist() == [1.0, 1.0]
    assert len(list(m.query_embed(["a fox", "a dog"]))) == 2
    assert list(m.embed("single text"))[0].nnz == 2


# -- splade through SparseTextEmbedding ----------------------------------------------------------
@pytest.mark.model
def test_splade_tiny_equals_encoder_and_golden(tiny, passages):
    # ONNX Runtime's float sums depend on how texts are batched (1-ulp differences): same batches here
    enc = SpladeEncoder("splade-tiny", batch_size=16, progress=False)
    for a, b in zip(tiny.embed(passages, batch_size=16), enc.encode_documents(passages)):
        _same(a, b)
    for a, b in zip(tiny.query_embed(passages[:5]), enc.encode_queries(passages[:5])):
        _same(a, b)
    ref = json.loads((PKG_MODEL / "reference_vectors.json").read_text())
    for v, got in zip(ref["vectors"], tiny.embed([v["text"] for v in ref["vectors"]])):
        np.testing.assert_array_equal(got.indices, np.asarray(v["indices"]))
        np.testing.assert_allclose(got.values, np.asarray(v["values"]), atol=1e-4, rtol=0)


@pytest.mark.model
def test_splade_pp_from_a_local_directory(tmp_path):
    # the SPLADE++ name with specific_model_path (here: splade-tiny's files standing in)
    m = SparseTextEmbedding("prithivida/Splade_PP_en_v1", specific_model_path=str(PKG_MODEL))
    assert m.model_name == "prithivida/Splade_PP_en_v1"
    _same(next(m.embed(["hello world"])), SpladeEncoder("splade-tiny").encode_documents(["hello world"])[0])


@pytest.mark.model
def test_as_an_index_encoder(tiny, tmp_path):
    ix = SparseIndex(tiny)
    ix.add(["a movie about music", "a paper on boundary layers"], ids=["m", "p"])
    assert ix.search("film with songs", k=1)[0].id == "m"
    ix.save(tmp_path / "ix")
    again = SparseIndex.open(tmp_path / "ix")
    assert [h.id for h in again.search("film with songs", k=2)] == [h.id for h in ix.search("film with songs", k=2)]


# -- parallel=N --------------------------------------------------------------------------------
def test_bm25_parallel_workers(passages):
    m = SparseTextEmbedding("Qdrant/bm25")
    want = [v.as_dict() for v in m.embed(passages)]
    gen = m.embed(iter(passages), batch_size=4, parallel=2)  # 10 batches, a generator input
    first = next(gen)
    workers = [p for p in multiprocessing.active_children() if "SpawnProcess" in type(p).__name__]
    assert len(workers) == 2  # really two spawned processes
    got = [first.as_dict()] + [v.as_dict() for v in gen]
    assert got == want
    # parallel=0: one worker per core; one batch only: encoded here, no process started
    assert [v.as_dict() for v in m.embed(passages, batch_size=8, parallel=0)] == want
    assert [v.as_dict() for v in m.embed(passages[:3], batch_size=8, parallel=4)] == want[:3]


@pytest.mark.model
def test_splade_parallel_workers(tiny, passages):
    texts = passages[:12]
    got = list(tiny.embed(texts, batch_size=3, parallel=2))
    enc = SpladeEncoder("splade-tiny", threads=1, progress=False)
    want = [v for i in range(0, 12, 3) for v in enc.encode_documents(texts[i : i + 3])]  # the workers' batches
    assert len(got) == len(want) == 12
    for a, b in zip(got, want):
        _same(a, b)


@pytest.mark.model
def test_splade_encoder_embed_parallel(passages):
    """SpladeEncoder.embed(parallel=N) runs N workers (it used to ignore parallel)."""
    enc = SpladeEncoder("splade-tiny", threads=1, progress=False)
    texts = passages[:8]
    got = list(enc.embed(texts, batch_size=2, parallel=2))
    want = [v for i in range(0, 8, 2) for v in enc.encode_documents(texts[i : i + 2])]
    assert len(got) == 8
    for a, b in zip(got, want):
        _same(a, b)
    assert [v.as_dict() for v in enc.embed(texts[:2], batch_size=2, parallel=2)] == [v.as_dict() for v in want[:2]]
    with pytest.raises(ValueError, match="parallel"):
        enc.embed(texts, parallel=-1)
    with pytest.raises(TypeError, match="unexpected argument"):
        enc.embed(texts, threads=3)


def test_worker_errors_come_back():
    from sparsedex import _workers

    spec = {"kind": "fastembed-bm25", "config": {"language": "no-such-language", "stopwords": []}}
    enc = FastembedBm25Encoder()
    gen = _workers.embed_maybe_parallel(enc, spec, ["a", "b", "c", "d"], 1, 2)
    with pytest.raises(ValueError, match="no-such-language"):
        list(gen)


# -- execution providers -------------------------------------------------------------------------
def test_cuda_requested_without_cuda_is_a_clear_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ProviderNotAvailableError, match="CUDA was asked for.*sparsedex\\[gpu\\]"):
        SparseTextEmbedding("splade-tiny", cuda=True)
    with pytest.raises(ProviderNotAvailableError, match="CUDA"):
        SpladeEncoder("splade-tiny", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ProviderNotAvailableError, match="CUDA"):
        SpladeEncoder("splade-tiny", cuda=True)


def test_providers_pass_through():
    e = SpladeEncoder("splade-tiny", providers=[("CPUExecutionProvider", {})], progress=False)
    assert e.providers == ["CPUExecutionProvider"]
    with pytest.raises(TypeError, match="not a str"):
        SpladeEncoder("splade-tiny", providers="CPUExecutionProvider")
    with pytest.raises(ProviderNotAvailableError, match="NoSuchExecutionProvider"):
        SpladeEncoder("splade-tiny", providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="not both"):
        SpladeEncoder("splade-tiny", cuda=True, providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="empty"):
        SpladeEncoder("splade-tiny", providers=[])


def test_provider_helpers():
    assert prov.resolve_providers(None) == ["CPUExecutionProvider"]
    assert prov.resolve_providers(None, cuda=True, device_id=1) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    with pytest.raises(TypeError, match="name, options"):
        prov.resolve_providers([("CUDAExecutionProvider", 1)])
    # ONNX Runtime falls back to the CPU when CUDA fails to start: an error here
    fell_back = types.SimpleNamespace(get_providers=lambda: ["CPUExecutionProvider"])
    with pytest.raises(ProviderNotAvailableError, match="could not start CUDAExecutionProvider"):
        prov.check_session(fell_back, [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"])
    prov.check_session(fell_back, ["CPUExecutionProvider"])
    ok = types.SimpleNamespace(get_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    prov.check_session(ok, ["CUDAExecutionProvider"])


def test_cuda_auto_and_token_count():
    import onnxruntime as ort

    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if not has_cuda:
        assert SparseTextEmbedding("splade-tiny", cuda="auto").model.providers == ["CPUExecutionProvider"]
    assert SparseTextEmbedding("splade-tiny", cuda="cpu").model.providers == ["CPUExecutionProvider"]
    bm25 = SparseTextEmbedding("Qdrant/bm25", cuda="auto")  # fastembed's default Device.AUTO: fine, no model
    with pytest.raises(ValueError, match="cuda must be"):
        SparseTextEmbedding("splade-tiny", cuda="gpu")
    with pytest.raises(ValueError, match="runs no model"):
        SparseTextEmbedding("Qdrant/bm25", cuda="cuda")
    assert bm25.token_count(["Hello, World!", "the RUNNER's run-time"]) == 2 + 5
    tiny = SparseTextEmbedding("splade-tiny", lazy_load=True)
    assert tiny.token_count("Hello World") == 4  # [CLS] hello world [SEP]
    assert tiny.token_count(["a " * 1000]) == 512  # truncated at max_length
    with pytest.raises(TypeError, match="text 1 is an int, not a str"):
        tiny.token_count(["ok", 5])


def test_qdrant_bm25_is_not_an_onnx_model():
    with pytest.raises(ModelNotAvailableError, match="hashed BM25.*SparseTextEmbedding"):
        SpladeEncoder("Qdrant/bm25")
