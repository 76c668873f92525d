"""Figures of the robust heads as functions ``f(..., ax=None) -> ax``: the average accuracy
over the strength range (MAT Table 1) and the accuracy matrix A of the strength selection
(MAT Section 4.3). Accuracy against strength is :func:`.plots.plot_accuracy_curves`."""
from __future__ import annotations

import numpy as np

from .plots import HEAD_COLOURS, HEAD_LABELS, _axes, _greens


def _label(row):
    label = HEAD_LABELS.get(row["head"], row["head"])
    return label if row.get("alpha") is None else f"{label} α={row['alpha']:g}"


def plot_range_bars(table, ax=None):
    """MAT Table 1: average accuracy over the strength range per head, 95% bootstrap bars.

    ``table``: rows ``{head, alpha, mean, ci_low, ci_high}`` (:func:`.scoring.range_table`).
    """
    ax = _axes(ax, (5.0, 4.0))
    table = list(table)
    joints = [r for r in table if r["head"] == "joint"]
    greens = dict(zip([id(r) for r in joints], _greens(len(joints))))
    means = np.array([r["mean"] for r in table])
    err = np.array([[r["mean"] - r["ci_low"] for r in table],
                    [r["ci_high"] - r["mean"] for r in table]])
    colours = [greens.get(id(r), HEAD_COLOURS.get(r["head"], "grey")) for r in table]
    ypos = np.arange(len(table))[::-1]
    ax.barh(ypos, means, xerr=err, color=colours, height=0.7, capsize=2)
    ax.set_yticks(ypos, [_label(r) for r in table], fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean accuracy over the strength range")
    return ax


def plot_accuracy_matrix(A, rows, columns, chosen=(), ax=None, param="ε"):
    """Heatmap of the accuracy matrix A (rows: training strength, columns: tested strength);
    the rows of the ``chosen`` strengths are marked."""
    ax = _axes(ax, (5.0, 4.0))
    A = np.asarray(A, float)
    image = ax.imshow(A, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label="validation accuracy")
    ax.set_xticks(range(len(columns)), [f"{c:g}" for c in columns], fontsize="small")
    ax.set_yticks(range(len(rows)), [f"{r:g}" + (" *" if r in chosen else "") for r in rows],
                  fontsize="small")
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            ax.text(j, i, f"{A[i, j]:.2f}", ha="center", va="center", fontsize="x-small",
                    color="white" if A[i, j] < 0.6 else "black")
    ax.set_xlabel(f"tested {param}")
    ax.set_ylabel(f"training {param} (* chosen)")
    return ax
