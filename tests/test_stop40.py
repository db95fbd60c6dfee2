"""Stop 40: leftovers of recheck39's attack (each test fails on the code before its fix)."""

import numpy as np
import pytest

from sparsedex import Bm25Stats, SparseIndex

DOCS = [f"the {w} fox and the {v} dog number {i}" for i, (w, v) in
        enumerate(zip(["quick", "slow", "red", "lazy"] * 6, ["brown", "lazy", "old", "young", "big", "small"] * 4))]
IDS = [f"d{i}" for i in range(len(DOCS))]


def test_bm25_statistics_of_shards_built_apart_add_up_by_word(tmp_path):
    """Shards built apart each grow their own term dictionary (one id names different words in
    each): Bm25Stats.sum added the df of unrelated words by id, and the shards then scored
    with wrong statistics, silently (recheck39). Statistics now carry their words, add up by
    word, and each shard looks them up in its own dictionary: N shards score like one index."""
    one = SparseIndex("bm25", "float")
    one.add(DOCS, ids=IDS)
    # each shard its own encoder (own dictionary), fed documents in another order
    shards = []
    for s in range(3):
        sh = SparseIndex("bm25", "float", path=tmp_path / f"s{s}")
        part = list(range(s, len(DOCS), 3))[::-1 if s == 1 else 1]
        sh.add([DOCS[i] for i in part], ids=[IDS[i] for i in part])
        sh.commit()
        shards.append(sh)
    v0, v1 = (list(sh.encoder.vocabulary) for sh in shards[:2])
    assert v0 != v1  # the dictionaries differ: ids alone would add unrelated words
    for q in ["quick fox", "lazy dog", "old young big", "number 7", None]:
        parts = [sh.collection_stats(q) for sh in shards]
        total = Bm25Stats.sum(parts)
        whole = one.collection_stats(q)
        want_df = dict(zip(whole.words, whole.df.tolist()))
        assert (total.n_docs, total.total_len) == (whole.n_docs, whole.total_len)
        got_df = {w: d for w, d in zip(total.words, total.df.tolist()) if d}
        assert got_df == {w: d for w, d in want_df.items() if d}, q
        if q is None:
            continue
        merged = sorted((h for sh in shards for h in sh.search(q, k=30, collection_stats=total)),
                        key=lambda h: (-h.score, h.id))
        want = sorted(one.search(q, k=30), key=lambda h: (-h.score, h.id))
        assert [h.id for h in merged] == [h.id for h in want], q
        assert [h.score for h in merged] == pytest.approx([h.score for h in want], rel=1e-6)
        batch = shards[1].search_batch([q, q], k=30, collection_stats=total)
        assert [h.id for h in batch[0]] == [h.id for h in shards[1].search(q, k=30, collection_stats=total)]
        hit = next(h for h in merged if h.id in shards[2])
        assert shards[2].explain(q, hit.id, collection_stats=total).score == pytest.approx(hit.score, rel=1e-6)
    # hand-made statistics (term ids only) still add by id, and do not mix with worded ones
    a = Bm25Stats(2, 10, np.array([1, 2], np.uint32), np.array([1, 2], np.uint64))
    assert Bm25Stats.sum([a, a]).df.tolist() == [2, 4] and Bm25Stats.sum([a, a]).words is None
    with pytest.raises(ValueError, match="part 1 has no words"):
        Bm25Stats.sum([shards[0].collection_stats("fox"), a])
    with pytest.raises(ValueError, match="2 entries for 1 terms"):
        Bm25Stats(2, 10, np.array([1], np.uint32), np.array([1], np.uint64), words=["a", "b"])
    for sh in shards:
        sh.close()


