"""The robustness table as a heatmap: R per classifier (rows) and perturbation (columns)."""
from __future__ import annotations

import numpy as np


def column_label(result: dict, column: str) -> str:
    """A column's name, `` (stale)`` added when its conditions were made against a head
    refit since (its R scores an attack on a head that is no longer the stored one)."""
    stale = any(result["stale"].get(k) for k in result["columns"][column])
    return f"{column} (stale)" if stale else column


def plot_robustness(result: dict, ax):
    """Heatmap of R (0 to 1.2), each cell annotated with R and its +/- mark; returns ``ax``.

    Parameters
    ----------
    result : dict — :func:`featlab.analyses.robustness.run.robustness` output
    ax : matplotlib Axes
    """
    columns = list(result["columns"])
    rows = result["rows"]
    values = np.array([[r["scores"][c]["R"] for c in columns] for r in rows], dtype=float)
    image = ax.imshow(values, vmin=0.0, vmax=1.2, cmap="viridis", aspect="auto")
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            score = row["scores"][column]
            ax.text(j, i, f"{score['R']:.2f}{score['sign']}", ha="center", va="center",
                    fontsize=7, color="white" if score["R"] < 0.7 else "black")
    ax.set_xticks(range(len(columns)),
                  [column_label(result, c).replace("corrupt:name=", "") for c in columns],
                  rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['classifier']} ({r['clean']:.2f})" for r in rows],
                  fontsize=7)
    ax.set_title(f"R = A/A_clean, subset {result['subset']}; +/- vs {result['reference']} "
                 f"(95 % paired bootstrap)", fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.03)
    return ax
