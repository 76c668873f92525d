"""Per-sample losses of the AutoAttack family, on logits of shape (n, K).

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Section 4, with ``z`` the logits
sorted so that ``z_pi1 >= z_pi2 >= ...``:

    DLR(x, y)        = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)                   (Eq. 6)
    DLR-T(x, y, t)   = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)                   (Eq. 7)

both with ``1e-12`` added to the denominator as in the authors' code. DLR is invariant to
shifting and (positively) scaling the logits, which is what makes it robust to gradient
masking by logit rescaling. ``margin`` is the Square attack's margin loss (Andriushchenko
et al., ECCV 2020, Section 3): ``z_y - max_{i != y} z_i``, negative once misclassified.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import FeatlabError

DENOMINATOR_EPS = 1e-12


def _others_max(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    onehot = F.one_hot(labels, logits.shape[1]).bool()
    return logits.masked_fill(onehot, float("-inf")).amax(dim=1)


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{i != y} z_i`` per sample, shape (n,); <= 0 when misclassified."""
    return logits.gather(1, labels[:, None])[:, 0] - _others_max(logits, labels)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample cross entropy, shape (n,) (APGD-CE's loss)."""
    return F.cross_entropy(logits, labels, reduction="none")


def dlr(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The difference-of-logits ratio loss (Eq. 6), shape (n,); needs K >= 3 classes."""
    check_classes(logits, 3, "the DLR loss")
    ranked = logits.sort(dim=1).values
    return -margin(logits, labels) / (ranked[:, -1] - ranked[:, -3] + DENOMINATOR_EPS)


def dlr_targeted(logits: torch.Tensor, labels: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
    """The targeted DLR loss (Eq. 7), shape (n,); needs K >= 4 classes."""
    check_classes(logits, 4, "the targeted DLR loss")
    ranked = logits.sort(dim=1).values
    gap = logits.gather(1, labels[:, None])[:, 0] - logits.gather(1, targets[:, None])[:, 0]
    scale = ranked[:, -1] - 0.5 * ranked[:, -3] - 0.5 * ranked[:, -4] + DENOMINATOR_EPS
    return -gap / scale


def check_classes(logits: torch.Tensor, needed: int, what: str) -> None:
    """Raise :class:`FeatlabError` when the classifier has fewer than ``needed`` classes."""
    if logits.shape[1] < needed:
        raise FeatlabError(f"{what} needs a classifier with at least {needed} classes; this "
                           f"one has {logits.shape[1]}; use apgdce (cross entropy) instead")
