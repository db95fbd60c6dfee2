"""Stop 57: findings of helper-117 and later testers."""

import os
import shutil
import time

import pytest

from sparsedex import CorruptIndexError, SparseIndex

from test_stop56 import _two_indexes


@pytest.mark.parametrize("kind", ["sdx", "docs"])
@pytest.mark.parametrize("how", ["copy2", "rename"])
def test_a_same_size_copy_that_keeps_the_modification_time_is_noticed(tmp_path, kind, how):
    """helper-117 HIGH: another index's file of the same size copied over an open index's with
    its modification time kept (``cp -p``, ``rsync -a``) was never noticed: the handle's
    searches returned the other index's hits or "internal error (index out of bounds)", and
    refresh() said nothing. The stamps hold the inode and ctime too: refresh() raises
    CorruptIndexError naming the file, and so does every later read of that commit."""
    a, b = _two_indexes(tmp_path, kind)
    r = SparseIndex.open(tmp_path / "a")
    q = {3: 1.0} if kind == "sdx" else "apple"
    assert r.search(q, k=2)
    mtime = a.stat().st_mtime_ns
    time.sleep(0.02)
    if how == "copy2":  # cp -p: the bytes written in place, then the times set back
        with open(a, "r+b") as fh:
            fh.write(b.read_bytes())
        os.utime(a, ns=(mtime, mtime))
    else:  # rsync -a: a temporary file with the times set, renamed over
        tmp = a.with_name(".copy.tmp")
        shutil.copy2(b, tmp)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, a)
    assert a.stat().st_mtime_ns == mtime and a.stat().st_size == b.stat().st_size
    with pytest.raises(CorruptIndexError, match=a.name):
        r.refresh()
        r.search(q, k=2)
        r.get("d5")
    with pytest.raises(CorruptIndexError, match=a.name):
        r.search(q, k=2)
        r.get("d5")
    r.close()
    with pytest.raises(CorruptIndexError, match="checksum"):
        ix = SparseIndex.open(tmp_path / "a")
        ix.search(q, k=2)
        ix.get("d5")
