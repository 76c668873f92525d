"""Targeted FGSM towards a random class.

Kurakin, Goodfellow & Bengio, "Adversarial machine learning at scale", ICLR 2017
(arXiv:1611.01236), the one-step target class method; the targeted FGSM of TLAT/M-TLAT
(Laugros et al., mixup-targeted-labeling paper, Eq. 6 and Algorithm 1):

    x_adv = clip(x - eps * sign(grad_x J(theta, x, t)), 0, 1),

with ``t`` drawn uniformly among the classes other than the true one, from ``generator``
only. The draw matches ``torchattacks`` ``set_mode_targeted_random`` (one uniform per
sample, index into the other classes in order). The targets are drawn once per batch and
shared by every strength of ``perturb_many``; ``attack_many`` returns them.
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from .fgsm import FGSM


def random_other_class(labels: torch.Tensor, n_classes: int,
                       generator: torch.Generator) -> torch.Tensor:
    """A class != ``labels[i]`` for each sample, uniform over the other ``n_classes - 1``."""
    if generator is None:
        raise ValueError("a random target needs a torch.Generator")
    if n_classes < 2:
        raise ValueError("a targeted attack needs at least two classes")
    u = torch.rand(len(labels), generator=generator, device=generator.device)
    index = ((n_classes - 1) * u).long().to(labels.device)
    return index + (index >= labels).long()


@PERTURBATIONS.register("tfgsm")
class TFGSM(FGSM):
    """Targeted FGSM at a random class != the true one (Kurakin et al. 2017)."""

    name = "tfgsm"
    targeted = True

    def choose_target(self, images, labels, model, generator) -> torch.Tensor:
        with torch.no_grad():
            n_classes = model(images[:1]).shape[1]
        return random_other_class(labels, n_classes, generator)
