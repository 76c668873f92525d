"""``gated``: one linear expert per input, mixed by a softmax gate computed from the features.

A mixture of experts (Jacobs, Jordan, Nowlan & Hinton 1991) over the fusion paper's inputs:
expert ``k`` is a softmax linear head on input ``k`` alone (the paper's foreground or
background classifier, Section 2.1), and the gate ``g(x) = softmax(V x + c)`` over the K
inputs reads all the features, so that

    p(y | x) = sum_k g_k(x) softmax(W_k x_k + b_k)_y.

Fitted (standardized features, full-batch L-BFGS of :mod:`.smooth`) on
``mean_i -log p(y_i | x_i) + sum_k (l2 + penalty_k) |W_k|^2 + l2 |V|^2``: the paper's
``alpha |theta_fg|^2`` (Section 3.4) on each expert, on the mean-loss scale of :mod:`.linear`.
:meth:`GatedHead.gate_weights` is the gate per image: its mean over a condition's images says
which backbone the head trusts under that perturbation. With one input the gate is 1 and the
head is that input's linear head.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import FeatlabError
from .base import Head, concat, penalties, prepare
from .registry import HEADS
from .smooth import lbfgs, torch_weights, weighted_mean


def _mixture(blocks, W, b, V, c, lib):
    """log p (n, C) and the gate (n, K) from the standardized ``blocks`` (list of (n, d_k));
    ``W`` (C, D), ``V`` (K, D) hold each input's columns side by side; ``lib``: numpy or
    torch. One product per input gives its expert's logits and its share of the gate's."""
    cat = torch.cat if lib is torch else np.concatenate
    logsumexp = (lambda a, axis: torch.logsumexp(a, axis)) if lib is torch else \
        (lambda a, axis: np.logaddexp.reduce(a, axis=axis))
    C, lo, G, experts = W.shape[0], 0, c, []
    for X in blocks:
        hi = lo + X.shape[1]
        out = X @ cat([W[:, lo:hi], V[:, lo:hi]]).T  # (n, C + K)
        experts.append(out[:, :C])
        G, lo = G + out[:, C:], hi
    log_g = G - logsumexp(G, 1)[:, None]
    parts = [Z + b[k] - logsumexp(Z + b[k], 1)[:, None] + log_g[:, k:k + 1]
             for k, Z in enumerate(experts)]
    return logsumexp(lib.stack(parts), 0), lib.exp(log_g)


@HEADS.register("gated")
class GatedHead(Head):
    """One linear expert per input, mixed by a softmax gate over the inputs computed from
    all the features; reports the mean gate weight per input (see the module docstring).

    Parameters
    ----------
    penalty : sequence of float >= 0, one per input, or None: on that input's expert.
    l2 : float > 0, ridge on every weight. standardize : bool.
    max_iter : int, L-BFGS iterations. tol : float, largest gradient entry at convergence.

    Attributes
    ----------
    coef_ (C, D): the experts' weights side by side (input k's columns are expert k),
    intercept_ (K, C), gate_coef_ (K, D), gate_intercept_ (K,), all in standardized space;
    mean_, scale_ (D,); gate_mean_ (K,): mean gate weight on the training images; classes_,
    input_dims_, n_iter_.
    """

    def __init__(self, penalty=None, l2=1e-4, standardize=True, max_iter=100, tol=1e-4):
        self.penalty = penalty
        self.l2 = l2
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, blocks, y, sample_weight=None, n_classes=None, warm_start_from=None):
        """Fit on ``blocks`` (list of (n, d_k), or one array) and y (n,); returns self."""
        if not self.l2 > 0:
            raise FeatlabError(f"gated head: need l2 > 0; got {self.l2}")
        d = prepare(blocks, y, sample_weight, n_classes, self.standardize)
        dims, C, edges = d["dims"], len(d["classes"]), np.cumsum([0] + d["dims"])
        X = [torch.from_numpy(np.ascontiguousarray(d["Xs"][:, a:z]))
             for a, z in zip(edges[:-1], edges[1:])]
        m = torch.as_tensor(self.l2 + np.repeat(penalties(self.penalty, dims), dims),
                            dtype=X[0].dtype)
        yt, w = torch.as_tensor(d["y"]), torch_weights(d["w"], X[0].dtype)
        rows = torch.arange(len(yt))

        def objective(t):
            logp = _mixture(X, t["W"], t["b"], t["V"], t["c"], torch)[0]
            return (weighted_mean(-logp[rows, yt], w) + (m * t["W"] ** 2).sum()
                    + self.l2 * (t["V"] ** 2).sum())

        warm, K = warm_start_from, len(dims)
        start = dict(W=np.zeros((C, sum(dims))), b=np.zeros((K, C)), V=np.zeros((K, sum(dims))),
                     c=np.zeros(K)) if warm is None else dict(
            W=warm.coef_, b=warm.intercept_, V=warm.gate_coef_, c=warm.gate_intercept_)
        p, self.n_iter_, self.converged_ = lbfgs(objective, start, dtype=X[0].dtype,
                                                 max_iter=self.max_iter, tol=self.tol,
                                                 what="gated head")
        self.coef_, self.intercept_, self.gate_coef_, self.gate_intercept_ = \
            p["W"], p["b"], p["V"], p["c"]
        self.mean_, self.scale_, self.classes_, self.input_dims_ = \
            d["mean"], d["scale"], d["classes"], dims
        self.gate_mean_ = self.gate_weights(blocks).mean(axis=0)
        return self

    def _standardized(self, blocks):
        """The blocks standardized (float64), one per input."""
        Xs = (concat(self._blocks(blocks)).astype(np.float64) - self.mean_) / self.scale_
        return np.split(Xs, np.cumsum(self.input_dims_)[:-1], axis=1)

    def decision_function(self, blocks):
        """Log-probabilities (softmax gives back the mixture), ndarray (n, C), float64."""
        return _mixture(self._standardized(blocks), self.coef_, self.intercept_,
                        self.gate_coef_, self.gate_intercept_, np)[0]

    def gate_weights(self, blocks) -> np.ndarray:
        """The gate per image, ndarray (n_samples, n_inputs), rows summing to 1."""
        return _mixture(self._standardized(blocks), self.coef_, self.intercept_,
                        self.gate_coef_, self.gate_intercept_, np)[1]

    def input_weights(self, blocks=None) -> list:
        """Mean gate weight per input on ``blocks`` (the training images when None)."""
        return [float(g) for g in (self.gate_mean_ if blocks is None
                                   else self.gate_weights(blocks).mean(axis=0))]

    def to_arrays(self) -> tuple[dict, dict]:
        """float64 ``coef``, ``intercept``, ``gate_coef``, ``gate_intercept``, ``mean``,
        ``scale``, ``gate_mean``; attributes ``head_type``, ``input_dims``."""
        arrays = dict(coef=self.coef_, intercept=self.intercept_, gate_coef=self.gate_coef_,
                      gate_intercept=self.gate_intercept_, mean=self.mean_, scale=self.scale_,
                      gate_mean=self.gate_mean_)
        return ({k: np.asarray(v, np.float64) for k, v in arrays.items()},
                dict(head_type="gated", input_dims=[int(d) for d in self.input_dims_]))

    @classmethod
    def from_arrays(cls, arrays: dict, attrs: dict):
        head = cls()
        head.coef_, head.intercept_ = arrays["coef"], arrays["intercept"]
        head.gate_coef_, head.gate_intercept_ = arrays["gate_coef"], arrays["gate_intercept"]
        head.mean_, head.scale_, head.gate_mean_ = arrays["mean"], arrays["scale"], \
            arrays["gate_mean"]
        head.classes_, head.input_dims_ = np.arange(head.coef_.shape[0]), list(attrs["input_dims"])
        return head

    def to_torch(self, dtype=torch.float32):
        """:class:`GatedModule`: a list of per-input tensors (n, d_k) -> log p (n, C)."""
        return GatedModule(self, dtype)


class GatedModule(torch.nn.Module):
    """``forward(blocks)``: standardize ``concat(blocks)``, then the gated mixture's log p."""

    def __init__(self, head: GatedHead, dtype=torch.float32):
        super().__init__()
        for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_", "mean_", "scale_"):
            self.register_buffer(name[:-1], torch.as_tensor(np.asarray(getattr(head, name)),
                                                            dtype=dtype))
        self.dims = list(head.input_dims_)
        self.eval()

    def forward(self, blocks):
        x = blocks if torch.is_tensor(blocks) else torch.cat(list(blocks), dim=1)
        xs = torch.split((x - self.mean) / self.scale, self.dims, dim=1)
        return _mixture(xs, self.coef, self.intercept, self.gate_coef, self.gate_intercept,
                        torch)[0]
