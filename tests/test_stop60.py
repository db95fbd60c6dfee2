"""Stop 60: hand-edited index settings and documents are CorruptIndexError; encoders'
``decode`` refuses a negative ``top_k`` (helper-127)."""

import copy
import sqlite3
import zlib

import pytest

from sparsedex import CorruptIndexError, SparseIndex
from sparsedex.docs import SqliteDocs, payload_json, write_docs
from sparsedex.encoders.bm25 import Bm25Encoder
from sparsedex.encoders.fastembed_bm25 import FastembedBm25Encoder


def _commit_settings(path, edit) -> None:
    """Commit the index at ``path`` with its settings changed by ``edit`` (through the store's
    own commit, so sizes and checksums are right: only the settings' meaning is wrong)."""
    ix = SparseIndex.open(path)
    settings = copy.deepcopy({k: v for k, v in ix._store.settings.items() if k not in ("format", "version")})
    edit(settings)
    ix._store.set_settings(settings)
    ix._store.commit()
    ix.close()


@pytest.mark.parametrize(
    "label, edit, says",
    [
        ("analyzer null", lambda s: s["encoder"].__setitem__("analyzer", None), "unreadable BM25 encoder settings"),
        ("bad token pattern", lambda s: s["encoder"]["analyzer"].__setitem__("token_pattern", "("),
         "unreadable BM25 encoder settings"),
        ("splade on a BM25 engine", lambda s: s["encoder"].__setitem__("kind", "splade"),
         "the settings name a splade encoder but the engine weights with BM25"),
        ("empty identity", lambda s: s.__setitem__("encoder", {}), "the encoder identity names no kind"),
        ("no encoder on a BM25 engine", lambda s: s.__setitem__("encoder", None),
         "the engine weights with BM25 but the settings name no encoder"),
    ],
)
def test_edited_bm25_settings_are_corrupt(tmp_path, label, edit, says):
    path = tmp_path / "ix"
    with SparseIndex("bm25", path=path) as ix:
        ix.add(["python package", "rust crate"])
        ix.commit()
    _commit_settings(path, edit)
    # before: AttributeError, KeyError, re.error at open or at the first text search, or the
    # BM25 engine opened as an index of vectors you bring
    with pytest.raises(CorruptIndexError, match=says):
        SparseIndex.open(path).search("python")


@pytest.mark.parametrize(
    "ident, says",
    [
        (5, "the encoder identity is a int, not an object"),
        ({"kind": "bm25", "k1": 1.2, "b": 0.75}, "the settings name a bm25 encoder but the engine does not weight"),
        ({"kind": "splade"}, "the SPLADE encoder names no model"),
        ({"kind": 7}, "the encoder identity names no kind .kind 7"),
    ],
)
def test_edited_vector_index_settings_are_corrupt(tmp_path, ident, says):
    path = tmp_path / "ix"
    with SparseIndex(encoder=None, path=path) as ix:
        ix.add([{1: 1.0}])
        ix.commit()
    _commit_settings(path, lambda s: s.__setitem__("encoder", ident))
    with pytest.raises(CorruptIndexError, match=says):
        SparseIndex.open(path)


