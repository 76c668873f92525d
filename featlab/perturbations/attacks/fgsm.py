"""FGSM: the fast gradient sign method.

Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015
(arXiv:1412.6572); the fusion paper's attack (Section 2.3):

    eta = eps * sign(grad_x J(theta, x, y)),    x_adv = clip(x + eta, 0, 1).

The sign does not depend on ``eps``, so :meth:`FGSM.perturb_many` takes one gradient per
batch and applies every strength to it (the same arithmetic as one ``perturb`` per
strength, bit for bit). Numerics follow ``torchattacks.FGSM``.
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from ._base import Attack
from ._common import input_gradient, space_scale


@PERTURBATIONS.register("fgsm")
class FGSM(Attack):
    """Untargeted FGSM, L-inf budget ``eps`` (Goodfellow et al. 2015; fusion paper Sec. 2.3)."""

    name = "fgsm"

    def prepare(self, images, labels, model, generator) -> dict:
        target = self.choose_target(images, labels, model, generator)
        grad = input_gradient(model, images, target, targeted=self.targeted)
        return {"target": target, "sign": grad.sign()}

    def choose_target(self, images, labels, model, generator) -> torch.Tensor:
        """The labels whose loss is climbed (true labels; targets in :class:`TFGSM`)."""
        return labels

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        eps = params["eps"] * space_scale(params["eps_space"], model, images)
        return torch.clamp(images + eps * shared["sign"], min=0, max=1)
