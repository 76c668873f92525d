"""Linear classification heads on cached features, with the fusion paper's foreground penalty.

Fusion paper (contextual-fusion.md) Section 2.1: the foreground, background and joint classifiers
are single fully connected layers on frozen backbone features. Section 3.4 trains the joint head
with ``L = -sum_i t_i log softmax(a_i) + alpha |theta_fg|^2``. :class:`LinearHead` minimises

    mean_i CE(softmax(x_i theta^T + b), y_i) + alpha |theta_pen|^2 + l2 |theta|^2

where ``theta`` are the weights in *standardized* feature space (not the bias) and ``theta_pen``
the columns listed in ``penalized``. The mean replaces the paper's sum so that ``alpha`` does not
scale with the number of samples: the paper's ``alpha`` equals ``N * alpha`` here.

The solver is deterministic full-batch L-BFGS on float64 parameters, in Kronecker-factored
whitened coordinates (``theta = U (Gamma * S) Q^T``: ``U`` generalized eigenvectors of the
curvature-weighted feature covariance against the penalty, ``Q`` eigenvectors of the mean
softmax curvature), with an exact line search on logits: each iteration costs two products
with X. For float32 X those run in float32 until the gradient nears their rounding level, then
in float64; convergence (max |gradient| <= tol, standardized space) is confirmed in float64.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)
_CHUNK = 8192


def check_features(X, name="X"):
    """Return X as a 2-D float array; raise ValueError on NaN/inf rows (filter them first)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features); got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} rows with NaN or inf (first: row "
                         f"{int(np.flatnonzero(bad)[0])}); drop them before fitting, e.g. "
                         f"keep = np.isfinite({name}).all(axis=1)")
    return X


def _matmul64(Xs, W):
    """Xs @ W in float64, chunked so a float32 Xs is never copied whole."""
    if Xs.dtype == np.float64:
        return Xs @ W
    return np.concatenate([Xs[i:i + _CHUNK].astype(np.float64) @ W
                           for i in range(0, max(len(Xs), 1), _CHUNK)])


def _tmatmul64(Xs, R):
    """Xs.T @ R in float64, chunked."""
    if Xs.dtype == np.float64:
        return Xs.T @ R
    return sum(Xs[i:i + _CHUNK].astype(np.float64).T @ R[i:i + _CHUNK]
               for i in range(0, len(Xs), _CHUNK))


def _softmax(A):
    """Row softmax and log-sum-exp of logits A (n, C), float64."""
    mx = A.max(axis=1, keepdims=True)
    P = np.exp(A - mx)
    s = P.sum(axis=1, keepdims=True)
    P /= s
    return P, np.log(s[:, 0]) + mx[:, 0]


class _BlasThreads:
    """Scoped BLAS thread limits: one thread for small products, the configured number for X.

    Small BLAS calls (length-24k vectors, 1024 x 24 matrices) lose more to thread hand-offs
    than they gain, badly so when other processes share the cores. Limits are restored on exit.
    """

    def __init__(self):
        self.ctl = ThreadpoolController()
        self.full = max([i["num_threads"] for i in self.ctl.select(user_api="blas").info()],
                        default=1)

    def small(self):
        return self.ctl.limit(limits=1, user_api="blas")

    def big(self):
        return self.ctl.limit(limits=self.full, user_api="blas")


