"""The backbone wrapper and feature capture.

A :class:`Backbone` takes images in ``[0, 1]`` and normalizes them itself, so perturbations
and attacks never see normalized pixels. :func:`capture_features` records, in one forward
pass, the spatial mean of every BatchNorm layer's output, the penultimate average pool and
the logits (fusion paper Section 3.1: "features were extracted from the batch normalization
layers").

BatchNorm outputs are overwritten after they are produced (``relu(inplace=True)`` and the
residual ``out += identity`` in torchvision's BasicBlock), so the hook reduces the output
*inside* the hook, before the next in-place operation runs; keeping a reference to the
output tensor would record the overwritten values.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator, Optional

import torch
from torch import nn

from ..errors import FeatlabError

IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FeatlabError(f"--device {device}: no CUDA GPU is visible; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise FeatlabError(f"--device {device!r} is not a device; use auto, cpu or cuda[:N]") from None


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Backbone(nn.Module):
    """A ResNet with input normalization inside.

    Parameters
    ----------
    name : str
    net : torchvision ResNet (its ``fc`` gives the backbone's own logits)
    normalization : (mean, std) 3-tuples applied to images in [0, 1]
    weights_sha256 : str — hash of the weights file the parameters came from
    role : ``"object"``, ``"scene"`` or None — which side of the fusion it serves
        (:mod:`featlab.backbones.roles`)
    """

    def __init__(self, name: str, net: nn.Module, normalization=IMAGENET_NORMALIZATION,
                 weights_sha256: str = "", weights_path: str = "", role=None):
        super().__init__()
        self.name, self.net, self.role = name, net, role
        self.weights_sha256, self.weights_path = weights_sha256, weights_path
        self.set_normalization(normalization)
        self.eval()

    def set_normalization(self, normalization) -> None:
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in normalization)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def normalization(self):
        return (tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()))

    @property
    def input_std(self) -> torch.Tensor:
        return self.std.flatten()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate (average-pooled) features, shape (n, 512)."""
        net = self.net
        x = (images - self.mean) / self.std
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(images))

    def bn_layers(self) -> list[tuple[str, nn.Module]]:
        return [(n, m) for n, m in self.net.named_modules() if isinstance(m, nn.BatchNorm2d)]

    def layer_dims(self) -> dict[str, int]:
        """Captured layer name -> feature dimension, in capture order."""
        dims = {name: m.num_features for name, m in self.bn_layers()}
        dims["penultimate"] = self.net.fc.in_features
        dims["logits"] = self.net.fc.out_features
        return dims


@contextlib.contextmanager
def capture_features(backbone: Backbone, layers=None) -> Iterator[dict]:
    """Within the block, every forward of ``backbone`` fills the yielded dict.

    Keys are BN module names (``bn1``, ``layer1.0.bn2``, ``layer2.0.downsample.1``, ...),
    ``penultimate`` and ``logits``; values are (n, C) float32 tensors on the model's device.
    ``layers`` (a collection of those names) hooks only these; None hooks every one.
    """
    store: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name):
        def hook(module, inputs, output):
            store[name] = output.mean(dim=(2, 3))

        return hook

    wanted = None if layers is None else set(layers)
    for name, module in backbone.bn_layers():
        if wanted is None or name in wanted:
            handles.append(module.register_forward_hook(make_hook(name)))
    if wanted is None or "penultimate" in wanted:
        handles.append(backbone.net.avgpool.register_forward_hook(
            lambda m, i, o: store.__setitem__("penultimate", torch.flatten(o, 1))))
    if wanted is None or "logits" in wanted:
        handles.append(backbone.net.fc.register_forward_hook(
            lambda m, i, o: store.__setitem__("logits", o)))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def load_state_dict_checked(net: nn.Module, state: dict, name: str, path) -> None:
    """Load ``state`` strictly; a mismatch becomes a one-line FeatlabError."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise FeatlabError(f"{path} is not a {name} checkpoint ({first[:160]}); "
                           f"check the --weights file") from None


def missing_weights(name: str, looked: list, how: str) -> FeatlabError:
    places = "; ".join(str(p) for p in looked)
    return FeatlabError(f"{name} weights not found (looked in: {places}). {how}")


def first_existing(paths) -> Optional[str]:
    import os

    for path in paths:
        if path and os.path.isfile(path):
            return str(path)
    return None
