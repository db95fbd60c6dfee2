"""Stop 63: open items of earlier stops. The CLI refuses an empty field name as a usage error;
algorithm names are matched case-insensitively, as README says."""

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.cli import main


@pytest.mark.parametrize("flag", ["--id-field=", "--text-field="])
def test_empty_field_name_is_a_usage_error(capsys, tmp_path, flag):
    # "--id-field=" exited 1 with "no '' field" after reading the corpus (stop 62's open item)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n')
    with pytest.raises(SystemExit) as e:
        main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25", flag])
    assert e.value.code == 2
    assert f"argument {flag[:-1]}: '' names no field: name a JSON field" in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def test_algorithm_names_are_case_insensitive():
    ix = SparseIndex(encoder=None)
    ix.add([(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32))] * 3, ids=[1, 2, 3])
    want = ix.search(([2], [1.0]), k=2, algorithm="exhaustive")
    for name in ("AUTO", "Exhaustive", "BMP", "Taat-MaxScore"):
        assert ix.search(([2], [1.0]), k=2, algorithm=name) == want
    with pytest.raises(ValueError, match="algorithm"):
        ix.search(([2], [1.0]), k=2, algorithm="fastest")


def test_an_index_whose_model_moved_says_so_and_takes_another_copy(capsys, tmp_path):
    # helper-137: the CLI could not search an index once its model directory moved (no
    # --encoder on search/explain/eval/run/add/serve) and said only "unknown model '...'"
    import shutil
    from pathlib import Path

    import sparsedex
    from sparsedex.encoders.registry import ModelNotAvailableError

    bundled = Path(sparsedex.__file__).parent / "models" / "splade-tiny"
    model = tmp_path / "m"
    shutil.copytree(bundled, model)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "a rock band on tour"}\n{"id": "b", "text": "a quiet library"}\n')
    ix = tmp_path / "ix"
    assert main(["index", str(corpus), str(ix), "--encoder", str(model)]) == 0
    moved = tmp_path / "moved"
    model.rename(moved)
    capsys.readouterr()
    assert main(["search", str(ix), "band"]) == 1
    err = capsys.readouterr().err
    assert "the encoder recorded with the index cannot be re-created" in err and "--encoder DIR" in err
    assert main(["search", str(ix), "band", "--encoder", str(moved), "--json"]) == 0
    assert '"a"' in capsys.readouterr().out
    q = tmp_path / "q.tsv"
    q.write_text("q1\tband\n")
    assert main(["run", str(q), str(ix), "-o", str(tmp_path / "run.trec"), "--encoder", str(moved)]) == 0
    opened = SparseIndex.open(ix)
    with pytest.raises(ModelNotAvailableError, match=r"SparseIndex.open\(path, encoder=DIR\)"):
        opened.search("band")
    assert SparseIndex.open(ix, encoder=str(moved)).search("band", k=1)[0].id == "a"


