"""``linear``: the softmax linear head on cached features, with the fusion paper's penalty.

Fusion paper (contextual-fusion.md) Section 2.1: the foreground, background and joint classifiers
are single fully connected layers on frozen backbone features. Section 3.4 trains the joint head
with ``L = -sum_i t_i log softmax(a_i) + alpha |theta_fg|^2``. :class:`LinearHead` minimises

    mean_i CE(softmax(x_i theta^T + b), y_i) + alpha |theta_pen|^2 + l2 |theta|^2

where ``theta`` are the weights in *standardized* feature space (not the bias) and ``theta_pen``
the columns listed in ``penalized``. The mean replaces the paper's sum so that ``alpha`` does not
scale with the number of samples: the paper's ``alpha`` equals ``N * alpha`` here.

The solver is in :mod:`.solver`; the head contract in :mod:`.base`. It is deterministic, so a fit is a pure function of its
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
from sklearn.exceptions import ConvergenceWarning

from ..errors import FeatlabError
from .base import (Head, as_blocks, block_means, check_weights, concat, encode_labels,
                   penalties, standardize)
from .memo import FIT_MEMO
from .registry import HEADS
from .solver import lbfgs_fit, matmul64, softmax, Problem

log = logging.getLogger(__name__)


@HEADS.register("linear")
class LinearHead(Head):
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
    penalty : sequence of float >= 0, one per input, or None. Added to the columns of each
        input (:mod:`.base`): ``alpha`` on ``penalized`` generalised to any number of inputs.

    Attributes
    ----------
    classes_ : ndarray (n_classes,). mean_, scale_ : ndarray (n_features,).
    coef_ : ndarray (n_classes, n_features), intercept_ : ndarray (n_classes,) in raw feature
        space: ``X @ coef_.T + intercept_`` are the logits.
    coef_std_, intercept_std_ : the same in standardized space (``coef_ = coef_std_ / scale_``).
    n_iter_ : int. L-BFGS iterations used. input_dims_ : list of int, features per input.
    """

    def __init__(self, alpha=0.0, penalized=None, l2=1e-4, standardize=True, max_iter=1000,
                 tol=1e-8, penalty=None):
        self.penalty = penalty
        self.alpha = alpha
        self.penalized = penalized
        self.l2 = l2
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, blocks, y, sample_weight=None, n_classes=None, warm_start_from=None):
        """Fit on ``blocks`` (one array (n_samples, n_features) or a list, one per input) and
        labels y (n_samples,); returns self.

        ``n_classes``: labels are then integers in ``[0, n_classes)`` and ``classes_`` is
        ``arange(n_classes)`` (classes absent from y still get a row). ``warm_start_from``: a
        fitted head with the same classes and features whose solution starts the solver.
        ``sample_weight``: ndarray (n_samples,) >= 0; the data term becomes the weighted mean
        ``sum_i w_i CE_i / sum_i w_i`` and the standardization is weighted too, so integer
        weights fit the same head as rows repeated that many times.
        """
        blocks = as_blocks(blocks)
        X = concat(blocks)
        classes, yi = encode_labels(y, n_classes, len(X))
        w = check_weights(sample_weight, len(X))
        prep = standardize(X, self.standardize, w)
        return self._fit_prepared(prep, classes, yi, warm_start_from, w,
                                  [b.shape[1] for b in blocks])

    def _fit_prepared(self, prep, classes, yi, warm_start_from=None, w=None, dims=None):
        mean, scale, Xs = prep
        p, C = Xs.shape[1], len(classes)
        if not self.l2 > 0 or not self.alpha >= 0:
            raise FeatlabError(f"need l2 > 0 and alpha >= 0; got l2={self.l2}, alpha={self.alpha}")
        dims = list(dims or [p])
        penalty = self.l2 + self.alpha * _mask(self.penalized, p)
        if self.penalty is not None:
            penalty = penalty + np.repeat(penalties(self.penalty, dims), dims)
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
        self.n_features_in_, self.input_dims_ = p, dims
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

    def decision_function(self, blocks):
        """Logits, ndarray (n_samples, n_classes), float64."""
        return matmul64(concat(self._blocks(blocks)), self.coef_.T) + self.intercept_

    def objective(self, X, y, sample_weight=None):
        """The training objective at the fitted parameters (mean CE, weighted with
        ``sample_weight``, + penalties), float."""
        yi = np.searchsorted(self.classes_, np.asarray(y))
        A = self.decision_function(X)
        lse = softmax(A)[1]
        m = self.l2 + self.alpha * _mask(self.penalized, self.n_features_in_)
        if self.penalty is not None:
            m = m + np.repeat(penalties(self.penalty, self.input_dims_), self.input_dims_)
        w = check_weights(sample_weight, len(A))
        ce = lse - A[np.arange(len(A)), yi]
        data = ce.mean() if w is None else (w @ ce) / w.sum()
        return float(data + (m * self.coef_std_ ** 2).sum())

    def input_weights(self, blocks=None) -> list:
        """Mean |weight| per input, standardized space (Figure 4b; ``blocks`` unused)."""
        return block_means(self.coef_std_, self.input_dims_)

    def to_arrays(self) -> tuple[dict, dict]:
        """``coef`` (C, d), ``intercept`` (C,), ``mean``, ``scale`` (d,), ``coef_std`` (C, d),
        float32; no attributes of its own (a stored head without ``head_type`` is linear)."""
        return dict(coef=self.coef_.astype(np.float32),
                    intercept=self.intercept_.astype(np.float32),
                    mean=self.mean_.astype(np.float32), scale=self.scale_.astype(np.float32),
                    coef_std=self.coef_std_.astype(np.float32)), {}

    @classmethod
    def from_arrays(cls, arrays: dict, attrs: dict):
        """The head a stored record describes (float64 copies of its arrays); ``attrs`` may
        give ``l2`` and ``input_dims``."""
        head = cls(l2=attrs.get("l2", 1e-4))
        head.coef_ = np.asarray(arrays["coef"], np.float64)
        head.intercept_ = np.asarray(arrays["intercept"], np.float64)
        C, p = head.coef_.shape
        head.classes_, head.n_features_in_ = np.arange(C), p
        head.input_dims_ = list(attrs.get("input_dims") or [p])
        head.mean_ = np.asarray(arrays.get("mean", np.zeros(p)), np.float64)
        head.scale_ = np.asarray(arrays.get("scale", np.ones(p)), np.float64)
        head.coef_std_ = np.asarray(arrays.get("coef_std", head.coef_ * head.scale_), np.float64)
        head.intercept_std_ = head.intercept_ + head.coef_ @ head.mean_
        return head

    def to_torch(self, dtype=torch.float32):
        """:class:`LinearModule`: a list of per-input tensors -> raw-space logits."""
        return LinearModule(self.coef_, self.intercept_, dtype)


