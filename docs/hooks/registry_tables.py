"""MkDocs hook: the reference tables are built from featlab's registries at build time.

A page holds a marker, alone on its line, that the build replaces, so a new registry entry
(or a new parameter, or a changed docstring) appears in the site without editing a page:

    <!-- featlab:registry NAME -->   a table of one registry, NAME one of TABLES
    <!-- featlab:api -->             one mkdocstrings block per name of featlab's Python API

Each row takes the first paragraph of the entry's docstring; condition rows list every
declared parameter (:class:`featlab.params.Param`) with its default and help. A marker with
an unknown name fails the build (``mkdocs build --strict`` in the test suite).
"""
from __future__ import annotations

import inspect
import re
from importlib import import_module

MARKER = re.compile(r"^<!-- featlab:(registry|api)\s*([\w-]*)\s*-->$", re.MULTILINE)


def first_paragraph(obj) -> str:
    """The first paragraph of ``obj``'s docstring on one line, reST roles as code spans."""
    text = (inspect.getdoc(obj) or "").split("\n\n")[0]
    text = " ".join(line.strip() for line in text.splitlines())
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _cell(text: str) -> str:
    """Plain text as one Markdown table cell: no line breaks, no markup."""
    text = str(text).replace("\n", " ").replace("<", "&lt;")
    return re.sub(r"([|*_`\\])", r"\\\1", text)


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _options(func) -> str:
    """Keyword options of a loader: ``name=default``, without the root and catch-alls."""
    skip = {"root", "name"}
    shown = [f"`{p.name}={p.default!r}`" for p in inspect.signature(func).parameters.values()
             if p.name not in skip and p.kind is p.KEYWORD_ONLY]
    return ", ".join(shown) or "the COCO loader's (same keywords)"


def _param(param) -> str:
    if param.required:
        default = "required"
    elif param.default in (None, ""):
        default = "default: none"
    else:
        default = f"default `{param.default}`"
    choices = f"; one of {', '.join(f'`{c}`' for c in param.choices)}" if param.choices else ""
    multi = "; several values allowed" if param.multi else ""
    help_ = f": {_cell(param.help)}" if param.help else ""
    return f"`{param.name}` ({default}{choices}{multi}){help_}"


def datasets_table() -> str:
    from featlab.data.registry import DATASETS

    rows = [[f"`{name}`", first_paragraph(DATASETS.get(name)), _options(DATASETS.get(name))]
            for name in DATASETS.names()]
    return _table(["`--dataset`", "what", "options (Python keywords)"], rows)


def backbones_table() -> str:
    from featlab.backbones.registry import BACKBONES

    rows = [[f"`{name}`", first_paragraph(BACKBONES.get(name)),
             f"`{BACKBONES.get(name).__module__}`"] for name in BACKBONES.names()]
    return _table(["`--backbones`", "what", "module"], rows)


def conditions_table() -> str:
    from featlab.perturbations import PERTURBATIONS
    from featlab.probes import PROBES

    rows = []
    for family, registry in (("perturbation", PERTURBATIONS), ("probe set", PROBES)):
        for name in registry.names():
            cls = registry.get(name)
            params = "<br>".join(_param(p) for p in cls.params) or "—"
            rows.append([f"`{name}`", family, first_paragraph(cls), params])
    return _table(["condition", "family", "what", "parameters"], rows)


def heads_table() -> str:
    from featlab.analyses.heads.robust import HEAD_RECIPES

    rows = [[f"`{name}`", f"`fit-head --recipe {name}`", first_paragraph(HEAD_RECIPES.get(name))]
            for name in HEAD_RECIPES.names()]
    return _table(["head recipe", "command", "what"], rows)


def head_types_table() -> str:
    from featlab.heads import HEADS

    rows = [[f"`{name}`", f"`fit-head --head {name}`", first_paragraph(HEADS.get(name)),
             f"`{HEADS.get(name).__module__}`"] for name in HEADS.names()]
    return _table(["head type", "command", "what", "module"], rows)


def analyses_table() -> str:
    import featlab
    from featlab.analyses import ANALYSES

    rows = []
    for name in ANALYSES.names():
        api = name.replace("-", "_")
        python = f"`featlab.{api}`" if api in featlab.__all__ else "—"
        rows.append([f"`featlab {name}`", python, first_paragraph(ANALYSES.get(name))])
    return _table(["command", "Python", "what"], rows)


def recipes_table() -> str:
    from featlab.training.recipes import TRAIN_RECIPES

    rows = [[f"`{name}`", first_paragraph(TRAIN_RECIPES.get(name))]
            for name in TRAIN_RECIPES.names()]
    return _table(["`featlab train --recipe`", "what"], rows)


TABLES = {"datasets": datasets_table, "backbones": backbones_table,
          "conditions": conditions_table, "heads": heads_table, "head-types": head_types_table,
          "analyses": analyses_table, "recipes": recipes_table}


def api_blocks() -> str:
    """One section per name of ``featlab.__all__`` (the lazy API), documented where it lives."""
    import featlab

    blocks = []
    for name, module in featlab._API.items():
        obj = getattr(import_module(module), name)  # a name whose module is gone fails here
        target = f"{obj.__module__}.{obj.__qualname__}"
        blocks.append(f"## `featlab.{name}`\n\n::: {target}\n")
    return "\n".join(blocks)


def expand(markdown: str) -> str:
    """``markdown`` with every marker replaced by its generated Markdown."""
    def replace(match):
        kind, name = match.groups()
        if kind == "api":
            return api_blocks()
        if name not in TABLES:
            raise ValueError(f"unknown registry table {name!r}; known: {', '.join(TABLES)}")
        return TABLES[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    """MkDocs event: expand the markers of every page."""
    return expand(markdown)
