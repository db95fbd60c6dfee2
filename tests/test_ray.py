"""sparsedex.ray on a local Ray cluster started here (2 CPUs, fractional actors).

Sharded == single index (hypothesis: random corpora, 1-5 shards, u8 / float, BM25 / vectors,
deletions), encode == the in-process encoder, bad shards named, dead actors, Serve over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'sparsedex[ray]'")

from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

import sparsedex  # noqa: E402
from sparsedex import SparseIndex  # noqa: E402
import sparsedex.ray as sdr  # noqa: E402
from sparsedex.vectors import to_csr_arrays, validate_embedding  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_core_does_not_import_ray() -> None:
    code = "import sys, sparsedex, sparsedex.index, sparsedex.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def cluster():
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray.data", "ray.serve", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # noqa: BLE001
        pass
    ray.shutdown()


def test_cpu_share_is_a_reservation_ray_accepts() -> None:
    """Auto-sized reservations are multiples of 0.0001 (Ray refuses a non-zero one below
    it: a build failed when 0.0002 free CPUs were split over 3 shards)."""
    for x in (0.0, 0.00005, 0.0002 / 3, 0.5 / 3, 0.25, 1 / 7, 2.0 / 12):
        got = sdr._cpu_share(x)
        assert got == 0.0 or int(got * 10_000) >= 1, (x, got)
        assert 0.0 <= got <= x + 1e-12 and x - got < 0.0001 + 1e-12
    assert sdr._cpu_share(0.00005) == 0.0 and sdr._cpu_share(0.25) == 0.25


def test_shard_of_is_stable() -> None:
    # fixed values: the routing must never change between versions or machines
    assert [sdr.shard_of(i, 7) for i in range(8)] == [sdr.shard_of(i, 7) for i in range(8)]
    got = (sdr.shard_of(0, 5), sdr.shard_of(12345, 5), sdr.shard_of("doc-1", 5), sdr.shard_of("é", 5))
    import hashlib

    want = tuple(
        int.from_bytes(hashlib.blake2b(k, digest_size=8).digest(), "little") % 5
        for k in (b"i:0", b"i:12345", b"s:doc-1", "s:é".encode())
    )
    assert got == want
    assert sdr.shard_of(np.int64(3), 4) == sdr.shard_of(3, 4)
    with pytest.raises(TypeError, match="bool"):
        sdr.shard_of(True, 3)
    with pytest.raises(TypeError, match="float"):
        sdr.shard_of(1.5, 3)


# random corpora ----------------------------------------------------------------------------
WORDS = "ant bee cat dog eel fox gnu hen ibis jay kiwi lark mole newt owl pig ram seal toad yak".split()


def _corpus(seed: int, n: int, bm25: bool):
    rng = np.random.default_rng(seed)
    ids = [int(x) for x in rng.choice(10_000, size=n, replace=False)]
    rows = []
    for i in ids:
        if bm25:
            words = rng.choice(WORDS, size=int(rng.integers(1, 9)))
            rows.append({"id": i, "text": " ".join(words), "year": int(rng.integers(1990, 1996))})
        else:
            nnz = int(rng.integers(1, 7))
            idx = np.sort(rng.choice(40, size=nnz, replace=False)).astype(np.uint32)
            # few distinct weights: many exact ties across shards
            val = rng.choice([0.5, 1.0, 1.5, 2.0, 3.25], size=nnz).astype(np.float32)
            rows.append({"id": i, "indices": idx, "values": val, "year": int(rng.integers(1990, 1996))})
    return rows


def _queries(seed: int, bm25: bool):
    rng = np.random.default_rng(seed + 1)
    if bm25:
        return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))) for _ in range(4)]
    out = []
    for _ in range(4):
        nnz = int(rng.integers(1, 5))
        idx = np.sort(rng.choice(40, size=nnz, replace=False)).astype(np.uint32)
        out.append((idx, rng.choice([0.5, 1.0, 2.0], size=nnz).astype(np.float32)))
    return out


def _single(rows, bm25: bool, quantization: str, deleted):
    # rows in random id order: the core orders ties by id whatever the insertion order
    idx = SparseIndex("bm25" if bm25 else None, quantization)
    docs = [r["text"] for r in rows] if bm25 else [(r["indices"], r["values"]) for r in rows]
    idx.add(docs, ids=[r["id"] for r in rows], payloads=[{"year": r["year"]} for r in rows])
    idx.commit()
    if deleted:
        idx.delete(deleted)
        idx.commit()
    return idx


def _same(a, b) -> None:
    assert [(h.id, h.score, h.payload) for h in a] == [(h.id, h.score, h.payload) for h in b]


def _canonical(single, q, k, **kw):
    """The single index's top-k: the core returns it in canonical tie order (score desc, then
    id asc) whatever the insertion order or layout; checked here against a sort of every
    hit."""
    hits = single.search(q, k=k, **kw)
    every = single.search(q, k=len(single) + 1, **kw)
    assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in sorted(every, key=lambda h: (-h.score, h.id))[:k]]
    return hits


# each example builds shards and starts actors (seconds): few examples, no shrinking
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False, print_blob=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 40),
    num_shards=st.integers(1, 5),
    quantization=st.sampled_from(["u8", "float"]),
    bm25=st.booleans(),
    delete_frac=st.sampled_from([0.0, 0.3]),
)
def test_sharded_equals_single(cluster, tmp_path_factory, seed, n, num_shards, quantization, bm25, delete_frac):
    rows = _corpus(seed, n, bm25)
    path = tmp_path_factory.mktemp("sh") / "idx"
    ds = ray.data.from_items(rows, override_num_blocks=2)
    sdr.build_shards(ds, path, num_shards=num_shards, encoder="bm25" if bm25 else None,
                     payload_columns=["year"], quantization=quantization)
    rng = np.random.default_rng(seed + 2)
    deleted = [r["id"] for r in rows if rng.random() < delete_frac]
    single = _single(rows, bm25, quantization, deleted)
    with sdr.ShardedIndex(path, timeout_s=60) as sh:
        if deleted:
            assert sh.delete(deleted) == len(deleted)
            sh.commit()
        assert len(sh) == len(single)
        qs = _queries(seed, bm25)
        flt = {"year": {"$gte": 1992}}
        for q in qs:
            for k in (1, 3, 50):
                _same(sh.search(q, k=k), _canonical(single, q, k))
            # approximate search at a target of 1 is the exact search, sharded too
            _same(sh.search(q, k=3, algorithm="approximate", target_recall=1.0), _canonical(single, q, 3))
            _same(sh.search(q, k=5, filter=flt), _canonical(single, q, 5, filter=flt))
        for q, got in zip(qs, sh.search_batch(qs, k=4)):
            _same(got, _canonical(single, q, 4))
        if bm25:  # a bare text is one query, not one per character (breaker34)
            (got,) = sh.search_batch(qs[0], k=4)
            _same(got, _canonical(single, qs[0], 4))
        for q, got in zip(qs, sh.search_batch(qs, k=4, algorithm="approximate", target_recall=1.0)):
            _same(got, _canonical(single, q, 4))
        if not bm25:  # the same queries as CSR arrays (indptr, indices, values), one a row
            csr = to_csr_arrays([validate_embedding(q) for q in qs])
            for q, got in zip(qs, sh.search_batch(csr, k=4)):
                _same(got, _canonical(single, q, 4))
            with pytest.raises(ValueError, match="queries: CSR arrays: indptr must start at 0"):
                sh.search_batch((csr[0][::-1].copy(), csr[1], csr[2]), k=4)
        with pytest.raises(ValueError, match="target_recall applies to algorithm='approximate' only"):
            sh.search(qs[0], k=3, target_recall=0.9)
        live = [r["id"] for r in rows if r["id"] not in set(deleted)]
        if live:
            d1, d2 = sh.get(live[-1]), single.get(live[-1])
            assert (d1.id, d1.payload, d1.text) == (d2.id, d2.payload, d2.text)
            if bm25:  # each shard has its own term dictionary: compare by term
                assert sorted(d1.vector.values.tolist()) == sorted(d2.vector.values.tolist())
            else:
                assert d1.vector.indices.tolist() == d2.vector.indices.tolist()
                assert d1.vector.values.tolist() == d2.vector.values.tolist()
            e1, e2 = sh.explain(qs[0], live[-1]), single.explain(qs[0], live[-1])
            assert e1.score == e2.score
            assert [(m.token, m.contribution) for m in e1.matches] == [(m.token, m.contribution) for m in e2.matches]
        if deleted:
            with pytest.raises(KeyError):
                sh.get(deleted[0])


def test_routed_writes_equal_single(cluster, tmp_path) -> None:
    """add / upsert / delete / commit through the sharded index, BM25 u8 (global statistics move)."""
    rows = _corpus(7, 30, True)
    sdr.build_shards(ray.data.from_items(rows[:20], override_num_blocks=2), tmp_path / "i", num_shards=3, encoder="bm25",
                     payload_columns=["year"])
    single = _single(rows[:20], True, "u8", [])
    with sdr.ShardedIndex(tmp_path / "i", replicas=2) as sh:
        new = sorted(rows[20:], key=lambda r: r["id"])
        sh.add([r["text"] for r in new], ids=[r["id"] for r in new], payloads=[{"year": r["year"]} for r in new])
        single.add([r["text"] for r in new], ids=[r["id"] for r in new], payloads=[{"year": r["year"]} for r in new])
        sh.delete([rows[0]["id"], rows[1]["id"]])
        single.delete([rows[0]["id"], rows[1]["id"]])
        # a vector query is refused as one (helper-112: "query is a tuple" read as an internal error)
        with pytest.raises(TypeError, match="is a sparse vector: a sharded BM25 index is searched with texts"):
            sh.search(([1, 2], [1.0, 0.5]))
        with pytest.raises(KeyError, match="no document"):
            sh.delete([rows[0]["id"] + 100_000])
        sh.commit()
        single.commit()
        assert len(sh) == len(single) == 28
        for q in _queries(7, True):
            for k in (3, 30):
                _same(sh.search(q, k=k), _canonical(single, q, k))
        with pytest.raises(ValueError, match="needs ids"):
            sh.add(["x"], ids=None)  # type: ignore[arg-type]


def test_encode_equals_in_process_encoder(cluster, tmp_path) -> None:
    texts = ["a rock band on tour", "a detective story", "the loudest band in england", "music", ""]
    ds = ray.data.from_items([{"id": i, "text": t, "other": i * 2} for i, t in enumerate(texts)], override_num_blocks=2)
    out = sdr.encode(ds, "splade-tiny", batch_size=2, concurrency=1).take_all()
    out.sort(key=lambda r: r["id"])
    ref = sparsedex.SpladeEncoder("splade-tiny").encode_documents(texts, blank_as_empty=True)
    assert ref[-1].nnz == 0  # the blank text: no vector, as SparseIndex stores it
    for r, v in zip(out, ref):
        assert r["other"] == r["id"] * 2
        assert np.asarray(r["indices"]).tolist() == v.indices.tolist()
        assert np.asarray(r["values"]).tolist() == v.values.tolist()
    with pytest.raises(ValueError, match="BM25"):
        sdr.encode(ds, "bm25")
    # a row that is not a text: a TypeError naming the document (not a RayTaskError naming a
    # row of a batch); an encoder build_shards cannot build with: a ValueError up front
    bad = ray.data.from_items([{"id": 10 + i, "text": None if i == 3 else "x"} for i in range(5)])
    with pytest.raises(TypeError, match=r"^document 13: the text column 'text' holds None, not a text"):
        sdr.build_shards(bad, tmp_path / "bad", num_shards=2, encoder="splade-tiny")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match=r"build_shards encodes with 'bm25' or a SPLADE model, not 'Qdrant/bm25'"):
        sdr.build_shards(ds, tmp_path / "q", num_shards=2, encoder="Qdrant/bm25")
    # SPLADE shards: text queries are encoded once by the caller, equal to a single index
    sdr.build_shards(ds, tmp_path / "s", num_shards=2, encoder="splade-tiny")
    # an encoder of another kind is refused before any actor starts (breaker38 recheck)
    with pytest.raises(ValueError, match=r"built with SPLADE .*not BM25"):
        sdr.ShardedIndex(tmp_path / "s", encoder="bm25")
    single = SparseIndex("splade-tiny")
    single.add(texts, ids=list(range(len(texts))))
    with sdr.ShardedIndex(tmp_path / "s") as sh:
        _same(sh.search("rock music", k=5), single.search("rock music", k=5))
        # SPLADE shards keep texts (store_texts=True, as SparseIndex), upserts too
        assert [sh.get(i).text for i in range(len(texts))] == texts
        sh.upsert(["a new song"], ids=[1])
        sh.add(["more music"], ids=[99])
        sh.commit()
        assert (sh.get(1).text, sh.get(99).text) == ("a new song", "more music")
        e = sh.explain("rock music", 0)
        assert e.score == single.explain("rock music", 0).score
        assert {m.token for m in e.matches} == {m.token for m in single.explain("rock music", 0).matches}
        # a query term no shard can hold is named, as SparseIndex.search names it (breaker28 L2)
        with pytest.raises(ValueError, match="query: key 30522 is not below the encoder's vocabulary"):
            sh.search({30522: 1.0})
        with pytest.raises(ValueError, match="query 1: key 30522"):
            sh.search_batch([{7: 1.0}, {30522: 1.0}])
        # ids as SparseIndex takes them: a string is not one id per character, bytes not ids
        # per byte, a numpy integer one id (review34)
        with pytest.raises(TypeError, match="not a string"):
            sh.add(["x", "y"], ids="ab")
        with pytest.raises(TypeError, match="got bytes"):
            sh.delete(b"he", missing_ok=True)
        assert sh.delete(np.int64(99)) == 1


def test_build_shards_many_shards_on_a_small_cluster(cluster, tmp_path) -> None:
    """num_shards x the builders' reservation >= the cluster's CPUs: builders get less (the
    build finishes), and an explicit reservation that leaves no room is refused up front."""
    import threading

    rows = [{"id": i, "indices": np.array([1, 2], np.uint32), "values": np.array([1.0, 0.5], np.float32)}
            for i in range(5)]
    with pytest.raises(ValueError, match=r"num_cpus=0.5 x num_shards=8 .* pass num_cpus <="):
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "r", num_shards=8, num_cpus=0.5)
    assert not (tmp_path / "r").exists()
    out: dict = {}

    def build() -> None:
        try:
            out["m"] = sdr.build_shards(ray.data.from_items(rows), tmp_path / "i", num_shards=8)
        except BaseException as e:  # noqa: BLE001
            out["e"] = e

    t = threading.Thread(target=build, daemon=True)
    t.start()
    t.join(180)
    assert not t.is_alive(), "build_shards(num_shards=8) on 2 CPUs hangs"
    assert "e" not in out, out.get("e")
    assert sum(s["documents"] for s in out["m"]["shards"]) == 5


def test_build_shards_refuses_when_other_actors_hold_the_cpus_ray_data_needs(cluster, tmp_path) -> None:
    """helper-112 HIGH: with an open ShardedIndex's actors holding 1.5 of the 2 CPUs,
    build_shards waited forever (Ray Data's read task needs 1 CPU). Now a ValueError says what
    is free and what to close, after a short wait (3 s) for CPUs to come back; the same build
    works once they are released."""

    @ray.remote(num_cpus=1.5)
    class Holder:
        def ready(self) -> bool:
            return True

    rows = [{"id": i, "indices": np.array([1 + i % 3], np.uint32), "values": np.array([1.0])} for i in range(6)]
    h = Holder.remote()
    ray.get(h.ready.remote())
    try:
        t0 = time.monotonic()
        with pytest.raises(ValueError, match=r"needs 1 free CPU\(s\) for Ray Data's tasks .* only 0.5 of the "
                                             r"cluster's 2 CPUs are free: .* ShardedIndex"):
            sdr.build_shards(ray.data.from_items(rows), tmp_path / "a", num_shards=2)
        assert time.monotonic() - t0 < 30
        assert not (tmp_path / "a").exists()
    finally:
        ray.kill(h)
    h = Holder.options(num_cpus=0.6).remote()  # 1.4 free: 1 for Ray Data, 0.4 for builders
    ray.get(h.ready.remote())
    try:
        with pytest.raises(ValueError, match=r"num_cpus=0.3 x num_shards=2 = 0.6 CPUs .* only 1.4 of the cluster's "
                                             r"2 CPUs are free: pass num_cpus <= 0.2"):
            sdr.build_shards(ray.data.from_items(rows), tmp_path / "b", num_shards=2, num_cpus=0.3)
        m = sdr.build_shards(ray.data.from_items(rows), tmp_path / "c", num_shards=2, num_cpus=0.2)
        assert sum(s["documents"] for s in m["shards"]) == 6
    finally:
        ray.kill(h)
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0.0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the next tests find the cluster's CPUs free
    m = sdr.build_shards(ray.data.from_items(rows), tmp_path / "a", num_shards=2)
    assert sum(s["documents"] for s in m["shards"]) == 6
    # opened at once, every CPU reserved, while the builders' CPUs are still being released
    # (helper-113: refused, 1.5 of 2 CPUs free just after build_shards returned)
    with sdr.ShardedIndex(tmp_path / "a", replicas=2, num_cpus=0.5) as sh:
        assert len(sh) == 6


def test_build_shards_into_an_existing_directory(cluster, tmp_path) -> None:
    """An existing empty directory (a mount point, a process's working directory) stays the
    same directory, with its permissions: the shards move into it. A failed build into missing
    parents removes the parents it created."""
    d = tmp_path / "empty"
    d.mkdir(mode=0o700)
    before = d.stat()
    rows = [{"id": i, "indices": np.array([1 + i % 3], np.uint32), "values": np.array([1.0])} for i in range(6)]
    sdr.build_shards(ray.data.from_items(rows), d, num_shards=2)
    after = d.stat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert sorted(p.name for p in d.iterdir()) == ["shard-00000", "shard-00001", "shards.json"]
    with sdr.ShardedIndex(d) as sh:
        assert len(sh) == 6
    dup = rows + rows[:1]
    with pytest.raises(ValueError, match="appears more than once"):
        sdr.build_shards(ray.data.from_items(dup), tmp_path / "p1" / "p2" / "idx", num_shards=2)
    assert not (tmp_path / "p1").exists()
    (tmp_path / "e2").mkdir()
    with pytest.raises(ValueError, match="appears more than once"):
        sdr.build_shards(ray.data.from_items(dup), tmp_path / "e2", num_shards=2)
    assert list((tmp_path / "e2").iterdir()) == []
    # a name of 240 characters (its hidden work directory's name must fit in 255 too)
    long = tmp_path / "np" / ("x" * 240)
    sdr.build_shards(ray.data.from_items(rows), long, num_shards=2)
    assert sorted(p.name for p in (tmp_path / "np").iterdir()) == ["x" * 240]
    # a build already writing into a directory (or one killed): the next is refused up front
    (tmp_path / "e3" / ".sparsedex-building").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="another build_shards is writing into it, or one was killed"):
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "e3", num_shards=2)
    # a missing path made (empty) by someone else during the build: kept and filled, not replaced
    work, root = tmp_path / ".sparsedex-building-x", tmp_path / "late"
    (work / "shard-00000").mkdir(parents=True)
    (work / "shards.json").write_text("{}")
    root.mkdir()
    ino = root.stat().st_ino
    sdr._move_into_place(work, root, into=False)
    assert root.stat().st_ino == ino and sorted(p.name for p in root.iterdir()) == ["shard-00000", "shards.json"]
    assert not work.exists()


def test_build_shards_input_errors(cluster, tmp_path) -> None:
    """Errors raised inside Ray tasks and actors come out as the ValueError / TypeError the
    docstring promises, with their own message (PayloadError survives pickling)."""
    import pickle

    from sparsedex.filters import PayloadError

    e = PayloadError("document 0", "p", "expected a finite number, got nan")
    assert str(pickle.loads(pickle.dumps(e))) == str(e)
    rows = [{"id": i, "indices": np.array([1], np.uint32), "values": np.array([1.0], np.float32),
             "p": float("nan") if i == 1 else 1.0} for i in range(3)]
    with pytest.raises(PayloadError, match=r"payload of document 1 at p: expected a finite number, got nan"):
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "a", num_shards=2, payload_columns=["p"])
    rows = [{"id": 1.5, "indices": np.array([1], np.uint32), "values": np.array([1.0], np.float32)}]
    with pytest.raises(TypeError, match="id 1.5 is a float"):
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "b", num_shards=2)


def test_sharded_ids_keep_one_type_across_shards(cluster, tmp_path) -> None:
    """helper-124: each shard checked only its own ids, so an int index took a string id routed
    to a shard without documents, and a search whose hits tied an int and a string id then
    raised. Now refused as SparseIndex.add refuses it, whichever shard the id routes to; ids
    of both types in one call too; a dataset whose blocks disagree on the id column's type is a
    TypeError naming it; a text query without an encoder says how to open the index with one."""
    vec = lambda: (np.array([1], np.uint32), np.array([1.0], np.float32))  # noqa: E731
    rows = [{"id": 0, "indices": np.array([1], np.uint32), "values": np.array([1.0], np.float32)}]
    sdr.build_shards(ray.data.from_items(rows), tmp_path / "ints", num_shards=4)
    empty_shard = lambda key: next(x for x in (key(j) for j in range(1, 200))  # noqa: E731
                                   if sdr.shard_of(x, 4) != sdr.shard_of(0, 4))
    sid = empty_shard(lambda j: f"s{j}")
    with sdr.ShardedIndex(tmp_path / "ints", num_cpus=0) as sh:
        with pytest.raises(TypeError, match=f"id '{sid}' of document 0 is a str but the index's ids are ints"):
            sh.add([vec()], ids=[sid])
        with pytest.raises(TypeError, match="ids must be all ints or all strings"):
            sh.upsert([vec(), vec()], ids=[7, sid])
        sh.add([vec()], ids=[7])
        sh.commit()
        assert [h.id for h in sh.search(([1], [1.0]), k=5)] == [0, 7]
    rows = [{"id": "a", "indices": np.array([1], np.uint32), "values": np.array([1.0], np.float32)}]
    sdr.build_shards(ray.data.from_items(rows), tmp_path / "strs", num_shards=4)
    num = next(j for j in range(1, 200) if sdr.shard_of(j, 4) != sdr.shard_of("a", 4))
    with sdr.ShardedIndex(tmp_path / "strs", num_cpus=0) as sh:
        with pytest.raises(TypeError, match=f"id {num} of document 0 is an int but the index's ids are strings"):
            sh.add([vec()], ids=[num])
        with pytest.raises(TypeError, match="no encoder.*ShardedIndex\\(path, encoder="):
            sh.search("a text query")
        assert len(sh) == 1
    sid2 = next(f"s{j}" for j in range(100) if sdr.shard_of(f"s{j}", 2) != sdr.shard_of(0, 2))
    mixed = [{"id": 0, "indices": [1], "values": [1.0]}, {"id": sid2, "indices": [1], "values": [1.0]}]
    with pytest.raises(TypeError, match="the id column 'id': ids must be all ints or all strings"):
        sdr.build_shards(ray.data.from_items(mixed, override_num_blocks=2), tmp_path / "mixed", num_shards=2)
    assert not (tmp_path / "mixed").exists()


def test_build_shards_checks_vectors_ids_and_payloads_like_add(cluster, tmp_path) -> None:
    """A vector SparseIndex.add refuses is refused by build_shards too, naming the document's
    id (never cast: a float, negative or too large term id used to be truncated or wrapped);
    a missing id says so; lists nested in payloads (numpy arrays after Ray Data) are stored."""
    def rows(ind, val=(1.0, 2.0), id=7):
        return [{"id": id, "indices": ind, "values": np.array(val)}]  # Arrow wants one dtype per column

    cases = [
        (np.array([1.7, 3.0]), (1.0, 2.0), r"document 7: indices must be integers, got dtype float64"),
        (np.array([1.0, 3.0]), (1.0, 2.0), r"document 7: indices must have an integer dtype"),
        (np.array([-1, 3], np.int64), (1.0, 2.0), r"document 7: indices\[0\] = -1 is negative"),
        (np.array([2**32 + 1, 3], np.int64), (1.0, 2.0), r"document 7: indices\[0\] = 4294967297 is not below 2\*\*32"),
        (np.array([True, False]), (1.0, 2.0), r"document 7: indices must be integers, got dtype bool"),
        (np.array([1, 2], np.uint32), (float("inf"), 1.0), r"document 7: values\[0\] = inf is not finite"),
        (np.array([1, 2], np.uint32), (1e20, 1.0), r"document 7: values\[0\] = 1e\+20 is above the largest weight"),
    ]
    for ind, val, msg in cases:  # the check each routed row goes through
        with pytest.raises(ValueError, match=msg):
            sdr._vector_row(ind, np.array(val), 7)
    got = sdr._vector_row(np.array([3, 1], np.int64), np.array([0.5, 2.0]), 7)
    assert got[0].dtype == np.uint32 and got[1].dtype == np.float32 and got[0].tolist() == [3, 1]
    with pytest.raises(ValueError, match=cases[0][2]):  # and end to end, through Ray Data
        sdr.build_shards(ray.data.from_items(rows(cases[0][0])), tmp_path / "v", num_shards=2)
    dup = [{"id": i % 3, "indices": np.array([1], np.uint32), "values": np.array([1.0])} for i in range(5)]
    with pytest.raises(ValueError, match=r"shard-0000\d: id [01] appears more than once in the dataset"):
        sdr.build_shards(ray.data.from_items(dup), tmp_path / "d", num_shards=2)
    # the failed build (shards were being written) left nothing behind: the same call retried works
    assert not (tmp_path / "d").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], list(tmp_path.iterdir())
    sdr.build_shards(ray.data.from_items(dup[:3]), tmp_path / "d", num_shards=2)
    with sdr.ShardedIndex(tmp_path / "d") as sh:
        assert len(sh) == 3
    with pytest.raises(TypeError, match="a document has no id"):
        sdr.build_shards(ray.data.from_items([{"id": None, "indices": np.array([1], np.uint32),
                                               "values": np.array([1.0])}]), tmp_path / "n", num_shards=2)
    # int and str ids (an int in shard 0, a str in shard 1: each shard alone is fine): refused
    # by build_shards, as by SparseIndex.add (searches failed comparing them)
    i0 = next(i for i in range(100) if sdr.shard_of(i, 2) == 0)
    s1 = next(f"d{i}" for i in range(100) if sdr.shard_of(f"d{i}", 2) == 1)
    mixed = [{"id": x, "indices": np.array([1], np.uint32), "values": np.array([1.0], np.float32)} for x in (i0, s1)]
    with pytest.raises(TypeError, match=rf"id {i0} is an int and id '{s1}' a str: ids must be all ints or all strings"):
        sdr.build_shards(ray.data.from_items(mixed, override_num_blocks=1), tmp_path / "m", num_shards=2)
    assert not (tmp_path / "m").exists()
    # a null id in another batch of a pandas column (floats throughout): the float ids say why
    import pandas as pd

    df = pd.DataFrame({"id": [float(i) if i != 6 else float("nan") for i in range(8)],
                       "indices": [np.array([1], np.uint32)] * 8, "values": [np.array([1.0])] * 8})
    with pytest.raises(TypeError, match=r"(a null id elsewhere in the column may be the cause|is null in row)"):
        sdr.build_shards(ray.data.from_pandas(df), tmp_path / "pd", num_shards=2, batch_size=2)
    with pytest.raises(TypeError, match=r"id 0\.0 is a float \(a whole number stored as a float"):
        sdr._route_key(0.0)
    # a null among int ids (an Arrow int column with a null, which numpy would read as floats):
    # the null row is named, not the first row as "id 0.0 is a float"
    nulls = [{"id": None if i == 5 else i, "indices": np.array([1], np.uint32), "values": np.array([1.0])}
             for i in range(8)]
    with pytest.raises(TypeError, match=r"the id column 'id' is null in row 5 of a batch of 8, after the "
                                        r"document with id 4"):
        sdr.build_shards(ray.data.from_items(nulls, override_num_blocks=1), tmp_path / "n2", num_shards=2)
    meta = {"tags": ["rock", "live"], "year": 1984, "deep": {"xs": [[1, 2], [3]]}}
    items = [{"id": 1, "indices": np.array([1], np.uint32), "values": np.array([1.0]), "meta": meta, "n": 3},
             {"id": 2, "indices": np.array([1], np.uint32), "values": np.array([1.0]), "meta": None, "n": None}]
    sdr.build_shards(ray.data.from_items(items, override_num_blocks=1), tmp_path / "p", num_shards=1,
                     payload_columns=["meta", "n"])
    with sdr.ShardedIndex(tmp_path / "p") as sh:
        assert sh.get(1).payload == {"meta": meta, "n": 3}  # an int stays an int beside a null
        assert sh.get(2).payload == {"meta": None, "n": None}
    # shard actors that cannot all be placed: refused at once, not after start_timeout_s
    with pytest.raises(ValueError, match=r"1 shard\(s\) x replicas=2 x num_cpus=4 = 8 CPUs .* pass num_cpus <="):
        sdr.ShardedIndex(tmp_path / "p", replicas=2, num_cpus=4)


def test_bm25_batch_equals_search(cluster, tmp_path) -> None:
    """search_batch scores as search (and a single index): terms a shard never saw keep the
    collection's df of each, also when several such terms come in one batch."""
    # rare words only in shard 0 with different document frequencies; shard 1 never sees them
    ids0 = [i for i in range(200) if sdr.shard_of(i, 2) == 0][:8]
    ids1 = [i for i in range(200) if sdr.shard_of(i, 2) == 1][:8]
    texts = {}
    for j, i in enumerate(ids0):
        texts[i] = "ant bee " + ("zeta " if j < 1 else "") + ("kappa " if j < 5 else "") + "cat"
    for j, i in enumerate(ids1):
        texts[i] = "ant " + ("dog " * (j % 3 + 1))
    rows = [{"id": i, "text": t, "year": 1990} for i, t in texts.items()]
    sdr.build_shards(ray.data.from_items(rows, override_num_blocks=2), tmp_path / "i", num_shards=2, encoder="bm25",
                     payload_columns=["year"])
    single = _single(rows, True, "u8", [])
    qs = ["dog zeta", "dog kappa", "ant zeta kappa", "dog"]
    with sdr.ShardedIndex(tmp_path / "i") as sh:
        batch = sh.search_batch(qs, k=20)
        for q, got in zip(qs, batch):
            _same(got, sh.search(q, k=20))
            _same(got, _canonical(single, q, 20))


def test_scores_impacts_through_shards(cluster, tmp_path) -> None:
    """helper-116 M: ShardedIndex took no ``scores=``: a u8 index's 8-bit scores could not be
    asked for or explained through it. Now search, search_batch and explain take it, equal
    to a single index's; a bad value is refused as SparseIndex refuses it."""
    rng = np.random.default_rng(5)
    rows = [{"id": i, "indices": np.sort(rng.choice(200, 12, replace=False)).tolist(),
             "values": (rng.random(12) * 3 + 0.01).round(4).tolist(), "year": 2000} for i in range(120)]
    sdr.build_shards(ray.data.from_items(rows, override_num_blocks=2), tmp_path / "i", num_shards=2,
                     payload_columns=["year"])
    single = _single(rows, False, "u8", [])
    q = {int(t): 1.0 + t % 3 for t in range(0, 200, 7)}
    with sdr.ShardedIndex(tmp_path / "i") as sh:
        got = sh.search(q, k=15, scores="impacts")
        _same(got, single.search(q, k=15, scores="impacts"))
        assert [h.score for h in got] != [h.score for h in sh.search(q, k=15)]  # 8-bit, not float
        _same(sh.search_batch([q], k=15, scores="impacts")[0], got)
        e = sh.explain(q, got[0].id, scores="impacts")
        assert e.score == got[0].score == single.explain(q, got[0].id, scores="impacts").score
        with pytest.raises(ValueError, match="scores must be 'vectors' or 'impacts'"):
            sh.search(q, scores="8bit")
        with pytest.raises(ValueError, match="applies to the exact algorithms"):
            sh.search(q, algorithm="approximate", scores="impacts")


def test_bm25_float_sharded_bit_exact(cluster, tmp_path) -> None:
    """float BM25: each shard numbers terms with its own dictionary (the order in which it
    first met them), and the engine sums a document's contributions exactly (fixed point), so
    the sharded scores are the single index's bit for bit, in the same tie order, at every k."""
    docs = [json.loads(line) for line in open("/work/shared/data/cranfield/corpus.jsonl")][:400] \
        if Path("/work/shared/data/cranfield/corpus.jsonl").is_file() else None
    if docs is None:
        pytest.skip("cranfield is not here")
    queries = [json.loads(line)["text"] for line in open("/work/shared/data/cranfield/queries.jsonl")][:20]
    sdr.build_shards(ray.data.from_items([{"id": d["id"], "text": d["text"]} for d in docs]), tmp_path / "i",
                     num_shards=3, encoder="bm25", quantization="float")
    single = SparseIndex("bm25", "float")
    single.add([d["text"] for d in docs], ids=[d["id"] for d in docs])
    with sdr.ShardedIndex(tmp_path / "i") as sh:
        for q, got in zip(queries, sh.search_batch(queries, k=len(docs))):
            _same(got, _canonical(single, q, len(docs)))
            for k in (1, 10):
                _same(sh.search(q, k=k), _canonical(single, q, k))


def test_max_weight_below_the_data_is_an_error(cluster, tmp_path) -> None:
    """A max_weight below the data's largest weight would leave the shared u8 grid (the shard
    scores that document on a coarser grid of its own): a ValueError naming the document's id
    and the weight, at build and at a later add / upsert."""
    rows = [{"id": i, "indices": np.array([1, 2], np.uint32), "values": np.array([0.5, w], np.float32)}
            for i, w in ((1, 1.0), (7, 2.5), (9, 0.25))]
    with pytest.raises(ValueError, match=r"the document with id 7 has weight 2\.5, above max_weight=2\.0"):
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "a", num_shards=2, max_weight=2.0)
    # a weight equal to max_weight fits the grid (impact 255), also for float32 weights like 0.1
    rows01 = [{"id": 1, "indices": np.array([1], np.uint32), "values": np.array([0.1], np.float32)}]
    sdr.build_shards(ray.data.from_items(rows01), tmp_path / "c", num_shards=2, max_weight=0.1)
    sdr.build_shards(ray.data.from_items(rows), tmp_path / "b", num_shards=2, max_weight=2.5)
    with sdr.ShardedIndex(tmp_path / "b") as sh:
        with pytest.raises(ValueError, match=r"document 1 \(id 12\) has weight 3\.0, above max_weight=2\.5"):
            sh.add([([1], [1.0]), ([2], [3.0])], ids=[11, 12])
        with pytest.raises(ValueError, match=r"document 0 \(id 1\) has weight 4\.0"):
            sh.upsert([([1], [4.0])], ids=[1])
        sh.commit()
        assert len(sh) == 3  # the refused writes changed nothing
        sh.add([([1], [2.5])], ids=[11])
        sh.commit()
        assert [h.id for h in sh.search(([1], [1.0]), k=5)][0] == 11
    # without max_weight the grid is the data's largest weight: a heavier add only warns
    sdr.build_shards(ray.data.from_items(rows), tmp_path / "d", num_shards=2)
    with sdr.ShardedIndex(tmp_path / "d") as sh:
        with pytest.warns(UserWarning, match=r"document 0 \(id 12\) has weight 3\.0, above the largest weight"):
            sh.add([([2], [3.0])], ids=[12])
        sh.commit()
        assert len(sh) == 4


# bad shards ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "idx"
    sdr.build_shards(ray.data.from_items(_corpus(3, 30, False), override_num_blocks=2), path, num_shards=3)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_shard(built, tmp_path) -> None:
    p = _copy(built, tmp_path / "c")
    shutil.rmtree(p / "shard-00001")
    with pytest.raises(sdr.ShardError, match="shard-00001 is missing"):
        sdr.ShardedIndex(p)


def test_shard_of_another_index(built, tmp_path) -> None:
    other = tmp_path / "other"
    sdr.build_shards(ray.data.from_items(_corpus(4, 10, False), override_num_blocks=2), other, num_shards=3)
    p = _copy(built, tmp_path / "c")
    shutil.rmtree(p / "shard-00002")
    shutil.copytree(other / "shard-00002", p / "shard-00002")
    with pytest.raises(sdr.ShardError, match="shard-00002 belongs to another index"):
        sdr.ShardedIndex(p)


def test_shard_with_another_grid(built, tmp_path) -> None:
    p = _copy(built, tmp_path / "c")
    marker = json.loads((p / "shard-00000" / "sparsedex-shard.json").read_text())
    shutil.rmtree(p / "shard-00000")
    idx = SparseIndex(None, "u8", path=p / "shard-00000", max_weight=100.0, store_texts=False)
    idx.add([([1], [1.0])], ids=[5])
    idx.commit()
    idx.close()
    (p / "shard-00000" / "sparsedex-shard.json").write_text(json.dumps(marker))
    with pytest.raises(sdr.ShardError, match="shard-00000 is quantized 'u8' with max_weight 100"):
        sdr.ShardedIndex(p)


def _replace_shard(p: Path, name: str, idx_args: tuple, docs: list) -> None:
    """Rebuild shard ``name`` of ``p`` as ``SparseIndex(*idx_args)`` over ``docs``, keeping its
    marker file (a forged marker: index id, shard number and grid all match)."""
    marker = (p / name / "sparsedex-shard.json").read_text()
    shutil.rmtree(p / name)
    idx = SparseIndex(*idx_args, path=p / name)
    idx.add(docs, ids=list(range(len(docs))))
    idx.commit()
    idx.close()
    (p / name / "sparsedex-shard.json").write_text(marker)


def test_shard_that_scores_otherwise(built, tmp_path) -> None:
    """A shard whose encoder differs from the index's (its marker forged, so index id, shard
    number and grid match) is refused by name: BM25 parameters or analysis of another kind
    would score its documents on another scale than the other shards'."""
    from sparsedex.encoders.bm25 import Bm25Encoder

    rows = [{"id": i, "text": f"ant bee {'cat ' * (i % 3)}"} for i in range(12)]
    sdr.build_shards(ray.data.from_items(rows, override_num_blocks=1), tmp_path / "b", num_shards=2, encoder="bm25")
    with sdr.ShardedIndex(tmp_path / "b") as sh:
        assert len(sh.search("cat", k=20)) == 8
    _replace_shard(tmp_path / "b", "shard-00001", (Bm25Encoder(k1=1.5), "u8"), ["ant cat", "bee"])
    with pytest.raises(sdr.ShardError, match=r"^shard shard-00001 has another BM25 encoder: k1 1\.5 \(the index: 1\.2\)"):
        sdr.ShardedIndex(tmp_path / "b")
    from sparsedex.encoders.bm25 import Analyzer

    _replace_shard(tmp_path / "b", "shard-00001", (Bm25Encoder(Analyzer(stopwords="english")), "u8"), ["ant cat"])
    with pytest.raises(sdr.ShardError, match=r"has another BM25 encoder: analyzer\.stopwords 'english' \(the index: None\)"):
        sdr.ShardedIndex(tmp_path / "b")
    p = _copy(built, tmp_path / "c")  # vectors: a BM25 shard among them
    _replace_shard(p, "shard-00000", ("bm25", "u8"), ["ant cat"])
    with pytest.raises(sdr.ShardError, match=r"shard shard-00000 has an encoder \(Bm25Encoder\), the index holds vectors"):
        sdr.ShardedIndex(p)


def test_swapped_shards_and_manifest_count(built, tmp_path) -> None:
    p = _copy(built, tmp_path / "c")
    (p / "shard-00000").rename(p / "tmp")
    (p / "shard-00001").rename(p / "shard-00000")
    (p / "tmp").rename(p / "shard-00001")
    with pytest.raises(sdr.ShardError, match="shard shard-0000[01] holds shard [01], expected shard [01]"):
        sdr.ShardedIndex(p)
    p = _copy(built, tmp_path / "d")
    m = json.loads((p / "shards.json").read_text())
    m["num_shards"] = 2
    (p / "shards.json").write_text(json.dumps(m))
    with pytest.raises(sdr.ShardError, match="num_shards is 2 but its shard list has 3 entries"):
        sdr.ShardedIndex(p)
    m["shards"] = m["shards"][:2]
    (p / "shards.json").write_text(json.dumps(m))
    with pytest.raises(sdr.ShardError, match="num_shards is 2 but .* also holds shard-00002"):
        sdr.ShardedIndex(p)


def test_no_manifest(tmp_path, cluster) -> None:
    with pytest.raises(sdr.ShardError, match="no shards.json"):
        sdr.ShardedIndex(tmp_path)


def _kill(actor) -> None:
    """ray.kill, and wait until the actor is gone: the kill is asynchronous, and a call made at
    once could still be answered (a CI run searched a just-killed shard successfully)."""
    ray.kill(actor)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=2)
        except Exception:  # RayActorError (dead), or no answer
            return
        time.sleep(0.05)
    raise AssertionError("a killed actor still answers after 20 s")


