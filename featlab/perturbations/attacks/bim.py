"""BIM: the basic iterative method (iterative FGSM).

Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", ICLR 2017
workshop (arXiv:1607.02533), Section 2.2:

    x_0 = x,    x_{N+1} = Clip_{x, eps}( x_N + alpha * sign(grad_x J(theta, x_N, y)) ),

where ``Clip_{x, eps}`` keeps each pixel within ``[max(x - eps, 0), min(x + eps, 1)]``.
No random start. ``alpha=0`` (the default) means ``alpha = eps / steps``. Numerics follow
``torchattacks.BIM`` (same clipping order).
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from ..base import Param
from ._base import LINF_PARAMS, Attack, auto_alpha
from ._common import input_gradient, space_scale

ALPHA = Param("alpha", float, default=0.0, low=0.0, high=10.0,
              help="step size in the units of eps; 0 = eps / steps")
STEPS = Param("steps", int, default=10, low=1, high=100000, help="number of iterations")


def clip_eps(adv: torch.Tensor, images: torch.Tensor, eps) -> torch.Tensor:
    """Kurakin et al.'s ``Clip_{x, eps}``: into [max(x - eps, 0), x + eps], then <= 1."""
    low = torch.clamp(images - eps, min=0)
    adv = torch.where(adv >= low, adv, low)
    high = images + eps
    adv = torch.where(adv > high, high, adv)
    return torch.clamp(adv, max=1).detach()


@PERTURBATIONS.register("bim")
class BIM(Attack):
    """Basic iterative method, L-inf (Kurakin et al. 2017)."""

    name = "bim"
    params = LINF_PARAMS + (ALPHA, STEPS)

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        scale = space_scale(params["eps_space"], model, images)
        eps, alpha = params["eps"] * scale, auto_alpha(params, 1.0) * scale
        adv = images.clone()
        for _ in range(params["steps"]):
            grad = input_gradient(model, adv, shared["target"], self.targeted)
            adv = clip_eps(adv + alpha * grad.sign(), images, eps)
        return adv
