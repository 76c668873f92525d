"""``mtlat``: M-TLAT, the M-TLAT paper's Algorithm 1 (Section 3.3, Eq. (6)).

Each step splits the batch in halves; every sample of a half is mixed with a partner of the
same half (a seeded permutation), and every draw of Algorithm 1 is made per mixed pair:

* first half: Mixup, ``x_mix1 = lam_1 x_1 + (1 - lam_1) x_2`` with its own
  ``lam_1 ~ Beta(alpha, alpha)`` per pair (Eq. 1);
* second half: Mixup with its own ``lam_2`` per pair, then targeted FGSM (Eq. 5) towards
  ``y_target ~ U{0, ..., N-1}`` drawn among *all* N classes, at ``eps ~ U[0, eps_max]`` drawn
  per pair, labelled ``(1 - eps) * y_mix2 + eps * y_target`` (Eq. 6).

``loss = loss_1 + loss_2``, the soft cross-entropy of each half (mean over the half).
"""
from __future__ import annotations

import torch

from ...perturbations.attacks import eval_mode, input_gradient
from ..labels import mixup, one_hot, sample_lambda, soft_cross_entropy, tlat_label
from .base import Recipe, StepResult, halves, random_permutation
from .registry import TRAIN_RECIPES


def mix_half(images, labels, n_classes, lam, generator):
    """Mixup within one half: (x_mix, y_mix) for images (m, C, H, W), labels (m,); ``lam``
    a float or one value per pair, shape (m,)."""
    perm = random_permutation(len(images), generator).to(images.device)
    return mixup(images, one_hot(labels, n_classes), lam, perm)


def targeted_fgsm_per_pair(model, images, target, eps):
    """Eq. (5) per sample: ``clip(x - eps_i * sign(grad_x L(x, t_i)), 0, 1)``.

    Parameters
    ----------
    model : the network being trained (the gradient is taken in eval mode, its flags restored)
    images : (m, C, H, W) in [0, 1]; target : (m,) int64 target classes;
    eps : (m,) float tensor, per-sample strengths in [0, 1] pixel units
    """
    images = images.detach()
    with eval_mode(model):
        grad = input_gradient(model, images, target.to(images.device), targeted=True)
    step = eps.to(images.device, images.dtype).view(-1, 1, 1, 1) * grad.sign()
    return torch.clamp(images + step, min=0, max=1).detach()


@TRAIN_RECIPES.register("mtlat")
class Mtlat(Recipe):
    """Half Mixup samples, half Mixup + TLAT samples (Algorithm 1), draws per pair."""

    name = "mtlat"
    paper = "M-TLAT Algorithm 1, Eq. (6)"

    def step(self, model, images, labels, ctx) -> StepResult:
        first, second = halves(len(images))
        n1, n2 = first.stop - first.start, second.stop - second.start
        lam1 = torch.as_tensor(sample_lambda(ctx.mixup_alpha, ctx.rng, n1))
        lam2 = torch.as_tensor(sample_lambda(ctx.mixup_alpha, ctx.rng, n2))
        eps = torch.as_tensor(ctx.rng.uniform(0.0, ctx.eps_max, n2), dtype=torch.float32)
        x1, y1 = mix_half(images[first], labels[first], ctx.n_classes, lam1, ctx.generator)
        x2, y2 = mix_half(images[second], labels[second], ctx.n_classes, lam2, ctx.generator)
        target = torch.randint(ctx.n_classes, (n2,), generator=ctx.generator).to(labels.device)
        adv = targeted_fgsm_per_pair(model, x2, target, eps)
        y2 = tlat_label(y2, target, eps.to(y2.device))
        logits = model(torch.cat([x1, adv]))
        loss = soft_cross_entropy(logits[:n1], y1) + soft_cross_entropy(logits[n1:], y2)
        return StepResult(loss, logits, torch.cat([y1, y2]).argmax(1))
