"""The network a run trains: a fresh ResNet, or one initialised from a backbone.

``--init BACKBONE --train-layers all|fc`` is the fusion paper's CIFAR-10 protocol (Section
3.3): the object network fine-tuned in all layers from ImageNet weights, the scene network
trained in its last layer only from Places365 weights. With ``fc`` every other parameter is
frozen and its BatchNorm layers stay in eval mode (their running statistics are kept).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..backbones.base import IMAGENET_NORMALIZATION, Backbone
from ..backbones.ensemble import EnsembleBackbone
from ..backbones.trained import ARCHS, build_backbone, make_net, parse_backbone_entry
from ..errors import FeatlabError
from ..utils.seeding import derive_seed

_ARCH_SHAPES = {("BasicBlock", (2, 2, 2, 2), 64): "resnet18",
                ("BasicBlock", (3, 4, 6, 3), 64): "resnet34",
                ("Bottleneck", (3, 4, 6, 3), 64): "resnet50",
                ("BasicBlock", (1, 1, 1, 1), 16): "resnet10-w16"}


def arch_of(net: nn.Module) -> str:
    """The ARCHS name of a ResNet (from its block type, depths and first width)."""
    try:
        layers = (net.layer1, net.layer2, net.layer3, net.layer4)
        key = (type(net.layer1[0]).__name__, tuple(len(x) for x in layers), net.conv1.out_channels)
    except AttributeError:
        return "unknown"
    return _ARCH_SHAPES.get(key, "unknown")


def _from_init(spec, classes) -> tuple:
    """(net, normalization, role) copied from the ``--init`` backbone, its fc replaced when
    its outputs are not this dataset's classes."""
    name, path = parse_backbone_entry(spec.init)
    base = build_backbone(name, weights=path, cache_dir=spec.cache_dir)
    if isinstance(base, EnsembleBackbone):
        raise FeatlabError(f"--init {spec.init}: a voting ensemble cannot initialise one network; "
                           f"use a single network")
    arch = arch_of(base.net)
    if arch != spec.arch:
        raise FeatlabError(f"--init {spec.init} is a {arch} network; pass --arch {arch}")
    net = copy.deepcopy(base.net)
    if getattr(base, "task_classes", None) != list(classes):
        net.fc = nn.Linear(net.fc.in_features, len(classes))
    return net, base.normalization, base.role


def build_network(spec, dataset, member: int = 0) -> Backbone:
    """The network to train (CPU, train mode set by :func:`set_train_mode`).

    The random initialisation (fresh net, or the new fc of an ``--init`` net) is drawn from
    a generator seeded by ``(seed, member)``; the global RNG state is left as it was.
    """
    classes = list(dataset.samples.classes)
    ARCHS.get(spec.arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(spec.seed, "init", member))
        if spec.init:
            net, normalization, role = _from_init(spec, classes)
        else:
            net, normalization, role = (make_net(spec.arch, len(classes)),
                                        IMAGENET_NORMALIZATION, None)
    if dataset.normalization is not None:
        normalization = dataset.normalization
    model = Backbone(spec.name or "trained", net, normalization, role=spec.role or role)
    if spec.train_layers == "fc":
        for param in model.parameters():
            param.requires_grad_(False)
        for param in model.net.fc.parameters():
            param.requires_grad_(True)
    return model


def set_train_mode(model: Backbone, train_layers: str) -> None:
    """Train mode for what is trained; frozen layers (``fc`` only) stay in eval mode."""
    model.train()
    if train_layers == "fc":
        model.net.eval()
        model.net.fc.train()


def trainable(model: nn.Module) -> list:
    return [p for p in model.parameters() if p.requires_grad]
