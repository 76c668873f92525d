"""Numerical pieces shared by the gradient attacks.

Everything here works on images in ``[0, 1]`` (normalization lives inside the model) and
never touches the model's parameters: gradients are taken with :func:`torch.autograd.grad`
with respect to the input only, so nothing accumulates in ``.grad``.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Union

import torch
import torch.nn.functional as F

from ...errors import FeatlabError

Budget = Union[float, torch.Tensor]


def boolean(text) -> bool:
    """Convert ``true/false/1/0/yes/no/on/off`` (any case) to a bool; else ValueError."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Run the block with ``model`` in eval mode; restore every module's own flag after.

    Attacks are computed in eval mode (as torchattacks does by default), so BatchNorm
    running statistics are not updated and dropout is off. Restoring flag by flag (not with
    ``model.train()``) keeps mixed modes, e.g. a frozen backbone in eval under a training head.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def forward_for_grad(model, images: torch.Tensor):
    """Return ``(x, logits)`` with ``x`` a detached copy of ``images`` requiring grad."""
    x = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
    return x, logits


def ascent_gradient(x: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                    targeted: bool = False) -> torch.Tensor:
    """Gradient w.r.t. ``x`` of the objective an attack climbs.

    Untargeted: the batch-mean cross entropy ``J(theta, x, y)`` of the true labels.
    Targeted: ``-J(theta, x, t)``, so climbing moves towards the target class ``t``.
    """
    with torch.enable_grad():
        loss = F.cross_entropy(logits, target)
        if targeted:
            loss = -loss
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def input_gradient(model, images: torch.Tensor, target: torch.Tensor,
                   targeted: bool = False) -> torch.Tensor:
    """One forward and one backward pass: :func:`ascent_gradient` at ``images``.

    Returns a tensor of the shape of ``images``.
    """
    x, logits = forward_for_grad(model, images)
    return ascent_gradient(x, logits, target, targeted)


def space_scale(eps_space: str, model, images: torch.Tensor) -> Budget:
    """Pixel units per unit of ``eps``: 1 in pixel space, ``std_c`` in normalized space.

    With ``eps_space="normalized"`` a budget ``eps`` in the model's normalized input space
    ``(x - mean_c) / std_c`` is ``eps * std_c`` in pixels, channel by channel; the model
    wrapper provides ``input_std`` of shape (channels,).
    """
    if eps_space == "pixel":
        return 1.0
    std = getattr(model, "input_std", None)
    if std is None:
        raise FeatlabError("eps_space=normalized needs a model with an input_std attribute "
                           "(the per-channel std of its input normalization); "
                           "use eps_space=pixel or wrap the model")
    std = torch.as_tensor(std, dtype=images.dtype, device=images.device).reshape(-1)
    if std.numel() != images.shape[1]:
        raise FeatlabError(f"model.input_std has {std.numel()} values but the images have "
                           f"{images.shape[1]} channels")
    return std.reshape(1, -1, 1, 1)


def project_linf(adv: torch.Tensor, images: torch.Tensor, eps: Budget) -> torch.Tensor:
    """Project onto ``{x : |x - images|_inf <= eps} ∩ [0, 1]`` (per channel if ``eps`` is a tensor).

    Same arithmetic as torchattacks' PGD: clip the difference, add back, clip to [0, 1].
    """
    delta = torch.clamp(adv - images, min=-eps, max=eps)
    return torch.clamp(images + delta, min=0, max=1).detach()


def uniform_start(images: torch.Tensor, eps: Budget,
                  generator: Optional[torch.Generator]) -> torch.Tensor:
    """``clip(images + U(-eps, eps), 0, 1)`` drawn from ``generator`` only.

    The noise is drawn on the generator's device and moved to the images'. With a float
    ``eps`` the noise is ``uniform_(-eps, eps)``, which draws exactly what
    torchattacks' PGD draws from the global generator when both are seeded alike.
    """
    if generator is None:
        raise ValueError("a random start needs a torch.Generator")
    noise = torch.empty(images.shape, dtype=images.dtype, device=generator.device)
    if isinstance(eps, torch.Tensor):
        noise = noise.uniform_(-1.0, 1.0, generator=generator).to(images.device) * eps
    else:
        noise = noise.uniform_(-eps, eps, generator=generator).to(images.device)
    return torch.clamp(images + noise, min=0, max=1).detach()


@torch.no_grad()
def predict(model, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max class of ``model`` in eval mode (flags restored), shape (n,)."""
    with eval_mode(model):
        return torch.cat([model(chunk).argmax(1) for chunk in images.split(batch_size)])


def success_rate(model, adv: torch.Tensor, labels: torch.Tensor,
                 target_labels: Optional[torch.Tensor] = None) -> float:
    """Fraction of successful adversarial images.

    Parameters
    ----------
    model : classifier mapping images in [0, 1] to logits
    adv : Tensor of shape (n, C, H, W) — attacked images
    labels : Tensor of shape (n,) — true classes
    target_labels : Tensor of shape (n,), optional — for targeted attacks

    Returns
    -------
    float — untargeted: fraction predicted != ``labels``; targeted: fraction predicted
    == ``target_labels``. NaN for an empty batch.
    """
    if len(adv) == 0:
        return float("nan")
    pred = predict(model, adv).cpu()
    if target_labels is None:
        return (pred != labels.cpu()).float().mean().item()
    return (pred == target_labels.cpu()).float().mean().item()
