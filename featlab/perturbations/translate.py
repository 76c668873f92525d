"""Translation, one of the M-TLAT paper's four extra common corruptions (Section 4.1).

``translate:severity=1..5`` moves the image by 15, 26.75, 38.5, 50.25 or 62 px at 224 px
(the paper's range 15-62 spaced evenly), scaled to the image size (x by W/224, y by
H/224), in a direction drawn uniformly on the circle from the image's seed. The shift is
rounded to whole pixels (no resampling blur); the vacated area is zero, as the paper says.
With ``region=object`` each box's content moves inside its box.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import PERTURBATIONS
from .per_image import (REFERENCE_SIZE, PerImagePerturbation, region_param, severity_param,
                        severity_value)

PIXELS_AT_224 = (15.0, 62.0)


def translate_array(array: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift (C, H, W) by ``dx`` columns right and ``dy`` rows down, zeros where vacated."""
    _, h, w = array.shape
    out = np.zeros_like(array)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        array[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@PERTURBATIONS.register("translate")
class Translate(PerImagePerturbation):
    """Translation by 15-62 px at 224 px in a random direction (M-TLAT, Section 4.1)."""

    name = "translate"
    params = (severity_param(), region_param())

    @staticmethod
    def shift(severity: int, seed: int, full_size: tuple) -> tuple[int, int]:
        """(dx, dy) in whole pixels of an image of ``full_size = (H, W)``."""
        angle = np.random.default_rng(seed).uniform(0.0, 2.0 * math.pi)
        distance = severity_value(*PIXELS_AT_224, severity)
        height, width = full_size
        dx = round(distance * math.cos(angle) * width / REFERENCE_SIZE)
        dy = round(distance * math.sin(angle) * height / REFERENCE_SIZE)
        return int(dx), int(dy)

    def apply(self, array, seed, full_size, *, severity: int, **params):
        return translate_array(array, *self.shift(severity, seed, full_size))
