"""Mantel test between input-space and feature-space distance matrices (Section 2.3).

Aghdam, Heravi & Puig compare the distance matrix ``D_input`` of a sample's perturbed
copies ``x + v_i`` with the distance matrix ``D_output`` of their features
``Phi_L(x + v_i)`` (equation 7 motivates it; the Mantel correlation is the score), and
report its distribution across samples (Figure 4). ``|rho| = 1`` means the layer maps the
copies' topology linearly.

The statistic and p-value reproduce ``skbio.stats.distance.mantel`` (scikit-bio 0.7):

* ``r`` is computed with the same NumPy operations (identical to the last bit);
* permutations are drawn exactly as scikit-bio draws them (``permutation_orders``: one
  ``rng.permutation(n)`` per permutation from ``numpy.random.default_rng(seed)``), or
  passed explicitly;
* each permuted statistic repeats scikit-bio's arithmetic in the same order
  (``_mantel_kernels``), so with the same permutations the p-value is identical, ties
  included; the observed statistic used in the comparison is the identity permutation's.

``mantel_batch`` runs many samples at once: with one permutation set shared by all
samples (what scikit-bio gives when called per sample with the same integer seed) the
compiled kernel vectorises across samples.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy.stats import ConstantInputWarning, NearConstantInputWarning

from ...errors import FeatlabError
from . import _mantel_kernels as kernels
from ...utils.validation import enough_copies, finite_array, one_of

log = logging.getLogger(__name__)

METHODS = ("pearson", "spearman")
ALTERNATIVES = ("two-sided", "greater", "less")


def skbio_rng(random_state=None) -> np.random.Generator:
    """The generator scikit-bio's ``get_rng(seed)`` returns for the same argument."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        random_state = np.random.randint(np.iinfo(np.int32).max + 1)
    elif isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(np.iinfo(np.int32).max + 1)
    elif not np.issubdtype(type(random_state), np.integer):
        raise FeatlabError(f"random_state must be an int, a numpy Generator or None, "
                           f"got {random_state!r}")
    return np.random.default_rng(random_state)


def permutation_orders(n: int, permutations: int, random_state=None) -> np.ndarray:
    """Permutations of ``range(n)`` in scikit-bio's order of drawing.

    Returns
    -------
    ndarray of shape (permutations, n), intp
    """
    rng = skbio_rng(random_state)
    out = np.empty((int(permutations), n), dtype=np.intp)
    for row in range(out.shape[0]):
        out[row] = rng.permutation(n)
    return out


def _n_from_condensed(m: int, name: str) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise FeatlabError(f"{name} has {m} entries, which is not n*(n-1)/2 for any n; "
                           "pass a condensed distance matrix (scipy pdist order)")
    return n


def _condensed_batch(d, name: str) -> tuple[np.ndarray, int]:
    """(n_samples, m) condensed rows from (S, m) condensed or (S, n, n) square input."""
    d = finite_array(d, name, ndim=(2, 3))
    if d.ndim == 3:
        n = d.shape[1]
        if d.shape[2] != n or not np.array_equal(d, d.transpose(0, 2, 1)) \
                or np.any(np.diagonal(d, axis1=1, axis2=2) != 0):
            raise FeatlabError(f"{name} must hold symmetric, zero-diagonal matrices")
        iu, ju = np.triu_indices(n, k=1)
        return np.ascontiguousarray(d[:, iu, ju]), n
    return np.ascontiguousarray(d), _n_from_condensed(d.shape[1], name)


