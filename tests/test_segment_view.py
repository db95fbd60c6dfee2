"""SegmentView (the engine's one-segment view): exact results against a numpy oracle, input
validation, persistence of one segment file."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sparsedex
from sparsedex import CorruptIndexError
from sparsedex._segment import SegmentView


def dense_scores(docs, q, vocab):
    """Float oracle: dense dot products."""
    D = np.zeros((len(docs), vocab), dtype=np.float64)
    for i, (idx, val) in enumerate(docs):
        D[i, idx] = val
    qv = np.zeros(vocab)
    qv[q[0]] = q[1]
    return D @ qv


def random_docs(rng, n, vocab, nnz):
    docs = []
    for _ in range(n):
        k = int(rng.integers(0, nnz + 1))
        idx = np.sort(rng.choice(vocab, size=k, replace=False))
        docs.append((idx, rng.random(k).astype(np.float32) * 3 + 0.01))
    return docs


@pytest.mark.parametrize("quantization", ["u8", "float"])
def test_float_index_matches_dense_oracle(quantization):
    rng = np.random.default_rng(0)
    docs = random_docs(rng, 3000, 200, 30)
    ix = SegmentView.build(docs, quantization=quantization)
    for _ in range(20):
        q = random_docs(rng, 1, 200, 15)[0]
        exact = dense_scores(docs, q, 200)
        ids, scores = ix.search(q, k=10)
        top = np.argsort(-exact, kind="stable")[:10]
        top = top[exact[top] > 0]
        if quantization == "float":
            np.testing.assert_allclose(scores, exact[ids], rtol=1e-5)
            np.testing.assert_allclose(np.sort(scores)[::-1], exact[top], rtol=1e-5)
        else:
            # u8 scores stay within the documented error bound of the float scores.
            bound = ix.stats()["scale"]
            err = np.sum(q[1]) * (0.5 / bound) * 1.01 + 1e-6
            assert np.all(np.abs(scores - exact[ids]) <= err)
        for algo in SegmentView.algorithms:
            ids2, scores2 = ix.search(q, k=10, algorithm=algo)
            np.testing.assert_array_equal(ids2, ids)
            np.testing.assert_array_equal(scores2, scores)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.dictionaries(st.integers(0, 40), st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e-3, 7.25]), max_size=12), max_size=300),
    st.dictionaries(st.integers(0, 45), st.floats(0, 10, allow_nan=False, width=32), max_size=8),
    st.integers(1, 320),
    st.sampled_from(["u8", "float"]),
)
def test_all_algorithms_agree_hypothesis(docs, query, k, quantization):
    ix = SegmentView.build([(list(d.keys()), list(d.values())) for d in docs], quantization=quantization)
    q = (list(query.keys()), list(query.values()))
    ref = ix.search(q, k=k, algorithm="exhaustive")
    for algo in SegmentView.algorithms:
        got = ix.search(q, k=k, algorithm=algo)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    # every returned doc really matches, best first, ties by row
    assert len(ref[0]) <= k
    s = ref[1]
    assert np.all(s[:-1] >= s[1:])


def test_search_batch_equals_single_and_threads():
    rng = np.random.default_rng(1)
    docs = random_docs(rng, 2000, 300, 40)
    ix = SegmentView.build(docs, ids=[f"d{i}" for i in range(2000)])
    queries = random_docs(rng, 50, 300, 20) + [(np.array([], np.uint32), np.array([], np.float32))]
    for threads in (None, 1, 2):
        ids, scores = ix.search_batch(queries, k=7, threads=threads)
        assert ids.shape == (51, 7) and scores.shape == (51, 7)
        for i, q in enumerate(queries):
            a, b = ix.search(q, k=7)
            n = len(a)
            assert list(ids[i, :n]) == list(a)
            np.testing.assert_array_equal(scores[i, :n], b)
            assert all(x is None for x in ids[i, n:]) and np.all(np.isnan(scores[i, n:]))


def test_threaded_searches_are_consistent():
    rng = np.random.default_rng(2)
    docs = random_docs(rng, 3000, 100, 30)
    ix = SegmentView.build(docs)
    queries = random_docs(rng, 40, 100, 10)
    expected = [ix.search(q, k=5) for q in queries]
    errors = []

    def worker(seed):
        r = np.random.default_rng(seed)
        for _ in range(200):
            i = int(r.integers(len(queries)))
            got = ix.search(queries[i], k=5, algorithm=str(r.choice(SegmentView.algorithms)))
            if not (np.array_equal(got[0], expected[i][0]) and np.array_equal(got[1], expected[i][1])):
                errors.append(i)

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors


def test_ids_get_explain():
    docs = [([1, 7], [0.5, 1.2]), ([7, 9], [2.0, 0.1]), ([], [])]
    ix = SegmentView.build(docs, ids=[10, 20, 30], quantization="float")
    ids, scores = ix.search(([7, 9], [1.0, 2.0]), k=5)
    assert ids.tolist() == [20, 10]
    np.testing.assert_allclose(scores, [2.2, 1.2], rtol=1e-6)
    idx, val = ix.get(20)
    assert idx.tolist() == [7, 9] and np.allclose(val, [2.0, 0.1])
    ex = ix.explain(([7, 9], [1.0, 2.0]), 20)
    assert [e["term"] for e in ex] == [7, 9]
    assert sum(e["contribution"] for e in ex) == pytest.approx(float(scores[0]), rel=1e-6)
    assert ix.explain(([7], [1.0]), 30) == []
    with pytest.raises(KeyError):
        ix.get(99)


@pytest.mark.parametrize(
    "docs, message",
    [
        ([([1, 2], [1.0, float("nan")])], "document 0: weight of term 2 is NaN"),
        ([([1], [1.0]), ([3], [-0.5])], "document 1: weight of term 3 is negative"),
        ([([1], [1.0]), ([1], [1.0]), ([4, 4], [1.0, 2.0])], "document 2: term id 4 appears more than once"),
        ([([1], [float("inf")])], "document 0: weight of term 1 is inf"),
        ([([1, 2], [1.0])], "document 0: indices and values have different lengths"),
        ([([-1], [1.0])], "document 0: term id -1 is out of range"),
        ([([1.5], [1.0])], "document 0: term ids must be integers"),
        ([42], "document 0: expected (indices, values)"),
    ],
)
def test_bad_documents_name_the_row(docs, message):
    with pytest.raises((ValueError, TypeError)) as e:
        SegmentView.build(docs)
    assert message in str(e.value)


def test_bad_inputs_other():
    with pytest.raises(ValueError, match="document 0: term id 12 is out of range \\(vocabulary size 10\\)"):
        SegmentView.build([([12], [1.0])], vocab_size=10)
    with pytest.raises(ValueError, match="documents: CSR arrays: indptr must end at the number of entries \\(2\\), got 5"):
        SegmentView.build((np.array([0, 5]), np.array([1, 2], np.uint32), np.array([1, 1], np.float32)))
    with pytest.raises(ValueError, match="2 ids given for 1 documents"):
        SegmentView.build([([1], [1.0])], ids=["a", "b"])
    for bad in ("ab", b"ab"):  # one id per character / byte before review34
        with pytest.raises(TypeError, match="not a string"):
            SegmentView.build([([1], [1.0]), ([2], [1.0])], ids=bad)
    with pytest.raises(ValueError, match="duplicate"):
        SegmentView.build([([1], [1.0]), ([2], [1.0])], ids=["a", "a"])
    with pytest.raises(TypeError, match="all ints or all strings"):
        SegmentView.build([([1], [1.0]), ([2], [1.0])], ids=["a", 3])
    with pytest.raises(ValueError, match="exceeds the quantization range"):
        SegmentView.build([([1], [10.0])], scale=100.0)
    with pytest.raises(ValueError, match="quantization must be"):
        SegmentView.build([([1], [1.0])], quantization="int4")
    ix = SegmentView.build([([1], [1.0])], vocab_size=10)
    with pytest.raises(ValueError, match="query: weight of term 1 is NaN"):
        ix.search([1], [float("nan")])
    with pytest.raises(ValueError, match="query: term id 11 is out of range"):
        ix.search([11], [1.0])
    with pytest.raises(ValueError, match="query 1: weight of term 2 is negative"):
        ix.search_batch([([1], [1.0]), ([2], [-1.0])])
    with pytest.raises(ValueError, match="k must be between 1 and 9223372036854775807, got 0"):
        ix.search([1], [1.0], k=0)
    with pytest.raises(ValueError, match="unknown algorithm 'fast'"):
        ix.search([1], [1.0], algorithm="fast")
    # Without a declared vocabulary, larger query ids are simply absent terms.
    ix = SegmentView.build([([1], [1.0])])
    assert len(ix.search([1000], [1.0])[0]) == 0


def test_huge_k_is_capped_not_allocated():
    ix = SegmentView.build([([1], [1.0]), ([1, 2], [0.5, 1.0])])
    for algo in SegmentView.algorithms:
        ids, scores = ix.search([1], [1.0], k=10**15, algorithm=algo)
        assert ids.tolist() == [0, 1]
    ids, scores = ix.search_batch([([1], [1.0]), ([2], [1.0])], k=10**15)
    assert ids.shape == (2, 2) and ids.tolist() == [[0, 1], [1, -1]]


def test_empty_index():
    ix = SegmentView.build([])
    assert len(ix) == 0
    ids, scores = ix.search([1], [1.0], k=3)
    assert len(ids) == 0
    ids, scores = ix.search_batch([([1], [1.0])], k=3)
    assert ids.tolist() == [[-1]]  # columns = min(k, documents), at least 1


def test_save_open_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    docs = random_docs(rng, 1500, 500, 40)
    for quantization in ("u8", "float"):
        ix = SegmentView.build(docs, ids=[f"doc-{i}" for i in range(len(docs))], quantization=quantization)
        ix.save(tmp_path / f"{quantization}.sdx")
        ix2 = SegmentView.open(tmp_path / f"{quantization}.sdx")
        assert len(ix2) == len(ix) and ix2.stats() == ix.stats()
        for q in random_docs(rng, 10, 500, 20):
            a, b = ix.search(q, k=10), ix2.search(q, k=10)
            assert a[0].tolist() == b[0].tolist()
            np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(ix2.get("doc-5")[1], ix.get("doc-5")[1])


def test_corrupted_and_truncated_files(tmp_path):
    rng = np.random.default_rng(4)
    ix = SegmentView.build(random_docs(rng, 400, 100, 20))
    f = tmp_path / "seg-1.sdx"
    ix.save(f)
    data = f.read_bytes()
    # truncations
    for n in [0, 7, 16, 100, len(data) // 2, len(data) - 1]:
        f.write_bytes(data[:n])
        with pytest.raises(CorruptIndexError):
            SegmentView.open(f)
    # flipped bytes across the file: an error or (a flip in padding) identical results, never a crash
    q = ([1, 2, 3, 50], [1.0, 0.5, 0.25, 2.0])
    ref = ix.search(q, k=10)
    flagged = 0
    positions = list(range(0, min(len(data), 512))) + list(rng.integers(0, len(data), 300))
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        f.write_bytes(bytes(bad))
        try:
            ix2 = SegmentView.open(f)
        except CorruptIndexError:
            flagged += 1
            continue
        got = ix2.search(q, k=10)
        assert got[0].tolist() == ref[0].tolist()
    assert flagged > len(positions) * 0.5
    # not an index, missing files
    f.write_bytes(b"hello world, not an index at all" * 10)
    with pytest.raises(CorruptIndexError, match="not a sparsedex index file"):
        SegmentView.open(f)
    f.unlink()
    with pytest.raises(FileNotFoundError):
        SegmentView.open(f)
    with pytest.raises(FileNotFoundError):
        SegmentView.open(tmp_path)  # a directory is not a segment file


def test_scipy_and_csr_inputs():
    sp = pytest.importorskip("scipy.sparse")
    m = sp.random(100, 50, density=0.1, random_state=0, format="csr", dtype=np.float32)
    a = SegmentView.build(m)
    b = SegmentView.build((m.indptr, m.indices, m.data))
    q = ([1, 2, 3], [1.0, 1.0, 1.0])
    assert a.search(q)[0].tolist() == b.search(q)[0].tolist()
    assert len(a) == 100
