"""Small statistics used by the analyses: Wilson intervals, a paired sign-flip test, the
paired bootstrap and exact McNemar test on per-image correctness, and verdicts from intervals."""
from __future__ import annotations

import numpy as np
from scipy.stats import binom, norm


def wilson_interval(k, n, confidence=0.95):
    """Wilson score interval for a binomial proportion k / n (vectorised).

    Parameters
    ----------
    k, n : array_like of the same (broadcastable) shape. Successes and trials; ``n > 0``.
    confidence : float in (0, 1).

    Returns
    -------
    (low, high) : floats, or ndarrays of the broadcast shape. Same formula as
    ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    """
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError("wilson_interval needs 0 <= k <= n and n > 0")
    z = norm.ppf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def sign_flip_test(D, n_permutations=999, random_state=0, chunk=256):
    """Paired sign-flip permutation test that the mean displacement is zero.

    Under the null each per-image displacement ``d_i`` is symmetric about 0, so flipping its
    sign leaves the distribution unchanged. The statistic is ``T = |mean_i d_i|`` (Euclidean
    norm of the mean row); each permutation draws signs ``s_i = ±1`` and computes
    ``|mean_i s_i d_i|``, vectorised as ``(S @ D) / n`` in chunks of ``chunk`` permutations.

    Parameters
    ----------
    D : ndarray of shape (n_samples, n_features) or (n_samples,). Per-image displacements.
    n_permutations : int. Number of random sign matrices rows.
    random_state : int or numpy Generator.

    Returns
    -------
    (statistic, p_value) : floats, ``p = (1 + #{T_perm >= T_obs}) / (1 + n_permutations)``.
    """
    D = np.asarray(D, dtype=np.float64)
    D = D[:, None] if D.ndim == 1 else D
    if D.ndim != 2 or len(D) == 0:
        raise ValueError(f"D must have shape (n_samples, n_features); got {D.shape}")
    n = len(D)
    t_obs = float(np.linalg.norm(D.mean(axis=0)))
    rng = np.random.default_rng(random_state)
    # Ties in exact arithmetic (e.g. all-zero D) must count as ">=": compare with a tolerance.
    thresh = t_obs * (1.0 - 1e-12) - 1e-300
    count = 0
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        S = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2.0 - 1.0
        t_perm = np.linalg.norm(S @ D, axis=1) / n
        count += int((t_perm >= thresh).sum())
    return t_obs, (1.0 + count) / (1.0 + n_permutations)


def percentile_interval(boots, confidence):
    """Percentile interval ``(low, high)`` of resampled values ``boots`` (n_boot,)."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boots, [tail, 100.0 - tail])
    return float(low), float(high)


def check_confidence(confidence):
    """ValueError unless ``confidence`` is in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")


def _pair(correct_a, correct_b):
    a = np.asarray(correct_a, dtype=np.float64).ravel()
    b = np.asarray(correct_b, dtype=np.float64).ravel()
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be the same "
                         "non-empty images")
    return a, b


