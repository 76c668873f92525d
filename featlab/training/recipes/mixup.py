"""``mixup``: Mixup (Zhang et al. 2018), M-TLAT paper Section 3.1, Eq. (1): the batch mixed
with a permutation of itself, ``lam ~ Beta(alpha, alpha)`` (alpha 0.4 as the paper),
soft-label cross-entropy."""
from __future__ import annotations

from .registry import TRAIN_RECIPES
from ..labels import mixup, one_hot, sample_lambda, soft_cross_entropy
from .base import Recipe, StepResult, random_permutation


@TRAIN_RECIPES.register("mixup")
class Mixup(Recipe):
    """Every sample interpolated with another, labels likewise."""

    name = "mixup"
    paper = "M-TLAT Sec. 3.1, Eq. (1)"

    def step(self, model, images, labels, ctx) -> StepResult:
        lam = sample_lambda(ctx.mixup_alpha, ctx.rng)
        perm = random_permutation(len(images), ctx.generator).to(images.device)
        x, y = mixup(images, one_hot(labels, ctx.n_classes), lam, perm)
        logits = model(x)
        return StepResult(soft_cross_entropy(logits, y), logits, y.argmax(1))