class _Problem:
    """Objective on standardized features Xs (n, p): mean CE + sum_j m_j |Theta_j|^2.

    With float32 Xs the two products per iteration run in float32 until the gradient nears
    their rounding level (``noise``); :meth:`promote` then switches Xs to float64.
    """

    def __init__(self, Xs, y, n_classes, m):
        self.Xs, self.y, self.m = Xs, y, m
        self.n, self.rows = len(y), np.arange(len(y))
        self.fast, self.noise = Xs.dtype == np.float32, 0.0
        self.threads = _BlasThreads()

    def promote(self):
        if self.fast:
            self.Xs, self.fast, self.noise = self.Xs.astype(np.float64), False, 0.0

    def logits(self, Theta, b):
        with self.threads.big():
            return _matmul64(self.Xs, Theta) + b

    def dot(self, W):
        with self.threads.big():
            if self.fast:
                return (self.Xs @ W.astype(np.float32)).astype(np.float64)
            return self.Xs @ W

    def grad(self, A, Theta, P=None, exact=False):
        """Gradient w.r.t. (Theta, b) and its max |entry|, at logits A (softmax P if known)."""
        R = _softmax(A)[0] if P is None else P
        R[self.rows, self.y] -= 1.0
        R /= self.n
        with self.threads.big():
            if self.fast and not exact:
                gT = (self.Xs.T @ R.astype(np.float32)).astype(np.float64)
                self.noise = 1e-7 * np.sqrt(self.n * (R ** 2).sum(axis=0).max())
            else:
                gT = _tmatmul64(self.Xs, R)
        gT += 2 * self.m[:, None] * Theta
        gb = R.sum(axis=0)
        return gT, gb, max(np.abs(gT).max(), np.abs(gb).max())


class _Coords:
    """Kronecker-factored preconditioning: Theta = U (Gamma * S) Q^T, b = Q (c * s_b).

    The data term's Hessian is approximated by B (x) G: B the mean softmax curvature
    (C, C), G the feature covariance weighted by each sample's curvature (p, p), both at the
    starting logits. With Q^T B Q = diag(beta), U^T G U = diag(mu) and U^T M U = I (M: the
    penalty weights), the approximate Hessian in Gamma is 2 beta mu + 2 scaled to one (the data
    term counted twice: ~8% fewer iterations than once on COCO-sized problems).
    """

    def __init__(self, prob, A):
        P, _ = _softmax(A)
        B = (np.diag(P.sum(axis=0)) - P.T @ P) / len(P)
        beta, self.Q = np.linalg.eigh(B)
        beta = np.maximum(beta, 0.0)
        w = (1.0 - (P ** 2).sum(axis=1)).astype(np.float32)
        w /= max(w.sum(), 1e-30)
        G = np.zeros((prob.Xs.shape[1],) * 2, np.float32)
        with prob.threads.big():  # an approximation: float32 is plenty
            for i in range(0, len(P), _CHUNK):
                Xc = prob.Xs[i:i + _CHUNK].astype(np.float32, copy=False)
                G += (Xc * w[i:i + _CHUNK, None]).T @ Xc
        r = 1.0 / np.sqrt(prob.m)
        mu, W = np.linalg.eigh(r[:, None] * G.astype(np.float64) * r[None, :])  # 1 thread
        self.U = r[:, None] * W
        self.U32, self.UT32 = self.U.astype(np.float32), self.U.T.astype(np.float32)
        self.S = 1.0 / np.sqrt(2.0 * np.outer(np.maximum(mu, 0.0), beta) + 2.0)
        self.sb = 1.0 / np.sqrt(np.maximum(beta, 1e-3 * beta.max() + 1e-12))
        self.shape = self.S.shape

    # The p x p products below only map directions and gradients between coordinate systems,
    # so float32 suffices (Theta itself and the convergence test stay float64).
    def params(self, g):
        k = self.S.size
        Phi = (g[:k].reshape(self.shape) * self.S).astype(np.float32)
        return (self.U32 @ Phi).astype(np.float64) @ self.Q.T, self.Q @ (g[k:] * self.sb)

    def grad(self, gT, gb):
        UtG = (self.UT32 @ gT.astype(np.float32)).astype(np.float64)
        return np.concatenate([((UtG @ self.Q) * self.S).ravel(), (self.Q.T @ gb) * self.sb])


