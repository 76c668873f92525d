"""The robust-training papers: MAT Figure 4, Table 1 and the random-walk matrix (from the
robust heads of ``fit-head``), and the M-TLAT Tables 1-2 (``featlab robustness``).

Functions take the report :class:`~.context.Context` and a store and return the section's
items, or raise :class:`~.context.Missing` with the command that would produce the data.
"""
from __future__ import annotations

from ..analyses.heads.plots import plot_accuracy_curves
from ..analyses.heads.robust_plots import plot_accuracy_matrix, plot_range_bars
from ..analyses.robustness.plots import column_label, plot_robustness
from ..analyses.robustness.run import robustness
from ..conditions import parse_condition
from ..errors import CannotWrite, DamagedData, FeatlabError
from ..utils.figures import new_figure
from ..utils.results import write_json
from .context import Missing, save_png
from .formats import ci, figure, table
from .style import report_style
from .fusion import FGSM
from ..store.heads import list_heads

MAT_HEADS = ("joint", "adv", "mat-mixed", "mat-parallel")
CORRUPTIONS = ("corrupt:name=imagenet-c:severity=1:2:3:4:5,rotate:severity=1:2:3:4:5,"
               "translate:severity=1:2:3:4:5,color:severity=1:2:3:4:5,occlude:severity=1:2:3:4:5")


def _mat(ctx, store):
    """The ``all`` fit with MAT heads, or Missing."""
    fit = ctx.try_fit(store, "all") if ctx.family(store, "fgsm") else None
    if not fit or not fit.get("range") or not fit["range"]["table"]:
        raise Missing(f"{ctx.name(store)} has no FGSM family with stored strengths > 0 to "
                      f"train the MAT heads on (attacks need heads: featlab fit-head --store "
                      f"{store.path} first)", ctx.hint(store, FGSM))
    return fit


def _label(row) -> str:
    """MAT's names: heads trained on clean features are the paper's "original" training."""
    names = {"fg": "original: foreground", "bg": "original: background",
             "adv": "single strength (adversarial retraining)", "mat-mixed": "mixed MAT",
             "mat-parallel": "parallel MAT"}
    if row["head"] == "joint":
        return f"original: joint α={row['alpha']:g}"
    return names.get(row["head"], row["head"])


def mat_figure4(ctx, store):
    """MAT Figure 4: accuracy against FGSM strength for each training method."""
    fit = _mat(ctx, store)
    family, alpha = fit["range"]["family"], ctx.alphas[0]
    rows = [r for r in fit["rows"] if r["family"] in (family, "clean") and r["head"] in MAT_HEADS
            and r["alpha"] in (None, alpha)]
    fig, axes = new_figure(1, size=(6.0, 4.4))
    plot_accuracy_curves(rows, x="eps", ax=axes[0])
    axes[0].set_title(f"{family.split(':')[0]}: training methods (linear heads)")
    chosen = fit["robust"]["strengths"]["chosen"]
    caption = (f"{family}, subset all; single strength = adversarial retraining on "
               f"{', '.join(fit['robust']['adv']['training_conditions'])}; MAT strengths "
               f"{', '.join(f'{s:g}' for s in chosen)} "
               f"({fit['robust']['strengths']['selection']['method']}). Bands: 95 % Wilson.")
    return [figure(save_png(fig, ctx, store, "mat-figure-4"), caption)]


def mat_table1(ctx, store):
    """MAT Table 1: mean accuracy over the strength range, 95 % paired bootstrap."""
    fit = _mat(ctx, store)
    span = fit["range"]
    fig, axes = new_figure(1, size=(6.0, 0.6 + 0.45 * len(span["table"])))
    plot_range_bars(span["table"], ax=axes[0])
    rows = [[_label(r), ci(r["mean"], r["ci_low"], r["ci_high"], 3), r["n_images"]]
            for r in span["table"]]
    caption = (f"mean test accuracy over {span['family']} at ε in "
               f"{', '.join(f'{s:g}' for s in span['strengths'])} (0 = clean), 95 % bootstrap "
               f"over test images, the same resamples for every head.")
    return [figure(save_png(fig, ctx, store, "mat-table-1"), caption),
            table(["training method", "mean accuracy [95 % CI]", "test images"], rows, caption)]


def mat_random_walk(ctx, store):
    """MAT Section 4.3: the validation accuracy matrix A and the strengths chosen."""
    fit = _mat(ctx, store)
    selection = fit["robust"]["strengths"]["selection"]
    if selection.get("method") != "random-walk":
        raise Missing("the MAT strengths were given, not chosen by the random walk",
                      f"featlab fit-head --store {store.path} --recipe mat-mixed,mat-parallel "
                      f"--strengths auto")
    fig, axes = new_figure(1, size=(6.0, 4.4))
    plot_accuracy_matrix(selection["A"], selection["rows"], selection["columns"],
                         chosen=selection["strengths"], ax=axes[0])
    axes[0].grid(False)
    caption = (f"A on {fit['robust']['n_val']} validation images carved from train; chosen "
               f"strengths {', '.join(f'{s:g}' for s in selection['strengths'])}, "
               f"G = {selection['G']:.4f} (walk steps l, walks t and penalty a as fit-head's "
               f"defaults).")
    return [figure(save_png(fig, ctx, store, "mat-random-walk"), caption)]


