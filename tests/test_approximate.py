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


@pytest.fixture(scope="module")
def debian(shared):
    docs = sp.load_npz(shared / "data" / "debian" / "docs.npz").tocsr()
    queries = sp.load_npz(shared / "data" / "debian" / "queries.npz").tocsr()[:100]
    ix = SparseIndex(encoder=None)
    ix.add(docs)
    ix.commit()
    top = ix.search_batch(queries, k=50, algorithm="exhaustive", with_payload=False)
    return ix, queries, top


def _mean_recall(ix, queries, target, filters=None, k=10):
    rs = []
    for i in range(queries.shape[0]):
        f = filters[i] if filters else None
        want = ix.search(queries[i], k=k, algorithm="exhaustive", query_filter=f, with_payload=False)
        got = ix.search(queries[i], k=k, algorithm="approximate", target_recall=target, query_filter=f,
                        with_payload=False)
        assert len(got) == len(want)
        rs.append(_recall(got, want))
    return float(np.mean(rs))


def test_recall_target_holds_when_a_filter_excludes_the_best_documents(debian):
    # A "next page" filter (the 50 hits already shown excluded) asks for the documents of ranks
    # 51-60: candidates ranked among the allowed documents only reached recall 0.867 at 0.97
    # (helper-99); ranked among all, reranked to the depth of a top-60 search, 0.98.
    # At 0.90 that depth was not enough (helper-104: 0.845 with the top 50 excluded, 0.812 with
    # the top 200): past rank 3k the exact search runs.
    ix, queries, top = debian
    filters = [{"must_not": [{"has_id": [h.id for h in t]}]} for t in top]
    for target in (0.90, 0.97):
        assert _mean_recall(ix, queries, target, filters) >= target - 0.005


def test_recall_target_holds_when_a_filter_excludes_more_than_two_pages(debian, shared):
    # The top 100 excluded, queries 1000-1099: the rerank to the depth of a top-110 search
    # reached 0.840 at 0.90 (helper-104; 0.812 with the top 200): the cut query's order that
    # deep is looser than its calibration measured. Past rank 3k the exact search runs.
    ix = debian[0]
    queries = sp.load_npz(shared / "data" / "debian" / "queries.npz").tocsr()[1000:1100]
    top = ix.search_batch(queries, k=100, algorithm="exhaustive", with_payload=False)
    filters = [{"must_not": [{"has_id": [h.id for h in t]}]} for t in top]
    assert _mean_recall(ix, queries, 0.90, filters) >= 0.90 - 0.005


def test_recall_target_holds_on_the_next_page_of_a_filtered_search(debian):
    # A filter leaving 20% of the documents (random with respect to the queries), less its
    # own first 20 hits (page 3 of the filtered search): ranked among the allowed documents
    # only, the candidates reached 0.842 at 0.90 on queries 1000-1199 (0.709 less 50 hits).
    # The first allowed documents are now found in the cut query's ranking of all documents;
    # when the filter leaves out its head, the exact search runs.
    ix, queries, _ = debian
    rng = np.random.default_rng(11)
    some = [int(i) for i in np.nonzero(rng.random(len(ix)) < 0.2)[0]]
    kept = {"must": [{"has_id": some}]}
    top = ix.search_batch(queries, k=20, algorithm="exhaustive", query_filter=kept, with_payload=False)
    filters = [{"must": [{"has_id": some}], "must_not": [{"has_id": [h.id for h in t]}]} for t in top]
    assert _mean_recall(ix, queries, 0.90, filters) >= 0.90 - 0.005
    # The filter alone (a random one) stays approximate and holds the target too.
    assert _mean_recall(ix, queries, 0.90, [kept] * queries.shape[0]) >= 0.90 - 0.005


def test_recall_target_holds_on_the_next_page_at_k_1_and_2(debian):
    # The next page of a search for 1-2 hits, with and without a filter of 20%: its first 1, 2
    # or 5 hits excluded. At k = 1 the candidates of a search for one hit (queries 1000-1399)
    # reached 0.78-0.88 at 0.90 (helper-105), and 0.95 at 0.99 without a filter; under an
    # allowed set, a search for fewer than 5 hits now takes a top-5 search's candidates.
    ix, queries, _ = debian
    rng = np.random.default_rng(5)
    some = [int(i) for i in np.nonzero(rng.random(len(ix)) < 0.2)[0]]
    for k in (1, 2):
        for base in ([], [{"has_id": some}]):
            top = ix.search_batch(queries, k=5, algorithm="exhaustive", with_payload=False,
                                  query_filter={"must": base} if base else None)
            for target in (0.90, 0.99):
                got = [_mean_recall(ix, queries, target, [{"must": base, "must_not": [{"has_id": [h.id for h in t[:n]]}]}
                                                          for t in top], k=k) for n in (1, 2, 5)]
                assert float(np.mean(got)) >= target - 0.005, (k, len(base), target, got)


