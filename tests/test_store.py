"""Segments, deletes, upserts, commits, snapshots, the writer lock, merges and filtered search
of a living SparseIndex, each checked against a fresh index built from the same documents."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sparsedex import CorruptIndexError, SparseIndex
from sparsedex._segment import SegmentView
from sparsedex.filters import compile_filter
from sparsedex.index import IndexLockedError, MergePolicy

NEVER = MergePolicy(factor=0)


def rand_vec(rng, vocab=60, lo=3, hi=12):
    n = int(rng.integers(lo, hi))
    idx = np.sort(rng.choice(vocab, size=n, replace=False)).astype(np.uint32)
    return (idx, rng.uniform(0.05, 3.0, size=n).astype(np.float32))


def doc_vec(i, vocab=60):
    """The vector of document ``i`` (deterministic)."""
    return rand_vec(np.random.default_rng(10_000 + i), vocab)


def payload(i):
    return {"year": 1950 + i % 70, "genre": ["drama", "comedy", "noir"][i % 3], "even": i % 2 == 0}


def fresh(ids, quantization="float", scale=None):
    """A single-segment index of documents ``ids`` (vectors from doc_vec)."""
    return SegmentView.build([doc_vec(i) for i in ids], ids=list(ids), quantization=quantization, scale=scale)


def queries(n=12, seed=3):
    rng = np.random.default_rng(seed)
    return [rand_vec(rng, 60, 2, 8) for _ in range(n)]


def assert_same_results(hits, ids, scores):
    """Hits equal a fresh index's (ids, scores); equal scores may come in any order."""
    got = [(h.id, h.score) for h in hits]
    want = list(zip(np.asarray(ids).tolist(), np.asarray(scores).tolist()))
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=0, abs=0), (got, want)
    if got:
        last = got[-1][1]
        assert {i for i, s in got if s > last} == {i for i, s in want if s > last}


def check_against_fresh(ix, live_ids, quantization="float", scale=None, k=10):
    ref = fresh(sorted(live_ids), quantization, scale)
    assert len(ix) == len(live_ids) and sorted(ix.ids()) == sorted(live_ids)
    for q in queries():
        ids, scores = ref.search(q[0], q[1], k=k)
        assert_same_results(ix.search(q, k=k), ids, scores)
    batch = ix.search_batch(queries(), k=k)
    for q, hits in zip(queries(), batch):
        assert hits == ix.search(q, k=k)


# segments --------------------------------------------------------------------------------
@pytest.mark.parametrize("quantization", ["float", "u8"])
def test_segments_search_like_one_index(tmp_path, quantization):
    ix = SparseIndex(None, quantization, path=tmp_path / "ix", merge_policy=NEVER)
    # the first batch holds the largest weight, so every segment shares the u8 scale
    first = [(np.array([0], np.uint32), np.array([3.0], np.float32))]
    ix.add(first, ids=[-1])
    ix.commit()
    for b in range(6):
        ids = list(range(b * 7, b * 7 + 7))
        ix.add([doc_vec(i) for i in ids], ids=ids, payloads=[payload(i) for i in ids])
        ix.commit()
    assert len(ix.segments()) == 7
    docs = [doc_vec(i) for i in range(42)]
    ref = SegmentView.build(first + docs, ids=[-1] + list(range(42)), quantization=quantization,
                            scale=None if quantization == "float" else 255 / 3.0)
    for q in queries():
        ids, scores = ref.search(q[0], q[1], k=10)
        assert_same_results(ix.search(q, k=10), ids, scores)
    for algo in SegmentView.algorithms:
        assert ix.search(queries()[0], k=10, algorithm=algo) == ix.search(queries()[0], k=10)
    assert ix.get(5).payload == payload(5)
    assert ix.get(5).vector.indices.tolist() == doc_vec(5)[0].tolist()


