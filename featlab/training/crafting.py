"""Who crafts the FGSM training examples: the MAT paper's threat model (Section 5.1).

MAT crafts its S adversarial training and test sets once, with a separate, fixed crafting
model (a LeNet-5 for MNIST, a small CNN for CIFAR), and trains the victim network on them.
``--crafting-model`` (recipes with FGSM strengths: ``fgsm-at``, ``mat-mixed``,
``mat-parallel``) chooses:

- ``self`` — FGSM against the network being trained, batch by batch (Kurakin et al. 2017;
  the default of ``fgsm-at``);
- ``auto`` — a ``standard`` network trained first on the same images with the same
  settings (stage ``crafting``), written beside ``--out`` as ``<stem>-crafting.pt`` so the
  test sets can be crafted from it too (the default of ``mat-mixed`` and ``mat-parallel``);
- ``BACKBONE`` (``NAME`` or ``NAME=PATH``) — a trained classifier of the dataset's classes.

With a crafting model, every training image's FGSM direction ``sign(grad_x J(theta_c, x,
y))`` is computed once (:class:`StaticSets`) and its set at strength eps is ``clip(x + eps *
sign, 0, 1)``: the S sets of one crafting model, FGSM's arithmetic bit for bit. The
validation sets of the voting (Section 4.2) and of the random walk (Section 4.3) are
crafted by the same model.
"""
from __future__ import annotations

import logging

import torch

from ..backbones.base import file_sha256
from ..backbones.registry import BACKBONES
from ..backbones.trained import build_backbone, cache_path, parse_backbone_entry
from ..errors import FeatlabError
from ..perturbations.attacks import eval_mode, input_gradient

log = logging.getLogger(__name__)
SELF, AUTO = "self", "auto"


def weights_identity(entry, cache_dir=None):
    """What a backbone entry (``NAME`` or ``NAME=PATH``) starts a run from: the sha256 of
    its trained file, or the registered name; None for no entry, ``self`` or ``auto``."""
    if entry in (None, SELF, AUTO):
        return None
    name, path = parse_backbone_entry(entry)
    if path is None and name in BACKBONES:
        return dict(backbone=name)
    path = path or cache_path(name, cache_dir)
    try:
        return dict(file_sha256=file_sha256(path))
    except OSError:
        return dict(missing=path)  # refused when the run loads it


def load_crafting_model(entry: str, classes, cache_dir=None):
    """The fixed crafting model named by ``entry``, in eval mode; it must classify
    ``classes`` (its logits are the loss FGSM climbs)."""
    name, path = parse_backbone_entry(entry)
    model = build_backbone(name, weights=path, cache_dir=cache_dir)
    if getattr(model, "task_classes", None) != list(classes):
        raise FeatlabError(f"--crafting-model {entry} does not classify this dataset's classes "
                           f"({', '.join(classes)}); train one with 'featlab train --recipe "
                           f"standard' on this dataset, or use --crafting-model auto")
    return model.eval()


def fgsm_sign(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``sign(grad_x J(theta, x, y))`` of ``model`` in eval mode, as int8 of the shape of
    ``images`` — the FGSM direction of :class:`~featlab.perturbations.attacks.fgsm.FGSM`."""
    with eval_mode(model):
        return input_gradient(model, images, labels).sign().to(torch.int8)


class StaticSets:
    """The FGSM directions of a fixed crafting model for the images of one set.

    Parameters
    ----------
    model : the crafting model (images in [0, 1] -> logits), fixed
    images : :class:`~featlab.training.data.Images`
    device : where the crafting model runs

    Preloaded sets are crafted once here, ``(n, 3, S, S)`` int8 (the size of the images);
    a set decoded batch by batch gets each batch's directions from the same fixed model
    when the batch is served (the same examples, recomputed).
    """

    def __init__(self, model, images, device, batch_size: int = 256):
        self.model, self.device = model.to(device).eval(), device
        self.signs = None
        if images.pixels is not None:
            order = torch.arange(len(images))
            parts = [fgsm_sign(self.model, x.to(device), y.to(device)).cpu()
                     for x, y in images.batches(order, batch_size, min_size=1)]
            self.signs = torch.cat(parts) if parts else None
            log.info("crafted the FGSM directions of %d images once", len(images))

    def sign(self, positions: torch.Tensor, images: torch.Tensor,
             labels: torch.Tensor) -> torch.Tensor:
        """The directions of the batch ``images`` (rows ``positions`` of the set), float on
        the images' device."""
        if self.signs is not None:
            return self.signs[positions].to(images.device, torch.float32)
        return fgsm_sign(self.model, images, labels).to(torch.float32)
