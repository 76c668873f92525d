"""LinearHead, fusion heads and Wilson intervals against scikit-learn, scipy, torch, statsmodels."""
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from featlab.analyses.heads.fusion import evaluate, fit_fusion_heads, mean_abs_weights
from featlab.heads.linear import LinearHead, fit_alpha_sweep
from featlab.analyses.stats import wilson_interval


def blobs(n=300, p=12, C=4, sep=1.0, offset=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    scales = rng.uniform(0.5, 3.0, p)  # unequal scales: standardization matters
    X = (rng.normal(size=(n, p)) + sep * rng.normal(size=(C, p))[y]) * scales + offset
    return X, y


def standardized(X):
    return (X - X.mean(0)) / X.std(0)


def test_matches_sklearn_logistic_regression():
    X, y = blobs()
    lam = 1e-3
    head = LinearHead(l2=lam, tol=1e-10).fit(X, y)
    sk = LogisticRegression(C=1 / (2 * lam * len(y)), tol=1e-12, max_iter=20000)
    sk.fit(standardized(X), y)
    assert np.abs(head.coef_std_ - sk.coef_).max() < 1e-4 * max(1, np.abs(sk.coef_).max())
    assert np.abs(head.intercept_std_ - (sk.intercept_ - sk.intercept_.mean())).max() < 1e-4
    assert np.abs(head.predict_proba(X) - sk.predict_proba(standardized(X))).max() < 1e-5
    assert np.array_equal(head.predict(X), sk.predict(standardized(X)))


def reference_objective(Xs, y, C, alpha, pen, lam):
    """Independent scipy L-BFGS-B solution of mean CE + alpha|W_pen|^2 + lam|W|^2."""
    n, p = Xs.shape
    Y = np.eye(C)[y]
    m = lam + alpha * pen

    def f(w):
        W, b = w[:C * p].reshape(C, p), w[C * p:]
        A = Xs @ W.T + b
        lse = logsumexp(A, axis=1)
        R = (np.exp(A - lse[:, None]) - Y) / n
        val = (lse - (A * Y).sum(1)).mean() + (m * W ** 2).sum()
        return val, np.concatenate([(R.T @ Xs + 2 * m * W).ravel(), R.sum(0)])

    res = minimize(f, np.zeros(C * p + C), jac=True, method="L-BFGS-B",
                   options=dict(gtol=1e-11, ftol=1e-15, maxiter=50000, maxcor=30))
    return res.fun, res.x[:C * p].reshape(C, p)


def test_objective_matches_scipy_reference_with_alpha_penalty():
    X, y = blobs(seed=1)
    pen = np.zeros(X.shape[1])
    pen[:5] = 1
    head = LinearHead(alpha=0.05, penalized=np.arange(5), l2=1e-3, tol=1e-10).fit(X, y)
    f_ref, W_ref = reference_objective(standardized(X), y, 4, 0.05, pen, 1e-3)
    assert head.objective(X, y) == pytest.approx(f_ref, rel=1e-9, abs=1e-12)
    assert head.objective(X, y) <= f_ref + 1e-12
    assert np.abs(head.coef_std_ - W_ref).max() < 1e-5


def test_gradient_is_zero_at_optimum():
    X, y = blobs(seed=2)
    head = LinearHead(alpha=0.3, penalized=slice(0, 6), l2=1e-3, tol=1e-10).fit(X, y)
    Xs, yt = torch.tensor(standardized(X)), torch.tensor(y)
    m = torch.full((X.shape[1],), 1e-3, dtype=torch.float64)
    m[:6] += 0.3

    def grads(W0, b0):
        W = torch.tensor(W0, requires_grad=True)
        b = torch.tensor(b0, requires_grad=True)
        loss = torch.nn.functional.cross_entropy(Xs @ W.T + b, yt) + (m * W ** 2).sum()
        loss.backward()
        return loss.item(), max(W.grad.abs().max().item(), b.grad.abs().max().item())

    loss, g = grads(head.coef_std_, head.intercept_std_)
    assert g < 1e-9
    assert loss == pytest.approx(head.objective(X, y), rel=1e-12)
    assert grads(head.coef_std_ * 1.01, head.intercept_std_)[1] > 1e-4  # the check can fail


def fusion_problem(n=600, C=3, p=8, seed=0):
    """fg carries the label strongly, bg moderately; corrupted fg points to the next class.

    The class means are fixed; ``seed`` draws the samples (train and test share the means).
    """
    means = np.random.default_rng(123).normal(size=(2, C, p))
    means_fg, means_bg = means[0] * 2.5, means[1] * 1.0
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    X_fg = means_fg[y] + rng.normal(size=(n, p))
    X_bg = means_bg[y] + rng.normal(size=(n, p))
    X_fg_bad = means_fg[(y + 1) % C] + rng.normal(size=(n, p))
    return X_fg, X_bg, X_fg_bad, y


def test_alpha_shrinks_foreground_weights_and_raises_background_share():
    X_fg, X_bg, _, y = fusion_problem()
    X = np.hstack([X_fg, X_bg])
    heads = fit_alpha_sweep(X, y, [1.0, 0.0, 0.01, 0.1], np.arange(8), l2=1e-3)
    heads = [heads[i] for i in (1, 2, 3, 0)]  # returned in the order given
    assert [h.alpha for h in heads] == [0.0, 0.01, 0.1, 1.0]
    norms = [np.linalg.norm(h.coef_std_[:, :8]) for h in heads]
    shares = [mean_abs_weights(h, 8)[1] / sum(mean_abs_weights(h, 8)) for h in heads]
    assert all(a > b for a, b in zip(norms, norms[1:]))
    assert all(a < b for a, b in zip(shares, shares[1:]))


def test_foreground_penalty_helps_when_foreground_is_corrupted():
    X_fg, X_bg, _, y = fusion_problem(seed=3)
    heads = fit_fusion_heads(X_fg, X_bg, y, alphas=(0.0, 10.0), l2=1e-3)
    T_fg, T_bg, T_fg_bad, t_y = fusion_problem(seed=4)
    rows = evaluate(heads, {"clean": (T_fg, T_bg), "bad": (T_fg_bad, T_bg)}, t_y)
    acc = {(r["condition"], r["head"], r["alpha"]): r["accuracy"] for r in rows}
    assert acc[("clean", "joint", 0.0)] > 0.9 and acc[("clean", "joint", 10.0)] > 0.6
    assert acc[("bad", "joint", 10.0)] > acc[("bad", "joint", 0.0)] + 0.3
    assert acc[("bad", "fg", None)] < 0.2 and acc[("bad", "bg", None)] > 0.6


def test_raw_space_coefficients_reproduce_standardized_logits_and_torch():
    X, y = blobs(seed=5)
    head = LinearHead(alpha=0.1, penalized=[0, 3], l2=1e-2).fit(X, y)
    std_logits = standardized(X) @ head.coef_std_.T + head.intercept_std_
    assert np.abs(head.decision_function(X) - std_logits).max() < 1e-9
    assert np.abs(X @ head.coef_.T + head.intercept_ - std_logits).max() < 1e-9
    lin = head.to_torch()
    assert lin.weight.dtype == torch.float32 and lin.weight.shape == (4, 12)
    out = lin(torch.tensor(X, dtype=torch.float32)).detach().numpy()
    assert np.abs(out - head.decision_function(X)).max() < 1e-4


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("penalized", [slice(0, 20), None])
def test_deterministic_and_float32_path(penalized, fresh_fit_memo):
    fresh_fit_memo.enabled = False  # two real solves, not one solve and a memo hit
    # penalized=None: every weight under alpha, an underfit problem whose gradient at the
    # optimum is below float32 rounding of X.T @ R (the solver must finish in float64)
    X, y = blobs(n=500, p=40, C=5, seed=6)
    X32 = X.astype(np.float32)
    a = LinearHead(alpha=0.2, penalized=penalized).fit(X32, y)
    b = LinearHead(alpha=0.2, penalized=penalized).fit(X32, y)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
    c = LinearHead(alpha=0.2, penalized=penalized, tol=1e-10).fit(X32.astype(np.float64), y)
    assert np.abs(a.coef_std_ - c.coef_std_).max() < 2e-5  # |g| <= 1e-8, curvature >= 2e-4


def test_fit_memo_returns_the_solvers_bytes_and_misses_on_any_changed_input(fresh_fit_memo):
    X, y = blobs(n=300, p=16, C=4, seed=11)
    X32 = X.astype(np.float32)
    fresh_fit_memo.enabled = False
    solved = LinearHead(alpha=0.3, penalized=np.arange(8)).fit(X32, y)
    fresh_fit_memo.enabled = True
    first = LinearHead(alpha=0.3, penalized=np.arange(8)).fit(X32, y)
    assert (fresh_fit_memo.hits, fresh_fit_memo.misses) == (0, 1)
    first.coef_[:] = 0.0  # a caller's edit must not reach the memo
    again = LinearHead(alpha=0.3, penalized=np.arange(8)).fit(X32, y)
    assert fresh_fit_memo.hits == 1
    for name in ("coef_", "intercept_", "coef_std_", "mean_", "scale_", "n_iter_"):
        assert np.array_equal(getattr(again, name), getattr(solved, name)), name
    X2 = X32.copy()
    X2[5, 3] = np.nextafter(X2[5, 3], np.float32(np.inf))
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 4
    changed = [lambda: LinearHead(alpha=0.3, penalized=np.arange(8)).fit(X2, y),
               lambda: LinearHead(alpha=0.3, penalized=np.arange(8)).fit(X32, y2),
               lambda: LinearHead(alpha=0.31, penalized=np.arange(8)).fit(X32, y),
               lambda: LinearHead(alpha=0.3, penalized=np.arange(9)).fit(X32, y),
               lambda: LinearHead(alpha=0.3, penalized=np.arange(8), tol=1e-9).fit(X32, y),
               lambda: LinearHead(alpha=0.3, penalized=np.arange(8)).fit(
                   X32, y, sample_weight=np.r_[2.0, np.ones(299)]),
               lambda: LinearHead(alpha=0.3, penalized=np.arange(8)).fit(
                   X32, y, warm_start_from=solved)]
    for i, fit in enumerate(changed):
        hits = fresh_fit_memo.hits
        fit()
        assert fresh_fit_memo.hits == hits, f"changed input {i} was served from the memo"
    with warnings.catch_warnings(record=True) as caught:  # a memo hit warns as the solve did
        warnings.simplefilter("always")
        LinearHead(max_iter=2).fit(X, y)
        LinearHead(max_iter=2).fit(X, y)
    assert sum("did not reach" in str(w.message) for w in caught) == 2


def test_warm_start_reaches_the_same_solution():
    X, y = blobs(n=400, p=20, seed=7)
    cold = LinearHead(alpha=0.5, penalized=np.arange(10), l2=1e-3, tol=1e-10).fit(X, y)
    start = LinearHead(alpha=0.1, penalized=np.arange(10), l2=1e-3).fit(X, y)
    warm = LinearHead(alpha=0.5, penalized=np.arange(10), l2=1e-3, tol=1e-10).fit(
        X, y, warm_start_from=start)
    assert np.abs(cold.coef_ - warm.coef_).max() < 1e-6
    assert warm.n_iter_ < cold.n_iter_


def test_nan_rows_raise_clear_error():
    X, y = blobs()
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="1 rows with NaN.*row 7"):
        LinearHead().fit(X, y)


