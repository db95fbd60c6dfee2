"""Stop 56: fresh testers' findings (helper-114, helper-115)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.errors import CorruptIndexError


def _vectors(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.choice(3000, 20, replace=False)), rng.random(20).astype(np.float32) + 0.01) for _ in range(n)]


def test_a_documents_file_rewritten_in_place_is_named_kept_and_read_again_on_refresh(tmp_path):
    """helper-114 M: a .docs file rewritten in place (same size) under an open index gave
    "unreadable (database disk image is malformed)" once, then a later get() succeeded, and
    refresh() kept the damaged handle (reads still failed). Now the error names the file
    rewritten under the index, every later read raises it, refresh() checks the file against
    the manifest, and once the file is mended a refresh reads it again."""
    p = tmp_path / "ix"
    vecs = _vectors(3000)
    ix = SparseIndex.create(p)
    ix.add(vecs, ids=list(range(3000)), payloads=[{"g": i % 10, "pad": "x" * 40} for i in range(3000)])
    ix.commit()
    ix.close()
    r = SparseIndex.open(p)
    q = {int(vecs[0][0][0]): 1.0}
    assert len(r.search(q, k=1)) == 1
    docs = next(p.glob("*.docs"))
    orig = docs.read_bytes()
    with open(docs, "r+b") as fh:
        fh.seek(len(orig) // 2)
        fh.write(bytes(4096))  # zeros over the middle pages
    with pytest.raises(CorruptIndexError, match=r"\.docs was rewritten .* under this open index"):
        for i in range(3000):
            r.get(i)
    for read in (lambda: r.get(5), lambda: r.search(q, k=1)):  # sticks
        with pytest.raises(CorruptIndexError, match="under this open index"):
            read()
    r.refresh()
    with pytest.raises(CorruptIndexError, match="checksum differs from the manifest's"):
        r.get(5)
    with pytest.raises(CorruptIndexError, match="checksum differs from the manifest's"):
        r.get(6)
    docs.write_bytes(orig)
    r.refresh()
    assert r.get(5).payload["g"] == 5
    assert sum(1 for i in range(3000) if r.get(i)) == 3000
    r.close()


_FSIZE_CHILD = r"""
import errno, resource, sys
import numpy as np
from sparsedex import SparseIndex
limit, what = int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
vecs = [(np.sort(rng.choice(30000, 50, replace=False)), rng.random(50).astype(np.float32) + 0.01) for _ in range(6000)]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
ix = SparseIndex.open(sys.argv[1])
big = what == "docs"
ix.add(vecs[:300] if big else vecs, ids=list(range(100, 400 if big else 6100)),
       payloads=[{"pad": "x" * 2000} for _ in range(300)] if big else None)
try:
    ix.commit()
except OSError as e:
    print(e.errno, "|", e.strerror)
    sys.exit(0)
print("committed")
"""


@pytest.mark.parametrize("what,limit", [("engine", 200 * 1024), ("docs", 200 * 1024)])
def test_a_commit_past_the_file_size_limit_raises_efbig(tmp_path, what, limit):
    """helper-114: a commit past the file size limit (``ulimit -f``, as a full disk would) raised
    an OSError whose errno was None (the engine file: "File too large (os error 27)" only in its
    text), or EIO "disk I/O error" (the documents file, SQLite's words). Now both carry EFBIG,
    the documents' message names the limit, and the index reopens at its last commit."""
    import errno
    import subprocess
    import sys

    p = tmp_path / "ix"
    ix = SparseIndex.create(p)
    ix.add(_vectors(10), ids=list(range(10)))
    ix.commit()
    ix.close()
    script = tmp_path / "child.py"
    script.write_text(_FSIZE_CHILD)
    out = subprocess.run([sys.executable, str(script), str(p), str(limit), what], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    code, _, msg = out.stdout.strip().partition(" | ")
    assert int(code) == errno.EFBIG, out.stdout
    if what == "docs":
        assert "file size limit" in msg and "ulimit -f" in msg, msg
    r = SparseIndex.open(p)
    assert sorted(r.ids()) == list(range(10))
    r.close()
