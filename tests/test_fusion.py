"""sparsedex.fusion: reciprocal rank fusion and distribution-based score fusion."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsedex import Hit, fusion


def test_rrf_by_hand():
    a = [Hit("x", 9.0, {"t": "X"}), Hit("y", 5.0), Hit("z", 1.0)]
    b = [("y", 0.9), ("w", 0.8)]
    got = fusion.reciprocal_rank_fusion([a, b])
    want = {"x": 1 / 61, "y": 1 / 62 + 1 / 61, "z": 1 / 63, "w": 1 / 62}
    assert [h.id for h in got] == ["y", "x", "w", "z"]  # x and w: 1/61 > 1/62
    assert {h.id: h.score for h in got} == pytest.approx(want, rel=1e-15)
    assert got[1].payload == {"t": "X"}  # carried over from the hit
    assert fusion.rrf([a, b], k=1, limit=2)[0].score == pytest.approx(1 / 3 + 1 / 2)
    weighted = fusion.reciprocal_rank_fusion([a, b], weights=[2.0, 0.5])
    assert {h.id: h.score for h in weighted} == pytest.approx(
        {"x": 2 / 61, "y": 2 / 62 + 0.5 / 61, "z": 2 / 63, "w": 0.5 / 62})


def test_rrf_takes_bare_ids_dicts_numpy_ids_and_objects():
    scored_point = types.SimpleNamespace(id=np.int64(3), score=0.5, payload={"p": 1})  # qdrant-like
    runs = [[3, 4], {4: 2.0, 5: 1.0}, [scored_point]]
    got = fusion.rrf(runs)
    assert [h.id for h in got] == [3, 4, 5]
    assert type(got[0].id) is int and got[0].payload == {"p": 1}
    assert got[0].score == pytest.approx(1 / 61 + 1 / 61)
    assert fusion.rrf([]) == [] and fusion.rrf([[], []]) == []


def test_ties_go_to_the_first_run():
    got = fusion.rrf([["a", "b"], ["b", "a"]])
    assert got[0].score == got[1].score and [h.id for h in got] == ["a", "b"]
    got = fusion.rrf([["b", "a"], ["a", "b"]])
    assert [h.id for h in got] == ["b", "a"]
    got = fusion.dbsf([[("p", 1.0)], [("q", 7.0)]])  # both 0.5
    assert [h.id for h in got] == ["p", "q"]


def test_dbsf_by_hand():
    a = [("x", 10.0), ("y", 6.0), ("z", 2.0)]
    b = [("y", 0.3), ("w", 0.1)]
    got = {h.id: h.score for h in fusion.distribution_based_score_fusion([a, b])}

    def norm(scores):
        s = np.array(scores)
        m, sd = s.mean(), s.std(ddof=1)
        return (s - (m - 3 * sd)) / (6 * sd)

    na, nb = norm([10, 6, 2]), norm([0.3, 0.1])
    assert got == pytest.approx({"x": na[0], "y": na[1] + nb[0], "z": na[2], "w": nb[1]}, rel=1e-12)
    assert [h.score for h in fusion.dbsf([[("only", 3.0)]])] == [0.5]
    assert [h.score for h in fusion.dbsf([[("a", 2.0), ("b", 2.0)]])] == [0.5, 0.5]
    assert [h.score for h in fusion.dbsf([[(i, 1.35) for i in range(3)]])] == [0.5] * 3  # mean rounds
    w = {h.id: h.score for h in fusion.dbsf([a, b], weights=[0, 1])}
    assert w["x"] == 0 and w["w"] == pytest.approx(nb[1])


def _qdrant_dbsf(runs):
    """Qdrant's score_fusion with Distr normalisation, transcribed: float32 Welford, sample variance."""
    acc: dict = {}
    for run in runs:
        pts = [(i, np.float32(s)) for i, s in run]
        if len(pts) == 1:
            pts = [(pts[0][0], np.float32(0.5))]
        elif len(pts) > 1:
            mean, agg = np.float32(0), np.float32(0)
            for k, (_, s) in enumerate(pts, start=1):
                old = s - mean
                mean = mean + old / np.float32(k)
                agg = agg + old * (s - mean)
            std = np.sqrt(agg / np.float32(len(pts) - 1))
            lo, hi = mean - np.float32(3) * std, mean + np.float32(3) * std
            pts = [(i, np.float32(0.5) if lo == hi else (s - lo) / (hi - lo)) for i, s in pts]
        for i, s in pts:
            acc[i] = acc.get(i, np.float32(0)) + s
    return acc


# scores on a 0.01 grid: float32 (Qdrant) and float64 (here) then differ by rounding only
_run = st.lists(st.tuples(st.integers(0, 30), st.integers(-5000, 5000).map(lambda x: x / 100)), max_size=12).map(
    lambda xs: list({i: s for i, s in xs}.items()))


@given(st.lists(_run, min_size=1, max_size=4))
def test_dbsf_agrees_with_qdrants_algorithm(runs):
    got = {h.id: h.score for h in fusion.dbsf(runs)}
    want = _qdrant_dbsf(runs)
    assert set(got) == set(want)
    for i in got:
        assert got[i] == pytest.approx(float(want[i]), abs=2e-4, rel=1e-4)
    scores = [h.score for h in fusion.dbsf(runs)]
    assert scores == sorted(scores, reverse=True)