class LinearModule(torch.nn.Linear):
    """An ``nn.Linear`` holding ``coef`` / ``intercept`` whose ``forward(blocks)`` takes a
    list/tuple of tensors (n, d_k) in input order (or one tensor (n, d)) and returns
    ``concat(blocks) @ coef.T + intercept``, logits (n, C)."""

    def __init__(self, coef, intercept, dtype=torch.float32):
        super().__init__(coef.shape[1], coef.shape[0], dtype=dtype)
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(coef, dtype=dtype))
            self.bias.copy_(torch.as_tensor(intercept, dtype=dtype))
        self.eval()

    def forward(self, blocks):
        x = blocks if torch.is_tensor(blocks) else torch.cat(list(blocks), dim=1)
        return super().forward(x)


def _mask(penalized, p):
    mask = np.zeros(p, bool)
    mask[slice(None) if penalized is None else penalized] = True
    return mask


def fit_alpha_sweep(X, y, alphas, penalized, *, n_classes=None, **kw):
    """Fit one :class:`LinearHead` per alpha, warm-started in increasing alpha.

    ``X``: one array (n, d) or a list of per-input blocks; it is standardized once. Returns
    the heads in the order of ``alphas``; ``kw`` go to :class:`LinearHead` (``l2``,
    ``standardize``, ``max_iter``, ``tol``, ``penalty``).
    """
    blocks = as_blocks(X)
    X = concat(blocks)
    classes, yi = encode_labels(y, n_classes, len(X))
    prep = standardize(X, kw.get("standardize", True))
    heads, prev = [None] * len(alphas), None
    for i in np.argsort(np.asarray(alphas, float), kind="stable"):
        head = LinearHead(alpha=float(alphas[i]), penalized=penalized, **kw)
        heads[i] = prev = head._fit_prepared(prep, classes, yi, warm_start_from=prev,
                                             dims=[b.shape[1] for b in blocks])
    return heads
