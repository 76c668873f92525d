"""featlab train: recipes against hand-computed cases, the voting ensemble, the random walk
on single-strength networks, resume after SIGKILL, the CLI end to end, and the result as a
backbone (the walk and the voting themselves: tests/test_mat.py)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import featlab
from featlab.backbones.trained import load_trained
from featlab.backbones.ensemble import EnsembleBackbone, VotingNet
from featlab.backbones.trained import make_net
from featlab.cli.main import cli
from featlab.cli.train_cmd import RECIPE_NAMES
from featlab.errors import FeatlabError
from featlab.mat import best_subset
from featlab.training import TRAIN_RECIPES, TrainSpec, train
from featlab.training.labels import mixup, one_hot, soft_cross_entropy, tlat_label
from featlab.training.recipes import StepContext
from featlab.training.recipes.mat_mixed import mat_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two threads on two cores shared with other jobs are slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(*args):
    result = CliRunner().invoke(cli, ["-q", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("train") / "data"
    generate_synthetic(str(root), seed=3, n_images=64, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    return str(root)


def spec(data, out, **kw):
    base = dict(out=str(out), root=data, arch="resnet10-w16", epochs=2, image_size=32,
                batch_size=16, device="cpu")
    return TrainSpec(**dict(base, **kw))


class Linear(torch.nn.Module):
    """A BatchNorm-free classifier (per-example losses do not depend on the batch)."""

    def __init__(self, n_in=3 * 4 * 4, n_classes=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(n_in, n_classes)
        self.input_std = torch.ones(3)

    def forward(self, x):
        return self.fc(x.flatten(1))


def ctx(**kw):
    base = dict(n_classes=3, strengths=[], eps_max=0.0, mixup_alpha=0.4,
                generator=torch.Generator().manual_seed(0), rng=np.random.default_rng(0))
    return StepContext(**dict(base, **kw))


# -- labels and losses, by hand ----------------------------------------------------------
def test_tlat_soft_label_by_hand():
    y = one_hot(torch.tensor([1, 0]), 4)
    soft = tlat_label(y, torch.tensor([3, 2]), 0.02)
    assert torch.allclose(soft, torch.tensor([[0, .98, 0, .02], [.98, 0, .02, 0]]))
    mixed = torch.tensor([[.7, .3, 0, 0]])  # M-TLAT Eq. (6): (1 - eps) y_mix + eps y_t
    assert torch.allclose(tlat_label(mixed, torch.tensor([1]), 0.1),
                          torch.tensor([[.63, .37, 0, 0]]))
    assert torch.allclose(soft.sum(1), torch.ones(2))


def test_mixup_mixture_by_hand():
    x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    y = one_hot(torch.tensor([0, 1, 2]), 3)
    xm, ym = mixup(x, y, 0.3, torch.tensor([2, 0, 1]))
    assert torch.allclose(xm[:, 0, 0, 0], torch.tensor([0.3 * 0 + 0.7 * 2, 0.3 * 1 + 0.7 * 0,
                                                        0.3 * 2 + 0.7 * 1]))
    assert torch.allclose(ym, torch.tensor([[.3, 0, .7], [.7, .3, 0], [0, .7, .3]]))
    uniform = soft_cross_entropy(torch.zeros(3, 3), ym)
    assert uniform.item() == pytest.approx(np.log(3.0))


def test_mat_loss_equals_the_direct_sum_of_eq2():
    torch.manual_seed(1)
    model, x, y = Linear(), torch.rand(5, 3, 4, 4), torch.tensor([0, 1, 2, 1, 0])
    strengths = [0.01, 0.05, 0.2]
    result = TRAIN_RECIPES.get("mat-mixed")().step(model, x, y, ctx(strengths=strengths))
    direct = 0.0
    for i in range(len(x)):  # Eq. (2): sum_i J(X_i) + sum_j sum_i J(f_j(X_i)), one by one
        xi = x[i:i + 1].clone().requires_grad_(True)
        loss = F.cross_entropy(model(xi), y[i:i + 1])
        (grad,) = torch.autograd.grad(loss, xi)
        direct += loss.item()
        for s in strengths:
            adv = (x[i:i + 1] + s * grad.sign()).clamp(0, 1)
            direct += F.cross_entropy(model(adv), y[i:i + 1]).item()
    assert result.loss.item() == pytest.approx(direct / len(x), rel=1e-5)
    assert mat_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), 2).item() == \
        pytest.approx(2 * np.log(3))


def test_mtlat_without_perturbation_is_mixup_on_both_halves():
    """eps_max = 0: Algorithm 1's second half is plain Mixup, its label too (lam per pair)."""
    model, x, y = Linear(), torch.rand(6, 3, 4, 4), torch.tensor([0, 1, 2, 1, 0, 2])
    result = TRAIN_RECIPES.get("mtlat")().step(model, x, y, ctx())
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    lams = rng.beta(0.4, 0.4, 3), rng.beta(0.4, 0.4, 3)
    loss = 0.0
    for half, lam in zip((slice(0, 3), slice(3, 6)), lams):
        xm, ym = mixup(x[half], one_hot(y[half], 3), torch.as_tensor(lam),
                       torch.randperm(3, generator=gen))
        loss += soft_cross_entropy(model(xm), ym).item()
    assert result.loss.item() == pytest.approx(loss, rel=1e-6)


