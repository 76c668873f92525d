"""The recipe contract: one training step's loss for one network.

A recipe turns a clean batch into the loss the optimiser minimises. It never touches the
optimiser; attacks are crafted with :mod:`featlab.perturbations.attacks` against the
network being trained, in eval mode (the attacks restore every module's mode), then the
training forward runs in train mode on one concatenated batch (so BatchNorm sees clean and
adversarial examples together, as Kurakin et al. 2017 mix them in one minibatch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class StepContext:
    """What a step may use besides the batch.

    Attributes
    ----------
    n_classes : int
    strengths : list of float — FGSM budgets of this network (pixel units)
    eps_max : float — TLAT/M-TLAT/IAT bound, ``eps ~ U[0, eps_max]``
    mixup_alpha : float — Beta(alpha, alpha) of Mixup
    generator : torch.Generator — per-sample draws (targets, permutations), CPU
    rng : numpy Generator — per-step scalars (lambda, eps)
    """

    n_classes: int
    strengths: list
    eps_max: float
    mixup_alpha: float
    generator: torch.Generator
    rng: np.random.Generator


@dataclass
class StepResult:
    """``loss`` (scalar, with graph), and for the progress bar: ``logits`` (m, K) of the
    trained inputs and ``labels`` (m,) their hard labels (argmax of the soft ones)."""

    loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


class Recipe:
    """Base class of the recipes (one per file, registered in ``TRAIN_RECIPES``).

    Class attributes
    ----------------
    name : str
    paper : str — the section it implements
    uses_strengths : bool — takes ``--strengths``
    auto_strengths : bool — accepts ``--strengths auto``
    parallel : bool — trains one network per strength and votes (parallel MAT)
    """

    name = ""
    paper = ""
    uses_strengths = False
    auto_strengths = False
    parallel = False

    def step(self, model, images: torch.Tensor, labels: torch.Tensor,
             ctx: StepContext) -> StepResult:
        raise NotImplementedError


def halves(n: int) -> tuple[slice, slice]:
    """The batch's first and second half (the second gets the extra sample)."""
    return slice(0, n // 2), slice(n // 2, n)


def random_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)
