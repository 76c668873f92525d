"""Local Lipschitz ratios around clean samples (Section 2.4, equation 9, Figure 6).

Equation 9 asks for ``L_x`` with
``|g(Phi_L(x + v)) - g(Phi_L(x))| <= L_x |h(x + v) - h(x)|`` for the perturbations ``v``
around ``x``; ``g`` and ``h`` are min-max normalizers whose parameters come from "feeding
thousands of samples to each ConvNet and collecting the minimum and maximum value in the
input and output". We read that as one global minimum and maximum per space (the
default, ``per_feature=False``); per-dimension normalization is available. A global
normalizer is affine, so it only rescales distances by ``1 / (max - min)``; the store
keeps ``|v|`` (not ``v``), so ``h`` must be global.

For each (sample, copy) the ratio ``|g(Phi(x+v)) - g(Phi(x))| / |h(x+v) - h(x)|`` is
returned; ``L_x < 1`` means the layer pulls the copy toward the clean sample. Norms are
Euclidean. Figure 6 plots these against the input distance, with first- and second-order
polynomial fits (:func:`polynomial_fits`).

:func:`gradient_lipschitz` gives, for comparison, the gradient-norm estimate of the class
score's local Lipschitz constant (max over points in a ball).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ...errors import FeatlabError
from ...utils.validation import finite_array, one_of
from .clever import DUAL, check_norm, sample_ball


class MinMaxNormalizer:
    """``z -> (z - min_) / (max_ - min_)``, fitted on clean samples.

    Parameters
    ----------
    per_feature : bool, default False
        False: one global min and max over all values (the paper's reading). True: one per
        dimension; dimensions with ``max == min`` are left unscaled (scale 1).

    Attributes
    ----------
    min_, max_ : float or ndarray of shape (n_features,)
    scale_ : float or ndarray — ``max_ - min_``
    """

    def __init__(self, per_feature: bool = False):
        self.per_feature = per_feature

    def partial_fit(self, X) -> "MinMaxNormalizer":
        """Update the extrema with a chunk ``X`` of shape (n_samples, ...) (streamed stores)."""
        X = finite_array(X, "X").reshape(len(X), -1)
        lo, hi = (X.min(axis=0), X.max(axis=0)) if self.per_feature else (X.min(), X.max())
        if hasattr(self, "min_"):
            lo, hi = np.minimum(lo, self.min_), np.maximum(hi, self.max_)
        self.min_, self.max_ = lo, hi
        rng = hi - lo
        if self.per_feature:
            self.scale_ = np.where(rng > 0, rng, 1.0)
        elif rng > 0:
            self.scale_ = float(rng)
        else:
            raise FeatlabError("MinMaxNormalizer: all values are equal; fit it on more samples")
        return self

    def fit(self, X) -> "MinMaxNormalizer":
        """Fit on ``X`` of shape (n_samples, n_features) (or (n_samples, C, H, W))."""
        for attr in ("min_", "max_", "scale_"):
            self.__dict__.pop(attr, None)
        return self.partial_fit(X)

    def transform(self, X) -> np.ndarray:
        if not hasattr(self, "scale_"):
            raise FeatlabError("MinMaxNormalizer is not fitted; call fit(X) first")
        X = np.asarray(X, dtype=np.float64)
        return (X - self.min_) / self.scale_


class LipschitzResult(NamedTuple):
    """Arrays of shape (n_samples, T)."""

    ratio: np.ndarray        # output_dist / input_dist
    output_dist: np.ndarray  # |g(phi(x + v)) - g(phi(x))|
    input_dist: np.ndarray   # |h(x + v) - h(x)|


def local_lipschitz(features, clean_features, input_norms, g=None, h=None) -> LipschitzResult:
    """Equation 9 ratios for each (sample, copy).

    Parameters
    ----------
    features : array of shape (n_samples, T, d) or (T, d) — features of the copies
    clean_features : array of shape (n_samples, d) or (d,) — features of the clean inputs
    input_norms : array of shape (n_samples, T) or (T,) — ``|v|`` in the units ``h`` saw
    g : fitted MinMaxNormalizer for the features, or None (no normalization)
    h : fitted global MinMaxNormalizer for the inputs, or None

    Returns
    -------
    LipschitzResult of arrays of shape (n_samples, T)
    """
    f = finite_array(features, "features", ndim=(2, 3))
    c = finite_array(clean_features, "clean_features", ndim=(1, 2))
    v = finite_array(input_norms, "input_norms", ndim=(1, 2))
    if f.ndim == 2:
        f, c, v = f[None], c.reshape(1, -1), v.reshape(1, -1)
    if c.shape != (f.shape[0], f.shape[2]) or v.shape != f.shape[:2]:
        raise FeatlabError(f"shapes disagree: features {f.shape}, clean_features {c.shape}, "
                           f"input_norms {v.shape}")
    if np.any(v <= 0):
        raise FeatlabError("input_norms must be > 0 (a copy equal to its clean input has no ratio)")
    if g is not None:
        f, c = g.transform(f), g.transform(c)
    out = np.linalg.norm(f - c[:, None, :], axis=-1)
    if h is not None:
        if h.per_feature:
            raise FeatlabError("the input normalizer h must be global (per_feature=False): "
                               "only |v| is stored")
        v = v / h.scale_
    return LipschitzResult(out / v, out, v)


def fraction_below_one(ratios, per: str = "copy") -> float:
    """Fraction of contractive cases: per (sample, copy) ratio, or per sample (its max)."""
    r = np.asarray(ratios, dtype=np.float64)
    one_of(per, ("copy", "sample"), "per")
    r = r.max(axis=-1) if per == "sample" else r
    r = r[np.isfinite(r)]
    return float(np.mean(r < 1)) if r.size else float("nan")


def polynomial_fits(x, y, degrees=(1, 2)) -> dict:
    """``numpy.polyfit`` of ``y`` on ``x`` for each degree (coefficients, highest first)."""
    x, y = np.ravel(np.asarray(x, float)), np.ravel(np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() <= max(degrees):
        raise FeatlabError(f"need more than {max(degrees)} finite points to fit, got {ok.sum()}")
    return {int(d): np.polyfit(x[ok], y[ok], int(d)) for d in degrees}


def gradient_lipschitz(model, x, norm=2, *, radius: float = 0.0, n_points: int = 8,
                       label=None, output: str = "probability", random_state=0) -> float:
    """Gradient-norm estimate of the local Lipschitz constant of the class score.

    ``max |grad_x s(x')|_q`` over ``x`` and ``n_points`` points uniform in the ``norm``-ball
    of ``radius`` around it (``q`` the dual norm), ``s`` the class probability or logit.

    Parameters
    ----------
    model : torch.nn.Module in eval mode — (N, *x.shape) -> logits (N, K)
    x : Tensor or array of shape (C, H, W), in the model's dtype
    norm : 1, 2 or inf — the input norm
    radius : float — ball radius in input units (0: only ``x``)
    label : int or None — the class (default: predicted at ``x``)
    output : {"probability", "logit"}

    Returns
    -------
    float
    """
    one_of(output, ("probability", "logit"), "output")
    x = torch.as_tensor(x)
    x = x if x.is_floating_point() else x.float()
    pts = [x[None]]
    if radius > 0 and n_points > 0:
        ball = sample_ball(tuple(x.shape), n_points, radius, norm, random_state)
        pts.append(x[None] + torch.as_tensor(ball, dtype=x.dtype))
    xb = torch.cat(pts).requires_grad_(True)
    logits = model(xb)
    if label is None:
        label = int(logits[0].argmax())
    score = logits.softmax(dim=1) if output == "probability" else logits
    (grad,) = torch.autograd.grad(score[:, label].sum(), xb)
    q = DUAL[check_norm(norm)]
    return float(np.linalg.norm(grad.reshape(len(xb), -1).double().numpy(), ord=q, axis=1).max())
