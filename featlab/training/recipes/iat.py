"""``iat``: Interpolated Adversarial Training (Lamb et al. 2019), the M-TLAT paper's
comparison (Section 3.3): adversarial examples first, then Mixup, with standard Mixup
labels. Each step: first half Mixup of clean images; second half untargeted FGSM at
``eps ~ U[0, eps_max]`` then Mixup of the adversarial images; ``loss = loss_1 + loss_2``.
(Lamb et al. attack with PGD; FGSM at M-TLAT's budget keeps the comparison like for like.)
"""
from __future__ import annotations

import torch

from ...perturbations.attacks.fgsm import FGSM
from .registry import TRAIN_RECIPES
from ..labels import sample_lambda, soft_cross_entropy
from .base import Recipe, StepResult, halves
from .mtlat import mix_half


@TRAIN_RECIPES.register("iat")
class Iat(Recipe):
    """Half Mixup samples, half Mixup of FGSM examples (attack first, then mix)."""

    name = "iat"
    paper = "M-TLAT Sec. 3.3 (IAT, Lamb et al. 2019)"

    def step(self, model, images, labels, ctx) -> StepResult:
        first, second = halves(len(images))
        lam1, lam2 = (sample_lambda(ctx.mixup_alpha, ctx.rng) for _ in range(2))
        eps = float(ctx.rng.uniform(0.0, ctx.eps_max))
        adv = FGSM().perturb(images[second], labels=labels[second], model=model, eps=eps)
        x1, y1 = mix_half(images[first], labels[first], ctx.n_classes, lam1, ctx.generator)
        x2, y2 = mix_half(adv, labels[second], ctx.n_classes, lam2, ctx.generator)
        logits = model(torch.cat([x1, x2]))
        n = len(x1)
        loss = soft_cross_entropy(logits[:n], y1) + soft_cross_entropy(logits[n:], y2)
        return StepResult(loss, logits, torch.cat([y1, y2]).argmax(1))
