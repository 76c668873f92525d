"""Did the class clouds move in the clean PCA coordinates? (fusion paper Section 3.1, Figure 2).

Figure 2 shows, in the PCA plane of clean features, the object backbone's class clouds moving
conjointly under object blur while the scene backbone's stay where they were. A move *within*
the clean principal subspace leaves every residual outside it unchanged, so the residual ratio
of :mod:`.membership` cannot see it; :func:`pca_centroid_shift` measures it where the figure
shows it.

Coordinates: the top-k principal components of the clean TRAIN features (the same subspace as
:mod:`.membership`), whitened by the pooled within-class covariance ``W`` of those train
features (k x k, ``n_train - C`` degrees of freedom; directions with no within-class variance
are dropped, ``rank`` says how many remain). A test image's displacement ``d_i = perturbed_i
- clean_i`` becomes ``z_i = W^{-1/2} P_k d_i``, so ``|mean_{i in c} z_i|`` is the Mahalanobis
distance between the clean and the perturbed centroid of class c in within-class standard
deviations (the multivariate standardized mean difference).

Statistic: the mean of ``z_i . z_j`` over pairs of *distinct* test images i != j of the same
class, ``Q = sum_c sum_{i != j in c} z_i . z_j / sum_c n_c (n_c - 1)`` — an unbiased estimate
of the squared class-centroid shift (weighted by pairs), because per-image jitter that does not
move the class mean averages out of ``z_i . z_j`` while it inflates ``|mean z|^2`` by
``tr Cov(z) / n_c``. ``shift = sign(Q) sqrt(|Q|)``, in within-class SDs: about 0 (either sign)
for a cloud that does not move or only jitters, the distance moved for a cloud that does.
Classes with a single test image give no pair and do not count.

Interval: percentile bootstrap over test images; a resample counts only pairs of distinct
images (copies of one image are not a pair), so it estimates the same quantity. The same
``seed`` and images give the same resamples for every backbone, so :func:`compare_shifts`
reads a *paired* interval of object minus scene shift from the differences of the resamples.

Margin: :data:`SHIFT_MARGIN` = 0.5 within-class SD, chosen before looking at any data: Cohen's
(1988, Section 2.2) "medium" standardized difference, the one "visible to the naked eye" — a
move below it is not the visible move of Figure 2.
"""
from __future__ import annotations

import numpy as np

from ...utils.validation import check_features
from ..stats import (bootstrap_index, check_confidence, percentile_interval, verdict,
                     within_verdict)
from .subspace import fit_pca

#: Practical-equivalence margin of the centroid shift, in within-class SDs (module docstring).
SHIFT_MARGIN = 0.5