def test_search_table_escapes_control_characters(capsys, tmp_path):
    # helper-137: NUL and ESC sequences of a stored text reached the terminal
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a\\u001bx", "text": "line1\\nline2\\u0000nul\\u001b[31mRED\\u001b[0m end"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "line1 end"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out
    assert "a\\x1bx" in out and "line1 line2\\x00nul\\x1b[31mRED\\x1b[0m end" in out


def test_ids_a_run_cannot_hold_are_warned_at_index_time_and_named_with_their_query(capsys, tmp_path):
    # helper-137: index took them without a word; run then refused them without naming the query
    corpus = tmp_path / "w.jsonl"
    corpus.write_text('{"id": "a b", "text": "hello world"}\n{"id": "", "text": "hello there"}\n'
                      '{"id": "ok", "text": "hello"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    err = capsys.readouterr().err
    assert "w.jsonl:1: document id 'a b' is empty or holds whitespace (and 1 more): `sparsedex run`" in err
    (tmp_path / "q.tsv").write_text("q1\thello\n")
    assert main(["run", str(tmp_path / "q.tsv"), str(tmp_path / "ix"), "-o", "-"]) == 1
    assert "query 'q1': document id " in capsys.readouterr().err
    (tmp_path / "more.jsonl").write_text('{"id": "c d", "text": "x"}\n')
    assert main(["add", str(tmp_path / "ix"), str(tmp_path / "more.jsonl")]) == 0
    assert "more.jsonl:1: document id 'c d' is empty or holds whitespace:" in capsys.readouterr().err


def test_cli_wording(capsys, tmp_path):
    # helper-137: "starting at at column", "1 documents", "bm25: (1.2000000476837158, 0.75)", gzip
    import gzip

    (tmp_path / "t.jsonl").write_text('{"id": "a", "text": "abc\n')
    assert main(["index", str(tmp_path / "t.jsonl"), str(tmp_path / "tx"), "--encoder", "bm25"]) == 1
    assert "bad JSON line (Unterminated string starting at column 21)" in capsys.readouterr().err
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b'{"id": "a", "text": "x"}\n'))
    assert main(["index", str(tmp_path / "c.jsonl.gz"), str(tmp_path / "gx"), "--encoder", "bm25"]) == 1
    assert "the file looks gzip-compressed: decompress it first" in capsys.readouterr().err
    (tmp_path / "c.jsonl").write_text('{"id": "a", "text": "x"}\n')
    assert main(["index", str(tmp_path / "c.jsonl"), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    assert "indexed 1 document into" in capsys.readouterr().out
    assert main(["add", str(tmp_path / "ix"), str(tmp_path / "c.jsonl")]) == 0
    assert "added or replaced 1 document in" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "ix")]) == 0
    assert "1.2, 0.75" in capsys.readouterr().out


def test_text_inputs_named_as_what_they_are():
    import pandas as pd

    from sparsedex import Bm25Encoder

    ix = SparseIndex("bm25")
    with pytest.raises(TypeError, match=r"document 1 is a missing value \(NaN\), not a str"):
        ix.add(pd.Series(["x", None]))
    with pytest.raises(TypeError, match="documents is a set, which has no order: pass a list"):
        ix.add({"a", "b"})
    assert len(ix) == 0
    for bad in ("1", True, None):
        with pytest.raises(TypeError, match="k1 must be a number"):
            Bm25Encoder(k1=bad)
    with pytest.raises(TypeError, match="b must be a number"):
        Bm25Encoder(b="0.5")


def test_a_directory_in_place_of_a_documents_file_is_named_so(tmp_path):
    # helper-138: it read as "4096 bytes, the manifest records N (truncated ...)"
    from sparsedex import CorruptIndexError

    ix = SparseIndex(encoder=None)
    ix.add([(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32))] * 3, ids=[1, 2, 3])
    ix.save(tmp_path / "ix")
    docs = next((tmp_path / "ix").glob("seg-*.docs"))
    docs.unlink()
    docs.mkdir()
    with pytest.raises(CorruptIndexError, match=r"\.docs: not a regular file \(an attachment of segment seg-"):
        SparseIndex.open(tmp_path / "ix").search(([1], [1.0]), k=3, with_payload=True)


def test_coo_documents_with_repeated_entries_are_refused_as_csr_ones_are():
    # helper-140: tocsr() summed them (1 + 2 stored as 3) without a word
    import scipy.sparse as sp

    for make in (sp.coo_matrix, sp.coo_array):
        coo = make((np.array([1.0, 2.0, 3.0]), (np.array([1, 0, 1]), np.array([5, 4, 5]))), shape=(2, 10))
        ix = SparseIndex(encoder=None)
        with pytest.raises(ValueError, match="document 1: term id 5 appears more than once"):
            ix.add(coo)
        assert len(ix) == 0
    ok = sp.coo_matrix((np.array([1.0, 2.0, 3.0]), (np.array([1, 0, 1]), np.array([6, 4, 5]))), shape=(2, 10))
    ix = SparseIndex(encoder=None)
    ix.add(ok)
    assert ix.get(1).vector.indices.tolist() == [5, 6] and ix.get(1).vector.values.tolist() == [3.0, 1.0]


