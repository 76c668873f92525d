"""FAB-T: the targeted fast adaptive boundary attack, Linf, as run in AutoAttack.

Croce & Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", ICML 2020 (arXiv:1907.02044), Algorithm 1 (Linf), in its targeted form of
Croce & Hein, ICML 2020 (arXiv:2003.01690, Section 4, "FAB-T"). Towards the target ``t``
the classifier is linearised at the iterate, ``f(z) ~ f(x1) + <grad f(x1), z - x1>`` with
``f = z_t - z_y``, and both the iterate and the original point are projected onto the
plane ``f = 0`` within the box (:mod:`._fab_projection`):

    x1 <- clip((1 - a)(x1 + eta d1) + a(x + eta d2)),  a = min(|d1| / (|d1| + |d2|), alpha_max)

(``|.|`` the Linf norm); once ``x1`` is misclassified it is kept if it is the closest so
far and pulled back, ``x1 <- x + beta (x1 - x)``. FAB minimises the distance; as an attack
at radius ``eps`` an image counts as broken when the closest adversarial point found is
within ``eps``, and that point is returned (the clean image otherwise). Targets are the
2nd, 3rd, ... largest clean logits (``n_target_classes``, 9 in AutoAttack), each run on
the points still robust; restarts after the first start at a random point at Linf
distance ``eps / 2``. Deterministic with one restart. With ``eps_space=normalized`` the
search runs in normalized coordinates, where the per-channel budget is a cube.
Numerics follow ``torchattacks.FAB(multi_targeted=True)``.
"""
from __future__ import annotations

import torch

from ..registry import PERTURBATIONS
from ..base import Param
from ._apgd import APGD_STEPS, N_RESTARTS, N_TARGET_CLASSES
from ._base import LINF_PARAMS
from ._common import project_linf, space_scale
from ._fab_projection import project_hyperplane_box
from ._robust import RobustComponent, attack_robust, predict_batch, ranked_targets

FAB_PARAMS = (
    Param("alpha_max", float, default=0.1, low=0.0, high=1.0,
          help="largest weight of the step from the original point"),
    Param("eta", float, default=1.05, low=1.0, high=10.0, help="overshoot of each projection"),
    Param("beta", float, default=0.9, low=0.0, high=1.0,
          help="backward step towards the original point after a success"),
)


def _target_gap(model, x: torch.Tensor, labels, targets) -> tuple:
    """``f = z_t - z_y`` of shape (n,) and its input gradient of shape (n, C, H, W)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        rows = torch.arange(len(x), device=x.device)
        gap = -(logits[rows, labels] - logits[rows, targets])
    (grad,) = torch.autograd.grad(gap.sum(), x)
    return gap.detach(), grad.detach()


def _random_start(images, eps, top, generator):
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype,
                   device=generator.device).to(images.device)
    t = 2 * u - 1
    peak = t.flatten(1).abs().amax(dim=1).view(-1, 1, 1, 1)
    return _box(images + eps * t / peak * 0.5, top)


def _box(v: torch.Tensor, top) -> torch.Tensor:
    return v.clamp(0.0, top) if isinstance(top, float) else torch.minimum(v.clamp_min(0.0), top)


def fab_targeted_run(model, images, labels, targets, eps: float, params: dict, top=1.0,
                     generator=None, random_start=False) -> tuple:
    """One FAB-T run (Algorithm 1) on images in ``[0, top]``.

    Parameters
    ----------
    model : classifier of the images; images : Tensor of shape (n, C, H, W)
    labels, targets : int64 Tensors of shape (n,)
    eps : float — Linf radius; params : ``steps``, ``alpha_max``, ``eta``, ``beta``
    top : float or Tensor of shape (1, C, 1, 1) — upper end of the box

    Returns
    -------
    adv : Tensor of shape (n, C, H, W) — the closest adversarial point found, else clean
    fooled : bool Tensor of shape (n,) — found, misclassified and within ``eps``
    """
    n = len(images)
    upper = top if isinstance(top, float) else top.expand_as(images[:1]).flatten()
    x0 = images.flatten(1)
    x1 = _random_start(images, eps, top, generator) if random_start else images.clone()
    best, best_norm = images.clone(), torch.full((n,), float("inf"), device=images.device)
    eta, beta = params["eta"], params["beta"]
    for _ in range(params["steps"]):
        gap, grad = _target_gap(model, x1, labels, targets)
        w = grad.flatten(1)
        b = -gap + (w * x1.flatten(1)).sum(1)
        d = project_hyperplane_box(torch.cat((x1.flatten(1), x0)), torch.cat((w, w)),
                                   torch.cat((b, b)), upper)
        size = d.abs().amax(1).clamp_min(1e-8)
        alpha = (size[:n] / (size[:n] + size[n:])).clamp(0.0, params["alpha_max"]).view(-1, 1, 1, 1)
        d1, d2 = d[:n].view_as(images), d[n:].view_as(images)
        x1 = _box((x1 + eta * d1) * (1 - alpha) + (images + d2 * eta) * alpha, top)
        wrong = predict_batch(model, x1) != labels
        norm = (x1 - images).flatten(1).abs().amax(1)
        closer = wrong & (norm < best_norm)
        best[closer], best_norm[closer] = x1[closer], norm[closer]
        x1[wrong] = images[wrong] + (x1[wrong] - images[wrong]) * beta
    fooled = (best_norm <= eps) & (predict_batch(model, best) != labels)
    return torch.where(fooled.view(-1, 1, 1, 1), best, images), fooled


@PERTURBATIONS.register("fab")
class FAB(RobustComponent):
    """Targeted FAB (FAB-T), Linf, over several target classes (Croce & Hein 2020)."""

    name = "fab"
    params = LINF_PARAMS + (APGD_STEPS, N_RESTARTS, N_TARGET_CLASSES) + FAB_PARAMS

    @staticmethod
    def run(images, shared, model, generator, params) -> tuple:
        """``(adv, robust, broken_by)`` of :func:`._robust.attack_robust`."""
        scale = space_scale(params["eps_space"], model, images)
        if isinstance(scale, float):
            net, top = model, 1.0
        else:  # normalized budgets: search where the per-channel ball is a cube
            net, top = (lambda v: model(v * scale)), 1.0 / scale

        def run_towards(target, restart):
            def one_run(x, y, rows):
                adv, fooled = fab_targeted_run(net, x / scale, y, target[rows], params["eps"],
                                               params, top, generator, random_start=restart > 0)
                if isinstance(scale, float):
                    return adv, fooled
                adv = project_linf(adv * scale, x, params["eps"] * scale)
                return adv, fooled & (predict_batch(model, adv) != y)
            return one_run

        runs = [run_towards(t, r) for t in ranked_targets(shared["logits"], params["n_target_classes"])
                for r in range(params["n_restarts"])]
        return attack_robust(images, shared["target"], shared["correct"], runs)
