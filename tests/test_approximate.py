"""Approximate search through the Python API: recall target, exact scores, filters, deletions."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsedex import SparseIndex
from sparsedex import _core


def _corpus(n_docs: int, seed: int):
    di, dx, dv, qi, qx, qv = _core.synthetic_corpus(n_docs, 60, seed=seed)
    d = sp.csr_matrix((dv, dx, di), shape=(n_docs, 30522))
    q = sp.csr_matrix((qv, qx, qi), shape=(len(qi) - 1, 30522))
    return d, q


@pytest.fixture(scope="module")
def built():
    d, q = _corpus(12_000, 3)
    ix = SparseIndex(encoder=None)
    ix.add(d, payloads=[{"even": i % 2 == 0} for i in range(d.shape[0])])
    ix.commit()
    return ix, d, q


def _recall(got, want):
    if not want:
        return 1.0
    th = want[-1].score
    return sum(h.score >= th for h in got) / len(want)


def test_recall_target_against_float_and_float_scores(built):
    # A u8 index's approximate hits carry the float32 dot product of the stored vectors (the
    # scores of a float index, bit for bit), and the target is recall against those scores.
    ix, d, q = built
    fx = SparseIndex(encoder=None, quantization="float")
    fx.add(d)
    fx.commit()
    rs = []
    for i in range(q.shape[0]):
        want = fx.search(q[i], k=10, algorithm="exhaustive")
        got = ix.search(q[i], k=10, algorithm="approximate", target_recall=0.95)
        exact = {h.id: h.score for h in fx.search(q[i], k=d.shape[0], algorithm="exhaustive")}
        assert all(exact[h.id] == h.score for h in got)
        dots = (d[[h.id for h in got]] @ q[i].T).toarray().ravel()
        assert np.allclose([h.score for h in got], dots, rtol=1e-5)
        rs.append(_recall(got, want))
    assert np.mean(rs) >= 0.95 - 0.03


def test_batch_equals_single_and_honours_filters(built):
    ix, d, q = built
    batch = ix.search_batch(q[:10], k=10, algorithm="approximate", target_recall=0.97, filter={"even": True})
    for i, hits in enumerate(batch):
        single = ix.search(q[i], k=10, algorithm="approximate", target_recall=0.97, filter={"even": True})
        assert [h.id for h in hits] == [h.id for h in single]
        assert all(h.id % 2 == 0 for h in hits)


def test_deleted_documents_are_never_returned(built):
    ix, d, q = built
    first = ix.search(q[0], k=5, algorithm="approximate")
    ix.delete([first[0].id])
    ix.commit()
    again = ix.search(q[0], k=5, algorithm="approximate")
    assert first[0].id not in [h.id for h in again]


def test_bad_target_recall(built):
    ix, d, q = built
    with pytest.raises(ValueError, match="target_recall"):
        ix.search(q[0], algorithm="approximate", target_recall=1.5)
    with pytest.raises(ValueError, match="target_recall"):
        ix.search(q[0], algorithm="exhaustive", target_recall=0.9)
    with pytest.raises(ValueError, match="target_recall"):
        ix.search_batch(q[:2], algorithm="auto", target_recall=0.9)


def test_approximate_on_a_float_index_with_a_large_segment(built):
    # a float index (canonical-order sums) with a segment past the calibration size: the cut
    # query is a query of its own (it once indexed per-term slots sized for the cut with the
    # full query's positions and panicked)
    _, d, q = built
    fx = SparseIndex(encoder=None, quantization="float")
    fx.add(d)
    fx.commit()
    report = fx.calibrate(target_recall=0.97)
    assert report and report[0]["approximate"]
    rs = []
    for i in range(30):
        want = fx.search(q[i], k=10, algorithm="exhaustive")
        got = fx.search(q[i], k=10, algorithm="approximate", target_recall=0.97)
        exact = {h.id: h.score for h in fx.search(q[i], k=200, algorithm="exhaustive")}
        assert all(exact.get(h.id) == h.score for h in got if h.id in exact)
        rs.append(_recall(got, want))
    assert np.mean(rs) >= 0.97 - 0.03
