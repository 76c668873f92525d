"""Classifiers built from backbones and the heads fitted on their cached features.

These are what gradient attacks differentiate through: :class:`HeadClassifier` is the
backbones a head reads plus the head's own differentiable module
(:meth:`featlab.heads.base.Head.to_torch`): one backbone and its head is the fusion paper's
foreground or background classifier, both backbones and the joint head the fused model,
attacked end to end; any number of backbones and any head type work the same way.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import FeatlabError
from ..heads.records import head_from_arrays


class HeadClassifier(nn.Module):
    """``head([b.features(images) for b in backbones])`` for images in [0, 1].

    ``head`` maps a list of per-input feature tensors (in the backbones' order) to logits.
    """

    def __init__(self, backbones, head: nn.Module):
        super().__init__()
        self.backbones, self.head = nn.ModuleList(backbones), head

    @property
    def input_std(self) -> torch.Tensor:
        return self.backbones[0].input_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head([b.features(images) for b in self.backbones])


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
    :class:`HeadClassifier` over ``attrs["inputs"]`` in order, in eval mode.
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
    module = head_from_arrays(arrays, attrs).to_torch().to(device)
    return HeadClassifier(inputs, module).eval()