@given(st.lists(st.lists(st.integers(0, 40), unique=True, max_size=15), max_size=4), st.integers(1, 100))
def test_rrf_properties(runs, k):
    got = fusion.rrf(runs, k=k)
    assert {h.id for h in got} == {d for r in runs for d in r}
    for h in got:
        assert h.score == pytest.approx(sum(1 / (k + r.index(h.id) + 1) for r in runs if h.id in r))
    scores = [h.score for h in got]
    assert scores == sorted(scores, reverse=True)
    assert fusion.rrf(runs, k=k, limit=3) == got[:3]
    # Qdrant's default RRF (1 / (2 + position), position from 0) is k=1 here
    q = fusion.rrf(runs, k=1)
    for h in q:
        assert h.score == pytest.approx(sum(1 / (2 + r.index(h.id)) for r in runs if h.id in r))


def test_fuse_dispatch():
    runs = [[("a", 1.0), ("b", 0.5)], [("b", 3.0)]]
    assert fusion.fuse(runs) == fusion.rrf(runs)
    assert fusion.fuse(runs, "DBSF", limit=1) == fusion.dbsf(runs, limit=1)
    with pytest.raises(ValueError, match="unknown fusion method 'max'"):
        fusion.fuse(runs, "max")


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="run 0 is a Hit"):
        fusion.rrf([Hit("a", 1.0)])
    with pytest.raises(TypeError, match="runs must be a list"):
        fusion.rrf("abc")
    with pytest.raises(ValueError, match="run 1 ranks id 'a' twice"):
        fusion.rrf([["a"], ["a", "b", "a"]])
    with pytest.raises(ValueError, match="run 0, item 1 is a bare id.*needs scores"):
        fusion.dbsf([[("a", 1.0), "b"]])
    with pytest.raises(ValueError, match="run 0, item 0: score is NaN"):
        fusion.dbsf([[("a", math.nan)]])
    with pytest.raises(ValueError, match="not finite"):
        fusion.dbsf([[("a", math.inf), ("b", 1.0)]])
    with pytest.raises(TypeError, match="score 'high' is not a number"):
        fusion.rrf([[("a", "high")]])
    with pytest.raises(ValueError, match="2 weights for 3 runs"):
        fusion.rrf([[], [], []], weights=[1, 2])
    with pytest.raises(ValueError, match="weight 1 is -1.0"):
        fusion.rrf([[], []], weights=[1, -1])
    with pytest.raises(ValueError, match="k must be"):
        fusion.rrf([["a"]], k=0)
    for bad in (-1, 0):  # as search(limit=0): refused, not an empty list
        with pytest.raises(ValueError, match="limit"):
            fusion.rrf([["a"]], limit=bad)
        with pytest.raises(ValueError, match="limit"):
            fusion.distribution_based_score_fusion([[("a", 1.0)]], limit=bad)
    with pytest.raises(TypeError, match=r"run 0, item 0: id \['a'\] is a list: document ids are ints or strings"):
        fusion.rrf([[(["a"], 1.0)]])
    with pytest.raises(TypeError, match="run 0, item 0 is a list"):
        fusion.rrf([[["a", "b"]]])


def test_fuses_two_sparsedex_indexes():
    from sparsedex import SparseIndex

    docs = ["the quick brown fox", "a fox and a dog", "lazy dogs sleep all day", "cats and dogs"]
    bm25 = SparseIndex("bm25")
    bm25.add(docs, payloads=[{"n": i} for i in range(4)])
    other = SparseIndex("bm25")
    other.add(list(reversed(docs)), ids=[3, 2, 1, 0])
    runs = [bm25.search("foxes and dogs", k=4), other.search("dogs", k=4)]
    got = fusion.rrf(runs, limit=3)
    by_hand = {}
    for run in runs:
        for rank, h in enumerate(run, start=1):
            by_hand[h.id] = by_hand.get(h.id, 0.0) + 1 / (60 + rank)
    best = sorted(by_hand.items(), key=lambda kv: -kv[1])[:3]
    assert [(h.id, h.score) for h in got] == [(i, pytest.approx(s)) for i, s in best]
    assert all(h.payload == {"n": h.id} for h in got)  # the payloads of the first index's hits


def test_a_bare_run_and_zero_weights_are_named():
    # one run of (docid, score) pairs passed without its list: each pair became a run and the
    # scores became documents (review34)
    with pytest.raises(TypeError, match=r"run 0 is a \(docid, score\) pair, not a ranked list"):
        fusion.rrf([("d1", 1.0), ("d2", 0.5)])
    for bare in ([("a", 3), ("b", 2)], [["a", 3.0], ["b", 2.0]], [(1, 0.5), (2, 0.25)]):  # breaker34b
        with pytest.raises(TypeError, match=r"run 0 is a \(docid, score\) pair"):
            fusion.rrf(bare)
    assert [h.id for h in fusion.rrf([(5, 7), (7, 9)])] == [7, 5, 9]  # runs of bare int ids still work
    with pytest.raises(ValueError, match="weights are all 0"):
        fusion.rrf([["a"], ["b"]], weights=[0, 0])
