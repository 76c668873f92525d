"""Colour distortion, one of the M-TLAT paper's four extra common corruptions (Section 4.1).

``color:severity=1..5`` adds 8, 13.5, 19, 24.5 or 30 % of the maximum pixel value (1.0)
to every pixel of one RGB channel, chosen at random from the image's seed ("one of the
RGB channel is randomly chosen and a constant is added to all the pixels of this
channel"); values are clipped at 1. With ``region=object`` only the box pixels change.
"""
from __future__ import annotations

import numpy as np

from .registry import PERTURBATIONS
from .per_image import PerImagePerturbation, region_param, severity_param, severity_value

FRACTION = (0.08, 0.30)


def shift_channel(array: np.ndarray, channel: int, offset: float) -> np.ndarray:
    """(C, H, W) with ``offset`` added to ``channel`` (clipped to [0, 1]); others untouched."""
    out = array.copy()
    out[channel] = np.minimum(array[channel] + np.float32(offset), np.float32(1.0))
    return out


@PERTURBATIONS.register("color")
class ColorShift(PerImagePerturbation):
    """One random RGB channel raised by 8-30 % of the maximum value (M-TLAT, Section 4.1)."""

    name = "color"
    params = (severity_param(), region_param())

    @staticmethod
    def channel(seed: int) -> int:
        return int(np.random.default_rng(seed).integers(3))

    def apply(self, array, seed, full_size, *, severity: int, **params):
        return shift_channel(array, self.channel(seed), severity_value(*FRACTION, severity))
