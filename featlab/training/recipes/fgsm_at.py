"""``fgsm-at``: single-strength FGSM adversarial training, half clean and half FGSM
examples in every minibatch (Kurakin, Goodfellow & Bengio 2017; the MAT paper's
single-strength baseline, Section 3: "half legitimate examples and half adversarial
examples"). The loss is the mean cross-entropy over the whole mixed batch. The FGSM
examples are crafted against the network being trained (``--crafting-model self``, the
default) or taken from a fixed crafting model's static sets (MAT Section 5.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import TRAIN_RECIPES
from .base import Recipe, StepResult, fgsm_examples, halves


@TRAIN_RECIPES.register("fgsm-at")
class FgsmAT(Recipe):
    """Half of each batch replaced by its FGSM examples at ``strengths[0]``."""

    name = "fgsm-at"
    paper = "MAT Sec. 3 (single strength), Kurakin et al. 2017"
    uses_strengths = True

    def step(self, model, images, labels, ctx) -> StepResult:
        clean, attacked = halves(len(images))
        sign = None if ctx.sign is None else ctx.sign[attacked]
        (adv,) = fgsm_examples(model, images[attacked], labels[attacked], ctx.strengths[:1],
                               sign)
        logits = model(torch.cat([images[clean], adv]))
        return StepResult(F.cross_entropy(logits, labels), logits, labels)
