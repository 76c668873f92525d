"""``pca-shift``: how a condition moves each backbone's features (fusion paper Figure 2).

PCA is fitted on clean features and the perturbed features are projected into it, one panel
per backbone. The figure comes with numbers (see :func:`featlab.analyses.shift.subspace.subspace_shift`):
the centroid shift in units of within-class spread, the fraction of the per-image
displacement outside the clean top-k subspace, a paired sign-flip permutation test, and the
subspace-membership test of the Section 3.1 claim itself ("scene features stay in the clean
subspace"; :func:`featlab.analyses.shift.membership.subspace_membership`, under ``membership``).
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ...errors import FeatlabError
from ...utils.figures import new_figure, save_figure, slug
from ...utils.results import finish
from ...utils.validation import positive_int
from ..inputs import check_not_probe, staleness
from ..registry import ANALYSES
from .membership import TOLERANCE, subspace_membership
from .plots import plot_pca_shift
from .subspace import project, subspace_shift

log = logging.getLogger(__name__)


def _plot_classes(labels: np.ndarray, max_classes: int, seed: int) -> np.ndarray:
    present = np.unique(labels)
    if len(present) <= max_classes:
        return present
    return np.sort(np.random.default_rng(seed).choice(present, max_classes, replace=False))


@ANALYSES.register("pca-shift")
def pca_shift(store, *, condition, layer="penultimate", backbones=None, split="test",
              subset=None, method="pca", k=10, permutations=999, tolerance=TOLERANCE,
              n_boot=2000, max_classes=6, seed=0, out_dir=None) -> dict:
    """Shift numbers per backbone; with ``out_dir`` the Figure 2 panels and
    ``pca-shift-<condition>.json`` are written there.

    ``tolerance`` and ``n_boot`` set the membership test (the clean top-``k`` subspace is
    fitted on the clean train split; ``membership`` of each backbone's result)."""
    k = positive_int(k, "-k", hint=" (dimensions of the clean subspace)")
    permutations = positive_int(permutations, "--permutations", low=0)
    key = store.resolve_condition(condition)
    check_not_probe(key, "pca-shift")
    if key == "clean":
        raise FeatlabError("--condition clean compares clean with itself; give a perturbed "
                           f"condition, stored: {', '.join(store.conditions)}")
    if method not in ("pca", "umap"):
        raise FeatlabError(f"--method {method!r}: expected pca or umap")
    if not tolerance > 0 or n_boot < 1:
        raise FeatlabError(f"--tolerance {tolerance} / --n-boot {n_boot}: expected > 0 and >= 1")
    backbones = list(backbones or store.backbones)
    results, panels = {}, []
    for name in backbones:
        clean = store.read(backbone=name, layer=layer, split=split, subset=subset)
        pert = store.read(backbone=name, layer=layer, condition=key, split=split, subset=subset)
        both = (store.valid("clean", split=split, subset=subset)
                & store.valid(key, split=split, subset=subset)
                & np.isfinite(clean).all(1) & np.isfinite(pert).all(1))
        clean, pert = clean[both], pert[both]
        labels = store.labels(split=split, subset=subset)[both]
        if len(labels) < 3:
            raise FeatlabError(f"only {len(labels)} valid rows in split {split!r}; need >= 3")
        stats = subspace_shift(clean, pert, labels, k=min(k, clean.shape[1], len(labels) - 1),
                               n_permutations=permutations, random_state=seed)
        stats["membership"] = _membership(store, name, layer, subset, clean, pert,
                                          k=stats["k"], tolerance=tolerance, n_boot=n_boot,
                                          seed=seed)
        undefined = stats["undefined_classes"]
        if undefined:
            log.warning("pca-shift %s: the centroid shift is undefined (NaN) for %d class(es) "
                        "whose valid rows have no spread (a single image each: %s); "
                        "centroid_shift_mean averages the others", name, len(undefined),
                        ", ".join(map(str, undefined[:5])))
        results[name] = stats
        shown = np.isin(labels, _plot_classes(labels, max_classes, seed))
        c2, p2 = project(clean[shown], pert[shown], method=method, random_state=seed)
        panels.append((name, c2, p2, labels[shown]))
    figures = _figure(store, panels, key, method, out_dir) if out_dir else []
    result = dict(store=store.path, condition=key, layer=layer, split=split, subset=subset,
                  stale=staleness(store, [key])[key],
                  method=method, backbones=results, figures=figures)
    return finish(result, out_dir, f"pca-shift-{slug(key)}")


def _membership(store, name, layer, subset, clean, pert, **kw):
    train = store.read(backbone=name, layer=layer, split="train", subset=subset)
    train = train[store.valid("clean", split="train", subset=subset) & np.isfinite(train).all(1)]
    if len(train) < 2:
        raise FeatlabError(f"only {len(train)} valid clean train rows to fit the subspace on")
    return subspace_membership(train, clean, pert, **kw)


def _figure(store, panels, key, method, out_dir):
    fig, axes = new_figure(len(panels), cols=len(panels), size=(5.2, 4.6))
    for ax, (name, c2, p2, labels) in zip(axes, panels):
        plot_pca_shift(c2, p2, labels, class_names=store.classes(), ax=ax,
                       title=f"{name}\nclean (small) vs {key} (large)")
    return save_figure(fig, os.path.join(out_dir, f"pca-shift-{method}-{slug(key)}"))
