"""Gradient attacks: torchattacks references, threat-model contract, parsing, bad input.

A tiny CNN (normalization, BatchNorm and dropout inside) is trained for a few seconds on a
separable toy problem (each class is a fixed colour pattern plus noise), so that the attacks
have something to break; torchattacks is the reference for FGSM, BIM, PGD, MI-FGSM,
PGD-LL, targeted FGSM and CW on identical models, inputs and seeds.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

torchattacks = pytest.importorskip("torchattacks")

from featlab.errors import FeatlabError  # noqa: E402
from featlab.conditions import parse_conditions  # noqa: E402
from featlab.perturbations import PERTURBATIONS  # noqa: E402
from featlab.perturbations.attacks import Attack, success_rate  # noqa: E402
from featlab.perturbations.attacks import _common, fgsm as fgsm_module  # noqa: E402

N_CLASSES, SIZE = 5, 16
MEAN, STD = (0.5, 0.4, 0.45), (0.2, 0.25, 0.3)
ATTACKS = [n for n in PERTURBATIONS.names() if issubclass(PERTURBATIONS.get(n), Attack)]
LINF = [n for n in ATTACKS if PERTURBATIONS.get(n).norm == "linf"]


class TinyNet(nn.Module):
    """Images in [0, 1] -> logits, normalization inside, with BN and dropout."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(0.2), nn.Linear(16, N_CLASSES))

    @property
    def input_std(self):
        return self.std.flatten()

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def toy_data(n, seed):
    g = torch.Generator().manual_seed(1234)
    patterns = F.interpolate(torch.randn(N_CLASSES, 3, 4, 4, generator=g), size=SIZE,
                             mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, N_CLASSES, (n,), generator=g)
    images = 0.5 + 0.12 * patterns[labels] + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    return images.clamp(0, 1), labels


