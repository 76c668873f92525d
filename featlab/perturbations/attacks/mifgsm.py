"""MI-FGSM: the momentum iterative fast gradient sign method, L-inf.

Dong, Liao, Pang, Su, Zhu, Hu & Li, "Boosting adversarial attacks with momentum", CVPR 2018
(arXiv:1710.06081), Algorithm 1:

    g_{t+1} = mu * g_t + grad_x J(x_t, y) / ||grad_x J(x_t, y)||_1
    x_{t+1} = Proj_{B(x, eps) ∩ [0, 1]}( x_t + alpha * sign(g_{t+1}) ),

with the L1 norm taken as the per-sample mean absolute value (a constant factor that the sign
ignores; as torchattacks). ``alpha=0`` (the default) means ``alpha = eps / steps`` (the
paper's choice). Used as the black-box attack of the mixup-targeted-labeling paper
(Section 4.1, eps = 0.04 and 0.08, ten iterations). Numerics follow
``torchattacks.MIFGSM``, except that an all-zero gradient gives a zero step instead of NaN.
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from ..base import Param
from ._base import LINF_PARAMS, Attack, auto_alpha
from ._common import input_gradient, project_linf, space_scale
from .bim import ALPHA, STEPS

DECAY = Param("decay", float, default=1.0, low=0.0, high=100.0, help="momentum factor mu")


def l1_normalized(grad: torch.Tensor) -> torch.Tensor:
    """``grad`` divided by its per-sample mean absolute value (zero stays zero)."""
    scale = grad.abs().mean(dim=tuple(range(1, grad.dim())), keepdim=True)
    return grad / scale.clamp_min(torch.finfo(grad.dtype).tiny)


@PERTURBATIONS.register("mifgsm")
class MIFGSM(Attack):
    """Momentum iterative FGSM (Dong et al. 2018)."""

    name = "mifgsm"
    params = LINF_PARAMS + (ALPHA, STEPS, DECAY)

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        scale = space_scale(params["eps_space"], model, images)
        eps, alpha = params["eps"] * scale, auto_alpha(params, 1.0) * scale
        momentum = torch.zeros_like(images)
        adv = images.clone()
        for _ in range(params["steps"]):
            grad = input_gradient(model, adv, shared["target"], self.targeted)
            momentum = l1_normalized(grad) + params["decay"] * momentum
            adv = project_linf(adv + alpha * momentum.sign(), images, eps)
        return adv
