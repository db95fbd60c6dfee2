"""Stop 44: search_batch checks BM25 statistics once per batch (then only the queries that
hold a suspect term), naming the first query at fault."""

import pytest

from sparsedex import Bm25Stats, SparseIndex


def test_batch_statistics_are_checked_once_and_name_the_query_at_fault():
    ix = SparseIndex("bm25")
    ix.add(["apple banana", "apple cherry cherry", "durian"], ids=[0, 1, 2])
    tid = {w: int(ix.collection_stats([w]).terms[0]) for w in ["apple", "durian", "cherry"]}
    st = ix.collection_stats()
    n, total = st.n_docs, st.total_len
    # df 0 for 'cherry', which a document holds: refused, naming the first query holding it
    bad = Bm25Stats(n, total, [tid["apple"], tid["durian"], tid["cherry"]], [2, 1, 0])
    with pytest.raises(ValueError, match=r"document frequency 0 for 'cherri' of query 2"):
        ix.search_batch(["apple", "durian", "cherry", "cherry apple"], collection_stats=bad)
    # a term the statistics lack, in query 1 only
    few = Bm25Stats(n, total, [tid["apple"]], [2])
    with pytest.raises(ValueError, match=r"no document frequency for 'durian'.* of query 1:"):
        ix.search_batch(["apple", "durian apple", "apple"], collection_stats=few)
    # statistics covering every query: the batch equals one search per query
    good = ix.collection_stats(["apple", "durian"])
    qs = ["durian apple", "durian", "apple"]
    got = ix.search_batch(qs, collection_stats=good)
    assert [[h.id for h in row] for row in got] == [[h.id for h in ix.search(q, collection_stats=good)] for q in qs]


def test_statistics_from_strided_numpy_arrays():
    """A numpy slice (not contiguous) as terms or df was refused ('must be a contiguous 1-d
    array'); it is read as the values it holds."""
    import numpy as np

    t = np.arange(20, dtype=np.uint32)
    d = np.arange(40, dtype=np.uint64)
    st = Bm25Stats(100, 1000, t[::2], d[::4])
    assert st.terms.tolist() == list(range(0, 20, 2)) and st.df.tolist() == list(range(0, 40, 4))


def test_a_term_id_of_2_32_is_named_once():
    """The error for a term id of 2**32 read 'is not below 2**32 (term ids are 32-bit
    unsigned) (4294967296)': the bound's value once, in its name."""
    import numpy as np

    ix = SparseIndex(encoder=None)
    for bad in ([{2**32: 1.0}], (np.array([0, 1]), np.array([2**32]), np.array([1.0]))):
        with pytest.raises(ValueError) as e:
            ix.add(bad)
        assert str(e.value).count("4294967296") == 2 and "2**32 = 4294967296 (term ids are 32-bit unsigned)" in str(e.value), e.value
    with pytest.raises(ValueError, match=r"is not below the vocabulary size \(10\)"):
        SparseIndex(encoder=None, vocab_size=10).add([{12: 1.0}])


def test_save_where_no_folder_can_be_made_names_the_destination():
    """save() into a new directory whose parent takes no new folders named the hidden staging
    folder ('/proc/.nope.saving-PID-RANDOM'), a path the user never gave."""
    import os

    if not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    ix = SparseIndex(encoder=None)
    ix.add([{1: 1.0}])
    with pytest.raises(OSError) as e:
        ix.save("/proc/sparsedex-nope")
    assert "cannot write an index at /proc/sparsedex-nope" in str(e.value) and "saving" not in str(e.value), e.value
