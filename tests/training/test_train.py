"""featlab train: recipes against hand-computed cases, the voting ensemble, the random walk
on single-strength networks, resume after SIGKILL, the CLI end to end, the result as a
backbone (the walk and the voting themselves: tests/mat/test_mat.py), the crafting model, the
clean warm-up and hostile input."""
import importlib
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

import featlab
from featlab.backbones.trained import load_trained
from featlab.backbones.ensemble import EnsembleBackbone, VotingNet
from featlab.backbones.trained import make_net
from featlab.cli.train_cmd import RECIPE_NAMES
from featlab.errors import FeatlabError
from featlab.mat import best_subset
from featlab.training import TRAIN_RECIPES, TrainSpec, train
from featlab.training.labels import mixup, one_hot, soft_cross_entropy, tlat_label
from featlab.training.recipes import StepContext
from featlab.training.recipes.mat_mixed import mat_loss
from conftest import run_cli as run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    assert np.shape(sel["A"]) == (3, 4)
    assert set(report["history"]) == {"crafting", "candidates", "main"}
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


# -- hostile input ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_data(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("train-other") / "data"
    generate_synthetic(str(root), seed=4, n_images=64, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    return str(root)


def _crash_on_save(monkeypatch):
    """Make the run die after its last epoch, before the file is written (its checkpoint
    stays, as after a kill)."""
    train_module = importlib.import_module("featlab.training.train")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "save_trained", crash)


def test_the_fingerprint_covers_the_training_data(data, other_data, tmp_path, monkeypatch):
    """A run killed on one dataset does not continue on another, and a network trained on
    one is not 'already trained' for another."""
    out = tmp_path / "d.pt"
    with monkeypatch.context() as patch:
        _crash_on_save(patch)
        with pytest.raises(KeyboardInterrupt):
            train(spec(data, out, epochs=1))
    assert os.path.exists(f"{out}.main.ckpt") and not out.exists()
    with pytest.raises(FeatlabError, match="other settings"):
        train(spec(other_data, out, epochs=1))
    assert not out.exists()
    report = train(spec(data, out, epochs=1))  # the same data continues after the last epoch
    assert not report["already_done"] and not os.path.exists(f"{out}.main.ckpt")
    assert train(spec(data, out, epochs=1))["already_done"]
    with pytest.raises(FeatlabError, match="other settings"):
        train(spec(other_data, out, epochs=1))
    # the same root with another sample selection is other data too
    with pytest.raises(FeatlabError, match="other settings"):
        train(spec(data, out, epochs=1, limit=40))


def test_an_unwritable_output_is_refused_before_training(data, tmp_path, monkeypatch):
    train_module = importlib.import_module("featlab.training.train")

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "load_images", never)
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    code, out = run("train", "--root", data, "--out", folder, "--epochs", 1)
    assert code == 2 and "is a directory" in out and len(out.strip().splitlines()) == 1, out
    assert os.listdir(folder) == []
    under_a_file = tmp_path / "file.txt"
    under_a_file.write_text("x")
    code, out = run("train", "--root", data, "--out", under_a_file / "n.pt", "--epochs", 1)
    assert code == 2 and "not a directory" in out and len(out.strip().splitlines()) == 1, out


