"""Paired bootstrap, exact McNemar, verdicts (featlab.analyses.stats) against scipy and
constructed ground truth; the subspace-membership test on constructed data."""
import numpy as np
import pytest
from scipy import stats as sps

from featlab.analyses.shift.membership import residual_norms, subspace_membership
from featlab.analyses.shift.subspace import fit_pca
from featlab.analyses.stats import (below_verdict, bootstrap_difference, mcnemar,
                                    paired_bootstrap, verdict, within_verdict)


def _vectors(n, p_a, p_b, seed):
    rng = np.random.default_rng(seed)
    return rng.random(n) < p_a, rng.random(n) < p_b


@pytest.mark.parametrize("counts", [(0, 0, 5, 5), (7, 2, 30, 11), (1, 19, 3, 0), (40, 41, 9, 10)])
def test_mcnemar_equals_scipy_binomtest_on_the_discordant_pairs(counts):
    both, a_only, b_only, neither = counts
    a = np.r_[np.ones(both + a_only), np.zeros(b_only + neither)].astype(bool)
    b = np.r_[np.ones(both), np.zeros(a_only), np.ones(b_only), np.zeros(neither)].astype(bool)
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"], result["n"]) == (a_only, b_only, len(a))
    m = a_only + b_only
    expected = 1.0 if m == 0 else sps.binomtest(a_only, m, 0.5).pvalue
    assert result["p_value"] == pytest.approx(expected, rel=1e-12)


def test_paired_bootstrap_matches_scipy_paired_percentile_interval():
    a, b = _vectors(300, 0.8, 0.7, seed=3)
    ours = paired_bootstrap(a, b, n_boot=10000, seed=1)
    ref = sps.bootstrap((a.astype(float), b.astype(float)),
                        lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=True,
                        vectorized=True, n_resamples=10000, method="percentile",
                        random_state=np.random.default_rng(2)).confidence_interval
    assert ours["effect"] == pytest.approx(a.mean() - b.mean())
    # different random draws: the two Monte Carlo intervals agree to well under one image in 300
    assert ours["low"] == pytest.approx(ref.low, abs=0.006)
    assert ours["high"] == pytest.approx(ref.high, abs=0.006)


def test_paired_bootstrap_constructed_truths():
    n = 200
    always, never = np.ones(n, bool), np.zeros(n, bool)
    s = paired_bootstrap(always, never, n_boot=500, seed=0)
    assert (s["effect"], s["low"], s["high"]) == (1.0, 1.0, 1.0)  # no variation to resample
    same = paired_bootstrap(always, always, n_boot=500, seed=0)
    assert (same["low"], same["high"]) == (0.0, 0.0)
    # pairing matters: b = a with 10 images flipped wrong -> the difference is 10/n exactly in
    # every resample's expectation, and its spread is far narrower than an unpaired one
    a, _ = _vectors(n, 0.7, 0.5, seed=5)
    b = a.copy()
    b[np.flatnonzero(a)[:10]] = False
    s = paired_bootstrap(a, b, n_boot=4000, seed=0)
    assert s["effect"] == pytest.approx(10 / n)
    assert 0 < s["low"] < 10 / n < s["high"] < 0.1
    assert s == paired_bootstrap(a, b, n_boot=4000, seed=0)  # same seed, same interval


def test_paired_bootstrap_interval_covers_the_true_difference():
    """Frequentist coverage on constructed populations: ~95% of intervals cover 0.1."""
    covered = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        b = rng.random(200) < 0.6
        a = b | (rng.random(200) < 0.25)  # P(a) = 0.6 + 0.4 * 0.25 = 0.7
        s = paired_bootstrap(a, b, n_boot=300, seed=seed)
        covered += s["low"] <= 0.1 <= s["high"]
    assert 0.87 <= covered / 150 <= 0.99


def test_bootstrap_difference_of_independent_gains():
    a1, b1 = _vectors(300, 0.9, 0.5, seed=1)
    a2, b2 = _vectors(300, 0.55, 0.5, seed=2)
    g1 = paired_bootstrap(a1, b1, n_boot=3000, seed=0, return_boots=True)
    g2 = paired_bootstrap(a2, b2, n_boot=3000, seed=1, return_boots=True)
    d = bootstrap_difference(g1, g2)
    assert d["effect"] == pytest.approx(g1["effect"] - g2["effect"])
    assert d["low"] > 0 and d["n"] == 600
    width = (g1["high"] - g1["low"]) ** 2 + (g2["high"] - g2["low"]) ** 2
    assert d["high"] - d["low"] == pytest.approx(np.sqrt(width), rel=0.15)  # variances add


