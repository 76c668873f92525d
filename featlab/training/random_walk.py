"""Random-walk selection of adversarial strengths, MAT paper Section 4.3.

Shared by the network-level (``featlab train --strengths auto``) and the head-level MAT
recipes. Pure NumPy: it needs only the accuracy matrix.

The paper's three procedures, as implemented here:

- *Pre-computation*: ``A`` of shape (n, n), ``A[i, j]`` = validation accuracy of the
  network (or head) trained at candidate strength ``i`` and attacked at strength ``j``.
- *Initialization*: ``A_M(i, j) = A(i, j) / sum_j A(i, j)``. Its rows sum to one, so it is
  the state transition matrix ``P``: from the single-strength state ``i`` the walk steps
  to ``j`` with probability ``A_M(i, j)`` — mostly to strengths inside ``i``'s working zone,
  a one-dimensional walk along the strength axis.
- *Simulation*: ``t`` walks of ``l`` steps, each from a uniformly drawn state; the states a
  walk visits form a candidate set ``C`` (``S = |C|``). Its multi-strength accuracy
  estimate is ``H(C) = mean_j max_{i in C} A(i, j)`` — the accuracy over the strength range
  when each tested strength is handled by the best member, i.e. what parallel MAT's vote
  approaches (the paper leaves H's form open; it is computed from A's accuracies because
  A_M's normalised rows no longer compare networks' absolute accuracy). ``G(C) = H(C) + a*S``
  with ``a < 0`` a penalty per strength; the chosen set maximises G over the visited sets.
"""
from __future__ import annotations

import numpy as np

from ..errors import FeatlabError


def transition_matrix(A: np.ndarray) -> np.ndarray:
    """``A_M``: ``A`` row-normalised, the walk's transition matrix, shape (n, n). A row of
    zeros (a network never right at any tested strength) walks anywhere uniformly."""
    A = np.asarray(A, dtype=np.float64)
    total = A.sum(axis=1, keepdims=True)
    return np.where(total > 0, A / np.where(total > 0, total, 1), 1.0 / A.shape[1])


def combination_accuracy(A: np.ndarray, members) -> float:
    """``H(C) = mean_j max_{i in C} A(i, j)`` for the set of row indices ``members``."""
    return float(np.asarray(A, dtype=np.float64)[sorted(members)].max(axis=0).mean())


def _check(A) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise FeatlabError(f"the accuracy matrix A must be square (rows: training strengths, "
                           f"columns: the same strengths tested); got shape {A.shape}")
    if not np.all(np.isfinite(A)) or A.min() < 0:
        raise FeatlabError("the accuracy matrix A needs finite accuracies >= 0")
    return A


def random_walk_selection(A, *, steps=None, walks: int = 200, penalty: float = -0.01,
                          seed: int = 0, strengths=None) -> dict:
    """Choose a set of strengths by the random walk of MAT Section 4.3.

    Parameters
    ----------
    A : array of shape (n, n) — validation accuracy, rows: training strength, columns:
        tested strength (the same n candidates)
    steps : int — l, steps per walk (default n: a walk may reach every candidate)
    walks : int — t, number of walks
    penalty : float — a in ``G = H + a * S`` (negative: each extra strength costs ``|a|``)
    seed : int — seeds the walks (NumPy ``default_rng``)
    strengths : sequence of n floats — the candidates' values (default: their indices)

    Returns
    -------
    dict (JSON-able) with ``A``, ``A_M``, ``chosen`` (sorted row indices),
    ``chosen_strengths``, ``G`` and ``H`` of the chosen set, and ``candidates``: every
    visited set with its ``H``, ``G`` and number of ``visits``, best first.
    """
    A = _check(A)
    n = len(A)
    steps = n if steps is None else int(steps)
    if steps < 0 or int(walks) < 1:
        raise FeatlabError(f"random walk: need steps l >= 0 and walks t >= 1, got l={steps}, "
                           f"t={walks}")
    strengths = list(range(n)) if strengths is None else [float(s) for s in strengths]
    P = transition_matrix(A)
    rng = np.random.default_rng(seed)
    visits: dict = {}
    for _ in range(int(walks)):
        state = int(rng.integers(n))
        path = {state}
        for _ in range(steps):
            state = int(rng.choice(n, p=P[state]))
            path.add(state)
        key = tuple(sorted(path))
        visits[key] = visits.get(key, 0) + 1
    rows = []
    for members, count in visits.items():
        h = combination_accuracy(A, members)
        rows.append(dict(set=list(members), strengths=[strengths[i] for i in members],
                         H=h, G=h + penalty * len(members), visits=count))
    rows.sort(key=lambda r: (-r["G"], len(r["set"]), r["set"]))
    best = rows[0]
    return dict(A=A.tolist(), A_M=P.tolist(), strengths=strengths, steps=steps,
                walks=int(walks), penalty=float(penalty), seed=int(seed),
                chosen=best["set"], chosen_strengths=best["strengths"], G=best["G"],
                H=best["H"], candidates=rows)
