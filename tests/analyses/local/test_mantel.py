"""Mantel test (Aghdam et al., Section 2.3) against scikit-bio and constructed ground truth."""
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ConstantInputWarning, kstest

from featlab.analyses.local import _mantel_kernels as kernels
from featlab.analyses.local.mantel import mantel_batch, mantel_test, permutation_orders
from featlab.errors import FeatlabError

skbio_mantel = pytest.importorskip("skbio.stats.distance").mantel
DATA = Path(__file__).parent / "data"


def _sk(x, y, **kw):
    return skbio_mantel(squareform(x), squareform(y), **kw)


def _same(a, b):
    """r to 1e-12 and p exactly (NaN == NaN)."""
    assert a[2] == b[2]
    assert a[0] == pytest.approx(b[0], abs=1e-12, nan_ok=True)
    assert (np.isnan(a[1]) and np.isnan(b[1])) or a[1] == b[1]


def test_vegan_varespec_varechem_example():
    # vegan: mantel(vegdist(varespec), dist(scale(varechem))) -> r = 0.3047, spearman 0.2838
    spec = np.genfromtxt(DATA / "varespec.csv", delimiter=",", skip_header=1)[:, 1:]
    chem = np.genfromtxt(DATA / "varechem.csv", delimiter=",", skip_header=1)[:, 1:]
    assert spec.shape == (24, 44) and chem.shape == (24, 14)
    veg = pdist(spec, "braycurtis")
    env = pdist((chem - chem.mean(0)) / chem.std(0, ddof=1))
    r, p, n = mantel_test(veg, env, permutations=999, random_state=42)
    assert n == 24 and round(r, 4) == 0.3047 and p <= 0.01
    rs, ps, _ = mantel_test(veg, env, method="spearman", permutations=999, random_state=42)
    assert round(rs, 4) == 0.2838 and ps <= 0.01
    _same((r, p, n), _sk(veg, env, permutations=999, seed=42))
    _same((rs, ps, n), _sk(veg, env, method="spearman", permutations=999, seed=42))


def test_identical_matrices_give_r_one():
    d = pdist(np.random.default_rng(0).random((12, 5)))
    r, p, _ = mantel_test(d, d, permutations=99, random_state=0)
    assert r == pytest.approx(1.0, abs=1e-12) and p == pytest.approx(0.01)
    rb, _, _ = mantel_batch(np.stack([d, 2 * d]), np.stack([d, d]), permutations=9)
    np.testing.assert_allclose(rb, 1.0, atol=1e-12)  # scaling keeps the topology


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n", [3, 5, 17])
def test_equals_skbio_on_random_inputs(method, alternative, n):
    rng = np.random.default_rng(n)
    for seed in range(3):
        x, y = pdist(rng.random((n, 4))), pdist(rng.random((n, 3)))
        if seed == 2:  # heavy ties: integer distances
            x, y = pdist(rng.integers(0, 3, (n, 2))), pdist(rng.integers(0, 4, (n, 2)))
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        kw = dict(method=method, permutations=199, alternative=alternative)
        _same(mantel_test(x, y, random_state=seed, **kw), _sk(x, y, seed=seed, **kw))
        # square input and an explicit permutation array give the same answer
        perms = permutation_orders(n, 199, seed)
        kw["permutations"] = perms
        _same(mantel_test(squareform(x), squareform(y), **kw),
              _sk(x, y, seed=seed, **{**kw, "permutations": 199}))


def test_batch_equals_skbio_per_sample_shared_and_per_sample_permutations():
    rng = np.random.default_rng(7)
    X = np.stack([pdist(rng.random((9, 3))) for _ in range(6)])
    Y = np.stack([pdist(rng.random((9, 2))) for _ in range(6)])
    r, p, n = mantel_batch(X, Y, permutations=99, random_state=5)
    for i in range(6):
        _same((r[i], p[i], n), _sk(X[i], Y[i], permutations=99, seed=5))
    per = np.stack([permutation_orders(9, 99, 100 + i) for i in range(6)])
    r2, p2, _ = mantel_batch(X, Y, method="spearman", permutations=per)
    for i in range(6):
        _same((r2[i], p2[i], n), _sk(X[i], Y[i], method="spearman", permutations=99, seed=100 + i))