def test_bad_weights_name_their_term():
    # helper-140: a dict document's "values[0]" said nothing about which term
    import scipy.sparse as sp

    with pytest.raises(ValueError, match=r"document 3: the weight of term 1 is a missing value \(NaN\), not a number"):
        SparseIndex(encoder=None).add([{1: 1.0}, {1: 1.0}, {2: 1.0}, {1: float("nan")}])
    with pytest.raises(ValueError, match=r"above the largest weight .* \(the weight of term 5\)"):
        SparseIndex(encoder=None).add([{1: 1.0}, {5: 2e14}])
    with pytest.raises(ValueError, match=r"query: values\[0\] = -1.0 is negative \(the weight of term 2\)"):
        SparseIndex(encoder=None).search({2: -1.0})
    csr = sp.csr_matrix((np.array([1.0, 2e14]), np.array([4, 7]), np.array([0, 1, 2])), shape=(2, 10))
    with pytest.raises(ValueError, match=r"document 1: weight 2e\+14 of term 7 is above the largest weight"):
        SparseIndex(encoder=None).add(csr)


def test_a_qdrant_filter_given_to_filter_says_where_it_goes():
    models = pytest.importorskip("qdrant_client.models")
    from sparsedex import FilterError

    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}], payloads=[{"a": 1}])
    f = models.Filter(must=[models.FieldCondition(key="a", match=models.MatchValue(value=1))])
    with pytest.raises(FilterError, match="a qdrant_client Filter goes to query_filter="):
        ix.search({1: 1.0}, filter=f)
    assert [h.id for h in ix.search({1: 1.0}, query_filter=f)] == [0]


def _splade_copy(tmp_path, name):
    import shutil
    from pathlib import Path

    import sparsedex

    out = tmp_path / name
    shutil.copytree(Path(sparsedex.__file__).parent / "models" / "splade-tiny", out)
    return out


def test_another_model_of_the_same_vocabulary_is_refused(capsys, tmp_path):
    # helper-139: --encoder / open(encoder=) took a model of the same vocabulary size but other
    # weights, and searched (and `add` re-recorded it) with vectors of another model
    m1 = _splade_copy(tmp_path, "m1")
    m2 = _splade_copy(tmp_path, "m2")
    import onnx

    model = onnx.load(str(m2 / "model.onnx"))
    model.doc_string = "another model"  # same graph and vocabulary, another sha256
    onnx.save(model, str(m2 / "model.onnx"))
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "a rock band on tour"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", str(m1)]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "band", "--encoder", str(m2)]) == 1
    err = capsys.readouterr().err
    assert "whose model.onnx has sha256" in err and "(run it without --encoder to use its own)" in err
    with pytest.raises(ValueError, match=r"another model, or one changed since.*open it without encoder="):
        SparseIndex.open(tmp_path / "ix", encoder=str(m2))
    assert main(["add", str(tmp_path / "ix"), str(corpus), "--encoder", str(m2)]) == 1
    assert SparseIndex.open(tmp_path / "ix").encoder_identity["model"] == str(m1.resolve())


def test_cli_encoder_on_an_index_of_vectors_you_bring_is_refused(capsys, tmp_path):
    ix = SparseIndex.create(tmp_path / "v", encoder=None)
    ix.add([([1, 2], [1.0, 2.0])], ids=["d"])
    ix.commit()
    ix.close()
    assert main(["search", str(tmp_path / "v"), "band", "--encoder", "splade-tiny"]) == 1
    assert "holds vectors you bring (no model is recorded with it)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["search", str(tmp_path / "v"), "band", "--encoder", ""])
    assert e.value.code == 2


def test_ids_given_as_a_set_are_refused():
    ix = SparseIndex("bm25")
    with pytest.raises(TypeError, match="ids is a set, which has no order"):
        ix.add(["doc for apple", "doc for banana"], ids={"apple", "banana"})
    with pytest.raises(TypeError, match="ids is a frozenset, which has no order"):
        ix.add(["a", "b"], ids=frozenset({1, 2}))
    assert len(ix) == 0


