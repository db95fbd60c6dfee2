"""A u8 segment whose 8-bit grid is set by one weight far above the rest (99.9% of its weights on
impacts 1..4) warns once its commit is done, naming the document: exact search stays exact but
reranks most matching documents from their stored vectors, which is slow (a newcomer's
break-test, stop 21: 0.4 -> 28 ms per query at 100k documents). Ordinary data, integer counts
included, does not warn."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sparsedex import SparseIndex
from sparsedex import _core


def _corpus(n_docs: int, seed: int = 3) -> sp.csr_matrix:
    di, dx, dv, *_ = _core.synthetic_corpus(n_docs, 1, seed=seed)
    return sp.csr_matrix((dv, dx, di), shape=(n_docs, 30522))


def _with_outlier(d: sp.csr_matrix, row: int, weight: float) -> sp.csr_matrix:
    d = d.copy()
    d.data[d.indptr[row]] = weight
    return d


def _commit_quietly(ix: SparseIndex) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ix.commit()


def test_one_outlier_weight_warns_naming_the_document_and_search_stays_exact() -> None:
    d = _with_outlier(_corpus(2_000), 1_234, 1000.0)
    ids = [f"doc-{i}" for i in range(d.shape[0])]
    ux = SparseIndex(encoder=None)
    ux.add(d, ids=ids)
    with pytest.warns(UserWarning, match=r"set by weight 1000 of document 'doc-1234'.*impact 1\b") as rec:
        ux.commit()
    assert len(rec) == 1
    assert "quantization='float'" in str(rec[0].message)
    fx = SparseIndex(encoder=None, quantization="float")
    fx.add(d, ids=ids)
    _commit_quietly(fx)  # float indexes have no grid
    q = _corpus(2_000, seed=9)[:5]
    for i in range(5):
        want = [(h.id, h.score) for h in fx.search(q[i], k=10, algorithm="exhaustive")]
        assert [(h.id, h.score) for h in ux.search(q[i], k=10)] == want


def test_ordinary_weights_do_not_warn() -> None:
    d = _corpus(2_000)
    for n in (1, 50, 2_000):
        ix = SparseIndex(encoder=None)
        ix.add(d[:n], ids=list(range(n)))
        _commit_quietly(ix)
    # real splade-tiny rows: one commit of the debian-like shape is the synthetic one; a
    # skewed but ordinary distribution (exponential weights) does not warn either
    rng = np.random.default_rng(0)
    e = d.copy()
    e.data = rng.exponential(0.5, size=e.data.size).astype(np.float32) + np.float32(1e-3)
    ix = SparseIndex(encoder=None)
    ix.add(e, ids=list(range(e.shape[0])))
    _commit_quietly(ix)
    # integer counts: half of their weights on impact 1, the heaviest at the top of the grid
    c = d.copy()
    c.data = rng.zipf(1.6, size=c.data.size).clip(1, 2_000).astype(np.float32)
    ix = SparseIndex(encoder=None)
    ix.add(c, ids=list(range(c.shape[0])))
    _commit_quietly(ix)
    # too few weights to judge a grid by (255 weights on impact 1 under max_weight=1000)
    ix = SparseIndex(encoder=None, max_weight=1000.0)
    ix.add([(list(range(255)), [1.0] * 255)], ids=[1])
    _commit_quietly(ix)
    ix.add([(list(range(256)), [1.0] * 256)], ids=[2])
    with pytest.warns(UserWarning, match=r"shared grid \(largest weight 1000:.*99\.9% of its 256 weights fall on impact 1\b"):
        ix.commit()


def test_the_shared_grid_of_a_first_commit_with_an_outlier_warns_later_segments(tmp_path) -> None:
    d = _corpus(3_000)
    path = tmp_path / "ix"
    ix = SparseIndex.create(path, encoder=None)
    ix.add(_with_outlier(d[:1_000], 7, 500.0), ids=list(range(1_000)))
    with pytest.warns(UserWarning, match="set by weight 500 of document 7"):
        ix.commit()
    # the same handle warns once
    ix.add(_with_outlier(d[1_000:2_000], 3, 800.0), ids=list(range(1_000, 2_000)))
    _commit_quietly(ix)
    ix.close()
    # a new handle: ordinary weights under the first commit's coarse shared grid
    ix = SparseIndex.open(path)
    ix.add(d[2_000:], ids=list(range(2_000, 3_000)))
    with pytest.warns(UserWarning, match=r"is the index's shared grid \(largest weight 500"):
        ix.commit()
    ix.close()


def test_the_warning_comes_once_the_commit_is_done(tmp_path) -> None:
    """With warnings as errors the commit is durable and visible all the same, and the next
    add and commit work (the warning is given after the commit, not between its steps)."""
    d = _with_outlier(_corpus(1_000), 0, 1000.0)
    ix = SparseIndex.create(tmp_path / "ix", encoder=None)
    ix.add(d, ids=list(range(1_000)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="8-bit grid"):
            ix.commit()
    assert len(ix) == 1_000
    ix.add(_corpus(10, seed=4), ids=list(range(1_000, 1_010)))
    _commit_quietly(ix)  # once per handle
    ix.close()
    assert len(SparseIndex.open(tmp_path / "ix")) == 1_010
