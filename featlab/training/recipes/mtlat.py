"""``mtlat``: M-TLAT, the M-TLAT paper's Algorithm 1 (Section 3.3, Eq. (6)).

Each step splits the batch in halves. First half: Mixup (``lam_1``). Second half: Mixup
(``lam_2``), then targeted FGSM towards a random class ``t`` at ``eps ~ U[0, eps_max]``,
labelled ``(1 - eps) * y_mix + eps * y_t``. ``loss = loss_1 + loss_2`` (soft cross-entropy
of each half). The paper draws ``t`` uniformly among all N classes; here among the classes
other than the first image of each mixed pair (the targeted FGSM of :mod:`tfgsm`).
"""
from __future__ import annotations

import torch

from .registry import TRAIN_RECIPES
from ..labels import mixup, one_hot, sample_lambda, soft_cross_entropy, tlat_label
from .base import Recipe, StepResult, halves, random_permutation
from .tlat import targeted_fgsm


def mix_half(images, labels, n_classes, lam, generator):
    """Mixup within one half: (x_mix, y_mix) for images (m, C, H, W), labels (m,)."""
    perm = random_permutation(len(images), generator).to(images.device)
    return mixup(images, one_hot(labels, n_classes), lam, perm)


@TRAIN_RECIPES.register("mtlat")
class Mtlat(Recipe):
    """Half Mixup samples, half Mixup + TLAT samples (Algorithm 1)."""

    name = "mtlat"
    paper = "M-TLAT Algorithm 1, Eq. (6)"

    def step(self, model, images, labels, ctx) -> StepResult:
        first, second = halves(len(images))
        lam1, lam2 = (sample_lambda(ctx.mixup_alpha, ctx.rng) for _ in range(2))
        eps = float(ctx.rng.uniform(0.0, ctx.eps_max))
        x1, y1 = mix_half(images[first], labels[first], ctx.n_classes, lam1, ctx.generator)
        x2, y2 = mix_half(images[second], labels[second], ctx.n_classes, lam2, ctx.generator)
        adv, target = targeted_fgsm(model, x2, labels[second], eps, ctx.generator)
        y2 = tlat_label(y2, target, eps)
        logits = model(torch.cat([x1, adv]))
        n = len(x1)
        loss = soft_cross_entropy(logits[:n], y1) + soft_cross_entropy(logits[n:], y2)
        return StepResult(loss, logits, torch.cat([y1, y2]).argmax(1))
