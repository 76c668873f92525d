"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019), as the M-TLAT paper's
benchmark uses them (Section 4.1), through the maintained ``imagecorruptions-imaug`` package.

``corrupt:name=fog:severity=1:2:3:4:5`` stores one condition per severity;
``corrupt:name=imagenet-c:severity=3`` expands, when it is parsed, into the 15 conditions
``corrupt:name=gaussian_noise:severity=3:region=all`` ... ``corrupt:name=jpeg_compression:...``
(severity is the strength parameter that takes several values; for a few corruptions list
them: ``corrupt:name=fog:severity=3,corrupt:name=snow:severity=3``).

The package works on ``(H, W, 3)`` uint8 images and returns uint8. An image in [0, 1] is
converted with ``round(255 x)`` (exact for decoded images, which are k/255) and back with
``k / 255``. Images smaller than the package's 32 px minimum (box crops, tiny test images)
are extended to 32 px by symmetric reflection and cut back after.

Randomness. The package draws from NumPy's global random state (noise, motion angle,
frost crop, fog map, snow, elastic field), and glass blur and impulse noise take a ``seed``
argument instead (numba's and scikit-image's generators). Each call here seeds all of them
from the image's seed and restores NumPy's global state afterwards, so a corrupted image is
a pure function of (run seed, image id, corruption, severity), in any process, and callers'
own use of ``np.random`` is undisturbed. (The package does not use Python's ``random``.)
OpenCV runs single-threaded in every process that corrupts (see :func:`_package`).
"""
from __future__ import annotations

import contextlib
import functools
import inspect

import numpy as np

from ..errors import FeatlabError
from .registry import PERTURBATIONS
from .base import Param
from .per_image import PerImagePerturbation, region_param, severity_param

IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
              "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
              "elastic_transform", "pixelate", "jpeg_compression")
ALIASES = {"imagenet-c": IMAGENET_C}
MIN_SIDE = 32  # imagecorruptions rejects smaller images


@functools.lru_cache(maxsize=1)
def _package():
    """The package and the corruptions that take ``seed=``; OpenCV set to one thread.

    One OpenCV thread: the parallelism is the decode workers', and a forked worker that
    touches an OpenCV thread pool started in its parent can hang (seen with
    ``cv2.setNumThreads`` in a DataLoader worker). Extraction calls this in the main
    process before forking (:meth:`Corrupt.prepare`).
    """
    try:
        import cv2
        import imagecorruptions
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise FeatlabError("corrupt:... needs the package imagecorruptions-imaug; install it "
                           "with: pip install imagecorruptions-imaug==1.1.5") from err
    cv2.setNumThreads(1)
    seeded = {n for n in IMAGENET_C
              if "seed" in inspect.signature(imagecorruptions.corruption_dict[n]).parameters}
    return imagecorruptions, frozenset(seeded)


@contextlib.contextmanager
def numpy_global_seed(seed: int):
    """Seed NumPy's global random state for the block, then restore the previous state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def to_uint8_hwc(array: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 with ``round(255 x)``."""
    scaled = np.rint(np.clip(array, 0.0, 1.0) * np.float32(255.0))
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0))


def from_uint8_hwc(array: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 ``k / 255`` (the dataset decoders' formula)."""
    out = array.transpose(2, 0, 1).astype(np.float32, order="C")
    out /= np.float32(255.0)
    return out


def imagecorruptions_call(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """``imagecorruptions.corrupt`` on an (H, W, 3) uint8 image, all randomness from ``seed``.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    package, seeded = _package()
    seed32 = int(seed) % 2 ** 32
    kwargs = {"seed": seed32} if name in seeded else {}
    with numpy_global_seed(seed32):
        return package.corrupt(image, severity=int(severity), corruption_name=name, **kwargs)


@PERTURBATIONS.register("corrupt")
class Corrupt(PerImagePerturbation):
    """An ImageNet-C corruption at severity 1-5 (``imagecorruptions-imaug``)."""

    name = "corrupt"
    params = (
        Param("name", str, required=True, choices=IMAGENET_C + tuple(ALIASES),
              help="an ImageNet-C corruption, or imagenet-c for all 15"),
        severity_param(),
        region_param(),
    )
    uint8_output = True

    @classmethod
    def expand_values(cls, values: dict) -> dict:
        """``name=imagenet-c`` (an alias) -> the 15 corruptions it stands for."""
        names = []
        for name in values["name"]:
            for item in ALIASES.get(name, (name,)):
                if item not in names:
                    names.append(item)
        return dict(values, name=names)

    def prepare(self) -> None:
        _package()

    def seed_parts(self, params: dict) -> tuple:
        return (self.name, params["name"], int(params["severity"]))

    def apply(self, array, seed, full_size, *, name: str, severity: int, **params):
        _, h, w = array.shape
        pad = ((0, max(MIN_SIDE - h, 0)), (0, max(MIN_SIDE - w, 0)))
        image = to_uint8_hwc(array)
        if pad[0][1] or pad[1][1]:
            image = np.pad(image, pad + ((0, 0),), mode="symmetric")
        out = imagecorruptions_call(image, name, severity, seed)
        return from_uint8_hwc(np.ascontiguousarray(out[:h, :w]))
