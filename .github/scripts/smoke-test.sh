#!/usr/bin/env bash
# Install a built wheel into a fresh virtual environment and run the user-facing checks:
# `sparsedex demo` must print "This Is Spinal Tap", and Qdrant/bm25 must give fastembed's vector.
# Usage: .github/scripts/smoke-test.sh path/to/sparsedex-*.whl   (bash; Linux, macOS, Windows)
set -euo pipefail
wheel=$1
python -m venv smoke-venv
if [ -x smoke-venv/Scripts/python.exe ]; then py=smoke-venv/Scripts/python.exe; else py=smoke-venv/bin/python; fi
"$py" -m pip install -q "$wheel"
export SPARSEDEX_PROGRESS=0 PYTHONIOENCODING=utf-8
cd "$(mktemp -d)"
"$OLDPWD/$py" -m sparsedex demo | tee demo.txt
grep -q "This Is Spinal Tap" demo.txt
"$OLDPWD/$py" -c "
from sparsedex import SparseTextEmbedding
v = next(SparseTextEmbedding('Qdrant/bm25').embed(['hello world']))
assert v.as_dict() == {613153351: 1.6832038164138794, 74040069: 1.6832038164138794}, v
print('Qdrant/bm25 ok')
"
