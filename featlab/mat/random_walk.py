"""Random-walk selection of the adversarial strengths of MAT (MAT paper Section 4.3).

One implementation for both levels: ``featlab train --strengths auto`` (networks) and
``fit-head --strengths auto`` (heads on cached features). The paper's three procedures:

* *Pre-computation* — the accuracy matrix ``A`` (m, k): row ``i`` is the model trained on
  clean + adversarial examples of candidate strength ``s_i`` (single-strength training,
  Eq. 3), column ``j`` its accuracy on *validation* examples of tested strength ``e_j``. The
  tested strengths are the range the model must work on: every candidate, and possibly
  others — ``0`` is the clean examples (the paper's ranges start at eps = 0, Section 5.1).
* *Initialization* — ``A_M(i, j) = A(i, j) / sum_j A(i, j)``. Its rows sum to one, and it is
  the state transition matrix ``P``: from the single-strength state ``s_i`` the walk steps to
  candidate ``s_i'`` with probability ``A_M(i, col(s_i'))``, renormalised over the candidate
  columns (exactly ``A_M`` when the tested strengths are the candidates) — a one-dimensional
  walk along the strength axis that moves within the working zone of the current strength.
  A model with no accuracy at any candidate strength steps uniformly.
* *Simulation* — ``t`` walks of ``l`` steps, each from a uniformly drawn state. Every prefix of
  a walk (its first state, then each step) visits a set ``C`` of strengths, ``S = |C|``,
  scored by ``G(C) = H(C) + a * S``. The paper names ``H`` the multi-strength accuracy
  estimate without giving its form; here ``H(C) = mean_j max_{i in C} A(i, j)``, the accuracy
  over the tested range when every tested strength is handled by the member that works best
  there (the upper bound parallel MAT's voting approaches, Section 4.2). It reads ``A``, not
  ``A_M``: the normalised rows no longer compare the models' accuracies. ``a < 0`` penalises
  each extra strength (``a = -0.01``: a strength must buy one point of mean accuracy).

The chosen set is the visited set of largest ``G`` (ties: fewer strengths, then smaller
ones). With enough walks every set the walks can reach is scored, so the result is the
argmax of ``G`` over those sets; :func:`best_subset` is the exhaustive reference.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..errors import FeatlabError
from .options import DEFAULT_PENALTY, DEFAULT_WALKS, check_walk_options


def row_normalize(A) -> np.ndarray:
    """``A_M``: each row of ``A`` (m, k) divided by its sum; an all-zero row stays zero."""
    A = np.asarray(A, np.float64)
    total = A.sum(axis=1, keepdims=True)
    return np.divide(A, total, out=np.zeros_like(A), where=total > 0)


def transition_matrix(A_M, columns) -> np.ndarray:
    """``P`` (m, m): the columns ``columns`` (one per candidate, in row order) of ``A_M``,
    each row renormalised to sum to one (uniform where a row has no mass there)."""
    P = np.asarray(A_M, np.float64)[:, list(columns)]
    total = P.sum(axis=1, keepdims=True)
    return np.where(total > 0, P / np.where(total > 0, total, 1.0), 1.0 / P.shape[1])


def estimate_accuracy(A, members) -> float:
    """``H(C) = mean_j max_{i in C} A(i, j)`` for the row indices ``members``."""
    return float(np.asarray(A, np.float64)[sorted(members)].max(axis=0).mean())


def _checked(A, strengths, tested):
    A = np.asarray(A, np.float64)
    if A.ndim != 2 or not np.isfinite(A).all():
        raise FeatlabError(f"accuracy matrix A must be a finite 2-D array (rows: candidate "
                           f"strengths, columns: tested strengths); got shape {A.shape}")
    strengths = [float(s) for s in strengths]
    tested = strengths if tested is None else [float(s) for s in tested]
    m, k = A.shape
    if m < 1 or len(strengths) != m or len(set(strengths)) != m:
        raise FeatlabError(f"need one distinct candidate strength per row of A ({m} rows); "
                           f"got {strengths}")
    if len(tested) != k or len(set(tested)) != k:
        raise FeatlabError(f"need one distinct tested strength per column of A ({k} columns); "
                           f"got {tested}")
    missing = [s for s in strengths if s not in tested]
    if missing:
        raise FeatlabError(f"the tested strengths {tested} must include every candidate; "
                           f"missing {missing}")
    if (A < 0).any() or (A > 1).any():
        raise FeatlabError("accuracy matrix A must hold accuracies in [0, 1]")
    return A, strengths, tested


def _score(A, members, penalty, strengths, visits):
    members = sorted(members)
    H = estimate_accuracy(A, members)
    return dict(strengths=[strengths[i] for i in members], S=len(members), H=H,
                G=H + penalty * len(members), visits=visits)


def _best_first(scored):
    return sorted(scored, key=lambda c: (-c["G"], c["S"], c["strengths"]))


def _walk(P, steps, walks, rng) -> dict:
    """Visit counts {frozenset of states: n} of every prefix of ``walks`` walks."""
    m = len(P)
    visits: dict = {}
    for _ in range(walks):
        state = int(rng.integers(m))
        visited = {state}
        visits[frozenset(visited)] = visits.get(frozenset(visited), 0) + 1
        for _ in range(steps):
            state = int(rng.choice(m, p=P[state]))
            visited.add(state)
            key = frozenset(visited)
            visits[key] = visits.get(key, 0) + 1
    return visits


def random_walk_select(A, strengths, tested=None, *, walk_steps=None, walks=DEFAULT_WALKS,
                       walk_penalty=DEFAULT_PENALTY, seed=0) -> dict:
    """Choose a set of strengths by the random walk of MAT Section 4.3.

    Parameters
    ----------
    A : array_like (m, k). Validation accuracy (in [0, 1]) of the model trained at candidate
        strength ``strengths[i]`` (row) on examples of tested strength ``tested[j]`` (column).
    strengths : sequence of m distinct floats. The candidate (training) strengths.
    tested : sequence of k distinct floats, or None (= ``strengths``). The tested strengths;
        must contain every candidate (0 = clean examples).
    walk_steps : int >= 1 or None. The paper's ``l``, steps per walk (a walk visits at most
        ``l + 1`` states); None: ``m``.
    walks : int >= 1. The paper's ``t``, number of walks.
    walk_penalty : float. The paper's ``a`` in ``G = H + a * S``.
    seed : int. Seeds the walks (NumPy ``default_rng``): same seed, same result.

    Returns
    -------
    dict (JSON-able): ``strengths`` (the chosen set, ascending), ``chosen`` (its row
    indices), ``G``, ``H``, ``S``; ``A``, ``A_M``, ``P`` (lists), ``rows`` (candidates),
    ``columns`` (tested strengths); ``candidates``: every visited set with its ``H``, ``G``,
    ``S`` and ``visits`` (prefixes that ended on it), best first; the walk options.
    """
    A, strengths, tested = _checked(A, strengths, tested)
    steps, n_walks, penalty = check_walk_options(walk_steps, walks, walk_penalty)
    steps = len(A) if steps is None else steps
    A_M = row_normalize(A)
    P = transition_matrix(A_M, [tested.index(s) for s in strengths])
    visits = _walk(P, steps, n_walks, np.random.default_rng(seed))
    scored = _best_first([_score(A, c, penalty, strengths, n) for c, n in visits.items()])
    best = scored[0]
    return dict(strengths=best["strengths"], chosen=[strengths.index(s) for s in
                                                     best["strengths"]],
                G=best["G"], H=best["H"], S=best["S"], A=A.tolist(), A_M=A_M.tolist(),
                P=P.tolist(), rows=strengths, columns=tested, candidates=scored,
                walk_steps=steps, walks=n_walks, walk_penalty=penalty, seed=int(seed))


def best_subset(A, strengths, tested=None, *, walk_penalty=DEFAULT_PENALTY,
                max_size=None) -> dict:
    """Exhaustive argmax of ``G`` over every non-empty set of at most ``max_size`` rows
    (the reference the walk is checked against; 2^m sets, for small m). Same dict as one
    entry of ``candidates`` (``visits`` 0)."""
    A, strengths, _ = _checked(A, strengths, tested)
    penalty = check_walk_options(None, 1, walk_penalty)[2]
    m = len(A)
    return _best_first([_score(A, c, penalty, strengths, 0)
                        for size in range(1, (max_size or m) + 1)
                        for c in combinations(range(m), size)])[0]