def test_dead_actor(built) -> None:
    q = ([1, 2, 3], [1.0, 1.0, 1.0])
    with sdr.ShardedIndex(built, replicas=2, timeout_s=20) as sh:
        want = sh.search(q, k=10)
        _kill(sh.actors()[1][0])
        _kill(sh.actors()[2][1])
        for _ in range(3):  # every replica choice: still answers, and the same
            _same(sh.search(q, k=10), want)
        with pytest.raises(sdr.ShardUnavailableError, match=r"shard-00001: its writer \(replica 0\) is dead"):
            sh.delete([next(i for i in range(10**9, 10**9 + 100) if sdr.shard_of(i, 3) == 1)], missing_ok=True)
    with sdr.ShardedIndex(built, replicas=1, timeout_s=20) as sh:
        _kill(sh.actors()[1][0])
        t = time.monotonic()
        with pytest.raises(sdr.ShardUnavailableError, match="shard-00001 is unavailable.*no other replica"):
            sh.search(q, k=10)
        assert time.monotonic() - t < 20
    from sparsedex.errors import ClosedIndexError

    with pytest.raises(ClosedIndexError, match="closed"):
        sh.search(q, k=10)
    with pytest.raises(ClosedIndexError):
        len(sh)
    assert "closed" in repr(sh)


