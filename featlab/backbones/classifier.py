"""Classifiers built from backbones and the linear heads fitted on their cached features.

These are what gradient attacks differentiate through: ``HeadClassifier`` is one backbone
plus its head (the fusion paper's foreground or background classifier), ``JointClassifier``
both backbones plus the joint head (the fused model, attacked end to end).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