def test_estimator_contract_labels_and_n_classes():
    X, y = blobs(C=3, seed=8)
    names = np.array(["cat", "dog", "eel"])[y]
    head = LinearHead(l2=1e-2).fit(X, names)
    assert list(head.classes_) == ["cat", "dog", "eel"]
    assert head.score(X, names) > 0.8 and set(head.predict(X)) <= set(head.classes_)
    params = clone(head).get_params()
    assert params["l2"] == 1e-2 and not hasattr(clone(head), "coef_")
    five = LinearHead(l2=1e-2).fit(X, y, n_classes=5)  # classes 3 and 4 never seen
    assert five.coef_.shape == (5, 12) and five.predict_proba(X)[:, 3:].max() < 1e-3
    with pytest.raises(ValueError, match="n_classes"):
        LinearHead().fit(X, y, n_classes=2)


def test_non_convergence_warns():
    X, y = blobs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        head = LinearHead(max_iter=2).fit(X, y)
    assert head.n_iter_ == 2 and any("did not reach" in str(w.message) for w in caught)


def test_mean_abs_weights_and_evaluate_rows():
    head = LinearHead()
    head.coef_std_ = np.array([[1.0, -3.0, 0.5], [-1.0, 1.0, -0.5]])
    assert mean_abs_weights(head, 2) == (1.5, 0.5)
    X_fg, X_bg, _, y = fusion_problem(n=200)
    heads = fit_fusion_heads(X_fg, X_bg, y, alphas=(0.0, 1.0), l2=1e-3)
    assert heads["fg"].coef_.shape == (3, 8) and heads["joint"][1.0].coef_.shape == (3, 16)
    rows = evaluate(heads, {"clean": (X_fg, X_bg)}, y)
    assert [(r["head"], r["alpha"]) for r in rows] == [("fg", None), ("bg", None),
                                                      ("joint", 0.0), ("joint", 1.0)]
    for r in rows:
        assert r["n"] == 200 and r["accuracy"] == r["correct"] / 200
        assert (r["ci_low"], r["ci_high"]) == wilson_interval(r["correct"], 200)


