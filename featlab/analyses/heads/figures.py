"""Figures of ``fit-head`` results: Figure 3/4a curves per perturbation family, Figure 4b
weights (standardized and raw), Figure 5 alpha sweep (accuracy and weights against alpha, alpha
on the paper's scale)."""
from __future__ import annotations

import os

from ...utils.figures import new_figure, save_figure
from .plots import plot_accuracy_curves, plot_alpha_sweep, plot_weight_bars


def _families(rows) -> dict:
    families: dict = {}
    for row in rows:
        if row["family"] != "clean":
            families.setdefault(row["family"], row["parameter"])
    return families


def heads_figures(result: dict, out_dir: str) -> list[str]:
    """Write every figure of a :func:`~featlab.analyses.heads.run.fit_head` result."""
    paths, subset = [], result["subset"]
    for family, parameter in _families(result["rows"]).items():
        rows = [r for r in result["rows"] if r["family"] in (family, "clean")]
        fig, axes = new_figure(2, cols=2, size=(5.25, 4.0))
        plot_accuracy_curves([r for r in rows if r["alpha"] in (None, result["alphas"][0])],
                             x=parameter, ax=axes[0])
        axes[0].set_title(f"{family} — {subset}")
        plot_alpha_sweep(rows, ax=axes[1], x=parameter)
        axes[1].set_title(f"joint head per α (paper's scale) — {subset}")
        slug = family.replace(":", "_").replace("=", "-")
        paths += save_figure(fig, os.path.join(out_dir, f"accuracy-{slug}-{subset}"))
    fig, axes = new_figure(3, cols=3, size=(4.0, 3.6))
    first = result["weights"][0]
    for ax, space, suffix in zip(axes, ("standardized", "raw"), ("", "_raw")):
        plot_weight_bars(first["fg" + suffix], first["bg" + suffix], ax=ax, space=space)
        ax.set_title(f"joint α={first['alpha']:g}: {ax.get_title()}", fontsize="small")
    plot_alpha_sweep(result["weights"], ax=axes[2])
    paths += save_figure(fig, os.path.join(out_dir, f"weights-{subset}"))
    return paths
