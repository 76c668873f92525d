"""Soft labels and the losses on them: Mixup, TLAT and the MAT objective's pieces.

All labels here are probability vectors of shape (n, n_classes); hard labels are int64 of
shape (n,). Images are float NCHW in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n,) int64 -> (n, n_classes) float32 one-hot."""
    return F.one_hot(labels, n_classes).to(torch.float32)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c target_c log softmax(logits)_c``.

    Parameters
    ----------
    logits : (n, C) float; target : (n, C) probabilities. Equals
    ``F.cross_entropy(logits, labels)`` when ``target`` is one-hot.
    """
    return -(target * logits.log_softmax(1)).sum(1).mean()


def mixup(images: torch.Tensor, target: torch.Tensor, lam, perm: torch.Tensor):
    """Mixup, M-TLAT paper Eq. (1) (Zhang et al. 2018).

    ``x_mix = lam * x + (1 - lam) * x[perm]``, ``y_mix = lam * y + (1 - lam) * y[perm]``.

    Parameters
    ----------
    images : (n, C, H, W); target : (n, K) soft labels;
    lam : float in [0, 1] (one for the batch) or (n,) tensor (one per mixed pair, as
        the M-TLAT paper's Algorithm 1 draws them);
    perm : (n,) int64 permutation pairing each sample with another

    Returns
    -------
    (x_mix, y_mix) of the shapes of ``images`` and ``target``
    """
    if isinstance(lam, torch.Tensor):
        lx = lam.to(images.device, images.dtype).reshape(-1, *[1] * (images.dim() - 1))
        ly = lam.to(target.device, target.dtype).reshape(-1, 1)
        return (lx * images + (1 - lx) * images[perm], ly * target + (1 - ly) * target[perm])
    return (lam * images + (1.0 - lam) * images[perm],
            lam * target + (1.0 - lam) * target[perm])


def tlat_label(target: torch.Tensor, target_class: torch.Tensor, eps) -> torch.Tensor:
    """TLAT's label, M-TLAT paper Eq. (4)/(6): ``(1 - eps) * y + eps * y_target``.

    Parameters
    ----------
    target : (n, K) soft labels (one-hot for TLAT, Mixup labels for M-TLAT)
    target_class : (n,) int64 — the class the targeted FGSM pushed towards
    eps : float or (n,) tensor — the FGSM strength, in [0, 1] pixel units
    """
    eps = torch.as_tensor(eps, dtype=target.dtype, device=target.device).reshape(-1, 1)
    return (1.0 - eps) * target + eps * one_hot(target_class, target.shape[1])


def sample_lambda(alpha: float, rng, size=None):
    """``lam ~ Beta(alpha, alpha)`` (M-TLAT paper Section 3.1) from a NumPy Generator: a float,
    or an ndarray of ``size`` draws (one per mixed pair)."""
    if size is None:
        return float(rng.beta(alpha, alpha))
    return rng.beta(alpha, alpha, size)
