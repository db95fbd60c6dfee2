"""One exception family: every sparsedex error is a SparsedexError and the built-in a user expects."""

import pytest

import sparsedex
from sparsedex import SparseIndex, errors


@pytest.mark.parametrize(
    "name, builtin",
    [
        ("CorruptIndexError", Exception),
        ("ConflictError", Exception),
        ("IndexLockedError", Exception),
        ("FilterError", ValueError),
        ("PayloadError", ValueError),
        ("ModelNotAvailableError", FileNotFoundError),
        ("ProviderNotAvailableError", RuntimeError),
    ],
)
def test_every_error_is_a_sparsedex_error_and_its_builtin(name, builtin):
    cls = getattr(errors, name)
    assert getattr(sparsedex, name) is cls
    assert issubclass(cls, sparsedex.SparsedexError) and issubclass(cls, builtin)


def test_raised_errors_are_caught_by_either_base(tmp_path):
    ix = SparseIndex(None)
    ix.add([{1: 1.0}], payloads=[{"a": 1}])
    for base in (sparsedex.SparsedexError, ValueError):
        with pytest.raises(base):
            ix.search({1: 1.0}, filter={"a": {"$nope": 1}})
    with pytest.raises(sparsedex.SparsedexError):
        SparseIndex("no-such-model-anywhere")
    with pytest.raises(FileNotFoundError):
        SparseIndex("no-such-model-anywhere")
