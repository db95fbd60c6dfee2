"""Document order (`reorder="bp" | "signature" | "none"`): through the bindings (build, merge,
store, `bp_order`) and `SparseIndex` / `SegmentView`, results keyed by id do not depend on it,
and a bad value is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from sparsedex import SparseIndex, _core
from sparsedex._segment import SegmentView

MODES = ("none", "signature", "bp", True, False)


def corpus(n=3000, seed=3):
    d = _core.synthetic_corpus(n, 20, seed, vocab_size=2000, doc_nnz=30.0, query_nnz=10.0, n_topics=40)
    return d[:3], d[3:]


def by_id(ix, q_ptr, q_ind, q_val, algo, k=10):
    out = []
    for i in range(len(q_ptr) - 1):
        a, b = int(q_ptr[i]), int(q_ptr[i + 1])
        docs, scores = ix.search(q_ind[a:b], q_val[a:b], k, algo)
        out.append([(ix.id(int(d)), float(s)) for d, s in zip(docs, scores)])
    return out


def same(a, b):
    """Same scores in order, and every id with the score it has in the other (ties may swap)."""
    for ha, hb in zip(a, b):
        assert [s for _, s in ha] == [s for _, s in hb]
        if ha and ha[-1][1] != ha[0][1]:
            top = {i for i, s in ha if s > ha[-1][1]}
            assert top == {i for i, s in hb if s > hb[-1][1]}


def test_build_and_merge_results_by_id_do_not_depend_on_the_order():
    docs, qs = corpus()
    n = len(docs[0]) - 1
    ids = np.arange(n, dtype=np.int64) * 3 + 11
    ref = _core.Index.build(*docs, ids_int=ids, quantization="float", reorder="none")
    want = by_id(ref, *qs, "exhaustive")
    for mode in MODES:
        ix, order = _core.Index.build_with_order(*docs, ids_int=ids, quantization="float", reorder=mode)
        assert sorted(order.tolist()) == list(range(n))
        if mode in ("none", False):
            assert order.tolist() == list(range(n))
        else:
            assert order.tolist() != list(range(n))
        for algo in ("exhaustive", "bmp", "maxscore", "auto"):
            same(by_id(ix, *qs, algo), want)
        # Merged from three segments built in this mode, with this mode.
        cuts = [0, n // 3, 2 * n // 3, n]
        segs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            p0 = int(docs[0][a])
            part = (docs[0][a : b + 1] - docs[0][a], docs[1][p0 : int(docs[0][b])], docs[2][p0 : int(docs[0][b])])
            segs.append(_core.Index.build(*part, ids_int=ids[a:b], quantization="float", reorder=mode))
        merged, pos, doc = _core.merge(segs, [None] * 3, reorder=mode)
        assert merged.stats()["documents"] == n
        for d in range(0, n, 97):
            assert merged.id(d) == segs[int(pos[d])].id(int(doc[d]))
        same(by_id(merged, *qs, "bmp"), want)


def test_bad_reorder_values_are_clear_errors():
    docs, _ = corpus(200)
    with pytest.raises(ValueError, match="reorder must be 'bp', 'signature' or 'none'.*'sorted'"):
        _core.Index.build(*docs, reorder="sorted")
    with pytest.raises(TypeError):
        _core.Index.build(*docs, reorder=1)
    with pytest.raises(ValueError, match="reorder must be"):
        _core.Store.create(None, reorder="random")
    with pytest.raises(ValueError, match="reorder must be"):
        SparseIndex(None, reorder="bisection")
    with pytest.raises(TypeError, match="reorder must be a string or a bool"):
        SparseIndex(None, reorder=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reorder must be"):
        SegmentView.build(docs, reorder="fast")
    with pytest.raises(ValueError, match="weighting"):
        _core.bp_order(*docs, weighting="levels0")
    with pytest.raises(ValueError, match="leaf_size"):
        _core.bp_order(*docs, leaf_size=0)
    with pytest.raises(ValueError, match="not a permutation"):
        _core.bp_order(*docs, init=np.zeros(200, dtype=np.uint32))


def test_reorder_names_are_case_insensitive_like_algorithm_names():
    # reorder="BP" was a ValueError while algorithm="BMP" was accepted (helper-100 LOW)
    docs, qs = corpus(300)
    assert SparseIndex(None, reorder="BP")._store.reorder == "bp"
    assert SparseIndex(None, reorder="Signature")._store.reorder == "signature"
    a = _core.Index.build(*docs, quantization="float", reorder="BP")
    b = _core.Index.build(*docs, quantization="float", reorder="bp")
    assert [a.id(d) for d in range(300)] == [b.id(d) for d in range(300)]
    _core.Store.create(None, reorder="NONE")  # the engine takes any case too
    assert SparseIndex(None, reorder="NONE")._store.reorder == "none"


def test_bp_order_is_a_deterministic_permutation_over_any_term_ids():
    docs, _ = corpus(500)
    spread = (docs[0], (docs[1].astype(np.uint64) * 2_654_435_761 % 2**32).astype(np.uint32), docs[2])
    a = _core.bp_order(*spread)
    assert sorted(a.tolist()) == list(range(500))
    assert np.array_equal(a, _core.bp_order(*spread))
    init = np.arange(500, dtype=np.uint32)[::-1].copy()
    b = _core.bp_order(*spread, init=init, max_iterations=2, weighting="levels3")
    assert sorted(b.tolist()) == list(range(500))


def test_store_and_sparse_index_keep_their_order(tmp_path):
    assert _core.Store.create(None).snapshot().settings()["reorder"] == "bp"
    assert _core.Store.create(None, reorder=False).snapshot().settings()["reorder"] == "none"
    docs, qs = corpus(600)
    vecs = [
        (docs[1][int(docs[0][i]) : int(docs[0][i + 1])], docs[2][int(docs[0][i]) : int(docs[0][i + 1])])
        for i in range(600)
    ]
    results = {}
    for mode in ("none", "signature", "bp"):
        path = tmp_path / mode
        ix = SparseIndex(None, path=path, reorder=mode)
        for a in range(0, 600, 200):
            ix.add(vecs[a : a + 200], ids=list(range(a, a + 200)))
            ix.commit()
        ix.close()
        ix = SparseIndex.open(path)
        assert ix._store.reorder == mode
        qv = [(qs[1][int(qs[0][i]) : int(qs[0][i + 1])], qs[2][int(qs[0][i]) : int(qs[0][i + 1])]) for i in range(20)]
        results[mode] = [[(h.id, h.score) for h in ix.search(q, k=10)] for q in qv]
        ix.close()
    same(results["bp"], results["none"])
    same(results["signature"], results["none"])
