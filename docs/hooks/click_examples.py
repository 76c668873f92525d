"""MkDocs hook: the examples in the click commands' help render as code blocks.

featlab's commands keep their example lines from being re-wrapped with click's ``\\b``
marker. mkdocs-click drops that marker when it copies the help text into the page, and the
example lines would then run together into one paragraph. This hook reads, from the click
commands themselves, the first line of every ``\\b`` paragraph, and a Markdown preprocessor
that runs right after mkdocs-click's (priority 141) fences each paragraph starting with one
of those lines as a ``text`` block, as ``featlab <command> --help`` prints it. Lines inside
existing fences are left alone.
"""
from __future__ import annotations

import inspect

from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

NO_REWRAP = "\b"


def example_starts() -> set:
    """First lines of the no-rewrap (``\\b``) paragraphs of every featlab command's help."""
    import click

    from featlab.cli.main import cli

    def walk(command, ctx):
        yield command
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), ctx)

    starts = set()
    for command in walk(cli, click.Context(cli)):
        lines = inspect.cleandoc(command.help or "").splitlines()
        starts.update(lines[i + 1].strip() for i, line in enumerate(lines[:-1])
                      if line.strip() == NO_REWRAP)
    return starts


def fence_examples(lines, starts):
    """``lines`` with each paragraph whose first line is in ``starts`` fenced as ``text``."""
    out, example, fenced, previous = [], False, False, ""
    for line in lines:
        if line.lstrip().startswith(("```", "~~~")) and not example:
            fenced = not fenced
        if example and not line.strip():
            out.append("```")
            example = False
        elif not fenced and not example and not previous.strip() and line.strip() in starts:
            out.append("```text")
            example = True
        out.append(line)
        previous = line
    return out + (["```"] if example else [])


class _Fence(Preprocessor):
    def __init__(self, md, starts):
        super().__init__(md)
        self.starts = starts

    def run(self, lines):
        return fence_examples(lines, self.starts)


class ClickExamples(Extension):
    """Registers the fencing preprocessor after mkdocs-click's."""

    def __init__(self, starts):
        super().__init__()
        self.starts = starts

    def extendMarkdown(self, md):
        md.preprocessors.register(_Fence(md, self.starts), "featlab_click_examples", 140)


def on_config(config, **kwargs):
    """MkDocs event: add the extension to every page's Markdown."""
    config.markdown_extensions.append(ClickExamples(example_starts()))
    return config
