"""Random-effects meta-analysis of one effect measured in several independent replicates, and
the verdict across replicates decided with the claims' own rule."""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..analyses.stats import verdict, within_verdict

#: Fewer replicates with an interval than this: the verdict across seeds is inconclusive
#: (the between-seed variance tau^2 cannot be estimated from one or two seeds).
MIN_SEEDS = 3
Z95 = float(norm.ppf(0.975))


def random_effects(effects, variances, confidence=0.95) -> dict:
    """DerSimonian & Laird (1986) random-effects pooling of ``k`` effects.

    The fixed-effect mean with weights ``w_i = 1 / v_i`` gives Cochran's
    ``Q = sum w_i (y_i - y_FE)^2``; the between-replicate variance is the moment estimate
    ``tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``; the pooled effect weighs
    each replicate by ``1 / (v_i + tau^2)``, its standard error is ``(sum 1/(v_i + tau^2))^-1/2``
    and its interval is normal. ``I^2 = max(0, (Q - (k - 1)) / Q)`` (Higgins & Thompson 2002).
    Equal to ``statsmodels.stats.meta_analysis.combine_effects(..., method_re="dl")``, whose
    moment estimate is not truncated: when ``Q < k - 1`` it reports a negative tau^2 and this
    pool equals its fixed-effect result (tau^2 = 0, as DerSimonian and Laird define it).

    Parameters
    ----------
    effects : array_like of shape (k,). One effect per replicate.
    variances : array_like of shape (k,). Their sampling variances, all > 0.
    confidence : float in (0, 1).

    Returns
    -------
    dict ``effect``, ``se``, ``low``, ``high``, ``tau2``, ``i2``, ``q``, ``k``.
    """
    y, v = np.asarray(effects, dtype=np.float64), np.asarray(variances, dtype=np.float64)
    if y.ndim != 1 or y.shape != v.shape or len(y) == 0:
        raise ValueError(f"effects {y.shape} and variances {v.shape} must be the same (k,) > 0")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("effects must be finite and variances finite and > 0")
    w = 1.0 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    q, df = float(np.sum(w * (y - fixed) ** 2)), len(y) - 1
    c = float(np.sum(w) - np.sum(w ** 2) / np.sum(w))
    tau2 = max(0.0, (q - df) / c) if df > 0 and c > 0 else 0.0
    w_re = 1.0 / (v + tau2)
    effect = float(np.sum(w_re * y) / np.sum(w_re))
    se = float(np.sqrt(1.0 / np.sum(w_re)))
    z = float(norm.ppf(0.5 + confidence / 2.0))
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return dict(effect=effect, se=se, low=effect - z * se, high=effect + z * se, tau2=tau2,
                i2=i2, q=q, k=len(y))


def standard_error(row: dict):
    """A claim row's standard error: its own ``se`` when it carries one, else from its 95 %
    interval, ``(high - low) / (2 * 1.96)`` (the normal reading of a bootstrap percentile
    interval). None when the row has no finite interval of positive width."""
    se = row.get("se")
    if se is None:
        low, high = row.get("low"), row.get("high")
        if low is None or high is None:
            return None
        se = (float(high) - float(low)) / (2.0 * Z95)
    return float(se) if np.isfinite(se) and se > 0 else None


def rule(row: dict) -> dict:
    """How a row is decided: ``direction`` greater / less (than ``reference``) or within
    (``|effect - reference| < margin``), as written by :mod:`featlab.reporting.claims`."""
    return dict(direction=row.get("direction", "greater"),
                reference=float(row.get("reference") or 0.0),
                margin=float(row.get("margin") or 0.0))


def decide(rule_: dict, low, high) -> str:
    """The verdict of an interval under ``rule_`` (:func:`rule`): the claims' own functions
    (:func:`~featlab.analyses.stats.verdict`, :func:`~featlab.analyses.stats.within_verdict`)
    on the interval shifted by the reference."""
    if low is None or high is None:
        return "inconclusive"
    low, high = float(low) - rule_["reference"], float(high) - rule_["reference"]
    if rule_["direction"] == "within":
        return within_verdict(low, high, rule_["margin"])
    return verdict(low, high, rule_["direction"], rule_["margin"])


def across_verdict(rule_: dict, pooled, min_seeds: int = MIN_SEEDS) -> str:
    """Verdict across seeds: the row's rule on the pooled interval, inconclusive with fewer
    than ``min_seeds`` seeds that measured it (``pooled`` None or its ``k`` below)."""
    if pooled is None or pooled["k"] < min_seeds:
        return "inconclusive"
    return decide(rule_, pooled["low"], pooled["high"])
