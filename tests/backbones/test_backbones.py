"""Backbones: feature capture is exact, loaders read the real checkpoint formats offline."""
import numpy as np
import pytest
import torch
import torchvision

from featlab.backbones import BACKBONES
from featlab.backbones.base import Backbone, capture_features, resolve_device
from featlab.backbones.places365 import PLACES_FILE
from featlab.backbones.imagenet import IMAGENET_FILE
from featlab.errors import FeatlabError


def _backbone(seed=0, classes=7):
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None, num_classes=classes)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return Backbone("test", net)


def test_capture_equals_bn_of_its_input():
    model = _backbone()
    inputs = {}
    handles = [m.register_forward_pre_hook(
        lambda mod, args, name=name: inputs.__setitem__(name, args[0].detach().clone()))
        for name, m in model.bn_layers()]
    images = torch.rand(3, 3, 48, 48)
    with capture_features(model) as feats:
        logits = model(images)
    for h in handles:
        h.remove()
    assert len(model.bn_layers()) == 20
    modules = dict(model.bn_layers())
    for name, module in modules.items():
        expected = module(inputs[name]).mean(dim=(2, 3))
        torch.testing.assert_close(feats[name], expected, rtol=0, atol=1e-6)
    # the in-place ReLU / residual add really do overwrite the BN output afterwards:
    # a hook that kept the tensor (instead of reducing it) would be wrong for these layers
    assert (feats["layer1.0.bn2"] < 0).any()
    torch.testing.assert_close(feats["logits"], logits)
    torch.testing.assert_close(feats["penultimate"], model.features(images))
    assert feats["penultimate"].shape == (3, 512)
    assert list(model.layer_dims())[-2:] == ["penultimate", "logits"]


def test_normalization_inside_the_wrapper():
    model = _backbone()
    images = torch.rand(2, 3, 32, 32)
    mean, std = model.mean, model.std
    direct = model.net((images - mean) / std)
    torch.testing.assert_close(model(images), direct)
    model.set_normalization(((0.5,) * 3, (0.25,) * 3))
    torch.testing.assert_close(model(images), model.net((images - 0.5) / 0.25))


def test_imagenet_loader_reads_torchvision_state_dict(tmp_path, monkeypatch):
    net = torchvision.models.resnet18(weights=None)
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(net.state_dict(), hub / IMAGENET_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = BACKBONES.get("imagenet-resnet18")()
    torch.testing.assert_close(model.net.conv1.weight, net.conv1.weight)
    explicit = BACKBONES.get("imagenet-resnet18")(weights=str(hub / IMAGENET_FILE))
    assert explicit.weights_sha256 == model.weights_sha256 and len(model.weights_sha256) == 64


def test_places365_loader_reads_the_csail_checkpoint_format(tmp_path):
    net = torchvision.models.resnet18(weights=None, num_classes=365)
    checkpoint = {"epoch": 90, "arch": "resnet18", "best_prec1": np.float64(54.74),
                  "state_dict": {"module." + k: v for k, v in net.state_dict().items()}}
    path = tmp_path / PLACES_FILE
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)  # 2017-style pickle
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # the format really needs the fallback
    model = BACKBONES.get("places365-resnet18")(weights=str(path))
    assert model.net.fc.out_features == 365
    torch.testing.assert_close(model.net.layer4[1].bn2.running_var, net.layer4[1].bn2.running_var)


@pytest.mark.parametrize("name", ["imagenet-resnet18", "places365-resnet18"])
def test_missing_weights_is_one_actionable_line(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("FEATLAB_PLACES365", raising=False)
    with pytest.raises(FeatlabError) as err:
        BACKBONES.get(name)(cache_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and "not found" in message and str(tmp_path) in message
    assert "--weights" in message
    if name == "imagenet-resnet18":  # the command it gives must be one that runs
        assert "torchvision.models.resnet18(weights='IMAGENET1K_V1')" in message


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=10).state_dict(), path)
    with pytest.raises(FeatlabError, match="not a torchvision ResNet18"):
        BACKBONES.get("imagenet-resnet18")(weights=str(path))


def test_unknown_backbone_lists_known():
    with pytest.raises(FeatlabError, match="places365-resnet18"):
        BACKBONES.get("resnet50")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(FeatlabError, match="no CUDA"):
            resolve_device("cuda")


def test_synthetic_backbone_pretrains_once_then_reuses_the_cache(tmp_path):
    from featlab.backbones.synthetic import build_synthetic, recipe_for, recipe_hash

    tiny = dict(n_train=64, n_val=32, epochs=1, image_size=32, batch_size=32)
    first = build_synthetic("scene", cache_dir=str(tmp_path), **tiny)
    files = sorted(p.name for p in (tmp_path / "weights").iterdir())
    assert files == [f"synthetic-scene-{recipe_hash(recipe_for('scene', **tiny))}.{ext}"
                     for ext in ("json", "pt")]
    report = first.pretraining_report
    assert 0 <= report["val_accuracy"] <= 1 and report["recipe"]["n_train"] == 64
    mtime = (tmp_path / "weights" / files[1]).stat().st_mtime_ns
    second = build_synthetic("scene", cache_dir=str(tmp_path), **tiny)
    assert second.weights_sha256 == first.weights_sha256
    assert (tmp_path / "weights" / files[1]).stat().st_mtime_ns == mtime
    other = recipe_hash(recipe_for("scene", **dict(tiny, epochs=2)))
    assert other != recipe_hash(recipe_for("scene", **tiny))
