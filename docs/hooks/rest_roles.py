"""MkDocs hook: the reST cross-reference roles of featlab's docstrings render as code.

The docstrings are numpydoc with Sphinx roles (``:func:`~.stats.verdict```,
``:mod:`featlab.store.layout```). The API reference renders them as Markdown, where a role
would print its colons and backticks; this preprocessor, added to every page's Markdown (the
docstrings' included), turns each role into a code span of its target, shortened to the last
name where the role says ``~`` or the target is relative (``.stats.verdict``). Lines inside
fenced code blocks are left alone.
"""
from __future__ import annotations

import re

from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc):`(~?)"
                  r"([^`\s]+(?:\n\s*[^`\s]+)?)`")  # a dotted name, maybe wrapped once


def _target(match) -> str:
    short, target = match.groups()
    target = re.sub(r"\s+", "", target)  # a role may wrap across docstring lines
    if short or target.startswith("."):
        target = target.lstrip(".").split(".")[-1]
    return f"`{target}`"


def replace_roles(lines):
    """``lines`` with every reST role outside fences written as a code span."""
    out, prose, fenced = [], [], False

    def flush():
        if prose:
            out.extend(ROLE.sub(_target, "\n".join(prose)).split("\n"))
            prose.clear()

    for line in lines:
        if line.lstrip().startswith(("```", "~~~")):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(line)
        else:
            prose.append(line)
    flush()
    return out


class _Roles(Preprocessor):
    def run(self, lines):
        return replace_roles(lines)


class RestRoles(Extension):
    """Registers the role preprocessor before any block parsing."""

    def extendMarkdown(self, md):
        md.preprocessors.register(_Roles(md), "featlab_rest_roles", 35)


def on_config(config, **kwargs):
    """MkDocs event: add the extension to every page's Markdown."""
    config.markdown_extensions.append(RestRoles())
    return config
