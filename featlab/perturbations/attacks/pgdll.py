"""PGD towards the least likely class (PGD_LL).

The iterative least-likely class method of Kurakin, Goodfellow & Bengio, "Adversarial
examples in the physical world" (arXiv:1607.02533, Section 2.3), run as PGD (random start,
projection; Madry et al. 2018), as in the mixup-targeted-labeling paper's benchmark
(Section 4.1: PGD_LL, eps = 0.04, ten iterations):

    t = argmin_{c != y} Z_c(x)     (clean logits; never the true class)
    x_{t+1} = Proj_{B(x, eps) ∩ [0, 1]}( x_t - alpha * sign(grad_x J(theta, x_t, t)) ).

The clean forward is done once per batch and shared by every strength. Equals
``torchattacks.PGD`` with ``set_mode_targeted_least_likely()``.
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from .pgd import PGD


def least_likely_class(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Index of the smallest logit among the classes other than ``labels``, shape (n,)."""
    true = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    return logits.detach().masked_fill(true, float("inf")).argmin(dim=1)


@PERTURBATIONS.register("pgdll")
class PGDLL(PGD):
    """PGD targeted at the least likely class of the clean prediction."""

    name = "pgdll"
    targeted = True

    def prepare(self, images, labels, model, generator) -> dict:
        with torch.no_grad():
            logits = model(images)
        return {"target": least_likely_class(logits, labels)}