def train(seed):
    torch.manual_seed(seed)
    model = TinyNet()
    x, y = toy_data(512, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(60):
        idx = torch.arange(step * 64, step * 64 + 64) % 512
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained():
    return train(seed=0)


@pytest.fixture(scope="module")
def batch(trained):
    x, y = toy_data(64, seed=2)
    with torch.no_grad():
        assert (trained(x).argmax(1) == y).float().mean() > 0.95  # the toy task is learnt
    return x, y


def budget(name):
    """Small budgets for attacks whose defaults are heavy (AutoAttack: 100 steps, 5000 queries)."""
    defaults = {p.name: p.default for p in PERTURBATIONS.get(name).params}
    return {k: v for k, v in (("steps", 5), ("n_queries", 30)) if defaults.get(k, 0) > 50}


def run(name, model, x, y, seed=0, **params):
    return PERTURBATIONS.get(name)().perturb(
        x, labels=y, boxes=None, model=model, generator=torch.Generator().manual_seed(seed),
        **{**budget(name), **params})


def fast(name):
    """Few iterations for the iterative attacks (contract tests, not strength tests)."""
    names = {p.name for p in PERTURBATIONS.get(name).params}
    return {k: v for k, v in (("steps", 3), ("n_queries", 10)) if k in names}


def accuracy(model, x, y):
    return 1.0 - success_rate(model, x, y)


# -- torchattacks references ---------------------------------------------------------------

class Shifted(nn.Module):
    """Adds 50 to every logit (softmax- and CW-invariant): torchattacks' CW is then exact."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) + 50.0


def reference(name, model, x, y, seed):
    """torchattacks' output for featlab attack ``name`` (global RNG seeded like featlab's)."""
    ta = torchattacks
    eps, alpha, steps = 0.05, 0.01, 7
    attack = {
        "fgsm": lambda: ta.FGSM(model, eps=eps),
        "tfgsm": lambda: ta.FGSM(model, eps=eps),
        "bim": lambda: ta.BIM(model, eps=eps, alpha=alpha, steps=steps),
        "pgd": lambda: ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True),
        "pgdll": lambda: ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True),
        "mifgsm": lambda: ta.MIFGSM(model, eps=eps, alpha=alpha, steps=steps, decay=0.8),
        "cw": lambda: ta.CW(model, c=2.0, kappa=0.5, steps=30, lr=0.02),
    }[name]()
    if name == "tfgsm":
        attack.set_mode_targeted_random(quiet=True)
    if name == "pgdll":
        attack.set_mode_targeted_least_likely(quiet=True)
    params = {"fgsm": {}, "tfgsm": {}, "bim": {"alpha": alpha, "steps": steps},
              "pgd": {"alpha": alpha, "steps": steps}, "pgdll": {"alpha": alpha, "steps": steps},
              "mifgsm": {"alpha": alpha, "steps": steps, "decay": 0.8},
              "cw": {"c": 2.0, "kappa": 0.5, "steps": 30, "lr": 0.02}}[name]
    if name != "cw":
        params["eps"] = eps
    torch.manual_seed(seed)
    return attack(x, y), params


@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd", "mifgsm", "pgdll", "tfgsm", "cw"])
def test_equals_torchattacks(trained, batch, name):
    model = Shifted(trained).eval()
    x, y = batch[0][:16], batch[1][:16]
    expected, params = reference(name, model, x, y, seed=7)
    got = run(name, model, x, y, seed=7, **params)
    assert (got - expected).abs().max().item() <= 1e-6
    assert (got - x).abs().max() > 0.01  # the comparison is not between two no-ops


def test_a_sign_flipped_fgsm_fails_the_checks(trained, batch, monkeypatch):
    x, y = batch
    flipped = lambda *a, **k: -_common.input_gradient(*a, **k)  # noqa: E731
    monkeypatch.setattr(fgsm_module, "input_gradient", flipped)
    expected, params = reference("fgsm", trained, x[:16], y[:16], seed=0)
    got = run("fgsm", trained, x[:16], y[:16], **params)
    assert (got - expected).abs().max().item() > 1e-3
    assert accuracy(trained, run("fgsm", trained, x, y, eps=0.3), y) > 0.5


# -- contract: every registered attack ---------------------------------------------------

@pytest.mark.parametrize("space", ["pixel", "normalized"])
@pytest.mark.parametrize("name", LINF)
def test_within_eps_ball_and_unit_range(trained, batch, name, space):
    x, y = batch
    eps = 0.1 if space == "pixel" else 0.4
    adv = run(name, trained, x, y, eps=eps, eps_space=space)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert adv.min() >= 0 and adv.max() <= 1
    bound = eps * (trained.input_std.view(1, 3, 1, 1) if space == "normalized"
                   else torch.ones(1, 3, 1, 1))
    excess = (adv - x).abs() - bound
    assert excess.max() <= 1e-6
    assert (adv - x).abs().amax(dim=(0, 2, 3)).min() > 0.5 * bound.min()  # it does move


def test_cw_in_unit_range_and_smaller_than_linf_change(trained, batch):
    x, y = batch
    adv = run("cw", trained, x, y, c=5.0, steps=40, lr=0.05)
    assert adv.min() >= 0 and adv.max() <= 1
    assert success_rate(trained, adv, y) > 0.5
    fooled = trained(adv).argmax(1) != y
    assert ((adv - x)[~fooled].abs().max() if (~fooled).any() else 0) == 0  # failures: clean


@pytest.mark.parametrize("name", ATTACKS)
def test_identity_at_strength_zero(trained, batch, name):
    x, y = batch
    strength = PERTURBATIONS.get(name).strength
    adv = run(name, trained, x, y, **{strength: 0.0})
    assert torch.allclose(adv, x, atol=1e-6)


@pytest.mark.parametrize("name", ["pgdll", "tfgsm"])
def test_targeted_attacks_reach_their_target(trained, batch, name):
    x, y = batch
    attack = PERTURBATIONS.get(name)()
    (adv,), target = attack.attack_many(x, [dict(eps=0.15)], labels=y, model=trained,
                                        generator=torch.Generator().manual_seed(3))
    assert torch.equal(adv, attack.perturb(x, labels=y, boxes=None, model=trained,
                                           generator=torch.Generator().manual_seed(3), eps=0.15))
    assert target.shape == y.shape and (target != y).all()
    assert success_rate(trained, x, y, target) < 0.1
    assert success_rate(trained, adv, y, target) > 2.0 / N_CLASSES  # twice chance


def test_robust_accuracy_falls_to_zero(trained, batch):
    x, y = batch
    eps_values = [0.0, 0.01, 0.03, 0.1, 0.3]
    acc = [accuracy(trained, run("pgd", trained, x, y, eps=e), y) for e in eps_values]
    assert acc[0] > 0.95
    assert all(b <= a for a, b in zip(acc, acc[1:]))
    assert acc[-1] <= 0.05
    fgsm_acc = [accuracy(trained, a, y) for a in PERTURBATIONS.get("fgsm")().perturb_many(
        x, [{"eps": e} for e in eps_values], labels=y, model=trained)]
    assert fgsm_acc[-1] < 0.2 < fgsm_acc[0]


@pytest.mark.parametrize("eps", [0.02, 0.05, 0.1])
def test_pgd_at_least_as_strong_as_fgsm(trained, batch, eps):
    x, y = batch
    pgd, fgsm = run("pgd", trained, x, y, eps=eps), run("fgsm", trained, x, y, eps=eps)
    with torch.no_grad():
        loss = [F.cross_entropy(trained(a), y).item() for a in (pgd, fgsm)]
    assert loss[0] >= loss[1]
    assert accuracy(trained, pgd, y) <= accuracy(trained, fgsm, y)


def test_white_box_at_least_as_strong_as_transfer(trained, batch):
    x, y = batch
    surrogate = train(seed=1)
    for eps in (0.02, 0.03):
        white = accuracy(trained, run("pgd", trained, x, y, eps=eps), y)
        transfer = accuracy(trained, run("pgd", surrogate, x, y, eps=eps), y)
        assert white <= transfer


def _state(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [(p.requires_grad, p.grad) for p in model.parameters()],
            [m.training for m in model.modules()])


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
@pytest.mark.parametrize("name", ATTACKS)
def test_model_state_unchanged(trained, batch, name, mode):
    model = copy.deepcopy(trained)
    model.body[0].weight.requires_grad_(False)
    model.train(mode != "eval")
    if mode == "mixed":
        model.body[1].eval()
    before = _state(model)
    x, y = batch[0][:16], batch[1][:16]
    adv = run(name, model, x, y, **fast(name))
    after = _state(model)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])  # weights, BN stats
    assert before[1] == after[1] and all(g is None for _, g in after[1])
    assert before[2] == after[2]
    # attacked in eval mode: equals the attack on the eval-mode model
    assert torch.equal(adv, run(name, trained, x, y, **fast(name)))


def test_normalized_eps_is_eps_times_std(trained, batch):
    x, y = batch
    x = 0.3 + 0.4 * x  # far from 0 and 1: no clipping
    adv = run("fgsm", trained, x, y, eps=0.1, eps_space="normalized")
    per_channel = (adv - x).abs().amax(dim=(0, 2, 3))
    assert torch.allclose(per_channel, 0.1 * torch.tensor(STD), atol=1e-6)
    pixel = run("fgsm", trained, x, y, eps=0.1)
    assert torch.equal((adv - x).sign(), (pixel - x).sign())


def test_normalized_eps_needs_input_std(batch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, N_CLASSES))
    with pytest.raises(FeatlabError, match="input_std"):
        run("fgsm", model, *batch, eps=0.1, eps_space="normalized")


@pytest.mark.parametrize("name", ATTACKS)
def test_perturb_many_equals_separate_calls(trained, batch, name):
    x, y = batch[0][:16], batch[1][:16]
    attack, strength = PERTURBATIONS.get(name)(), PERTURBATIONS.get(name).strength
    settings = [{strength: s, **fast(name)} for s in (0.01, 0.05, 0.2)]
    many = attack.perturb_many(x, settings, labels=y, boxes=None, model=trained,
                               generator=torch.Generator().manual_seed(5))
    for adv, p in zip(many, settings):
        assert torch.equal(adv, run(name, trained, x, y, seed=5, **p))


def test_fgsm_perturb_many_takes_one_gradient(trained, batch, monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return _common.input_gradient(*args, **kwargs)

    monkeypatch.setattr(fgsm_module, "input_gradient", counting)
    PERTURBATIONS.get("fgsm")().perturb_many(
        batch[0], [{"eps": e} for e in (0.01, 0.03, 0.1, 0.3)], labels=batch[1], model=trained)
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["pgd", "tfgsm", "pgdll"])
def test_same_seed_same_bytes(trained, batch, name):
    x, y = batch[0][:16], batch[1][:16]
    a, b = run(name, trained, x, y, seed=11), run(name, trained, x, y, seed=11)
    assert torch.equal(a, b)
    assert not torch.equal(a, run(name, trained, x, y, seed=12))


def test_success_rate_on_constructed_predictions():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    adv = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, -1.0]]).view(4, 2, 1, 1)
    labels = torch.tensor([0, 0, 1, 2])  # predictions are 0, 1, 1, 2
    assert success_rate(model, adv, labels) == pytest.approx(0.25)
    assert success_rate(model, adv, labels, torch.tensor([1, 1, 0, 2])) == pytest.approx(0.5)


# -- condition strings and bad input -----------------------------------------------------

def test_condition_strings_expand_and_have_canonical_keys():
    conds = parse_conditions("fgsm:eps=0.01:0.03:target=joint")
    assert [c.params["eps"] for c in conds] == [0.01, 0.03]
    assert conds[0].key == ("fgsm:eps=0.01:eps_space=pixel:target=joint:surrogate=:"
                            "head_alpha=0")
    pgd = parse_conditions("pgd:eps=0.03:steps=10:random_start=false:target=fg")[0]
    assert pgd.params["random_start"] is False and pgd.params["steps"] == 10
    assert len(parse_conditions("cw:c=0.1:1:10")) == 3
    for name in ATTACKS:
        (cond,) = parse_conditions(name)
        assert PERTURBATIONS.get(name).validate_params(cond.params) == cond.params
        assert cond.perturbation.needs_model


def test_head_targets_take_the_next_token_as_the_head_name():
    (cond,) = parse_conditions("fgsm:eps=0.03:target=head:joint-all-alpha=10")
    assert cond.params["target"] == "head:joint-all-alpha=10" and cond.params["head_alpha"] == 0
    assert cond.label == "fgsm:eps=0.03:target=head:joint-all-alpha=10"
    assert [c.key for c in parse_conditions(cond.key)] == [cond.key]  # the key parses back
    late = parse_conditions("pgd:target=head:mat-parallel-joint-all-eps=0.1:eps=0.01:0.02")
    assert [(c.params["target"], c.params["eps"]) for c in late] == [
        ("head:mat-parallel-joint-all-eps=0.1", 0.01), ("head:mat-parallel-joint-all-eps=0.1", 0.02)]
    (probe,) = parse_conditions("isotropy:radius=1:select=head:three-all")
    assert probe.params["select"] == "head:three-all"
    assert parse_conditions(probe.key)[0].key == probe.key


@pytest.mark.parametrize("text, match", [
    ("fgsm:target=head", "target=head needs the head's name"),
    ("fgsm:target=head:joint-all-alpha=0:head_alpha=10", "names its head"),
    ("fgsm:target=head:fg-similar:head_subset=similar", "names its head"),
    ("fgsm:target=heads", "expected one of .*head:NAME"),
    ("isotropy:radius=1:select=head", "select=head needs the head's name"),
])
def test_bad_head_targets(text, match):
    with pytest.raises(FeatlabError, match=match):
        parse_conditions(text)


@pytest.mark.parametrize("text, match", [
    ("fgsmm:eps=0.03", "unknown perturbation"),
    ("fgsm:eps=20", "out of range"),
    ("fgsm:eps=-0.1", "out of range"),
    ("pgd:steps=0", "out of range"),
    ("fgsm:target=nobody", "expected one of"),
    ("pgd:random_start=maybe", "not a valid"),
    ("cw:eps=0.1", "unknown parameter"),
])
def test_bad_condition_strings(text, match):
    with pytest.raises(FeatlabError, match=match):
        parse_conditions(text)


@pytest.mark.parametrize("params, match", [
    ({"eps": 2.0}, "eps_space=normalized"),
    ({"target": "surrogate"}, "needs surrogate"),
    ({"surrogate": "imagenet-resnet18"}, "only applies with target=surrogate"),
    ({"steps": 0}, "out of range"),
    ({"epsilon": 0.1}, "unknown parameter"),
])
def test_bad_parameters_raise_before_any_work(trained, batch, params, match):
    with pytest.raises(FeatlabError, match=match):
        run("pgd", trained, *batch, **params)
    # the parser runs the same cross-parameter checks, so a bad string fails at parse time
    if "epsilon" not in params and "steps" not in params:
        text = "pgd:" + ":".join(f"{k}={v}" for k, v in params.items())
        with pytest.raises(FeatlabError, match=match):
            parse_conditions(text)


def test_large_normalized_eps_is_accepted(trained, batch):
    adv = run("fgsm", trained, *batch, eps=2.0, eps_space="normalized")
    assert adv.min() >= 0 and adv.max() <= 1
