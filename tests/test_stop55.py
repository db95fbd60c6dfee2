"""Stop 55: helper-111's findings (a BM25 encoder on an index of vectors you bring; ...)."""

import warnings

import pytest

from sparsedex import Bm25Encoder, SparseIndex


@pytest.mark.parametrize("encoder", ["bm25", Bm25Encoder(k1=0.9), "Qdrant/bm25"])
def test_a_bm25_encoder_is_refused_for_an_index_of_vectors_you_bring(tmp_path, encoder):
    """Opening an index of vectors you bring with a BM25 encoder was accepted: BM25 query words
    matched the user's term ids (doc 1, without the word, ranked first) and the next commit
    recorded the index as a BM25 index; Qdrant/bm25 weighted the vector queries by idf
    (helper-112). Now a ValueError names the index and what it holds; a SPLADE encoder (the
    vectors may be its own) is still accepted."""
    p = tmp_path / "vec"
    v = SparseIndex.create(p)
    v.add([{0: 5.0, 1: 5.0}, {2: 1.0}], ids=[1, 2])
    v.commit()
    v.close()
    with pytest.raises(ValueError, match=r"vec: the index was built from vectors you bring, not with (BM25|Qdrant/bm25)"):
        SparseIndex.open(p, encoder=encoder)
    SparseIndex.open(p, encoder="splade-tiny").close()
    again = SparseIndex.open(p)  # untouched, still an index of vectors
    assert again.info()["encoder"] is None and sorted(again.ids()) == [1, 2]
    again.close()


def test_a_handle_with_a_bm25_encoder_switches_when_a_vectors_index_replaces_its_index(tmp_path):
    """refresh() onto an index of vectors saved in place of the BM25 index the handle was
    opened on with a BM25 encoder: the encoder no longer matches, the handle warns and drops it."""
    p = tmp_path / "ix"
    b = SparseIndex("bm25", path=p)
    b.add(["apple banana", "cherry"], ids=[1, 2])
    b.commit()
    b.close()
    h = SparseIndex.open(p, encoder="bm25")
    vec = SparseIndex(encoder=None, vocab_size=10)
    vec.add([{3: 1.0}], ids=[7])
    vec.save(p)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert h.refresh()
    assert any("built from vectors you bring, not with BM25" in str(x.message) for x in w), [str(x.message) for x in w]
    assert [hit.id for hit in h.search({3: 1.0})] == [7]
    h.close()


def test_a_documents_repr_names_only_its_fields():
    ix = SparseIndex(encoder=None, vocab_size=10)
    ix.add([{1: 1.0, 4: 2.0}], ids=["a"], payloads=[{"x": 1}])
    doc = ix.get("a")
    r = repr(doc)
    assert r == "Document(id='a', text=None, payload={'x': 1}, vector=<2 terms>)", r
    assert doc.vector.nnz == 2


def test_the_k_cap_suggests_only_a_max_k_the_command_line_takes():
    """helper-112 LOW: k = 10**30 over the cap suggested `--max-k 10**30`, which the CLI refuses."""
    from sparsedex import _http

    with pytest.raises(_http.OverCap) as e:
        _http._capped_k({"k": 10**30}, 1000)
    # no --max-k value past what the CLI takes (stop 56: the flag is named with its limit, helper-115)
    assert "--max-k 1000000000000000000000000000000" not in str(e.value) and "at most 1000" in str(e.value)
    assert "--max-k raises the cap, up to 9223372036854775807" in str(e.value)
    with pytest.raises(_http.OverCap) as e:
        _http._capped_k({"k": 5000}, 1000)
    assert "sparsedex serve --max-k 5000 to raise the cap" in str(e.value)
