import os
from pathlib import Path

import pytest

# The shared data (../shared beside the repository), or where SPARSEDEX_SHARED says (a checkout
# elsewhere, such as a git worktree; without it the tests that need the data skip)
SHARED = Path(os.environ.get("SPARSEDEX_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not there")
    return SHARED


os.environ.setdefault("HF_HUB_OFFLINE", "1")
