"""Subspace shift, PCA, sign-flip test, the class-centroid shift in the clean PCA coordinates
and the figure functions, on constructed ground truth."""
import itertools
import json

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from featlab.analyses.heads import plots
from featlab.analyses.shift import plots as shift_plots
from featlab.analyses.shift.displacement import (compare_shifts, pair_shift, pca_centroid_shift)
from featlab.analyses.shift.membership import subspace_membership
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


# -- the class-centroid shift in the clean PCA coordinates (featlab.analyses.shift.displacement)

def _split_clouds(n=480, p=12, C=4, seed=0):
    """Train and test halves of anisotropic class clouds (classes balanced in each half)."""
    X, _ = clouds(n=n, p=p, C=C, seed=seed)
    labels = np.arange(n) % C
    X = X + np.random.default_rng(seed + 1).normal(size=(C, p))[labels] * 2.0
    train = np.arange(n) // C % 2 == 0
    return X[train], labels[train], X[~train], labels[~train]


def _within_sd_along(X, labels, direction):
    """Pooled within-class SD of the projections of X on ``direction``."""
    y = X @ direction
    return np.sqrt(sum(((y[labels == c] - y[labels == c].mean()) ** 2).sum()
                       for c in np.unique(labels)) / (len(y) - len(np.unique(labels))))


def test_in_plane_shift_is_detected_where_the_residual_ratio_sees_nothing():
    Xtr, ltr, Xte, lte = _split_clouds()
    mean, comps, _ = fit_pca(Xtr, 3)
    step = 3.0 * _within_sd_along(Xtr, ltr, comps[0]) * comps[0]  # 3 SD along component 1
    moved = pca_centroid_shift(Xtr, ltr, Xte, Xte + step, lte, k=3, n_boot=300)
    assert moved["moved"] == "yes" and moved["stays"] == "no" and moved["low"] > 2.5
    # every image moves by the same vector: the statistic is its Mahalanobis length in the
    # top-3 train coordinates under the pooled within-class covariance (scikit-learn's LDA)
    Y = (Xtr - mean) @ comps.T
    lda = LinearDiscriminantAnalysis(solver="lsqr", store_covariance=True).fit(Y, ltr)
    W = lda.covariance_ * len(Y) / (len(Y) - 4)  # LDA's is divided by n, not n - C
    expected = mahalanobis(comps @ step, np.zeros(3), np.linalg.inv(W))
    assert moved["shift"] == pytest.approx(expected, rel=1e-9)
    assert moved["low"] == pytest.approx(expected, rel=1e-9)  # no jitter, nothing to resample
    ratio = subspace_membership(Xtr, Xte, Xte + step, k=3, n_boot=300)
    assert ratio["stays_inside"] == "yes" and ratio["ratio"] == pytest.approx(1.0, abs=0.05)


def test_pure_noise_moves_no_centroid():
    """Per-image jitter of one within-class SD: no class mean moves, and the pair statistic
    says so; the squared norm of the class-mean displacement is biased by tr Cov / n_c."""
    Xtr, ltr, Xte, lte = _split_clouds(n=960, C=8, seed=3)
    sd = np.sqrt(np.mean([Xtr[ltr == c].var(0) for c in range(8)], axis=0))
    noisy = Xte + np.random.default_rng(4).normal(size=Xte.shape) * sd
    out = pca_centroid_shift(Xtr, ltr, Xte, noisy, lte, k=10, n_boot=500)
    assert out["moved"] == "no" and out["stays"] == "yes"
    assert -out["margin"] < out["low"] < 0 < out["high"] < out["margin"]
    # over repetitions of pure noise (whitened, 5 dimensions, 15 images per class) the
    # pair statistic averages to 0 while |class mean|^2 averages to 5 / 15
    labels, ones = np.arange(60) % 4, np.ones((1, 60))
    draws = [np.random.default_rng(s).normal(size=(60, 5)) for s in range(300)]
    Q = np.array([pair_shift(Z, labels, ones)[0][0] for Z in draws])
    naive = np.array([np.mean([(Z[labels == c].mean(0) ** 2).sum() for c in range(4)])
                      for Z in draws])
    assert abs(Q.mean()) < 3 * Q.std() / np.sqrt(300)
    assert naive.mean() == pytest.approx(5 / 15, rel=0.1)


