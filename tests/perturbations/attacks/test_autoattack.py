"""The AutoAttack family: torchattacks references, constructed truth, the extraction path.

References: ``torchattacks`` APGD / APGDT (exact, same seed), FAB (multi-targeted, near
exact: deterministic with one restart), Square and ``AutoAttack(version='standard')``
(robust accuracy inside the 95 % Wilson interval of the reference's) on the toy CNN of
``test_attacks`` and the same images. Constructed truth: a linear classifier, whose exact
minimal Linf distance to another class is ``min_t (z_y - z_t) / ||w_y - w_t||_1``; FAB's
projection against a linear program; APGD's checkpoints against the paper's ``p_j``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.optimize import linprog
from scipy.stats import binomtest

torchattacks = pytest.importorskip("torchattacks")

from featlab.errors import FeatlabError  # noqa: E402
from featlab.perturbations import PERTURBATIONS  # noqa: E402
from featlab.perturbations.attacks import _apgd, _losses  # noqa: E402
from featlab.perturbations.attacks._fab_projection import project_hyperplane_box  # noqa: E402
from featlab.perturbations.attacks.autoattack import COMPONENTS  # noqa: E402
from featlab.store.heads import load_head  # noqa: E402
from test_attacks import N_CLASSES, STD, toy_data, train  # noqa: E402

FAMILY = ["apgdce", "apgdt", "fab", "square", "autoattack"]
EPS = 0.02  # the toy net's robust accuracy is intermediate here (about 0.65 under AutoAttack)
SMALL = {"apgdce": {"steps": 10}, "apgdt": {"steps": 10}, "fab": {"steps": 10},
         "square": {"n_queries": 60}, "autoattack": {"steps": 10, "n_queries": 60}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy():
    model = train(seed=0)
    x, y = toy_data(64, seed=2)
    return model, x, y


def run(name, model, x, y, seed=0, **params):
    attack = PERTURBATIONS.get(name)()
    adv = attack.perturb(x, labels=y, boxes=None, model=model,
                         generator=torch.Generator().manual_seed(seed), **params)
    return adv, attack


def robust(model, images, labels):
    with torch.no_grad():
        return model(images).argmax(1) == labels


def wilson(k, n):
    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return ci.low, ci.high


# -- torchattacks references -------------------------------------------------------------

@pytest.mark.parametrize("restarts", [1, 2])
@pytest.mark.parametrize("name", ["apgdce", "apgdt"])
def test_apgd_equals_torchattacks(toy, name, restarts):
    model, x, y = toy
    ta = (torchattacks.APGD(model, eps=EPS, steps=10, n_restarts=restarts, loss="ce", seed=7)
          if name == "apgdce" else
          torchattacks.APGDT(model, eps=EPS, steps=10, n_restarts=restarts, n_classes=N_CLASSES,
                             seed=7))
    expected = ta(x, y)
    got, _ = run(name, model, x, y, seed=7, eps=EPS, steps=10, n_restarts=restarts)
    assert (got - expected).abs().max().item() <= 1e-6
    accuracy = robust(model, got, y).float().mean().item()
    assert 0.2 < accuracy < 0.95  # a comparison where the attack matters, not a no-op


def test_fab_nearly_equals_torchattacks(toy):
    model, x, y = toy
    expected = torchattacks.FAB(model, eps=EPS, steps=10, multi_targeted=True,
                                n_classes=N_CLASSES, seed=0)(x, y)
    got, _ = run("fab", model, x, y, eps=EPS, steps=10)
    same = (got - expected).flatten(1).abs().amax(1) <= 1e-5
    assert same.float().mean() >= 0.95
    mine, ref = robust(model, got, y), robust(model, expected, y)
    assert (mine != ref).sum() <= 1 and 0.2 < mine.float().mean() < 0.95
    norms = [(a - x).flatten(1).abs().amax(1)[~ref & ~mine] for a in (got, expected)]
    assert torch.allclose(norms[0], norms[1], atol=1e-3)  # the same minimal distances


def test_square_within_interval_of_torchattacks(toy):
    model, x, y = toy
    eps, queries = 0.03, 100
    expected = torchattacks.Square(model, eps=eps, n_queries=queries, resc_schedule=False,
                                   seed=7)(x, y)
    got, _ = run("square", model, x, y, seed=7, eps=eps, n_queries=queries)
    k_ref = int(robust(model, expected, y).sum())
    accuracy = robust(model, got, y).float().mean().item()
    low, high = wilson(k_ref, len(y))
    assert low <= accuracy <= high, (accuracy, k_ref / len(y))
    assert 0.05 < accuracy < 0.9


def test_autoattack_within_interval_of_torchattacks(toy):
    model, x, y = toy
    reference = torchattacks.AutoAttack(model, eps=EPS, version="standard", n_classes=N_CLASSES,
                                        seed=7)
    reference._autoattack.attacks[3].n_queries = 60  # Square's 5000 queries: too slow for a test
    expected = reference(x, y)
    got, attack = run("autoattack", model, x, y, seed=7, eps=EPS, steps=10, n_queries=60)
    mine = robust(model, got, y)
    low, high = wilson(int(robust(model, expected, y).sum()), len(y))
    assert low <= mine.float().mean().item() <= high
    broken_by = attack.broken_by_[0]
    assert torch.equal(broken_by >= 0, robust(model, x, y) & ~mine)
    assert [name for name, _ in COMPONENTS] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    # the first component sees every image from the same generator state: same rows broken
    first, _ = run("apgdce", model, x, y, seed=7, eps=EPS, steps=10)
    assert torch.equal(broken_by == 0, robust(model, x, y) & ~robust(model, first, y))
    assert (broken_by >= 0).sum() > 10 and mine.any()
    # worst case: robust under the ensemble => robust under FAB-T alone (deterministic)
    alone, _ = run("fab", model, x, y, eps=EPS, steps=10)
    assert not (mine & ~robust(model, alone, y)).any()


# -- contract on the toy net ------------------------------------------------------------

@pytest.mark.parametrize("space", ["pixel", "normalized"])
@pytest.mark.parametrize("name", FAMILY)
def test_ball_range_and_only_successes_move(toy, name, space):
    model, x, y = toy
    eps = 0.03 if space == "pixel" else 0.12
    adv, _ = run(name, model, x, y, eps=eps, eps_space=space, **SMALL[name])
    bound = eps * (torch.tensor(STD).view(1, 3, 1, 1) if space == "normalized" else 1.0)
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv - x).abs() - bound).max() <= 1e-6
    moved = (adv != x).flatten(1).any(1)
    assert moved.sum() >= 5  # the budget is used
    # AutoAttack's output: a changed image is a successful one, the others are clean
    assert torch.equal(moved, robust(model, x, y) & ~robust(model, adv, y))


@pytest.mark.parametrize("name", FAMILY)
def test_eps_zero_is_the_identity_and_same_seed_same_bytes(toy, name):
    model, x, y = toy
    adv, _ = run(name, model, x[:16], y[:16], eps=0.0, **SMALL[name])
    assert torch.equal(adv, x[:16])
    a, _ = run(name, model, x, y, seed=3, eps=0.05, **SMALL[name])
    b, _ = run(name, model, x, y, seed=3, eps=0.05, **SMALL[name])
    assert torch.equal(a, b)


def test_randomness_comes_from_the_generator(toy):
    model, x, y = toy
    torch.manual_seed(0)
    a, _ = run("square", model, x, y, seed=1, eps=0.03, n_queries=30)
    torch.manual_seed(1)  # the global generator plays no part
    b, _ = run("square", model, x, y, seed=1, eps=0.03, n_queries=30)
    c, _ = run("square", model, x, y, seed=2, eps=0.03, n_queries=30)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_autoattack_records_the_breaking_component_per_setting(toy):
    model, x, y = toy
    attack = PERTURBATIONS.get("autoattack")()
    weak, strong = attack.perturb_many(x, [{"eps": e, **SMALL["autoattack"]} for e in (0.01, 0.05)],
                                       labels=y, model=model,
                                       generator=torch.Generator().manual_seed(0))
    assert len(attack.broken_by_) == 2
    for adv, broken_by in zip((weak, strong), attack.broken_by_):
        assert torch.equal(broken_by >= 0, robust(model, x, y) & ~robust(model, adv, y))
    assert (attack.broken_by_[1] >= 0).sum() > (attack.broken_by_[0] >= 0).sum()


def test_dlr_needs_enough_classes(toy):
    model, x, y = toy
    three = nn.Sequential(model, nn.Linear(N_CLASSES, 3)).eval()
    with pytest.raises(FeatlabError, match="at least 4 classes"):
        run("apgdt", three, x, y % 3, eps=0.01, steps=2)
    with pytest.raises(FeatlabError, match="unknown parameter"):
        run("square", model, x, y, eps=0.01, steps=2)


# -- constructed truth ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def linear():
    """A linear 5-class model on 3x8x8 images away from the box: exact minimal distances."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 5)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(5, 192, generator=g))
        model[1].bias.zero_()
    x = 0.35 + 0.3 * torch.rand(6, 3, 8, 8, generator=g)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = model[1].weight.detach()
    gap = logits.gather(1, y[:, None]) - logits
    dist = gap / (w[y][:, None, :] - w[None]).abs().sum(-1)
    dist = dist.masked_fill(nn.functional.one_hot(y, 5).bool(), float("inf")).amin(1)
    assert dist.max() < 0.3  # the box [0, 1] is never active: dist is the exact answer
    return model, x, y, dist