def test_hung_actor_times_out(built) -> None:
    """A shard that does not answer within timeout_s is an error naming it, not a hang."""
    with sdr.ShardedIndex(built, replicas=1, timeout_s=2) as sh:
        a = sh.actors()[0][0]
        sh._actors[0][0] = _Sleeper.remote()  # shard 0 now never answers within 2 s
        t = time.monotonic()
        with pytest.raises(sdr.ShardUnavailableError, match="shard-00000 is unavailable: no answer within 2 s"):
            sh.search(([1], [1.0]), k=3)
        assert time.monotonic() - t < 10
        ray.kill(sh._actors[0][0])
        sh._actors[0][0] = a


@ray.remote(num_cpus=0.1)
class _SlowOnce(sdr._Shard):
    """A real shard whose first search takes 3 s."""

    slow = True

    def search(self, *a):
        if self.slow:
            self.slow = False
            time.sleep(3)
        return super().search(*a)


def test_timeout_keeps_live_replica(built) -> None:
    """A call past timeout_s fails that call (naming the shard and the timeout); the replica
    stays in rotation: once it has caught up, searches answer again."""
    q = ([1, 2, 3], [1.0, 1.0, 1.0])
    with sdr.ShardedIndex(built, replicas=1, timeout_s=1) as sh:
        want = sh.search(q, k=10)
        ray.kill(sh._actors[0][0])
        sh._actors[0][0] = _SlowOnce.remote(str(built), sh.manifest, 0)
        assert ray.get(sh._actors[0][0].ping.remote(), timeout=60)
        with pytest.raises(sdr.ShardUnavailableError, match=r"shard-00000 is unavailable: no answer within 1 s"):
            sh.search(q, k=10)
        assert not sh._dead
        deadline = time.monotonic() + 30
        while True:
            try:
                got = sh.search(q, k=10)
                break
            except sdr.ShardUnavailableError as e:
                assert "no answer within" in str(e) and time.monotonic() < deadline
                time.sleep(0.5)
        _same(got, want)