def test_bm25_parameters_of_numpy_and_other_real_types():
    from decimal import Decimal
    from fractions import Fraction

    from sparsedex import Bm25Encoder

    assert Bm25Encoder(k1=np.float32(1.2), b=np.float32(0.6)).identity()["k1"] == 1.2
    assert Bm25Encoder(k1=Fraction(6, 5), b=Decimal("0.6")).b == 0.6
    with pytest.raises(ValueError, match="k1 must be finite, got an integer of 401 digits"):
        Bm25Encoder(k1=10**400)


def test_a_lock_that_is_a_fifo_is_named(tmp_path):
    import os

    ix = SparseIndex.create(tmp_path / "i", encoder=None)
    ix.add([([1], [1.0])], ids=[1])
    ix.commit()
    ix.close()
    (tmp_path / "i" / "LOCK").unlink(missing_ok=True)
    os.mkfifo(tmp_path / "i" / "LOCK")
    r = SparseIndex.open(tmp_path / "i")
    with pytest.raises(OSError, match="the writer lock LOCK is not a regular file, not a lock file: remove it"):
        r.add([([2], [1.0])], ids=[2])
    r.close()


def test_search_table_cuts_titles_and_escapes_format_characters(capsys, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a\\u202eb", "title": "' + "t" * 300 + '", "text": "hello"}\n'
                      '{"id": "z\\u200bz", "text": "hello there"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "hello"]) == 0
    out = capsys.readouterr().out
    assert "a\\u202eb" in out and "z\\u200bz" in out and "\u202e" not in out
    assert "t" * 67 + "..." in out and "t" * 68 not in out


def test_bm25_k1_past_what_its_impacts_hold():
    # helper-142: k1=1000 on a u8 index tied and misordered documents without a word; k1=1e20
    # did on a float index too
    from sparsedex import Bm25Encoder

    with pytest.warns(UserWarning, match="BM25 k1=1000 on a u8 index: its 8-bit impacts lose precision"):
        SparseIndex(Bm25Encoder(k1=1000))
    ix = SparseIndex(Bm25Encoder(k1=1000), quantization="float")
    ix.add(["a b c", "a a a a a a a b", "c"])
    assert [h.id for h in ix.search("a b")] == [1, 0]
    with pytest.raises(ValueError, match="k1 must be at most 1000"):
        Bm25Encoder(k1=1e20)


@pytest.mark.parametrize("pattern, message", [
    ("", "matches the empty string"), ("a*", "matches the empty string"), ("(?:x)|", "matches the empty string"),
    ("(", "is not a valid regular expression"), ("(a)(b)", "has capturing groups"),
])
def test_token_patterns_that_cannot_make_words_are_refused(pattern, message):
    # helper-142: "" became a term of every text (every document matched every query); groups
    # gave tuples; an invalid pattern a bare re.error
    from sparsedex.encoders.analysis import Analyzer

    with pytest.raises(ValueError, match=f"token_pattern .* {message}"):
        Analyzer(token_pattern=pattern)
    with pytest.raises(TypeError, match="stopwords must be"):
        Analyzer(stopwords=5)


def test_metric_names_and_qrels_dict_grades():
    from sparsedex.eval import evaluate, parse_metric

    for bad in ("ndcg@\u0663", "ndcg@99999999999999999999"):
        with pytest.raises(ValueError):
            parse_metric(bad)
    # a dict's grades stay unbounded with linear gains (stop 56's contract, test_stop56)
    assert evaluate({"q1": {"a": 1.0}}, {"q1": {"a": 2**40}}, ["map"])["map"] == 1.0


def test_cli_metrics_list_and_delete_of_nothing(capsys, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    (tmp_path / "q.tsv").write_text("q1\tx\n")
    (tmp_path / "qrels").write_text("q1 0 a 1\n")
    for metrics, message in (("ndcg@10,,map", "has an empty item"), ("ndcg@10,nDCG@10", "names the same metric")):
        with pytest.raises(SystemExit) as e:
            main(["eval", str(tmp_path / "ix"), str(tmp_path / "q.tsv"), str(tmp_path / "qrels"), "--metrics", metrics])
        assert e.value.code == 2 and message in capsys.readouterr().err
    gen = SparseIndex.open(tmp_path / "ix").generation
    assert main(["delete", str(tmp_path / "ix"), "zz", "--missing-ok"]) == 0
    assert SparseIndex.open(tmp_path / "ix").generation == gen  # nothing deleted: no commit


def test_models_with_external_weights_are_told_apart(tmp_path):
    # helper-141: the identity hashed model.onnx only, the same file for two models whose
    # weights live in model.onnx_data: the other model was taken, by open(encoder=) and by a
    # plain open after the data file was replaced
    import shutil

    import onnx
    from onnx import numpy_helper

    def external(src, dst, bump):
        shutil.copytree(src, dst)
        m = onnx.load(str(dst / "model.onnx"))
        if bump:
            t = next(t for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 1)
            a = numpy_helper.to_array(t).copy()
            a += 0.5
            t.CopyFrom(numpy_helper.from_array(a, t.name))
        (dst / "model.onnx").unlink()
        onnx.save(m, str(dst / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="model.onnx_data", size_threshold=0)

    base = _splade_copy(tmp_path, "base")
    external(base, tmp_path / "a", bump=False)
    external(base, tmp_path / "b", bump=True)
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()
    ix = SparseIndex(str(tmp_path / "a"), path=tmp_path / "ix")
    ix.add(["a rock band on tour", "a quiet library"])
    ix.commit()
    ix.close()
    with pytest.raises(ValueError, match="whose external data has sha256"):
        SparseIndex.open(tmp_path / "ix", encoder=str(tmp_path / "b"))
    assert SparseIndex.open(tmp_path / "ix", encoder=str(tmp_path / "a")).search("band", k=1)[0].id == 0
    shutil.copy(tmp_path / "b" / "model.onnx_data", tmp_path / "a" / "model.onnx_data")
    with pytest.raises(ValueError, match="external data's sha256"):
        SparseIndex.open(tmp_path / "ix").search("band")


def test_coo_check_keeps_one_dimensional_and_wide_matrices():
    # helper-141: the duplicate check refused a 1-D coo_array (IndexError) and took the columns
    # of a wide matrix for duplicates (row * width + column overflowed)
    import scipy.sparse as sp

    ix = SparseIndex(encoder=None)
    ix.add(sp.coo_array((np.array([3.0, 1.0]), (np.array([3, 4]),)), shape=(10,)))
    assert ix.get(0).vector.indices.tolist() == [3, 4]
    with pytest.raises(ValueError, match="document 0: term id 3 appears more than once"):
        SparseIndex(encoder=None).add(sp.coo_array((np.array([3.0, 1.0]), (np.array([3, 3]),)), shape=(10,)))
    ix = SparseIndex(encoder=None)
    assert ix.add(sp.coo_matrix(([1.0, 2.0], ([0, 4], [5, 5])), shape=(5, 2**62))) == [0, 1, 2, 3, 4]


def test_more_characters_escaped_and_messages(capsys, tmp_path):
    from decimal import Decimal

    from sparsedex import Bm25Encoder, FilterError

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "i\\u2028d", "text": "rock \\u061c\\u00ad end"}\n{"id": "x", "text": "other"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "rock"]) == 0
    out = capsys.readouterr().out
    assert "i\\u2028d" in out and "\\u061c\\xad" in out
    assert main(["delete", str(tmp_path / "ix"), "i\u2028d"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "ix")]) == 0
    assert "(1 deleted document not yet merged away)" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"k1 must be finite and >= 0, got Decimal\('sNaN'\)"):
        Bm25Encoder(k1=Decimal("sNaN"))
    with pytest.raises(TypeError, match=r"document 1 is a missing value \(Decimal\('NaN'\)\)"):
        SparseIndex("bm25").add(["a", Decimal("NaN")])
    models = pytest.importorskip("qdrant_client.models")
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}])
    with pytest.raises(FilterError, match="qdrant_client conditions go in a Filter, given to query_filter="):
        ix.search({1: 1.0}, filter=models.FieldCondition(key="a", match=models.MatchValue(value=1)))


