"""Classification heads on cached features, dispatched by name through :data:`HEADS`.

A head reads the features of one or more *inputs* (backbones, in order) and predicts the
class: ``linear`` (the fusion paper's fully connected layer, Section 2.1), ``mlp`` (one hidden
layer) and ``gated`` (one linear expert per input, mixed by a softmax gate). The contract is
:class:`~.base.Head`; importing this package loads no head type (they import torch):
``HEADS.get(name)`` does.
"""
from .registry import HEADS

__all__ = ["HEADS"]