def bootstrap_index(n, n_boot, seed, chunk=500):
    """Resampled row indices (n_boot, n) drawn in chunks from ``seed``: the same draws for
    every statistic computed on the same images, so paired comparisons share resamples."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def paired_bootstrap(correct_a, correct_b, n_boot=2000, seed=0, confidence=0.95,
                     return_boots=False):
    """Accuracy difference ``mean(a) - mean(b)`` of two classifiers on the same images with a
    percentile bootstrap interval that resamples images jointly (Efron & Tibshirani 1993,
    Section 13.3; the same indices for ``a`` and ``b``, so the pairing is kept).

    Parameters
    ----------
    correct_a, correct_b : array_like of bool or {0, 1}, shape (n,). Per-image correctness
        of classifier a and b on the same n images, in the same order.
    n_boot : int. Bootstrap resamples. seed : int. confidence : float in (0, 1).
    return_boots : bool. Also return the resampled differences ``boots`` (n_boot,), for
        :func:`bootstrap_difference`.

    Returns
    -------
    dict ``effect`` (a - b), ``low``, ``high`` (percentile interval), ``n``, ``n_boot``.
    """
    check_confidence(confidence)
    a, b = _pair(correct_a, correct_b)
    d = a - b
    boots = np.concatenate([d[idx].mean(axis=1) for idx in bootstrap_index(len(d), n_boot, seed)])
    low, high = percentile_interval(boots, confidence)
    out = dict(effect=float(d.mean()), low=low, high=high, n=int(len(d)), n_boot=int(n_boot))
    return dict(out, boots=boots) if return_boots else out


def bootstrap_difference(first, second, confidence=0.95):
    """Interval of ``first - second`` for two *independent* paired-bootstrap results (each a
    dict with ``effect``, ``n`` and its resampled values ``boots``, from
    ``paired_bootstrap(..., return_boots=True)``): the resamples are drawn
    independently per sample (different images), so their differences are a bootstrap of
    the difference (Efron & Tibshirani 1993, Section 8.3, two-sample problem)."""
    check_confidence(confidence)
    diff = np.asarray(first["boots"]) - np.asarray(second["boots"])
    low, high = percentile_interval(diff, confidence)
    return dict(effect=float(first["effect"] - second["effect"]), low=low, high=high,
                n=int(first["n"] + second["n"]))


def mcnemar(correct_a, correct_b):
    """Exact (binomial) two-sided McNemar test of equal accuracy on the same images
    (McNemar 1947; exact form: Edwards 1948). Only discordant images count: ``b`` where a is
    right and b wrong, ``c`` the reverse; under the null ``b ~ Binomial(b + c, 1/2)`` and
    ``p = min(1, 2 P(X <= min(b, c)))`` (equal to ``scipy.stats.binomtest(b, b + c).pvalue``).

    Returns dict ``p_value``, ``a_only`` (b), ``b_only`` (c), ``n``.
    """
    a, b = _pair(correct_a, correct_b)
    a_only, b_only = int(((a > 0) & (b == 0)).sum()), int(((a == 0) & (b > 0)).sum())
    m = a_only + b_only
    p = 1.0 if m == 0 else float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), m, 0.5)))
    return dict(p_value=p, a_only=a_only, b_only=b_only, n=int(len(a)))


VERDICTS = ("yes", "no", "inconclusive")


def verdict(low, high, direction="greater", margin=0.0):
    """Verdict on a directional claim "the effect is > 0" (``direction="greater"``; ``"less"``:
    < 0) from an interval of the effect, with a margin of practical equivalence ``margin``
    (>= 0, in the effect's units: the smallest effect that counts as one).

    Reading the interval as the combination of a test against 0 and an equivalence test
    against ``±margin`` (Lakens, Scheel & Isager 2018, "Equivalence testing for psychological
    research", Figure 1; the equivalence part is Schuirmann's 1987 two one-sided tests read
    from one interval), with the effect flipped to the claimed side:

    * ``no`` when the interval's upper end is below ``margin``: every effect the interval
      admits is smaller than the smallest one that counts — absent, practically equivalent
      to 0 (the whole interval inside ``(-margin, margin)``, e.g. [0, 0] for two identical
      heads), or on the wrong side. This takes precedence, so a gain that is real but
      shown to be negligible (e.g. [+0.002, +0.008] at margin 0.01) is ``no``;
    * ``yes`` when the interval excludes 0 on the claimed side (superiority) and the effect
      is not shown to be negligible; a ``yes`` does not say the effect exceeds the margin
      (the printed interval does);
    * ``inconclusive`` otherwise, and for a missing / NaN interval.

    With ``margin=0`` this is the plain test against 0. A 95 % interval makes each one-sided
    decision at the 2.5 % level.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less'; got {direction!r}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if direction == "less":
        low, high = -high, -low
    if high < margin:
        return "no"
    return "yes" if low > 0 else "inconclusive"


def within_verdict(low, high, margin):
    """Verdict on "the effect is within ±margin" (an equivalence claim, as the two one-sided
    tests of Schuirmann 1987 read from one interval): ``yes`` when the whole interval lies
    inside ``(-margin, margin)``, ``no`` when it lies entirely outside it on one side, else
    ``inconclusive``."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if -margin < low and high < margin:
        return "yes"
    return "no" if low >= margin or high <= -margin else "inconclusive"


def below_verdict(low, high, tolerance):
    """Verdict on "the effect stays below ``tolerance``": ``yes`` when the interval's upper
    end is below it, ``no`` when its lower end is above it, else ``inconclusive``."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    return "yes" if high < tolerance else "no" if low > tolerance else "inconclusive"