def _line_search(prob, A, Ad, Theta, Td, max_steps=10, rtol=1e-2):
    """Safeguarded Newton on h(t) = f(A + t Ad), from t = 1; returns t and the softmax at t."""
    mT = prob.m[:, None] * Td
    p1, pp, ady = (mT * Theta).sum(), (mT * Td).sum(), Ad[prob.rows, prob.y]
    lo, hi, t = 0.0, np.inf, 1.0
    for step in range(max_steps):
        P = _softmax(A + t * Ad)[0]
        ep = np.einsum("ij,ij->i", P, Ad)
        h1 = (ep - ady).mean() + 2 * p1 + 2 * t * pp
        h2 = (np.einsum("ij,ij->i", P * Ad, Ad) - ep ** 2).mean() + 2 * pp
        lo, hi = (t, hi) if h1 < 0 else (lo, t)
        t_new = t - h1 / max(h2, 1e-300)
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi) if np.isfinite(hi) else 4.0 * t
        if abs(t_new - t) <= rtol * t or step == max_steps - 1:
            return t, P
        t = t_new


def _two_loop(g, S, Y):
    """L-BFGS inverse-Hessian times g from the stored pairs (Nocedal & Wright, Alg. 7.4)."""
    q, coefs = g.copy(), []
    for s, yv in zip(reversed(S), reversed(Y)):
        coefs.append(np.vdot(s, q) / np.vdot(yv, s))
        q -= coefs[-1] * yv
    if S:
        q *= np.vdot(S[-1], Y[-1]) / np.vdot(Y[-1], Y[-1])
    for (s, yv), a in zip(zip(S, Y), reversed(coefs)):
        q += s * (a - np.vdot(yv, q) / np.vdot(yv, s))
    return q


def lbfgs_fit(prob, Theta, b, tol, max_iter, memory=10, resync_every=50, refresh_at=()):
    """Minimise ``prob`` from (Theta, b); return (Theta, b, n_iter, converged).

    The preconditioner is rebuilt (and the memory cleared) at the iterations in
    ``refresh_at``; logits are recomputed in float64 every ``resync_every`` iterations.
    """
    with prob.threads.small():
        return _lbfgs_loop(prob, Theta, b, tol, max_iter, memory, resync_every, refresh_at)


def _lbfgs_loop(prob, Theta, b, tol, max_iter, memory, resync_every, refresh_at):
    A = prob.logits(Theta, b)
    co = _Coords(prob, A)
    gT, gb, gmax = prob.grad(A, Theta, exact=True)
    g, S, Y, it = co.grad(gT, gb), [], [], 0
    while True:
        if gmax <= tol or gmax <= 10 * prob.noise:  # confirm in float64 on fresh logits
            A = prob.logits(Theta, b)
            gT, gb, gmax = prob.grad(A, Theta, exact=True)
            g = co.grad(gT, gb)
            if gmax <= tol:
                return Theta, b, it, True
            if gmax <= 10 * prob.noise:  # float32 rounding limits progress from here
                prob.promote()
        if it >= max_iter:
            return Theta, b, it, False
        if it in refresh_at:
            co, S, Y = _Coords(prob, A), [], []
            g = co.grad(gT, gb)
        q = _two_loop(g, S, Y)
        if np.vdot(q, g) <= 0:  # not a descent direction (rounding): restart the memory
            q, S, Y = g.copy(), [], []
        Td, bd = co.params(-q)
        Ad = prob.dot(Td) + bd
        t, P = _line_search(prob, A, Ad, Theta, Td)
        Theta, b, A = Theta + t * Td, b + t * bd, A + t * Ad
        it += 1
        if it % resync_every == 0:
            A, P = prob.logits(Theta, b), None
        gT, gb, gmax = prob.grad(A, Theta, P)
        g_new = co.grad(gT, gb)
        s, yv = -t * q, g_new - g
        if np.vdot(s, yv) > 1e-12 * np.linalg.norm(s) * np.linalg.norm(yv):
            S, Y = (S + [s])[-memory:], (Y + [yv])[-memory:]
        g = g_new


