"""Fuzzing the public API (issue 9, "Done when"): random vectors, ids, payloads, texts and
filters go into add / upsert / delete / search / get / commit / rollback of an in-memory and
an on-disk SparseIndex at once. Every call must either

- raise a documented exception (ValueError and its subclasses FilterError / PayloadError,
  TypeError, KeyError) and leave the index exactly as it was (staged state and answers), or
- succeed, with answers equal to brute force over a model of the documents.

A crash, a hang (each step is timed) or any other exception fails the test.

Whether an input is valid is decided here independently of the library (plain predicates
written from the documented rules), so a silent rewrite (an input accepted that should have
been refused, or stored differently) shows as a disagreement with the model.

The fast version runs in the normal suite; ``pytest -m slow tests/test_api_fuzz.py -s`` runs
the long one and prints how many cases, steps and refusals it executed.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import time
import unicodedata
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sparsedex import FilterError, MergePolicy, SparseIndex
from sparsedex.filters import compile_filter
from sparsedex.vectors import SparseEmbedding

STATS: Counter = Counter()
DOCUMENTED = (ValueError, TypeError, KeyError)  # FilterError, PayloadError are ValueErrors
STEP_SECONDS = 20.0  # a step slower than this is a hang

I64 = (-(2**63), 2**63 - 1)
FIELDS = ["year", "genre", "tags", "meta"]


# -- strategies: valid and invalid inputs -------------------------------------------------------
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
)
numpy_scalar = st.one_of(
    st.integers(-100, 100).map(np.int64), st.floats(-1024, 1024, width=32).map(np.float32), st.booleans().map(np.bool_),
)
json_value = st.recursive(json_scalar | numpy_scalar, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)
payload_fields = st.fixed_dictionaries({}, optional={
    "year": st.integers(1900, 2030) | st.floats(1900, 2030) | st.sampled_from([None, "1999"]),
    "genre": st.sampled_from(["drama", "noir", "music", ""]),
    "tags": st.lists(st.sampled_from(["a", "b", "c", 1, 2.5, None]), max_size=3),
    "meta": st.dictionaries(st.sampled_from(["lang", "n"]), st.sampled_from(["en", "de", 1, 2]), max_size=2),
    "extra": json_value,
})
bad_payload_value = st.sampled_from([
    (1, 2), {1, 2}, b"bytes", float("nan"), float("inf"), "\ud800", np.array([1, 2]), object(), 1j,
])
bad_payload = st.one_of(
    st.tuples(payload_fields, st.sampled_from(FIELDS + ["x"]), bad_payload_value).map(lambda t: {**t[0], t[1]: t[2]}),
    st.tuples(payload_fields, st.sampled_from([1, 2.5, None, True, ("k",)])).map(lambda t: {**t[0], t[1]: "v"}),
    st.sampled_from(["not a dict", 3, ["a"]]),
)

TERM = st.integers(0, 24)
WEIGHT = st.one_of(st.floats(0.0625, 50.0, width=32), st.just(0.0))
valid_vector_dict = st.dictionaries(TERM, WEIGHT, max_size=6)


def shaped(d: dict) -> st.SearchStrategy:
    ks, vs = list(d), list(d.values())
    return st.sampled_from([
        d,
        (ks, vs),
        SparseEmbedding(np.asarray(ks, dtype=np.int64), np.asarray(vs, dtype=np.float64)) if ks else SparseEmbedding.empty(),
        {"indices": np.asarray(ks, dtype=np.uint32), "values": np.asarray(vs, dtype=np.float32)},
    ])


valid_vector = valid_vector_dict.flatmap(lambda d: st.tuples(st.just(d), shaped(d)))
_BAD_EITHER = [
    {1: -1.0}, {1: float("nan")}, {1: float("inf")}, {1: 1e15}, {1: 3e38}, {1: True}, ([1, 1], [1.0, 2.0]),
    ([True], [1.0]), ([1.5], [1.0]), {2**32: 1.0}, {-1: 1.0}, ([1, 2], [1.0]), "text",
    None, 3.0, ([1], ["a"]), (np.array([[1]]), np.array([[1.0]])),
]
bad_vector = st.sampled_from(_BAD_EITHER)
bad_query = st.sampled_from(_BAD_EITHER)

FILTER_LEAF = st.one_of(
    st.tuples(st.sampled_from(FIELDS + ["meta.lang", "meta.n", "missing"]), json_scalar.filter(
        lambda v: not isinstance(v, float) or math.isfinite(v))).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["year", "meta.n", "tags"]), st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
              st.integers(1890, 2040) | st.floats(1890, 2040) | st.integers(0, 3).map(np.int64)).map(
        lambda t: {t[0]: {t[1]: t[2]}}),
    st.tuples(st.sampled_from(FIELDS), st.lists(st.sampled_from(["drama", "a", 1, 2.5, None, True]), max_size=3),
              st.sampled_from(["$in", "$nin"])).map(lambda t: {t[0]: {t[2]: t[1]}}),
    st.tuples(st.sampled_from(FIELDS + ["meta.lang"]), st.booleans()).map(lambda t: {t[0]: {"$exists": t[1]}}),
)
good_filter = st.recursive(FILTER_LEAF, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
    st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
    inner.map(lambda f: {"$not": f}),
), max_leaves=5)
bad_filter = st.sampled_from([
    {"year": {"$around": 3}}, {"year": float("nan")}, {"$or": []}, {"year": [1, 2]}, {1: 2}, "year",
    {"year": {"$gt": "1990"}}, {"$nor": [{}]}, {"year": {"$in": 3}}, {"a..b": 1},
])


def deep_filter(depth: int) -> dict:
    f: dict = {"year": 1}
    for _ in range(depth):
        f = {"$not": f}
    return f


# -- the independent model of what is valid -----------------------------------------------------
def plain(v):
    """The value the index must store for a valid payload value (numpy scalars as Python)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def valid_payload_value(v, depth: int = 1) -> bool:
    if depth > 64:
        return False
    if v is None or isinstance(v, (bool, np.bool_)):
        return True
    if isinstance(v, (int, np.integer)):
        return True
    if isinstance(v, (float, np.floating)):
        return math.isfinite(float(v))
    if isinstance(v, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if isinstance(v, list):
        return all(valid_payload_value(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and valid_payload_value(k) and valid_payload_value(x, depth + 1)
                   for k, x in v.items())
    return False


def valid_payload(p) -> bool:
    return p is None or (isinstance(p, dict) and valid_payload_value(p))


def id_kind(x):
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (int, np.integer)):
        return int if I64[0] <= int(x) <= I64[1] else None
    if isinstance(x, str):
        return str if not any(0xD800 <= ord(c) <= 0xDFFF for c in x) else None
    return None


def brute_score(q: dict, d: dict) -> float:
    return float(sum(np.float64(np.float32(w)) * np.float64(np.float32(d[t])) for t, w in q.items() if t in d))


# -- the machine ---------------------------------------------------------------------------------
class IndexMachine(RuleBasedStateMachine):
    """An in-memory and an on-disk SparseIndex (vectors you bring, float impacts), driven
    together, checked against a model: ``staged`` (what the next commit holds, what the
    in-memory index shows) and ``committed`` (what the on-disk index shows)."""

    @initialize(kind=st.sampled_from([int, str]))
    def setup(self, kind):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="sdx-fuzz-")
        # merges inside commit: a background merge would commit on its own, mid-step
        self.mem = SparseIndex(None, "float", merge_policy=MergePolicy(factor=3, background=False))
        self.disk = SparseIndex(None, "float", path=f"{self.dir}/ix",
                                merge_policy=MergePolicy(factor=3, background=False))
        self.staged: dict = {}      # id -> (vector dict without zeros, payload)
        self.committed: dict = {}
        self.next_int = {"mem": 0, "disk": 0}  # auto ids: after a rollback the two differ
        self.committed_next_int = 0
        STATS["cases"] += 1

    def teardown(self):
        try:
            self.disk.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # helpers ---------------------------------------------------------------------------
    def _both(self, call):
        """Run ``call(index)`` on both indexes; both succeed, or both refuse and change nothing."""
        out = []
        for ix in (self.mem, self.disk):
            before = snapshot(ix)
            t0 = time.perf_counter()
            try:
                out.append(("ok", call(ix)))
            except DOCUMENTED as e:
                after = snapshot(ix)
                where = "in memory" if ix is self.mem else "on disk"
                assert after == before, f"a refused call changed the index {where}: {e!r}\n{before}\n{after}"
                out.append(("refused", e))
            finally:
                assert time.perf_counter() - t0 < STEP_SECONDS, "a step took too long"
        return out

    def _new_id(self, data, valid: bool):
        if valid:
            if self.kind is int:
                big = data.draw(st.integers(0, 30)) == 0
                return data.draw(st.sampled_from([2**63 - 1, -(2**63), np.int64(5)]) if big else st.integers(-3, 40))
            return data.draw(st.text("abcé\u0301", min_size=1, max_size=3))
        wrong_kind = (["s"] if self.kind is int else [7]) if self.staged else []  # an empty index takes either kind
        return data.draw(st.sampled_from([True, 1.0, None, 2**63, -(2**63) - 1, "\ud800", b"x", (1,)] + wrong_kind))

    # rules -----------------------------------------------------------------------------
    @rule(data=st.data(), n=st.integers(0, 4), upsert=st.booleans(), auto_ids=st.booleans())
    def add(self, data, n, upsert, auto_ids):
        STATS["add"] += 1
        vecs, docs, pls, ids = [], [], [], []
        ok = True
        for _ in range(n):
            if data.draw(st.integers(0, 9)) == 0:
                docs.append(data.draw(bad_vector))
                vecs.append(None)
                ok = False
            else:
                d, shape = data.draw(valid_vector)
                docs.append(shape)
                vecs.append({t: w for t, w in d.items() if w != 0})
            if data.draw(st.integers(0, 9)) == 0:
                p = data.draw(bad_payload)
                ok = False
            else:
                p = data.draw(st.none() | payload_fields)
            pls.append(p)
            ids.append(self._new_id(data, data.draw(st.integers(0, 12)) > 0))
        # string ids: always given (an index of string ids refusing ids=None is a unit test)
        # after a rollback the in-memory index numbers from a higher id than the on-disk one: ids then
        use_ids = upsert or not auto_ids or (self.kind is str and n > 0) or self.next_int["mem"] != self.next_int["disk"]
        auto_keys = {}
        if use_ids:
            for x in ids:
                if id_kind(x) is not self.kind:
                    ok = False
            keys = [int(x) if isinstance(x, (int, np.integer)) and not isinstance(x, bool) else x for x in ids]
            if ok and len(set(keys)) != len(keys):
                ok = False
            if ok and not upsert and any(x in self.staged for x in keys):
                ok = False
        else:
            keys = []
            auto_keys = {w: list(range(self.next_int[w], self.next_int[w] + n)) for w in ("mem", "disk")}
            if any(n and ks[-1] > I64[1] for ks in auto_keys.values()):
                ok = False
        if n == 0:
            ok = True
        results = self._both(lambda ix: (ix.upsert if upsert else ix.add)(
            docs, ids=ids if use_ids else None, payloads=pls))
        kinds = {r[0] for r in results}
        if not ok:
            assert kinds == {"refused"}, f"accepted an invalid add: {docs!r} {ids!r} {pls!r}"
            STATS["refused_add"] += 1
            return
        assert kinds == {"ok"}, f"refused a valid add: {results!r}"
        if not use_ids:
            assert results[0][1] == auto_keys["mem"] == results[1][1], results
            keys = auto_keys["disk"]
        else:
            for r in results:
                assert r[1] == keys
        for k, v, p in zip(keys, vecs, pls):
            self.staged[k] = (v, plain(p))
        for w, r in zip(("mem", "disk"), results):
            for k in r[1]:
                if isinstance(k, int):
                    self.next_int[w] = max(self.next_int[w], k + 1)

    @rule(data=st.data())
    def delete(self, data):
        STATS["delete"] += 1
        pool = list(self.staged) or [0]
        ids = data.draw(st.lists(st.sampled_from(pool) | st.sampled_from([99, "zz", True, 1.5, None]), max_size=3))
        one = data.draw(st.booleans())
        arg = ids[0] if one and ids else ids
        missing_ok = data.draw(st.booleans())
        seq = [arg] if one and ids else ids
        typed = all(id_kind(x) is not None for x in seq) and not (arg is None)
        known = all(x in self.staged for x in seq)
        results = self._both(lambda ix: ix.delete(arg, missing_ok=missing_ok))
        kinds = {r[0] for r in results}
        assert len(kinds) == 1, results
        if not typed or (not known and not missing_ok):
            assert kinds == {"refused"}, (arg, results)
            return
        assert kinds == {"ok"}, results
        gone = {x for x in seq if x in self.staged}
        assert all(r[1] == len(gone) for r in results)
        for x in gone:
            del self.staged[x]

    @rule()
    def commit(self):
        STATS["commit"] += 1
        self.disk.commit()
        self.committed = copy.deepcopy(self.staged)
        self.committed_next_int = self.next_int["disk"]

    @precondition(lambda self: self.staged != self.committed)
    @rule()
    def rollback(self):
        STATS["rollback"] += 1
        self.disk.rollback()
        # the in-memory index has no uncommitted state: bring it to the committed documents
        for x in list(self.staged):
            if x not in self.committed:
                self.mem.delete(x)
        for x, (v, p) in self.committed.items():
            if self.staged.get(x) != (v, p):
                self.mem.upsert([v], ids=[x], payloads=[p])
        self.staged = copy.deepcopy(self.committed)
        self.next_int["disk"] = self.committed_next_int

    @rule(data=st.data())
    def search(self, data):
        STATS["search"] += 1
        bad_q = data.draw(st.integers(0, 9)) == 0
        if bad_q:
            q_arg, q = data.draw(bad_query), None
        else:
            d, q_arg = data.draw(valid_vector)
            q = {t: w for t, w in d.items() if w != 0}
        k_bad = data.draw(st.integers(0, 14)) == 0
        k = data.draw(st.sampled_from([0, -1, 2**63, 2.5, True, "3"])) if k_bad else data.draw(st.integers(1, 8) | st.just(2**63 - 1))
        choice = data.draw(st.integers(0, 9))
        if choice < 5:
            flt = None
        elif choice < 8:
            flt = data.draw(good_filter)
        elif choice < 9:
            flt = data.draw(bad_filter)
        else:
            flt = deep_filter(data.draw(st.sampled_from([10, 63, 65, 3000])))
        filter_ok = True
        if flt is not None:
            try:
                compiled = compile_filter(flt)
            except FilterError:
                filter_ok = False
        batch = data.draw(st.booleans())
        threads = data.draw(st.sampled_from([None, 1, 2, 0, 10**6])) if batch else None
        threads_ok = threads is None or 1 <= threads <= 64
        for ix, docs in ((self.mem, self.staged), (self.disk, self.committed)):
            t0 = time.perf_counter()
            try:
                if batch:
                    res = ix.search_batch([q_arg, q_arg], k=k, filter=flt, threads=threads)
                    assert res[0] == res[1]
                    hits = res[0]
                else:
                    hits = ix.search(q_arg, k=k, filter=flt)
            except DOCUMENTED as e:
                assert bad_q or k_bad or not filter_ok or not threads_ok, f"refused a valid search: {e!r}"
                STATS["refused_search"] += 1
                continue
            finally:
                assert time.perf_counter() - t0 < STEP_SECONDS
            assert not (bad_q or k_bad or not filter_ok or not threads_ok), "accepted an invalid search"
            cands = {x: brute_score(q, v) for x, (v, p) in docs.items()
                     if (flt is None or compiled.matches(p)) and any(t in v for t in q)}
            assert len(hits) == min(int(k), len(cands)), (hits, cands)
            for h in hits:
                assert h.id in cands
                assert h.score == pytest.approx(cands[h.id], rel=1e-5, abs=1e-6)
                assert h.payload == docs[h.id][1]
            if hits:
                last = hits[-1].score
                returned = {h.id for h in hits}
                for x, s in cands.items():
                    assert x in returned or s <= last * (1 + 1e-5) + 1e-6, (x, s, last)

    @rule(data=st.data())
    def get(self, data):
        STATS["get"] += 1
        for ix, docs in ((self.mem, self.staged), (self.disk, self.committed)):
            if not docs:
                with pytest.raises(KeyError):
                    ix.get(data.draw(st.integers(0, 5)) if self.kind is int else "nope")
                continue
            x = data.draw(st.sampled_from(sorted(docs, key=repr)))
            doc = ix.get(x)
            v, p = docs[x]
            assert doc.id == x and doc.payload == p
            got = doc.vector.as_dict()
            assert set(got) == set(v) and all(got[t] == np.float32(v[t]) for t in v)

    @invariant()
    def sizes(self):
        assert len(self.mem) == len(self.staged)
        assert len(self.disk) == len(self.committed)