def test_uncommitted_changes_are_invisible_until_commit(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix")
    ix.add([doc_vec(i) for i in range(5)], ids=list(range(5)))
    assert len(ix) == 0 and ix.search(doc_vec(0), k=3) == []
    reader = SparseIndex.open(tmp_path / "ix")
    g = ix.commit()
    assert len(ix) == 5 and ix.generation == g
    assert len(reader) == 0  # a reader keeps its snapshot ...
    assert reader.refresh() and len(reader) == 5  # ... until it refreshes
    assert not reader.refresh()
    ix.delete([0, 1])
    ix.add([doc_vec(9)], ids=[9])
    ix.rollback()
    assert ix.commit() == g and len(ix) == 5
    ix.delete(0)
    ix.commit()
    assert reader.refresh() and 0 not in reader and len(reader) == 4


def test_in_memory_index_shows_adds_at_once():
    ix = SparseIndex(None, "float")
    ix.add([doc_vec(i) for i in range(4)])
    assert len(ix) == 4
    ix.add([doc_vec(i) for i in range(4, 6)])
    ix.delete(2)
    check_against_fresh(ix, [0, 1, 3, 4, 5])
    assert ix.add([doc_vec(7)]) == [6]  # running ids continue after the largest ever added


# deletes and upserts ------------------------------------------------------------------------
@pytest.mark.parametrize("quantization", ["float", "u8"])
def test_deletes_and_upserts_equal_fresh_index(tmp_path, quantization):
    ix = SparseIndex(None, quantization, path=tmp_path / "ix", merge_policy=NEVER)
    # the first segment holds the largest weight, so every segment shares the u8 scale
    ix.add([(np.array([0], np.uint32), np.array([3.0], np.float32))], ids=[-1])
    ix.commit()
    ix.delete([-1])
    scale = None if quantization == "float" else 255 / 3.0
    live = set()
    rng = np.random.default_rng(0)
    for b in range(5):
        ids = list(range(b * 20, b * 20 + 20))
        ix.add([doc_vec(i) for i in ids], ids=ids)
        live |= set(ids)
        gone = rng.choice(sorted(live), size=6, replace=False).tolist()
        ix.delete(gone)
        live -= set(gone)
        ix.commit()
    scales = {st.segment.index.stats()["scale"] for st in ix._store.snapshot.states}
    assert len(scales) == 1
    check_against_fresh(ix, live, quantization, scale)
    # upsert replaces a document (new vector and payload); delete of an unknown id fails
    some = sorted(live)[0]
    ix.upsert([doc_vec(999)], ids=[some], payloads=[{"new": True}])
    ix.commit()
    assert ix.get(some).payload == {"new": True}
    assert ix.get(some).vector.indices.tolist() == doc_vec(999)[0].tolist()
    with pytest.raises(KeyError, match="no document with id 12345"):
        ix.delete([12345])
    assert ix.delete([12345], missing_ok=True) == 0
    with pytest.raises(ValueError, match="already in the index"):
        ix.add([doc_vec(1)], ids=[some])


def test_merges_drop_deleted_documents_and_bound_segments(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=MergePolicy(factor=3, floor_docs=4))
    live = set()
    for b in range(30):
        ids = list(range(b * 4, b * 4 + 4))
        ix.add([doc_vec(i) for i in ids], ids=ids)
        live |= set(ids)
        if b % 3 == 2:
            ix.delete([b * 4 - 1])
            live.discard(b * 4 - 1)
        ix.commit()
        ix.wait_for_merges()
        assert len(ix.segments()) <= 2 * 4  # (factor - 1) per level, few levels
    check_against_fresh(ix, live)
    ix.merge()
    segs = ix.segments()
    assert len(segs) == 1 and segs[0]["documents"] == segs[0]["live"] == len(live)
    check_against_fresh(ix, live)
    again = SparseIndex.open(tmp_path / "ix")
    check_against_fresh(again, live)


def test_merge_copies_documents_again_when_the_merge_order_differs(tmp_path):
    """A merge's documents are copied alongside the engine merge, in the order a
    concatenation gives (``concat_origin``); when the merge comes out in another order, they
    are copied again in the merge's: every id keeps its own payload."""
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=MergePolicy(factor=0))
    for b in range(3):
        r = range(b * 5, b * 5 + 5)
        ix.add([doc_vec(i) for i in r], ids=list(r), payloads=[{"i": i, "t": f"t{i}"} for i in r])
        ix.commit()
    store = ix._store
    real = store._core
    asked = []

    class Skewed:  # the core, with a wrong guess of the merge's order
        def __getattr__(self, name):
            return getattr(real, name)

        def concat_origin(self, names):
            om, od = real.concat_origin(names)
            asked.append(len(om))
            return om[::-1].copy(), od[::-1].copy()

    store._core = Skewed()
    try:
        ix.merge()
    finally:
        store._core = real
    assert asked == [15] and len(ix.segments()) == 1
    for i in range(15):
        assert ix.get(i).payload == {"i": i, "t": f"t{i}"}
    again = SparseIndex.open(tmp_path / "ix")
    assert [again.get(i).payload for i in range(15)] == [{"i": i, "t": f"t{i}"} for i in range(15)]


