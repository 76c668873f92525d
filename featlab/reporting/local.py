"""The local-properties paper's Figures 1, 3, 4 and 6 (``isotropy``, ``symmetry``,
``mantel``, ``lipschitz`` on the stored probe conditions), each analysis drawing its own
figure inside the report's style."""
from __future__ import annotations

import numpy as np

from ..analyses.local.family import families
from ..analyses.local.run import isotropy, lipschitz, mantel, symmetry
from ..analyses.stats import wilson_interval
from .context import Missing
from .formats import ci, figure, table

PROBES = "{kind}:radius=1:5:10:copies=20:samples=30"


def _family(ctx, store, kinds):
    found = [f for k in kinds for f in families(store, k)]
    if not found:
        command = ctx.hint(store, PROBES.format(kind=kinds[0]))
        raise Missing(f"{ctx.name(store)} has no {' or '.join(kinds)} probe condition "
                      f"(probes select images with a head: featlab fit-head --store "
                      f"{store.path} first)", command)
    return found[0]


def _wilson(fraction, n) -> str:
    if not n or fraction != fraction:
        return "n/a"
    k = int(round(fraction * n))
    return ci(k / n, *wilson_interval(k, n))


def _ranges(ctx, store, kind, run):
    family = _family(ctx, store, (kind,))
    result = ctx.once((kind, id(store)), lambda: run(store, probe=family.name,
                                                     out_dir=ctx.path(store, kind, "")))
    rows = [[head, f"{r['radius']:g}", r["n"],
             ci(r["range_median"], r["range_q1"], r["range_q3"], 4),
             _wilson(r["misclassified_fraction"], r["n"])]
            for head, by_radius in result["heads"].items() for r in by_radius]
    caption = (f"{family.name}: {result['n_samples']} images x {result['copies']} copies per "
               f"radius; score range = max - min of the true-class score over the copies "
               f"(median [quartiles]); fraction of images with a misclassified copy [95 % "
               f"Wilson].")
    return [figure(result["figures"][0], caption),
            table(["head", "radius", "images", "range median [q1, q3]",
                   "misclassified fraction [95 % CI]"], rows, caption="per head and radius")]


def figure1(ctx, store):
    """Figure 1 (Section 2.1): isotropy."""
    return _ranges(ctx, store, "isotropy", isotropy)


def figure3(ctx, store):
    """Figure 3 (Section 2.2): symmetry."""
    return _ranges(ctx, store, "symmetry", symmetry)


def figure4(ctx, store):
    """Figure 4 (Section 2.3): Mantel r of input vs feature distances per radius."""
    family = _family(ctx, store, ("isotropy", "symmetry"))
    result = ctx.once(("mantel", id(store)), lambda: mantel(
        store, probe=family.name, seed=ctx.seed, out_dir=ctx.path(store, "mantel", "")))
    rows = [[s["backbone"], s["layer"], f"{s['radius']:g}", s["n"],
             ci(s["r_median"], s["r_q1"], s["r_q3"], 3),
             _wilson(s["fraction_abs_r_below_0_1"], s["n"]),
             _wilson(s["fraction_p_below_0_05"], s["n"])] for s in result["summary"]]
    caption = (f"{family.name}: Mantel r ({result['method']}, {result['permutations']} "
               f"permutations) per image between its copies' input and feature distances; "
               f"median [quartiles]; fractions with 95 % Wilson intervals.")
    return [figure(result["figures"][0], caption),
            table(["backbone", "layer", "radius", "images", "r median [q1, q3]",
                   "|r| < 0.1 [95 % CI]", "p < 0.05 [95 % CI]"], rows, caption="per radius")]


def figure6(ctx, store):
    """Figure 6 (Section 2.4, equation 9): local Lipschitz ratios."""
    family = _family(ctx, store, ("isotropy", "symmetry"))
    result = ctx.once(("lipschitz", id(store)), lambda: lipschitz(
        store, probe=family.name, out_dir=ctx.path(store, "lipschitz", "")))
    n_copies = result["n_samples"] * len(result["radii"]) * result["copies"]
    rows = [[s["backbone"], s["layer"], _wilson(s["fraction_below_one"], n_copies),
             _wilson(s["fraction_samples_below_one"], result["n_samples"]),
             f"{s['ratio_median']:.3f}", f"{s['raw_ratio_median']:.3g}"]
            for s in result["layers"]]
    fits = "; ".join(f"{s['backbone']}: slope {np.ravel(s['fit_linear'])[0]:.3g}"
                     for s in result["layers"] if len(np.ravel(s["fit_linear"])))
    caption = (f"{family.name}, radii {', '.join(f'{r:g}' for r in result['radii'])}: "
               f"L_x = |g(φ(x+v)) - g(φ(x))| / |h(x+v) - h(x)| per copy ({n_copies} per "
               f"layer); fractions below 1 with 95 % Wilson intervals (per copy, treating the "
               f"copies of an image as independent, and per image for its largest ratio)."
               + (f" Linear fits: {fits}." if fits else ""))
    return [figure(result["figures"][0], caption),
            table(["backbone", "layer", "L_x < 1 per copy [95 % CI]",
                   "all copies < 1 per image [95 % CI]", "median L_x", "median raw ratio"],
                  rows, caption="per layer")]
