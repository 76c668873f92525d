"""Linear classification heads on cached features, with the fusion paper's foreground penalty.

Fusion paper (contextual-fusion.md) Section 2.1: the foreground, background and joint classifiers
are single fully connected layers on frozen backbone features. Section 3.4 trains the joint head
with ``L = -sum_i t_i log softmax(a_i) + alpha |theta_fg|^2``. :class:`LinearHead` minimises

    mean_i CE(softmax(x_i theta^T + b), y_i) + alpha |theta_pen|^2 + l2 |theta|^2

where ``theta`` are the weights in *standardized* feature space (not the bias) and ``theta_pen``
the columns listed in ``penalized``. The mean replaces the paper's sum so that ``alpha`` does not
scale with the number of samples: the paper's ``alpha`` equals ``N * alpha`` here.

The solver is in :mod:`.solver`. It is deterministic, so a fit is a pure function of its
inputs: :data:`.memo.FIT_MEMO` keeps the last solutions in memory keyed by a digest of everything
the solver sees (standardized features, labels, weights, penalties, tolerances, warm start),
and an identical fit in the same process (``featlab demo`` fits heads that ``featlab report``
fits again) returns the stored solution instead of solving again, with the same bytes.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning

from ...errors import FeatlabError
from ...utils.validation import check_features
from .memo import FIT_MEMO
from .solver import CHUNK, lbfgs_fit, matmul64, softmax, Problem

log = logging.getLogger(__name__)


def _standardize(X, standardize, w=None):
    """Column mean and scale (float64, population std; 1 where constant) and X standardized.

    With sample weights ``w`` (n,) the mean and std are weighted, so that integer weights give
    the statistics of the rows repeated that many times."""
    p = X.shape[1]
    if not standardize:
        return np.zeros(p), np.ones(p), X
    if w is None:
        mean = X.mean(axis=0, dtype=np.float64)
        scale = X.std(axis=0, dtype=np.float64)
    else:
        w = w / w.sum()
        mean = sum(w[i:i + CHUNK] @ X[i:i + CHUNK].astype(np.float64)
                   for i in range(0, len(X), CHUNK))
        scale = np.sqrt(sum(w[i:i + CHUNK] @ (X[i:i + CHUNK].astype(np.float64) - mean) ** 2
                            for i in range(0, len(X), CHUNK)))
    scale[scale <= 1e-12 * max(1.0, np.abs(mean).max())] = 1.0
    Xs = np.empty(X.shape, X.dtype)
    for i in range(0, len(X), CHUNK):
        Xs[i:i + CHUNK] = (X[i:i + CHUNK] - mean) / scale
    return mean, scale, Xs


class LinearHead(ClassifierMixin, BaseEstimator):
    """Softmax linear head with an extra L2 penalty on a block of columns (fusion Sec. 3.4).

    Minimises ``mean CE + alpha * |theta[:, penalized]|^2 + l2 * |theta|^2`` with ``theta`` the
    weights in standardized feature space (bias not penalized). The paper's loss uses a *sum*
    over samples; this uses the *mean*, so ``alpha`` does not scale with N (paper alpha = N *
    alpha here). With ``alpha=0`` this is scikit-learn's multinomial ``LogisticRegression`` with
    ``C = 1 / (2 * l2 * N)`` on standardized X.

    Parameters
    ----------
    alpha : float, >= 0. Strength of the penalty on the ``penalized`` columns.
    penalized : index array, boolean mask, slice or None. Columns (of X) under ``alpha``; the
        foreground block of a joint head. None means all columns.
    l2 : float, > 0. Ridge penalty on all weights (keeps the problem strictly convex).
    standardize : bool. Fit on ``(X - mean_) / scale_``; otherwise on X itself.
    max_iter : int. Maximum L-BFGS iterations.
    tol : float. Stop when max |gradient| (standardized space, weights and bias) <= tol.

    Attributes
    ----------
    classes_ : ndarray (n_classes,). mean_, scale_ : ndarray (n_features,).
    coef_ : ndarray (n_classes, n_features), intercept_ : ndarray (n_classes,) in raw feature
        space: ``X @ coef_.T + intercept_`` are the logits.
    coef_std_, intercept_std_ : the same in standardized space (``coef_ = coef_std_ / scale_``).
    n_iter_ : int. L-BFGS iterations used.
    """

    def __init__(self, alpha=0.0, penalized=None, l2=1e-4, standardize=True, max_iter=1000,
                 tol=1e-8):
        self.alpha = alpha
        self.penalized = penalized
        self.l2 = l2
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, n_classes=None, warm_start_from=None, sample_weight=None):
        """Fit on X (n_samples, n_features) and labels y (n_samples,); returns self.

        ``n_classes``: labels are then integers in ``[0, n_classes)`` and ``classes_`` is
        ``arange(n_classes)`` (classes absent from y still get a row). ``warm_start_from``: a
        fitted head with the same classes and features whose solution starts the solver.
        ``sample_weight``: ndarray (n_samples,) >= 0; the data term becomes the weighted mean
        ``sum_i w_i CE_i / sum_i w_i`` and the standardization is weighted too, so integer
        weights fit the same head as rows repeated that many times.
        """
        X = check_features(X)
        classes, yi = _encode_labels(y, n_classes, len(X))
        w = _check_weights(sample_weight, len(X))
        prep = _standardize(X, self.standardize, w)
        return self._fit_prepared(prep, classes, yi, warm_start_from, w)

    def _fit_prepared(self, prep, classes, yi, warm_start_from=None, w=None):
        mean, scale, Xs = prep
        p, C = Xs.shape[1], len(classes)
        if not self.l2 > 0 or not self.alpha >= 0:
            raise FeatlabError(f"need l2 > 0 and alpha >= 0; got l2={self.l2}, alpha={self.alpha}")
        penalty = self.l2 + self.alpha * _mask(self.penalized, p)
        start = None
        if warm_start_from is not None:
            W = np.asarray(warm_start_from.coef_, np.float64)
            if W.shape != (C, p):
                raise FeatlabError(f"warm_start_from has coef_ of shape {W.shape}; need {(C, p)}")
            start = (W * scale).T.copy(), warm_start_from.intercept_ + W @ mean
        key = FIT_MEMO.key(Xs, mean, scale, yi, classes, penalty,
                           np.zeros(0) if w is None else w, self.tol, self.max_iter,
                           *(start if start is not None else ("cold",)))
        solution = FIT_MEMO.get(key)
        if solution is None:
            solution = self._solve(Xs, yi, C, penalty, w, start)
            FIT_MEMO.put(key, solution)
        if not solution["converged"]:
            warnings.warn(f"LinearHead did not reach tol={self.tol} in {solution['n_iter']} "
                          "iterations; increase max_iter", ConvergenceWarning, stacklevel=3)
        Theta, b = solution["Theta"], solution["b"]
        self.n_iter_ = solution["n_iter"]
        b = b - b.mean()
        self.classes_, self.mean_, self.scale_ = classes, mean, scale
        self.n_features_in_ = p
        self.coef_std_, self.intercept_std_ = Theta.T.copy(), b
        self.coef_ = self.coef_std_ / scale
        self.intercept_ = b - self.coef_ @ mean
        log.debug("LinearHead alpha=%g: %d iterations", self.alpha, self.n_iter_)
        return self

    def _solve(self, Xs, yi, C, penalty, w, start) -> dict:
        p = Xs.shape[1]
        prob = Problem(Xs, yi, C, penalty, w)
        Theta, b = start if start is not None else (np.zeros((p, C)), np.zeros(C))
        # A cold start preconditions at uniform probabilities: rebuild once they have moved.
        Theta, b, n_iter, ok = lbfgs_fit(prob, Theta, b, self.tol, self.max_iter,
                                         refresh_at=() if start is not None else (25,))
        return dict(Theta=Theta, b=b, n_iter=n_iter, converged=ok)

    def decision_function(self, X):
        """Logits, ndarray (n_samples, n_classes), float64."""
        X = check_features(X)
        return matmul64(X, self.coef_.T) + self.intercept_

    def predict_proba(self, X):
        """Class probabilities, ndarray (n_samples, n_classes)."""
        return softmax(self.decision_function(X))[0]

    def predict(self, X):
        """Predicted labels, ndarray (n_samples,), values from ``classes_``."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def objective(self, X, y, sample_weight=None):
        """The training objective at the fitted parameters (mean CE, weighted with
        ``sample_weight``, + penalties), float."""
        yi = np.searchsorted(self.classes_, np.asarray(y))
        A = self.decision_function(X)
        lse = softmax(A)[1]
        m = self.l2 + self.alpha * _mask(self.penalized, self.n_features_in_)
        w = _check_weights(sample_weight, len(A))
        ce = lse - A[np.arange(len(A)), yi]
        data = ce.mean() if w is None else (w @ ce) / w.sum()
        return float(data + (m * self.coef_std_ ** 2).sum())

    def to_torch(self):
        """``torch.nn.Linear`` (float32) computing the raw-space logits."""
        C, p = self.coef_.shape
        lin = torch.nn.Linear(p, C)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(self.coef_, dtype=torch.float32))
            lin.bias.copy_(torch.as_tensor(self.intercept_, dtype=torch.float32))
        return lin


