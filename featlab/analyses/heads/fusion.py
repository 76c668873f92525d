"""Foreground, background and joint heads (fusion paper Sections 2.1, 3.2–3.4).

The foreground head sees the object backbone's features, the background head the scene
backbone's, and the joint head their concatenation ``[X_fg, X_bg]`` (late fusion, Sec. 2.1),
trained with the Section 3.4 penalty ``alpha |theta_fg|^2`` on its foreground block.
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError
from ...utils.validation import check_features
from ..stats import wilson_interval
from ...heads.linear import LinearHead, fit_alpha_sweep


def fit_fusion_heads(X_fg, X_bg, y, *, alphas=(0.0,), l2=1e-4, n_classes=None, **kw) -> dict:
    """Fit the three heads; one joint head per alpha (warm-started in increasing alpha).

    Parameters
    ----------
    X_fg : ndarray (n_samples, n_fg). Foreground (object backbone) features.
    X_bg : ndarray (n_samples, n_bg). Background (scene backbone) features, same rows.
    y : ndarray (n_samples,). Labels.
    alphas : iterable of float >= 0. Penalties on the joint head's foreground block, beside
        the mean cross-entropy: the paper's alpha (Section 3.4, summed loss) divided by N.
    l2 : float. Ridge penalty on every head. ``kw`` go to :class:`LinearHead`.

    Returns
    -------
    dict ``{"fg": LinearHead, "bg": LinearHead, "joint": {alpha: LinearHead}}``; the joint
    heads take ``hstack([X_fg, X_bg])`` and penalize its first ``n_fg`` columns.
    """
    X_fg, X_bg = check_features(X_fg, "X_fg"), check_features(X_bg, "X_bg")
    if len(X_fg) != len(X_bg):
        raise FeatlabError(f"X_fg has {len(X_fg)} rows and X_bg {len(X_bg)}; they must be the "
                         "same images in the same order")
    alphas = [float(a) for a in alphas]
    fit = dict(n_classes=n_classes)
    heads = {"fg": LinearHead(l2=l2, **kw).fit(X_fg, y, **fit),
             "bg": LinearHead(l2=l2, **kw).fit(X_bg, y, **fit)}
    joint = fit_alpha_sweep(_joint(X_fg, X_bg), y, alphas, np.arange(X_fg.shape[1]), l2=l2,
                            n_classes=n_classes, **kw)
    heads["joint"] = dict(zip(alphas, joint))
    return heads


def _joint(X_fg, X_bg):
    dtype = np.result_type(X_fg.dtype, X_bg.dtype)
    return np.hstack([X_fg.astype(dtype, copy=False), X_bg.astype(dtype, copy=False)])


WEIGHT_SPACES = ("standardized", "raw")


def mean_abs_weights(head, n_fg, space="standardized"):
    """Mean |weight| from each backbone's block into a joint head (Figure 4b, 5c–d).

    ``space="standardized"`` uses ``head.coef_std_``, the weights per unit of each feature's
    standard deviation; ``"raw"`` uses ``head.coef_``, the weights on the features as stored
    (what a fully connected layer on the raw features, as in the paper, learns). The two can
    disagree on which backbone weighs more (raw weights also carry each backbone's feature
    scale), so featlab reports both. Returns ``(fg, bg)`` floats: the mean over classes and
    the first ``n_fg`` (resp. remaining) features.
    """
    if space not in WEIGHT_SPACES:
        raise FeatlabError(f"space={space!r}: expected one of {', '.join(WEIGHT_SPACES)}")
    W = np.abs(np.asarray(head.coef_std_ if space == "standardized" else head.coef_))
    if not 0 < n_fg < W.shape[1]:
        raise FeatlabError(f"n_fg={n_fg} must split the head's {W.shape[1]} features in two")
    return float(W[:, :n_fg].mean()), float(W[:, n_fg:].mean())


def evaluate(heads, features_by_condition, y) -> list[dict]:
    """Accuracy of every head on every condition, with 95% Wilson intervals.

    Parameters
    ----------
    heads : dict as returned by :func:`fit_fusion_heads`.
    features_by_condition : dict ``{condition: (X_fg, X_bg)}``, rows aligned with ``y``.
    y : ndarray (n_samples,). True labels (values from the heads' ``classes_``).

    Returns
    -------
    list of dict rows ``{condition, head, alpha, n, correct, accuracy, ci_low, ci_high}``;
    ``head`` is "fg", "bg" or "joint" and ``alpha`` is None except for joint heads.
    """
    y = np.asarray(y)
    named = [("fg", None, heads["fg"]), ("bg", None, heads["bg"])]
    named += [("joint", float(a), h) for a, h in heads.get("joint", {}).items()]
    rows = []
    for condition, (X_fg, X_bg) in features_by_condition.items():
        X_fg, X_bg = check_features(X_fg, "X_fg"), check_features(X_bg, "X_bg")
        if not len(X_fg) == len(X_bg) == len(y):
            raise FeatlabError(f"condition {condition!r}: {len(X_fg)}, {len(X_bg)} feature rows "
                             f"for {len(y)} labels")
        inputs = {"fg": X_fg, "bg": X_bg}
        if heads.get("joint"):
            inputs["joint"] = _joint(X_fg, X_bg)
        for kind, alpha, head in named:
            n = len(y)
            correct = int((head.predict(inputs[kind]) == y).sum()) if n else 0
            low, high = wilson_interval(correct, n) if n else (float("nan"),) * 2
            rows.append(dict(condition=condition, head=kind, alpha=alpha, n=n, correct=correct,
                             accuracy=correct / n if n else float("nan"), ci_low=low,
                             ci_high=high))
    return rows
