"""Rotation, one of the M-TLAT paper's four extra common corruptions (Section 4.1).

``rotate:severity=1..5`` turns the image about its centre by 8, 16, 24, 32 or 40 degrees
(the paper's range 8-40 spaced evenly), clockwise or counter-clockwise at random (the sign
from the image's seed). Bilinear interpolation; "the pixel values of the area outside the
transformed images are set to zero", as the paper says. With ``region=object`` each box
turns about its own centre inside the box.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .registry import PERTURBATIONS
from .per_image import PerImagePerturbation, region_param, severity_param, severity_value

DEGREES = (8.0, 40.0)


def rotate_array(array: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate (C, H, W) counter-clockwise as displayed by ``degrees`` about the centre.

    Bilinear; outside the source image is 0. A multiple of 90 degrees on a square image is
    exactly ``np.rot90`` (the matrix entries are rounded at 1e-12, so cos 90 is 0).

    Returns
    -------
    ndarray of shape (C, H, W), the dtype of ``array``
    """
    theta = math.radians(degrees)
    cos, sin = round(math.cos(theta), 12), round(math.sin(theta), 12)
    # output (row, col) -> source (row, col): rows point down, so a displayed
    # counter-clockwise turn reads row_s = cos r + sin c, col_s = -sin r + cos c
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, cos, sin], [0.0, -sin, cos]])
    centre = np.array([0.0, (array.shape[1] - 1) / 2.0, (array.shape[2] - 1) / 2.0])
    offset = centre - matrix @ centre
    return ndimage.affine_transform(array, matrix, offset=offset, order=1, mode="constant",
                                    cval=0.0, prefilter=False)


@PERTURBATIONS.register("rotate")
class Rotate(PerImagePerturbation):
    """Rotation by 8-40 degrees with a random sign (M-TLAT, Section 4.1)."""

    name = "rotate"
    params = (severity_param(), region_param())

    @staticmethod
    def degrees(severity: int, seed: int) -> float:
        sign = 1.0 if np.random.default_rng(seed).integers(2) else -1.0
        return sign * severity_value(*DEGREES, severity)

    def apply(self, array, seed, full_size, *, severity: int, **params):
        return rotate_array(array, self.degrees(severity, seed))