def _standardize(X, standardize):
    """Column mean and scale (float64, population std; 1 where constant) and X standardized."""
    p = X.shape[1]
    if not standardize:
        return np.zeros(p), np.ones(p), X
    mean = X.mean(axis=0, dtype=np.float64)
    scale = X.std(axis=0, dtype=np.float64)
    scale[scale <= 1e-12 * max(1.0, np.abs(mean).max())] = 1.0
    Xs = np.empty(X.shape, X.dtype)
    for i in range(0, len(X), _CHUNK):
        Xs[i:i + _CHUNK] = (X[i:i + _CHUNK] - mean) / scale
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

    def fit(self, X, y, n_classes=None, warm_start_from=None):
        """Fit on X (n_samples, n_features) and labels y (n_samples,); returns self.

        ``n_classes``: labels are then integers in ``[0, n_classes)`` and ``classes_`` is
        ``arange(n_classes)`` (classes absent from y still get a row). ``warm_start_from``: a
        fitted head with the same classes and features whose solution starts the solver.
        """
        X = check_features(X)
        classes, yi = _encode_labels(y, n_classes, len(X))
        prep = _standardize(X, self.standardize)
        return self._fit_prepared(prep, classes, yi, warm_start_from)

    def _fit_prepared(self, prep, classes, yi, warm_start_from=None):
        mean, scale, Xs = prep
        p, C = Xs.shape[1], len(classes)
        if not self.l2 > 0 or not self.alpha >= 0:
            raise ValueError(f"need l2 > 0 and alpha >= 0; got l2={self.l2}, alpha={self.alpha}")
        prob = _Problem(Xs, yi, C, self.l2 + self.alpha * _mask(self.penalized, p))
        Theta, b = np.zeros((p, C)), np.zeros(C)
        if warm_start_from is not None:
            W = np.asarray(warm_start_from.coef_, np.float64)
            if W.shape != (C, p):
                raise ValueError(f"warm_start_from has coef_ of shape {W.shape}; need {(C, p)}")
            Theta, b = (W * scale).T.copy(), warm_start_from.intercept_ + W @ mean
        # A cold start preconditions at uniform probabilities: rebuild once they have moved.
        Theta, b, self.n_iter_, ok = lbfgs_fit(prob, Theta, b, self.tol, self.max_iter,
                                               refresh_at=() if warm_start_from else (25,))
        if not ok:
            warnings.warn(f"LinearHead did not reach tol={self.tol} in {self.n_iter_} "
                          "iterations; increase max_iter", ConvergenceWarning, stacklevel=3)
        b = b - b.mean()
        self.classes_, self.mean_, self.scale_ = classes, mean, scale
        self.n_features_in_ = p
        self.coef_std_, self.intercept_std_ = Theta.T.copy(), b
        self.coef_ = self.coef_std_ / scale
        self.intercept_ = b - self.coef_ @ mean
        log.debug("LinearHead alpha=%g: %d iterations", self.alpha, self.n_iter_)
        return self

    def decision_function(self, X):
        """Logits, ndarray (n_samples, n_classes), float64."""
        X = check_features(X)
        return _matmul64(X, self.coef_.T) + self.intercept_

    def predict_proba(self, X):
        """Class probabilities, ndarray (n_samples, n_classes)."""
        return _softmax(self.decision_function(X))[0]

    def predict(self, X):
        """Predicted labels, ndarray (n_samples,), values from ``classes_``."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def objective(self, X, y):
        """The training objective at the fitted parameters (mean CE + penalties), float."""
        yi = np.searchsorted(self.classes_, np.asarray(y))
        A = self.decision_function(X)
        lse = _softmax(A)[1]
        m = self.l2 + self.alpha * _mask(self.penalized, self.n_features_in_)
        return float((lse - A[np.arange(len(A)), yi]).mean() + (m * self.coef_std_ ** 2).sum())

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


def _encode_labels(y, n_classes, n):
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},); got {y.shape}")
    if n_classes is None:
        classes = np.unique(y)
        return classes, np.searchsorted(classes, y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"with n_classes={n_classes}, y must hold integers in [0, {n_classes})")
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
