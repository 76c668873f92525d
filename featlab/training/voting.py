"""Voting coefficients of parallel MAT, MAT paper Section 4.2, Eq. (4).

The decision unit mixes the S members' predicted probabilities with coefficients
``a_k >= 0, sum_k a_k = 1``: ``p(y | x) = sum_k a_k p_k(y | x)``. The paper learns ``a``
"using a simple neural network"; here that network is the mixture itself and ``a`` is its
maximum-likelihood fit on a validation split, by the EM iteration for mixture weights

    r_ik = a_k p_k(y_i | x_i) / sum_j a_j p_j(y_i | x_i),      a_k <- mean_i r_ik,

which stays on the simplex, never decreases the likelihood, and converges to the global
optimum (the negative log-likelihood is convex in ``a``).
"""
from __future__ import annotations

import numpy as np


def fit_voting(probabilities, *, max_iter: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood voting coefficients.

    Parameters
    ----------
    probabilities : array of shape (n_samples, S) — ``p_k(y_i | x_i)``, each member's
        probability of the true label of validation sample ``i``
    max_iter, tol : EM stops when the coefficients move less than ``tol`` (L1)

    Returns
    -------
    ndarray of shape (S,), float64, ``>= 0`` and summing to 1
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"probabilities must have shape (n_samples, S); got {p.shape}")
    p = np.clip(p, 1e-300, None)
    a = np.full(p.shape[1], 1.0 / p.shape[1])
    for _ in range(max_iter):
        weighted = p * a
        r = weighted / weighted.sum(axis=1, keepdims=True)
        new = r.mean(axis=0)
        new /= new.sum()
        if np.abs(new - a).sum() < tol:
            a = new
            break
        a = new
    return a


def mixture_nll(probabilities, voting) -> float:
    """Mean ``-log sum_k a_k p_k(y_i | x_i)`` (the objective :func:`fit_voting` minimises)."""
    p = np.asarray(probabilities, dtype=np.float64)
    return float(-np.log(np.clip(p @ np.asarray(voting, dtype=np.float64), 1e-300, None)).mean())
