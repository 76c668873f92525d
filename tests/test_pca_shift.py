"""Subspace shift, PCA, sign-flip test and the figure functions, on constructed ground truth."""
import itertools

import numpy as np
import pytest
from sklearn.decomposition import PCA

from featlab.analyses.heads import plots
from featlab.analyses.shift import plots as shift_plots
from featlab.analyses.shift.subspace import fit_pca, project, subspace_shift
from featlab.analyses.stats import sign_flip_test


def clouds(n=120, p=10, C=3, seed=0):
    """Anisotropic class clouds: a clear top-k subspace."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    scales = np.geomspace(5.0, 0.05, p)
    X = rng.normal(size=(n, p)) * scales + rng.normal(size=(C, p))[labels] * scales
    return X, labels


def test_clean_vs_clean_is_no_shift():
    X, labels = clouds()
    out = subspace_shift(X, X.copy(), labels, k=3, n_permutations=199)
    assert out["centroid_shift"] == [0.0, 0.0, 0.0] and out["centroid_shift_mean"] == 0.0
    assert out["outside_fraction"] == 0.0 and out["statistic"] == 0.0 and out["p_value"] == 1.0
    assert out["displacement_norm"]["max"] == 0.0


def test_constant_shift_is_shift_over_spread():
    X, labels = clouds(seed=1)
    shift = np.linspace(-1.0, 2.0, X.shape[1])
    out = subspace_shift(X, X + shift, labels, k=3, n_permutations=999)
    for c, value in zip(out["classes"], out["centroid_shift"]):
        Xc = X[labels == c]
        spread = np.sqrt(((Xc - Xc.mean(0)) ** 2).sum(1).mean())
        assert value == pytest.approx(np.linalg.norm(shift) / spread, rel=1e-12)
    assert out["p_value"] == pytest.approx(1 / 1000)
    assert out["statistic"] == pytest.approx(np.linalg.norm(shift), rel=1e-12)
    assert out["class_counts"] == [int((labels == c).sum()) for c in out["classes"]]


def test_outside_fraction_inside_and_orthogonal_to_the_clean_subspace():
    X, labels = clouds(seed=2)
    k = 3
    comps = PCA(n_components=X.shape[1]).fit(X).components_
    rng = np.random.default_rng(0)
    inside = X + rng.normal(size=(len(X), k)) @ comps[:k]
    outside = X + rng.normal(size=(len(X), X.shape[1] - k)) @ comps[k:]
    half = X + rng.normal(size=(len(X), 1)) * (comps[0] + comps[-1])
    assert subspace_shift(X, inside, labels, k=k, n_permutations=9)["outside_fraction"] < 1e-12
    out = subspace_shift(X, outside, labels, k=k, n_permutations=9)["outside_fraction"]
    assert out == pytest.approx(1.0, abs=1e-12)
    assert subspace_shift(X, half, labels, k=k, n_permutations=9)["outside_fraction"] == \
        pytest.approx(0.5, abs=1e-12)


def test_pca_matches_sklearn_up_to_sign():
    X, _ = clouds(seed=3)
    mean, comps, ratio = fit_pca(X, 4)
    ref = PCA(n_components=4).fit(X)
    signs = np.sign((comps * ref.components_).sum(1))
    assert np.allclose(comps * signs[:, None], ref.components_, atol=1e-10)
    assert np.allclose(ratio, ref.explained_variance_ratio_, atol=1e-12)
    assert np.allclose(mean, ref.mean_)
    c2, p2 = project(X, X + 1.0, method="pca")
    ref2 = ref.transform(X)[:, :2] * signs[:2]
    assert np.allclose(c2, ref2, atol=1e-9)
    assert np.allclose(p2, (ref.transform(X + 1.0)[:, :2]) * signs[:2], atol=1e-9)
    out = subspace_shift(X, X + 0.1, np.zeros(len(X), int), k=4, n_permutations=9)
    assert np.allclose(out["explained_variance_ratio"], ref.explained_variance_ratio_)


def test_sign_flip_matches_exact_enumeration():
    D = np.random.default_rng(4).normal(loc=0.3, size=(10, 3))
    stat, p = sign_flip_test(D, n_permutations=20000, random_state=1)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=10)))
    t_all = np.linalg.norm(signs @ D, axis=1) / 10
    assert stat == pytest.approx(np.linalg.norm(D.mean(0)))
    assert p == pytest.approx((t_all >= stat - 1e-12).mean(), abs=0.01)


def test_sign_flip_p_value_is_uniform_under_the_null():
    ps = [sign_flip_test(np.random.default_rng(s).normal(size=(25, 4)), n_permutations=199,
                         random_state=s + 1000)[1] for s in range(40)]
    assert 0.35 <= np.mean(ps) <= 0.65
    assert 0.25 <= np.mean(np.array(ps) <= 0.5) <= 0.75
    assert sign_flip_test(np.zeros((5, 2)))[1] == 1.0
    a = sign_flip_test(np.ones((6, 2)) + np.arange(6)[:, None], n_permutations=99, random_state=3)
    assert a == sign_flip_test(np.ones((6, 2)) + np.arange(6)[:, None], 99, random_state=3)


def test_shapes_are_validated():
    X, labels = clouds()
    with pytest.raises(ValueError, match="same rows"):
        subspace_shift(X, X[:-1], labels)
    bad = X.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        subspace_shift(X, bad, labels)


def _rows():
    rows = []
    for head, alpha in (("fg", None), ("bg", None), ("joint", 0.0), ("joint", 10.0)):
        for i, s in enumerate((0.0, 5.0, 10.0)):
            acc = 0.8 - 0.1 * i
            rows.append(dict(condition="clean" if s == 0 else f"blur:sigma={s:g}", head=head,
                             alpha=alpha, n=100, correct=int(acc * 100), accuracy=acc,
                             ci_low=acc - 0.05, ci_high=acc + 0.05, parameter="sigma",
                             strength=s))
    return rows


def test_plots_return_axes_and_save(tmp_path):
    X, labels = clouds()
    c2, p2 = project(X, X + 0.5)
    axes = [shift_plots.plot_pca_shift(c2, p2, labels, class_names=["a", "b", "c"], title="t"),
            plots.plot_accuracy_curves(_rows(), x="sigma"),
            plots.plot_weight_bars(0.3, 0.2),
            plots.plot_alpha_sweep(_rows(), x="sigma"),
            plots.plot_alpha_sweep([dict(alpha=a, fg=1 / (1 + a), bg=a / (1 + a))
                                    for a in (0.0, 0.1, 1.0, 10.0)])]
    for i, ax in enumerate(axes):
        assert ax.has_data()
        for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
            path = tmp_path / f"fig{i}.{ext}"
            ax.figure.savefig(path)
            assert path.read_bytes()[:4] == magic
    assert len(axes[0].collections) == 6  # clean + perturbed scatter per class
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a", "b", "c"]
    assert len(axes[1].lines) == 4 and len(axes[3].lines) == 4


@pytest.mark.slow
def test_umap_projection_runs_on_tiny_data():
    X, labels = clouds(n=40, p=6)  # numba compilation dominates (~15 s on 2 cores)
    c2, p2 = project(X, X + 0.2, method="umap", random_state=0)
    assert c2.shape == (40, 2) and p2.shape == (40, 2)
    assert np.isfinite(c2).all() and np.isfinite(p2).all()