@ray.remote(num_cpus=0.1)
class _Sleeper:
    def search(self, *a):
        time.sleep(30)


# serving ---------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(fn, deadline_s: float = 30.0):
    """``fn()`` until it returns a true value (or the deadline passes: AssertionError)."""
    deadline = time.monotonic() + deadline_s
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_serve_http(built, tmp_path) -> None:
    import requests

    port = _free_port()
    # replicas=2: 3 shards x 2 actors here, and as many again in the Serve deployment, on 2 CPUs
    # (serve() used to wait forever for CPUs the first set held)
    sh = sdr.ShardedIndex(_copy(built, tmp_path / "c"), replicas=2)
    q = {"indices": [1, 2, 3], "values": [1.0, 2.0, 0.5]}
    want = sh.search((q["indices"], q["values"]), k=5, filter={"year": {"$lte": 1993}})
    top = sh.search((q["indices"], q["values"]), k=1)[0].id
    base = sh.serve(port=port, refresh_s=0.2, route_prefix="/api/v1")
    assert base == f"http://127.0.0.1:{port}/api/v1/"
    from ray import serve

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.post(base + "search", json={"query": q, "k": 5, "filter": {"year": {"$lte": 1993}}},
                                  timeout=30)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.json() == {"hits": [{"id": h.id, "score": h.score, "payload": h.payload} for h in want]}
        r = requests.post(base + "search", json={"query": q, "k": 0}, timeout=30)
        assert r.status_code == 400 and "k" in r.json()["error"]
        r = requests.post(base + "search", json={"query": q, "k": None}, timeout=30)  # null: the default, as
        ten = sh.search((q["indices"], q["values"]), k=None)  # None is 10, as in SparseIndex.search
        assert ten == sh.search((q["indices"], q["values"]), k=10)
        assert r.status_code == 200 and [h["id"] for h in r.json()["hits"]] == [h.id for h in ten], r.text
        r = requests.post(base + "get", json={"id": 10**9}, timeout=30)
        assert r.status_code == 404 and "no document" in r.json()["error"]
        r = requests.post(base + "search_batch", json={"queries": [q, q], "k": 2}, timeout=30)
        assert r.status_code == 200 and len(r.json()["hits"]) == 2
        # only the endpoints' own paths below the route prefix reach them
        r = requests.post(base + "x/search", json={"query": q, "k": 5}, timeout=30)
        assert r.status_code == 404 and "x/search" in r.json()["error"], r.text
        assert requests.get(base + "health/", timeout=30).status_code == 200
        r = requests.post(base + "search", data=b"{not json", timeout=30)
        assert r.status_code == 400
        # a POST without Content-Length: a 411 naming the header, as the plain server answers
        # (helper-116: 400 "the request has no query")
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /api/v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(4096):
                got += chunk
        assert got.startswith(b"HTTP/1.1 411") and b"Content-Length header" in got, got
        r = requests.post(base + "search", json={"query": q, "fliter": {}}, timeout=30)
        assert r.status_code == 400 and 'unknown field "fliter"' in r.json()["error"]
        # a body over the plain server's cap is a 413 here too: announced, or sent chunked
        from sparsedex._http import MAX_BODY_BYTES

        big = b"[" + b" " * MAX_BODY_BYTES + b"]"
        r = requests.post(base + "search_batch", data=big, timeout=60)
        assert r.status_code == 413 and f"is {len(big)} bytes" in r.json()["error"], r.text
        r = requests.post(base + "search_batch", data=(big[i:i + (1 << 20)] for i in range(0, len(big), 1 << 20)),
                          timeout=60)
        assert r.status_code == 413 and "more than" in r.json()["error"], r.text
        # the served index follows this object's commits
        sh.delete([top])
        sh.upsert([([39], [5.0])], ids=[10**6], payloads=[{"year": 1990}])
        sh.commit()

        def served() -> bool:
            r = requests.post(base + "search", json={"query": {"indices": [1, 2, 3, 39], "values": [1, 2, 0.5, 1]},
                                                     "k": 50}, timeout=30)
            ids = [h["id"] for h in r.json()["hits"]]
            return top not in ids and 10**6 in ids

        _poll(served)
        assert requests.get(base + "health", timeout=30).json() == {"documents": len(sh)}
    finally:
        serve.shutdown()
        sh.close()