def test_background_merge_keeps_deletes_made_while_it_ran(tmp_path, monkeypatch):
    """A background merge builds from the commit it started at; deletions committed or staged
    while it ran are carried over to the merged segment."""
    policy = MergePolicy(factor=3, floor_docs=5)
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=policy)
    for b in range(2):
        ix.add([doc_vec(i) for i in range(b * 5, b * 5 + 5)], ids=list(range(b * 5, b * 5 + 5)))
        ix.commit()
    store = ix._store
    built, go = threading.Event(), threading.Event()
    real = store._merge_alongside_docs

    def slow_merge(names, members):
        out = real(names, members)  # the engine merge is done, its documents written
        assert out[1] is not None  # copied alongside, in the merge's order
        built.set()
        assert go.wait(30)  # hold the built segment back while the writer goes on
        return out

    monkeypatch.setattr(store, "_merge_alongside_docs", slow_merge)
    ix.add([doc_vec(i) for i in range(10, 15)], ids=list(range(10, 15)))
    ix.commit()  # the third segment of level 0: a merge starts in the background
    assert built.wait(30)
    ix.delete([1, 7])
    g = ix.commit()  # committed while the merge runs
    ix.delete([12, 3])  # staged while the merge runs
    ix.upsert([doc_vec(99)], ids=[4])
    go.set()
    ix.wait_for_merges()
    assert ix.generation == g + 1 and len(ix.segments()) == 1  # merged; staged changes still staged
    assert sorted(ix.ids()) == [i for i in range(15) if i not in (1, 7)]
    ix.commit()
    ix.wait_for_merges()
    live = [i for i in range(15) if i not in (1, 7, 12, 3)]
    assert sorted(ix.ids()) == live
    assert ix.get(4).vector.indices.tolist() == doc_vec(99)[0].tolist()
    assert sorted(SparseIndex.open(tmp_path / "ix").ids()) == live


def test_merge_to_n_segments(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=NEVER)
    for b in range(12):
        ix.add([doc_vec(i) for i in range(b * 5, b * 5 + 5)], ids=list(range(b * 5, b * 5 + 5)))
        ix.commit()
    assert len(ix.segments()) == 12
    ix.merge(max_segments=4)
    assert len(ix.segments()) == 4
    check_against_fresh(ix, range(60))


# BM25 statistics ------------------------------------------------------------------------------
BM25_TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "a fox and a dog are friends",
    "lazy afternoons in the sun",
    "the dog barks at the quick cat",
    "brown bears eat honey in the forest",
    "a quick guide to foxes and bears",
    "the forest is dark and the night is long",
    "sun and honey for the lazy bear",
]


@pytest.mark.parametrize("quantization", ["float", "u8"])
def test_bm25_scores_after_deletes_equal_fresh_index(tmp_path, quantization):
    ix = SparseIndex("bm25", quantization, path=tmp_path / "ix", merge_policy=NEVER)
    ix.add(BM25_TEXTS[:4], ids=list(range(4)))
    ix.commit()
    ix.add(BM25_TEXTS[4:], ids=list(range(4, 8)))
    ix.commit()
    ix.delete([1, 6])
    ix.commit()
    assert len(ix.segments()) == 2
    survivors = [i for i in range(8) if i not in (1, 6)]
    ref = SparseIndex("bm25", quantization)
    ref.add([BM25_TEXTS[i] for i in range(8)], ids=list(range(8)))  # same term dictionary
    ref.delete([1, 6])
    ref.merge()
    fresh_ref = SparseIndex("bm25", quantization)
    fresh_ref._encoder = ref.encoder  # same term ids, statistics from the survivors only
    fresh_ref.add([BM25_TEXTS[i] for i in survivors], ids=survivors)
    for q in ["quick fox", "lazy dog in the sun", "honey bear forest", "the"]:
        got = {h.id: h.score for h in ix.search(q, k=8)}
        want = {h.id: h.score for h in fresh_ref.search(q, k=8)}
        assert got == want, q
        reopened = SparseIndex.open(tmp_path / "ix")
        assert {h.id: h.score for h in reopened.search(q, k=8)} == want


