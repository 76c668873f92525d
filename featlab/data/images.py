"""Image decoding and box geometry shared by the dataset loaders.

Every loader returns images as float32 ``(3, size, size)`` arrays in ``[0, 1]``: decoded with
PIL, converted to RGB (grayscale, CMYK, palette and RGBA files all become RGB), resized
anisotropically to ``size x size`` with bilinear filtering (PIL's resize is antialiased when
it shrinks). Boxes travel as ``x, y, w, h`` in original pixels and are returned by ``load``
as ``x0, y0, x1, y1`` in resized pixels, NaN rows for absent instances.

JPEGs that shrink by 2x or more are decoded at reduced scale by libjpeg's DCT scaling
(:meth:`PIL.Image.Image.draft`) before the bilinear resize, which is several times faster
than a full decode and keeps the result antialiased.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

BILINEAR = Image.Resampling.BILINEAR
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def to_chw_float(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 array of shape (3, H, W) in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    out = array.astype(np.float32, order="C")
    out /= np.float32(255.0)
    return out


def resize_rgb(image: Image.Image, size: int, box=None) -> Image.Image:
    """Convert ``image`` to RGB and resize it to ``size x size`` (bilinear, antialiased).

    ``box`` is the source region (PIL convention) to resample, e.g. the one returned by
    :meth:`PIL.Image.Image.draft`. Grayscale is resized before it is replicated to three
    channels (the same result, a third of the work); every other mode is converted first
    (palette images cannot be resampled bilinearly).
    """
    if box is not None and tuple(box) == (0, 0, *image.size):
        box = None
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if image.size != (size, size) or box is not None:
        image = image.resize((size, size), BILINEAR, box=box)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def decode_resized(path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode the image file at ``path`` to an RGB ``size x size`` float array.

    Returns
    -------
    image : ndarray of shape (3, size, size), float32 in [0, 1]
    original_size : (width, height) of the file as stored (no EXIF rotation, like the
        COCO annotations)

    Raises
    ------
    FileNotFoundError when the file is missing; OSError naming the file and the decoder's
    reason when it is not a readable image (truncated, corrupt, unknown format).
    """
    try:
        with Image.open(path) as image:
            original_size = image.size
            box = None
            if image.format == "JPEG":
                drafted = image.draft(None, (size, size))
                box = drafted[1] if drafted else None
            image.load()
            resized = resize_rgb(image, size, box=box)
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as exc:
        raise OSError(f"cannot decode image {path}: {exc}") from exc
    return to_chw_float(resized), original_size


def read_size(path: str) -> tuple[int, int]:
    """(width, height) from the file header only (no pixel decode)."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as exc:
        raise OSError(f"cannot read image header {path}: {exc}") from exc


def clip_box(box, width: float, height: float):
    """Clip an ``x, y, w, h`` box to the image; None when nothing of it is left.

    A box is invalid (None) when it has a non-finite coordinate, zero or negative width or
    height, or lies outside the image.
    """
    x, y, w, h = (float(v) for v in box)
    if not np.all(np.isfinite([x, y, w, h])):
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def union_area(boxes) -> float:
    """Exact area covered by the union of ``x, y, w, h`` boxes (coordinate compression)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return 0.0
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    xs, ys = np.unique(np.r_[x0, x1]), np.unique(np.r_[y0, y1])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside_x = (cx[None, :] > x0[:, None]) & (cx[None, :] < x1[:, None])  # (boxes, cells x)
    inside_y = (cy[None, :] > y0[:, None]) & (cy[None, :] < y1[:, None])
    covered = np.einsum("bi,bj->ij", inside_x.astype(np.int64), inside_y.astype(np.int64)) > 0
    cell_area = np.outer(np.diff(xs), np.diff(ys))
    return float(cell_area[covered].sum())


def xywh_to_resized_xyxy(boxes: np.ndarray, width: float, height: float,
                         size: int) -> np.ndarray:
    """Boxes (k, 4) ``x, y, w, h`` in original pixels -> ``x0, y0, x1, y1`` in the pixels of
    the ``size x size`` resized image. NaN rows stay NaN."""
    boxes = np.asarray(boxes, dtype=np.float64)
    sx, sy = size / float(width), size / float(height)
    out = np.empty_like(boxes)
    out[:, 0] = boxes[:, 0] * sx
    out[:, 1] = boxes[:, 1] * sy
    out[:, 2] = (boxes[:, 0] + boxes[:, 2]) * sx
    out[:, 3] = (boxes[:, 1] + boxes[:, 3]) * sy
    return out.astype(np.float32)


def file_exists(root: str, relative: str) -> bool:
    """True when ``root/relative`` is an existing regular file."""
    return os.path.isfile(os.path.join(root, relative))