@pytest.mark.parametrize("name", FAMILY)
def test_nothing_breaks_below_the_exact_distance(linear, name):
    model, x, y, dist = linear
    for i in range(len(x)):
        adv, _ = run(name, model, x[i:i + 1], y[i:i + 1], eps=0.97 * dist[i].item(),
                     **SMALL[name])
        assert torch.equal(adv, x[i:i + 1])


@pytest.mark.parametrize("name", ["apgdce", "apgdt", "fab", "autoattack"])
def test_gradient_attacks_break_just_above_it(linear, name):
    model, x, y, dist = linear
    for i in range(len(x)):
        adv, _ = run(name, model, x[i:i + 1], y[i:i + 1], eps=1.06 * dist[i].item(),
                     **SMALL[name])
        assert not robust(model, adv, y[i:i + 1]).item()


def test_fab_finds_the_minimal_distance(linear):
    model, x, y, dist = linear
    for i in range(len(x)):
        adv, _ = run("fab", model, x[i:i + 1], y[i:i + 1], eps=2 * dist[i].item(), steps=20)
        found = (adv - x[i:i + 1]).abs().max().item()
        assert dist[i] <= found <= 1.055 * dist[i]  # the overshoot eta = 1.05 is the only slack


def test_projection_is_the_linear_programs_optimum():
    g = torch.Generator().manual_seed(4)
    for trial in range(12):
        d = 6 + trial
        t, w = torch.rand(1, d, generator=g, dtype=torch.float64), torch.randn(1, d, generator=g,
                                                                             dtype=torch.float64)
        w[0, trial % 3] = 0.0
        b = (w * torch.rand(1, d, generator=g, dtype=torch.float64)).sum(1)
        step = project_hyperplane_box(t, w, b)[0].numpy()
        # min s  s.t.  -s <= d_i <= s,  <w, t + d> = b,  0 <= t + d <= 1 ; variables (d, s)
        eye, ones = np.eye(d), np.ones((d, 1))
        res = linprog(np.r_[np.zeros(d), 1.0], A_ub=np.block([[eye, -ones], [-eye, -ones]]),
                      b_ub=np.zeros(2 * d), A_eq=np.r_[w[0].numpy(), 0.0][None],
                      b_eq=[b.item() - (w * t).sum().item()],
                      bounds=[(-ti, 1 - ti) for ti in t[0].numpy()] + [(0, None)])
        assert res.status == 0
        assert np.abs(step).max() == pytest.approx(res.x[-1], abs=1e-9)
        assert (w * (t + torch.from_numpy(step))).sum().item() == pytest.approx(b.item(), abs=1e-9)
        assert (t[0].numpy() + step).min() >= -1e-12 and (t[0].numpy() + step).max() <= 1 + 1e-12