def _robustness(ctx, store):
    if not list_heads(store.path) and not trained_networks(store):
        raise Missing(f"{ctx.name(store)} has no fitted heads and no trained network to score",
                      f"featlab fit-head --store {store.path}")
    perturbed = [k for k in store.conditions if k != "clean"
                 and parse_condition(k)[0].family != "probe"]
    if not perturbed:
        raise Missing(f"{ctx.name(store)} holds no corruption or attack condition",
                      ctx.hint(store, CORRUPTIONS))

    def compute():
        try:
            result = robustness(store, subset="all", n_boot=ctx.n_boot, seed=ctx.seed)
        except (DamagedData, CannotWrite):
            raise
        except FeatlabError as err:
            raise Missing(str(err), f"featlab fit-head --store {store.path}") from None
        write_json(ctx.path(store, "robustness-all.json"), result)
        return result

    return ctx.once(("robustness", id(store)), compute)


def _cells(row, columns, reference):
    out = []
    for c in columns:
        s = row["scores"][c]
        interval = "" if row["classifier"] == reference else \
            f" (Δ [{s['low']:+.2f}, {s['high']:+.2f}])"
        out.append(f"{s['R']:.2f}{s['sign']}{interval}")
    return out


def mtlat_table1(ctx, store):
    """M-TLAT Table 1: R per classifier and perturbation, +/- vs the reference, mCE."""
    result = _robustness(ctx, store)
    columns = list(result["columns"])
    rows = [[r["classifier"], f"{r['clean']:.3f}", *_cells(r, columns, result["reference"]),
             "n/a" if r["mCE"] is None else f"{r['mCE']:.3f}"] for r in result["rows"]]
    caption = (f"R = A/A_clean on {result['n_test']} test images valid in every condition; "
               f"+/- where R differs from {result['reference']} outside the 95 % paired "
               f"bootstrap interval of the difference Δ ({result['n_boot']} resamples); "
               f"{result['mce_note']}.")
    header = [short(column_label(result, c)) for c in columns]
    return [figure(_heatmap(ctx, store, result), caption),
            table(["classifier", "clean", *header, "mCE"], rows, caption)]


def short(column: str) -> str:
    """A column as a label: ImageNet-C by its name, no empty or default parameters."""
    parts = column.replace("corrupt:name=", "").split(":")
    drop = ("eps_space=pixel", "head_alpha=0", "region=all", "surrogate=")
    return ":".join(p for p in parts if p not in drop and not p.endswith("="))


def _heatmap(ctx, store, result) -> str:
    """:func:`~featlab.analyses.robustness.plots.plot_robustness` with short column labels."""
    names = {c: short(c) for c in result["columns"]}
    shown = dict(result, columns={names[c]: k for c, k in result["columns"].items()},
                 rows=[dict(r, scores={names[c]: v for c, v in r["scores"].items()})
                       for r in result["rows"]])
    with report_style(grid=False):  # a heatmap: no grid lines across the cells
        fig, axes = new_figure(1, size=(1.6 + 0.6 * len(names), 1.4 + 0.45 * len(shown["rows"])))
        plot_robustness(shown, ax=axes[0])
        return save_png(fig, ctx, store, "mtlat-table-1")


def trained_networks(store) -> dict:
    """Backbones ``featlab train`` made that classify the store's task: name -> recipe."""
    classes = list(store.samples.classes)
    return {b: meta["recipe"] for b, meta in store.backbone_meta.items()
            if meta.get("recipe") and meta.get("task_classes") == classes
            and "logits" in meta.get("layers", ())}


def _crafted(store, result, columns) -> str:
    """Which classifier each single-condition column was crafted on (white-box for it)."""
    out = []
    for c in columns:
        keys = result["columns"][c]
        info = store.condition_info(keys[0]) if len(keys) == 1 else {}
        against = info.get("classifier") or info.get("head")
        if "target" in info and against:
            out.append(f"{short(c)} on {against}")
    return "; ".join(out)


def mtlat_table2(ctx, store):
    """M-TLAT Table 2: each network ``featlab train`` made (standard, Mixup, TLAT, M-TLAT),
    scored by its own logits — the trained network itself, not a head refit on its
    features — one row per network (``<backbone> (logits)`` of ``featlab robustness``)."""
    networks = trained_networks(store)
    if not networks:
        raise Missing(f"{ctx.name(store)} holds no network trained by featlab train on its "
                      f"classes",
                      "featlab train --recipe mixup --out cache/weights/mixup.pt ... (and "
                      "--recipe tlat), then featlab extract --backbones mixup=cache/weights/"
                      "mixup.pt,... with attacks on them (target=fg or target=surrogate)")
    result = _robustness(ctx, store)
    by_name = {r["classifier"]: r for r in result["rows"]}
    rows = [(recipe, by_name[f"{b} (logits)"]) for b, recipe in networks.items()
            if f"{b} (logits)" in by_name]
    columns = list(result["columns"])
    crafted = _crafted(store, result, columns)
    caption = (f"each network's own logits on {result['n_test']} test images; R = A/A_clean as "
               f"Table 1" + (f"; attacks crafted on: {crafted} (white-box for that network, "
                             f"transfer for the others)" if crafted else "") + ".")
    return [table(["recipe", "network", "clean", *map(short, columns)],
                  [[recipe, row["classifier"], f"{row['clean']:.3f}",
                    *[f"{row['scores'][c]['R']:.2f}" for c in columns]]
                   for recipe, row in rows], caption)]
