"""Vectorised procedural drawing for the synthetic context-scene benchmark.

Everything is drawn in batches with numpy (no per-pixel Python loops) from a
``numpy.random.Generator``, as float32 in ``[0, 1]``: scenes are ``(B, H, W, 3)``; objects are
an alpha matte ``(B, H, W)`` plus colours ``(B, H, W, 3)``. Lengths are in pixels of a 64-px
image and scale with the image size.

Scenes are the context channel (one kind per supercategory, plus extra kinds for the
scene-centric pretraining set). Objects are ``shape x texture`` with random colours: class
identity lives in the shape and in a texture of period 4-7 px, which a Gaussian blur of the
box (sigma 2-8 px) wipes out, as in the fusion paper's Section 3.1, while the mean colour of
an object says nothing about its class.
"""
from __future__ import annotations

import numpy as np

from .synthetic_primitives import F, TAU, lines, mix, rotate, step, uniform, wave
from .synthetic_scenes import SCENES, draw_scenes, plain_backgrounds  # noqa: F401  (public face)

SHAPES = ("ellipse", "triangle", "square", "star", "cross", "diamond",
          "hexagon", "crescent", "heart", "ring")
TEXTURES = ("hstripes", "vstripes", "checker", "dots", "rings", "diagonal", "grid", "zigzag")


def _star(u, v, au, av, r):
    tri = 1 - np.abs((np.arctan2(u, -v) * F(5 / TAU)) % 1 * 2 - 1)
    return (r - (.42 + .58 * tri)) * .6


def _heart(u, v, au, av, r):
    lobes = np.minimum(np.hypot(u + .47, v + .4), np.hypot(u - .47, v + .4)) - .53
    return np.minimum(lobes, np.maximum(-.4 - v, (1.4 * au - (1 - v)) / F(1.72)))


#: Shape name -> approximate signed distance (< 0 inside, in box half-sizes) as a function of
#: ``u, v, |u|, |v|, r``; every shape spans [-1, 1] x [-1, 1].
_SDF = {
    "ellipse": lambda u, v, au, av, r: r - 1,
    "triangle": lambda u, v, au, av, r: np.maximum(v - 1, (2 * au - (v + 1)) / F(2.236)),
    "square": lambda u, v, au, av, r: np.sqrt(np.sqrt(au ** 4 + av ** 4)) - 1,
    "star": _star,
    "cross": lambda u, v, au, av, r: np.minimum(np.maximum(au - .36, av - 1),
                                                np.maximum(au - 1, av - .36)),
    "diamond": lambda u, v, au, av, r: (au + av - 1) / F(1.414),
    "hexagon": lambda u, v, au, av, r: np.maximum(av - .87, .87 * au + .5 * av - .87),
    "crescent": lambda u, v, au, av, r: np.maximum(r - 1, .82 - np.hypot(u - .5, v + .15)),
    "heart": _heart,
    "ring": lambda u, v, au, av, r: np.abs(r - .72) - .28,
}


def _dots(a, c, p):
    s = 1.3 * p
    return step(.32 * s - np.hypot(a % s - s / 2, c % s - s / 2))


#: Texture name -> pattern in [0, 1] of the texture coordinates ``a, c`` (px) and period.
_TEXTURE = {
    "hstripes": lambda a, c, p: wave(c, p),
    "vstripes": lambda a, c, p: wave(a, p),
    "checker": lambda a, c, p: np.clip(.5 + 2 * np.sin(TAU * a / p) * np.sin(TAU * c / p), 0, 1),
    "dots": _dots,
    "rings": lambda a, c, p: wave(np.hypot(a, c), p),
    "diagonal": lambda a, c, p: wave((a + c) / F(1.414), p),
    "grid": lambda a, c, p: lines(a, c, 1.3 * p, 1.3 * p, .6),
    "zigzag": lambda a, c, p: wave(c + np.abs((a / p) % 1 - .5) * p, p),
}
assert tuple(_SDF) == SHAPES and tuple(_TEXTURE) == TEXTURES


def draw_objects(rng, shape, texture, boxes, n):
    """Objects of one type, one per row of ``boxes`` (b, 4) ``x, y, w, h`` (px, nominal box
    the shape spans before a random rotation). Returns alpha (b, n, n) and colours
    (b, n, n, 3), float32 in [0, 1]. Per object: rotation, texture period, phase and
    orientation, a random colour with a contrasting pattern colour, and a thin outline."""
    boxes = np.asarray(boxes, F).reshape(-1, 4)
    b, k = len(boxes), n / 64.0
    hw, hh = boxes[:, 2, None, None] / 2, boxes[:, 3, None, None] / 2
    pix = np.arange(n, dtype=F) + F(.5)
    dx = pix[None, None, :] - (boxes[:, 0, None, None] + hw)
    dy = pix[None, :, None] - (boxes[:, 1, None, None] + hh)
    u, v = rotate(dy, dx, uniform(rng, -.25, .25, b))
    u, v = u / hw, v / hh
    dist = _SDF[SHAPES[shape]](u, v, np.abs(u), np.abs(v), np.hypot(u, v)) * np.minimum(hw, hh)
    alpha = step(-dist)
    period = uniform(rng, 4.5, 7, b) * k
    a, c = rotate(dy, dx, uniform(rng, -.2, .2, b))
    pattern = _TEXTURE[TEXTURES[texture]](a + uniform(rng, 0, 8, b) * k, c + uniform(rng, 0, 8, b) * k,
                                          period)
    base = rng.uniform(.12, .9, (b, 1, 1, 3)).astype(F)
    bright = (base @ np.array([.3, .59, .11], F) > .5)[..., None]
    ink = np.where(bright, base * .2, base + (1 - base) * .8)
    rgb = mix(base, ink, pattern)
    rim = np.clip(1.2 - np.abs(dist + 1.2), 0, 1)
    rgb = mix(rgb, np.where(bright, F(.08), F(.95)) * np.ones_like(base), .8 * rim)
    return alpha, rgb


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (clipped) -> uint8 in 0..255, rounded half up; same shape."""
    return (np.clip(image, 0, 1) * 255 + .5).astype(np.uint8)
