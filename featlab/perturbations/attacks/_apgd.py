"""The APGD iteration (Linf), shared by APGD-CE and APGD-T.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Section 3, Algorithm 1:

    x^(0) = P_S(x + eps * u / ||u||_inf),  u ~ U(-1, 1)^d     (a random point of the ball's surface)
    eta^(0) = 2 eps
    z^(k+1) = P_S(x^(k) + eta^(k) sign(grad f(x^(k))))
    x^(k+1) = P_S(x^(k) + a (z^(k+1) - x^(k)) + (1 - a)(x^(k) - x^(k-1))),  a = 0.75 (1 at k = 0)

with ``S`` the eps-ball intersected with [0, 1] and ``f`` the per-sample loss that is
maximised. The step size is halved, per sample, at the checkpoints ``w_j = ceil(p_j N)``
(``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``; window
lengths rounded down as in the authors' code) when

1. the loss increased in at most ``rho * (w_j - w_{j-1})`` of the window's steps, or
2. the step size was not halved at ``w_{j-1}`` and the best loss did not improve since;

and a sample whose step size is halved restarts from its best point so far (Section 3.2).
As in the authors' code (and torchattacks), the comparison for the first step of the first
window is against 0 rather than against ``f(x^(0))``, so that the same seed gives the same
iterates as ``torchattacks.APGD``/``APGDT``. A run reports the last misclassified iterate
of each sample.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch

from ..base import Param
from .bim import STEPS

MOMENTUM = 0.75
APGD_STEPS = dataclasses.replace(STEPS, default=100, help="iterations per run (the paper: 100)")
N_RESTARTS = Param("n_restarts", int, default=1, low=1, high=1000,
                   help="runs from new random starts, on the points still robust")
RHO = Param("rho", float, default=0.75, low=0.0, high=1.0,
            help="step-size halving threshold on the fraction of loss increases")
N_TARGET_CLASSES = Param("n_target_classes", int, default=9, low=1, high=100000,
                         help="target classes tried: the 2nd to (n+1)-th largest clean logits "
                              "(at most K - 1 of K classes; the default 9 takes K - 1 "
                              "when K < 10)")


def checkpoints(steps: int) -> dict:
    """``{iteration: window length}`` of the step-size checks (0-based iterations)."""
    first = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, last, window = {}, -1, first
    while last + window < steps:
        last += window
        out[last] = window
        window = max(window - shrink, shortest)
    return out


def loss_and_grad(model, adv: torch.Tensor, loss_fn: Callable) -> tuple:
    """Per-sample loss (n,), its input gradient (n, C, H, W) and the logits (n, K)."""
    x = adv.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = loss_fn(logits)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad.detach(), logits.detach()


def surface_start(images: torch.Tensor, eps, generator: Optional[torch.Generator]):
    """``clip(x + eps * t / ||t||_inf, 0, 1)``, ``t = 2u - 1`` with ``u ~ U(0, 1)`` from ``generator``."""
    if generator is None:
        raise ValueError("APGD's random start needs a torch.Generator")
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype,
                   device=generator.device).to(images.device)
    t = 2 * u - 1
    peak = t.flatten(1).abs().amax(dim=1).view(-1, *[1] * (images.dim() - 1))
    return (images + eps * t / peak).clamp(0.0, 1.0)


def apgd_run(model, images: torch.Tensor, labels: torch.Tensor, loss_fn: Callable, eps,
             steps: int, rho: float, generator: Optional[torch.Generator]) -> tuple:
    """One APGD run (Algorithm 1) from a random start.

    Parameters
    ----------
    model : classifier of images in [0, 1]
    images : Tensor of shape (n, C, H, W); labels : Tensor of shape (n,)
    loss_fn : logits (n, K) -> per-sample loss (n,) to maximise
    eps : float or Tensor of shape (1, C, 1, 1) — the Linf radius in pixels
    steps : int; rho : float

    Returns
    -------
    adv : Tensor of shape (n, C, H, W) — the last misclassified iterate (the start if none)
    fooled : bool Tensor of shape (n,) — misclassified at some iterate
    """
    low, high = images - eps, images + eps

    def project(v):
        return torch.clamp(torch.clamp(v, low, high), 0.0, 1.0)

    n, checks = len(images), checkpoints(steps)
    adv = surface_start(images, eps, generator)
    loss, grad, logits = loss_and_grad(model, adv, loss_fn)
    fooled = logits.argmax(1) != labels
    found, prev = adv.clone(), adv.clone()
    best, best_grad, best_loss = adv.clone(), grad.clone(), loss.clone()
    step = eps * torch.ones(n, 1, 1, 1, dtype=images.dtype, device=images.device) * 2.0
    history = torch.zeros(steps, n, dtype=loss.dtype, device=loss.device)
    halved_last = torch.ones(n, dtype=torch.bool, device=images.device)
    best_at_last = best_loss.clone()
    for i in range(steps):
        a = MOMENTUM if i > 0 else 1.0
        z = project(adv + step * torch.sign(grad))
        prev, adv = adv, project(adv + (z - adv) * a + (adv - prev) * (1 - a))
        loss, grad, logits = loss_and_grad(model, adv, loss_fn)
        wrong = logits.argmax(1) != labels
        fooled |= wrong
        found[wrong] = adv[wrong]
        history[i] = loss
        better = loss > best_loss
        best[better], best_grad[better], best_loss[better] = adv[better], grad[better], loss[better]
        if i in checks:
            window = torch.arange(i - checks[i] + 1, i + 1, device=loss.device)
            rises = (history[window] > history[window - 1]).sum(dim=0)
            halve = (rises <= checks[i] * rho) | (~halved_last & (best_at_last >= best_loss))
            halved_last, best_at_last = halve, best_loss.clone()
            step[halve] /= 2.0
            adv[halve], grad[halve] = best[halve], best_grad[halve]
    return found, fooled
