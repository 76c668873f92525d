"""``mlp``: one hidden layer on the concatenated inputs, with a penalty per input.

The fusion paper's conclusion (Section 4) proposes "more sophisticated fusion layers" than
its single fully connected one. This head minimises, in standardized feature space,

    mean_i CE(W2 act(W1 x_i + b1) + b2, y_i) + sum_k (l2 + penalty_k) |W1[:, block_k]|^2
                                               + l2 |W2|^2

— the paper's ``alpha |theta_fg|^2`` (Section 3.4) on each input's block of the first-layer
weights, on the same mean-loss scale as :mod:`.linear` — with full-batch L-BFGS
(:mod:`.smooth`) from a seeded Glorot-uniform start (as scikit-learn's ``MLPClassifier``).
With no penalty the loss is ``MLPClassifier``'s at ``alpha = 2 * l2 * N``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import FeatlabError
from .base import Head, block_means, concat, penalties, prepare
from .registry import HEADS
from .smooth import lbfgs, torch_weights, weighted_mean

ACTIVATIONS = {"tanh": (np.tanh, torch.tanh), "relu": (lambda a: np.maximum(a, 0), torch.relu)}


@HEADS.register("mlp")
class MLPHead(Head):
    """One hidden layer on the concatenated inputs, a penalty on each input's block of
    first-layer weights, L-BFGS from a seeded start (see the module docstring).

    Parameters
    ----------
    width : int, hidden units. activation : "tanh" (smooth, default) or "relu".
    penalty : sequence of float >= 0, one per input, or None: on the input's first-layer block.
    l2 : float > 0, ridge on all weights. standardize : bool.
    max_iter : int, L-BFGS iterations. tol : float, largest gradient entry at convergence.
    random_state : int, seeds the starting weights.

    Attributes
    ----------
    hidden_coef_ (width, D), hidden_intercept_ (width,), coef_ (C, width), intercept_ (C,):
    standardized space; mean_, scale_ (D,); classes_; input_dims_; n_iter_.
    """

    def __init__(self, width=32, activation="tanh", penalty=None, l2=1e-4, standardize=True,
                 max_iter=100, tol=1e-4, random_state=0):
        self.width = width
        self.activation = activation
        self.penalty = penalty
        self.l2 = l2
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _start(self, D, C, warm):
        if warm is not None:
            return dict(W1=warm.hidden_coef_, b1=warm.hidden_intercept_, W2=warm.coef_,
                        b2=warm.intercept_)
        rng = np.random.default_rng(self.random_state)
        b_in, b_out = np.sqrt(6 / (D + self.width)), np.sqrt(6 / (self.width + C))
        return dict(W1=rng.uniform(-b_in, b_in, (self.width, D)),
                    b1=rng.uniform(-b_in, b_in, self.width),
                    W2=rng.uniform(-b_out, b_out, (C, self.width)),
                    b2=rng.uniform(-b_out, b_out, C))

    def fit(self, blocks, y, sample_weight=None, n_classes=None, warm_start_from=None):
        """Fit on ``blocks`` (list of (n, d_k), or one array) and y (n,); returns self."""
        if self.activation not in ACTIVATIONS or not int(self.width) >= 1 or not self.l2 > 0:
            raise FeatlabError(f"mlp head: need width >= 1, activation in {list(ACTIVATIONS)} "
                               f"and l2 > 0; got {self.width}, {self.activation!r}, {self.l2}")
        d = prepare(blocks, y, sample_weight, n_classes, self.standardize)
        X = torch.from_numpy(np.ascontiguousarray(d["Xs"]))
        m = torch.as_tensor(self.l2 + np.repeat(penalties(self.penalty, d["dims"]), d["dims"]),
                            dtype=X.dtype)
        yt, w, act = torch.as_tensor(d["y"]), torch_weights(d["w"], X.dtype), \
            ACTIVATIONS[self.activation][1]
        rows = torch.arange(len(yt))

        def objective(t):
            Z = act(X @ t["W1"].T + t["b1"]) @ t["W2"].T + t["b2"]
            ce = torch.logsumexp(Z, 1) - Z[rows, yt]
            return weighted_mean(ce, w) + (m * t["W1"] ** 2).sum() + self.l2 * (t["W2"] ** 2).sum()

        start = self._start(X.shape[1], len(d["classes"]), warm_start_from)
        p, self.n_iter_, self.converged_ = lbfgs(objective, start, dtype=X.dtype,
                                                 max_iter=self.max_iter, tol=self.tol,
                                                 what="mlp head")
        self.hidden_coef_, self.hidden_intercept_, self.coef_, self.intercept_ = \
            p["W1"], p["b1"], p["W2"], p["b2"]
        self.mean_, self.scale_, self.classes_ = d["mean"], d["scale"], d["classes"]
        self.input_dims_ = d["dims"]
        return self

    def decision_function(self, blocks):
        """Logits, ndarray (n_samples, n_classes), float64."""
        Xs = (concat(self._blocks(blocks)).astype(np.float64) - self.mean_) / self.scale_
        H = ACTIVATIONS[self.activation][0](Xs @ self.hidden_coef_.T + self.hidden_intercept_)
        return H @ self.coef_.T + self.intercept_

    def objective(self, blocks, y, sample_weight=None):
        """The training objective at the fitted parameters (float64), float."""
        A = self.decision_function(blocks)
        yi = np.searchsorted(self.classes_, np.asarray(y))
        ce = np.logaddexp.reduce(A, axis=1) - A[np.arange(len(A)), yi]
        data = ce.mean() if sample_weight is None else ce @ sample_weight / np.sum(sample_weight)
        m = self.l2 + np.repeat(penalties(self.penalty, self.input_dims_), self.input_dims_)
        return float(data + (m * self.hidden_coef_ ** 2).sum() + self.l2 * (self.coef_ ** 2).sum())

    def input_weights(self, blocks=None) -> list:
        """Mean |first-layer weight| per input, standardized space (``blocks`` unused)."""
        return block_means(self.hidden_coef_, self.input_dims_)

    def to_arrays(self) -> tuple[dict, dict]:
        """float64 arrays ``hidden_coef``, ``hidden_intercept``, ``coef``, ``intercept``,
        ``mean``, ``scale``; attributes ``head_type``, ``activation``, ``input_dims``."""
        arrays = dict(hidden_coef=self.hidden_coef_, hidden_intercept=self.hidden_intercept_,
                      coef=self.coef_, intercept=self.intercept_, mean=self.mean_,
                      scale=self.scale_)
        return ({k: np.asarray(v, np.float64) for k, v in arrays.items()},
                dict(head_type="mlp", activation=self.activation,
                     input_dims=[int(d) for d in self.input_dims_]))

    @classmethod
    def from_arrays(cls, arrays: dict, attrs: dict):
        head = cls(width=arrays["hidden_coef"].shape[0], activation=attrs["activation"])
        head.hidden_coef_, head.hidden_intercept_ = arrays["hidden_coef"], arrays["hidden_intercept"]
        head.coef_, head.intercept_ = arrays["coef"], arrays["intercept"]
        head.mean_, head.scale_ = arrays["mean"], arrays["scale"]
        head.classes_, head.input_dims_ = np.arange(len(head.intercept_)), list(attrs["input_dims"])
        return head

    def to_torch(self, dtype=torch.float32):
        """:class:`MLPModule`: a list of per-input tensors (n, d_k) -> logits (n, C)."""
        return MLPModule(self, dtype)


class MLPModule(torch.nn.Module):
    """``forward(blocks)``: standardize ``concat(blocks)``, hidden layer, output logits."""

    def __init__(self, head: MLPHead, dtype=torch.float32):
        super().__init__()
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
        self.register_buffer("mean", as_t(head.mean_))
        self.register_buffer("scale", as_t(head.scale_))
        self.hidden = torch.nn.Linear(*head.hidden_coef_.shape[::-1], dtype=dtype)
        self.out = torch.nn.Linear(*head.coef_.shape[::-1], dtype=dtype)
        with torch.no_grad():
            for layer, W, b in ((self.hidden, head.hidden_coef_, head.hidden_intercept_),
                                (self.out, head.coef_, head.intercept_)):
                layer.weight.copy_(as_t(W))
                layer.bias.copy_(as_t(b))
        self.act = ACTIVATIONS[head.activation][1]
        self.eval()

    def forward(self, blocks):
        x = blocks if torch.is_tensor(blocks) else torch.cat(list(blocks), dim=1)
        return self.out(self.act(self.hidden((x - self.mean) / self.scale)))