def test_indexes_saved_before_the_new_bm25_rules_still_open(tmp_path):
    # helper-143: a saved one-group token_pattern (which analysed fine) or k1 > 1000 made the
    # index unopenable ("corrupt") once the rules for new encoders applied to saved ones too
    from sparsedex import Bm25Encoder
    from sparsedex.encoders.analysis import Analyzer

    docs = ["The quick brown fox", "Lazy dogs sleep all day", "A fox and a dog", "dogs dogs dogs fox"]
    want = SparseIndex(Bm25Encoder(Analyzer(token_pattern=r"\w+")))
    want.add(docs)
    ident = Bm25Encoder(Analyzer(token_pattern=r"\w+")).identity()
    ident["analyzer"]["token_pattern"] = r"(\w+)"  # as saved by an earlier version
    enc = Bm25Encoder.from_identity(ident)
    assert enc.analyzer.token_pattern == r"(\w+)" and enc.analyzer("dogs fox") == want.encoder.analyzer("dogs fox")
    ident = Bm25Encoder(k1=3).identity()
    ident["k1"] = 1500.0
    assert Bm25Encoder.from_identity(ident).k1 == 1500.0
    with pytest.raises(ValueError, match="got 1000.0000001"):
        Bm25Encoder(k1=1000.0000001)
    with pytest.raises(TypeError, match="stopwords must be words"):
        Analyzer(stopwords=["the", None])


