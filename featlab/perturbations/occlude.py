"""Occlusion, one of the M-TLAT paper's four extra common corruptions (Section 4.1).

``occlude:severity=1..5`` masks a grey (0.5) square of side 60, 76.75, 93.5, 110.25 or
127 px at 224 px (the paper's range 60-127 spaced evenly), scaled to the image size
(``min(H, W) / 224``) and rounded, at a position drawn uniformly from the image's seed
among those where the square lies inside the image. With ``region=object`` the square is
drawn inside each box; a side larger than the box is cut to the box.
"""
from __future__ import annotations

import numpy as np

from .registry import PERTURBATIONS
from .per_image import (REFERENCE_SIZE, PerImagePerturbation, region_param, severity_param,
                        severity_value)

SIDE_AT_224 = (60.0, 127.0)
GREY = 0.5


def occlude_array(array: np.ndarray, top: int, left: int, height: int, width: int,
                  value: float = GREY) -> np.ndarray:
    """(C, H, W) with the rectangle ``[top, top+height) x [left, left+width)`` set to value."""
    out = array.copy()
    out[:, top:top + height, left:left + width] = value
    return out


@PERTURBATIONS.register("occlude")
class Occlude(PerImagePerturbation):
    """A grey square of side 60-127 px at 224 px at a random place (M-TLAT, Section 4.1)."""

    name = "occlude"
    params = (severity_param(), region_param())

    @staticmethod
    def square(severity: int, seed: int, shape: tuple, full_size: tuple):
        """``(top, left, height, width)`` of the square in an array of ``shape = (h, w)``."""
        side = int(round(severity_value(*SIDE_AT_224, severity) * min(full_size)
                         / REFERENCE_SIZE))
        height, width = min(max(side, 1), shape[0]), min(max(side, 1), shape[1])
        rng = np.random.default_rng(seed)
        top = int(rng.integers(0, shape[0] - height + 1))
        left = int(rng.integers(0, shape[1] - width + 1))
        return top, left, height, width

    def apply(self, array, seed, full_size, *, severity: int, **params):
        return occlude_array(array, *self.square(severity, seed, array.shape[1:], full_size))
