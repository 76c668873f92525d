"""Shared CLI helpers: printing tables (results are written by the library functions)."""
from __future__ import annotations

import click


def echo_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows as an aligned text table."""
    text = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) if text else len(c)
              for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for t in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(t, widths)))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if value is None:
        return "-"
    return str(value)


def echo_outputs(result: dict) -> None:
    """The line every analysis command ends with: its figures and its JSON."""
    figures = ", ".join(result.get("figures", [])) or "(none)"
    click.echo(f"figures {figures}; results {result.get('json', '(not written)')}")


def _writable_json(ctx, param, value):
    """A ``--json`` file that cannot be written is refused before any work."""
    if value:
        from ..utils.paths import check_output_file

        check_output_file(value, "--json")
    return value


def json_option(func):
    """``--json PATH``: also write the results there (they always go to ``--out`` too)."""
    return click.option("--json", "json_out", default=None, callback=_writable_json,
                        help="Also write the results to this JSON file.")(func)


def also_json(result: dict, json_out) -> dict:
    """Write ``result`` to ``json_out`` too when given (and report that path)."""
    if json_out:
        from ..utils.results import write_json

        result["json"] = write_json(json_out, result, what="--json")
    return result