def test_scipy_rows_in_a_list_of_documents_refuse_repeated_entries():
    # helper-143: a 1-D coo_array (or a 1 x V CSR row) in a list was summed; bare, refused
    import scipy.sparse as sp

    d = sp.coo_array((np.array([1.0, 2.0]), (np.array([5, 5]),)), shape=(10,))
    row = sp.csr_matrix((np.array([1.0, 2.0]), np.array([5, 5]), np.array([0, 2])), shape=(1, 10))
    for docs in ([d], [{1: 1.0}, row]):
        with pytest.raises(ValueError, match=r"document \d: term id 5 appears more than once"):
            SparseIndex(encoder=None).add(docs)
    ix = SparseIndex(encoder=None)
    ix.add([sp.coo_array((np.array([1.0, 2.0]), (np.array([6, 5]),)), shape=(10,))])
    assert ix.get(0).vector.indices.tolist() == [5, 6]
    assert ix.search(d)[0].score == 6.0  # a query's repeated entries are summed, as documented


def test_the_table_cuts_as_printed(capsys, tmp_path):
    from sparsedex.eval import evaluate

    # evaluate() returns a key per name given, aliases too (test_input_rules asks for mrr@10 and rr@10)
    assert evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["ndcg@10", "NDCG@010"]) == {"ndcg@10": 1.0, "NDCG@010": 1.0}
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "z1", "text": "jazz", "title": "' + "\\u200b" * 200 + '"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "jazz"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.endswith("...") and len(row.split("  ")[-1]) <= 70 and "\\u200b" in row


def test_a_matrix_in_a_list_of_documents_is_named_as_a_matrix():
    # helper-144: the repeat check of 61a1f30 read a 2-row matrix's column 0 twice as a repeat
    import scipy.sparse as sp

    for m in (sp.csr_array(np.array([[1.0, 0, 0], [1.0, 0, 0]])),
              sp.coo_array((np.array([1.0, 2.0]), (np.array([3, 5]), np.array([0, 0]))), shape=(50, 1))):
        with pytest.raises(TypeError, match="rows is .* vectors, not one"):
            SparseIndex(encoder=None).add([m])


def test_a_saved_analyzer_keeps_its_empty_matches_and_the_table_counts_columns(capsys, tmp_path):
    from sparsedex.encoders.analysis import Analyzer

    saved = Analyzer.from_config({**Analyzer().config(), "token_pattern": r"\w*"})
    assert "" in saved.words("rock city")  # as the index's documents were analysed
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "z1", "text": "jazz", "title": "' + "\u6f22" * 60 + '"}\n')
    assert main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "jazz"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.endswith("...") and row.count("\u6f22") == 33
