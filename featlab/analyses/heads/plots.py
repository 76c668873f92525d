"""Figures of the fusion heads (fusion paper Figures 3–5) as functions ``f(..., ax=None) -> ax``.

Without ``ax`` a new ``matplotlib.figure.Figure`` is made (no pyplot, no display, so nothing
depends on the interactive backend); save it with ``ax.figure.savefig("x.png")`` / ``.pdf``.
"""
from __future__ import annotations

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

HEAD_COLOURS = {"fg": "#1f77b4", "bg": "#ff7f0e", "joint": "#2ca02c", "adv": "#d62728",
                "mat-mixed": "#9467bd", "mat-parallel": "#8c564b"}
HEAD_LABELS = {"fg": "foreground", "bg": "background", "joint": "joint",
               "adv": "adversarial retraining", "mat-mixed": "mixed MAT",
               "mat-parallel": "parallel MAT"}


def _axes(ax, size=(5.0, 4.0)):
    return Figure(figsize=size).add_subplot() if ax is None else ax


def _greens(n):
    """n greens from light to dark (darker = larger alpha, as in Figure 5)."""
    return sns.light_palette("#006400", n_colors=n + 2)[2:]


def _x_value(row, x):
    if x in row:
        return row[x]
    if row.get("condition") == "clean" or row.get("parameter") in (x, ""):
        return row.get("strength", 0.0)
    return None


def _curves(rows, x):
    """{(head, alpha): sorted arrays (x, acc, lo, hi)} from evaluate-style rows."""
    acc = {}
    for r in rows:
        xv = _x_value(r, x)
        if xv is not None:
            acc.setdefault((r["head"], r.get("alpha")), []).append(
                (float(xv), r["accuracy"], r["ci_low"], r["ci_high"]))
    return {k: np.array(sorted(v)).T for k, v in acc.items()}


def plot_accuracy_curves(rows, x="sigma", ax=None):
    """Figure 3 / 4a: accuracy against perturbation strength per head, 95% Wilson bands.

    ``rows`` are dicts with ``head``, ``alpha``, ``accuracy``, ``ci_low``, ``ci_high`` and the
    strength either under key ``x`` or as ``strength`` with ``parameter == x`` (clean rows count
    as strength 0), as produced by :func:`featlab.analyses.fusion.evaluate` plus the strength.
    """
    ax = _axes(ax)
    curves = _curves(rows, x)
    order = {"fg": 0, "bg": 1, "joint": 2}
    keys = sorted(curves, key=lambda k: (order.get(k[0], 3), k[0], k[1] or 0.0))
    colours = {k: HEAD_COLOURS.get(k[0]) for k in keys}
    joints = [k for k in keys if k[0] == "joint"]
    if len(joints) > 1:
        colours.update(zip(joints, _greens(len(joints))))
    for key in keys:
        (head, alpha), (xs, acc, lo, hi) = key, curves[key]
        label = HEAD_LABELS.get(head, head) + (f" (α={alpha:g})" if len(joints) > 1 and
                                                head == "joint" else "")
        ax.plot(xs, acc, marker="o", ms=3, color=colours[key], label=label)
        ax.fill_between(xs, lo, hi, color=colours[key], alpha=0.2, linewidth=0)
    ax.set_xlabel({"sigma": "σ", "eps": "ε"}.get(x, x))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    return ax


WEIGHT_AXES = {"standardized": "mean |weight| (standardized features)",
               "raw": "mean |weight| (raw features)"}


def plot_weight_bars(fg, bg, ax=None, space="standardized"):
    """Figure 4b/d: mean |weight| from the foreground and background blocks of a joint head,
    in weight ``space`` ``standardized`` or ``raw`` (the axis says which, the title gives the
    fg/bg ratio: the two spaces can disagree on which backbone dominates)."""
    ax = _axes(ax, (3.2, 4.0))
    ax.bar(["foreground", "background"], [fg, bg],
           color=[HEAD_COLOURS["fg"], HEAD_COLOURS["bg"]], width=0.6)
    ax.set_ylabel(WEIGHT_AXES[space])
    ax.set_title(f"{space}: fg/bg = {fg / bg:.2f}" if bg else space, fontsize="small")
    return ax


def plot_alpha_sweep(rows, ax=None, x="eps"):
    """Figure 5a–b: joint-head accuracy against strength, one green per alpha (darker = larger).

    Foreground and background heads in ``rows`` are drawn for reference (dashed). With rows of
    ``{alpha, fg, bg}`` and optionally ``fg_raw, bg_raw`` (mean |weight| on standardized and
    raw features, :func:`featlab.analyses.heads.fusion.mean_abs_weights`) it draws Figure
    5c–d instead: the mean |weights| against alpha (raw ones dashed, on the right axis).
    """
    ax = _axes(ax)
    rows = list(rows)
    if rows and "accuracy" not in rows[0]:
        return _plot_weights_vs_alpha(rows, ax)
    curves = _curves(rows, x)
    alphas = sorted({a for (h, a) in curves if h == "joint"})
    for colour, alpha in zip(_greens(len(alphas)), alphas):
        xs, acc, lo, hi = curves[("joint", alpha)]
        ax.plot(xs, acc, marker="o", ms=3, color=colour, label=f"joint α={alpha:g}")
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
    for head in ("fg", "bg"):
        if (head, None) in curves:
            xs, acc = curves[(head, None)][:2]
            ax.plot(xs, acc, "--", color=HEAD_COLOURS[head], label=HEAD_LABELS[head])
    ax.set_xlabel({"sigma": "σ", "eps": "ε"}.get(x, x))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _plot_weights_vs_alpha(rows, ax):
    """Standardized mean |weights| (solid, left axis) and, when the rows carry them, raw ones
    (dashed, right axis) against alpha."""
    rows = sorted(rows, key=lambda r: r["alpha"])
    alphas = np.array([r["alpha"] for r in rows], float)
    lines = [ax.plot(alphas, [r[key] for r in rows], marker="o", color=HEAD_COLOURS[key],
                     label=f"{HEAD_LABELS[key]}, standardized")[0] for key in ("fg", "bg")]
    ax.set_ylabel(WEIGHT_AXES["standardized"])
    if all("fg_raw" in r for r in rows):
        raw = ax.twinx()
        lines += [raw.plot(alphas, [r[f"{key}_raw"] for r in rows], "--", marker="s", ms=3,
                           color=HEAD_COLOURS[key], label=f"{HEAD_LABELS[key]}, raw")[0]
                  for key in ("fg", "bg")]
        raw.set_ylabel(WEIGHT_AXES["raw"])
        raw.grid(False)
    positive = alphas[alphas > 0]
    if len(positive):
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    ax.set_xlabel("α (paper's scale)")
    ax.legend(handles=lines, frameon=False, fontsize="x-small")
    return ax