def test_verdicts_reach_every_outcome():
    assert verdict(0.01, 0.2) == "yes" and verdict(-0.2, -0.01) == "no"
    assert verdict(-0.01, 0.2) == "inconclusive" and verdict(float("nan"), 1) == "inconclusive"
    assert verdict(-0.2, -0.01, "less") == "yes" and verdict(0.01, 0.2, "less") == "no"
    assert within_verdict(-0.01, 0.015, 0.02) == "yes"
    assert within_verdict(0.025, 0.05, 0.02) == "no" and within_verdict(-0.05, -0.03, 0.02) == "no"
    assert within_verdict(-0.01, 0.03, 0.02) == "inconclusive"
    assert below_verdict(1.0, 1.2, 1.25) == "yes" and below_verdict(1.3, 2.0, 1.25) == "no"
    assert below_verdict(1.1, 1.4, 1.25) == "inconclusive"
    with pytest.raises(ValueError):
        verdict(0, 1, "bigger")


def test_verdict_with_a_margin_says_no_to_a_null_or_negligible_effect():
    """"effect > 0" with a margin of 0.01: no when the interval lies below +0.01 (inside
    ±0.01, e.g. [0, 0] for identical heads, or on the wrong side), yes when it excludes 0
    on the claimed side, else inconclusive; "less" is the mirror image."""
    m = 0.01
    assert verdict(0.0, 0.0) == "inconclusive"  # margin 0: the plain test against 0
    assert verdict(0.0, 0.0, margin=m) == "no"
    assert verdict(-0.004, 0.009, margin=m) == "no"  # practically equivalent to 0
    assert verdict(0.002, 0.008, margin=m) == "no"  # real, but smaller than the margin
    assert verdict(-0.05, 0.005, margin=m) == "no"  # no gain of 0.01 is admitted
    assert verdict(-0.2, -0.05, margin=m) == "no"
    assert verdict(0.002, 0.03, margin=m) == "yes" and verdict(0.05, 0.2, margin=m) == "yes"
    assert verdict(-0.01, 0.05, margin=m) == "inconclusive"
    assert verdict(-0.001, 0.0, "less", m) == "no" and verdict(-0.05, -0.002, "less", m) == "yes"
    assert verdict(-0.05, 0.001, "less", m) == "inconclusive"
    assert verdict(float("nan"), 0.0, margin=m) == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        verdict(0, 1, margin=-0.01)


def _cloud(seed, n=600, p=20, k=3):
    """Points near a k-dim subspace of R^p (small isotropic noise off it): a train half and
    a test half of the same cloud, the subspace's basis and its orthogonal complement."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(p, p)))[0]
    inside, outside = basis[:, :k], basis[:, k:]
    X = rng.normal(size=(n, k)) * [5.0, 3.0, 2.0] @ inside.T + 0.1 * rng.normal(size=(n, p))
    return X[: n // 2], X[n // 2:], inside, outside, rng


def test_membership_inside_move_stays_orthogonal_move_leaves():
    train, test, inside, outside, rng = _cloud(0)
    moved_in = test + rng.normal(size=(300, 3)) * 2.0 @ inside.T
    moved_out = test + rng.normal(size=(300, 17)) * 0.3 @ outside.T
    stays = subspace_membership(train, test, moved_in, k=3, n_boot=500)
    leaves = subspace_membership(train, test, moved_out, k=3, n_boot=500)
    assert stays["stays_inside"] == "yes" and stays["ratio_high"] < 1.25
    assert stays["ratio"] == pytest.approx(1.0, abs=0.1)
    assert leaves["stays_inside"] == "no" and leaves["ratio_low"] > 2.0
    same = subspace_membership(train, test, test, k=3, n_boot=200)
    assert (same["ratio"], same["ratio_low"], same["ratio_high"]) == (1.0, 1.0, 1.0)
    # judged against a tolerance inside its own interval, a move is inconclusive
    slight = test + rng.normal(size=(300, 17)) * 0.05 @ outside.T
    mid = subspace_membership(train, test, slight, k=3, n_boot=500)
    tol = (mid["ratio_low"] + mid["ratio_high"]) / 2
    assert mid["ratio_low"] < tol < mid["ratio_high"]
    assert subspace_membership(train, test, slight, k=3, n_boot=500,
                               tolerance=tol)["stays_inside"] == "inconclusive"


def test_residual_norms_by_hand():
    X = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -4.0]])
    comps = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert residual_norms(X, np.zeros(3), comps) == pytest.approx([3.0, 4.0])
    mean, comps, _ = fit_pca(np.random.default_rng(0).normal(size=(50, 3)), 3)
    assert residual_norms(X, mean, comps) == pytest.approx([0.0, 0.0], abs=1e-9)


def test_membership_validates_shapes():
    with pytest.raises(ValueError):
        subspace_membership(np.zeros((10, 4)), np.zeros((5, 4)), np.zeros((6, 4)))
    with pytest.raises(ValueError):
        subspace_membership(np.zeros((10, 4)), np.zeros((5, 3)), np.zeros((5, 3)))
