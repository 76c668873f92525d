"""Robustness scores from per-image correctness (M-TLAT paper, Section 5.1, equation 7).

``R = A_phi / A_clean`` per classifier and perturbation; a perturbation with a ``severity``
(the ImageNet-C corruptions and the paper's four extras) scores as the mean of R over its
stored severities, as Table 1 does. "+"/"-" against a reference classifier when the 95 %
paired-bootstrap interval of the difference in R (the same resampled test images for both
classifiers and every severity) excludes 0. mCE as in Hendrycks & Dietterich (ICLR 2019):
``CE_c = sum_s E_{s,c} / sum_s E^ref_{s,c}`` with E = 1 - accuracy, averaged over the
ImageNet-C corruptions c stored.
"""
from __future__ import annotations

import numpy as np


def column_scores(correct: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """R of one column for B resamples at once.

    Parameters
    ----------
    correct : ndarray of shape (n_members, B, n) bool — correctness under each condition the
        column averages (rows already resampled; B = 1 for the point estimate)
    clean : ndarray of shape (B, n) bool

    Returns
    -------
    ndarray of shape (B,) — mean over members of A_member / A_clean (NaN when A_clean = 0)
    """
    a_clean = clean.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(a_clean > 0, correct.mean(axis=-1) / a_clean, np.nan)
    return ratios.mean(axis=0)


def bootstrap_rows(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement (one draw shared by all classifiers)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def robustness_scores(correct: dict, clean_key: str, columns: dict, reference: str,
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """R per classifier and column, with "+"/"-" against ``reference``.

    Parameters
    ----------
    correct : dict classifier -> dict condition key -> ndarray (n,) bool, rows aligned
    clean_key : str — the clean condition
    columns : dict column name -> list of condition keys (averaged)
    reference : str — a classifier of ``correct``

    Returns
    -------
    dict classifier -> dict(clean=A_clean, scores={column: dict(R, diff, low, high, sign)})
    """
    n = len(correct[reference][clean_key])
    rows = bootstrap_rows(n, n_boot, seed)
    tail = (1.0 - level) / 2.0

    def point(name, members):
        by_key = correct[name]
        matrix = np.stack([by_key[k] for k in members])[:, None, :]
        return float(column_scores(matrix, by_key[clean_key][None, :])[0])

    def resampled(name, members):  # (n_members, B, n): one column at a time bounds memory
        by_key = correct[name]
        matrix = np.stack([by_key[k][rows] for k in members])
        return column_scores(matrix, by_key[clean_key][rows])

    out = {}
    for name in correct:
        scores = {}
        for column, members in columns.items():
            r, r_ref = point(name, members), point(reference, members)
            low = high = 0.0
            if name != reference:
                diff = resampled(name, members) - resampled(reference, members)
                finite = diff[np.isfinite(diff)]  # resamples with A_clean = 0 have no R
                if len(finite):
                    low, high = (float(v) for v in np.quantile(finite, [tail, 1 - tail]))
            sign = "+" if low > 0 else "-" if high < 0 else ""
            scores[column] = dict(R=r, diff=r - r_ref, low=low, high=high, sign=sign)
        out[name] = dict(clean=float(correct[name][clean_key].mean()), scores=scores)
    return out


def mean_corruption_error(correct: dict, corruptions: dict, reference: str) -> dict:
    """CE per ImageNet-C corruption and their mean (mCE), relative to ``reference``.

    Parameters
    ----------
    correct : dict classifier -> dict condition key -> ndarray (n,) bool
    corruptions : dict corruption column -> list of its severity condition keys

    Returns
    -------
    dict classifier -> dict(mCE=float, CE={column: float}); NaN where the reference makes
    no error on a corruption
    """
    out = {}
    for name, by_key in correct.items():
        ce = {}
        for column, members in corruptions.items():
            errors = sum(1.0 - by_key[k].mean() for k in members)
            ref = sum(1.0 - correct[reference][k].mean() for k in members)
            ce[column] = float(errors / ref) if ref > 0 else float("nan")
        values = [v for v in ce.values()]
        out[name] = dict(mCE=float(np.mean(values)) if values else float("nan"), CE=ce)
    return out
