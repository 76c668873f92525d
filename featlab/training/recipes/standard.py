"""``standard``: plain empirical risk minimisation, the baseline of both papers
(MAT Section 3, "original"; M-TLAT Section 4.2, "standard models")."""
from __future__ import annotations

import torch.nn.functional as F

from .registry import TRAIN_RECIPES
from .base import Recipe, StepResult


@TRAIN_RECIPES.register("standard")
class Standard(Recipe):
    """Cross-entropy on the clean batch."""

    name = "standard"
    paper = "MAT Sec. 3 'original' / M-TLAT Sec. 4.2 'standard'"

    def step(self, model, images, labels, ctx) -> StepResult:
        logits = model(images)
        return StepResult(F.cross_entropy(logits, labels), logits, labels)
