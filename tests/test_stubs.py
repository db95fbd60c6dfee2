"""The hand-written stubs of the native module match it (mypy's stubtest)."""

import subprocess
import sys

import pytest


def test_core_stubs_match_the_module():
    pytest.importorskip("mypy")
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "sparsedex._core"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