def test_mean_abs_weights_in_both_spaces_can_disagree_on_the_dominant_backbone():
    from featlab.errors import FeatlabError

    head = LinearHead()
    head.coef_std_ = np.array([[2.0, -2.0, 0.5, -0.5], [2.0, 2.0, 0.5, 0.5]])
    head.scale_ = np.array([10.0, 10.0, 0.1, 0.1])  # the fg features vary 100 x more
    head.coef_ = head.coef_std_ / head.scale_
    assert mean_abs_weights(head, 2) == (2.0, 0.5)  # standardized: fg dominates
    assert mean_abs_weights(head, 2, space="raw") == pytest.approx((0.2, 5.0))  # raw: bg
    with pytest.raises(FeatlabError, match="space"):
        mean_abs_weights(head, 2, space="scaled")


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    k = np.array([0, 1, 7, 50, 99, 100, 3])
    n = np.array([10, 10, 40, 100, 100, 100, 1000])
    for conf in (0.9, 0.95, 0.99):
        low, high = wilson_interval(k, n, confidence=conf)
        ref_low, ref_high = proportion_confint(k, n, alpha=1 - conf, method="wilson")
        assert np.allclose(low, ref_low, atol=1e-12) and np.allclose(high, ref_high, atol=1e-12)
    assert wilson_interval(5, 10) == pytest.approx(proportion_confint(5, 10, method="wilson"))
