"""Figures of ``fit-head`` with robust heads: one accuracy-vs-strength figure per subset with
the alpha sweep, adversarial retraining and the MAT heads together (fusion paper Figure 5,
MAT paper Figure 4) beside their average over the strength range (MAT Table 1), and the
heatmap of the accuracy matrix A when the strengths were chosen by the random walk."""
from __future__ import annotations

import os

from ...utils.figures import new_figure, save_figure
from .plots import plot_accuracy_curves
from .robust_plots import plot_accuracy_matrix, plot_range_bars

SYMBOLS = {"eps": "ε", "sigma": "σ"}


def robust_figures(result: dict, out_dir: str) -> list[str]:
    """Write the robust figures of a :func:`~.run.fit_head` result; [] without robust heads."""
    span = result.get("range")
    if not span or not span["table"]:
        return []
    subset, paths = result["subset"], []
    rows = [r for r in result["rows"] if r["family"] in (span["family"], "clean")]
    param = next((r["parameter"] for r in rows if r["parameter"]), "eps")
    fig, axes = new_figure(2, cols=2, size=(5.5, 4.2))
    plot_accuracy_curves(rows, x=param, ax=axes[0])
    axes[0].set_title(f"{span['family']} — {subset}", fontsize="small")
    plot_range_bars(span["table"], ax=axes[1])
    axes[1].set_title(f"average over {param} in [{min(span['strengths']):g}, "
                      f"{max(span['strengths']):g}] (95% bootstrap)", fontsize="small")
    paths += save_figure(fig, os.path.join(out_dir, f"robust-{subset}"))
    selection = result["robust"].get("strengths", {}).get("selection", {})
    if selection.get("method") == "random-walk":
        fig, axes = new_figure(1, size=(5.5, 4.2))
        plot_accuracy_matrix(selection["A"], selection["rows"], selection["columns"],
                             chosen=selection["strengths"], ax=axes[0],
                             param=SYMBOLS.get(param, param))
        axes[0].set_title(f"accuracy matrix A (validation) — {subset}", fontsize="small")
        paths += save_figure(fig, os.path.join(out_dir, f"strengths-A-{subset}"))
    return paths