def _docs_db(tmp_path, payload_text, fmt="sparsedex-docs"):
    """A documents database of 2 documents, the second's payload text and the format edited
    in afterwards (write_docs takes standard JSON only)."""
    f = tmp_path / "seg-000001.docs"
    write_docs(f, "seg-000001", [payload_json({"n": 1}), payload_json({"n": 0})], None)
    conn = sqlite3.connect(f)
    conn.execute("UPDATE docs SET payload = ? WHERE doc = 1", (payload_text,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (fmt,))
    conn.commit()
    conn.close()
    # the CRC32 the manifest would record for it (the first read checks it, then the schema)
    return SqliteDocs(f, 2, crc32=zlib.crc32(f.read_bytes()))


def test_documents_with_nan_or_another_format_are_corrupt(tmp_path):
    # add() refuses NaN in a payload; one edited into the file was returned as nan by get and
    # search while a filter on it said the file was damaged
    with pytest.raises(CorruptIndexError, match="a payload is not JSON .NaN is not a JSON value"):
        _docs_db(tmp_path, '{"n":NaN}').payloads([0, 1])
    assert _docs_db(tmp_path, '{"n":2}').payloads([0, 1]) == [{"n": 1}, {"n": 2}]
    with pytest.raises(CorruptIndexError, match=r"not a sparsedex documents database \(format 'x'\)"):
        _docs_db(tmp_path, '{"n":2}', fmt="x").payloads([0])


def test_decode_refuses_a_negative_top_k():
    for enc in (Bm25Encoder(), FastembedBm25Encoder()):
        vec = list(enc.encode_documents(["alpha beta"]))[0]
        # before: a negative top_k returned [] quietly (explain's top_terms refused it)
        with pytest.raises(ValueError, match="top_k must be between 0"):
            enc.decode(vec, top_k=-1)
        with pytest.raises(TypeError, match="top_k must be an integer"):
            enc.decode(vec, top_k=1.5)
        assert len(enc.decode(vec, top_k=1)) == 1 and enc.decode(vec, top_k=0) == []


def _cli(capsys, *args):
    from sparsedex.cli import main

    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_delete_missing_ok_takes_an_id_of_the_other_type(tmp_path, capsys):
    path = tmp_path / "ix"
    with SparseIndex("bm25", path=path) as ix:
        ix.add(["alpha", "beta"], ids=[0, 1])
        ix.commit()
    rc, _, err = _cli(capsys, "delete", path, "nosuch")
    assert rc == 1 and "no document with id 'nosuch'" in err
    # before: the same error with --missing-ok, which a string-id index took as missing
    rc, out, _ = _cli(capsys, "delete", path, "nosuch", "1", "--missing-ok")
    assert rc == 0 and "deleted 1 document from" in out, out
    assert SparseIndex.open(path).ids() == [0]


def test_cli_merge_interrupted_after_a_commit_says_what_was_merged(tmp_path, capsys, monkeypatch):
    from sparsedex.store import Store

    path = tmp_path / "ix"
    with SparseIndex("bm25", path=path) as ix:
        for i in range(3):
            ix.add([f"text {i}"], ids=[i])
            ix.commit()
        assert len(ix.segments()) == 3
    real = Store.merge

    def merged_then_interrupted(self, max_segments=1):
        # a Ctrl-C once the merge is committed (during the reordering that follows it)
        real(self, max_segments)
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "merge", merged_then_interrupted)
    rc, _, err = _cli(capsys, "merge", path)
    assert rc == 130 and "was merged in part before the interrupt: 3 -> 1 segments (commit" in err, err
    assert len(SparseIndex.open(path).segments()) == 1

    def interrupted_at_once(self, max_segments=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "merge", interrupted_at_once)
    rc, _, err = _cli(capsys, "merge", path)
    assert rc == 130 and "merged in part" not in err and "interrupted" in err, err


def test_info_counts_terms_and_vocabulary_once_over_segments(tmp_path):
    ix = SparseIndex(None, path=tmp_path / "s")
    for i in range(3):
        ix.add([{5: 1.0, 100000: 2.0 * (i + 1)}], ids=[i])
        ix.commit()
    ix.add([{7: 1.0}], ids=[3], payloads=None)
    ix.commit()
    assert len(ix.segments()) == 4
    eng = ix.info()["engine"]
    # before: vocabulary 300009 and terms 7, summed over segments
    assert (eng["vocabulary"], eng["terms"], eng["postings"], eng["documents"]) == (100001, 3, 7, 4), eng
    ix.merge()
    merged = ix.info()["engine"]
    assert (merged["vocabulary"], merged["terms"], merged["postings"]) == (100001, 3, 7), merged
    ix.close()


def test_fusion_arguments_and_large_scores():
    from sparsedex import fusion

    # scores from about 1e154 on overflowed the squares: NaN came back
    hits = fusion.dbsf([[("a", 1e308), ("b", -1e308)]])
    assert [h.id for h in hits] == ["a", "b"] and hits[0].score == pytest.approx(0.6178511, rel=1e-6)
    assert [round(h.score, 6) for h in fusion.dbsf([[("a", 3e200), ("b", 1e200), ("c", 2e200)]])] == [
        round(h.score, 6) for h in fusion.dbsf([[("a", 3.0), ("b", 1.0), ("c", 2.0)]])]
    with pytest.raises(TypeError, match="k must be a finite number > 0, got 'abc'"):
        fusion.rrf([["a"]], k="abc")
    with pytest.raises(TypeError, match="got True"):
        fusion.rrf([["a"]], k=True)
    with pytest.raises(TypeError, match="weight 0 is None: weights must be numbers"):
        fusion.rrf([["a"]], weights=[None])
    for bad in ("1.0", True):
        with pytest.raises(TypeError, match="run 0, item 0: score .* is not a number"):
            fusion.dbsf([[("a", bad)]])
    ix = SparseIndex(None)
    ix.add([{1: 1.0}])
    with pytest.raises(ValueError, match="depth must be between"):
        fusion.hybrid_search([ix], {1: 1.0}, depth=2**64)


def test_filter_integer_beyond_the_text_limit_is_a_filter_error():
    from sparsedex.filters import FilterError

    ix = SparseIndex(None)
    ix.add([{1: 1.0}], payloads=[{"x": 1}])
    for flt, where in (({"x": 10**5000}, "filter at x:"), ({"x": {"$in": [1, 10**5000]}}, r"filter at x.\$in\[1\]:")):
        # before: Python's "Exceeds the limit (4300 digits) for integer string conversion"
        with pytest.raises(FilterError, match=where + " the integer has too many digits"):
            ix.search({1: 1.0}, filter=flt)