def test_projection_matches_torchattacks():
    from torchattacks.attacks.fab import projection_linf

    g = torch.Generator().manual_seed(0)
    t = torch.rand(16, 300, generator=g)
    w = torch.randn(16, 300, generator=g) * (torch.rand(16, 300, generator=g) > 0.2)
    b = (w * torch.rand(16, 300, generator=g)).sum(1) * torch.linspace(0.2, 3.0, 16)
    assert torch.allclose(project_hyperplane_box(t, w, b), projection_linf(t, w, b), atol=1e-6)


def test_checkpoints_are_the_papers():
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    paper = [round(q * 100) - 1 for q in p[1:] if q <= 1]  # w_j = ceil(p_j N), 0-based
    assert list(_apgd.checkpoints(100)) == paper


def test_dlr_losses_are_shift_and_scale_invariant():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(8, 6, generator=g, dtype=torch.float64), torch.arange(8) % 6
    t = (y + 1) % 6
    for loss in (lambda v: _losses.dlr(v, y), lambda v: _losses.dlr_targeted(v, y, t)):
        assert torch.allclose(loss(3.0 * z + 7.0), loss(z), atol=1e-9)
    wrong = z.argmax(1) != y
    assert torch.equal(_losses.dlr(z, y) > 0, wrong)  # positive exactly when misclassified


