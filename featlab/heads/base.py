"""The head contract, and what every head type shares.

A head maps the features of its inputs — ``blocks``, a list of arrays (n_samples, d_k), one
per input backbone in order (a single array is one input) — to class probabilities. Every
entry of :data:`~featlab.heads.HEADS` subclasses :class:`Head`:

* ``fit(blocks, y, sample_weight=None, n_classes=None) -> self`` (scikit-learn style:
  ``__init__`` only stores parameters, learned attributes end in ``_``);
* ``decision_function`` / ``predict_proba`` / ``predict`` on blocks;
* ``to_arrays() -> (arrays, attrs)`` and ``from_arrays(arrays, attrs)``: the head as the
  store keeps it (:mod:`featlab.store.heads`); :func:`content_digest` is its identity;
* ``to_torch()``: an ``nn.Module`` mapping a list of per-input feature tensors (n, d_k), in
  input order, to logits (n, n_classes) — what gradient attacks differentiate through;
* ``input_weights(blocks=None)``: how much the head uses each input (fusion paper Figure 4b).

``penalty`` (every type): one penalty per input, beside the *mean* cross-entropy, on that
input's first-layer weights in standardized feature space (the fusion paper's
``alpha |theta_fg|^2``, Section 3.4, for any input; its summed-loss alpha is ``N`` times
this: :mod:`featlab.analyses.heads.alphas`).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import FeatlabError
from ..utils.validation import check_features
from .records import content_digest, head_from_arrays  # noqa: F401  (part of the contract)
from .registry import HEADS
from .solver import CHUNK, softmax



def as_blocks(blocks) -> list:
    """The per-input feature arrays: a list of 2-D float arrays with the same rows (a single
    array is one input)."""
    if not isinstance(blocks, (list, tuple)):
        blocks = [] if blocks is None else [blocks]
    blocks = [check_features(b, f"block {i}") for i, b in enumerate(blocks or [])]
    if not blocks or len({len(b) for b in blocks}) != 1:
        raise FeatlabError(f"blocks must be 1 or more arrays with the same rows; got row counts "
                           f"{[len(b) for b in blocks]}")
    return blocks


def concat(blocks) -> np.ndarray:
    """The blocks side by side (n, sum d_k), in their common dtype (no copy for one block)."""
    if len(blocks) == 1:
        return blocks[0]
    dtype = np.result_type(*[b.dtype for b in blocks])
    return np.hstack([b.astype(dtype, copy=False) for b in blocks])


def penalties(penalty, dims) -> np.ndarray:
    """One penalty >= 0 per input (``penalty`` None: zeros), as float64 (n_inputs,)."""
    pen = np.zeros(len(dims)) if penalty is None else np.asarray(penalty, np.float64).ravel()
    if pen.shape != (len(dims),) or not np.isfinite(pen).all() or (pen < 0).any():
        raise FeatlabError(f"penalty must be {len(dims)} finite value(s) >= 0, one per input; "
                           f"got {penalty!r}")
    return pen


def standardize(X, on: bool = True, w=None):
    """Column mean and scale (float64, population std; 1 where constant) and X standardized.

    With sample weights ``w`` (n,) the mean and std are weighted, so that integer weights give
    the statistics of the rows repeated that many times."""
    p = X.shape[1]
    if not on:
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


def check_weights(w, n):
    """Sample weights as float64 (n,) >= 0 with a positive sum, or None."""
    if w is None:
        return None
    w = np.asarray(w, np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise FeatlabError(f"sample_weight must be {n} finite values >= 0 with a positive sum; "
                           f"got shape {w.shape}")
    return w


def encode_labels(y, n_classes, n):
    """(classes, integer labels): ``arange(n_classes)`` when given, else the sorted values."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise FeatlabError(f"y must have shape ({n},); got {y.shape}")
    if n_classes is None:
        classes = np.unique(y)
        return classes, np.searchsorted(classes, y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise FeatlabError(f"with n_classes={n_classes}, y must hold integers in [0, {n_classes})")
    return np.arange(n_classes), y.astype(np.intp)


class Head(ClassifierMixin, BaseEstimator):
    """Base of every head type (see the module docstring for the contract)."""

    def decision_function(self, blocks) -> np.ndarray:
        """Logits, ndarray (n_samples, n_classes), float64."""
        raise NotImplementedError

    def predict_proba(self, blocks) -> np.ndarray:
        """Class probabilities, ndarray (n_samples, n_classes), float64."""
        return softmax(self.decision_function(blocks))[0]

    def predict(self, blocks) -> np.ndarray:
        """Predicted labels, ndarray (n_samples,), values from ``classes_``."""
        return self.classes_[np.argmax(self.decision_function(blocks), axis=1)]

    def to_arrays(self) -> tuple[dict, dict]:
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays: dict, attrs: dict):
        raise NotImplementedError

    def to_torch(self, dtype=None):
        raise NotImplementedError

    def digest(self) -> str:
        """:func:`content_digest` of :meth:`to_arrays` (what the store records)."""
        return content_digest(*self.to_arrays())

    def _blocks(self, blocks) -> list:
        blocks = as_blocks(blocks)
        dims = list(getattr(self, "input_dims_", [sum(b.shape[1] for b in blocks)]))
        if sum(b.shape[1] for b in blocks) != sum(dims):
            raise FeatlabError(f"this head reads {sum(dims)} features (inputs of {dims}); got "
                               f"blocks of {[b.shape[1] for b in blocks]}")
        return blocks


def block_means(W, dims) -> list:
    """Mean |weight| of each input's columns of W (rows, sum dims): Figure 4b per input."""
    edges = np.cumsum([0] + list(dims))
    return [float(np.abs(W[:, a:b]).mean()) for a, b in zip(edges[:-1], edges[1:])]


def prepare(blocks, y, sample_weight=None, n_classes=None, on: bool = True) -> dict:
    """What a fit needs: ``Xs`` (n, D) standardized (weighted with ``sample_weight``),
    ``mean``/``scale`` (D,), ``classes``, integer labels ``y``, weights ``w`` or None and the
    features per input ``dims``."""
    blocks = as_blocks(blocks)
    X = concat(blocks)
    classes, yi = encode_labels(y, n_classes, len(X))
    w = check_weights(sample_weight, len(X))
    mean, scale, Xs = standardize(X, on, w)
    return dict(Xs=Xs, mean=mean, scale=scale, classes=classes, y=yi, w=w,
                dims=[b.shape[1] for b in blocks])


def fit_sweep(head_type: str, blocks, y, penalty_list, *, n_classes=None, sample_weight=None,
              **params) -> list:
    """One head of ``head_type`` per entry of ``penalty_list`` (each a per-input penalty),
    each warm-started from the previous in increasing total penalty. Returns the heads in the
    order of ``penalty_list``; ``params`` go to the head's constructor."""
    cls = HEADS.get(head_type)
    heads, prev = [None] * len(penalty_list), None
    order = np.argsort([float(np.sum(p)) for p in penalty_list], kind="stable")
    for i in order:
        head = cls(penalty=list(penalty_list[i]), **params)
        heads[i] = prev = head.fit(blocks, y, sample_weight=sample_weight, n_classes=n_classes,
                                   warm_start_from=prev)
    return heads
