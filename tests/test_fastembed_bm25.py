"""fastembed's Qdrant/bm25 reproduced: reference vectors, fastembed itself, hashed ids in an index."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsedex import SparseTextEmbedding
from sparsedex.encoders import FastembedBm25Encoder, load_encoder
from sparsedex.encoders.fastembed_bm25 import bundled_stopwords, compute_token_id, fastembed_words


@pytest.fixture(scope="module")
def reference(shared):
    return json.loads((shared / "models" / "fastembed-bm25" / "reference.json").read_text())


@pytest.fixture(scope="module")
def nostop():
    return FastembedBm25Encoder(disable_stopwords=True)


@pytest.fixture(scope="module")
def default():
    return FastembedBm25Encoder()


# -- the shared reference vectors (fastembed 0.9.1, no stopwords) ------------------------------
def test_reference_documents_exactly(reference, nostop):
    assert reference["bm25_defaults"] == {
        "k": nostop.k, "b": nostop.b, "avg_len": nostop.avg_len, "language": nostop.language,
        "token_max_length": nostop.token_max_length,
    }
    assert len(reference["bm25_docs"]) == 3
    for doc in reference["bm25_docs"]:
        want = {int(k): v for k, v in doc["vector"].items()}
        got = nostop.term_weights(doc["text"])
        assert got == want  # float64, bit for bit
        assert list(got) == list(want)  # fastembed's order: first occurrence
        emb = nostop.encode_document(doc["text"])
        assert emb.indices.dtype == np.uint32 and emb.values.dtype == np.float32
        assert emb.indices.tolist() == list(want)
        np.testing.assert_array_equal(emb.values, np.array(list(want.values()), dtype=np.float32))


def test_reference_queries_exactly(reference):
    model = SparseTextEmbedding("Qdrant/bm25", disable_stopwords=True)
    assert len(reference["bm25_queries"]) == 3
    for q in reference["bm25_queries"]:
        (got,) = list(model.query_embed(q["text"]))
        assert got.indices.tolist() == [int(k) for k in q["vector"]]  # fastembed's set order too
        assert got.values.tolist() == [float(v) for v in q["vector"].values()] == [1.0] * len(q["vector"])


def test_reference_through_embed(reference):
    model = SparseTextEmbedding("Qdrant/bm25", disable_stopwords=True)
    docs = reference["bm25_docs"]
    for doc, got in zip(docs, model.embed([d["text"] for d in docs])):
        assert got.as_dict() == {int(k): float(np.float32(v)) for k, v in doc["vector"].items()}


def test_mmh3_examples(reference):
    assert reference["mmh3_abs_hash_examples"]
    for term, want in reference["mmh3_abs_hash_examples"].items():
        assert compute_token_id(term) == want
    assert 0 <= compute_token_id("x" * 1000) <= 2**31
    assert compute_token_id("naïve") == compute_token_id("naïve")


# -- the recipe ------------------------------------------------------------------------------
def test_tokenization_steps(nostop):
    assert fastembed_words("Running runners ran; the RUNNER's run-time!") == [
        "running", "runners", "ran", "the", "runner", "s", "run", "time"
    ]
    assert fastembed_words("under_score _ x") == ["under_score", "_", "x"]
    assert nostop.terms("under_score _ x") == ["under_scor", "x"]  # a lone "_" is punctuation
    assert nostop.terms("a" * 40 + " " + "b" * 41) == ["a" * 40]  # token_max_length=40
    # fastembed's stemmer (py_rust_stemmers), not PyStemmer's newer Snowball English
    assert nostop.terms("international organization emergency added") == ["intern", "organ", "emerg", "ad"]


def test_default_stopwords(default, nostop):
    words = bundled_stopwords("english")
    assert words is not None and len(words) == 179 == len(set(words))
    assert words[:4] == ["i", "me", "my", "myself"] and words[-1] == "wouldn't"
    assert len(default.stopwords) == 179
    text = "The Manhattan Project and its atomic bomb helped bring an end to World War II."
    assert default.terms(text) == ["manhattan", "project", "atom", "bomb", "help", "bring", "end", "world", "war", "ii"]
    got = default.term_weights(text)
    w = 1 * (1.2 + 1) / (1 + 1.2 * (1 - 0.75 + 0.75 * 10 / 256.0))
    assert len(got) == 10 and all(v == w for v in got.values())
    assert set(got) < set(nostop.term_weights(text))


def test_bm25_weights_follow_the_formula(nostop):
    text = "fox fox fox dog"
    got = nostop.term_weights(text)
    k, b, avg = 1.2, 0.75, 256.0
    assert got[compute_token_id("fox")] == pytest.approx(3 * (k + 1) / (3 + k * (1 - b + b * 4 / avg)), rel=1e-15)
    assert got[compute_token_id("dog")] == pytest.approx(1 * (k + 1) / (1 + k * (1 - b + b * 4 / avg)), rel=1e-15)
    custom = FastembedBm25Encoder(k=0.9, b=0.4, avg_len=10, disable_stopwords=True)
    assert custom.term_weights(text)[compute_token_id("fox")] == pytest.approx(3 * 1.9 / (3 + 0.9 * (0.6 + 0.4 * 0.4)))


def test_options(tmp_path):
    e = FastembedBm25Encoder(stopwords=["Fox"], disable_stemmer=True)
    assert e.terms("The fox jumps") == ["the", "jumps"]
    assert FastembedBm25Encoder(disable_stemmer=True).terms("The running fox") == ["the", "running", "fox"]
    assert FastembedBm25Encoder(stopwords=[]).terms("the fox") == ["the", "fox"]
    (tmp_path / "english.txt").write_text("fox\n")
    assert FastembedBm25Encoder(stopwords_dir=tmp_path).terms("the fox") == ["the"]
    assert FastembedBm25Encoder(language="german", stopwords=[]).terms("Häuser") == ["haus"]
    assert FastembedBm25Encoder(language="tamil").stopwords == frozenset()  # as fastembed: no list
    with pytest.raises(ValueError, match="german.*stopwords"):
        FastembedBm25Encoder(language="german")
    with pytest.raises(ValueError, match="no Snowball stemmer for language 'klingon'"):
        FastembedBm25Encoder(language="klingon", stopwords=[])
    assert FastembedBm25Encoder(language="klingon", disable_stemmer=True).terms("Qapla'") == ["qapla"]
    with pytest.raises(ValueError, match="not both"):
        FastembedBm25Encoder(stopwords=["a"], disable_stopwords=True)
    with pytest.raises(TypeError, match="not a str"):
        FastembedBm25Encoder(stopwords="the")
    for bad in ({"k": -1}, {"b": 2}, {"avg_len": 0}, {"k": float("nan")}, {"token_max_length": 0}):
        with pytest.raises(ValueError):
            FastembedBm25Encoder(**bad)
    with pytest.raises(TypeError, match="text 1 is int"):
        FastembedBm25Encoder().encode_documents(["ok", 3])


def test_empty_and_query_vectors(default):
    assert default.encode_document("").nnz == 0
    assert default.encode_query("the of and").nnz == 0
    q = default.encode_query("fox fox dog")
    assert sorted(q.indices.tolist()) == sorted({compute_token_id("fox"), compute_token_id("dog")})
    assert q.values.tolist() == [1.0, 1.0]


def test_identity_round_trip_and_decode(tmp_path):
    for e in (FastembedBm25Encoder(), FastembedBm25Encoder(disable_stopwords=True, k=1.5),
              FastembedBm25Encoder(stopwords=["fox"], language="english")):
        again = load_encoder(json.loads(json.dumps(e.identity())))
        assert isinstance(again, FastembedBm25Encoder) and again.config() == e.config()
        assert again.term_weights("the quick fox, the lazy dog") == e.term_weights("the quick fox, the lazy dog")
    (tmp_path / "english.txt").write_text("fox\n")
    frozen = FastembedBm25Encoder(stopwords_dir=tmp_path)
    assert load_encoder(frozen.identity()).stopwords == frozenset({"fox"})
    e = FastembedBm25Encoder()
    v = e.encode_document("fox fox dog")
    assert [t for t, _ in e.decode(v)] == ["fox", "dog"]
    assert e.decode({12345: 1.0}) == [("#12345", 1.0)]
    with pytest.raises(KeyError):
        e.id_to_token(12345)


# -- against fastembed itself (when it is installed: the bench extra) --------------------------
@pytest.fixture(scope="module")
def fastembed_bm25(tmp_path_factory):
    fastembed = pytest.importorskip("fastembed")
    d = tmp_path_factory.mktemp("qdrant_bm25")
    (d / "config.json").write_text("{}")
    (d / "english.txt").write_text("\n".join(bundled_stopwords("english")) + "\n")
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return (
        fastembed.SparseTextEmbedding("Qdrant/bm25", specific_model_path=str(d)),
        fastembed.SparseTextEmbedding("Qdrant/bm25", specific_model_path=str(d), stopwords=set()),
    )


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
) | st.lists(st.sampled_from(["The", "RUNNING", "runner's", "ﬁne", "İstanbul", "_", "a" * 41, "naïve", "x_y",
                              "won't", "₂", "Ⅻ", "東京", "e\u0301", "-", " ", "\t"]), max_size=12).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXT, min_size=1, max_size=4))
def test_equals_fastembed(fastembed_bm25, default, nostop, texts):
    for theirs_model, ours in zip(fastembed_bm25, (default, nostop)):
        for t, theirs in zip(texts, theirs_model.embed(texts)):
            got = ours.term_weights(t)
            assert theirs.as_dict() == got and [int(i) for i in theirs.indices] == list(got)
        for t, theirs in zip(texts, theirs_model.query_embed(texts)):
            assert [int(i) for i in theirs.indices] == ours.encode_query(t).indices.tolist()


# -- hashed ids in an index --------------------------------------------------------------------
_HASHED_SEARCH = r"""
import json, math, resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
from sparsedex import SparseIndex, SparseTextEmbedding, SparseEmbedding
docs = [json.loads(l)["text"] for l in open(sys.argv[1])][:400]
queries = [json.loads(l)["text"] for l in open(sys.argv[2])][:20]
model = SparseTextEmbedding("Qdrant/bm25")
dv = list(model.embed(docs))
assert max(int(v.indices.max()) for v in dv if v.nnz) > 2**30  # really hashed ids
index = SparseIndex(None, quantization="float")
index.add(dv)
df = {}
for v in dv:
    for t in v.indices.tolist():
        df[t] = df.get(t, 0) + 1
