"""The joint head's foreground penalty ``alpha`` on the paper's scale and on the mean scale.

Fusion paper Section 3.4 trains the joint head with ``L = -sum_i^N t_i log softmax(a_i) +
alpha |theta_fg|^2``: the penalty sits beside the cross-entropy *summed* over the N training
images. That is featlab's scale for ``alpha`` everywhere a user meets it (``fit-head
--alpha``, :func:`~featlab.analyses.heads.run.fit_head`, ``featlab report``, ``featlab demo``,
head names ``joint-all-alpha=10``, every JSON ``alpha``). The solver minimises the *mean*
cross-entropy (:mod:`featlab.heads.linear`), so it is given ``alpha / N``; ``alpha_scale="mean"`` reads a
typed alpha on that mean scale (the paper's alpha is then ``alpha * N``).

A joint head with a nonzero alpha records ``alpha`` (the paper's), ``alpha_scale="sum"`` and
``alpha_mean`` (``alpha / N``); alpha 0 is 0 on both scales and records ``alpha`` alone.
"""
from __future__ import annotations

from ...errors import FeatlabError
from ...utils.validation import finite_number
from .fusion import fit_fusion_heads

ALPHA_SCALES = ("sum", "mean")
#: how the scale reads in captions and summaries
SCALE_NOTE = "the paper's scale: penalty beside the cross-entropy summed over N train images"


def paper_alphas(alphas, alpha_scale: str, n: int) -> list:
    """The paper's alphas (sorted, distinct) from ``alphas`` typed on ``alpha_scale``: ``sum``
    (as they are) or ``mean`` (times the number of training images ``n``)."""
    if alpha_scale not in ALPHA_SCALES:
        raise FeatlabError(f"--alpha-scale {alpha_scale!r}: expected sum (the paper's) or mean")
    # 12 significant digits: a mean alpha typed as a / N gives back exactly a
    return sorted({float(f"{float(a) * n:.12g}") if alpha_scale == "mean" else float(a)
                   for a in alphas})


def mean_alpha(alpha: float, n: int) -> float:
    """The penalty beside the mean cross-entropy that equals the paper's ``alpha`` over n."""
    return float(alpha) / n


def checked(alphas, l2, alpha_scale):
    """The penalties, refused in one line before anything is read when not finite or < 0."""
    alphas = sorted({finite_number(a, "--alpha", low=0, hint="; the penalty weight must be >= 0")
                     for a in alphas})
    l2 = finite_number(l2, "--l2", low=0, low_open=True, hint=" (a small ridge, e.g. 1e-4)")
    paper_alphas(alphas, alpha_scale, 1)  # checks alpha_scale
    return alphas, l2


def joint_attrs(alpha: float, n: int) -> dict:
    """What a joint head records about its penalty (see the module docstring)."""
    if alpha == 0:
        return dict(alpha=0.0)
    return dict(alpha=float(alpha), alpha_scale="sum", alpha_mean=mean_alpha(alpha, n))


def fit_paper_heads(x_fg, x_bg, y, alphas, **head_kw) -> dict:
    """:func:`~.fusion.fit_fusion_heads` with ``alphas`` on the paper's scale (each solved as
    ``alpha / N`` beside the mean loss); the joint heads keyed by the paper's alpha."""
    heads = fit_fusion_heads(x_fg, x_bg, y, alphas=[mean_alpha(a, len(y)) for a in alphas],
                             **head_kw)
    heads["joint"] = dict(zip(alphas, heads["joint"].values()))
    return heads


def alpha_fields(alphas, n: int, given, alpha_scale: str) -> dict:
    """The alpha entries of a ``fit-head`` result: ``alphas`` on the paper's scale
    (``alpha_scale="sum"``), ``alphas_mean`` (alpha / N) and what was asked."""
    return dict(alphas=list(alphas), alpha_scale="sum",
                alphas_mean=[mean_alpha(a, n) for a in alphas], alphas_given=list(given),
                alpha_scale_given=alpha_scale)
