"""``pca-shift``: how a condition moves each backbone's features (fusion paper Figure 2).

PCA is fitted on clean features and the perturbed features are projected into it, one panel
per backbone. The figure comes with numbers (see :func:`featlab.analyses.shift.subspace.subspace_shift`):
the centroid shift in units of within-class spread, the fraction of the per-image
displacement outside the clean top-k subspace and a paired sign-flip permutation test. The
Section 3.1 claim ("object features move, scene features stay") is decided on the class-centroid
shift in the whitened clean PCA coordinates (:mod:`.displacement`, ``pca_centroid_shift``, and
the paired object-vs-scene ``comparison``); the residual ratio outside the clean subspace
(:mod:`.membership`, ``membership``) is reported beside it as a second number.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ...backbones.roles import fg_bg
from ...errors import FeatlabError
from ...utils.figures import new_figure, save_figure, slug
from ...utils.results import finish
from ...utils.validation import positive_int
from ..inputs import check_not_probe, staleness
from ..registry import ANALYSES
from .displacement import SHIFT_MARGIN, compare_shifts, pca_centroid_shift
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
              margin=SHIFT_MARGIN, n_boot=2000, max_classes=6, seed=0, out_dir=None) -> dict:
    """Shift numbers per backbone; with ``out_dir`` the Figure 2 panels and
    ``pca-shift-<condition>.json`` are written there.

    ``pca_centroid_shift`` of each backbone decides whether its class clouds moved in the
    clean PCA coordinates (``margin`` in within-class SDs); ``comparison`` pairs the object
    and the scene backbone on the same test images (rows valid in every backbone).
    ``membership`` is the separate residual ratio outside the clean top-``k`` subspace
    (``tolerance``). Both are fitted on the clean train split; ``n_boot`` / ``seed`` set
    their bootstraps."""
    k = positive_int(k, "-k", hint=" (dimensions of the clean subspace)")
    permutations = positive_int(permutations, "--permutations", low=0)
    key = _check(store, condition, method, tolerance, margin, n_boot)
    backbones = list(backbones or store.backbones)
    feats, labels = _test_rows(store, backbones, layer, key, split, subset)
    results, panels, shifts = {}, [], {}
    for name in backbones:
        clean, pert = feats[name]
        stats = subspace_shift(clean, pert, labels, k=min(k, clean.shape[1], len(labels) - 1),
                               n_permutations=permutations, random_state=seed)
        train, train_labels = _train(store, name, layer, subset)
        stats["membership"] = subspace_membership(train, clean, pert, k=stats["k"],
                                                  tolerance=tolerance, n_boot=n_boot, seed=seed)
        try:
            shifts[name] = pca_centroid_shift(train, train_labels, clean, pert, labels,
                                              k=stats["k"], margin=margin, n_boot=n_boot,
                                              seed=seed, return_boots=True)
        except ValueError as err:  # degenerate clean features: no within-class spread
            raise FeatlabError(f"pca-shift {name}: {err}") from None
        stats["pca_centroid_shift"] = {x: v for x, v in shifts[name].items() if x != "boots"}
        _warn_undefined(name, stats)
        results[name] = stats
        shown = np.isin(labels, _plot_classes(labels, max_classes, seed))
        c2, p2 = project(clean[shown], pert[shown], method=method, random_state=seed)
        panels.append((name, c2, p2, labels[shown]))
    figures = _figure(store, panels, key, method, out_dir) if out_dir else []
    result = dict(store=store.path, condition=key, layer=layer, split=split, subset=subset,
                  stale=staleness(store, [key])[key], method=method, backbones=results,
                  comparison=_comparison(store, shifts, margin), figures=figures)
    return finish(result, out_dir, f"pca-shift-{slug(key)}")


def _check(store, condition, method, tolerance, margin, n_boot):
    """The resolved condition key; one-line errors for settings pca-shift cannot run with."""
    key = store.resolve_condition(condition)
    check_not_probe(key, "pca-shift")
    if key == "clean":
        raise FeatlabError("--condition clean compares clean with itself; give a perturbed "
                           f"condition, stored: {', '.join(store.conditions)}")
    if method not in ("pca", "umap"):
        raise FeatlabError(f"--method {method!r}: expected pca or umap")
    if not tolerance > 0 or n_boot < 1:
        raise FeatlabError(f"--tolerance {tolerance} / --n-boot {n_boot}: expected > 0 and >= 1")
    if not margin >= 0:
        raise FeatlabError(f"--margin {margin}: expected >= 0 (within-class SDs)")
    return key


def _test_rows(store, backbones, layer, key, split, subset):
    """``{backbone: (clean, perturbed)}`` and labels on the rows valid in every backbone (the
    same images, so the object/scene comparison is paired)."""
    both = store.valid("clean", split=split, subset=subset) & store.valid(key, split=split,
                                                                          subset=subset)
    feats = {}
    for name in backbones:
        clean = store.read(backbone=name, layer=layer, split=split, subset=subset)
        pert = store.read(backbone=name, layer=layer, condition=key, split=split, subset=subset)
        both &= np.isfinite(clean).all(1) & np.isfinite(pert).all(1)
        feats[name] = clean, pert
    labels = store.labels(split=split, subset=subset)[both]
    classes, counts = np.unique(labels, return_counts=True)
    if not (counts >= 2).any():
        raise FeatlabError(f"no class has two valid images in split {split!r} ({len(labels)} "
                           f"images of {len(classes)} classes): the centroid shifts need two "
                           "images of a class; extract more images or give another --split")
    return {name: (c[both], p[both]) for name, (c, p) in feats.items()}, labels


def _train(store, name, layer, subset):
    """Valid clean train features of ``name`` and their labels (the reference subspace)."""
    train = store.read(backbone=name, layer=layer, split="train", subset=subset)
    keep = store.valid("clean", split="train", subset=subset) & np.isfinite(train).all(1)
    labels = store.labels(split="train", subset=subset)[keep]
    if len(labels) - len(np.unique(labels)) < 1:
        raise FeatlabError(f"{name}: {len(labels)} valid clean train rows, no class with two; "
                           "the clean subspace and within-class spread need more train images")
    return train[keep], labels


def _warn_undefined(name, stats):
    undefined = stats["undefined_classes"]
    if undefined:
        log.warning("pca-shift %s: the centroid shift is undefined (NaN) for %d class(es) whose "
                    "valid rows have no spread (a single image each: %s); centroid_shift_mean "
                    "averages the other %d", name, len(undefined),
                    ", ".join(map(str, undefined[:5])), len(stats["classes"]) - len(undefined))


def _comparison(store, shifts, margin):
    """Object vs scene backbone (their declared roles), paired on the same test images; None
    unless both were measured."""
    if len(store.backbone_meta) < 2:
        return None
    fg, bg = fg_bg(store.backbone_meta, where=f"store {store.path}")
    if fg not in shifts or bg not in shifts:
        return None
    still = shifts[bg]
    return dict(object=fg, scene=bg, **compare_shifts(shifts[fg], still, margin=margin),
                scene_shift=still["shift"], scene_low=still["low"], scene_high=still["high"],
                scene_stays=still["stays"])


def _figure(store, panels, key, method, out_dir):
    fig, axes = new_figure(len(panels), cols=len(panels), size=(5.2, 4.6))
    for ax, (name, c2, p2, labels) in zip(axes, panels):
        plot_pca_shift(c2, p2, labels, class_names=store.classes(), ax=ax,
                       title=f"{name}\nclean (small) vs {key} (large)")
    return save_figure(fig, os.path.join(out_dir, f"pca-shift-{method}-{slug(key)}"))