# -- through the extraction pipeline --------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_weights):
    from click.testing import CliRunner

    from featlab.analyses.heads.run import fit_head
    from featlab.cli.main import cli
    from featlab.data.synthetic import generate_synthetic
    from featlab.extraction import ExtractionSpec, extract
    from featlab.store import FeatureStore

    base = tmp_path_factory.mktemp("autoattack")
    root = str(base / "data")
    generate_synthetic(root, seed=3, n_images=16, image_size=16, n_supercategories=2,
                       classes_per_supercategory=2)
    spec = dict(store=str(base / "store"), root=root, dataset="synthetic", device="cpu",
                batch_size=16, chunk_size=16, image_size=16, weights=tiny_weights)
    extract(ExtractionSpec(conditions="clean", **spec))
    fit_head(FeatureStore(str(base / "store")), alphas=(0.0,))
    weights = [a for k, v in tiny_weights.items() for a in ("--weights", f"{k}={v}")]
    result = CliRunner().invoke(cli, [
        "-q", "extract", "--dataset", "synthetic", "--root", root, "--store", str(base / "store"),
        "--conditions", "apgdce:eps=0.003:0.01:steps=5:target=fg", "--device", "cpu",
        "--batch-size", "16", "--chunk-size", "16", "--image-size", "16", *weights])
    assert result.exit_code == 0, result.output
    extract(ExtractionSpec(conditions="apgdt:eps=0.003:steps=2:target=joint,"
                                      "fab:eps=0.003:steps=2:target=fg,"
                                      "square:eps=0.003:n_queries=5:target=bg,"
                                      "autoattack:eps=0.003:steps=2:n_queries=5:target=joint",
                           **spec))
    return FeatureStore(str(base / "store"))


def _head_logits(store, head, condition):
    """The stored head applied to the stored penultimate features of its backbones."""
    arrays, attrs = load_head(store.path, head)
    feats = np.concatenate([store.read(backbone=b, layer="penultimate", condition=condition)
                            for b in attrs["inputs"]], axis=1)
    return feats @ arrays["coef"].T + arrays["intercept"]


