"""``isotropy``, ``symmetry``, ``mantel``, ``lipschitz``: local properties from probe conditions.

Aghdam, Heravi & Puig (VISAPP 2017), on the copies stored by the ``isotropy`` / ``symmetry``
probe sets (:mod:`featlab.probes`), CPU only:

* ``isotropy`` / ``symmetry`` (Sections 2.1-2.2, Figures 1 and 3): per head and radius, the
  range ``max - min`` of the true-class score over the copies, its mean, whether a copy was
  misclassified; with ``layers``, the same range for the feature displacement
  ``|phi(x+v) - phi(x)|`` relative to its mean (0 for a locally isotropic layer);
* ``mantel`` (Section 2.3, Figure 4): per image, the Mantel r between the copies' input
  distances and their feature distances, with permutation p-values (scikit-bio's test);
* ``lipschitz`` (Section 2.4, equation 9, Figure 6): ratios with min-max normalizers ``g``
  (clean train features of each layer) and ``h`` (input ranges of the train images); with
  ``bounds=True`` also gradient-norm and CLEVER estimates (:mod:`.bounds`).

Every runner returns a JSON-able dict with ``stale`` (condition -> bool or None: made against
a selecting/scoring head refit since) and a ``stale`` column on every per-radius
row; it and, with ``out_dir``, writes its figures and its
JSON (``<stem>.json``) there.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.spatial.distance import pdist

from ...utils.figures import new_figure, save_figure, slug
from ...utils.results import finish
from ..inputs import staleness
from ..registry import ANALYSES
from .bounds import lipschitz_bounds
from .family import (PIXELS, check_backbones, check_layers, choose_family, choose_radii,
                     finite_block, heads_in, normalizers, probe_features, probed_rows, read_rows,
                     stack_radii)
from .isotropy import isotropy_rows, range_by_radius, summarize
from .lipschitz import fraction_below_one, local_lipschitz, polynomial_fits
from .mantel import mantel_batch
from .plots import plot_lipschitz, plot_mantel, plot_score_range


def _setup(store, kind, probe, radii, command):
    family = choose_family(store, kind, probe)
    radii = choose_radii(family, radii)
    rows = probed_rows(store, family, radii)
    params = "_".join(slug(t) for t in family.name.split(":")[1:])
    stem = f"{command}_{params}" if command == family.kind else f"{command}-{family.kind}_{params}"
    common = dict(store=store.path, probe=family.name, kind=family.kind, stem=stem, radii=radii,
                  copies=family.copies, n_samples=int(len(rows)),
                  image_ids=store.samples.image_id[rows].tolist(),
                  stale=staleness(store, [family.keys[r] for r in radii]))
    return family, radii, rows, common


def _finish(result, out_dir, family):
    """Label every row that has a radius with its condition's staleness, then write."""
    by_radius = {r: result["stale"][family.keys[r]] for r in result["radii"]}
    for value in result.values():
        for row in value if isinstance(value, list) else ():
            if isinstance(row, dict) and row.get("radius") in by_radius:
                row["stale"] = by_radius[row["radius"]]
    return finish(result, out_dir, result["stem"])


def _figure(panels, out_dir, stem, draw, width=5.5):
    fig, axes = new_figure(len(panels), size=(width, 4.2))
    for ax, panel in zip(axes, panels):
        draw(ax, *panel)
    return save_figure(fig, os.path.join(out_dir, stem))


def score_ranges(store, *, kind="isotropy", probe=None, radii=None, heads=None,
                 backbones=None, layers=(), out_dir=None) -> dict:
    """Figures 1 / 3: score range over the copies per head and radius (see module doc)."""
    family, radii, rows, result = _setup(store, kind, probe, radii, kind)
    labels = store.samples.label[rows]
    names = heads_in(store, family, radii, heads, backbones and check_backbones(store, backbones))
    result.update(heads={}, rows=[], features=[])
    panels = []
    for head in names:
        what = f"{family.name} scores/{head}"
        scores = finite_block(stack_radii(store, family, radii, f"scores/{head}", rows), what)
        mis = stack_radii(store, family, radii, f"pred/{head}", rows) != labels[:, None, None]
        clean_ok = _clean_correct(store, family, radii, rows, head, labels, result)
        mis &= clean_ok[:, None, None]  # only images this head gets right when clean count
        result["rows"] += isotropy_rows(scores, radii, mis, result["image_ids"], head=head,
                                        clean_correct=clean_ok)
        result["heads"][head] = range_by_radius([r for r in result["rows"] if r["head"] == head])
        summ = summarize(scores, mis)
        panels.append((summ["range"], summ["mean_score"], summ["misclassified_any"], radii,
                       f"{family.kind}: {head}"))
    if layers:
        result["features"] = _feature_ranges(store, family, radii, rows,
                                             check_backbones(store, backbones), layers, result)
    if out_dir:
        result["figures"] = _figure(panels, out_dir, result["stem"], lambda ax, *p:
                                    plot_score_range(*p[:4], ax=ax, title=p[4]))
    return _finish(result, out_dir, family)