# writer lock ----------------------------------------------------------------------------------
def test_one_writer_at_a_time(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix")
    ix.add([doc_vec(0)], ids=[0])
    ix.commit()
    other = SparseIndex.open(tmp_path / "ix")
    assert len(other) == 1  # reading needs no lock
    with pytest.raises(IndexLockedError, match="another writer"):
        other.add([doc_vec(1)], ids=[1])
    code = textwrap.dedent(f"""
        import sys
        from sparsedex import SparseIndex
        from sparsedex.index import IndexLockedError
        ix = SparseIndex.open({str(tmp_path / "ix")!r})
        try:
            ix.delete([0])
        except IndexLockedError as e:
            print("locked:", e)
            sys.exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "pid" in r.stdout, r.stdout + r.stderr
    ix.close()
    other.add([doc_vec(1)], ids=[1])  # the lock is free now; the writer caught up first
    other.commit()
    assert sorted(SparseIndex.open(tmp_path / "ix").ids()) == [0, 1]


def test_create_refuses_an_existing_index(tmp_path):
    SparseIndex(None, path=tmp_path / "ix").close()
    with pytest.raises(FileExistsError, match="already holds an index"):
        SparseIndex(None, path=tmp_path / "ix")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty and not a sparsedex index"):
        SparseIndex(None, path=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


# corruption -----------------------------------------------------------------------------------
def _committed(tmp_path, shift=0):
    p = tmp_path / "ix"
    ix = SparseIndex(None, "u8", path=p, merge_policy=NEVER)
    ix.add([doc_vec(i + shift) for i in range(30)], ids=list(range(30)), payloads=[payload(i) for i in range(30)])
    ix.commit()
    ix.add([doc_vec(i) for i in range(30, 40)], ids=list(range(30, 40)))
    ix.delete([3, 31])
    ix.commit()
    ix.close()
    return p


def _padding_only(data, bad):
    """The engine file's alignment padding between sections is outside every checksum."""
    return len(data) == len(bad) and all(bad[i] == data[i] or data[i] == 0 for i in range(len(data)))


def _open_and_search(p):
    """Open, search and read every document (documents files are verified on first read)."""
    ix = SparseIndex.open(p)
    ix.search(doc_vec(0), k=5)
    for i in ix.ids():
        ix.get(i)
    return ix


def test_corruption_is_a_clear_error(tmp_path):
    p = _committed(tmp_path)
    files = sorted(f.name for f in p.iterdir() if f.name != "LOCK")
    assert any(f.endswith(".sdx") for f in files) and any(".del-" in f for f in files)
    assert _open_and_search(p) is not None
    rng = np.random.default_rng(0)
    for name in files:
        data = (p / name).read_bytes()
        cases = [data[:n] for n in sorted({0, 1, 7, len(data) // 2, len(data) - 1})]
        for _ in range(12):
            b = bytearray(data)
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
            cases.append(bytes(b))
        for bad in cases:
            (p / name).write_bytes(bad)
            try:
                _open_and_search(p)
            except CorruptIndexError:
                pass
            else:  # every byte is covered by a checksum: only the intact file opens
                assert bad == data or (name.endswith(".sdx") and _padding_only(data, bad)), name
        (p / name).write_bytes(data)
        (p / name).unlink()
        with pytest.raises(CorruptIndexError, match="missing"):
            _open_and_search(p)
        (p / name).write_bytes(data)
    assert len(_open_and_search(p)) == 38


def test_files_from_another_index_are_rejected(tmp_path):
    a = _committed(tmp_path / "a", shift=1000)
    b = _committed(tmp_path / "b")  # same layout and file names, other vectors and store id
    for f in sorted(x.name for x in a.iterdir() if x.name.startswith("seg-")):
        orig = (b / f).read_bytes()
        if orig == (a / f).read_bytes():
            continue  # the same bytes (a documents file of equal payloads): nothing to detect
        (b / f).write_bytes((a / f).read_bytes())
        with pytest.raises(CorruptIndexError, match="another index|checksum|size"):
            _open_and_search(b)
        (b / f).write_bytes(orig)
    _open_and_search(b)
    with pytest.raises(FileNotFoundError, match="no index directory there"):
        SparseIndex.open(tmp_path / "nowhere")
    (tmp_path / "afile").write_text("x")  # a file, e.g. the index's CURRENT (newcomer35)
    for f in (tmp_path / "afile", b / "CURRENT"):
        with pytest.raises(FileNotFoundError, match="is a file, not an index directory"):
            SparseIndex.open(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no sparsedex index there: no CURRENT file and no index files"):
        SparseIndex.open(tmp_path / "empty")
    (b / "CURRENT").unlink()  # an index's files without the one naming its commit: damaged
    with pytest.raises(CorruptIndexError, match="missing CURRENT"):
        SparseIndex.open(b)


# concurrency ----------------------------------------------------------------------------------
def test_searches_see_whole_commits_while_a_writer_works(tmp_path):
    """Several threads search while another adds, deletes and commits; every result equals
    the result of some committed snapshot (no torn state, no error)."""
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=MergePolicy(factor=3, floor_docs=5))
    reader = SparseIndex.open(tmp_path / "ix")
    qs = queries(4, seed=11)
    states: dict[int, frozenset[int]] = {ix.generation: frozenset()}
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[int, int, tuple]] = []

    def writer():
        try:
            live: set[int] = set()
            rng = np.random.default_rng(1)
            for b in range(25):
                ids = list(range(b * 6, b * 6 + 6))
                ix.add([doc_vec(i) for i in ids], ids=ids)
                live |= set(ids)
                if b % 2:
                    gone = rng.choice(sorted(live), size=3, replace=False).tolist()
                    ix.delete(gone)
                    live -= set(gone)
                g = ix.commit()
                states[g] = frozenset(live)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            stop.set()

    def searcher(handle, refresh):
        try:
            while not stop.is_set():
                if refresh:
                    handle.refresh()
                for qi, q in enumerate(qs):
                    hits = handle.search(q, k=8)
                    seen.append((qi, -1, tuple((h.id, h.score) for h in hits)))
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=searcher, args=(ix, False)) for _ in range(2)]
    threads += [threading.Thread(target=searcher, args=(reader, True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(seen) > 20
    # every committed state's results
    expect: dict[int, set[tuple]] = {qi: set() for qi in range(len(qs))}
    for live in set(states.values()):
        if not live:
            for qi in expect:
                expect[qi].add(())
            continue
        ref = fresh(sorted(live))
        for qi, q in enumerate(qs):
            ids, scores = ref.search(q[0], q[1], k=8)
            expect[qi].add(tuple(zip(ids.tolist(), scores.tolist())))
    for qi, _, got in seen:
        assert got in expect[qi], "a search saw a state that was never committed"


# filters --------------------------------------------------------------------------------------
def test_filtered_search_basics(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=NEVER)
    n = 120
    for b in range(3):
        ids = list(range(b * 40, b * 40 + 40))
        ix.add([doc_vec(i) for i in ids], ids=ids, payloads=[payload(i) for i in ids])
        ix.commit()
    ix.delete([5, 50, 95])
    ix.commit()
    live = [i for i in range(n) if i not in (5, 50, 95)]
    for flt in [{"genre": "noir"}, {"year": {"$gte": 2000, "$lt": 2005}}, {"even": True, "genre": {"$in": ["drama"]}},
                {"$or": [{"year": 1951}, {"genre": "comedy"}]}, {"missing": {"$exists": False}}, {"genre": "none"}]:
        f = compile_filter(flt)
        allowed = [i for i in live if f.matches(payload(i))]
        for q in queries(5):
            hits = ix.search(q, k=7, filter=flt)
            assert all(f.matches(h.payload) for h in hits)
            if allowed:
                ids, scores = fresh(allowed).search(q[0], q[1], k=7)
                assert_same_results(hits, ids, scores)
            else:
                assert hits == []
        assert ix.search_batch(queries(5), k=7, filter=flt) == [ix.search(q, k=7, filter=flt) for q in queries(5)]
    with pytest.raises(ValueError, match="unknown operator"):
        ix.search(queries()[0], filter={"year": {"$gtx": 3}})


payload_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0, 2.5]),
                           st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["a", "b", 1, 2]), max_size=3))