def test_bm25_statistics_of_shards_sharing_a_dictionary_keep_their_ids():
    """Shards that share one encoder (one dictionary) sum to statistics with the same ids."""
    one = SparseIndex("bm25", "float")
    one.add(DOCS, ids=IDS)
    shards = [SparseIndex(one.encoder, "float") for _ in range(2)]
    for s, sh in enumerate(shards):
        sh.add(DOCS[s::2], ids=IDS[s::2])
    total = Bm25Stats.sum([sh.collection_stats("lazy dog") for sh in shards])
    whole = one.collection_stats("lazy dog")
    assert total.terms.tolist() == whole.terms.tolist() and total.words == whole.words
    assert total.df.tolist() == whole.df.tolist()


def test_cli_index_overwrite_refuses_an_index_being_written_before_encoding(capsys, tmp_path, monkeypatch):
    """`sparsedex index --overwrite` into an index another writer holds: the lock refused the
    save only after every document was encoded (recheck39); now before reading the corpus."""
    import json

    import sparsedex.cli as cli

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(3)))
    ix = tmp_path / "ix"
    assert cli.main(["index", str(corpus), str(ix), "--encoder", "bm25"]) == 0
    capsys.readouterr()
    writer = SparseIndex.open(ix)
    writer.add(["pending"], ids=["p"])  # a writer takes the lock on its first change

    def never(*a, **k):
        raise AssertionError("the corpus was read although the index is locked")

    with monkeypatch.context() as m:
        m.setattr(cli, "load_records", never)
        rc = cli.main(["index", str(corpus), str(ix), "--encoder", "bm25", "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 1 and "another process is writing this index (pid" in err and "--overwrite" in err, err
    writer.close()
    assert cli.main(["index", str(corpus), str(ix), "--encoder", "bm25", "--overwrite"]) == 0


def test_bm25_stats_missing_terms_are_named_as_typed():
    """The missing-statistics error named the dictionary's stems ('measur'), not the words the
    user typed: it names both now (recheck39)."""
    ix = SparseIndex("bm25")
    ix.add(["measuring the band", "music bands", "a measured tempo"])
    st = ix.collection_stats(["music"])
    with pytest.raises(ValueError, match=r"'measuring' \(term 'measur'\), 'bands' \(term 'band'\) of the query"):
        ix.search("music bands measuring", collection_stats=st)
    with pytest.raises(ValueError, match=r"'measured' \(term 'measur'\) of query 1"):
        ix.search_batch(["music", "measured"], collection_stats=st)
    with pytest.raises(ValueError, match=r"'band' of the query"):  # typed as the term: said once
        ix.explain("band music", 0, collection_stats=st)


def _switch(tmp_path, live, target):
    import os

    os.symlink(target, tmp_path / "t")
    os.replace(tmp_path / "t", live)


def test_refresh_follows_a_copy_whose_engine_file_is_byte_identical(tmp_path):
    """Blue/green by `cp -r` where both take a commit of the same vectors (or BM25 texts of
    the same shape): their new engine files are byte-identical, only the documents files and
    the dictionary differ. refresh() compared engine files alone and said nothing changed; the
    reader kept blue's payloads, texts and dictionary (recheck40 H1)."""
    import os
    import shutil

    blue, green, live = tmp_path / "blue", tmp_path / "green", tmp_path / "live"
    ix = SparseIndex("bm25", path=blue)
    ix.add(["the quick brown fox", "lazy dog sleeps"], ids=["a", "c"])
    ix.commit()
    ix.close()
    shutil.copytree(blue, green)
    for p, w in ((blue, "apple"), (green, "zebra")):
        with SparseIndex.open(p) as x:
            x.add([w + " pie"], ids=["b"], payloads=[{"c": p.name}])
            x.commit()
    os.symlink("blue", live)
    r = SparseIndex.open(live)
    assert [h.id for h in r.search("apple")] == ["b"]
    _switch(tmp_path, live, "green")
    assert r.refresh() is True
    assert [h.id for h in r.search("zebra")] == ["b"] and r.search("apple") == []
    assert r.get("b").text == "zebra pie" and r.get("b").payload == {"c": "green"}
    assert r.refresh() is False
    r.close()


def test_refresh_never_mixes_a_copy_s_deletions_with_the_old_payloads(tmp_path):
    """Green (a copy of blue) takes the same vectors with other payloads and a delete in one
    commit: refresh() moved, but kept blue's documents files for the reused engine segment
    (green's count, blue's payloads; recheck40 H2)."""
    import os
    import shutil

    blue, green, live = tmp_path / "blue", tmp_path / "green", tmp_path / "live"
    with SparseIndex(None, path=blue) as ix:
        ix.add([{1: 1.0}, {2: 1.0}], ids=["a", "z"], payloads=[{"c": "base"}] * 2)
        ix.commit()
    shutil.copytree(blue, green)
    with SparseIndex.open(blue) as x:
        x.add([{1: 5.0}], ids=["b"], payloads=[{"c": "BLUE-b"}])
        x.commit()
    with SparseIndex.open(green) as x:
        x.add([{1: 5.0}], ids=["b"], payloads=[{"c": "GREN-b"}])
        x.delete(["a"])
        x.commit()
    os.symlink("blue", live)
    r = SparseIndex.open(live)
    assert r.get("b").payload == {"c": "BLUE-b"}
    _switch(tmp_path, live, "green")
    assert r.refresh() is True
    assert len(r) == 2 and r.get("b").payload == {"c": "GREN-b"}
    assert [(h.id, h.payload) for h in r.search({1: 1.0}, k=5)] == [("b", {"c": "GREN-b"})]
    r.close()


def test_a_refresh_that_failed_midway_is_finished_by_the_next(tmp_path, monkeypatch):
    """refresh() moved the core, then failed opening a documents file (a symbolic link
    switched midway): the store kept the old snapshot while the core was ahead, and every later
    refresh() said nothing was new, for good (recheck40 H3)."""
    import sparsedex.store as store_mod
    from sparsedex import CorruptIndexError

    d = tmp_path / "ix"
    with SparseIndex(None, path=d) as w:
        w.add([{1: 1.0}], ids=["a"], payloads=[{"v": 1}])
        w.commit()
    r = SparseIndex.open(d)
    with SparseIndex.open(d) as w:
        w.add([{1: 2.0}], ids=["b"], payloads=[{"v": 2}])
        w.commit()
    real = store_mod.Store._open_docs
    calls = {"n": 0}

    def flaky(self, *a, **k):
        calls["n"] += 1
        raise CorruptIndexError("seg-000002.docs: missing (simulated: the link moved)")

    monkeypatch.setattr(store_mod.Store, "_open_docs", flaky)
    with pytest.raises(CorruptIndexError):
        r.refresh()
    assert calls["n"] >= 1 and sorted(r.ids()) == ["a"]
    monkeypatch.setattr(store_mod.Store, "_open_docs", real)
    assert r.refresh() is True
    assert sorted(r.ids()) == ["a", "b"] and r.get("b").payload == {"v": 2}
    assert r.refresh() is False
    r.close()


def test_collection_stats_looked_up_again_after_refresh_to_another_dictionary(tmp_path):
    """The word-to-id lookup of collection_stats= is kept for the last statistics; after
    refresh() to another index whose dictionary holds as many terms, the old lookup was
    reused: wrong BM25 scores (recheck40 H4)."""
    import os

    a, b, live = tmp_path / "a", tmp_path / "b", tmp_path / "live"
    for p, docs in ((a, ["apple pie", "apple zebra"]), (b, ["zebra pie", "zebra crossing"])):
        with SparseIndex("bm25", "float", path=p) as x:
            x.add(docs, ids=["d0", "d1"])
            x.commit()
    A, B = SparseIndex.open(a), SparseIndex.open(b)
    tot = Bm25Stats.sum([A.collection_stats(), B.collection_stats()])
    os.symlink("a", live)
    r = SparseIndex.open(live)
    r.search("zebra", collection_stats=tot)
    _switch(tmp_path, live, "b")
    assert r.refresh() is True
    got = [(h.id, h.score) for h in r.search("zebra pie", collection_stats=tot)]
    assert got == [(h.id, h.score) for h in B.search("zebra pie", collection_stats=tot)]
    for x in (r, A, B):
        x.close()


def test_u8_bm25_shards_built_apart_score_exactly_like_one_index(tmp_path):
    """u8 BM25 shards built apart, with statistics summed by word: a query word a shard never
    saw was dropped from its query, and the u8 query quantization (which depends on every query
    weight) then scored its documents a rounding apart from one index (recheck40 M4: 39 of 225
    Cranfield queries). Such words now stay in the query past the shard's dictionary."""
    import random

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(150)]
    docs = [" ".join(rng.choices(vocab, weights=[1 / (i + 1) for i in range(150)], k=rng.randint(3, 25)))
            for _ in range(240)]
    ids = [f"d{i}" for i in range(len(docs))]
    one = SparseIndex("bm25")
    one.add(docs, ids=ids)
    shards = []
    for s in range(3):
        sh = SparseIndex("bm25")
        sh.add(docs[s * 80:(s + 1) * 80], ids=ids[s * 80:(s + 1) * 80])
        shards.append(sh)
    total = Bm25Stats.sum([sh.collection_stats() for sh in shards])
    queries = [" ".join(rng.sample(vocab, rng.randint(2, 7))) for _ in range(60)]
    missing = 0
    for q in queries:
        words = set(q.split())
        missing += any(w not in sh.encoder.vocabulary for sh in shards for w in words)
        want = [(h.id, h.score) for h in one.search(q, k=20)]
        got = sorted(((h.id, h.score) for sh in shards for h in sh.search(q, k=20, collection_stats=total)),
                     key=lambda x: (-x[1], x[0]))[:20]
        assert got == want, q
        hit = want[0][0]
        sh = next(s for s in shards if hit in s)
        assert sh.explain(q, hit, collection_stats=total).score == want[0][1]
    assert missing > 10  # the case at hand: words some shard never saw
    got_b = [[(h.id, h.score) for h in r] for r in shards[0].search_batch(queries, k=20, collection_stats=total)]
    assert got_b == [[(h.id, h.score) for h in shards[0].search(q, k=20, collection_stats=total)] for q in queries]


def test_bm25_stats_take_any_integer_arrays_and_name_bad_ones():
    """Bm25Stats(…, int64 arrays) was "'ndarray' object is not an instance of 'ndarray'"
    (recheck40 L): any integer array or list is taken; other input is named."""
    a = Bm25Stats(10, 100, np.array([1, 3]), np.array([1, 2]))
    b = Bm25Stats(10, 100, [1, 3], [1, 2])
    assert a.terms.tolist() == b.terms.tolist() == [1, 3] and a.df.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"terms\[0\] = -1 is out of range"):
        Bm25Stats(10, 100, [-1], [1])
    with pytest.raises(TypeError, match=r"terms\[0\] is a bool"):
        Bm25Stats(10, 100, [True], [1])
    with pytest.raises(TypeError, match=r"df must be .*\(got str\)"):
        Bm25Stats(10, 100, [1], "1")


def test_bm25_stats_pickle():
    """Statistics travel to other processes (shards' workers): Bm25Stats pickles, words and
    all (recheck40 L)."""
    import pickle

    ix = SparseIndex("bm25")
    ix.add(DOCS, ids=IDS)
    st = ix.collection_stats("quick fox")
    back = pickle.loads(pickle.dumps(st))
    assert (back.n_docs, back.total_len, back.terms.tolist(), back.df.tolist(), back.words) == (
        st.n_docs, st.total_len, st.terms.tolist(), st.df.tolist(), st.words)
    assert [h.score for h in ix.search("quick fox", collection_stats=back)] == [
        h.score for h in ix.search("quick fox", collection_stats=st)]
    bare = Bm25Stats(3, 9, [1], [2])
    assert pickle.loads(pickle.dumps(bare)).words is None