def _clean_correct(store, family, radii, rows, head, labels, result) -> np.ndarray:
    """Per row: does ``head`` classify the clean image correctly (``clean_pred/<head>``)?
    Stores extracted before it was recorded: every row, with a note."""
    key = family.keys[radii[0]]
    if head not in store.array_names(key, "clean_pred"):
        result.setdefault("notes", []).append(
            f"{key} has no clean_pred/{head} (extracted by an older featlab): the misclassified "
            f"fraction of {head} counts images it may get wrong when clean; extract again")
        return np.ones(len(rows), dtype=bool)
    return read_rows(store, key, f"clean_pred/{head}", rows) == labels


def _feature_ranges(store, family, radii, rows, backbones, layers, result) -> list[dict]:
    out = []
    for b in backbones:
        for layer in check_layers(store, [b], layers):
            f, c = probe_features(store, family, radii, rows, b, layer, result)
            disp = np.linalg.norm(f - c[:, :, None, :], axis=-1)  # (n, R, T)
            rel = (disp.max(-1) - disp.min(-1)) / np.maximum(disp.mean(-1), np.finfo(float).tiny)
            for k, r in enumerate(radii):
                q1, med, q3 = np.percentile(rel[:, k], [25, 50, 75])
                out.append(dict(backbone=b, layer=layer, radius=r, relative_range_median=med,
                                relative_range_q1=q1, relative_range_q3=q3,
                                displacement_median=float(np.median(disp[:, k]))))
    return out


@ANALYSES.register("isotropy")
def isotropy(store, *, probe=None, radii=None, heads=None, backbones=None, layers=(),
             out_dir=None) -> dict:
    """Section 2.1, Figure 1 on ``isotropy`` probes (see :func:`score_ranges`)."""
    return score_ranges(store, kind="isotropy", probe=probe, radii=radii, heads=heads,
                        backbones=backbones, layers=layers, out_dir=out_dir)


@ANALYSES.register("symmetry")
def symmetry(store, *, probe=None, radii=None, heads=None, backbones=None, layers=(),
             out_dir=None) -> dict:
    """Section 2.2, Figure 3 on ``symmetry`` probes (see :func:`score_ranges`)."""
    return score_ranges(store, kind="symmetry", probe=probe, radii=radii, heads=heads,
                        backbones=backbones, layers=layers, out_dir=out_dir)


@ANALYSES.register("mantel")
def mantel(store, *, radii=None, layers=("penultimate",), backbones=None, probe=None,
           method="pearson", permutations=999, alternative="two-sided", seed=0,
           out_dir=None) -> dict:
    """Section 2.3, Figure 4: Mantel test of input vs feature distances of each image's copies.

    The input distances are the stored ``input_pdist`` (the permuted matrix, ``x`` in
    scikit-bio's ``mantel(x, y)``); the feature distances are Euclidean, float64. All tests
    share one set of ``permutations`` drawn from ``seed`` (so each equals
    ``skbio.stats.distance.mantel(x, y, permutations=P, seed=seed)``).
    """
    family, radii, rows, result = _setup(store, None, probe, radii, "mantel")
    backbones = check_backbones(store, backbones)
    layers = check_layers(store, backbones, layers)
    result.update(method=method, permutations=int(permutations), alternative=alternative,
                  rows=[], summary=[])
    panels = []
    for b in backbones:
        r_all, rad_all, lay_all = [], [], []
        for r in radii:
            key = family.keys[r]
            x = finite_block(read_rows(store, key, "input_pdist", rows), f"{key} input_pdist")
            for layer in layers:
                f, _ = probe_features(store, family, [r], rows, b, layer, result)
                y = np.stack([pdist(sample) for sample in f[:, 0]])
                rr, pp, _ = mantel_batch(x, y, method, permutations, alternative, seed)
                result["rows"] += [dict(image_id=i, radius=r, backbone=b, layer=layer, r=a, p=q)
                                   for i, a, q in zip(result["image_ids"], rr.tolist(),
                                                      pp.tolist())]
                result["summary"].append(_mantel_summary(rr, pp, b, layer, r))
                r_all += rr.tolist()
                rad_all += [r] * len(rr)
                lay_all += [layer] * len(rr)
        panels.append((r_all, rad_all, lay_all, f"{family.kind} probes: {b}"))
    if out_dir:
        result["figures"] = _figure(panels, out_dir, result["stem"],
                                    lambda ax, r, rad, lay, t: plot_mantel(r, rad, lay, ax=ax,
                                                                           title=t), width=6.5)
    return _finish(result, out_dir, family)