def test_cli_serve_plain_index(tmp_path) -> None:
    """``sparsedex serve INDEX`` (no Ray): the same JSON API over the standard library server."""
    import requests

    idx = SparseIndex(None, "float", path=tmp_path / "p")
    idx.add([([1, 2], [1.0, 2.0]), ([2], [3.0])], ids=["a", "b"], payloads=[{"x": 1}, None])
    idx.commit()
    idx.close()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sparsedex", "serve", str(tmp_path / "p"), "--port", str(port),
                             "--refresh-s", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.post(f"http://127.0.0.1:{port}/search",
                                  json={"query": {"indices": [2], "values": [1.0]}, "k": 2}, timeout=10)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert r.json() == {"hits": [{"id": "b", "score": 3.0, "payload": None},
                                     {"id": "a", "score": 2.0, "payload": {"x": 1}}]}
        r = requests.post(f"http://127.0.0.1:{port}/explain", json={"query": {"indices": [2], "values": [1.0]}},
                          timeout=10)
        assert r.status_code == 400 and r.json() == {"error": 'the request has no "id"'}
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json() == {"documents": 2}
        # a commit made by another process is served (refresh at most every --refresh-s)
        w = SparseIndex.open(tmp_path / "p")
        w.add([([2], [9.0])], ids=["c"])
        w.delete(["a"])
        w.commit()
        w.close()

        def served():
            r = requests.post(f"http://127.0.0.1:{port}/search",
                              json={"query": {"indices": [2], "values": [1.0]}, "k": 5}, timeout=10)
            return [h["id"] for h in r.json()["hits"]] == ["c", "b"]

        _poll(served)
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json() == {"documents": 2}
        assert requests.post(f"http://127.0.0.1:{port}/get", json={"id": "a"}, timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_serve_ray_needs_sharded_index(tmp_path, capsys) -> None:
    from sparsedex.cli import main

    assert main(["serve", str(tmp_path), "--ray"]) == 1
    assert "no shards.json" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--replicas", "2"]) == 1
    assert "need --ray" in capsys.readouterr().err


def test_serve_body_read_times_out(monkeypatch) -> None:
    """A body that stops arriving is a 408 after IDLE_TIMEOUT_S (helper-96: five stalled
    clients held every request slot of a replica), a whole one is read, and the replica
    takes more than Serve's default five requests at once."""
    import asyncio

    from sparsedex import _http, _serve

    class Stalled:
        def __init__(self, parts, stall):
            self.headers, self.parts, self.stall = {"content-length": "100"}, parts, stall

        async def stream(self):
            for p in self.parts:
                yield p
            if self.stall:
                await asyncio.sleep(3600)

    monkeypatch.setattr(_http, "IDLE_TIMEOUT_S", 0.2)
    r = asyncio.run(_serve._capped_body(Stalled([b"123456789"], True)))
    assert r.status_code == 408
    assert json.loads(r.body) == {"error": "the request body stopped arriving: 9 bytes came, then nothing for 0.2 s"}
    assert asyncio.run(_serve._capped_body(Stalled([b"ab", b"cd"], False))) == b"abcd"
    assert _serve.SearchDeployment._deployment_config.max_ongoing_requests >= 64


def test_close_takes_wait_for_merges_as_sparse_index_does(cluster, tmp_path) -> None:
    """ShardedIndex.close(wait_for_merges=...) as SparseIndex.close (helper-135: it took no
    argument and stopped the actors without closing their indexes)."""
    from sparsedex import ClosedIndexError, SparseEmbedding

    rows = _corpus(11, 12, False)
    sdr.build_shards(ray.data.from_items(rows, override_num_blocks=2), tmp_path / "i", num_shards=2)
    sh = sdr.ShardedIndex(tmp_path / "i")
    sh.add([SparseEmbedding(indices=np.array([1, 2], np.uint32), values=np.array([1.0, 2.0], np.float32))],
           ids=[10_000])
    with pytest.raises(TypeError, match="wait_for_merges"):
        sh.close(wait_for_merges="no")  # type: ignore[arg-type]
    sh.close(wait_for_merges=False)
    sh.close()  # idempotent
    with pytest.raises(ClosedIndexError):
        len(sh)
    with sdr.ShardedIndex(tmp_path / "i") as again:  # the uncommitted add is forgotten
        assert len(again) == len(rows) and 10_000 not in again
