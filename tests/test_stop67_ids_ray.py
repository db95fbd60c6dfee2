"""Stop 67, Ray: ``ShardedIndex.get`` / ``explain`` / ``delete`` of an id of the other kind
than the index's ids say so, as ``SparseIndex`` does (a bare "no document with id '1'")."""

from __future__ import annotations

import re

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'sparsedex[ray]'")

import sparsedex.ray as sdr  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_sharded_get_explain_delete_of_an_id_of_the_other_kind_say_so(tmp_path) -> None:
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             logging_level=logging.WARNING)
    try:
        rows = [{"id": i, "indices": [1 + i % 5, 7], "values": [1.0, 0.5]} for i in range(10)]
        sdr.build_shards(ray.data.from_items(rows), tmp_path / "sh", num_shards=2)
        with sdr.ShardedIndex(tmp_path / "sh") as sh:
            msg = "no document with id '3' in the index (a str; the index's ids are ints)"
            with pytest.raises(KeyError, match=re.escape(msg)):
                sh.get("3")
            with pytest.raises(KeyError, match=re.escape(msg)):
                sh.explain({7: 1.0}, "3")
            with pytest.raises(KeyError, match=re.escape(msg)):
                sh.delete(["3"])
            with pytest.raises(KeyError) as e:  # of the right kind: nothing about kinds
                sh.get(99)
            assert "the index's ids are" not in str(e.value)
            assert sh.get(3).id == 3
    finally:
        ray.shutdown()