def _mantel_summary(r, p, backbone, layer, radius) -> dict:
    ok = np.isfinite(r)
    rf = r[ok]
    q1, med, q3 = np.percentile(rf, [25, 50, 75]) if ok.any() else (np.nan,) * 3
    return dict(backbone=backbone, layer=layer, radius=radius, n=int(ok.sum()), r_median=med,
                r_q1=q1, r_q3=q3, fraction_abs_r_below_0_1=float(np.mean(np.abs(rf) < 0.1))
                if ok.any() else np.nan, fraction_p_below_0_05=float(np.mean(p[ok] < 0.05))
                if ok.any() else np.nan)


@ANALYSES.register("lipschitz")
def lipschitz(store, *, radii=None, layers=("penultimate",), backbones=None, probe=None,
              per_feature=False, out_dir=None, bounds=False, **bound_options) -> dict:
    """Section 2.4, equation 9, Figure 6: local Lipschitz ratios of each layer.

    ``ratio = |g(phi(x+v)) - g(phi(x))| / |h(x+v) - h(x)|`` per (image, radius, copy), with
    ``|x+v - x|`` the stored norm of the input fed; ``raw_ratio`` is the same without ``g``
    and ``h`` (in feature units per image unit, images in [0, 1]). With ``bounds=True`` the
    options of :func:`featlab.analyses.local.bounds.lipschitz_bounds` apply.
    """
    family, radii, rows, result = _setup(store, None, probe, radii, "lipschitz")
    backbones = check_backbones(store, backbones)
    layers = check_layers(store, backbones, layers)
    norms = finite_block(stack_radii(store, family, radii, "norms", rows), "norms") / PIXELS
    grid = np.broadcast_to(np.asarray(radii)[None, :, None], norms.shape)
    result.update(per_feature=per_feature, layers=[], samples=[])
    panels = []
    for b in backbones:
        for layer in layers:
            g, h = normalizers(store, family, b, layer, per_feature)
            f, c = probe_features(store, family, radii, rows, b, layer, result)
            n, R, T, d = f.shape
            res = local_lipschitz(f.reshape(n * R, T, d), c.reshape(n * R, d),
                                  norms.reshape(n * R, T), g, h)
            raw = local_lipschitz(f.reshape(n * R, T, d), c.reshape(n * R, d),
                                  norms.reshape(n * R, T)).ratio.reshape(n, R, T)
            ratio, dist = res.ratio.reshape(n, R, T), res.input_dist.reshape(n, R, T)
            result["layers"].append(_lipschitz_summary(ratio, raw, dist, radii, b, layer, g, h))
            result["samples"] += [dict(image_id=i, backbone=b, layer=layer, radius=r,
                                       ratio_max=float(ratio[s, k].max()),
                                       ratio_median=float(np.median(ratio[s, k])),
                                       raw_ratio_max=float(raw[s, k].max()))
                                  for s, i in enumerate(result["image_ids"])
                                  for k, r in enumerate(radii)]
            panels.append((dist, ratio, grid, f"{b} / {layer}"))
    if bounds:
        result["bounds"] = lipschitz_bounds(store, family, radii, rows, **bound_options)
    if out_dir:
        result["figures"] = _figure(panels, out_dir, result["stem"],
                                    lambda ax, x, y, c, t: plot_lipschitz(x, y, c, ax=ax, title=t))
    return _finish(result, out_dir, family)


def _lipschitz_summary(ratio, raw, dist, radii, backbone, layer, g, h) -> dict:
    degrees = tuple(d for d in (1, 2) if len(radii) > d)  # copies of one radius share |v|
    fits = polynomial_fits(dist, ratio, degrees=degrees) if degrees else {}
    n = ratio.shape[0]
    return dict(backbone=backbone, layer=layer, fraction_below_one=fraction_below_one(ratio),
                fraction_samples_below_one=fraction_below_one(ratio.reshape(n, -1), "sample"),
                ratio_median=float(np.median(ratio)), raw_ratio_median=float(np.median(raw)),
                by_radius=[dict(radius=r, fraction_below_one=fraction_below_one(ratio[:, k]),
                                ratio_median=float(np.median(ratio[:, k])),
                                raw_ratio_median=float(np.median(raw[:, k])))
                           for k, r in enumerate(radii)],
                fit_linear=fits.get(1, []), fit_quadratic=fits.get(2, []),
                g=dict(min=g.min_, max=g.max_), h=dict(min=h.min_, max=h.max_))