payloads_st = st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "y", "z"]), payload_values, max_size=3))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0, 2.5]), st.sampled_from(["a", "b", "c"]))
field = st.sampled_from(["x", "y", "z"])
leaf = st.one_of(
    st.builds(lambda f, v: {f: v}, field, scalar),
    st.builds(lambda f, op, v: {f: {op: v}}, field, st.sampled_from(["$eq", "$ne"]), scalar),
    st.builds(lambda f, op, vs: {f: {op: vs}}, field, st.sampled_from(["$in", "$nin"]), st.lists(scalar, max_size=3)),
    st.builds(lambda f, op, v: {f: {op: v}}, field, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), st.integers(-3, 3)),
    st.builds(lambda f, v: {f: {"$exists": v}}, field, st.booleans()),
)
filters_st = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pls=st.lists(payloads_st, min_size=1, max_size=90),
    flt=filters_st,
    quantization=st.sampled_from(["float", "u8"]),
    split=st.integers(1, 4),
    k=st.integers(1, 12),
    data=st.data(),
)
def test_filtered_search_equals_brute_force(pls, flt, quantization, split, k, data):
    """A filtered search over several segments (with deletions) returns the brute-force top-k
    of the live documents that match, for random payloads and filter expressions."""
    n = len(pls)
    ix = SparseIndex(None, quantization, merge_policy=NEVER)
    bounds = np.linspace(0, n, split + 1).astype(int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            ix.add([doc_vec(i) for i in range(a, b)], ids=list(range(a, b)), payloads=pls[a:b])
            len(ix)  # commit this batch as its own segment
    dead = data.draw(st.lists(st.integers(0, n - 1), max_size=n // 4, unique=True))
    if dead:
        ix.delete(dead)
    f = compile_filter(flt)
    live = [i for i in range(n) if i not in set(dead)]
    q = data.draw(st.sampled_from(queries(6)))
    everything = ix.search(q, k=n)  # the unfiltered ranking of every live document
    want = [(h.id, h.score) for h in everything if f.matches(pls[h.id])][:k]
    got = [(h.id, h.score) for h in ix.search(q, k=k, filter=flt)]
    assert got == want
    assert {i for i, _ in got} <= {i for i in live if f.matches(pls[i])}
    # scores are the dot products (brute force over the vectors)
    qd = dict(zip(q[0].tolist(), q[1].tolist()))
    for i, s in got:
        idx, val = doc_vec(i)
        dot = sum(qd.get(t, 0.0) * v for t, v in zip(idx.tolist(), val.tolist()))
        assert s == pytest.approx(dot, rel=1e-5 if quantization == "float" else 2e-2, abs=1e-3 if quantization == "u8" else 1e-6)


def test_bulk_csr_add_and_max_weight(tmp_path):
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    m = sp.random(300, 80, density=0.08, random_state=5, format="csr", dtype=np.float32)
    m.data = rng.uniform(0.1, 2.0, m.data.shape[0]).astype(np.float32)
    ix = SparseIndex(None, "u8", path=tmp_path / "ix", merge_policy=NEVER, max_weight=2.0)
    ix.add(m[:100], payloads=[{"i": i} for i in range(100)])
    ix.commit()
    ix.add(m[100:])
    ix.commit()
    assert len(ix) == 300 and len(ix.segments()) == 2
    ref = SegmentView.build(m, quantization="u8", scale=255 / 2.0)
    for q in queries(8):
        ids, scores = ref.search(q[0], q[1], k=10)
        assert_same_results(ix.search(q, k=10), ids, scores)  # one grid for every segment
    bad = m[:3].copy()
    bad.data[bad.indptr[2]] = np.nan
    with pytest.raises(ValueError, match="document 2"):
        ix.add(bad, ids=[1000, 1001, 1002])
    with pytest.raises(ValueError, match="max_weight"):
        SparseIndex(None, "float", max_weight=2.0)


def test_weight_above_an_explicit_max_weight_warns_and_is_not_clipped(tmp_path):
    """A weight above the max_weight an index was created with is never clipped (its segment
    gets a grid of its own): a UserWarning names the document and the weight, also after the
    index is opened again; an index whose grid came from its first commit does not warn."""
    import warnings

    ix = SparseIndex(None, "u8", path=tmp_path / "ix", merge_policy=NEVER, max_weight=1.0)
    ix.add([([1, 2], [0.5, 0.25])], ids=[1])
    ix.commit()
    with pytest.warns(UserWarning, match=r"document 1 \(id 3\) has weight 4\.0, above the max_weight=1\.0"):
        ix.add([([1], [1.0]), ([2], [4.0])], ids=[2, 3])
    ix.commit()
    assert ix.search(([2], [1.0]), k=1)[0].score == pytest.approx(4.0, rel=0.01)  # not clipped to 1.0
    ix.close()
    with SparseIndex.open(tmp_path / "ix") as again:
        with pytest.warns(UserWarning, match=r"id 4\) has weight 2\.0"):
            again.add([([1], [2.0])], ids=[4])
    plain = SparseIndex(None, "u8")
    plain.add([([1], [1.0])], ids=[1])
    plain.commit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.add([([1], [5.0])], ids=[2])


def test_close_waits_for_background_merges(tmp_path):
    ix = SparseIndex(None, "float", path=tmp_path / "ix", merge_policy=MergePolicy(factor=3, floor_docs=5))
    for b in range(3):
        ix.add([doc_vec(i) for i in range(b * 5, b * 5 + 5)], ids=list(range(b * 5, b * 5 + 5)))
        ix.commit()
    ix.close()
    reopened = SparseIndex.open(tmp_path / "ix")
    assert len(reopened.segments()) == 1 and len(reopened) == 15
    check_against_fresh(reopened, range(15))


def test_reopened_writer_leaves_committed_files_alone_and_collects_debris(tmp_path):
    p = tmp_path / "ix"
    ix = SparseIndex(None, "float", path=p, merge_policy=NEVER)
    ix.add([doc_vec(i) for i in range(5)], ids=list(range(5)))
    ix.commit()
    ix.close()
    sdx = next(p.glob("seg-*.sdx"))
    before = sdx.stat().st_mtime_ns, sdx.stat().st_ino
    # temporary files of crashed writes (engine file, documents database, manifest)
    debris = [f".{sdx.name}.tmp-12345-0", f".{sdx.stem}.docs.tmp-12345-140234", ".manifest-000009.tmp-12345-3"]
    for d in debris:
        (p / d).write_bytes(b"half a file from a crashed writer")
    reader = SparseIndex.open(p)
    assert len(reader) == 5 and all((p / d).exists() for d in debris)  # readers never delete
    again = SparseIndex.open(p)
    again.add([doc_vec(9)], ids=[9])  # the first write collects them
    again.commit()
    assert (sdx.stat().st_mtime_ns, sdx.stat().st_ino) == before  # not written again
    assert not any((p / d).exists() for d in debris)
    again.close()


def test_failed_documents_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A documents database whose write fails (disk full, ...) is removed at once, and the
    commit changes nothing (issue 9, item 9)."""
    import sparsedex.docs as docs_mod

    p = tmp_path / "ix"
    ix = SparseIndex(None, "float", path=p, merge_policy=NEVER)
    ix.add([doc_vec(i) for i in range(5)], ids=list(range(5)), payloads=[payload(i) for i in range(5)])
    real = docs_mod._publish

    def full_disk(tmp, dest):
        assert tmp.exists() and tmp.name.startswith(f".{dest.name}.tmp-")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(docs_mod, "_publish", full_disk)
    with pytest.raises(OSError, match="No space"):
        ix.commit()
    assert not [f for f in p.iterdir() if ".tmp-" in f.name]
    assert len(SparseIndex.open(p)) == 0
    monkeypatch.setattr(docs_mod, "_publish", real)
    ix.commit()  # the staged documents are still there
    assert len(ix) == 5 and ix.get(3).payload == payload(3)
    ix.close()


def test_closed_index_refuses_reads_and_writes_and_never_retakes_the_lock(tmp_path):
    from sparsedex import ClosedIndexError, SparseIndex

    d = tmp_path / "c1"
    w = SparseIndex(None, path=d)
    w.add([{1: 1.0}], ids=["a"])
    w.commit()
    assert not w.closed
    w.close()
    w.close()  # idempotent
    assert w.closed
    calls = {
        "add": lambda: w.add([{2: 1.0}], ids=["b"]),
        "upsert": lambda: w.upsert([{2: 1.0}], ids=["b"]),
        "delete": lambda: w.delete("a"),
        "commit": w.commit,
        "rollback": w.rollback,
        "merge": w.merge,
        "refresh": w.refresh,
        "wait_for_merges": w.wait_for_merges,
        "search": lambda: w.search({1: 1.0}),
        "get": lambda: w.get("a"),
        "ids": w.ids,
        "len": lambda: len(w),
        "contains": lambda: "a" in w,
        "explain": lambda: w.explain({1: 1.0}, "a"),
        "save": lambda: w.save(tmp_path / "copy"),
        "generation": lambda: w.generation,
        "enter": lambda: w.__enter__(),
    }
    for name, call in calls.items():
        with pytest.raises(ClosedIndexError, match="closed"):
            call()
    assert issubclass(ClosedIndexError, ValueError)
    # the closed handle did not take the writer lock back: another writer can write
    with SparseIndex.open(d) as other:
        other.add([{2: 1.0}], ids=["b"])
        other.commit()
    assert other.closed
    with SparseIndex.open(d) as r:
        assert sorted(r.ids()) == ["a", "b"]


def test_closed_in_memory_index_refuses_use():
    from sparsedex import ClosedIndexError, SparseIndex

    ix = SparseIndex(None)
    ix.add([{1: 1.0}])
    ix.close()
    with pytest.raises(ClosedIndexError):
        ix.search({1: 1.0})
    with pytest.raises(ClosedIndexError):
        ix.add([{1: 1.0}])


# deferred reordering ----------------------------------------------------------------------
def _bulk(n, seed, vocab=400):
    """``n`` random CSR rows (4-10 terms each)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(4, 11, size=n)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    indices = np.concatenate([np.sort(rng.choice(vocab, size=k, replace=False)) for k in lens]).astype(np.uint32)
    values = rng.uniform(0.1, 2.0, size=int(indptr[-1])).astype(np.float32)
    return indptr, indices, values


def _settled(ix, qs):
    return [[(h.id, h.score) for h in ix.search(q, k=10)] for q in qs]


def _big_merged(tmp_path, order, policy):
    """An index whose three 11,000-document commits are merged into one segment of 33,000
    documents (at least BP_MIN_DOCS): it waits for a reorder job."""
    ix = SparseIndex(None, "u8", path=tmp_path / "ix", reorder=order, max_weight=2.0, merge_policy=policy)
    for b in range(3):
        ix.add(_bulk(11_000, b), ids=list(range(b * 11_000, (b + 1) * 11_000)))
        ix.commit()
    return ix


@pytest.mark.parametrize("order", ["signature", "bp"])
def test_merges_concatenate_and_reorder_jobs_run_on_demand(tmp_path, order):
    never_idle = MergePolicy(factor=3, floor_docs=11_000, reorder_delay=3600, reorder_after_commits=1000)
    ix = _big_merged(tmp_path, order, never_idle)
    ix.wait_for_merges()
    assert len(ix.segments()) == 1
    core = ix._store._core
    pending = core.plan_reorders()
    assert pending == [ix.segments()[0]["name"]]
    qs = [(np.sort(np.random.default_rng(s).choice(400, 6, replace=False)).astype(np.uint32),
           np.ones(6, np.float32)) for s in range(20)]
    before = _settled(ix, qs)
    ix.delete([5, 11_007])
    ix.commit()
    ix.wait_for_merges(reorder=True)
    assert core.plan_reorders() == [] and len(ix.segments()) == 1
    assert ix.segments()[0]["name"] != pending[0]
    after = _settled(ix, qs)
    want = [[h for h in hs if h[0] not in (5, 11_007)] for hs in before]
    assert [a[: len(w)] for a, w in zip(after, want)] == want  # same hits, deleted ones gone
    ix.close()
    again = SparseIndex.open(tmp_path / "ix")
    assert again._store._core.plan_reorders() == [] and _settled(again, qs) == after


def test_reorder_jobs_run_when_the_writer_is_idle_or_after_many_commits(tmp_path):
    idle = MergePolicy(factor=3, floor_docs=11_000, reorder_delay=0.05, reorder_after_commits=1000)
    ix = _big_merged(tmp_path / "a", "signature", idle)
    core = ix._store._core
    for _ in range(600):  # the merge thread reorders once no commit came for reorder_delay
        if not core.plan_reorders() and (ix._store._merger is None or not ix._store._merger.is_alive()):
            break
        time.sleep(0.05)
    assert core.plan_reorders() == [] and len(ix.segments()) == 1
    ix.close()

    by_count = MergePolicy(factor=3, floor_docs=11_000, reorder_delay=3600, reorder_after_commits=2)
    ix = _big_merged(tmp_path / "b", "signature", by_count)
    core = ix._store._core
    ix.wait_for_merges()
    assert core.plan_reorders() != []
    for i in range(3):  # small commits: the merged segment has waited through 2 of them
        ix.add([doc_vec(i)], ids=[100_000 + i])
        ix.commit()
    for _ in range(600):
        if not core.plan_reorders():
            break
        time.sleep(0.05)
    assert core.plan_reorders() == []
    ix.close()

    inside = MergePolicy(factor=3, floor_docs=11_000, background=False, reorder_after_commits=1)
    ix = _big_merged(tmp_path / "c", "signature", inside)
    core = ix._store._core
    assert core.plan_reorders() != []  # merged by the third commit, not yet due
    ix.add([doc_vec(0)], ids=[100_000])
    ix.commit()
    assert core.plan_reorders() == []
    ix.close()


def test_close_does_not_wait_for_reorder_delay_and_the_job_stays_pending(tmp_path):
    never_idle = MergePolicy(factor=3, floor_docs=11_000, reorder_delay=3600, reorder_after_commits=1000)
    ix = _big_merged(tmp_path, "signature", never_idle)
    for _ in range(600):
        if len(ix.segments()) == 1:
            break
        time.sleep(0.05)
    assert ix._store._merger is not None and ix._store._merger.is_alive()  # waiting to reorder
    t0 = time.perf_counter()
    ix.close()  # wakes the merge thread, which starts no reorder job
    assert time.perf_counter() - t0 < 30
    again = SparseIndex.open(tmp_path / "ix")
    assert again._store._core.plan_reorders() == [again.segments()[0]["name"]]  # kept on disk
