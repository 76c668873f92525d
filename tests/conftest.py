"""Shared fixtures: tiny checkpoints in the real formats, quiet progress bars."""
import os

import pytest
import torch
import torchvision

os.environ.setdefault("FEATLAB_NO_PROGRESS", "1")


def save_synthetic_checkpoint(path, num_classes=5, seed=0):
    """A random-init ResNet18 in featlab's synthetic-backbone checkpoint format."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    # non-trivial BN statistics so captured features differ from a fresh net
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": net.state_dict(), "report": {"test": True}}, path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """weights={name: path} for the two synthetic backbones, random-initialised."""
    folder = tmp_path_factory.mktemp("weights")
    return {"synthetic-object": save_synthetic_checkpoint(folder / "object.pt", 6, seed=1),
            "synthetic-scene": save_synthetic_checkpoint(folder / "scene.pt", 4, seed=2)}