def test_pairs_exclude_copies_of_one_image():
    rng = np.random.default_rng(5)
    Z, labels = rng.normal(size=(9, 3)), np.arange(9) % 2
    weights = np.array([[2, 0, 1, 3, 0, 1, 1, 0, 1], [1] * 9, [0, 0, 0, 0, 0, 0, 0, 0, 9]])
    q, pairs = pair_shift(Z, labels, weights)
    for b, w in enumerate(weights):
        draws = np.repeat(np.arange(9), w)
        dots = [Z[i] @ Z[j] for i, j in itertools.permutations(draws, 2)
                if i != j and labels[i] == labels[j]]
        assert pairs[b] == len(dots)
        if dots:
            assert q[b] == pytest.approx(np.mean(dots), rel=1e-12)
    assert np.isnan(q[2])  # nine copies of one image: no pair


def test_object_moves_more_than_a_scene_that_stays():
    Xtr, ltr, Xte, lte = _split_clouds(seed=6)
    _, comps, _ = fit_pca(Xtr, 3)
    rng = np.random.default_rng(7)
    kw = dict(k=3, n_boot=400, return_boots=True)
    step = 2.0 * _within_sd_along(Xtr, ltr, comps[1]) * comps[1]
    obj = pca_centroid_shift(Xtr, ltr, Xte, Xte + step + 0.2 * rng.normal(size=Xte.shape),
                             lte, **kw)
    scene = pca_centroid_shift(Xtr, ltr, Xte, Xte + 0.05 * rng.normal(size=Xte.shape), lte, **kw)
    c = compare_shifts(obj, scene)
    assert c["moves_more"] == "yes" and c["low"] > 1.0 and scene["stays"] == "yes"
    same = compare_shifts(scene, scene)
    assert (same["low"], same["high"], same["moves_more"]) == (0.0, 0.0, "no")
    # a modest move seen on a handful of images cannot be told from 0 or from the margin
    few = np.r_[np.flatnonzero(lte == 0)[:4], np.flatnonzero(lte == 1)[:4]]
    kw["n_boot"] = 1000
    small = pca_centroid_shift(Xtr, ltr, Xte[few], Xte[few] + step / 3
                               + 0.5 * rng.normal(size=(8, Xte.shape[1])), lte[few], **kw)
    still = pca_centroid_shift(Xtr, ltr, Xte[few], Xte[few], lte[few], **kw)
    assert compare_shifts(small, still)["moves_more"] == "inconclusive"
    with pytest.raises(ValueError, match="same images"):
        compare_shifts(obj, small)


def test_centroid_shift_needs_pairs_and_spread():
    Xtr, ltr, Xte, lte = _split_clouds()
    with pytest.raises(ValueError, match="no class has two test rows"):
        pca_centroid_shift(Xtr, ltr, Xte[:3], Xte[:3] + 1, np.arange(3))
    with pytest.raises(ValueError, match="no class has two clean train rows"):
        pca_centroid_shift(Xtr[:4], np.arange(4), Xte, Xte + 1, lte)
    a = pca_centroid_shift(Xtr, ltr, Xte, Xte + 0.3, lte, n_boot=50, seed=2)
    assert a == pca_centroid_shift(Xtr, ltr, Xte, Xte + 0.3, lte, n_boot=50, seed=2)


# -- pca-shift on a written store: the object backbone's clouds move within the clean plane

