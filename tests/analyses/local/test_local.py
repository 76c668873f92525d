"""Local properties (Aghdam et al.): probes, isotropy, Lipschitz, CLEVER, plots."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from featlab.analyses.local import (
    MinMaxNormalizer, fraction_below_one, gradient_lipschitz, isotropy_rows, local_lipschitz,
    misclassified_from_logits, polynomial_fits, range_by_radius, score_range, summarize)
from featlab.analyses.local import clever, plots
from featlab.errors import FeatlabError
from featlab.probes.sets import (isotropy_perturbations, pairwise_condensed, perturbation_norms,
                                 sample_seed, symmetry_perturbations)

SHAPE = (3, 8, 8)


def _norms(t):
    return torch.linalg.vector_norm(t.double().flatten(-len(SHAPE)), dim=-1)


# ---------------------------------------------------------------- probes (eq. 4 and 6)

def test_isotropy_probes_lie_on_the_sphere_in_pixel_units():
    radii = [0.1, 1.0, 20.0]
    v = isotropy_perturbations(SHAPE, radii, T=6, seed=3)
    assert v.shape == (3, 6) + SHAPE and v.dtype == torch.float32
    expected = torch.tensor(radii, dtype=torch.float64)[:, None] / 255
    torch.testing.assert_close(_norms(v), expected.expand(3, 6), rtol=1e-6, atol=0)
    v64 = isotropy_perturbations(SHAPE, radii, 6, 3, scale=1.0, dtype=torch.float64)
    torch.testing.assert_close(_norms(v64), (expected * 255).expand(3, 6), rtol=1e-13, atol=0)
    # directions come from U(-1, 1): before scaling, every element has the same scale
    assert (v64[2].abs().amax(dim=(1, 2, 3)) / v64[2].abs().mean(dim=(1, 2, 3))).max() < 2.2


def test_probes_are_seeded_per_sample_and_per_radius():
    a = isotropy_perturbations(SHAPE, [1.0, 5.0], 4, seed=sample_seed(0, 17))
    b = isotropy_perturbations(SHAPE, [5.0], 4, seed=sample_seed(0, np.int64(17)))
    assert torch.equal(a[1], b[0])  # one radius at a time gives the same probes
    c = isotropy_perturbations(SHAPE, [1.0], 4, seed=sample_seed(0, 18))
    assert not torch.equal(a[0], c[0])
    assert sample_seed(0, "abc") == 8110672093957358640  # stable across runs and machines
    assert sample_seed(0, 5) != sample_seed(1, 5)


def test_symmetry_copies_are_permutations_of_one_vector():
    s = symmetry_perturbations(SHAPE, T=5, seed=1, radius=2.0)
    flat = s.flatten(1)
    assert torch.equal(flat.sort(dim=1).values, flat[:1].sort(dim=1).values.expand_as(flat))
    assert not torch.equal(flat[0], flat[1])
    torch.testing.assert_close(_norms(s), torch.full((5,), 2.0 / 255, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    assert torch.equal(s, symmetry_perturbations(SHAPE, 5, 1, 2.0))


def test_pairwise_condensed_equals_pdist_even_for_tiny_radii():
    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for r in (1e-3, 1.0, 20.0):
        copies = x + isotropy_perturbations(SHAPE, [r], 7, seed=2, dtype=torch.float64)[0]
        ref = pdist(copies.reshape(7, -1).numpy())
        np.testing.assert_allclose(pairwise_condensed(copies), ref, rtol=1e-9, atol=0)
    pts = np.random.default_rng(0).standard_normal((9, 50)) * 100
    pts[3] = pts[2] + 1e-9  # one nearly coincident pair among far ones
    np.testing.assert_allclose(pairwise_condensed(pts), pdist(pts), rtol=1e-9, atol=0)
    norms = perturbation_norms(copies, x)
    np.testing.assert_allclose(norms, 20.0 / 255, rtol=1e-12)


# ---------------------------------------------------------------- isotropy / symmetry

def _radial(x, a):
    return torch.exp(-((x - a) ** 2).flatten(-3).sum(-1))


def test_radial_score_is_isotropic_and_symmetric_linear_score_is_not():
    a = torch.rand(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    radii = [0.2, 0.5, 1.0]
    iso = isotropy_perturbations(SHAPE, radii, 20, seed=4, scale=1.0, dtype=torch.float64)
    sym = torch.stack([symmetry_perturbations(SHAPE, 20, 4, r, scale=1.0, dtype=torch.float64)
                       for r in radii])
    for probes in (iso, sym):
        scores = _radial(a + probes, a).numpy()
        assert np.all(score_range(scores) < 1e-12)
        np.testing.assert_allclose(scores.mean(-1), np.exp(-np.square(radii)), rtol=1e-12)
    w = torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for probes in (iso, sym):
        bias = -(a * w).sum()  # boundary through a, so the score is not saturated
        linear = torch.sigmoid(((a + probes) * w).flatten(-3).sum(-1) + bias).numpy()
        assert np.all(score_range(linear)[1:] > 1e-2)


def test_summaries_and_rows():
    scores = np.array([[[0.9, 0.5, 0.7], [1.0, 1.0, 1.0]]])  # 1 sample, 2 radii, T=3
    logits = np.zeros((1, 2, 3, 2))
    logits[0, 0, 1] = [1.0, 0.0]  # copy 1 at radius 0 predicts class 0; label is 1
    logits[..., 1] += 0.5
    mis = misclassified_from_logits(logits, np.array([1]))
    s = summarize(scores, mis)
    np.testing.assert_allclose(s["range"], [[0.4, 0.0]])
    np.testing.assert_allclose(s["mean_score"], [[0.7, 1.0]])
    assert s["misclassified_any"].tolist() == [[True, False]]
    rows = isotropy_rows(scores, [1.0, 5.0], mis, sample_ids=[42], probe="isotropy")
    assert rows[0] == {"sample": 42, "radius": 1.0, "n_copies": 3, "range": pytest.approx(0.4),
                       "mean_score": pytest.approx(0.7), "min_score": 0.5, "max_score": 0.9,
                       "misclassified_any": True, "probe": "isotropy"}
    summary = range_by_radius(rows)
    assert [r["radius"] for r in summary] == [1.0, 5.0] and summary[0]["misclassified_fraction"] == 1


@pytest.mark.parametrize("call", [
    lambda: score_range(np.ones((4, 2))),
    lambda: summarize(np.ones((2, 3, 2))),
    lambda: score_range(np.array([[0.1, np.nan, 0.3]])),
    lambda: local_lipschitz(np.full((4, 3), np.inf), np.zeros(3), np.ones(4)),
    lambda: local_lipschitz(np.ones((4, 3)), np.zeros(3), np.zeros(4)),
    lambda: MinMaxNormalizer().transform(np.ones(3)),
    lambda: isotropy_perturbations(SHAPE, [0.0], 3, 0),
])
def test_bad_input_raises_featlab_error(call):
    with pytest.raises(FeatlabError):
        call()


# ---------------------------------------------------------------- Lipschitz (eq. 9)

def test_linear_map_gives_ratio_c_and_normalizers_rescale_it():
    rng = np.random.default_rng(0)
    x = rng.random((4, 48))                                   # 4 clean samples
    v = rng.uniform(-1, 1, (4, 10, 48)) * rng.uniform(0.01, 2, (4, 10, 1))
    c = 3.7
    res = local_lipschitz(c * (x[:, None] + v), c * x, np.linalg.norm(v, axis=-1))
    np.testing.assert_allclose(res.ratio, c, rtol=1e-10)
    g = MinMaxNormalizer().fit(c * rng.random((100, 48)) - 5)
    h = MinMaxNormalizer().fit(rng.random((100, 48)))
    res = local_lipschitz(c * (x[:, None] + v), c * x, np.linalg.norm(v, axis=-1), g, h)
    np.testing.assert_allclose(res.ratio, c * h.scale_ / g.scale_, rtol=1e-10)
    assert fraction_below_one(res.ratio) == float(c * h.scale_ / g.scale_ < 1)


def test_min_max_normalizer_global_and_per_feature():
    X = np.array([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]])
    glob = MinMaxNormalizer().fit(X)
    assert (glob.min_, glob.max_, glob.scale_) == (0.0, 30.0, 30.0)
    per = MinMaxNormalizer(per_feature=True).fit(X)
    np.testing.assert_allclose(per.transform(X), [[0, 0], [1, 1], [0.5, 0.5]])
    streamed = MinMaxNormalizer(per_feature=True).partial_fit(X[:1]).partial_fit(X[1:])
    np.testing.assert_array_equal(streamed.scale_, per.scale_)
    with pytest.raises(FeatlabError, match="global"):
        local_lipschitz(np.ones((3, 2)), np.zeros(2), np.ones(3), h=per)


def test_fraction_below_one_and_polynomial_fits():
    r = np.array([[0.5, 0.9, 1.5], [0.2, 0.3, 0.4]])
    assert fraction_below_one(r) == pytest.approx(5 / 6)
    assert fraction_below_one(r, per="sample") == pytest.approx(0.5)
    x = np.linspace(0, 2, 30)
    fits = polynomial_fits(x, 2 + 3 * x - 0.5 * x ** 2)
    np.testing.assert_allclose(fits[2], [-0.5, 3, 2], atol=1e-10)
    assert fits[1].shape == (2,)


def test_gradient_lipschitz_of_linear_and_softmax_models():
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4)).double().eval()
    x = torch.rand(SHAPE, dtype=torch.float64)
    w = lin[1].weight.detach()
    k = int(lin(x[None]).argmax())
    for norm, q in ((2, 2), (np.inf, 1), (1, np.inf)):
        est = gradient_lipschitz(lin, x, norm, radius=0.1, output="logit")
        assert est == pytest.approx(torch.linalg.vector_norm(w[k], ord=q).item(), rel=1e-6)
    p = lin(x[None]).softmax(1)[0].detach()
    analytic = p[k] * (w[k] - p @ w)  # d softmax_k / dx
    assert gradient_lipschitz(lin.float(), x.float(), 2) == pytest.approx(analytic.norm().item(), rel=1e-4)


# ---------------------------------------------------------------- CLEVER vs ART

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 4)).eval()
    x = np.random.default_rng(0).random(SHAPE).astype(np.float32)
    return model, x


@pytest.fixture(scope="module")
def art_clf(tiny):
    art = pytest.importorskip("art.estimators.classification")
    return art.PyTorchClassifier(model=tiny[0], loss=torch.nn.CrossEntropyLoss(),
                                 input_shape=SHAPE, nb_classes=4, clip_values=(0.0, 1.0))


def test_clever_pieces_equal_art(tiny, art_clf):
    from art.utils import random_sphere
    from scipy.optimize import fmin
    from scipy.stats import weibull_min

    model, x = tiny
    for norm in (1, 2, np.inf):
        np.random.seed(3)
        ref = random_sphere(20, 192, 0.3, norm)
        ours = clever.sample_ball(SHAPE, 20, 0.3, norm, np.random.RandomState(3))
        np.testing.assert_array_equal(ours.reshape(20, -1), ref)
    pts = np.clip(x + ours, 0, 1).astype(np.float32)
    for norm, dual in ((2, 2), (np.inf, 1), (1, np.inf)):
        g = art_clf.class_gradient(pts, label=0) - art_clf.class_gradient(pts, label=2)
        ref = np.linalg.norm(g.reshape(20, -1), ord=dual, axis=1)
        np.testing.assert_allclose(clever.margin_grad_norms(model, pts, 0, 2, norm), ref,
                                   rtol=1e-5)
    maxima = np.random.default_rng(0).weibull(3.0, 30) * -0.1 + 2.0
    _, loc, _ = clever.fit_reverse_weibull(maxima)
    assert loc == -weibull_min.fit(-maxima, 1.0, optimizer=fmin)[1]
    assert loc == pytest.approx(2.0, rel=0.03)  # the true right end of the maxima


def test_clever_u_agrees_with_art(tiny, art_clf):
    from art.metrics import clever_u as art_clever_u

    model, x = tiny
    kw = dict(nb_batches=10, batch_size=6, radius=0.5, norm=2, pool_factor=2)
    np.random.seed(1)
    ref = art_clever_u(art_clf, x, verbose=False, **kw)
    same_draws = clever.clever_u(model, x, **kw, random_state=np.random.RandomState(1),
                                 clip_values=(0, 1))
    assert same_draws == pytest.approx(ref, rel=1e-4)  # draw for draw
    ours = [clever.clever_u(model, x, **kw, random_state=s, clip_values=(0, 1)) for s in range(3)]
    np.random.seed(7)
    theirs = [ref] + [art_clever_u(art_clf, x, verbose=False, **kw) for _ in range(2)]
    assert np.median(ours) == pytest.approx(np.median(theirs), rel=0.1)


def test_clever_l1_ball_law_and_art_draw_for_draw(tiny, art_clf):
    """The L1 sampler's law is uniform in the ball — the L1 norm of a point has
    P(|z|_1 <= t) = (t / R)^d, mean R d / (d + 1) — and with a RandomState CLEVER at
    norm 1 equals ART's draw for draw."""
    from art.metrics import clever_u as art_clever_u
    from scipy.stats import kstest

    d, n, radius = 192, 4000, 0.7
    for state in (np.random.RandomState(5), np.random.default_rng(5)):
        norms = np.abs(clever.sample_ball(SHAPE, n, radius, 1, state)).reshape(n, -1).sum(1)
        mean, sd = radius * d / (d + 1), radius * np.sqrt(d / ((d + 2) * (d + 1) ** 2))
        assert abs(norms.mean() - mean) < 4 * sd / np.sqrt(n)
        assert kstest(norms, lambda t: np.clip(t / radius, 0, 1) ** d).pvalue > 1e-3
        assert norms.max() <= radius * (1 + 1e-12)
    model, x = tiny
    kw = dict(nb_batches=8, batch_size=5, radius=2.0, norm=1, pool_factor=2)
    np.random.seed(4)
    ref = art_clever_u(art_clf, x, verbose=False, **kw)
    ours = clever.clever_u(model, x, **kw, random_state=np.random.RandomState(4),
                           clip_values=(0, 1))
    assert ours == pytest.approx(ref, rel=1e-4)


