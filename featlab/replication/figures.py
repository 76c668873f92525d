"""Forest plots: per claim, one panel per claim row, one line per seed (its effect and 95 %
interval, coloured by the seed's own verdict) and the pooled random-effects diamond."""
from __future__ import annotations

import os
import textwrap

from ..utils.figures import new_figure, save_figure

COLOURS = {"yes": "#2a7d2a", "no": "#b22222", "inconclusive": "#777777"}


def forest(ax, row: dict):
    """Draw ``row`` (a row of :func:`.pool.pool`) on ``ax``; returns ``ax``."""
    seeds = row["seeds"]
    for i, s in enumerate(seeds):
        y = len(seeds) - i
        colour = COLOURS.get(s["verdict"], "#777777")
        if s["low"] is not None and s["high"] is not None:
            ax.plot([s["low"], s["high"]], [y, y], color=colour, lw=1.6)
        if s["effect"] is not None:
            ax.plot([s["effect"]], [y], "s", color=colour, ms=4)
    pooled = row["pooled"]
    if pooled is not None:
        e, lo, hi = pooled["effect"], pooled["low"], pooled["high"]
        ax.fill([lo, e, hi, e], [0, 0.3, 0, -0.3], color=COLOURS[row["verdict"]], alpha=0.85)
    ax.axvline(row["reference"], color="#333333", lw=0.8, ls="--")
    if row["direction"] == "within" and row["margin"] > 0:
        ax.axvspan(row["reference"] - row["margin"], row["reference"] + row["margin"],
                   color="#4c72b0", alpha=0.12, lw=0)
    ax.set_yticks([len(seeds) - i for i in range(len(seeds))] + [0])
    ax.set_yticklabels([f"seed {s['seed']}" + (" (no interval)" if s["seed"] in row["excluded"]
                                                else "") for s in seeds] + ["pooled"], fontsize=7)
    ax.set_ylim(-0.8, len(seeds) + 0.8)
    tau = "" if pooled is None else f"; tau2 {pooled['tau2']:.2g}, I2 {pooled['i2']:.0%}"
    ax.set_title(textwrap.fill(row["claim"], 48) + f"\n[{row['verdict']}, {row['agree']}/"
                 f"{len(seeds)} seeds agree{tau}]", fontsize=7.5)
    ax.tick_params(axis="x", labelsize=7)
    return ax


def forest_figures(pooled: dict, out_dir: str) -> dict:
    """One figure per claim id (PNG + PDF) under ``out_dir/figures/``; ``{id: [paths]}``."""
    out = {}
    for cid in pooled["claims"]:
        rows = [r for r in pooled["rows"] if r["id"] == cid]
        fig, axes = new_figure(len(rows), cols=3, size=(4.2, 0.9 + 0.32 * (len(pooled["seeds"])
                                                                            + 3)))
        for ax, row in zip(axes, rows):
            forest(ax, row)
        fig.suptitle(f"claim {cid}: per seed and pooled (DerSimonian-Laird 95 %)", fontsize=9)
        out[cid] = save_figure(fig, os.path.join(out_dir, "figures", f"forest-claim-{cid}"))
    return out
