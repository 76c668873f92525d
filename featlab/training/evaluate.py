"""Accuracy of a network under FGSM, and what parallel MAT's voting needs.

FGSM (featlab's, :mod:`featlab.perturbations.attacks.fgsm`) takes one input gradient per
batch and applies every strength to it; strength 0 is the clean accuracy. The examples are
crafted white-box against the evaluated network, or by a fixed ``crafter`` (the MAT
paper's test sets, Section 5.1).
"""
from __future__ import annotations

import numpy as np
import torch

from ..perturbations.attacks.fgsm import FGSM


def fgsm_correct(model, images, strengths, *, device, batch_size: int = 256,
                 crafter=None) -> np.ndarray:
    """Correct predictions of ``model`` on ``images`` attacked by FGSM against itself (or
    crafted by ``crafter``).

    Parameters
    ----------
    model : classifier of images in [0, 1] (a Backbone: its logits)
    images : :class:`~featlab.training.data.Images`
    strengths : sequence of S budgets in [0, 1] pixel units (0: clean)

    Returns
    -------
    ndarray of shape (S,), int64 — the number of correctly classified images per strength
    """
    model = model.to(device).eval()
    source = model if crafter is None else crafter.to(device).eval()
    correct = np.zeros(len(strengths), dtype=np.int64)
    order = torch.arange(len(images))
    for x, y in images.batches(order, batch_size, min_size=1):
        x, y = x.to(device), y.to(device)
        advs = FGSM().perturb_many(x, [dict(eps=float(s)) for s in strengths], labels=y,
                                   model=source)
        with torch.no_grad():
            for j, adv in enumerate(advs):
                correct[j] += (model(adv).argmax(1) == y).sum().item()
    return correct


def accuracy_matrix(nets, images, strengths, *, device, crafter=None) -> np.ndarray:
    """MAT Section 4.3's ``A``: ``A[i, j]`` = accuracy of ``nets[i]`` under FGSM at
    ``strengths[j]`` (white-box against ``nets[i]``, or crafted by ``crafter``), shape
    (len(nets), len(strengths))."""
    return np.stack([fgsm_correct(n, images, strengths, device=device, crafter=crafter)
                     / len(images) for n in nets])


def true_label_probabilities(ensemble, images, strengths, *, device, batch_size: int = 256,
                             crafter=None) -> np.ndarray:
    """Each member's probability of the true label on the clean images and on their FGSM
    examples at every strength, crafted against the (current) ensemble or by ``crafter``.

    Returns
    -------
    ndarray of shape (len(images) * (1 + len(strengths)), S) — rows: clean, then each
    strength, batch by batch; columns: members
    """
    ensemble = ensemble.to(device).eval()
    source = ensemble if crafter is None else crafter.to(device).eval()
    rows = []
    order = torch.arange(len(images))
    for x, y in images.batches(order, batch_size, min_size=1):
        x, y = x.to(device), y.to(device)
        advs = FGSM().perturb_many(x, [dict(eps=float(s)) for s in strengths], labels=y,
                                   model=source)
        with torch.no_grad():
            for inputs in [x, *advs]:
                probs = [z.softmax(1).gather(1, y[:, None]) for z in ensemble.member_logits(inputs)]
                rows.append(torch.cat(probs, 1).cpu().double().numpy())
    return np.concatenate(rows)
