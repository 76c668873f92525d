"""Per-image CPU perturbations: the common corruptions, one image at a time, in NumPy.

The ImageNet-C corruptions (:mod:`.corrupt`) and the M-TLAT paper's rotation, translation,
colour shift and occlusion (Section 4.1, "Common Corruptions") are CPU work on one image
(about 10-200 ms at 224 px), with randomness of their own (noise, an angle's sign, a
position). They subclass :class:`PerImagePerturbation`, which

* declares ``per_image = True``: extraction runs :meth:`~PerImagePerturbation.perturb_image`
  inside the decode worker processes (:mod:`featlab.extraction.cpu_perturb`), not in the
  main process;
* makes every corrupted image a pure function of (run seed, image id, corruption,
  severity): :meth:`~PerImagePerturbation.image_seed` derives the image's seed from them,
  whatever process, batch or chunk it is computed in;
* restricts the corruption to a region, as :mod:`.blur` does for blur.

Regions
-------
``all``         the whole image is corrupted (the default: the M-TLAT and ImageNet-C setting).
``object``      each object box is corrupted on its own, as its own small image (seed
                derived from the image's seed and the box's index), so nothing outside the
                box enters it; pixels outside the boxes are unchanged. Sizes in the paper's
                pixels (translation, occlusion) scale with the *whole* image, so a severity
                means the same pixel amount in every region.
``background``  the whole image is corrupted with the image's seed (the same bytes as
                ``all``) and the original box contents are pasted back.

``severity=0`` is the identity (the start of a sweep; ImageNet-C itself has 1-5).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..utils.seeding import derive_seed
from .base import Param, Perturbation
from .blur import box_slices

REGIONS = ("object", "background", "all")
REFERENCE_SIZE = 224  # the M-TLAT paper's pixel amounts are at 224 x 224


def severity_param() -> Param:
    return Param("severity", int, required=True, low=0, high=5, multi=True,
                 help="1-5, spaced evenly over the corruption's range; 0 is the identity")


def region_param() -> Param:
    return Param("region", str, default="all", choices=REGIONS,
                 help="object: inside the boxes only; background: outside them; all")


def severity_value(low: float, high: float, severity: int) -> float:
    """The paper's range ``[low, high]`` spaced evenly over severities 1..5."""
    return low + (high - low) * (int(severity) - 1) / 4.0


class PerImagePerturbation(Perturbation):
    """Base of the per-image CPU perturbations; subclasses implement :meth:`apply`."""

    per_image = True
    needs_boxes = True  # only for region=object|background (extraction checks region)
    uint8_output = False  # True when every output is k/255 (moved between processes as uint8)

    def prepare(self) -> None:
        """Called once in the main process before decode workers are forked (imports, setup)."""

    def seed_parts(self, params: dict) -> tuple:
        """What, besides the run seed and the image id, the image's randomness depends on."""
        return (self.name, int(params["severity"]))

    def image_seed(self, run_seed: int, image_id: int, params: dict) -> int:
        """The seed of one image under this condition (independent of region)."""
        return derive_seed("per-image", int(run_seed), int(image_id), *self.seed_parts(params))

    def apply(self, array: np.ndarray, seed: int, full_size: tuple, **params) -> np.ndarray:
        """Corrupt a whole array.

        Parameters
        ----------
        array : ndarray of shape (3, h, w), float32 in [0, 1] — the image or one box crop
        seed : int — all the randomness of this call
        full_size : (H, W) of the whole image (pixel amounts scale with it)
        **params : severity and the perturbation's own parameters (no region)

        Returns
        -------
        ndarray of shape (3, h, w), float32 in [0, 1]
        """
        raise NotImplementedError

    def perturb_image(self, image: np.ndarray, boxes: np.ndarray, seed: int, *,
                      region: str = "all", **params) -> np.ndarray:
        """Corrupt one image within ``region``.

        Parameters
        ----------
        image : ndarray of shape (3, H, W), float32 in [0, 1]
        boxes : ndarray of shape (MAX_INSTANCES, 4), ``x0, y0, x1, y1`` pixels, NaN rows absent
        seed : int — the image's seed (:meth:`image_seed`)

        Returns
        -------
        ndarray of shape (3, H, W), float32 in [0, 1]; ``image`` is not modified
        """
        image = np.ascontiguousarray(image, dtype=np.float32)
        if int(params["severity"]) == 0:
            return image.copy()
        full = image.shape[1:]
        if region == "all":
            return self._checked(self.apply(image, seed, full, **params), image.shape)
        slices = [s for s in (box_slices(torch.as_tensor(b), *full) for b in boxes) if s]
        if region == "background":
            out = self._checked(self.apply(image, seed, full, **params), image.shape).copy()
            for rows, cols in slices:
                out[:, rows, cols] = image[:, rows, cols]
            return out
        out = image.copy()
        for k, (rows, cols) in enumerate(slices):
            crop = np.ascontiguousarray(image[:, rows, cols])
            box_seed = derive_seed("box", seed, k)
            out[:, rows, cols] = self._checked(self.apply(crop, box_seed, full, **params),
                                               crop.shape)
        return out

    @staticmethod
    def _checked(out: np.ndarray, shape: tuple) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.shape != shape:
            raise AssertionError(f"corruption returned shape {out.shape}, expected {shape}")
        return np.clip(out, 0.0, 1.0)

    def perturb(self, images, *, boxes=None, generator=None, image_ids=None,
                run_seed: Optional[int] = None, **params):
        """Batch form (in-process; extraction uses the workers instead).

        With ``image_ids`` (and ``run_seed``, default 0) the bytes are those extraction
        stores for these images; without, each image's seed is drawn from ``generator``.
        """
        params = {k: v for k, v in params.items() if k not in ("labels", "model")}
        n = images.shape[0]
        if image_ids is not None:
            seeds = [self.image_seed(run_seed or 0, i, params) for i in image_ids]
        else:
            draws = torch.randint(0, 2 ** 62, (n,), generator=generator).tolist()
            seeds = [derive_seed("drawn", d, *self.seed_parts(params)) for d in draws]
        if boxes is None:
            boxes = torch.full((n, 1, 4), float("nan"))
        arrays = images.detach().cpu().numpy()
        out = [self.perturb_image(arrays[i], boxes[i].cpu().numpy(), seeds[i], **params)
               for i in range(n)]
        return torch.from_numpy(np.stack(out)).to(images.device, images.dtype)