def test_to_qdrant_and_explain_table_argument_checks():
    from sparsedex import export

    with pytest.raises(TypeError, match="index must be a SparseIndex, got str"):
        export.to_qdrant("notanindex", None, "c")
    ix = SparseIndex("bm25")
    ix.add(["the cat sat on the mat with a hat"], ids=["d"])
    with pytest.raises(TypeError, match="client must be a qdrant_client.QdrantClient, got NoneType"):
        export.to_qdrant(ix, None, "c")
    e = ix.explain("cat mat hat", "d")
    with pytest.raises(ValueError, match="limit must be between 0"):
        e.table(limit=-1)  # took every row but the last
    lines = e.table(limit=0).splitlines()
    # the rest's label fits the term column: every line as wide as the header
    assert lines[2].startswith("(3 more)") and len({len(x) for x in lines}) == 1, lines


def test_an_index_of_a_custom_encoder_still_opens_with_it(tmp_path):
    import numpy as np

    from sparsedex.vectors import SparseEmbedding

    class Mine:
        kind = "mine"

        def identity(self):
            return {"kind": "mine", "v": 1}

        def encode_documents(self, texts):
            return [SparseEmbedding(np.array([len(t) % 7, 10], np.uint32), np.array([1.0, 0.5], np.float32))
                    for t in texts]

        encode_queries = encode_documents

    ix = SparseIndex(Mine())
    ix.add(["a b", "cat"], ids=["x", "y"])
    ix.save(tmp_path / "m")
    # the settings check of stop 60 first called such an index corrupt (helper-130)
    back = SparseIndex.open(tmp_path / "m", encoder=Mine())
    assert [h.id for h in back.search("cat")] == [h.id for h in ix.search("cat")]


def test_fusion_numbers_at_the_ends_of_the_float_range():
    from decimal import Decimal
    from fractions import Fraction

    import numpy as np

    from sparsedex import fusion

    # every score normalised to 0.5 below about 1e-162 (underflow)
    tiny = [round(h.score, 6) for h in fusion.dbsf([[("a", 3e-170), ("b", 2e-170), ("c", 1e-170)]])]
    assert tiny == [0.666667, 0.5, 0.333333]
    # real numbers float() takes are scores and weights
    hits = fusion.dbsf([[("a", Fraction(1, 3)), ("b", Decimal("0.5")), ("c", np.array(0.25))]])
    assert [h.id for h in hits] == ["b", "a", "c"]
    assert [h.id for h in fusion.rrf([["a", "b"], ["b"]], weights=[Fraction(1, 2), 1])] == ["b", "a"]
    for call, what in ((lambda: fusion.rrf([["a"]], k=10**400), "k"),
                       (lambda: fusion.rrf([["a"]], weights=[10**400]), "weight 0"),
                       (lambda: fusion.dbsf([[("a", 10**400)]]), "run 0, item 0: score")):
        # a bare OverflowError before
        with pytest.raises(ValueError, match=what + " .* is beyond the range of a float"):
            call()


def test_huge_integers_in_qdrant_ranges_and_overflowing_stored_numbers(tmp_path):
    ix = SparseIndex(None)
    ix.add([{1: 1.0}, {1: 2.0}], ids=[0, 1], payloads=[{"h": 5}, {"h": -(10**401)}])
    rng = {"must": [{"key": "h", "range": {"gte": -(10**400)}}]}
    assert [h.id for h in ix.search({1: 1.0}, query_filter=rng)] == [0]  # OverflowError before
    # a stored 1e999 read as inf (add() never stores it)
    with pytest.raises(CorruptIndexError, match="1e999 is beyond the range of a float"):
        _docs_db(tmp_path, '{"n":1e999}').payloads([0, 1])


def test_cli_integer_ids_are_plain_decimals(tmp_path, capsys):
    path = tmp_path / "ix"
    with SparseIndex("bm25", path=path) as ix:
        ix.add(["alpha", "beta", "gamma"], ids=[3, 10, 11])
        ix.commit()
    for raw in ("1_0", "\u0663"):  # int() read them as 10 and 3
        rc, _, err = _cli(capsys, "delete", path, raw)
        assert rc == 1 and "its ids are integers" in err, err
    rc, out, _ = _cli(capsys, "delete", path, "+10", "-5", "--missing-ok")
    assert rc == 0 and "deleted 1 document" in out
    assert sorted(SparseIndex.open(path).ids()) == [3, 11]


def test_explain_table_columns_fit_their_widest_cell():
    ix = SparseIndex(None, quantization="float")
    ix.add([{1: 123456.0, 2: 0.5, 3: 1e7}], ids=["d"])
    e = ix.explain({1: 1000.0, 2: 1.0, 3: 1e6}, "d")
    for limit in (0, 1, 2, None):
        lines = e.table(limit=limit).splitlines()
        # a weight of 1e8 pushed the columns after it out of line
        assert len({len(x) for x in lines}) == 1, lines
