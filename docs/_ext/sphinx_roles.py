"""A griffe extension for the docs build: the docstrings' Sphinx roles as Markdown code.

The package's docstrings use reST conventions (``:class:`~sparsedex.Hit```, ``text::`` before
a literal block), which Markdown would print as they are. This turns a role into inline code
with the name as Sphinx would show it (``~a.b.C`` shows ``C``) and ``text::`` into ``text:``,
before mkdocstrings renders the docstring. Used by mkdocs.yml only; not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(\S)::$", re.MULTILINE)


def _role(m: re.Match[str]) -> str:
    tilde, target = m.group(1), m.group(2).strip()
    shown = target.rsplit(".", 1)[-1] if tilde else target
    return f"`{shown}`"


def convert(text: str) -> str:
    """The docstring with roles as inline code and ``::`` literal markers as ``:``."""
    return _LITERAL.sub(r"\1:", _ROLE.sub(_role, text))


class SphinxRoles(Extension):
    """Rewrite every docstring as it is loaded."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
