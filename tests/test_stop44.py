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


_REWRITTEN = r"""
import shutil, subprocess, sys, numpy as np, scipy.sparse as sp
from sparsedex import SparseIndex, CorruptIndexError
base = sys.argv[1]
def build(d, n, seed):
    M = sp.random(n, 300, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    ix = SparseIndex(None, path=d); ix.add(M, ids=[f"d{i}" for i in range(n)]); ix.commit(); ix.close()
build(base + "/ix", 2000, 3); build(base + "/other", 500, 4)
r = SparseIndex.open(base + "/ix"); q = {i: 1.0 for i in range(0, 300, 7)}
assert len(r.search(q, k=2)) == 2
subprocess.run(f"cp -r {base}/other/. {base}/ix/", shell=True, check=True)
for name, fn in [("search", lambda: r.search(q, k=2)), ("get", lambda: r.get("d5")),
                 ("search_batch", lambda: r.search_batch([q], k=2)), ("search again", lambda: r.search(q, k=2))]:
    try:
        fn()
        print(name, "no error")
    except CorruptIndexError as e:
        assert "under this open index" in str(e), e
        print(name, "CorruptIndexError")
r.refresh()
print("after refresh", len(r), r.search(q, k=1)[0].id)
"""


def test_reads_after_files_were_found_rewritten_fail_without_touching_them(tmp_path):
    """helper-92: a backup copied (cp) over an open index's directory: the first search that
    notices says so (CorruptIndexError), but get() then read the memory-mapped file the copy
    had shrunk and the process died of SIGBUS. Reads of that snapshot now fail at once with
    the same error; refresh() moves to the restored files."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    r = subprocess.run([sys.executable, "-c", _REWRITTEN, str(tmp_path)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[:4] == ["search CorruptIndexError", "get CorruptIndexError", "search_batch CorruptIndexError",
                         "search again CorruptIndexError"], r.stdout
    assert lines[4].startswith("after refresh 500 "), r.stdout
    assert "panicked" not in r.stderr, r.stderr


_FD_LIMIT = r"""
import errno, resource, sys
from sparsedex import SparseIndex, MergePolicy
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (96, hard))
w = SparseIndex(None, path=sys.argv[1], merge_policy=MergePolicy(factor=0))
done = 0
try:
    for i in range(200):
        w.add([{1: 1.0}], ids=[i], payloads=[{"i": i}]); w.commit(); done += 1
    print("no error")
except OSError as e:
    print("failed", e.errno in (errno.EMFILE, errno.ENFILE), "ulimit -n" in str(e), done)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
w.close()
print("reopened", len(SparseIndex.open(sys.argv[1])) == done)
"""


def test_a_commit_out_of_file_descriptors_says_what_holds_them(tmp_path):
    """helper-92: commits until the process ran out of file descriptors failed with 'OSError
    opening .../CURRENT: Too many open files (os error 24)', no hint; the error now says an
    open index holds two per segment and what to do, and the index keeps its commits."""
    import subprocess
    import sys

    if sys.platform == "win32":
        pytest.skip("RLIMIT_NOFILE is POSIX")
    r = subprocess.run([sys.executable, "-c", _FD_LIMIT, str(tmp_path / "ix")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.split("\n")
    assert lines[0].startswith("failed True True "), r.stdout
    assert lines[1] == "reopened True", r.stdout


def test_a_lock_holder_that_has_yet_to_write_its_name_is_waited_for(tmp_path):
    """helper-92: a writer losing a race read LOCK between the winner taking it and writing
    who it is, and said '(unknown holder)': it looks again for a moment."""
    import threading

    from sparsedex.lock import LOCK_FILE, WriterLock

    lk = WriterLock(tmp_path)
    (tmp_path / LOCK_FILE).write_bytes(b"")
    t = threading.Timer(0.03, lambda: (tmp_path / LOCK_FILE).write_bytes(b"pid 4242 on somehost"))
    t.start()
    try:
        assert lk._holder() == "pid 4242 on somehost"
    finally:
        t.join()
    (tmp_path / LOCK_FILE).write_bytes(b"")
    assert lk._holder() == "unknown holder"  # nobody ever writes: said after a short wait


def test_a_stale_reader_whose_files_were_collected_gets_a_plain_keyerror(tmp_path):
    """helper-93 HIGH: a reader on an older commit whose files a writer has since collected (a
    merge) asked get() for an id its commit lacks: the KeyError was reported as a
    CorruptIndexError 'seg-... is gone under this open index (files copied into its
    directory ...)'; `sparsedex serve` answered such gets with 500s while a writer committed.
    A file gone changes nothing a reader has open; its searches and gets go on."""
    import os

    path = tmp_path / "ix"
    w = SparseIndex(encoder=None, path=path)
    for i in range(3):
        w.add([{1: 1.0 + i}, {2: 1.0}], ids=[f"a{i}", f"b{i}"])
        w.commit()
    r = SparseIndex.open(path)
    before = sorted(os.listdir(path))
    w.delete("a0")
    w.merge()
    w.close()
    assert set(before) - set(os.listdir(path)), "the merge collected the reader's files"
    with pytest.raises(KeyError):
        r.get("nope")
    assert r.get("a0").id == "a0"  # its commit still holds it
    assert [h.id for h in r.search({1: 1.0}, k=3)] == ["a2", "a1", "a0"]
    r.refresh()
    with pytest.raises(KeyError):
        r.get("a0")


def test_a_tokenizer_with_ids_past_the_models_vocabulary_is_named(tmp_path):
    """helper-93 MEDIUM: a tokenizer.json whose token ids exceed the model's vocabulary made the
    first encode fail with ONNX Runtime's bare 'INVALID_ARGUMENT ... Gather node ... idx=100101
    must be within the inclusive range [-30522,30521]'. (Not checked at load: a model's output
    may have fewer entries than its input vocabulary.)"""
    import json
    import shutil

    from sparsedex.encoders.registry import bundled_model_dir

    d = tmp_path / "model"
    shutil.copytree(str(bundled_model_dir()), d)
    tok = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    tok["model"]["vocab"] = {t: i + 100_000 for t, i in tok["model"]["vocab"].items()}
    (d / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    with pytest.raises(ValueError, match=r"has no embedding for a token id its tokenizer\.json gave \(largest in "
                                         r"this batch: 1\d{5}\): the tokenizer and model\.onnx do not belong together"):
        SparseIndex(str(d)).add(["a rock band"])


def test_a_tokenizer_json_of_another_shape_says_so(tmp_path):
    """helper-93 LOW: valid JSON that is no tokenizer read 'expected `,` or `}` at line 1 column
    23', a parse position in a file that parses."""
    import shutil

    from sparsedex.encoders.registry import bundled_model_dir

    d = tmp_path / "model"
    shutil.copytree(str(bundled_model_dir()), d)
    (d / "tokenizer.json").write_text('{"version": "1.0", "foo": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"not a readable Hugging Face tokenizer file \(valid JSON, but with no "
                                         r"'model', 'normalizer', 'pre_tokenizer' section\)"):
        SparseIndex(str(d)).add(["a rock band"])