def within_whitener(Y, labels):
    """Whitening of the pooled within-class covariance of ``Y`` (n, k).

    Returns ``A`` (k, r) with ``A.T @ W @ A = I_r`` for ``W = sum_c sum_{i in c} (y_i -
    ybar_c)(y_i - ybar_c)^T / (n - C)``, over the ``r`` eigen-directions of ``W`` with variance
    above ``1e-10`` of the largest. Raises ValueError when no class has two rows or ``W`` = 0.
    """
    Y, labels = np.asarray(Y, np.float64), np.asarray(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    dof = len(Y) - len(classes)
    if dof < 1:
        raise ValueError(f"no class has two clean train rows ({len(Y)} rows, {len(classes)} "
                         "classes): the within-class spread is undefined")
    means = np.zeros((len(classes), Y.shape[1]))
    np.add.at(means, inverse, Y)
    R = Y - (means / np.bincount(inverse)[:, None])[inverse]
    values, vectors = np.linalg.eigh(R.T @ R / dof)
    if not values.max() > 0:
        raise ValueError("the clean train features have no within-class spread")
    keep = values > values.max() * 1e-10
    return vectors[:, keep] / np.sqrt(values[keep])


def pair_shift(Z, labels, weights):
    """``Q`` per weighting (module docstring): mean ``z_i . z_j`` over pairs of distinct images
    of the same class, each image counted ``weights[b, i]`` times.

    Z : (n, r); labels : (n,); weights : (B, n) non-negative counts. Returns ``(Q (B,),
    pairs (B,))``; ``Q`` is NaN where a weighting has no pair.
    """
    weights = np.asarray(weights, np.float64)
    num = -(weights ** 2) @ (Z ** 2).sum(axis=1)
    pairs = -(weights ** 2).sum(axis=1)
    for c in np.unique(labels):
        rows = labels == c
        num += ((weights[:, rows] @ Z[rows]) ** 2).sum(axis=1)
        pairs += weights[:, rows].sum(axis=1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, num / np.where(pairs > 0, pairs, 1.0), np.nan), pairs


def _signed_root(q):
    return np.sign(q) * np.sqrt(np.abs(q))


def _counts(index, n):
    b = len(index)
    flat = (index + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)


def pca_centroid_shift(train_clean, train_labels, clean, perturbed, labels, *, k=10,
                       margin=SHIFT_MARGIN, n_boot=2000, seed=0, confidence=0.95,
                       return_boots=False) -> dict:
    """Class-centroid shift of ``perturbed`` vs ``clean`` in the whitened clean PCA coordinates.

    Parameters
    ----------
    train_clean : ndarray (n_train, p). Clean features the PCA and ``W`` are fitted on.
    train_labels : ndarray (n_train,). Their classes.
    clean, perturbed : ndarray (n, p). Features of the same test images, same rows.
    labels : ndarray (n,). Classes of the test images.
    k : int. PCA dimension (at most min(n_train - 1, p)).
    margin : float >= 0. Practical-equivalence margin, in within-class SDs.
    n_boot, seed, confidence : the percentile bootstrap over test images.
    return_boots : bool. Also return the resampled shifts ``boots`` (n_boot,), for
        :func:`compare_shifts`.

    Returns
    -------
    dict (JSON-able without ``boots``): ``k``, ``rank``, ``n``, ``pairs``, ``shift``,
    ``low``, ``high``, ``margin``, ``moved`` (:func:`~featlab.analyses.stats.verdict` of
    shift > 0 with ``margin``), ``stays`` (:func:`~featlab.analyses.stats.within_verdict`:
    inside ``±margin``), ``confidence``, ``n_boot``, ``seed``.
    """
    check_confidence(confidence)
    train_clean = check_features(train_clean, "train_clean")
    clean, perturbed = check_features(clean, "clean"), check_features(perturbed, "perturbed")
    labels, train_labels = np.asarray(labels), np.asarray(train_labels)
    if (clean.shape != perturbed.shape or labels.shape != (len(clean),)
            or train_labels.shape != (len(train_clean),) or clean.shape[1] != train_clean.shape[1]):
        raise ValueError(f"clean {clean.shape}, perturbed {perturbed.shape}, labels "
                         f"{labels.shape}, train_clean {train_clean.shape} and train_labels "
                         f"{train_labels.shape} must describe the same rows and features")
    if not margin >= 0 or n_boot < 1:
        raise ValueError(f"need margin >= 0 and n_boot >= 1; got {margin}, {n_boot}")
    k = int(min(k, len(train_clean) - 1, train_clean.shape[1]))
    mean, comps, _ = fit_pca(train_clean, k)
    A = within_whitener((train_clean - mean) @ comps.T, train_labels)
    Z = ((perturbed.astype(np.float64) - clean) @ comps.T) @ A
    q, pairs = pair_shift(Z, labels, np.ones((1, len(Z))))
    if not pairs[0] > 0:
        raise ValueError(f"no class has two test rows ({len(Z)} rows, "
                         f"{len(np.unique(labels))} classes): the centroid shift is undefined")
    boots = _signed_root(np.concatenate([pair_shift(Z, labels, _counts(idx, len(Z)))[0]
                                         for idx in bootstrap_index(len(Z), n_boot, seed)]))
    low, high = (percentile_interval(boots, confidence) if np.isfinite(boots).all()
                 else (float("nan"), float("nan")))
    out = dict(k=k, rank=int(A.shape[1]), n=int(len(Z)), pairs=int(pairs[0]),
               shift=float(_signed_root(q[0])), low=low, high=high, margin=float(margin),
               moved=verdict(low, high, "greater", margin),
               stays=within_verdict(low, high, margin), confidence=confidence,
               n_boot=int(n_boot), seed=seed)
    return dict(out, boots=boots) if return_boots else out


def compare_shifts(moved, still, *, margin=SHIFT_MARGIN, confidence=0.95) -> dict:
    """Paired interval of ``moved["shift"] - still["shift"]``: two results of
    :func:`pca_centroid_shift` (``return_boots=True``) on the SAME test images (same rows,
    ``n``, ``seed``, ``n_boot``), so their resamples share indices.

    Returns dict ``effect``, ``low``, ``high``, ``margin``, ``moves_more`` (verdict of
    effect > 0 with ``margin``), ``n``, ``confidence``. A resample without a pair in either
    gives a NaN interval (``inconclusive``).
    """
    check_confidence(confidence)
    if any(moved[key] != still[key] for key in ("n", "seed", "n_boot")):
        raise ValueError("compare_shifts needs two results on the same images with the same "
                         f"resamples; got n/seed/n_boot {moved['n']}/{moved['seed']}/"
                         f"{moved['n_boot']} and {still['n']}/{still['seed']}/{still['n_boot']}")
    diff = np.asarray(moved["boots"]) - np.asarray(still["boots"])
    low, high = (percentile_interval(diff, confidence) if np.isfinite(diff).all()
                 else (float("nan"), float("nan")))
    return dict(effect=float(moved["shift"] - still["shift"]), low=low, high=high,
                margin=float(margin), moves_more=verdict(low, high, "greater", margin),
                n=int(moved["n"]), confidence=confidence)
