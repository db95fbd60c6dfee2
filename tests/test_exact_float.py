"""Exact search of a u8 index is the exact float32 top-k of the stored vectors (issue #10):
every algorithm, filters, deletions, segments, batches, score_threshold, with_vectors and
explain agree with a float index over the same vectors; scores="impacts" keeps the raw 8-bit
scoring."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsedex import SparseIndex
from sparsedex import _core
from sparsedex._segment import SegmentView


def _corpus(n_docs: int, seed: int):
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(n_docs, 40, seed=seed)
    d = sp.csr_matrix((dv, dx, di), shape=(n_docs, 30522))
    q = sp.csr_matrix((qv, qx, qi), shape=(len(qi) - 1, 30522))
    return d, q


def _f32_top(d, qrow, k, allowed=None):
    """Brute force in float32, products added in ascending term order (the canonical order):
    (id, score) of the top k, ties by id ascending."""
    qi, qv = qrow.indices, qrow.data.astype(np.float32)
    order = np.argsort(qi)
    qw = dict(zip(qi[order].tolist(), qv[order].tolist()))
    scores = {}
    for r in range(d.shape[0]):
        if allowed is not None and r not in allowed:
            continue
        a, b = d.indptr[r], d.indptr[r + 1]
        idx, val = d.indices[a:b], d.data[a:b].astype(np.float32)
        o = np.argsort(idx)
        s = np.float32(0.0)
        for t, x in zip(idx[o].tolist(), val[o]):
            w = qw.get(t)
            if w is not None:
                s = np.float32(s + np.float32(w) * x)
        if s > 0:
            scores[r] = float(s)
    return sorted(scores.items(), key=lambda e: (-e[1], e[0]))[:k]


@pytest.fixture(scope="module")
def built():
    d, q = _corpus(3_000, 5)
    # Three commits: three segments (the exact top-k merged across them).
    ux = SparseIndex(encoder=None)
    fx = SparseIndex(encoder=None, quantization="float")
    pay = [{"even": i % 2 == 0} for i in range(d.shape[0])]
    for a, b in [(0, 1_000), (1_000, 2_200), (2_200, 3_000)]:
        for ix in (ux, fx):
            ix.add(d[a:b], ids=list(range(a, b)), payloads=pay[a:b])
            ix.commit()
    return ux, fx, d, q


def _pairs(hits):
    return [(h.id, h.score) for h in hits]


def test_every_algorithm_returns_the_float_top_k(built):
    ux, fx, d, q = built
    for i in range(8):
        want = _pairs(fx.search(q[i], k=10, algorithm="exhaustive"))
        assert want == _f32_top(d, q[i], 10)
        for algo in ux.algorithms:
            assert _pairs(ux.search(q[i], k=10, algorithm=algo)) == want, algo


def test_filters_batches_thresholds_and_vectors(built):
    ux, fx, d, q = built
    even = set(range(0, d.shape[0], 2))
    batch = ux.search_batch(q[:6], k=7, filter={"even": True})
    for i, hits in enumerate(batch):
        want = _f32_top(d, q[i], 7, allowed=even)
        assert _pairs(hits) == want
        assert _pairs(ux.search(q[i], k=7, filter={"even": True}, algorithm="bmp")) == want
        th = want[3][1]  # strictly above it (Qdrant's rule), on the float scores
        assert _pairs(ux.search(q[i], k=7, filter={"even": True}, score_threshold=th)) == [
            p for p in want if p[1] > th
        ]
    hits = ux.search(q[0], k=5, with_vectors=True)
    for h in hits:
        dot = np.float32(0.0)
        order = np.argsort(h.vector.indices)
        qw = dict(zip(q[0].indices.tolist(), q[0].data.astype(np.float32).tolist()))
        for t, x in zip(np.asarray(h.vector.indices)[order].tolist(), np.asarray(h.vector.values)[order]):
            if t in qw:
                dot = np.float32(dot + np.float32(qw[t]) * x)
        assert float(dot) == h.score


def test_deletions_and_explain(built):
    ux, fx, d, q = built
    top = ux.search(q[1], k=3)
    ux.delete([top[0].id])
    fx.delete([top[0].id])
    ux.commit()
    fx.commit()
    try:
        assert _pairs(ux.search(q[1], k=10)) == _pairs(fx.search(q[1], k=10))
        for h in ux.search(q[1], k=5):
            e = ux.explain(q[1], h.id)
            assert e.score == h.score
            assert sum(m.contribution for m in e.matches) == pytest.approx(h.score, rel=1e-5)
            doc = dict(zip(d[h.id].indices.tolist(), d[h.id].data.astype(np.float32).tolist()))
            assert all(m.doc_weight == np.float32(doc[m.term_id]) for m in e.matches)
            raw = ux.explain(q[1], h.id, scores="impacts")
            assert raw.score == pytest.approx(h.score, rel=0.05) and raw.score != h.score
    finally:
        ux.add(d[top[0].id], ids=[top[0].id], payloads=[{"even": top[0].id % 2 == 0}])
        fx.add(d[top[0].id], ids=[top[0].id], payloads=[{"even": top[0].id % 2 == 0}])
        ux.commit()
        fx.commit()


def test_impacts_keep_the_8_bit_scoring(built):
    ux, fx, d, q = built
    for i in range(5):
        raw = ux.search(q[i], k=10, algorithm="exhaustive", scores="impacts")
        for algo in ux.algorithms:
            assert _pairs(ux.search(q[i], k=10, algorithm=algo, scores="impacts")) == _pairs(raw), algo
        floats = dict(_f32_top(d, q[i], d.shape[0]))
        # 8-bit scores: off the float ones by the rounding, never equal to all of them.
        assert any(h.score != floats[h.id] for h in raw)
        assert all(h.score == pytest.approx(floats[h.id], rel=0.05) for h in raw)
        batch = ux.search_batch(q[i:i + 1], k=10, algorithm="exhaustive", scores="impacts")
        assert _pairs(batch[0]) == _pairs(raw)
    # float indexes ignore it
    assert _pairs(fx.search(q[0], k=10, scores="impacts")) == _pairs(fx.search(q[0], k=10))
    for bad in ("float", "u8", None, 1):
        with pytest.raises(ValueError, match="scores must be 'vectors' or 'impacts'"):
            ux.search(q[0], k=10, scores=bad)
        with pytest.raises(ValueError, match="scores must be 'vectors' or 'impacts'"):
            ux.search_batch(q[:2], k=10, scores=bad)
    # approximate search ranks by the stored vectors: asking it for 8-bit scores is an error
    with pytest.raises(ValueError, match="scores='impacts' applies to the exact algorithms"):
        ux.search(q[0], k=10, algorithm="approximate", scores="impacts")
    with pytest.raises(ValueError, match="scores='impacts' applies to the exact algorithms"):
        ux.search_batch(q[:2], k=10, algorithm="approximate", scores="impacts")


def test_segment_view_without_stored_vectors_scores_impacts():
    d, q = _corpus(2_000, 9)
    with_v = SegmentView.build(d, quantization="u8", store_vectors=True)
    without = SegmentView.build(d, quantization="u8", store_vectors=False)
    for i in range(5):
        qv = (q[i].indices, q[i].data)
        ids, sc = without.search(qv, k=10)
        rids, rsc = with_v.search(qv, k=10, scores="impacts")
        assert ids.tolist() == rids.tolist() and sc.tolist() == rsc.tolist()
        fids, fsc = with_v.search(qv, k=10)
        assert list(zip(fids.tolist(), fsc.tolist())) == _f32_top(d, q[i], 10)
        with pytest.raises(ValueError, match="scores must be"):
            with_v.search(qv, k=10, scores="nope")


@pytest.mark.parametrize("w", [1e-20, 1e-32, 1e-36])
def test_tiny_query_weights_find_what_a_float_index_finds(w):
    """Query weights far below the documents' are valid input: a u8 index returns what a float
    index returns (newcomer11 M3: below about 1.6e-32 the u8 query scale overflowed and the
    search returned nothing; scores="impacts" gave every document 0.0)."""
    docs = [(np.array([1, 2], np.uint32), np.array([1.0, 3.0], np.float32)),
            (np.array([1], np.uint32), np.array([2.0], np.float32))]
    q = (np.array([1], np.uint32), np.array([w], np.float32))
    got = {}
    for quant in ("u8", "float"):
        ix = SparseIndex(None, quantization=quant)
        ix.add(docs, ids=[0, 1])
        got[quant] = [(h.id, h.score) for h in ix.search(q, k=5)]
    assert got["u8"] == got["float"] and [i for i, _ in got["u8"]] == [1, 0]
    ix = SparseIndex(None, quantization="u8")
    ix.add(docs, ids=[0, 1])
    imp = ix.search(q, k=5, scores="impacts")
    assert [h.id for h in imp] == [1, 0] and all(h.score > 0 for h in imp)
