"""Bounded fuzzing runs of the on-disk readers (slow; run with `pytest -m slow tests/test_fuzz.py`).

- the atheris harness `tests/fuzz/fuzz_open.py`, every target, seeded from the committed seeds;
- the cargo-fuzz target `index_open` in rust/fuzz, if `cargo +nightly fuzz` is available.

New corpus entries and crash artifacts go to a temporary directory, never into the tree.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "fuzz" / "fuzz_open.py"
FUZZ_CRATE = ROOT / "rust" / "fuzz"
SECONDS = 60

pytestmark = pytest.mark.slow


def _atheris_targets() -> list[str]:
    """The harness's target names (the keys of its TARGETS), read without importing atheris."""
    return re.findall(r'^    "(\w+)": Target\(', HARNESS.read_text(), re.MULTILINE)


@pytest.mark.parametrize("target", _atheris_targets())
def test_atheris_harness(target: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install 'sparsedex[fuzz]')")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            target,
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS * 3 + 120,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"fuzzing {target} failed (exit {proc.returncode}):\n{tail}"
    assert "Done " in tail, tail
    assert not list(tmp_path.glob("crash-*")), tail


def _cargo_fuzz_available() -> str | None:
    """None if `cargo +nightly fuzz` runs here, else why not."""
    if shutil.which("cargo") is None:
        return "cargo is not on PATH"
    try:
        r = subprocess.run(["cargo", "+nightly", "fuzz", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cargo +nightly fuzz does not run ({e})"
    if r.returncode != 0:
        return f"cargo +nightly fuzz is not available (install a nightly toolchain and `cargo install cargo-fuzz`): {r.stderr.strip()[:200]}"
    return None


def test_cargo_fuzz_index_open(tmp_path: Path) -> None:
    why = _cargo_fuzz_available()
    if why is not None:
        pytest.skip(why)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            "cargo",
            "+nightly",
            "fuzz",
            "run",
            "--fuzz-dir",
            ".",
            "index_open",
            str(corpus),
            str(FUZZ_CRATE / "corpus" / "index_open"),
            "--",
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=FUZZ_CRATE,
        capture_output=True,
        text=True,
        # The first run builds the target (nightly, sanitizers): allow for it.
        timeout=SECONDS + 1800,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"cargo fuzz run index_open failed (exit {proc.returncode}):\n{tail}"
    assert not list(tmp_path.glob("crash-*")), tail
