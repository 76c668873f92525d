"""``fgsm-at``: single-strength FGSM adversarial training, half clean and half FGSM
examples in every minibatch (Kurakin, Goodfellow & Bengio 2017; the MAT paper's
single-strength baseline, Section 3: "half legitimate examples and half adversarial
examples"). The loss is the mean cross-entropy over the whole mixed batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...perturbations.attacks.fgsm import FGSM
from .registry import TRAIN_RECIPES
from .base import Recipe, StepResult, halves


@TRAIN_RECIPES.register("fgsm-at")
class FgsmAT(Recipe):
    """Half of each batch replaced by its FGSM examples at ``strengths[0]``."""

    name = "fgsm-at"
    paper = "MAT Sec. 3 (single strength), Kurakin et al. 2017"
    uses_strengths = True

    def step(self, model, images, labels, ctx) -> StepResult:
        clean, attacked = halves(len(images))
        adv = FGSM().perturb(images[attacked], labels=labels[attacked], model=model,
                             eps=ctx.strengths[0])
        logits = model(torch.cat([images[clean], adv]))
        return StepResult(F.cross_entropy(logits, labels), logits, labels)