def test_mtlat_step_by_hand_draws_per_pair():
    """Algorithm 1 sample by sample: each pair its own lam_1 / lam_2, eps ~ U[0, eps_max] and
    y_target ~ U over all N classes; x_mtlat = x_mix2 - eps * sign(grad L(x_mix2, y_target))."""
    model, x = Linear(), torch.rand(8, 3, 4, 4) * 0.5 + 0.25
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = TRAIN_RECIPES.get("mtlat")().step(model, x, y, ctx(eps_max=0.025))
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    lam1, lam2, eps = rng.beta(.4, .4, 4), rng.beta(.4, .4, 4), rng.uniform(0, .025, 4)
    perm1, perm2 = torch.randperm(4, generator=gen), torch.randperm(4, generator=gen)
    t = torch.randint(3, (4,), generator=gen)
    total = 0.0
    for i in range(4):
        a, b = perm1[i].item(), 4 + perm2[i].item()
        xm1 = lam1[i] * x[i] + (1 - lam1[i]) * x[a]
        ym1 = lam1[i] * one_hot(y[i], 3) + (1 - lam1[i]) * one_hot(y[a], 3)
        total += soft_cross_entropy(model(xm1[None].float()), ym1[None].float()).item() / 4
        xm2 = (lam2[i] * x[4 + i] + (1 - lam2[i]) * x[b]).float()[None].requires_grad_(True)
        ym2 = lam2[i] * one_hot(y[4 + i], 3) + (1 - lam2[i]) * one_hot(y[b], 3)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xm2), t[i:i + 1]), xm2)
        adv = (xm2.detach() - float(eps[i]) * g.sign()).clamp(0, 1)
        soft = (1 - eps[i]) * ym2 + eps[i] * one_hot(t[i], 3)
        total += soft_cross_entropy(model(adv), soft[None].float()).item() / 4
    assert out.loss.item() == pytest.approx(total, rel=1e-5)


