"""Shared CLI helpers: output locations and writing results."""
from __future__ import annotations

import json
import os

import click
import numpy as np

from ..utils.paths import atomic_write_text, default_analyses_dir


def output_dir(store_path: str, command: str, out=None) -> str:
    """``--out`` or ``analyses/<store name>/<command>/``."""
    folder = out or os.path.join(default_analyses_dir(),
                                 os.path.basename(os.path.abspath(store_path)), command)
    os.makedirs(folder, exist_ok=True)
    return folder


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def write_json(path: str, payload) -> str:
    atomic_write_text(path, json.dumps(payload, indent=2, default=_default, allow_nan=True))
    return path


def save_figure(fig, stem: str) -> list[str]:
    paths = [f"{stem}.png", f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata=None)
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


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
    return str(value)