n = len(dv)
def idf(t):  # Qdrant's IDF modifier
    return math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
for q in model.query_embed(queries):
    keep = [i for i, t in enumerate(q.indices.tolist()) if t in df]
    qi = q.indices[keep]
    qv = np.array([idf(int(t)) for t in qi], dtype=np.float32)
    exact = np.array([sum(float(qv[j]) * v.as_dict().get(int(t), 0.0) for j, t in enumerate(qi.tolist())) for v in dv])
    hits = index.search(SparseEmbedding(qi, qv), k=10)
    want = int((exact > 0).sum())
    assert len(hits) == min(10, want), (len(hits), want)
    for h in hits:
        assert abs(h.score - exact[h.id]) <= 1e-4 * max(1.0, exact[h.id]), (h, exact[h.id])
    if hits:
        kth = hits[-1].score
        better = set(np.flatnonzero(exact > kth + 1e-4 * max(1.0, kth)).tolist())
        assert better <= {h.id for h in hits}
print("ok")
"""


def test_hashed_ids_index_and_search_like_brute_force(shared):
    # in a child process with a 6 GB address-space cap: memory must follow the distinct terms
    # (hashed ids near 2**32), never the value of the largest id
    out = subprocess.run(
        [sys.executable, "-c", _HASHED_SEARCH, str(shared / "data" / "cranfield" / "corpus.jsonl"),
         str(shared / "data" / "cranfield" / "queries.jsonl")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), textwrap.shorten(out.stderr, 600)


def test_idf_weighted_brute_force_is_bm25(shared):
    """The vectors are BM25 once IDF is applied: score = sum idf(t) * w(t, d) with fastembed's
    fixed avg_len (checked against the formula, independently of any index)."""
    docs = ["the quick brown fox", "a fox and a dog", "lazy dogs sleep all day"]
    model = SparseTextEmbedding("Qdrant/bm25")
    dv = [m.as_dict() for m in model.embed(docs)]
    (q,) = list(model.query_embed("foxes and dogs"))
    n = len(docs)
    df = {t: sum(t in d for d in dv) for t in q.indices.tolist()}
    scores = [sum(math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * d.get(t, 0.0) for t in q.indices.tolist()) for d in dv]
    fox, dog = compute_token_id("fox"), compute_token_id("dog")
    wfox = 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 256))
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    assert scores[1] == pytest.approx(idf * wfox * 2, rel=1e-6)  # fox and dog, both df=2, |d|=2
    assert fox in q.indices.tolist() and dog in q.indices.tolist()
    assert np.argmax(scores) == 1
