"""Figures without pyplot: build them on :class:`matplotlib.figure.Figure`, save PNG + PDF.

No ``matplotlib.use`` and no pyplot state anywhere in featlab, so importing it never
switches a notebook's backend and figures are garbage-collected like any object.
"""
from __future__ import annotations

import os

from matplotlib.figure import Figure

from .paths import output_errors


def new_figure(n_panels: int = 1, *, cols: int = 3, size=(5.5, 4.2)):
    """A figure with ``n_panels`` axes on a grid of at most ``cols`` columns.

    Returns
    -------
    (Figure, list of Axes) — unused grid cells are hidden.
    """
    cols = max(1, min(cols, n_panels))
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def save_figure(fig, stem: str) -> list[str]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf`` (no timestamps: same bytes for the same
    figure); returns the two paths. A failed write is one line naming the file."""
    fig.tight_layout()
    paths = [f"{stem}.png", f"{stem}.pdf"]
    with output_errors(paths[0]):
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    with output_errors(paths[1]):
        fig.savefig(paths[1], bbox_inches="tight",
                    metadata={"CreationDate": None, "Producer": None})
    return paths


def slug(text: str) -> str:
    """A condition key as a file-name part: ``blur:sigma=5`` -> ``blur_sigma-5``."""
    return text.replace(":", "_").replace("=", "-").replace("/", "-")
