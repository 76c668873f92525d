"""The fusion paper's Figures 2-5, measured on the stores (``pca-shift`` and ``fit-head``).

Each function takes the report :class:`~.context.Context` and one store and returns the
section's items (figures and tables, each captioned with what featlab measured), or raises
:class:`~.context.Missing` with the command that would produce the data.
"""
from __future__ import annotations

import numpy as np

from ..analyses.heads.plots import plot_accuracy_curves, plot_alpha_sweep, plot_weight_bars
from ..analyses.heads.scoring import bootstrap_mean
from ..analyses.shift.plots import plot_pca_shift
from ..analyses.shift.run import pca_shift
from ..analyses.shift.subspace import project
from ..backbones.roles import fg_bg
from ..utils.figures import new_figure
from ..utils.results import write_json
from .context import Missing, save_png
from .formats import acc_row, ci, figure, strength, table

FUSION_HEADS = ("fg", "bg", "joint")
BLUR = "clean,blur:sigma=1:2:5:10:region=object"
FGSM = "fgsm:eps=0.01:0.03:0.1:0.3:target=fg"


def _blur(ctx, store):
    found = ctx.family(store, "blur")
    if not found:
        raise Missing(f"{ctx.name(store)} has no blur condition", ctx.hint(store, BLUR))
    return found


def _fgsm(ctx, store):
    found = ctx.family(store, "fgsm")
    if not found or not any(s > 0 for s in found[1]):
        raise Missing(f"{ctx.name(store)} has no FGSM condition (attacks need heads: "
                      f"featlab fit-head --store {store.path} first)", ctx.hint(store, FGSM))
    return found


def _png(fig, ctx, store, name) -> str:
    return save_png(fig, ctx, store, name)


def _pairs(store, backbone, key, split="test"):
    """Clean and perturbed features of the same valid rows, and their labels (as pca-shift)."""
    clean = store.read(backbone=backbone, layer="penultimate", split=split)
    pert = store.read(backbone=backbone, layer="penultimate", condition=key, split=split)
    ok = (store.valid("clean", split=split) & store.valid(key, split=split)
          & np.isfinite(clean).all(1) & np.isfinite(pert).all(1))
    return clean[ok], pert[ok], store.labels(split=split)[ok]


