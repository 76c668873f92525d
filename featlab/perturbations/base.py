"""The perturbation contract.

Every perturbation is a subclass of :class:`Perturbation` registered in
:data:`featlab.perturbations.PERTURBATIONS` under the name used in condition strings
(``blur``, ``fgsm``, ...). Images are float NCHW tensors in ``[0, 1]``; normalization
belongs to the model wrapper.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..params import ConditionType, Param  # noqa: F401  (Param: every perturbation's type)


class Perturbation(ConditionType):
    """Base class: override :meth:`perturb` (and optionally :meth:`perturb_many`).

    The class attributes and class methods every registered condition declares are those of
    :class:`~featlab.params.ConditionType`, with their defaults: ``name``, ``params``,
    ``needs_boxes`` (object boxes: ``region=object`` blur, ``target=fg`` ...),
    ``needs_model`` (a differentiable classifier: gradient attacks), ``per_image`` (CPU,
    one image at a time), :meth:`expand_values`, :meth:`validate_params`,
    :meth:`check_classes` and :meth:`class_record`.
    """

    def perturb(self, images: torch.Tensor, *, labels: torch.Tensor, boxes: torch.Tensor,
                model: Optional[torch.nn.Module], generator: torch.Generator,
                **params) -> torch.Tensor:
        """Return perturbed images of the same shape and dtype, in ``[0, 1]``.

        Parameters
        ----------
        images : Tensor of shape (n, 3, H, W), float32 in [0, 1]
        labels : Tensor of shape (n,), int64
        boxes : Tensor of shape (n, MAX_INSTANCES, 4), float32, ``x0, y0, x1, y1`` in pixels,
            NaN rows for absent instances
        model : classifier mapping images in [0, 1] to logits, or None
        generator : torch.Generator seeded per (run seed, condition, chunk)
        **params : this perturbation's parameters, already validated
        """
        raise NotImplementedError

    def perturb_many(self, images, params_list: list, **kwargs) -> list:
        """Perturb one batch at several parameter settings (override to share work)."""
        return [self.perturb(images, **kwargs, **p) for p in params_list]
