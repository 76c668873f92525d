"""Classifiers built from backbones and the linear heads fitted on their cached features.

These are what gradient attacks differentiate through: ``HeadClassifier`` is one backbone
plus its head (the fusion paper's foreground or background classifier), ``JointClassifier``
both backbones plus the joint head (the fused model, attacked end to end).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import FeatlabError


def linear_from_arrays(arrays: dict) -> nn.Linear:
    """An ``nn.Linear`` in raw feature space from a stored head (``coef``, ``intercept``)."""
    coef = torch.from_numpy(np.asarray(arrays["coef"], dtype=np.float32))
    layer = nn.Linear(coef.shape[1], coef.shape[0])
    with torch.no_grad():
        layer.weight.copy_(coef)
        layer.bias.copy_(torch.from_numpy(np.asarray(arrays["intercept"], dtype=np.float32)))
    return layer.eval()


class HeadClassifier(nn.Module):
    """``head(backbone.features(images))`` for images in [0, 1]."""

    def __init__(self, backbone, head: nn.Linear):
        super().__init__()
        self.backbone, self.head = backbone, head

    @property
    def input_std(self) -> torch.Tensor:
        return self.backbone.input_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.features(images))


class JointClassifier(nn.Module):
    """``head(concat(fg.features(images), bg.features(images)))`` — the fused model."""

    def __init__(self, fg, bg, head: nn.Linear):
        super().__init__()
        self.fg, self.bg, self.head = fg, bg, head

    @property
    def input_std(self) -> torch.Tensor:
        return self.fg.input_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.fg.features(images), self.bg.features(images)], dim=1))


def classifier_from_head(arrays: dict, attrs: dict, models: dict, *, name: str = "head",
                         purpose: str = "this") -> nn.Module:
    """The classifier images -> logits made of a stored head and its backbones.

    Parameters
    ----------
    arrays, attrs : a head as :func:`featlab.store.heads.load_head` returns it; it must have
        been fitted on the penultimate layer (what ``Backbone.features`` gives).
    models : dict backbone name -> :class:`~featlab.backbones.base.Backbone`; must hold
        every name in ``attrs["inputs"]``.

    Returns
    -------
    :class:`HeadClassifier` (one input) or :class:`JointClassifier` (two), in eval mode.
    """
    if attrs.get("layer") != "penultimate":
        raise FeatlabError(f"head {name} was fitted on layer {attrs.get('layer')}; {purpose} "
                           f"needs a penultimate-layer head (fit-head --layer penultimate)")
    missing = [b for b in attrs.get("inputs", []) if b not in models]
    if missing or not attrs.get("inputs"):
        raise FeatlabError(f"head {name} reads backbones {attrs.get('inputs')}, not all among "
                           f"{', '.join(models)}; use the store's backbones")
    inputs = [models[b] for b in attrs["inputs"]]
    linear = linear_from_arrays(arrays)
    device = next(inputs[0].parameters()).device
    linear = linear.to(device)
    if len(inputs) == 2:
        return JointClassifier(inputs[0], inputs[1], linear).eval()
    return HeadClassifier(inputs[0], linear).eval()
