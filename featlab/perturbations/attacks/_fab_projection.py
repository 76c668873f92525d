"""FAB's Linf projection onto a hyperplane inside a box.

Croce & Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", ICML 2020 (arXiv:1907.02044), Section 3.1 and Proposition 3.2 (the Linf case):
for a point ``t`` of the box ``[0, u]^d`` and the hyperplane ``<w, z> = b``, the step

    d* = argmin ||d||_inf  subject to  <w, t + d> = b,  0 <= t + d <= u

moves every coordinate by ``min(lambda, room_i)`` in the direction that brings ``<w, z>``
towards ``b`` (``room_i`` = the distance to the box face in that direction), with the
smallest ``lambda`` that reaches the plane. The decrease ``g(lambda) = sum_i |w_i|
min(lambda, room_i)`` is piecewise linear and non-decreasing, so ``lambda`` is found by
evaluating ``g`` at the sorted breakpoints (the authors bisect; a vectorised count of the
breakpoints is the same search). When the plane cannot be reached inside the box, the
step goes to the box corner that comes closest, as in the authors' code.
"""
from __future__ import annotations

import torch


def project_hyperplane_box(points: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                           upper=1.0) -> torch.Tensor:
    """Minimal-Linf step from ``points`` onto ``<w, z> = b`` within ``[0, upper]``.

    Parameters
    ----------
    points : Tensor of shape (n, D) — in the box
    w : Tensor of shape (n, D) — hyperplane normals; b : Tensor of shape (n,) — offsets
    upper : float or Tensor of shape (D,) — the box's upper corner

    Returns
    -------
    Tensor of shape (n, D) — the step ``d`` (zero on coordinates where ``w`` is zero)
    """
    sign = torch.where((w * points).sum(1) - b >= 0, 1.0, -1.0).to(w.dtype)
    w = w * sign[:, None]
    gap = (w * points).sum(1) - b * sign  # >= 0: how far <w, z> has to come down
    up = w < 0  # these coordinates go up (towards `upper`), the others down (towards 0)
    room = torch.where(up, upper - points, points)
    order = room.argsort(dim=1, descending=True)
    room_sorted, weight_sorted = room.gather(1, order), w.abs().gather(1, order)
    weight_sum = weight_sorted.cumsum(1)
    moved = (weight_sorted * room_sorted).cumsum(1)
    total = moved[:, -1:]
    # decrease when every coordinate moves min(room_k, room_i): g at the k-th breakpoint
    reach = total - moved + weight_sum * room_sorted
    count = (reach > gap[:, None]).sum(1)
    k = (count - 1).clamp_min(0)[:, None]
    lam = (gap[:, None] - total + moved.gather(1, k)) / weight_sum.gather(1, k).clamp_min(
        torch.finfo(w.dtype).tiny)
    lam = torch.where(count[:, None] == 0, torch.full_like(lam, float("inf")), lam.clamp_min(0))
    step = torch.minimum(room, lam)
    return torch.where(up, step, -step) * (w != 0)
