"""Voting coefficients of parallel MAT (MAT paper Section 4.2, Eq. 4) and the voted model.

The S single-strength heads' class probabilities are combined as ``p(x) = sum_k a_k p_k(x)``
with ``a_k >= 0`` and ``sum_k a_k = 1`` (the paper's upper-boundary decision unit). The paper
learns ``a`` "using a simple neural network"; featlab fits the same thing — a softmax layer over
the S heads, trained by maximum likelihood on a validation split — by EM on the simplex: the
negative log-likelihood ``-mean_i log sum_k a_k p_k(y_i | x_i)`` is convex in ``a``, and each EM
step ``a_k <- mean_i a_k p_k(y_i|x_i) / sum_k' a_k' p_k'(y_i|x_i)`` lowers it, so it converges
to the global optimum from the uniform start (deterministically).
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError

TINY = 1e-300


def _check(probas, y):
    probas = np.asarray(probas, np.float64)
    y = np.asarray(y)
    if probas.ndim != 3 or probas.shape[1] != len(y) or not len(y):
        raise FeatlabError(f"probas must have shape (n_heads, n_samples={len(y)}, n_classes); "
                           f"got {probas.shape}")
    if not np.isfinite(probas).all() or (probas < 0).any():
        raise FeatlabError("probas must be finite probabilities >= 0")
    return probas, y


def voting_nll(probas, y, weights):
    """``-mean_i log sum_k a_k p_k(y_i | x_i)``, the objective the weights minimise."""
    probas, y = _check(probas, y)
    own = probas[:, np.arange(len(y)), y]  # (S, n)
    return float(-np.log(np.maximum(np.asarray(weights) @ own, TINY)).mean())


def fit_voting_weights(probas, y, *, max_iter=5000, tol=1e-10):
    """Voting coefficients ``a`` (S,), ``a >= 0``, ``sum a = 1``, by EM on validation data.

    Parameters
    ----------
    probas : array_like (S, n_samples, n_classes). Each head's class probabilities on the
        validation samples.
    y : array_like (n_samples,). Validation labels (class indices).
    max_iter : int. EM iterations at most. tol : float. Stop when max |a_new - a| <= tol.

    Returns
    -------
    ndarray (S,) of float64.
    """
    probas, y = _check(probas, y)
    own = np.maximum(probas[:, np.arange(len(y)), y], TINY)  # (S, n)
    a = np.full(len(probas), 1.0 / len(probas))
    for _ in range(max_iter):
        mix = a @ own
        new = a * (own / mix).mean(axis=1)
        new /= new.sum()
        done = np.abs(new - a).max() <= tol
        a = new
        if done:
            break
    return a


class VotedHeads:
    """Heads combined by voting: ``predict_proba(X) = sum_k a_k head_k.predict_proba(X)``.

    Parameters
    ----------
    heads : list of fitted :class:`~featlab.analyses.heads.linear.LinearHead` (same classes).
    weights : array_like (len(heads),), >= 0, summing to 1.
    """

    def __init__(self, heads, weights):
        weights = np.asarray(weights, np.float64)
        if len(heads) != len(weights) or (weights < 0).any() or abs(weights.sum() - 1) > 1e-9:
            raise FeatlabError(f"need one weight >= 0 per head, summing to 1; got {weights}")
        self.heads, self.weights = list(heads), weights
        self.classes_ = heads[0].classes_

    def predict_proba(self, X):
        """Voted class probabilities, ndarray (n_samples, n_classes)."""
        return sum(a * h.predict_proba(X) for a, h in zip(self.weights, self.heads) if a > 0)

    def predict(self, X):
        """Predicted labels, ndarray (n_samples,), values from ``classes_``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