def test_mtlat_draws_vary_per_pair_and_targets_cover_every_class(monkeypatch):
    """All labels 0, four classes: the targets are uniform over all four (the true class
    included, as Algorithm 1's y_target ~ U[0, N]), and lam and eps differ within a step."""
    from scipy.stats import chisquare

    from featlab.training.recipes import mtlat

    seen = dict(target=[], eps=[], lam=[])
    attack, mix = mtlat.targeted_fgsm_per_pair, mtlat.mix_half

    def spy_attack(model, images, target, eps):
        seen["target"].append(target.clone())
        seen["eps"].append(eps.clone())
        return attack(model, images, target, eps)

    def spy_mix(images, labels, n_classes, lam, generator):
        seen["lam"].append(torch.as_tensor(lam).clone())
        return mix(images, labels, n_classes, lam, generator)

    monkeypatch.setattr(mtlat, "targeted_fgsm_per_pair", spy_attack)
    monkeypatch.setattr(mtlat, "mix_half", spy_mix)
    model, x, y = Linear(n_classes=4), torch.rand(8, 3, 4, 4), torch.zeros(8, dtype=torch.long)
    state = ctx(n_classes=4, eps_max=0.025)
    for _ in range(150):
        mtlat.Mtlat().step(model, x, y, state)
    counts = torch.bincount(torch.cat(seen["target"]), minlength=4).numpy()
    assert counts.sum() == 600 and counts.min() > 100  # about 150 each, class 0 included
    assert chisquare(counts).pvalue > 0.001
    assert all(len(set(e.tolist())) == 4 for e in seen["eps"])
    assert all(len(set(lam.tolist())) == 4 for lam in seen["lam"])
    eps = torch.cat(seen["eps"])
    assert 0 <= eps.min() and eps.max() <= 0.025


def test_tlat_step_by_hand():
    """Half clean; half targeted FGSM towards t at eps ~ U[0, eps_max], label (1-eps) y + eps t."""
    from featlab.perturbations.attacks.tfgsm import random_other_class

    model, x = Linear(), torch.rand(8, 3, 4, 4) * 0.5 + 0.25
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = TRAIN_RECIPES.get("tlat")().step(model, x, y, ctx(eps_max=0.025))
    eps = np.random.default_rng(0).uniform(0, 0.025)
    t = random_other_class(y[4:], 3, torch.Generator().manual_seed(0))
    xa = x[4:].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xa), t), xa)
    adv = (x[4:] - eps * g.sign()).clamp(0, 1)
    soft = (1 - eps) * one_hot(y[4:], 3) + eps * one_hot(t, 3)
    expected = F.cross_entropy(model(x[:4]), y[:4]) + soft_cross_entropy(model(adv), soft)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.all(t != y[4:]) and 0 < eps <= 0.025


# -- the voting ensemble ------------------------------------------------------------------
def test_ensemble_logits_are_the_log_of_the_voted_mixture():
    nets = [make_net("resnet10-w16", 3) for _ in range(2)]
    singles = [n.eval() for n in nets]
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        probs = [torch.softmax(n((x - 0.5) / 0.25), 1) for n in singles]
        ens = EnsembleBackbone("e", VotingNet(nets, [0.25, 0.75]), ((.5,) * 3, (.25,) * 3))
        out = ens(x)
    assert torch.allclose(out.exp(), 0.25 * probs[0] + 0.75 * probs[1], atol=1e-6)
    assert ens.layer_dims()["penultimate"] == 256 and len(ens.bn_layers()) == 24


# -- training runs -------------------------------------------------------------------------
def test_parallel_mat_writes_a_voting_ensemble(data, tmp_path):
    report = train(spec(data, tmp_path / "p.pt", recipe="mat-parallel", strengths="0.01,0.05"))
    assert len(report["voting"]) == 2 and sum(report["voting"]) == pytest.approx(1)
    assert min(report["voting"]) >= 0 and report["n_val"] > 0
    model = load_trained(str(tmp_path / "p.pt"))
    assert model.voting == pytest.approx(report["voting"])
    assert model.task_classes == report["classes"] and model.recipe == "mat-parallel"


def test_strengths_auto_runs_the_walk_on_single_strength_networks(data, tmp_path):
    report = train(spec(data, tmp_path / "m.pt", recipe="mat-mixed", strengths="auto",
                        candidates=(0.01, 0.05, 0.2), epochs=1))
    sel = report["selection"]
    assert np.shape(sel["A"]) == (3, 4) and set(report["history"]) == {"candidates", "main"}
    assert sel["columns"] == [0.0, 0.01, 0.05, 0.2] and sel["rows"] == [0.01, 0.05, 0.2]
    assert report["strengths"] == sel["strengths"]
    assert sel["strengths"] == best_subset(sel["A"], sel["rows"], sel["columns"])["strengths"]
    assert all(c["G"] <= sel["G"] for c in sel["candidates"])


