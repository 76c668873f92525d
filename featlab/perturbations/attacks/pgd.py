"""PGD: projected gradient descent with a random start, L-inf.

Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards deep learning models resistant to
adversarial attacks", ICLR 2018 (arXiv:1706.06083), Eq. (2):

    x_0 = clip(x + U(-eps, eps), 0, 1)        (random start, optional)
    x_{t+1} = Proj_{B(x, eps) ∩ [0, 1]}( x_t + alpha * sign(grad_x J(theta, x_t, y)) ).

``alpha=0`` (the default) means ``alpha = 2.5 * eps / steps`` (Madry et al.'s choice). The
random start is drawn from ``generator`` only, with the same draw as ``torchattacks.PGD``
makes from an identically seeded global generator. Numerics follow ``torchattacks.PGD``.
"""
from __future__ import annotations

import dataclasses

import torch

from ..registry import PERTURBATIONS
from ..base import Param
from ._base import LINF_PARAMS, Attack, auto_alpha
from ._common import boolean, input_gradient, project_linf, space_scale, uniform_start
from .bim import ALPHA, STEPS

MADRY_ALPHA = 2.5
PGD_ALPHA = dataclasses.replace(ALPHA, help="step size in the units of eps; 0 = 2.5 * eps / steps")
RANDOM_START = Param("random_start", boolean, default=True,
                     help="start at a uniform random point of the eps ball")


@PERTURBATIONS.register("pgd")
class PGD(Attack):
    """Projected gradient descent, L-inf, random start (Madry et al. 2018)."""

    name = "pgd"
    params = LINF_PARAMS + (PGD_ALPHA, STEPS, RANDOM_START)

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        scale = space_scale(params["eps_space"], model, images)
        eps, alpha = params["eps"] * scale, auto_alpha(params, MADRY_ALPHA) * scale
        adv = uniform_start(images, eps, generator) if params["random_start"] else images.clone()
        for _ in range(params["steps"]):
            grad = input_gradient(model, adv, shared["target"], self.targeted)
            adv = project_linf(adv + alpha * grad.sign(), images, eps)
        return adv