# ---------------------------------------------------------------- figures

def test_plots_return_axes(tmp_path):
    rng = np.random.default_rng(0)
    ranges = 10.0 ** rng.uniform(-8, -1, (10, 3))
    ranges[0, 0] = 0.0
    mis = np.zeros((10, 3), bool)
    mis[:3, 2] = True
    ax = plots.plot_score_range(ranges, rng.random((10, 3)), mis, [0.1, 1, 10])
    assert ax.get_yscale() == "log" and len(ax.collections) == 2
    assert ax.collections[1].get_offsets().shape[0] == 3  # the square markers
    ax.figure.savefig(tmp_path / "fig1.png")
    ax = plots.plot_mantel(rng.uniform(-0.1, 0.1, 40), np.repeat([1, 10], 20),
                           np.tile(["bn1", "penultimate"], 20))
    assert ax.get_ylabel().startswith("Mantel r")
    r = np.repeat([[0.1], [1.0]], 15, axis=1)
    ax = plots.plot_lipschitz(rng.random((2, 15)), rng.random((2, 15)), r)
    assert len(ax.lines) == 3  # two fits and the L = 1 reference
    ax.figure.savefig(tmp_path / "fig6.png")
    assert (tmp_path / "fig6.png").stat().st_size > 0


# ---------------------------------------------------------------- clean-correct, norm