def snapshot(ix: SparseIndex):
    st_ = ix._store
    return (
        list(st_._p_ids), repr(st_._p_payloads), list(st_._p_texts), dict(st_._p_row), set(st_._p_dropped),
        {k: set(v) for k, v in st_._p_deletes.items()}, len(st_._p_vectors),
        st_._p_next_int if st_._p_next_int is not None else st_._meta.get("next_int_id", 0),  # (a lazily read cache)
        st_.snapshot.generation, len(ix) if st_.path is not None else None,
    )


TestIndexFast = IndexMachine.TestCase
TestIndexFast.settings = settings(max_examples=25, stateful_step_count=12, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class _Long(IndexMachine):
    pass


TestIndexLong = pytest.mark.slow(_Long.TestCase)
TestIndexLong.settings = settings(max_examples=1500, stateful_step_count=30, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- texts: BM25 against the textbook formula ------------------------------------------------------
texts = st.one_of(
    st.text(st.sampled_from(list("abc xyz ÉéüÜ\u0301ßSS") + ["\ud800", "\t", "-"]), max_size=25),
    st.sampled_from(["Zürich", unicodedata.normalize("NFD", "Zürich"), "STRASSE", "Straße", "", "  "]),
)


def textbook(analyzer, docs: dict, query: str, k1=1.2, b=0.75) -> dict:
    toks = {x: analyzer(t) for x, t in docs.items()}
    n = len(toks)
    avgdl = sum(len(t) for t in toks.values()) / n if n else 0
    out = {}
    q = Counter(analyzer(query))
    for x, t in toks.items():
        c = Counter(t)
        s = 0.0
        for term, qtf in q.items():
            if term not in c:
                continue
            df = sum(1 for tt in toks.values() if term in tt)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * qtf * c[term] * (k1 + 1) / (c[term] + k1 * (1 - b + b * len(t) / avgdl))
        if s > 0:
            out[x] = s
    return out


def _bm25_case(batches, query):
    ix = SparseIndex("bm25", "float")
    model: dict = {}
    nid = 0
    for batch in batches:
        bad = any(any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in batch)
        terms = list(ix.encoder.vocabulary.terms)
        try:
            ids = ix.add(batch)
        except ValueError:
            assert bad
            assert ix.encoder.vocabulary.terms == terms  # nothing was kept
            continue
        assert not bad
        for x, t in zip(ids, batch):
            model[x] = t
            nid += 1
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in query))
    want = textbook(ix.encoder.analyzer, model, query)
    hits = ix.search(query, k=len(model) + 1) if model else []
    assert {h.id for h in hits} == set(want)
    for h in hits:
        assert h.score == pytest.approx(want[h.id], rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(texts, max_size=4), max_size=4), texts)
def test_bm25_texts_against_the_textbook(batches, query):
    STATS["bm25_cases"] += 1
    _bm25_case(batches, query)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(texts, max_size=6), max_size=6), texts)
def test_bm25_texts_against_the_textbook_long(batches, query):
    STATS["bm25_cases_long"] += 1
    _bm25_case(batches, query)


@pytest.mark.slow
def test_zz_report_long_run():
    """Prints what the long run executed (run with -s)."""
    print(f"\nAPI fuzz, long run: {dict(sorted(STATS.items()))}")