def test_kernel_matches_numpy_reference_bitwise():
    rng = np.random.default_rng(3)
    xn, yn = rng.standard_normal((4, 45)), rng.standard_normal((4, 45))
    perms = permutation_orders(10, 50, 0)
    shared = kernels.perm_stats_shared(xn, yn, perms)
    per = kernels.perm_stats_per_sample(xn, yn, np.stack([perms] * 4))
    ref = np.stack([kernels.perm_stats_numpy(xn[i], yn[i], perms) for i in range(4)])
    np.testing.assert_array_equal(shared, ref)
    np.testing.assert_array_equal(per, ref)


def test_orthogonal_rotation_of_features_leaves_r_unchanged():
    rng = np.random.default_rng(1)
    v = rng.uniform(-1, 1, (30, 200))
    feats = np.tanh(v @ rng.standard_normal((200, 16)))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    r1, p1, _ = mantel_test(pdist(v), pdist(feats), permutations=99, random_state=0)
    r2, p2, _ = mantel_test(pdist(v), pdist(feats @ q), permutations=99, random_state=0)
    assert r2 == pytest.approx(r1, abs=1e-10) and abs(r1) < 0.99


def test_shuffled_features_give_uniform_p_values():
    rng = np.random.default_rng(11)
    X, Y = [], []
    for _ in range(300):
        pts = rng.random((10, 3))
        X.append(pdist(pts))
        Y.append(pdist(pts[rng.permutation(10)] @ rng.standard_normal((3, 3))))  # shuffled
    _, p, _ = mantel_batch(np.stack(X), np.stack(Y), permutations=199, random_state=0)
    assert kstest(p, "uniform").pvalue > 0.001
    assert 0.02 < np.mean(p <= 0.05) < 0.09
    # the same features unshuffled are strongly associated
    _, p_true, _ = mantel_batch(np.stack(X), np.stack(X), permutations=199, random_state=0)
    assert np.all(p_true <= 0.05)


def test_constant_input_gives_nan_and_warning_like_skbio():
    x = np.ones(10)
    y = pdist(np.random.default_rng(0).random((5, 2)))
    with pytest.warns(ConstantInputWarning):
        r, p, n = mantel_test(x, y, permutations=9)
    with pytest.warns(ConstantInputWarning):
        ref = _sk(x, y, permutations=9)
    assert np.isnan(r) and np.isnan(p) and np.isnan(ref[0]) and n == 5
    with pytest.warns(ConstantInputWarning):
        rb, pb, _ = mantel_batch(np.stack([x, y]), np.stack([y, y]), permutations=9)
    assert np.isnan(rb[0]) and rb[1] == pytest.approx(1.0) and np.isnan(pb[0])


def test_zero_permutations_give_nan_p():
    x = pdist(np.random.default_rng(0).random((6, 2)))
    r, p, _ = mantel_test(x, x ** 2, permutations=0)
    assert np.isfinite(r) and np.isnan(p)


@pytest.mark.parametrize("bad, match", [
    (dict(x=np.array([1.0]), y=np.array([2.0])), "at least 3"),
    (dict(x=np.array([1.0, np.nan, 2.0]), y=np.array([1.0, 2.0, 3.0])), "non-finite"),
    (dict(x=np.arange(4.0), y=np.arange(4.0)), "n\\*\\(n-1\\)/2"),
    (dict(method="kendall"), "method"),
    (dict(alternative="both"), "alternative"),
    (dict(permutations=-1), ">= 0"),
    (dict(permutations=np.zeros((5, 3), dtype=int)), "permute"),
])
def test_bad_input_raises_featlab_error(bad, match):
    kw = dict(x=np.array([1.0, 2.0, 3.5]), y=np.array([2.0, 1.0, 3.0]))
    kw.update(bad)
    with pytest.raises(FeatlabError, match=match):
        mantel_test(**kw)


def test_asymmetric_square_matrix_rejected():
    m = np.random.default_rng(0).random((4, 4))
    with pytest.raises(FeatlabError, match="symmetric"):
        mantel_test(m, m)


def test_average_ranks_equal_scipy_rankdata_bit_for_bit():
    from scipy.stats import rankdata

    from featlab.analyses.local.mantel import average_ranks

    rng = np.random.default_rng(0)
    for a in (rng.integers(0, 4, (9, 45)).astype(float), rng.standard_normal((5, 300)),
              np.round(rng.standard_normal((6, 190)), 1), np.zeros((2, 10))):
        assert np.array_equal(average_ranks(a), rankdata(a, axis=1))
