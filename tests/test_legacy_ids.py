"""sparsedex 0.1 directories: the upgrade carries the next automatic integer id, so that new
documents never get the id of a document deleted in 0.1 (see sparsedex._legacy)."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from sparsedex import CorruptIndexError, SparseIndex, _legacy
from sparsedex._legacy import is_legacy

SRC = Path(__file__).resolve().parent / "data" / "bm25-index-v0.1"


def _reframe(magic: bytes, obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return magic + struct.pack("<IQ", zlib.crc32(body), len(body)) + body


def _int_ids_copy(tmp_path: Path, next_int_id: int) -> Path:
    """The 0.1 fixture with integer ids 0..5 and a manifest whose next_int_id is above them
    (as after deleting documents with larger ids): a directory 0.1 itself would have written."""
    p = tmp_path / "old"
    shutil.copytree(SRC, p)
    docs = json.loads(_legacy._unframe(p / "seg-000001.docs", b"SDXDOCS1", (p / "seg-000001.docs").read_bytes()))
    docs["ids"] = list(range(len(docs["ids"])))
    raw = _reframe(b"SDXDOCS1", docs)
    (p / "seg-000001.docs").write_bytes(raw)
    mp = p / "manifest-000002.json"
    man = json.loads(_legacy._unframe(mp, b"SDXMANI1", mp.read_bytes()))
    man["next_int_id"] = next_int_id
    man["segments"][0]["docs"].update(size=len(raw), crc32=zlib.crc32(raw))
    mp.write_bytes(_reframe(b"SDXMANI1", man))
    return p


def test_the_upgrade_keeps_the_next_integer_id(tmp_path):
    # ids 6..99 were used by documents deleted in 0.1: new documents must not get them again
    p = _int_ids_copy(tmp_path, next_int_id=100)
    r = SparseIndex.open(p)
    assert sorted(r.ids()) == list(range(6))
    r.close()
    ix = SparseIndex.open(p)
    ix.add(["a new document"])  # the first write upgrades the directory
    ix.commit()
    assert is_legacy(p) is False
    assert sorted(ix.ids()) == [0, 1, 2, 3, 4, 5, 100]
    ix.close()
    again = SparseIndex.open(p)
    again.add(["one more"])
    again.commit()
    assert sorted(again.ids()) == [0, 1, 2, 3, 4, 5, 100, 101]
    again.close()


def test_a_malformed_next_integer_id_is_a_corrupt_index(tmp_path):
    p = _int_ids_copy(tmp_path, next_int_id=-1)
    with pytest.raises(CorruptIndexError, match="next_int_id"):
        SparseIndex.open(p)