def figure2(ctx, store):
    """Figure 2: clean vs blurred features in the clean PCA plane, every class shown."""
    label, by_strength = _blur(ctx, store)
    sigma = min((s for s in by_strength if s > 0), key=lambda s: (abs(s - 5), s))
    key = by_strength[sigma]
    result = pca_shift(store, condition=key, seed=ctx.seed)
    write_json(ctx.path(store, "pca-shift.json"), result)
    fg, bg = fg_bg(store.backbone_meta, where=f"store {store.path}")
    fig, axes = new_figure(2, cols=2, size=(5.6, 5.0))
    lines, shown = [], []
    for ax, name, role in zip(axes, (fg, bg), ("object network", "scene network")):
        clean, pert, labels = _pairs(store, name, key)
        plot_pca_shift(*project(clean, pert), labels, class_names=store.classes(), ax=ax,
                       title=f"{role}: {name}\nclean (small) vs σ={sigma:g} (large)")
        n = len(np.unique(labels))
        shown.append(n)
        ax.legend(title=f"all {n} classes", fontsize="x-small", title_fontsize="small",
                  ncol=1 if n <= 8 else 2, frameon=False, markerscale=1.5,
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
        stats = result["backbones"][name]
        shifts = np.array([s for s in stats["centroid_shift"] if np.isfinite(s)])
        boot = bootstrap_mean(shifts[:, None], n_boot=ctx.n_boot, seed=ctx.seed)
        moved = ci(boot["mean"], boot["ci_low"], boot["ci_high"])
        lines.append(f"{role} ({name}): class centroids moved {moved} within-class spreads "
                     f"(95 % bootstrap over {len(shifts)} classes); "
                     f"{100 * stats['outside_fraction']:.0f} % of the per-image displacement "
                     f"lies outside the clean top-{stats['k']} subspace; sign-flip test of a "
                     f"zero mean shift p = {stats['p_value']:.3g} (n = {stats['n']} test images)"
                     + _centroid(stats.get("pca_centroid_shift"))
                     + _membership(stats.get("membership")))
    caption = (f"Condition {key}; legend: all {max(shown)} classes of the test split. "
               + "; ".join(lines) + ".")
    return [figure(_png(fig, ctx, store, "fusion-figure-2"), caption)]


def _centroid(test) -> str:
    """The class-centroid shift in the clean PCA coordinates (decides the Section 3.1 claim)."""
    if not test:
        return ""
    return (f"; class centroids moved {ci(test['shift'], test['low'], test['high'])} "
            f"within-class SDs in the clean train top-{test['k']} PCA coordinates (Mahalanobis, "
            f"bootstrap over test images; margin ±{test['margin']:g}: moved {test['moved']}, "
            f"stays {test['stays']})")


def _membership(test) -> str:
    """The subspace-membership test of pca-shift (the Section 3.1 claim), when it ran."""
    if not test:
        return ""
    ratio = ci(test["ratio"], test["ratio_low"], test["ratio_high"])
    return (f"; median residual outside the clean train top-{test['k']} subspace, blurred / "
            f"clean: {ratio} (paired bootstrap), stays inside at tolerance "
            f"{test['tolerance']:g}: {test['stays_inside']}")


def _heads_rows(result, label, alpha):
    return [r for r in result["rows"] if r["family"] in (label, "clean")
            and r["head"] in FUSION_HEADS and r["alpha"] in (None, alpha)]


def _strength_table(rows, param, heads=FUSION_HEADS, prefix=()):
    """Rows: strength; columns: accuracy [95 % Wilson] per head, and joint - fg."""
    by = {}
    for r in rows:
        by.setdefault(r["strength"], {})[r["head"]] = r
    out = []
    for s in sorted(by):
        cells = [acc_row(by[s][h]) if h in by[s] else "n/a" for h in heads]
        gain = (f"{by[s]['joint']['accuracy'] - by[s]['fg']['accuracy']:+.2f}"
                if {"joint", "fg"} <= set(by[s]) else "n/a")
        out.append([*prefix, strength(param, s), *cells, gain])
    return out


def figure3(ctx, store):
    """Figure 3a/c/d: accuracy against blur sigma per head, one panel per subset."""
    label, _ = _blur(ctx, store)
    subsets = ctx.subsets(store)
    fig, axes = new_figure(len(subsets), cols=3, size=(4.6, 3.8))
    alpha, rows = ctx.alphas[0], []
    for ax, subset in zip(axes, subsets):
        result = ctx.fit(store, subset)
        picked = _heads_rows(result, label, alpha)
        param = next(r["parameter"] for r in picked if r["parameter"])
        plot_accuracy_curves(picked, x=param, ax=ax)
        ax.set_title(f"{subset} ({len(result['classes'])} classes)")
        rows += _strength_table(picked, param, prefix=(subset,))
    caption = (f"{label}, joint head α={alpha:g}; test accuracy with 95 % Wilson intervals "
               f"(bands); joint - fg is the point difference.")
    return [figure(_png(fig, ctx, store, "fusion-figure-3"), caption),
            table(["subset", "strength", "foreground", "background", "joint", "joint - fg"],
                  rows, caption="accuracy [95 % Wilson interval] per subset and blur σ")]


def figure4(ctx, store):
    """Figure 4a-b: accuracy against FGSM eps per head; mean |weight| of the joint head."""
    label, _ = _fgsm(ctx, store)
    result, alpha = ctx.fit(store, "all"), ctx.alphas[0]
    picked = _heads_rows(result, label, alpha)
    fig, axes = new_figure(2, cols=2, size=(5.0, 4.0))
    plot_accuracy_curves(picked, x="eps", ax=axes[0])
    axes[0].set_title(label.split(":")[0] + " on the " + _target(result))
    w = next(w for w in result["weights"] if w["alpha"] == alpha)
    plot_weight_bars(w["fg"], w["bg"], ax=axes[1])
    axes[1].set_title(f"joint head α={alpha:g}")
    caption = (f"{label} (crafted against {_target(result)}), subset all; mean |weight| in "
               f"the joint head: foreground {w['fg']:.4f}, background {w['bg']:.4f} (ratio "
               f"fg/bg {w['fg'] / w['bg']:.2f}; point estimates of one fit).")
    return [figure(_png(fig, ctx, store, "fusion-figure-4"), caption),
            table(["strength", "foreground", "background", "joint", "joint - fg"],
                  _strength_table(picked, "eps"), caption="accuracy [95 % Wilson interval]")]


def _target(result) -> str:
    heads = sorted({a["head"] for a in result["attacks"].values()})
    return ", ".join(heads) + " head" if heads else "the stored heads"


def figure5(ctx, store):
    """Figure 5: joint heads per alpha and adversarial retraining under FGSM; weights."""
    label, _ = _fgsm(ctx, store)
    subsets = [s for s in ("dissimilar", "all") if s in ctx.subsets(store)]
    fig, axes = new_figure(2 * len(subsets), cols=2, size=(5.0, 4.0))
    items, header = [], None
    for k, subset in enumerate(subsets):
        result = ctx.fit(store, subset)
        rows = [r for r in result["rows"] if r["family"] in (label, "clean")]
        plot_alpha_sweep([r for r in rows if r["head"] in FUSION_HEADS], ax=axes[2 * k], x="eps")
        adv = sorted((r["strength"], r) for r in rows if r["head"] == "adv")
        if adv:
            xs = [s for s, _ in adv]
            axes[2 * k].plot(xs, [r["accuracy"] for _, r in adv], "s-", color="#d62728",
                             label="adversarial retraining")
            axes[2 * k].fill_between(xs, [r["ci_low"] for _, r in adv],
                                     [r["ci_high"] for _, r in adv], color="#d62728",
                                     alpha=0.15, linewidth=0)
            axes[2 * k].legend(frameon=False, fontsize="x-small")
        axes[2 * k].set_title(f"{subset}: joint per α vs retraining", fontsize="small")
        plot_alpha_sweep(result["weights"], ax=axes[2 * k + 1])
        axes[2 * k + 1].set_title(f"{subset}: mean |weight| against α", fontsize="small")
        header, body = _sweep_table(result, rows, subset)
        items.append(body)
    retrain = (ctx.fit(store, "all").get("robust") or {}).get("adv", {})
    on = ", ".join(retrain.get("training_conditions", [])) or "n/a"
    alphas = ", ".join(f"{a:g}" for a in ctx.alphas)
    caption = (f"{label}; joint heads at α = {alphas}; adversarial retraining on {on} (half "
               f"and half). Bands: 95 % Wilson.")
    return [figure(_png(fig, ctx, store, "fusion-figure-5"), caption),
            table(header, [r for body in items for r in body],
                  caption="accuracy [95 % Wilson interval] per α and for adversarial retraining")]


def _sweep_table(result, rows, subset):
    by = {}
    for r in rows:
        name = "adv" if r["head"] == "adv" else f"α={r['alpha']:g}" if r["head"] == "joint" \
            else None
        if name:
            by.setdefault(r["strength"], {})[name] = acc_row(r)
    names = [f"α={a:g}" for a in result["alphas"]]
    names += ["adv"] if any("adv" in v for v in by.values()) else []
    header = ["subset", "ε", *[f"joint {n}" if n != "adv" else "adv. retraining" for n in names]]
    return header, [[subset, f"{s:g}", *[by[s].get(n, "n/a") for n in names]] for s in sorted(by)]
