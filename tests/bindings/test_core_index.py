"""Bindings of one engine segment (`_core.Index`) and of `_core.merge`: any u32 term id, ids
found by binary search, the build order, BM25 builds."""

from __future__ import annotations

import numpy as np
import pytest

from sparsedex import _core


def csr(rows):
    indptr = np.zeros(len(rows) + 1, dtype=np.uint64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([t for r in rows for t, _ in r], dtype=np.uint32)
    values = np.array([w for r in rows for _, w in r], dtype=np.float32)
    return indptr, indices, values


def test_any_u32_term_id_and_ids():
    rows = [[(2**32 - 1, 1.0), (7, 2.0)], [(2**31, 3.0)], [(0, 0.5), (2**32 - 1, 4.0)]]
    ix, order = _core.Index.build_with_order(*csr(rows), ids_str=["a", "b", "c"], quantization="float")
    assert sorted(order.tolist()) == [0, 1, 2]
    for d in range(3):
        assert ix.id(d) == "abc"[order[d]]
        assert ix.locate("abc"[order[d]]) == d
    assert ix.locate("zz") is None and ix.locate(3) is None
    docs, scores = ix.search(np.array([2**32 - 1, 12345], dtype=np.uint32), np.array([1.0, 1.0], dtype=np.float32))
    assert [ix.id(int(d)) for d in docs] == ["c", "a"] and np.allclose(scores, [4.0, 1.0])
    t, v = ix.get(ix.locate("a"))
    assert t.tolist() == [7, 2**32 - 1] and v.tolist() == [2.0, 1.0]
    s = ix.stats()
    assert s["terms"] == 4 and s["vocabulary"] == 2**32 and s["bytes"] < 4096
    with pytest.raises(ValueError, match="duplicate"):
        _core.Index.build(*csr(rows), ids_int=np.array([1, 2, 1], dtype=np.int64))
    with pytest.raises(ValueError, match="vocabulary size 100"):
        _core.Index.build(*csr(rows), n_terms=100)


def test_bm25_index_and_merge():
    rows = [[(1, 2.0), (5, 1.0)], [(1, 1.0)], [(5, 3.0), (9, 1.0)], [(9, 2.0)]]
    ix = _core.Index.build(*csr(rows), bm25=(1.2, 0.75), quantization="float", ids_int=np.arange(4, dtype=np.int64))
    st = ix.stats()
    assert st["bm25"] == pytest.approx((1.2, 0.75)) and st["total_length"] == 10
    stats = ix.bm25_stats(np.array([1, 5, 9], dtype=np.uint32))
    assert stats.n_docs == 4 and stats.df.tolist() == [2, 2, 2]
    q = (np.array([1, 9], dtype=np.uint32), np.array([1.0, 1.0], dtype=np.float32))
    docs, scores = ix.search(*q, k=4)
    parts = ix.explain(*q, int(docs[0]))
    assert abs(sum(p[3] for p in parts) - scores[0]) < 1e-5
    # Merging two BM25 segments with deletions equals the survivors' index.
    other = _core.Index.build(*csr(rows[:2]), bm25=(1.2, 0.75), quantization="float", ids_int=np.array([10, 11], dtype=np.int64))
    live = _core.DocSet(np.array([0b1011], dtype=np.uint64), 4)
    merged, member, doc = _core.merge([ix, other], [live, None])
    assert len(merged) == 5 and sorted(zip(member.tolist(), doc.tolist())) == [(0, 0), (0, 1), (0, 3), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="another kind"):
        _core.merge([ix, _core.Index.build(*csr(rows))], [None, None])