def _write_store(path, n, split, shift_object=3.0, seed=0):
    """Two 12-d backbones over ``n`` images of 4 classes. Under ``blur:sigma=2`` the object
    backbone moves every image by ``shift_object`` within-class SD along its first clean
    principal axis (feature 0, SD 5); the scene backbone jitters by 0.01."""
    from featlab.data.base import SampleTable
    from featlab.store import StoreWriter

    labels = np.arange(n) % 4
    samples = SampleTable(np.arange(n), np.array([f"{i}.jpg" for i in range(n)]), labels,
                          np.array([f"c{k}" for k in labels]), np.array(["s"] * n), split,
                          np.full((n, 2, 4), np.nan, np.float32), np.full(n, 32), np.full(n, 32),
                          ["c0", "c1", "c2", "c3"], ["s"] * 4)
    names = {"synthetic-object": "object", "synthetic-scene": "scene"}
    meta = {b: dict(weights_sha256="0" * 64, role=role, layers={"penultimate": 12})
            for b, role in names.items()}
    rng = np.random.default_rng(seed)
    scales = np.r_[5.0, np.linspace(1.0, 0.3, 11)]
    clean = {b: (rng.normal(size=(n, 12)) * scales + 2.0 * np.eye(12)[labels + 1]).astype("f4")
             for b in names}
    moved = {"synthetic-object": clean["synthetic-object"] + np.eye(12)[0] * 5.0 * shift_object,
             "synthetic-scene": clean["synthetic-scene"] + 0.01 * rng.normal(size=(n, 12))}
    with StoreWriter(str(path), samples=samples, backbones=meta, dataset_spec={"name": "t"},
                     chunk_size=n) as writer:
        for key, feats in (("clean", clean), ("blur:sigma=2:region=object", moved)):
            writer.add_condition(key, {"name": key.split(":")[0], "params": {}})
            writer.write_part(key, 0, n, {**{f"{b}/penultimate": f.astype("f4")
                                             for b, f in feats.items()},
                                          "valid": np.ones(n, bool)})
        writer.rebuild_index()
    return str(path)


def test_pca_shift_sees_the_in_plane_move_of_the_object_backbone(tmp_path):
    from click.testing import CliRunner

    from featlab.cli.main import cli

    store = _write_store(tmp_path / "store", 240, np.array(["train", "test"] * 120))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["pca-shift", "--store", store, "--condition", "blur:sigma=2",
                                   "-k", "3", "--n-boot", "300", "--permutations", "9",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "object moves more: yes" in res.output and "scene stays: yes" in res.output
    result = json.loads(next(out.glob("*.json")).read_text())
    obj, scene = (result["backbones"][b] for b in ("synthetic-object", "synthetic-scene"))
    assert obj["pca_centroid_shift"]["moved"] == "yes" and obj["pca_centroid_shift"]["low"] > 2
    assert scene["pca_centroid_shift"]["stays"] == "yes"
    assert obj["membership"]["stays_inside"] == "yes"  # the residual ratio cannot see it
    c = result["comparison"]
    assert (c["object"], c["scene"], c["margin"]) == ("synthetic-object", "synthetic-scene", 0.5)
    assert c["moves_more"] == "yes" and c["scene_stays"] == "yes" and c["low"] > 2


def test_pca_shift_without_two_images_of_a_class_is_one_line(tmp_path):
    """Three test images of three classes: no within-class pair; refused, nothing written."""
    from click.testing import CliRunner

    from featlab.cli.main import cli

    split = np.array(["train"] * 20 + ["test"] * 3)
    store = _write_store(tmp_path / "store", 23, split)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["pca-shift", "--store", store, "--condition", "blur:sigma=2",
                                   "--out", str(out)])
    assert res.exit_code == 2
    assert res.output.strip().startswith("featlab: error: no class has two valid images")
    assert len(res.output.strip().splitlines()) == 1 and "nan" not in res.output
    assert not list(out.glob("*"))


def test_pca_shift_names_classes_with_a_single_image(tmp_path, caplog):
    """Classes 0 and 1 have one test image each: their full-space centroid shift is NaN and
    the warning says how many classes the mean averages; class 2's pair decides the rest."""
    import logging

    from featlab import FeatureStore, pca_shift

    split = np.array(["train"] * 40 + ["test"] * 3 + ["train"] * 3 + ["test"])
    store = FeatureStore(_write_store(tmp_path / "store", 47, split))
    assert sorted(np.unique(store.labels(split="test"), return_counts=True)[1]) == [1, 1, 2]
    with caplog.at_level(logging.WARNING):
        result = pca_shift(store, condition="blur:sigma=2", k=2, permutations=9, n_boot=50)
    for stats in result["backbones"].values():
        assert stats["undefined_classes"] == [0, 1]
        assert np.isfinite(stats["centroid_shift_mean"])
        assert stats["pca_centroid_shift"]["pairs"] == 2  # the two images of class 2
    assert "no spread" in caplog.text and "averages the other 1" in caplog.text