def test_misclassified_fraction_counts_only_clean_correct_images():
    # 4 images, 1 radius, 3 copies: images 0 and 1 are right when clean; 2 and 3 are not
    scores = np.full((4, 1, 3), 0.9)
    mis = np.zeros((4, 1, 3), bool)
    mis[1, 0, 2] = True  # one probe of a clean-correct image flips
    mis[2:, 0, :] = True  # the clean-wrong images are wrong on every probe
    clean_ok = np.array([True, True, False, False])
    rows = isotropy_rows(scores, [1.0], mis & clean_ok[:, None, None], clean_correct=clean_ok)
    assert [r["clean_correct"] for r in rows] == [True, True, False, False]
    (summary,) = range_by_radius(rows)
    assert summary["n_clean_correct"] == 2 and summary["misclassified_fraction"] == 0.5
    assert range_by_radius(isotropy_rows(scores, [1.0], mis))[0]["misclassified_fraction"] == 0.75
    none = isotropy_rows(scores, [1.0], mis, clean_correct=np.zeros(4, bool))
    assert np.isnan(range_by_radius(none)[0]["misclassified_fraction"])


def test_probe_radius_norm_l2_or_linf():
    from featlab.conditions import parse_condition
    from featlab.probes.sets import symmetry_perturbations

    assert parse_condition("isotropy:radius=2")[0].key == \
        "isotropy:radius=2:copies=16:samples=24:threshold=0.99:select=fg"  # keys of old stores
    linf = parse_condition("isotropy:radius=2:norm=linf")[0]
    assert linf.key.endswith(":norm=linf") and linf.params["norm"] == "linf"
    with pytest.raises(FeatlabError, match="norm"):
        parse_condition("symmetry:radius=2:norm=l1")
    for v in (isotropy_perturbations(SHAPE, [2.0], 5, 3, norm="linf")[0],
              symmetry_perturbations(SHAPE, 5, 3, 2.0, norm="linf")):
        flat = v.double().flatten(1)
        torch.testing.assert_close(flat.abs().amax(1), torch.full((5,), 2 / 255.,
                                   dtype=torch.float64), rtol=1e-6, atol=0)
        assert (flat.norm(dim=1) > 5 * 2 / 255.).all()  # per pixel: far beyond the L2 sphere
    l2 = isotropy_perturbations(SHAPE, [2.0], 5, 3)[0]
    lin = isotropy_perturbations(SHAPE, [2.0], 5, 3, norm="linf")[0]
    assert torch.allclose(l2 / l2.flatten(1).norm(dim=1)[:, None, None, None],
                          lin / lin.flatten(1).norm(dim=1)[:, None, None, None], atol=1e-6)
