"""``python -m sparsedex``: the command line (see :mod:`sparsedex.cli`)."""

import sys

from .cli import main

sys.exit(main())
