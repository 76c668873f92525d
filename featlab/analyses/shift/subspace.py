"""How a perturbation moves features relative to the clean subspace (fusion paper Figure 2).

Section 3.1 shows, with a 2-D PCA fitted on clean features, that blurring the object moves the
whole cloud of foreground (object backbone) features, while background (scene backbone)
features stay inside the clean subspace. :func:`subspace_shift` puts numbers on both claims:

- ``centroid_shift``: per class, ``|mean(perturbed_c) - mean(clean_c)| / spread_c`` with
  ``spread_c`` the RMS distance of the clean class members to their centroid ("the cloud
  moved by x of its own widths");
- ``outside_fraction``: ``sum_i |d_i - P_k d_i|^2 / sum_i |d_i|^2`` for the per-image
  displacements ``d_i = perturbed_i - clean_i`` and ``P_k`` the projector on the top-k clean
  principal components ("how much of the movement leaves the clean subspace");
- a paired sign-flip permutation test of zero mean displacement
  (:func:`featlab.analyses.stats.sign_flip_test`).
"""
from __future__ import annotations

import warnings

import numpy as np

from ...utils.validation import check_features
from ..stats import sign_flip_test


def fit_pca(X, k):
    """PCA of X (n, p) by SVD of the mean-centred data.

    Returns ``(mean (p,), components (k, p), explained_variance_ratio (k,))``; components
    match scikit-learn's ``PCA`` up to sign (here: largest-|entry| of each made positive).
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    _, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
    k = int(min(k, len(s)))
    comps = Vt[:k] * np.sign(Vt[np.arange(k), np.abs(Vt[:k]).argmax(axis=1)])[:, None]
    total = (s ** 2).sum()
    ratio = s[:k] ** 2 / total if total > 0 else np.zeros(k)
    return mean, comps, ratio


def _class_shifts(clean, perturbed, labels):
    classes, shifts, counts = np.unique(labels), [], []
    for c in classes:
        rows = labels == c
        centre = clean[rows].mean(axis=0)
        spread = np.sqrt(((clean[rows] - centre) ** 2).sum(axis=1).mean())
        moved = np.linalg.norm(perturbed[rows].mean(axis=0) - centre)
        shifts.append(moved / spread if spread > 0 else (0.0 if moved == 0 else np.nan))
        counts.append(int(rows.sum()))
    return classes, np.asarray(shifts), counts


def _outside_fraction(D, comps):
    total = (D ** 2).sum()
    if total == 0:
        return 0.0
    inside = ((D @ comps.T) ** 2).sum()
    return float(max(total - inside, 0.0) / total)


def _summary(v):
    return dict(mean=float(v.mean()), std=float(v.std()), median=float(np.median(v)),
                min=float(v.min()), max=float(v.max()))


def subspace_shift(clean, perturbed, labels, *, k=10, n_permutations=999, random_state=0):
    """Shift of ``perturbed`` features relative to the clean ones (same images, same rows).

    Parameters
    ----------
    clean, perturbed : ndarray (n_samples, n_features). Features of the same images.
    labels : ndarray (n_samples,). Class of each image.
    k : int. Size of the clean principal subspace.
    n_permutations, random_state : sign-flip test settings.

    Returns
    -------
    dict (JSON-able): ``n``, ``n_features``, ``k``, ``explained_variance_ratio`` (top k),
    ``classes``, ``class_counts``, ``centroid_shift`` (per class), ``centroid_shift_mean``
    (mean over classes with a defined shift), ``undefined_classes`` (classes whose shift is
    NaN: their clean rows have no spread, e.g. a single image), ``outside_fraction``,
    ``mean_displacement_norm``, ``mean_displacement_outside_fraction`` (same fraction for the
    mean displacement vector alone), ``statistic`` and ``p_value`` of the sign-flip test,
    ``n_permutations`` and ``displacement_norm`` (mean/std/median/min/max of |d_i|).
    """
    clean = check_features(clean, "clean").astype(np.float64)
    perturbed = check_features(perturbed, "perturbed").astype(np.float64)
    labels = np.asarray(labels)
    if clean.shape != perturbed.shape or labels.shape != (len(clean),):
        raise ValueError(f"clean {clean.shape}, perturbed {perturbed.shape} and labels "
                         f"{labels.shape} must describe the same rows")
    _, comps, ratio = fit_pca(clean, k)
    D = perturbed - clean
    classes, shifts, counts = _class_shifts(clean, perturbed, labels)
    stat, p = sign_flip_test(D, n_permutations=n_permutations, random_state=random_state)
    mean_d = D.mean(axis=0, keepdims=True)
    defined = shifts[np.isfinite(shifts)]
    return dict(
        n=int(len(clean)), n_features=int(clean.shape[1]), k=int(len(comps)),
        explained_variance_ratio=ratio.tolist(),
        classes=[c.item() for c in classes], class_counts=counts,
        centroid_shift=[float(s) for s in shifts],
        centroid_shift_mean=float(defined.mean()) if len(defined) else float("nan"),
        undefined_classes=[c.item() for c, v in zip(classes, shifts) if not np.isfinite(v)],
        outside_fraction=_outside_fraction(D, comps),
        mean_displacement_norm=float(np.linalg.norm(mean_d)),
        mean_displacement_outside_fraction=_outside_fraction(mean_d, comps),
        statistic=stat, p_value=p, n_permutations=int(n_permutations),
        displacement_norm=_summary(np.linalg.norm(D, axis=1)),
    )


def project(clean, perturbed, method="pca", random_state=0):
    """2-D embedding fitted on ``clean``, applied to both (Figure 2 panels).

    ``method="pca"``: top-2 clean principal components. ``method="umap"``: umap-learn fitted on
    clean (``n_neighbors`` = min(15, n - 1)), ``.transform`` of perturbed; seeded, single
    thread. Returns ``(clean_2d, perturbed_2d)``, float64 arrays of shape (n, 2).
    """
    clean = check_features(clean, "clean").astype(np.float64)
    perturbed = check_features(perturbed, "perturbed").astype(np.float64)
    if method == "pca":
        mean, comps, _ = fit_pca(clean, 2)
        return (clean - mean) @ comps.T, (perturbed - mean) @ comps.T
    if method != "umap":
        raise ValueError(f"method must be 'pca' or 'umap'; got {method!r}")
    if len(clean) < 4:
        raise ValueError(f"UMAP needs at least 4 clean rows; got {len(clean)}")
    with warnings.catch_warnings():  # umap warns that its optional TensorFlow part is missing
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # lazy: slow import (numba)

    reducer = umap.UMAP(n_components=2, n_neighbors=int(min(15, len(clean) - 1)),
                        random_state=random_state, n_jobs=1,
                        init="spectral" if len(clean) > 32 else "random")
    clean_2d = reducer.fit_transform(clean)
    return np.asarray(clean_2d, np.float64), np.asarray(reducer.transform(perturbed), np.float64)