def test_a_read_only_output_folder_is_refused_before_training(data, tmp_path, monkeypatch):
    train_module = importlib.import_module("featlab.training.train")

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "load_images", never)
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    if os.geteuid() != 0:
        os.chmod(source, 0o555)
        view = source
    elif subprocess.run(["mount", "--bind", str(source), str(view)]).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if view != source and subprocess.run(["mount", "-o", "remount,bind,ro",
                                              str(view)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        code, out = run("train", "--root", data, "--out", view / "n.pt", "--epochs", 1)
        assert code == 2 and "cannot write" in out and len(out.strip().splitlines()) == 1, out
        assert os.listdir(source) == []
    finally:
        if view != source:
            subprocess.run(["umount", str(view)])
        os.chmod(source, 0o755)


def test_diverged_training_saves_nothing(data, tmp_path):
    out = tmp_path / "nan.pt"
    code, text = run("train", "--root", data, "--out", out, "--lr", "1e6", "--epochs", 6,
                     "--batch-size", 8, "--arch", "resnet10-w16", "--image-size", 32,
                     "--device", "cpu")
    assert code == 2 and "non-finite" in text and len(text.strip().splitlines()) == 1, text
    assert os.listdir(tmp_path) == []  # no network, no sidecar, no checkpoint


def test_a_trained_file_with_non_finite_weights_is_refused_and_extract_writes_nothing(
        data, tmp_path):
    from featlab.backbones.trained import read_trained, save_trained

    state = make_net("resnet10-w16", 4).state_dict()
    path = tmp_path / "nan.pt"
    save_trained(str(path), [state], arch="resnet10-w16", classes=list("abcd"),
                 normalization=((.5,) * 3, (.25,) * 3), image_size=32, recipe="standard")
    payload = torch.load(path, weights_only=True)
    payload["members"][0]["fc.bias"][0] = float("nan")
    with pytest.raises(FeatlabError, match="NaN or inf"):
        save_trained(str(tmp_path / "x.pt"), payload["members"], arch="resnet10-w16",
                     classes=list("abcd"), normalization=((.5,) * 3, (.25,) * 3),
                     image_size=32, recipe="standard")
    assert not (tmp_path / "x.pt").exists()
    torch.save(payload, path)  # as a diverged run of an earlier featlab left it
    with pytest.raises(FeatlabError, match="non-finite"):
        read_trained(str(path))
    store = tmp_path / "store"
    code, text = run("extract", "--root", data, "--store", store, "--image-size", 32,
                     "--device", "cpu", "--backbones", f"nan={path}", "--conditions", "clean")
    assert code == 2 and "non-finite" in text and len(text.strip().splitlines()) == 1, text
    assert not store.exists()


def test_a_trained_file_without_its_sidecar_is_judged_by_its_own_fingerprint(data, tmp_path):
    out = tmp_path / "lost.pt"
    train(spec(data, out, epochs=1))
    sidecar = tmp_path / "lost.json"
    sidecar.unlink()
    report = train(spec(data, out, epochs=1))
    assert report["already_done"] and json.loads(sidecar.read_text())["format"] == \
        "featlab-trained-backbone"  # the sidecar is written back
    sidecar.unlink()
    with pytest.raises(FeatlabError, match="other settings"):
        train(spec(data, out, epochs=2))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a network")
    with pytest.raises(FeatlabError, match="not a readable torch file"):
        train(spec(data, junk, epochs=1))
    assert junk.read_bytes() == b"not a network"


# -- the crafting model (MAT Section 5.1) ------------------------------------------------------
def test_static_sets_are_fgsm_of_the_crafting_model_bit_for_bit(data):
    from featlab.backbones.base import Backbone
    from featlab.data.registry import DATASETS
    from featlab.perturbations.attacks.fgsm import FGSM
    from featlab.training.crafting import StaticSets
    from featlab.training.data import load_images
    from featlab.training.recipes.base import fgsm_examples

    dataset = DATASETS.get("synthetic")(data, image_size=32, seed=0)
    rows = np.flatnonzero(dataset.samples.split == "train")[:20]
    torch.manual_seed(0)
    crafter = Backbone("c", make_net("resnet10-w16", 4), ((.5,) * 3, (.25,) * 3)).eval()
    order = torch.arange(20)
    pre, streamed = load_images(dataset, rows), load_images(dataset, rows, preload_bytes=0)
    sets = [StaticSets(crafter, pre, "cpu"), StaticSets(crafter, streamed, "cpu")]
    assert sets[0].signs.dtype == torch.int8 and sets[1].signs is None
    (x, y, idx), = pre.batches(order, 32, positions=True)
    expected = FGSM().perturb_many(x, [dict(eps=0.01), dict(eps=0.05)], labels=y, model=crafter)
    for static in sets:
        got = fgsm_examples(None, x, y, [0.01, 0.05], static.sign(idx, x, y))
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert not torch.equal(expected[0], x)


def test_evaluation_crafted_by_a_fixed_model(data):
    from featlab.perturbations.attacks.fgsm import FGSM
    from featlab.training.data import Images
    from featlab.training.evaluate import fgsm_correct

    torch.manual_seed(0)
    pixels = (torch.rand(30, 3, 4, 4) * 255).round().to(torch.uint8)
    labels = torch.randint(0, 3, (30,))
    images = Images(None, np.arange(30), labels, pixels)
    victim, crafter = Linear(seed=1), Linear(seed=2)
    x = pixels.float() / 255
    by_hand = []
    for source in (crafter, victim):
        advs = FGSM().perturb_many(x, [dict(eps=0.1), dict(eps=0.3)], labels=labels, model=source)
        with torch.no_grad():
            by_hand.append([(victim(a).argmax(1) == labels).sum().item() for a in advs])
    got = fgsm_correct(victim, images, [0.1, 0.3], device="cpu", crafter=crafter)
    assert got.tolist() == by_hand[0] and by_hand[0] != by_hand[1]
    assert fgsm_correct(victim, images, [0.1, 0.3], device="cpu").tolist() == by_hand[1]


def test_auto_crafting_model_is_a_fixed_standard_network(data, tmp_path):
    """auto = a standard network trained first, then its static sets: training on the same
    network given as a file gives the same weights; changing that file is other settings."""
    auto = tmp_path / "auto.pt"
    report = train(spec(data, auto, recipe="mat-mixed", strengths="0.01,0.05"))
    crafting = tmp_path / "auto-crafting.pt"
    assert report["crafting"]["file"] == str(crafting) and set(report["history"]) == \
        {"crafting", "main"}
    model = load_trained(str(crafting))
    assert model.recipe == "standard" and model.task_classes == report["classes"]
    standard = train(spec(data, tmp_path / "standard.pt", epochs=2))  # its own init seed
    assert standard["weights_sha256"] != report["crafting"]["weights_sha256"]
    given = train(spec(data, tmp_path / "given.pt", recipe="mat-mixed", strengths="0.01,0.05",
                       crafting_model=f"c={crafting}"))
    assert given["weights_sha256"] == report["weights_sha256"]
    assert set(given["history"]) == {"main"} and given["crafting"]["model"] == f"c={crafting}"
    selfmade = train(spec(data, tmp_path / "self.pt", recipe="mat-mixed", strengths="0.01,0.05",
                          crafting_model="self"))
    assert selfmade["weights_sha256"] != report["weights_sha256"] and "crafting" not in selfmade
    torch.save(dict(torch.load(crafting, weights_only=True), recipe="edited"), crafting)
    with pytest.raises(FeatlabError, match="other settings"):
        train(spec(data, tmp_path / "given.pt", recipe="mat-mixed", strengths="0.01,0.05",
                   crafting_model=f"c={crafting}"))


def test_crafting_model_refusals(data, tmp_path):
    from featlab.backbones.trained import save_trained

    other = tmp_path / "other.pt"
    save_trained(str(other), [make_net("resnet10-w16", 4).state_dict()], arch="resnet10-w16",
                 classes=list("wxyz"), normalization=((.5,) * 3, (.25,) * 3), image_size=32,
                 recipe="standard")
    for args, words in ((["--recipe", "tlat", "--crafting-model", "auto"], "applies to fgsm-at"),
                        (["--recipe", "fgsm-at", "--crafting-model", f"o={other}"],
                         "does not classify")):
        code, out = run("train", "--root", data, "--out", tmp_path / "x.pt", "--epochs", 1,
                        "--image-size", 32, "--arch", "resnet10-w16", *args)
        assert code == 2 and words in out and len(out.strip().splitlines()) == 1, out
    assert sorted(os.listdir(tmp_path)) == ["other.json", "other.pt"]
    taken = tmp_path / "m-crafting.pt"
    taken.write_bytes(b"someone else's file")
    code, out = run("train", "--root", data, "--out", tmp_path / "m.pt", "--epochs", 1,
                    "--image-size", 32, "--arch", "resnet10-w16", "--recipe", "mat-mixed")
    assert code == 2 and "m-crafting.pt" in out and taken.read_bytes() == b"someone else's file"


# -- the clean warm-up ---------------------------------------------------------------------------
def test_clean_epochs_default_to_half_for_self_crafted_fgsm():
    def resolved(**kw):
        return TrainSpec(out="x.pt", root="r", epochs=9, **kw).resolved_clean_epochs()

    assert resolved(recipe="fgsm-at") == 4
    assert resolved(recipe="mat-mixed") == 0 and resolved(recipe="mat-parallel") == 0
    assert resolved(recipe="mat-mixed", crafting_model="self") == 4
    assert resolved(recipe="fgsm-at", crafting_model="auto") == 0
    assert resolved(recipe="tlat") == 0 and resolved(recipe="standard") == 0
    assert resolved(recipe="fgsm-at", clean_epochs=0) == 0
    assert resolved(recipe="mtlat", clean_epochs=3) == 3


def test_clean_epochs_train_standard_first(data, tmp_path):
    """The warm-up epochs are the standard recipe's epochs, step for step."""
    standard = train(spec(data, tmp_path / "s.pt", epochs=2))["history"]["main"]
    warm = train(spec(data, tmp_path / "w.pt", epochs=2, recipe="fgsm-at",
                      clean_epochs=1))["history"]["main"]
    cold = train(spec(data, tmp_path / "c.pt", epochs=2, recipe="fgsm-at",
                      clean_epochs=0))["history"]["main"]
    assert [h["recipe"] for h in warm] == ["standard", "fgsm-at"]
    assert warm[0]["loss"] == standard[0]["loss"] and cold[0]["loss"] != standard[0]["loss"]
    assert warm[1]["loss"] != standard[1]["loss"]
    code, out = run("train", "--root", data, "--out", tmp_path / "x.pt", "--epochs", 2,
                    "--clean-epochs", 2, "--recipe", "fgsm-at")
    assert code == 2 and "--clean-epochs 2" in out and len(out.strip().splitlines()) == 1
