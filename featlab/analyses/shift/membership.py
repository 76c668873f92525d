"""Do perturbed features stay inside the clean subspace? (fusion paper Section 3.1, Figure 2).

The paper's claim is that under object blur the scene backbone's features *stay in* the
subspace spanned by clean features while the object backbone's *leave* it.
:func:`subspace_membership` measures leaving: it fits the top-k PCA subspace of clean TRAIN
features, measures for every test image the norm of its (centred) feature outside that subspace,
``r(x) = |(x - mu) - P_k (x - mu)|``, for the clean and for the perturbed features of the
same image, and compares the perturbed residuals with the clean ones by the ratio of their
medians, ``median_i r(perturbed_i) / median_i r(clean_i)``, with a percentile bootstrap
interval that resamples test images jointly (paired). Clean test images have a residual of
their own (the subspace is fitted on other images), so the ratio is 1 when the perturbed
points are as close to the subspace as clean ones are. A cloud that moves *within* the
subspace — what Figure 2 shows — keeps a ratio of 1, so this is a second number beside the
class-centroid shift of :mod:`.displacement`, which decides the claim.

Verdict on "stays inside": ``yes`` when the interval's upper end is below ``tolerance``,
``no`` when its lower end is above it, else ``inconclusive``. The default tolerance 1.25 is
chosen before looking at any data: it lets perturbed points sit a quarter further from the
subspace (in median) than clean test points do — room for the small off-subspace noise any
perturbation adds — while a cloud that really leaves the subspace moves by a multiple of the
clean residual (e.g. ratio > 2 for the orthogonal move in tests/analyses/test_paired_stats.py).
"""
from __future__ import annotations

import numpy as np

from ...utils.validation import check_features
from ..stats import below_verdict, bootstrap_index
from .subspace import fit_pca

#: Default tolerance on the ratio of median residuals (see the module docstring).
TOLERANCE = 1.25


def residual_norms(X, mean, comps):
    """Norm of each row of ``X - mean`` outside the span of ``comps`` (k, p), shape (n,)."""
    centred = np.asarray(X, np.float64) - mean
    inside = (centred @ comps.T) @ comps
    return np.linalg.norm(centred - inside, axis=1)


def subspace_membership(train_clean, clean, perturbed, *, k=10, tolerance=TOLERANCE,
                        n_boot=2000, seed=0, confidence=0.95) -> dict:
    """Ratio of median residuals outside the clean top-k subspace, perturbed vs clean.

    Parameters
    ----------
    train_clean : ndarray (n_train, p). Clean features the subspace is fitted on.
    clean, perturbed : ndarray (n, p). Clean and perturbed features of the same test images.
    k : int. Subspace dimension (at most min(n_train - 1, p)).
    tolerance : float > 1. Largest ratio that still counts as "stays inside".
    n_boot, seed, confidence : the paired bootstrap.

    Returns
    -------
    dict (JSON-able): ``k``, ``n``, ``median_residual_clean``, ``median_residual_perturbed``,
    ``ratio`` with ``ratio_low`` / ``ratio_high``, ``tolerance``, ``stays_inside``
    (yes / no / inconclusive), ``confidence``, ``n_boot``.
    """
    train_clean = check_features(train_clean, "train_clean")
    clean, perturbed = check_features(clean, "clean"), check_features(perturbed, "perturbed")
    if clean.shape != perturbed.shape or clean.shape[1] != train_clean.shape[1]:
        raise ValueError(f"clean {clean.shape}, perturbed {perturbed.shape} and train_clean "
                         f"{train_clean.shape} must share features (and clean/perturbed rows)")
    if not tolerance > 0 or len(clean) == 0:
        raise ValueError(f"need tolerance > 0 and test rows; got {tolerance}, {len(clean)} rows")
    k = int(min(k, len(train_clean) - 1, train_clean.shape[1]))
    mean, comps, _ = fit_pca(train_clean, k)
    r_clean = residual_norms(clean, mean, comps)
    r_pert = residual_norms(perturbed, mean, comps)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(r_pert) / np.median(r_clean))
        boots = np.concatenate([np.median(r_pert[idx], axis=1) / np.median(r_clean[idx], axis=1)
                                for idx in bootstrap_index(len(r_clean), n_boot, seed)])
    tail = 100.0 * (1.0 - confidence) / 2.0
    finite = boots[np.isfinite(boots)]
    low, high = (np.percentile(finite, [tail, 100.0 - tail]) if len(finite) == len(boots)
                 else (float("nan"), float("nan")))
    return dict(k=k, n=int(len(clean)), median_residual_clean=float(np.median(r_clean)),
                median_residual_perturbed=float(np.median(r_pert)), ratio=ratio,
                ratio_low=float(low), ratio_high=float(high), tolerance=float(tolerance),
                stays_inside=below_verdict(low, high, tolerance), confidence=confidence,
                n_boot=int(n_boot))
