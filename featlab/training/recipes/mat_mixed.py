"""``mat-mixed``: mixed multi-strength adversarial training, MAT paper Section 4.1, Eq. (2):

    J_M = sum_i J(theta, X_i, T_i) + sum_{j=1..S} sum_i J(theta, f_j(X_i), T_i),

the clean batch plus its FGSM examples at each of the S strengths ("full size": every
adversarial set as large as the clean one, Section 5.4), in one forward pass. The batch
loss is J_M divided by the clean batch size N (a constant, so a learning rate means the
same as for ``standard``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...perturbations.attacks.fgsm import FGSM
from .registry import TRAIN_RECIPES
from .base import Recipe, StepResult


def mat_loss(logits: torch.Tensor, labels: torch.Tensor, n_clean: int) -> torch.Tensor:
    """``J_M / N``: summed cross-entropy of the clean block and the S adversarial blocks.

    Parameters
    ----------
    logits : (N * (S + 1), K) — clean rows first, then each strength's rows
    labels : (N * (S + 1),) int64 — the clean labels repeated for each block
    n_clean : int — N
    """
    return F.cross_entropy(logits, labels, reduction="sum") / n_clean


@TRAIN_RECIPES.register("mat-mixed")
class MatMixed(Recipe):
    """One network on the clean batch and its FGSM examples at every strength."""

    name = "mat-mixed"
    paper = "MAT Sec. 4.1, Eq. (2)"
    uses_strengths = True
    auto_strengths = True

    def step(self, model, images, labels, ctx) -> StepResult:
        advs = FGSM().perturb_many(images, [dict(eps=s) for s in ctx.strengths],
                                   labels=labels, model=model)
        targets = labels.repeat(len(advs) + 1)
        logits = model(torch.cat([images, *advs]))
        return StepResult(mat_loss(logits, targets, len(images)), logits, targets)