def test_fc_only_training_keeps_the_trunk(data, tmp_path):
    train(spec(data, tmp_path / "base.pt", epochs=1, role="scene"))
    train(spec(data, tmp_path / "fc.pt", epochs=1, init=f"base={tmp_path / 'base.pt'}",
               train_layers="fc", recipe="fgsm-at"))
    before = torch.load(tmp_path / "base.pt", weights_only=True)["members"][0]
    after = torch.load(tmp_path / "fc.pt", weights_only=True)["members"][0]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc.weight", "fc.bias"}
    assert load_trained(str(tmp_path / "fc.pt")).role == "scene"  # inherited from --init


def test_streamed_batches_equal_preloaded_ones(data):
    from featlab.data.registry import DATASETS
    from featlab.training.data import load_images

    dataset = DATASETS.get("synthetic")(data, image_size=32, seed=0)
    rows = np.flatnonzero(dataset.samples.split == "train")[:20]
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    pre, streamed = load_images(dataset, rows), load_images(dataset, rows, preload_bytes=0)
    assert pre.pixels is not None and streamed.pixels is None
    for (xa, ya), (xb, yb) in zip(pre.batches(order, 8), streamed.batches(order, 8)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_refusals_are_one_line(data, tmp_path):
    from featlab.data.synthetic import generate_synthetic

    for args, words in ((["--recipe", "nope"], "unknown training recipe"),
                        (["--recipe", "fgsm-at", "--strengths", "1.5"], "outside (0, 1]"),
                        (["--recipe", "tlat", "--eps-max", "2"], "--eps-max"),
                        (["--recipe", "mixup", "--strengths", "auto"], "--strengths")):
        code, out = run("train", "--root", data, "--out", tmp_path / "x.pt", *args)
        assert code == 2 and words in out and len(out.strip().splitlines()) == 1, out
    one = tmp_path / "one"
    generate_synthetic(str(one), seed=0, n_images=8, image_size=16, n_supercategories=1,
                       classes_per_supercategory=1)
    code, out = run("train", "--root", one, "--out", tmp_path / "y.pt", "--image-size", 16)
    assert code == 2 and "at least 2" in out
    assert not os.path.exists(tmp_path / "x.pt") and not os.path.exists(tmp_path / "y.pt")


@pytest.mark.parametrize("args, words", [
    (["--walk-penalty", "nan"], "--walk-penalty=nan"),
    (["--walk-penalty", "inf"], "--walk-penalty"),
    (["--walk-steps", "-3"], "--walk-steps=-3"), (["--walk-steps", "0"], "--walk-steps=0"),
    (["--walks", "0"], "--walks=0")])
def test_walk_options_are_refused_before_training(data, tmp_path, args, words):
    out = tmp_path / "w.pt"
    code, text = run("train", "--root", data, "--out", out, "--recipe", "mat-parallel",
                     "--strengths", "auto", "--epochs", "1", *args)
    assert code == 2 and words in text and len(text.strip().splitlines()) == 1, text
    assert os.listdir(tmp_path) == []  # no result, no checkpoint, no sidecar
    with pytest.raises(FeatlabError, match="--walk-penalty"):
        train(spec(data, out, recipe="standard", walk_penalty=float("nan")))
    assert os.listdir(tmp_path) == []


def test_help_lists_every_recipe():
    assert set(RECIPE_NAMES) == set(TRAIN_RECIPES.names())
    code, out = run("train", "--help")
    assert code == 0 and all(name in out for name in TRAIN_RECIPES.names())


def test_resume_after_sigkill_gives_the_same_weights(data, tmp_path):
    args = ["--root", data, "--recipe", "mtlat", "--arch", "resnet10-w16", "--epochs", "4",
            "--image-size", "32", "--batch-size", "8", "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=ROOT, FEATLAB_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    killed = tmp_path / "killed.pt"
    proc = subprocess.Popen([sys.executable, "-m", "featlab", "-q", "train", "--out",
                             str(killed), *args], env=env, stderr=subprocess.PIPE)
    ckpt = f"{killed}.main.ckpt"
    deadline = time.time() + 300  # generous: the first epoch on a loaded machine
    while not os.path.exists(ckpt) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.exists(ckpt) and not killed.exists(), proc.stderr.read().decode()
    assert torch.load(ckpt, weights_only=False)["epoch"] < 4
    code, out = run("train", "--out", killed, *args)  # continues after the last epoch
    assert code == 0 and not os.path.exists(ckpt), out
    code, _ = run("train", "--out", tmp_path / "whole.pt", *args)
    assert code == 0
    hashes = [json.loads((tmp_path / f"{n}.json").read_text())["weights_sha256"]
              for n in ("killed", "whole")]
    assert hashes[0] == hashes[1]
    assert (tmp_path / "killed.pt").read_bytes() == (tmp_path / "whole.pt").read_bytes()
    code, out = run("train", "--out", killed, *args)
    assert code == 0 and "nothing to do" in out


def test_cli_train_then_extract_with_the_trained_backbone(data, tmp_path):
    out = tmp_path / "weights" / "robust.pt"
    code, text = run("train", "--root", data, "--recipe", "tlat", "--arch", "resnet18",
                     "--epochs", 1, "--image-size", 32, "--batch-size", 16, "--device", "cpu",
                     "--out", out)
    assert code == 0 and "robust=" in text, text
    code, _ = run("train", "--root", data, "--recipe", "standard", "--epochs", 1,
                  "--arch", "resnet10-w16", "--image-size", 32, "--out",
                  tmp_path / "weights" / "plain.pt", "--device", "cpu")
    assert code == 0
    store = tmp_path / "store"
    code, text = run("extract", "--root", data, "--store", store, "--image-size", 32,
                     "--device", "cpu", "--backbones", f"robust={out},plain",
                     "--cache-dir", tmp_path, "--conditions",
                     "clean,fgsm:eps=0.03:target=fg,fgsm:eps=0.03:target=surrogate:surrogate=plain")
    assert code == 0, text
    from featlab import FeatureStore
    from featlab.data import DATASETS

    fs = FeatureStore(str(store))
    model = load_trained(str(out))
    logits = fs.read(backbone="robust", layer="logits", condition="clean")
    dataset = DATASETS.get("synthetic")(data, image_size=32, seed=0)
    images = torch.stack([torch.from_numpy(dataset.load(i)[0]) for i in range(8)])
    with torch.no_grad():
        assert np.allclose(logits[:8], model(images).numpy(), atol=1e-4)
    assert logits.shape[1] == len(model.task_classes) == 4
    infos = [fs.condition_info(c) for c in fs.conditions]
    attacked = {(i.get("head"), i.get("classifier")) for i in infos if i["name"] == "fgsm"}
    assert attacked == {("own-logits", "robust"), ("own-logits", "plain")}
    # white-box on its own logits: the stored attack outcome is the stored prediction's error
    key = fs.resolve_condition("fgsm:eps=0.03:target=fg")
    success = fs.read_array("attack/success", key)
    adv_pred = fs.read(backbone="robust", layer="logits", condition=key).argmax(1)
    assert np.array_equal(success, adv_pred != fs.labels())
    # robustness: each trained network's own logits are a row of Table 1, computed from them
    table = featlab.robustness(fs)
    rows = {r["classifier"]: r for r in table["rows"]}
    assert set(rows) == {"robust (logits)", "plain (logits)"}
    test = fs.labels(split="test")
    clean_pred = fs.read(backbone="plain", layer="logits", condition="clean", split="test")
    assert rows["plain (logits)"]["clean"] == pytest.approx((clean_pred.argmax(1) == test).mean())
