"""Small statistics used by the analyses: Wilson intervals and a paired sign-flip test."""
from __future__ import annotations

import numpy as np
from scipy.stats import norm


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