def _mask(penalized, p):
    mask = np.zeros(p, bool)
    mask[slice(None) if penalized is None else penalized] = True
    return mask


def _check_weights(w, n):
    if w is None:
        return None
    w = np.asarray(w, np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise FeatlabError(f"sample_weight must be {n} finite values >= 0 with a positive sum; "
                           f"got shape {w.shape}")
    return w


def _encode_labels(y, n_classes, n):
    y = np.asarray(y)
    if y.shape != (n,):
        raise FeatlabError(f"y must have shape ({n},); got {y.shape}")
    if n_classes is None:
        classes = np.unique(y)
        return classes, np.searchsorted(classes, y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise FeatlabError(f"with n_classes={n_classes}, y must hold integers in [0, {n_classes})")
    return np.arange(n_classes), y.astype(np.intp)


def fit_alpha_sweep(X, y, alphas, penalized, *, n_classes=None, **kw):
    """Fit one :class:`LinearHead` per alpha, warm-started in increasing alpha.

    X is standardized once. Returns the heads in the order of ``alphas``; ``kw`` go to
    :class:`LinearHead` (``l2``, ``standardize``, ``max_iter``, ``tol``).
    """
    X = check_features(X)
    classes, yi = _encode_labels(y, n_classes, len(X))
    prep = _standardize(X, kw.get("standardize", True))
    heads, prev = [None] * len(alphas), None
    for i in np.argsort(np.asarray(alphas, float), kind="stable"):
        head = LinearHead(alpha=float(alphas[i]), penalized=penalized, **kw)
        heads[i] = prev = head._fit_prepared(prep, classes, yi, warm_start_from=prev)
    return heads
