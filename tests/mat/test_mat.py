"""featlab.mat: MAT's random-walk strength selection (Section 4.3) on hand-computed accuracy
matrices, and parallel MAT's voting coefficients (Section 4.2, Eq. 4) against scipy."""
import itertools
import json
import re

import numpy as np
import pytest
from scipy.optimize import minimize

from featlab.errors import FeatlabError
from featlab.mat import (best_subset, check_walk_options, fit_voting, label_probabilities,
                         random_walk_select, voting_nll)
from featlab.mat.random_walk import estimate_accuracy, row_normalize, transition_matrix

# candidates 0.01, 0.03, 0.05; tested: clean (0) and the three candidates
STRENGTHS = [0.01, 0.03, 0.05]
TESTED = [0.0, 0.01, 0.03, 0.05]
# Each case by hand at a = -0.01, H = mean over the four columns of the best member:
# single: H({.03}) = (.86+.85+.80+.70)/4 = .8025, G = .7925; adding .01 buys
#   (.87+.87+.80+.70)/4 - .8025 = .0075 < .01, adding .05 buys .005, both .0125 < .02.
SINGLE = [[.87, .87, .60, .40], [.86, .85, .80, .70], [.50, .50, .60, .72]]
# pair: H({.01, .05}) = (.95+.94+.80+.85)/4 = .885, G = .865; .03 is never the best member
#   (full set: G = .855), the best single is H({.01}) = .7225, G = .7125.
PAIR = [[.95, .94, .60, .40], [.70, .70, .72, .60], [.60, .60, .80, .85]]
# full: H = (.95+.94+.90+.90)/4 = .9225, G = .8925; best pair {.01, .05}: .8475 - .02 = .8275.
FULL = [[.95, .94, .50, .30], [.60, .70, .90, .50], [.40, .40, .60, .90]]


@pytest.mark.parametrize("A, chosen, H", [(SINGLE, [0.03], .8025), (PAIR, [0.01, 0.05], .885),
                                          (FULL, STRENGTHS, .9225)], ids=["single", "pair", "full"])
def test_walk_chooses_the_hand_computed_optimum(A, chosen, H):
    result = random_walk_select(A, STRENGTHS, TESTED, walks=100, seed=0)
    assert result["strengths"] == chosen
    assert result["chosen"] == [STRENGTHS.index(s) for s in chosen]
    assert result["H"] == pytest.approx(H) and result["S"] == len(chosen)
    assert result["G"] == pytest.approx(H - 0.01 * len(chosen))
    assert best_subset(A, STRENGTHS, TESTED)["strengths"] == chosen
    every = [c for k in (1, 2, 3) for c in itertools.combinations(range(3), k)]
    by_hand = max(every, key=lambda c: (np.mean(np.max(np.asarray(A)[list(c)], 0)) - 0.01 * len(c),
                                        -len(c)))
    assert [STRENGTHS[i] for i in by_hand] == chosen
    assert all(c["G"] <= result["G"] for c in result["candidates"])


def test_single_strengths_are_scored_even_when_every_walk_moves_on():
    """A walk of 20 steps (almost) never stays on its first state, yet that state alone is a
    scored set. Square (network-level) matrix, by hand: H({.01}) = (.9+.7+.5)/3 = .7,
    H({.01, .03}) = (.9+.72+.55)/3 = .7233, H(all) = .7267. At a = -0.05 the single strength
    wins (.65 against .6233 and .5767); at a = -0.01 the pair (.7033 against .69 and .6967)."""
    A = [[.90, .70, .50], [.60, .72, .55], [.40, .50, .56]]
    out = random_walk_select(A, STRENGTHS, walk_steps=20, walks=50, walk_penalty=-0.05, seed=1)
    assert out["strengths"] == [0.01] and out["G"] == pytest.approx(0.65)
    assert out["candidates"][0]["visits"] >= 1
    pair = random_walk_select(A, STRENGTHS, walk_steps=20, walks=50, seed=1)
    assert pair["strengths"] == [0.01, 0.03] and pair["G"] == pytest.approx(2.17 / 3 - 0.02)


def test_transition_matrix_is_a_m_on_the_candidate_columns():
    A = np.array(PAIR)
    A_M = row_normalize(A)
    assert np.allclose(A_M.sum(1), 1) and np.allclose(A_M * A.sum(1, keepdims=True), A)
    P = transition_matrix(A_M, [1, 2, 3])
    assert np.allclose(P[0], np.array([.94, .60, .40]) / 1.94)  # by hand, clean column out
    square = A[:, 1:]
    assert np.allclose(transition_matrix(row_normalize(square), [0, 1, 2]), row_normalize(square))
    zero = transition_matrix(np.array([[1.0, 0, 0], [0, 0, 0], [0, 0.5, 0.5]]), [0, 1, 2])
    assert np.allclose(zero[1], 1 / 3) and np.allclose(zero.sum(1), 1)
    assert estimate_accuracy(A, [0, 2]) == pytest.approx(.885)