@pytest.mark.parametrize("condition", [
    "apgdce:eps=0.003:steps=5:target=fg", "apgdce:eps=0.01:steps=5:target=fg",
    "apgdt:eps=0.003:steps=2:target=joint",
    "fab:eps=0.003:steps=2:target=fg", "square:eps=0.003:n_queries=5:target=bg",
    "autoattack:eps=0.003:steps=2:n_queries=5:target=joint"])
def test_stored_success_flags_are_right(store, condition):
    key = store.resolve_condition(condition)
    head = store.condition_info(key)["head"]
    success = store.read_array("attack/success", key)
    prediction = store.read_array("attack/prediction", key)
    labels = store.samples.label
    assert success.dtype == bool and len(success) == len(labels)
    assert np.array_equal(success, prediction != labels)
    logits = _head_logits(store, head, key)
    ranked = np.sort(logits, axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > 1e-3
    assert clear.mean() > 0.9
    assert np.array_equal(logits.argmax(1)[clear], prediction[clear])  # the head on the features
    # robust and misclassified-to-begin-with rows keep their clean images, hence clean features
    clean = _head_logits(store, head, "clean").argmax(1)
    kept = ~success | (clean != labels)
    for backbone in store.backbones:
        a, b = (store.read(backbone=backbone, layer="penultimate", condition=c) for c in (key, "clean"))
        assert np.allclose(a[kept], b[kept], atol=1e-5)


def test_attacks_grow_with_eps_and_joint_is_attacked(store):
    weak, strong = (store.read_array("attack/success", store.resolve_condition(
        f"apgdce:eps={e}:steps=5:target=fg")) for e in ("0.003", "0.01"))
    assert weak.mean() <= strong.mean()
    key = store.resolve_condition("autoattack:eps=0.003:steps=2:n_queries=5:target=joint")
    clean_error = (_head_logits(store, "joint-all-alpha=0", "clean").argmax(1)
                   != store.samples.label).mean()
    assert store.read_array("attack/success", key).mean() > clean_error  # breaks clean-correct ones
    info = store.condition_info(key)
    assert info["head"] == "joint-all-alpha=0" and info["target"] == "joint"
    assert info["target_classes"] == 3  # the default 9 on 4 classes: the 3 there are


@pytest.mark.parametrize("name", ["apgdt", "fab", "autoattack"])
def test_more_target_classes_than_exist_are_refused_before_a_run(name, tmp_path, tiny_weights):
    """n_target_classes typed above K - 1 is refused in one line and nothing is written;
    the default (AutoAttack's 9) on K = 4 classes takes the 3 there are."""
    from click.testing import CliRunner

    from conftest import one_error_line
    from featlab.cli.main import cli
    from featlab.conditions import parse_conditions
    from featlab.data import DATASETS
    from featlab.data.synthetic import generate_synthetic
    from featlab.extraction.spec import check_conditions

    root = str(tmp_path / "data")
    generate_synthetic(root, seed=3, n_images=8, image_size=16, n_supercategories=2,
                       classes_per_supercategory=2)
    dataset = DATASETS.get("synthetic")(root, image_size=16)
    assert len(dataset.samples.classes) == 4
    check_conditions(parse_conditions(f"{name}:eps=0.01,{name}:eps=0.01:n_target_classes=3"),
                     dataset)
    store = tmp_path / "store"
    weights = [a for k, v in tiny_weights.items() for a in ("--weights", f"{k}={v}")]
    result = CliRunner().invoke(cli, [
        "extract", "--dataset", "synthetic", "--root", root, "--store", str(store),
        "--conditions", f"clean,{name}:eps=0.01:n_target_classes=4", "--device", "cpu",
        "--image-size", "16", *weights])
    assert result.exit_code == 2
    assert one_error_line(result.output).endswith(
        "n_target_classes=4, but the store has 4 classes, so at most 3 target classes exist; "
        "use n_target_classes=3 or fewer")
    assert not store.exists()
