"""Permuted Mantel statistics, bit-for-bit the arithmetic of scikit-bio's Cython kernel.

scikit-bio (``skbio/stats/distance/_cutils.pyx``, ``mantel_perm_pearsonr_cy``) computes,
for each permutation ``pi`` of the n objects, a sequential sum over the condensed pairs
``k = (i, j), i < j`` in row-major order::

    acc = 0.0
    for k: acc = yn[k] * (x[pi(i), pi(j)] * mul + add) + acc     # no FMA
    stat = clip(acc, -1, 1)

with ``mul = 1 / |x - mean(x)|`` and ``add = -mean(x) / |x - mean(x)|``. Performing the
same floating-point operations in the same order gives identical statistics, hence
identical p-values, including ties. The kernels below do exactly that, with
``xn = x * mul + add`` evaluated once per sample beforehand (the same two roundings).
The shared kernel runs its innermost loop across samples (which all use the same
permutations), which the compiler vectorises, and a block of permutations per pass over
``yn``; many samples then cost little more than one.
"""
from __future__ import annotations

import numpy as np

try:  # numba ships with umap-learn, a featlab dependency
    from numba import njit, prange

    from ...utils.numba_cache import cached_njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False


def condensed_index_table(perms: np.ndarray) -> np.ndarray:
    """Condensed positions of ``x[pi(i), pi(j)]`` for every pair ``i < j``.

    Parameters
    ----------
    perms : ndarray of shape (n_perm, n), int

    Returns
    -------
    ndarray of shape (n_perm, n*(n-1)/2), intp
    """
    n = perms.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    a, b = perms[:, iu], perms[:, ju]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return (lo * n + hi - ((lo + 2) * (lo + 1)) // 2).astype(np.intp)


def perm_stats_numpy(xn, yn, perms):
    """Reference for one sample (slow; memory ``n_perm * m``): ``xn``, ``yn`` of shape (m,).

    ``np.cumsum`` accumulates left to right, like the Cython loop.
    """
    terms = yn[None, :] * xn[condensed_index_table(perms)]
    return np.clip(np.cumsum(terms, axis=1)[:, -1], -1.0, 1.0)


PERM_BLOCK = 8  # permutations per pass over yn

if HAVE_NUMBA:

    @njit(inline="always")
    def _cidx(a, b, n):  # pragma: no cover - compiled
        if a > b:
            a, b = b, a
        return a * n + b - ((a + 2) * (a + 1)) // 2

    @cached_njit(parallel=True)  # cached under featlab's cache dir, not the package
    def _shared_kernel(xt, yt, perms, out):  # pragma: no cover - compiled
        # xt, yt: (m, S), samples last; perms: (P, n); out: (P, S)
        n_perm, n = perms.shape
        n_s = xt.shape[1]
        n_blk = (n_perm + PERM_BLOCK - 1) // PERM_BLOCK
        for blk in prange(n_blk):
            p0 = blk * PERM_BLOCK
            nb = min(PERM_BLOCK, n_perm - p0)
            acc = np.zeros((nb, n_s))
            k = 0
            for row in range(n - 1):
                for col in range(row + 1, n):
                    for j in range(nb):
                        xi = _cidx(perms[p0 + j, row], perms[p0 + j, col], n)
                        for s in range(n_s):
                            acc[j, s] = yt[k, s] * xt[xi, s] + acc[j, s]
                    k += 1
            for j in range(nb):
                for s in range(n_s):
                    out[p0 + j, s] = min(max(acc[j, s], -1.0), 1.0)

    @cached_njit(parallel=True)  # cached under featlab's cache dir, not the package
    def _per_sample_kernel(xn, yn, perms, out):  # pragma: no cover - compiled
        # xn, yn: (S, m); perms: (S, P, n); out: (S, P)
        n_s, n_perm, n = perms.shape
        n_blk = (n_perm + PERM_BLOCK - 1) // PERM_BLOCK
        for job in prange(n_s * n_blk):
            s = job // n_blk
            p0 = (job % n_blk) * PERM_BLOCK
            nb = min(PERM_BLOCK, n_perm - p0)
            acc = np.zeros(nb)
            k = 0
            for row in range(n - 1):
                for col in range(row + 1, n):
                    y = yn[s, k]
                    for j in range(nb):
                        xi = _cidx(perms[s, p0 + j, row], perms[s, p0 + j, col], n)
                        acc[j] = y * xn[s, xi] + acc[j]
                    k += 1
            for j in range(nb):
                out[s, p0 + j] = min(max(acc[j], -1.0), 1.0)


def perm_stats_shared(xn, yn, perms, block=128):
    """Permuted statistics of every sample under one shared permutation set.

    Parameters
    ----------
    xn, yn : ndarray of shape (n_samples, m), float64 — normalised condensed x and y
    perms : ndarray of shape (n_perm, n), intp
    block : int — samples per kernel call (bounds the transposed copies' memory)

    Returns
    -------
    ndarray of shape (n_samples, n_perm)
    """
    n_s = xn.shape[0]
    out = np.empty((n_s, perms.shape[0]))
    if not HAVE_NUMBA:  # pragma: no cover
        for s in range(n_s):
            out[s] = perm_stats_numpy(xn[s], yn[s], perms)
        return out
    perms = np.ascontiguousarray(perms, dtype=np.intp)
    for lo in range(0, n_s, block):
        hi = min(lo + block, n_s)
        res = np.empty((perms.shape[0], hi - lo))
        _shared_kernel(np.ascontiguousarray(xn[lo:hi].T), np.ascontiguousarray(yn[lo:hi].T),
                       perms, res)
        out[lo:hi] = res.T
    return out


def perm_stats_per_sample(xn, yn, perms):
    """Permuted statistics when each sample has its own ``perms`` (n_samples, P, n)."""
    n_s = xn.shape[0]
    out = np.empty((n_s, perms.shape[1]))
    if not HAVE_NUMBA:  # pragma: no cover
        for s in range(n_s):
            out[s] = perm_stats_numpy(xn[s], yn[s], perms[s])
        return out
    _per_sample_kernel(np.ascontiguousarray(xn), np.ascontiguousarray(yn),
                       np.ascontiguousarray(perms, dtype=np.intp), out)
    return out