def test_walk_parameters_have_the_papers_meaning():
    one = random_walk_select(FULL, STRENGTHS, TESTED, walk_steps=1, walks=50, seed=3)
    assert max(c["S"] for c in one["candidates"]) <= 2  # l = 1: two states at most
    few = random_walk_select(FULL, STRENGTHS, TESTED, walk_steps=4, walks=1, seed=3)
    assert sum(c["visits"] for c in few["candidates"]) == 5  # t = 1 walk: l + 1 prefixes
    assert json.dumps(few) == json.dumps(random_walk_select(FULL, STRENGTHS, TESTED,
                                                            walk_steps=4, walks=1, seed=3))
    default = random_walk_select(FULL, STRENGTHS, TESTED)
    assert default["walk_steps"] == 3 and default["walks"] == 200
    assert default["walk_penalty"] == -0.01
    assert default["rows"] == STRENGTHS and default["columns"] == TESTED


@pytest.mark.parametrize("kw, words", [
    (dict(walk_steps=0), "--walk-steps=0"), (dict(walk_steps=-3), "--walk-steps=-3"),
    (dict(walks=0), "--walks=0"), (dict(walk_penalty=float("nan")), "--walk-penalty=nan"),
    (dict(walk_penalty=float("inf")), "--walk-penalty=inf"),
    (dict(walk_steps=1.5), "--walk-steps")])
def test_walk_options_are_refused(kw, words):
    with pytest.raises(FeatlabError, match=re.escape(words)):
        random_walk_select(FULL, STRENGTHS, TESTED, **kw)
    options = dict(dict(walk_steps=None, walks=1, walk_penalty=0.0), **kw)
    with pytest.raises(FeatlabError):
        check_walk_options(**options)


def test_malformed_matrices_are_refused():
    with pytest.raises(FeatlabError, match="one distinct candidate strength per row"):
        random_walk_select(FULL, STRENGTHS[:2], TESTED)
    with pytest.raises(FeatlabError, match="must include every candidate"):
        random_walk_select(FULL, STRENGTHS, [0.0, 0.01, 0.03, 0.08])
    with pytest.raises(FeatlabError, match="finite"):
        random_walk_select(np.full((3, 4), np.nan), STRENGTHS, TESTED)
    with pytest.raises(FeatlabError, match=r"\[0, 1\]"):
        random_walk_select(np.full((3, 4), 1.5), STRENGTHS, TESTED)


# -- voting ---------------------------------------------------------------------------------
def _constructed_probas(n=200, C=4, seed=0):
    """Head 1 is right and sure on the first half, unsure on the second; head 2 the reverse;
    head 3 is uniform noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    sure, unsure = np.full((n, C), 0.02), np.full((n, C), 1.0 / C)
    sure[np.arange(n), y] = 1 - 0.02 * (C - 1)
    wrong = np.full((n, C), 0.1)
    wrong[np.arange(n), (y + 1) % C] = 1 - 0.1 * (C - 1)
    half = np.arange(n) < n // 2
    p1 = np.where(half[:, None], sure, 0.5 * unsure + 0.5 * wrong)
    p2 = np.where(half[:, None], 0.5 * unsure + 0.5 * wrong, sure)
    p3 = rng.dirichlet(np.ones(C), n)
    return np.stack([p1, p2, p3]), y


def test_voting_weights_on_the_simplex_beat_the_best_single_member():
    probas, y = _constructed_probas()
    own = label_probabilities(probas, y)
    assert own.shape == (200, 3) and own[0, 0] == probas[0, 0, y[0]]
    a = fit_voting(own)
    assert (a >= 0).all() and a.sum() == pytest.approx(1.0, abs=1e-12)
    single = [np.mean(p.argmax(1) == y) for p in probas]
    voted = np.mean(np.tensordot(a, probas, 1).argmax(1) == y)
    assert voted > max(single) + 0.2
    assert a[2] < 0.05  # the noise member gets (almost) no vote
    perfect = np.c_[np.ones(50), np.random.default_rng(0).uniform(0, 0.2, 50)]
    assert fit_voting(perfect)[0] > 0.999


def test_voting_weights_are_the_optimum_of_the_simplex_problem():
    probas, y = _constructed_probas(seed=1)
    probas[2] = 0.7 * probas[2] + 0.3 * probas[0]  # an interior optimum
    own = label_probabilities(probas, y)
    a = fit_voting(own, tol=1e-13, max_iter=100000)
    ref = minimize(lambda v: voting_nll(own, v), np.full(3, 1 / 3), method="SLSQP",
                   bounds=[(0, 1)] * 3, constraints=[dict(type="eq", fun=lambda v: v.sum() - 1)],
                   options=dict(ftol=1e-14, maxiter=1000))
    assert voting_nll(own, a) <= ref.fun + 1e-9
    assert np.abs(a - ref.x).max() < 1e-3
    with pytest.raises(FeatlabError, match="finite probabilities"):
        fit_voting(np.full((4, 2), np.nan))
    with pytest.raises(FeatlabError, match="n_samples, S"):
        fit_voting(np.ones(4))
