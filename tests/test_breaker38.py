"""breaker38's findings: an index opened (or refreshed) with an encoder whose vectors cannot
match its documents, blank document texts given the model's special-token weights, and the
argument checks it found missing (vocab_size beside an encoder, negative top_k / top_terms, an
empty queries file in ``eval``, a one-line qrels file read as a header)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest

from sparsedex import SparseIndex, SpladeEncoder
from sparsedex.cli import main
from sparsedex.encoders.bm25 import Bm25Encoder

DOCS = ["a song about music and bands", "cats and dogs", "the history of rock music", "mathematics of words"]


def ids(hits):
    return [h.id for h in hits]


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    for name, enc in [("splade", "splade-tiny"), ("bm25", "bm25")]:
        ix = SparseIndex.create(root / name, encoder=enc)
        ix.add(DOCS)
        ix.commit()
        ix.close()
    return root


@pytest.mark.model
@pytest.mark.parametrize(
    "name, given, saved_words, given_words",
    [
        ("splade", "bm25", "SPLADE (splade-tiny", "not BM25"),
        ("splade", "Qdrant/bm25", "SPLADE (splade-tiny", "not Qdrant/bm25"),
        ("bm25", "splade-tiny", "built with BM25", "not SPLADE"),
    ],
)
def test_open_refuses_an_encoder_of_another_kind(indexes, name, given, saved_words, given_words):
    path = indexes / name
    before = _digest(path)
    with pytest.raises(ValueError) as e:
        SparseIndex.open(path, encoder=given)
    msg = str(e.value)
    assert str(path) in msg and saved_words in msg and given_words in msg and "without encoder=" in msg
    # nothing written, and the index opens with its own encoder as before
    assert _digest(path) == before
    with SparseIndex.open(path) as ix:
        assert ids(ix.search("music", k=2))


@pytest.mark.model
def test_open_with_the_same_kind_of_encoder(indexes):
    with SparseIndex.open(indexes / "splade") as own, SparseIndex.open(indexes / "splade", encoder="splade-tiny") as ix:
        assert ids(ix.search("rock music", k=3)) == ids(own.search("rock music", k=3))
    # a fresh BM25 encoder of the same settings takes the index's term dictionary (before: an
    # empty one, so that no query term matched and new documents reused the ids of old terms)
    with SparseIndex.open(indexes / "bm25") as own, SparseIndex.open(indexes / "bm25", encoder=Bm25Encoder()) as ix:
        assert ids(ix.search("rock music", k=3)) == ids(own.search("rock music", k=3)) != []
        assert ix.encoder.vocabulary == own.encoder.vocabulary
    with pytest.raises(ValueError, match=r"other settings: k1 1\.2 \(given 2\.0\)"):
        SparseIndex.open(indexes / "bm25", encoder=Bm25Encoder(k1=2.0))


@pytest.mark.model
def test_refresh_follows_an_index_replaced_by_another_encoders(tmp_path):
    path = tmp_path / "ix"
    first = SparseIndex(encoder="splade-tiny")
    first.add(DOCS)
    first.save(path)
    reader = SparseIndex.open(path)
    assert reader.encoder_identity["kind"] == "splade"
    other = SparseIndex(encoder="bm25")
    other.add(["music music music", "other stuff"], ids=["m1", "m2"])
    other.save(path)
    assert reader.refresh()
    assert reader.encoder_identity["kind"] == "bm25"
    with SparseIndex.open(path) as fresh:
        assert ids(reader.search("music", k=2)) == ids(fresh.search("music", k=2)) == ["m1"]
    # an encoder given at open that no longer matches: a warning, and the index's own encoder
    given = SparseIndex.open(path, encoder="bm25")
    again = SparseIndex(encoder="splade-tiny")
    again.add(DOCS)
    again.save(path)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert given.refresh()
    assert any("now holds another index" in str(x.message) for x in w)
    assert given.encoder_identity["kind"] == "splade"
    with SparseIndex.open(path) as fresh:
        assert ids(given.search("rock music", k=3)) == ids(fresh.search("rock music", k=3))
    # a vectors-only index replaced by a BM25 one: text search works after refresh
    vec = SparseIndex.create(tmp_path / "v", encoder=None)
    vec.add([{1: 1.0}, {2: 1.0}], ids=["x", "y"])
    vec.commit()
    vec.close()
    r = SparseIndex.open(tmp_path / "v")
    bm = SparseIndex(encoder="bm25")
    bm.add(["hello world", "goodbye"], ids=["h", "g"])
    bm.save(tmp_path / "v")
    assert r.refresh() and ids(r.search("hello", k=2)) == ["h"]
    for ix in (reader, given, r):
        ix.close()


@pytest.mark.model
def test_blank_documents_get_no_vector():
    ix = SparseIndex()
    ix.add(["", "   ", "\u200b", "cats and dogs", "what is the meaning of a word in mathematics"])
    assert [ix.get(i).vector.nnz for i in range(3)] == [0, 0, 0]
    assert ix.get(3).vector.nnz > 0
    # before, the blank documents ranked first for common words, by [CLS]/[SEP]'s weights
    assert set(ids(ix.search("the a of is", k=5))) <= {3, 4}
    assert set(ids(ix.search(".", k=5))) <= {3, 4}
    # the encoder itself still gives fastembed's vector unless asked
    enc = SpladeEncoder("splade-tiny", progress=False)
    assert enc.encode_documents([""])[0].nnz > 0
    assert enc.encode_documents(["", "  x"], blank_as_empty=True)[0].nnz == 0


def test_argument_checks():
    with pytest.raises(ValueError, match="vocab_size is for vectors you bring"):
        SparseIndex(encoder="bm25", vocab_size=2)
    ix = SparseIndex(encoder="bm25")
    ix.add(["alpha beta gamma"])
    with pytest.raises(ValueError, match="top_k must be between 0"):
        ix.decode("alpha beta", top_k=-3)
    with pytest.raises(TypeError, match="top_k must be an integer"):
        ix.decode("alpha beta", top_k=1.5)
    with pytest.raises(ValueError, match="top_terms must be between 0"):
        ix.explain("alpha", 0, top_terms=-2)
    assert ix.decode("alpha beta", top_k=0) == []
    assert len(ix.decode("alpha beta", top_k=1)) == 1
    assert len(ix.explain("alpha", 0, top_terms=None).document_terms) == 3


def test_cli_eval_empty_queries_and_one_line_qrels(tmp_path, capsys):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "alpha beta"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    (tmp_path / "q.jsonl").write_text("")
    (tmp_path / "qrels.txt").write_text("q1 0 a 1\n")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "ix"), str(tmp_path / "q.jsonl"), str(tmp_path / "qrels.txt")]) != 0
    assert "q.jsonl: no queries" in capsys.readouterr().err
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "alpha"}\n')
    (tmp_path / "bad.txt").write_text("q1 0 a x\n")
    assert main(["eval", str(tmp_path / "ix"), str(tmp_path / "q.jsonl"), str(tmp_path / "bad.txt")]) != 0
    err = capsys.readouterr().err
    assert "bad.txt: no judgements" in err and "line 1" in err and "'x'" in err and "header" in err


def test_cli_messages_name_what_is_wrong(tmp_path, capsys):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "alpha beta"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    (tmp_path / "q.tsv").write_text("q1\talpha\n")
    capsys.readouterr()
    out = tmp_path / "sub" / "none" / "r.trec"
    assert main(["run", str(tmp_path / "q.tsv"), str(tmp_path / "ix"), "-o", str(out)]) != 0
    assert f"its folder {out.parent} does not exist" in capsys.readouterr().err
    vec = SparseIndex.create(tmp_path / "v", encoder=None)
    vec.add([{1: 1.0}])
    vec.commit()
    vec.close()
    assert main(["search", str(tmp_path / "v"), "hello"]) != 0
    err = capsys.readouterr().err
    assert "holds vectors you bring" in err and "from Python" in err
    assert main(["serve", str(tmp_path / "ix"), "--host", "999.1.1.1", "--port", "8799"]) != 0
    assert "--host 999.1.1.1" in capsys.readouterr().err
    (tmp_path / "sh").mkdir()  # a sharded index (its shards.json) without --ray: says to use --ray
    (tmp_path / "sh" / "shards.json").write_text("{}")
    assert main(["serve", str(tmp_path / "sh")]) != 0
    assert "is a sharded index (it has shards.json): serve it with --ray" in capsys.readouterr().err


def test_cli_shows_library_warnings_as_its_own(tmp_path, capsys):
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "alpha beta"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    (tmp_path / "q.jsonl").write_text('{"id": "zz", "text": "alpha"}\n')
    (tmp_path / "qrels.txt").write_text("q1 0 a 1\n")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "ix"), str(tmp_path / "q.jsonl"), str(tmp_path / "qrels.txt")]) == 0
    err = capsys.readouterr().err
    # one line, the CLI's prefix, no "file:line: UserWarning" nor the source line after it
    assert err.startswith("sparsedex: warning: no query of the run is judged") and err.count("\n") == 1, err
    assert "UserWarning" not in err


@pytest.mark.model
def test_refresh_follows_settings_and_races_with_a_lazy_model_load(tmp_path, monkeypatch):
    from sparsedex.encoders import registry
    from sparsedex.encoders.fastembed_bm25 import FastembedBm25Encoder

    # Qdrant/bm25 replaced by Qdrant/bm25 of other settings: the handle takes the new settings
    path = tmp_path / "q"
    a = SparseIndex(FastembedBm25Encoder())
    a.add(DOCS, ids=list("abcd"))
    a.save(path)
    r = SparseIndex.open(path)
    assert r.encoder_identity["k"] == 1.2
    b = SparseIndex(FastembedBm25Encoder(k=0.5, b=0.3))
    b.add(DOCS, ids=list("abcd"))
    b.save(path)
    assert r.refresh() and r.encoder_identity["k"] == 0.5
    r.add(["more rock music"], ids=["e"])
    r.commit()
    r.close()
    assert SparseIndex.open(path).encoder_identity["k"] == 0.5

    # the handle's SPLADE model loads lazily; a refresh to a BM25 index while it loads must win
    sp_path = tmp_path / "s"
    sp = SparseIndex(encoder="splade-tiny")
    sp.add(DOCS)
    sp.save(sp_path)
    h = SparseIndex.open(sp_path)
    real = registry.load_encoder

    def load_then_replace(ident, *args, **kwargs):
        enc = real(ident, *args, **kwargs)
        bm = SparseIndex(encoder="bm25")
        bm.add(["rock music", "other"], ids=["b0", "b1"])
        bm.save(sp_path)
        assert h.refresh()
        return enc

    monkeypatch.setattr(registry, "load_encoder", load_then_replace)
    h.encoder  # loads splade-tiny, during which the directory becomes a BM25 index
    monkeypatch.setattr(registry, "load_encoder", real)
    assert h.encoder_identity["kind"] == "bm25"
    with SparseIndex.open(sp_path) as fresh:
        assert ids(h.search("rock music", k=2)) == ids(fresh.search("rock music", k=2)) == ["b0"]
    h.close()


@pytest.mark.model
def test_a_custom_encoder_keeps_the_saved_identity(indexes, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(indexes / "splade", path)

    class Custom:  # wraps the index's model; no identity()
        def __init__(self):
            self.inner = SpladeEncoder("splade-tiny", progress=False)

        def encode_documents(self, texts):
            return self.inner.encode_documents(texts)

        def encode_queries(self, texts):
            return self.inner.encode_queries(texts)

    with SparseIndex.open(path, encoder=Custom()) as ix:
        ix.add(["a new document about rock"], ids=[99])
        ix.commit()
    with SparseIndex.open(path) as ix:
        assert ix.encoder_identity["kind"] == "splade"
        assert 99 in ids(ix.search("rock", k=10))
