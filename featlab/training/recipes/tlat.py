"""``tlat``: Targeted Labeling Adversarial Training, M-TLAT paper Section 3.2, Eqs. (4)-(5).

Half of each batch is clean (hard labels); the other half is attacked by targeted FGSM
towards a random other class ``t``, ``x_adv = x - eps * sign(grad_x J(x, t))`` with
``eps ~ U[0, eps_max]`` (eps_max 0.025 in [0, 1] pixels, Section 4.2), and labelled
``(1 - eps) * y + eps * y_t``. Loss: clean half's mean cross-entropy + adversarial half's
mean soft cross-entropy (``loss_1 + loss_2`` as in Algorithm 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...perturbations.attacks.tfgsm import TFGSM
from .registry import TRAIN_RECIPES
from ..labels import one_hot, soft_cross_entropy, tlat_label
from .base import Recipe, StepResult, halves


def targeted_fgsm(model, images, labels, eps: float, generator):
    """Targeted FGSM at a random other class; returns (x_adv, target classes (n,))."""
    advs, target = TFGSM().attack_many(images, [dict(eps=eps)], labels=labels, model=model,
                                       generator=generator)
    return advs[0], target


@TRAIN_RECIPES.register("tlat")
class Tlat(Recipe):
    """Half clean, half TLAT examples with their interpolated labels."""

    name = "tlat"
    paper = "M-TLAT Sec. 3.2, Eqs. (4)-(5)"

    def step(self, model, images, labels, ctx) -> StepResult:
        clean, attacked = halves(len(images))
        eps = float(ctx.rng.uniform(0.0, ctx.eps_max))
        adv, target = targeted_fgsm(model, images[attacked], labels[attacked], eps,
                                    ctx.generator)
        soft = tlat_label(one_hot(labels[attacked], ctx.n_classes), target, eps)
        logits = model(torch.cat([images[clean], adv]))
        n = clean.stop
        loss = F.cross_entropy(logits[:n], labels[clean]) + soft_cross_entropy(logits[n:], soft)
        return StepResult(loss, logits, labels)