def test_recall_target_holds_at_k_1_to_3_without_a_filter(debian, shared):
    # helper-152: without a filter a search for 1-3 hits reranked its own k x rerank candidates,
    # which finds the top 1-3 less often than a top-10 search's candidates find the top 10 (what
    # the calibration measures): on queries 1000-1999 recall@1 / @2 / @3 at target 0.99 was
    # 0.985 / 0.980 / 0.989 where recall@10 was 0.996. Fewer than 10 hits now take the
    # candidates of a top-10 search.
    ix = debian[0]
    queries = sp.load_npz(shared / "data" / "debian" / "queries.npz").tocsr()[1000:2000]
    for k in (1, 2, 3):
        want = ix.search_batch(queries, k=k, algorithm="exhaustive", with_payload=False)
        got = ix.search_batch(queries, k=k, algorithm="approximate", target_recall=0.99, with_payload=False)
        r = float(np.mean([_recall(g, w) for g, w in zip(got, want) if w]))
        assert r >= 0.99 - 0.005, (k, r)


def test_approximate_search_for_many_hits_is_the_exact_search(debian, shared):
    # Reranking k' >= k stored rows reads about k' x 150 entries on debian: where that
    # (x 4) passes the query's postings, the exact search is cheaper (k = 1,000: 4.06 ms approximate against
    # 2.79 exhaustive) and runs instead (it returned recall 0.98 at 0.90, in more time).
    ix, queries, _ = debian
    docs = sp.load_npz(shared / "data" / "debian" / "docs.npz").tocsr()
    df = np.bincount(docs.indices, minlength=docs.shape[1])
    row = docs.nnz / docs.shape[0]
    k = 3000
    checked = 0
    for i in range(40):
        q = queries[i]
        if k * row < df[q.indices].sum():
            continue
        want = ix.search(q, k=k, algorithm="exhaustive", with_payload=False)
        got = ix.search(q, k=k, algorithm="approximate", target_recall=0.9, with_payload=False)
        assert [h.id for h in got] == [h.id for h in want]
        assert [h.score for h in got] == [h.score for h in want]
        checked += 1
    assert checked >= 10


def test_recall_target_holds_after_deleting_the_best_documents(debian, tmp_path):
    # Deleting every query's exact top-50 (4,501 documents): 0.849 / 0.889 / 0.919 at
    # 0.95 / 0.97 / 0.99 before (helper-99).
    ix, queries, top = debian
    ix.save(tmp_path / "ix")
    cp = SparseIndex.open(tmp_path / "ix")
    cp.delete(sorted({h.id for t in top for h in t}))
    cp.commit()
    for target in (0.95, 0.99):
        assert _mean_recall(cp, queries, target) >= target - 0.005


def test_recall_target_holds_on_multi_topic_queries(debian):
    # Unions of 5 real queries (about 90 terms on several topics): calibrated on single
    # documents' rows alone, they reached 0.665 at 0.90 and 0.817 at 0.95 (unions of 20:
    # 0.825 / 0.889); the multi-topic pseudo-queries (sums of 2-16 documents' rows) bring them
    # to 0.906 / 0.975 (benches/approx_multitopic.py).
    ix, queries, _ = debian
    rng = np.random.default_rng(7)
    pick = sp.csr_matrix((np.ones(60 * 5), (np.repeat(np.arange(60), 5),
                          np.concatenate([rng.choice(queries.shape[0], 5, replace=False) for _ in range(60)]))),
                         shape=(60, queries.shape[0]))
    unions = (pick @ queries).tocsr().astype(np.float32)
    for target in (0.90, 0.95):
        assert _mean_recall(ix, unions, target) >= target - 0.01


def test_query_weights_below_the_u8_grid_find_what_exact_search_finds(built):
    # Every weight of the query rounds to 0 on the segment's grid (below about 1e-36): the
    # approximate search returned [] where the exact search returns the documents (helper-99).
    ix, d, q = built
    ix.search(q[0], k=3, algorithm="approximate")  # calibrated
    t = int(np.bincount(d.indices).argmax())
    for w in (1e-30, 1e-37, 1e-40):
        want = ix.search({t: w}, k=3, algorithm="exhaustive", with_payload=False)
        got = ix.search({t: w}, k=3, algorithm="approximate", with_payload=False)
        assert len(want) == 3
        assert [h.id for h in got] == [h.id for h in want]
