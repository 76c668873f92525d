"""A voting ensemble of ResNets that behaves as one backbone (parallel MAT's result).

MAT paper, Section 4.2 and Eq. (4): S networks, each trained on clean and one adversarial
strength, combined by an upper-boundary decision unit with voting coefficients
``a_k >= 0, sum_k a_k = 1``. Here the unit mixes the members' predicted probabilities,

    p(y | x) = sum_k a_k softmax(z_k(x))_y,      logits(x) = log p(y | x),

so the ensemble's logits are a proper classifier (softmax of them is the mixture, argmax
is the vote) and gradient attacks differentiate through all members at once. Its
"penultimate" layer is the concatenation of the members' pooled features, shape
(n, S * d); its BatchNorm layers are every member's (``members.<k>.<layer>``).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Backbone


class VotingHead(nn.Module):
    """Members' linear classifiers and the voting coefficients.

    Parameters
    ----------
    fcs : list of S ``nn.Linear`` (d_k -> n_classes)
    voting : sequence of S floats, >= 0, summing to 1
    """

    def __init__(self, fcs, voting):
        super().__init__()
        self.fcs = nn.ModuleList(fcs)
        self.register_buffer("voting", torch.as_tensor(voting, dtype=torch.float32))
        self.splits = [fc.in_features for fc in fcs]
        self.in_features = sum(self.splits)
        self.out_features = fcs[0].out_features

    def member_logits(self, features: torch.Tensor) -> list:
        """Each member's logits, a list of S tensors of shape (n, n_classes)."""
        return [fc(part) for fc, part in zip(self.fcs, features.split(self.splits, dim=1))]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``log sum_k a_k softmax(z_k)`` of shape (n, n_classes), from (n, sum d_k)."""
        log_p = torch.stack([z.log_softmax(1) for z in self.member_logits(features)])
        log_a = self.voting.clamp_min(0).log().view(-1, 1, 1)
        return torch.logsumexp(log_p + log_a, dim=0)


class VotingNet(nn.Module):
    """Member trunks (ResNets with ``fc`` removed) + ``avgpool`` (identity) + ``fc`` (vote).

    ``avgpool`` and ``fc`` carry the names :func:`~featlab.backbones.capture_features`
    hooks, so the ensemble's penultimate features and logits are captured like a ResNet's.
    """

    def __init__(self, nets, voting):
        super().__init__()
        fcs = [net.fc for net in nets]
        for net in nets:
            net.fc = nn.Identity()
        self.members = nn.ModuleList(nets)
        self.avgpool = nn.Identity()
        self.fc = VotingHead(fcs, voting)


class EnsembleBackbone(Backbone):
    """A :class:`Backbone` over a :class:`VotingNet` (normalization applied once, inside)."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Concatenated pooled member features, shape (n, S * d)."""
        x = (images - self.mean) / self.std
        return torch.flatten(self.net.avgpool(torch.cat([m(x) for m in self.net.members], 1)), 1)

    def member_logits(self, images: torch.Tensor) -> list:
        """Each member's own logits for ``images``: S tensors of shape (n, n_classes)."""
        return self.net.fc.member_logits(self.features(images))

    @property
    def voting(self) -> list:
        return self.net.fc.voting.tolist()
