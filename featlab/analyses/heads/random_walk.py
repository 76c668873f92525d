"""Random-walk selection of the adversarial strengths of MAT (MAT paper Section 4.3).

The paper's three procedures, with its names:

* *Pre-computation* — the accuracy matrix ``A`` (m, k): row ``i`` is the model trained on
  clean + adversarial examples of candidate strength ``s_i`` (single-strength training), column
  ``j`` the accuracy on validation examples of tested strength ``e_j`` (validation, not test).
* *Initialization* — ``A_M(i, j) = A(i, j) / sum_j A(i, j)``: each row becomes a distribution
  over the tested strengths, the *working range* of that training strength. The paper does
  not spell out the transition matrix ``P(A)``; featlab walks from state ``i`` to another state
  ``j`` with probability proportional to the total-variation distance between their working
  ranges (plus ``floor``), so a walk moves toward strengths that cover what the current one
  does not, and every state stays reachable.
* *Simulation* — ``t`` walks of ``l`` steps on the candidate strengths, each from a state
  drawn uniformly; every prefix of a walk visits a set ``C`` of strengths, scored by
  ``G(C) = H(C) + a * S`` with ``S = |C|``. ``H`` estimates the accuracy of the multi-strength
  model as the mean over tested strengths of the best member's accuracy,
  ``H(C) = mean_j max_{i in C} A(i, j)`` (the parallel-MAT idea of Section 4.2: at each strength
  the model that works best there), in accuracy units. ``a`` is the paper's coefficient of
  ``S``: negative values penalize larger sets (``a = -0.01``: a strength must buy one point).

The chosen set is the visited set of largest ``G`` (ties: fewer strengths, then smaller ones).
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError
from ...utils.validation import finite_array, finite_number, positive_int


def row_normalize(A):
    """``A_M``: each row of the accuracy matrix divided by its sum, ndarray (m, k)."""
    A = finite_array(A, "accuracy matrix A", ndim=2)
    if (A < 0).any() or not (A.sum(axis=1) > 0).all():
        raise FeatlabError("accuracy matrix A must hold accuracies >= 0 with no all-zero row")
    return A / A.sum(axis=1, keepdims=True)


def transition_matrix(A_M, floor=1e-3):
    """State transition matrix ``P`` (m, m) from ``A_M``: ``P(i, j)`` proportional to
    ``TV(A_M[i], A_M[j]) + floor`` for ``j != i``, 0 on the diagonal; rows sum to 1."""
    A_M = np.asarray(A_M, np.float64)
    m = len(A_M)
    if m == 1:
        return np.ones((1, 1))
    tv = 0.5 * np.abs(A_M[:, None, :] - A_M[None, :, :]).sum(axis=2)
    P = tv + floor
    np.fill_diagonal(P, 0.0)
    return P / P.sum(axis=1, keepdims=True)


def estimate_accuracy(A, members):
    """``H(C)``: mean over tested strengths (columns) of the best member row of ``A``."""
    return float(np.asarray(A, np.float64)[list(members)].max(axis=0).mean())


def random_walk_select(A, strengths, *, walk_steps=4, walks=200, walk_penalty=-0.005, seed=0,
                       floor=1e-3):
    """Choose a set of strengths by ``walks`` random walks of ``walk_steps`` steps.

    Parameters
    ----------
    A : array_like (m, k). Validation accuracy of the model trained at candidate strength
        ``strengths[i]`` (row) on examples of the k tested strengths (columns).
    strengths : sequence of m floats. The candidate (training) strengths, one per row.
    walk_steps : int >= 1. The paper's ``l``: steps per walk (a walk visits <= l + 1 states).
    walks : int >= 1. The paper's ``t``: number of walks.
    walk_penalty : float. The paper's ``a`` in ``G = H + a * S`` (negative: fewer strengths).
    seed : int. Seeds the walks (same seed, same result).
    floor : float > 0. Added to every off-diagonal transition weight (all states reachable).

    Returns
    -------
    dict with ``strengths`` (the chosen set, ascending), ``G``, ``H``, ``S``, ``A``, ``A_M``,
    ``P`` (lists), and ``candidates``: every visited set with its ``H``, ``G``, ``S`` and
    ``visits``, best first.
    """
    strengths = [float(s) for s in strengths]
    A_M = row_normalize(A)
    A = np.asarray(A, np.float64)
    if len(strengths) != len(A) or len(set(strengths)) != len(strengths):
        raise FeatlabError(f"need one distinct strength per row of A ({len(A)} rows); got "
                           f"{strengths}")
    steps = positive_int(walk_steps, "walk_steps")
    n_walks = positive_int(walks, "walks")
    a = finite_number(walk_penalty, "walk_penalty")
    P = transition_matrix(A_M, finite_number(floor, "floor", low=0, low_open=True))
    rng = np.random.default_rng(seed)
    visits: dict = {}
    for _ in range(n_walks):
        state = int(rng.integers(len(A)))
        visited = {state}
        visits[frozenset(visited)] = visits.get(frozenset(visited), 0) + 1
        for _ in range(steps):
            state = int(rng.choice(len(A), p=P[state]))
            visited.add(state)
            key = frozenset(visited)
            visits[key] = visits.get(key, 0) + 1
    scored = [_score(A, members, a, strengths, count) for members, count in visits.items()]
    scored.sort(key=lambda c: (-c["G"], c["S"], c["strengths"]))
    best = scored[0]
    return dict(strengths=best["strengths"], G=best["G"], H=best["H"], S=best["S"],
                A=A.tolist(), A_M=A_M.tolist(), P=P.tolist(), candidates=scored,
                walk_steps=steps, walks=n_walks, walk_penalty=a, seed=seed)


def _score(A, members, a, strengths, count):
    members = sorted(members)
    H = estimate_accuracy(A, members)
    return dict(strengths=[strengths[i] for i in members], S=len(members), H=H,
                G=H + a * len(members), visits=count)


def best_subset(A, strengths, walk_penalty=-0.005, max_size=None):
    """Exhaustive argmax of ``G`` over all non-empty subsets of at most ``max_size`` rows (the
    reference the walk is checked against; 2^m subsets, for small m)."""
    from itertools import combinations

    A = np.asarray(A, np.float64)
    m = len(A)
    scored = [_score(A, c, walk_penalty, [float(s) for s in strengths], 0)
              for size in range(1, (max_size or m) + 1) for c in combinations(range(m), size)]
    scored.sort(key=lambda c: (-c["G"], c["S"], c["strengths"]))
    return scored[0]
