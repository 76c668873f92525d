"""The embedded backbones' pretraining sets, drawn by the synthetic benchmark's generator:
objects on plain backgrounds (the ImageNet analogue) and scenes without objects (the
Places365 analogue)."""
from __future__ import annotations

import numpy as np

from ..errors import FeatlabError
from . import synthetic_draw as draw
from .synthetic import nominal_boxes, object_types


def _balanced_set(n, seed, image_size, n_types, stream, draw_batch):
    """Shared loop of the pretraining sets: balanced shuffled labels, drawn type by type in
    chunks. Returns images uint8 (n, 3, S, S) and labels int64 (n,)."""
    if n < 1 or image_size < 16:
        raise FeatlabError(f"need n >= 1 and image_size >= 16, got n={n}, "
                           f"image_size={image_size}")
    labels = np.random.default_rng([seed, stream]).permutation(np.arange(n) % n_types)
    images = np.empty((n, 3, image_size, image_size), np.uint8)
    for t in range(n_types):
        rows = np.flatnonzero(labels == t)
        rng = np.random.default_rng([seed, stream, t])
        for start in range(0, len(rows), 256):
            chunk = rows[start:start + 256]
            images[chunk] = draw.to_uint8(draw_batch(rng, t, len(chunk))).transpose(0, 3, 1, 2)
    return images, labels.astype(np.int64)


def object_pretraining_set(n, *, seed=0, image_size=64):
    """Objects of every type in :func:`object_types` on plain backgrounds, one per image at
    a random position and scale (box 12-45 % of the image): the ImageNet analogue.

    Returns
    -------
    images : ndarray of shape (n, 3, image_size, image_size), uint8
    labels : ndarray of shape (n,), int64 — balanced over the types, shuffled
    names : list of str — type names in label order
    """
    types = object_types()
    s = image_size

    def batch(rng, t, b):
        boxes = np.stack([nominal_boxes(rng, 1, s, .12, .45)[0] for _ in range(b)])
        background = draw.plain_backgrounds(rng, b, s)
        alpha, rgb = draw.draw_objects(rng, types[t][1], types[t][2], boxes, s)
        return background + (rgb - background) * alpha[..., None]

    images, labels = _balanced_set(n, seed, s, len(types), 2, batch)
    return images, labels, [name for name, _, _ in types]


def scene_pretraining_set(n, *, seed=0, image_size=64):
    """Scenes of every kind in ``synthetic_draw.SCENES`` (the supercategories' scenes and
    more), without objects: the Places365 analogue. Same returns as
    :func:`object_pretraining_set`, with the scene names."""
    images, labels = _balanced_set(n, seed, image_size, len(draw.SCENES), 3,
                                   lambda rng, t, b: draw.draw_scenes(rng, t, b, image_size))
    return images, labels, list(draw.SCENES)