def _check_perms(perms, n: int) -> np.ndarray:
    perms = np.asarray(perms)
    if perms.shape[-1] != n or perms.ndim not in (2, 3) or \
            not np.array_equal(np.sort(perms, axis=-1), np.broadcast_to(np.arange(n), perms.shape)):
        raise FeatlabError(f"permutations must be an int or an array of shape (P, {n}) or "
                           f"(n_samples, P, {n}) whose rows permute range({n})")
    return perms.astype(np.intp)


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Row-wise average ranks (1-based, ties share the mean rank), bit for bit
    ``scipy.stats.rankdata(a, axis=1)``: one stable argsort of the whole batch and
    vectorised tie groups (rankdata along an axis is about 15x slower here). The Spearman
    path ranks each sample's distances once and then runs the Pearson kernel on the ranks."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    n = a.shape[1]
    idx = np.broadcast_to(np.arange(n), a.shape)
    starts = np.ones(a.shape, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    ends = np.ones(a.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(a.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def _prepare(x, y, method):
    """Per-sample inputs of the kernel, replicating scikit-bio's NumPy steps."""
    s = x.shape[0]
    constant = (x == x[:, :1]).all(axis=1) | (y == y[:, :1]).all(axis=1)
    if method == "spearman":
        x, y = average_ranks(x), average_ranks(y)
    r = np.full(s, np.nan)
    xn, yn = np.zeros_like(x), np.zeros_like(y)
    near = 0
    for i in np.flatnonzero(~constant):
        xmean, ymean = x[i].mean(), y[i].mean()
        normxm, normym = np.linalg.norm(x[i] - xmean), np.linalg.norm(y[i] - ymean)
        near += (normxm < 1e-13 * abs(xmean)) or (normym < 1e-13 * abs(ymean))
        yn[i] = (y[i] - ymean) / normym
        r[i] = max(min(np.dot((x[i] - xmean) / normxm, yn[i]), 1.0), -1.0)
        mul, add = 1.0 / normxm, -xmean / normxm
        xn[i] = x[i] * mul + add  # the kernel's x * mul + add, evaluated once
    if constant.any():
        warnings.warn(ConstantInputWarning(
            f"{int(constant.sum())} of {s} samples have constant distances; their Mantel r "
            "and p are NaN"), stacklevel=3)
    if near:
        warnings.warn(NearConstantInputWarning(
            f"{near} of {s} samples have nearly constant distances; r may be inaccurate"),
            stacklevel=3)
    return r, xn, yn, constant


def _p_values(stats, comp, alternative):
    if alternative == "two-sided":
        count = (np.abs(stats) >= np.abs(comp)[:, None]).sum(axis=1)
    elif alternative == "greater":
        count = (stats >= comp[:, None]).sum(axis=1)
    else:
        count = (stats <= comp[:, None]).sum(axis=1)
    return (count + 1) / (stats.shape[1] + 1)


def mantel_batch(X_dists, Y_dists, method: str = "pearson", permutations=999,
                 alternative: str = "two-sided", random_state=None):
    """Mantel tests of many samples at once.

    Parameters
    ----------
    X_dists, Y_dists : array of shape (n_samples, n*(n-1)/2) or (n_samples, n, n)
        Per sample, the condensed (``scipy.spatial.distance.pdist`` order) or square
        distance matrices of its ``n`` perturbed copies, e.g. input space and a layer.
        ``X`` is the permuted one, as in scikit-bio.
    method : {"pearson", "spearman"}
    permutations : int or ndarray of shape (P, n) or (n_samples, P, n)
        An int draws ``P`` permutations once from ``random_state`` and shares them by all
        samples (each sample then equals ``skbio.stats.distance.mantel(x, y,
        permutations=P, seed=random_state)`` for an int seed). An array gives them
        explicitly, shared (2-D) or per sample (3-D, e.g. stacked ``permutation_orders``
        with per-sample seeds; slower, about scikit-bio's own speed).
    alternative : {"two-sided", "greater", "less"}
    random_state : int, numpy Generator or RandomState, or None
        As scikit-bio's ``seed``.

    Returns
    -------
    r : ndarray of shape (n_samples,) — Mantel correlation (NaN for constant input)
    p : ndarray of shape (n_samples,) — permutation p-value (NaN if ``P == 0`` or r NaN)
    n : int — number of copies per sample
    """
    one_of(method, METHODS, "method")
    one_of(alternative, ALTERNATIVES, "alternative")
    x, n = _condensed_batch(X_dists, "X_dists")
    y, ny = _condensed_batch(Y_dists, "Y_dists")
    if x.shape != y.shape or n != ny:
        raise FeatlabError(f"X_dists and Y_dists must describe the same samples and copies, "
                           f"got {x.shape} and {y.shape}")
    enough_copies(n)
    if np.ndim(permutations) == 0:
        if int(permutations) < 0:
            raise FeatlabError(f"permutations must be >= 0, got {permutations}")
        perms = permutation_orders(n, int(permutations), random_state)
    else:
        perms = _check_perms(permutations, n)
        if perms.ndim == 3 and perms.shape[0] != x.shape[0]:
            raise FeatlabError(f"per-sample permutations have {perms.shape[0]} rows, "
                               f"expected one per sample ({x.shape[0]})")
    r, xn, yn, constant = _prepare(x, y, method)
    n_perm = perms.shape[-2]
    if n_perm == 0:
        return r, np.full_like(r, np.nan), n
    ident = np.arange(n, dtype=np.intp)
    if perms.ndim == 2:  # the identity first: its statistic is the one compared
        stats = kernels.perm_stats_shared(xn, yn, np.vstack([ident, perms]))
    else:
        full = np.concatenate([np.broadcast_to(ident, (len(perms), 1, n)), perms], axis=1)
        stats = kernels.perm_stats_per_sample(xn, yn, full)
    p = _p_values(stats[:, 1:], stats[:, 0], alternative)
    p[constant] = np.nan
    log.debug("mantel_batch: %d samples, n=%d, %d permutations", len(r), n, n_perm)
    return r, p, n


def mantel_test(x, y, method: str = "pearson", permutations=999, alternative: str = "two-sided",
           random_state=None):
    """Mantel test of two distance matrices, as ``skbio.stats.distance.mantel``.

    Parameters
    ----------
    x, y : array of shape (n, n) or (n*(n-1)/2,)
        Square or condensed distance matrices; ``x`` is the permuted one.
    method, permutations, alternative, random_state
        As :func:`mantel_batch` (``permutations`` an int or a (P, n) array).

    Returns
    -------
    r : float, p : float, n : int
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim not in (1, 2) or y.ndim not in (1, 2):
        raise FeatlabError("x and y must be square (n, n) or condensed (n*(n-1)/2,) "
                           f"distance matrices, got shapes {x.shape} and {y.shape}")
    r, p, n = mantel_batch(x[None], y[None], method, permutations, alternative, random_state)
    return float(r[0]), float(p[0]), n
