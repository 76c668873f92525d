"""Voting coefficients of parallel MAT (MAT paper Section 4.2, Eq. 4).

The upper-boundary decision unit combines the S single-strength models' class probabilities
as ``p(y | x) = sum_k a_k p_k(y | x)`` with ``a_k >= 0`` and ``sum_k a_k = 1``. The paper learns
``a`` "using a simple neural network"; here that network is the mixture itself — a layer
over the S members' probabilities, trained by maximum likelihood on a validation split —
fitted by the EM iteration for mixture weights

    r_ik = a_k p_k(y_i | x_i) / sum_j a_j p_j(y_i | x_i),      a_k <- mean_i r_ik.

The negative log-likelihood ``-mean_i log sum_k a_k p_k(y_i | x_i)`` is convex in ``a``; each EM
step stays on the simplex and never raises it, so from the uniform start the iteration
converges (deterministically) to the global optimum. Used by ``featlab train --recipe
mat-parallel`` (networks) and ``fit-head --recipe mat-parallel`` (heads).
"""
from __future__ import annotations

import numpy as np

from ..errors import FeatlabError

TINY = 1e-300


def _checked(probabilities) -> np.ndarray:
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise FeatlabError(f"voting needs the members' probabilities of the true labels, "
                           f"shape (n_samples, S); got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise FeatlabError("voting needs finite probabilities >= 0")
    return p


def label_probabilities(probas, y) -> np.ndarray:
    """``p_k(y_i | x_i)`` (n_samples, S) from class probabilities ``probas`` (S, n_samples,
    n_classes) and labels ``y`` (n_samples,) (class indices)."""
    probas, y = np.asarray(probas, np.float64), np.asarray(y)
    if probas.ndim != 3 or probas.shape[1] != len(y) or not len(y):
        raise FeatlabError(f"probas must have shape (S, n_samples={len(y)}, n_classes); got "
                           f"{probas.shape}")
    return probas[:, np.arange(len(y)), y].T


def voting_nll(probabilities, voting) -> float:
    """``-mean_i log sum_k a_k p_k(y_i | x_i)``, the objective :func:`fit_voting` minimises.

    ``probabilities``: (n_samples, S) true-label probabilities; ``voting``: (S,) coefficients.
    """
    p = _checked(probabilities)
    return float(-np.log(np.maximum(p @ np.asarray(voting, np.float64), TINY)).mean())


def fit_voting(probabilities, *, max_iter: int = 5000, tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood voting coefficients by EM on the simplex.

    Parameters
    ----------
    probabilities : array_like (n_samples, S). ``p_k(y_i | x_i)``: member k's probability of
        the true label of validation sample i (:func:`label_probabilities`).
    max_iter : int. EM iterations at most.
    tol : float. Stop when no coefficient moves more than ``tol``.

    Returns
    -------
    ndarray (S,) of float64, ``>= 0``, summing to 1.
    """
    own = np.maximum(_checked(probabilities), TINY)
    a = np.full(own.shape[1], 1.0 / own.shape[1])
    for _ in range(int(max_iter)):
        new = a * (own / (own @ a)[:, None]).mean(axis=0)
        new /= new.sum()
        done = np.abs(new - a).max() <= tol
        a = new
        if done:
            break
    return a
