"""Classifiers built from backbones and the heads fitted on their cached features.

These are what gradient attacks differentiate through: :class:`HeadClassifier` is the
backbones a stored head reads plus that head — one backbone and its head (the fusion
paper's foreground or background classifier), two and the joint head (the fused model,
attacked end to end), or any number (a head over N inputs), each differentiated through
every backbone it reads.
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


class BlockLinear(nn.Module):
    """A linear head over several inputs: ``linear(concat(blocks))``.

    Maps a list of per-input feature tensors, each of shape (n, d_i), to logits (n, C) —
    the signature every head module takes here.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, blocks: list) -> torch.Tensor:
        return self.linear(torch.cat(list(blocks), dim=1))


class HeadClassifier(nn.Module):
    """``head([b.features(images) for b in backbones])`` for images in [0, 1].

    Parameters
    ----------
    backbones : list of :class:`~featlab.backbones.base.Backbone`, in the head's input order
    head : nn.Module mapping a list of per-input features (n, d_i) to logits (n, C)
    """

    def __init__(self, backbones: list, head: nn.Module):
        super().__init__()
        self.backbones, self.head = nn.ModuleList(backbones), head

    @property
    def input_std(self) -> torch.Tensor:
        """The first input's normalisation std (``eps_space=normalized`` reads eps in it)."""
        return self.backbones[0].input_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head([b.features(images) for b in self.backbones])


def head_module(arrays: dict, attrs: dict) -> nn.Module:
    """The differentiable module of a stored head: list of per-input features -> logits."""
    return BlockLinear(linear_from_arrays(arrays))


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
    :class:`HeadClassifier` over the head's inputs in order, in eval mode.
    """
    if attrs.get("layer") != "penultimate":
        raise FeatlabError(f"head {name} was fitted on layer {attrs.get('layer')}; {purpose} "
                           f"needs a penultimate-layer head (fit-head --layer penultimate)")
    missing = [b for b in attrs.get("inputs", []) if b not in models]
    if missing or not attrs.get("inputs"):
        raise FeatlabError(f"head {name} reads backbones {attrs.get('inputs')}, not all among "
                           f"{', '.join(models)}; use the store's backbones")
    inputs = [models[b] for b in attrs["inputs"]]
    device = next(inputs[0].parameters()).device
    return HeadClassifier(inputs, head_module(arrays, attrs).to(device)).eval()
