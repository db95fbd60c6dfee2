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
    assert rc == 1 and "being written by another writer" in err and "--overwrite" in err, err
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
