"""Stop 63: open items of earlier stops. The CLI refuses an empty field name as a usage error;
algorithm names are matched case-insensitively, as README says."""

import numpy as np
import pytest

from sparsedex import SparseIndex
from sparsedex.cli import main


@pytest.mark.parametrize("flag", ["--id-field=", "--text-field="])
def test_empty_field_name_is_a_usage_error(capsys, tmp_path, flag):
    # "--id-field=" exited 1 with "no '' field" after reading the corpus (stop 62's open item)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n')
    with pytest.raises(SystemExit) as e:
        main(["index", str(corpus), str(tmp_path / "ix"), "--encoder", "bm25", flag])
    assert e.value.code == 2
    assert f"argument {flag[:-1]}: empty: name a JSON field" in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def test_algorithm_names_are_case_insensitive():
    ix = SparseIndex(encoder=None)
    ix.add([(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32))] * 3, ids=[1, 2, 3])
    want = ix.search(([2], [1.0]), k=2, algorithm="exhaustive")
    for name in ("AUTO", "Exhaustive", "BMP", "Taat-MaxScore"):
        assert ix.search(([2], [1.0]), k=2, algorithm=name) == want
    with pytest.raises(ValueError, match="algorithm"):
        ix.search(([2], [1.0]), k=2, algorithm="fastest")
