"""Drawing primitives of the synthetic benchmark: coordinate grids, random colours, mixes,
soft steps, waves, line lattices, value noise, rotations (float32, batched)."""
from __future__ import annotations

import numpy as np

F = np.float32
TAU = F(2 * np.pi)


def grid(n):
    c = (np.arange(n, dtype=F) + F(0.5)) / F(n)
    return c[None, :, None], c[None, None, :]  # y (1, n, 1), x (1, 1, n) in (0, 1)


def uniform(rng, lo, hi, b):
    return rng.uniform(lo, hi, (b, 1, 1)).astype(F)


def colour(rng, rgb, b, jitter=0.06):
    return np.clip(np.asarray(rgb, F) + rng.normal(0, jitter, (b, 1, 1, 3)), 0, 1).astype(F)


def mix(a, c, t):
    return a + (c - a) * np.asarray(t, F)[..., None]


def step(d):
    """Soft step: 0 for d <= -0.5 px, 1 for d >= 0.5 px."""
    return np.clip(d + F(0.5), 0, 1)


def wave(x, period, edge=1.0):
    """Soft square wave of ``x`` (px) with ``period`` (px); transitions ``edge`` px wide."""
    return np.clip(0.5 + np.sin(TAU * x / period) * period / (TAU * edge), 0, 1).astype(F)


def lines(a, b, pa, pb, width=1.0):
    """Grid lines every ``pa`` px along ``a`` and ``pb`` px along ``b``."""
    da = pa / 2 - np.abs(a % pa - pa / 2)
    db = pb / 2 - np.abs(b % pb - pb / 2)
    return np.clip(width + 0.5 - np.minimum(da, db), 0, 1)


def noise(rng, b, n, cells=4):
    """Smooth value noise in [-1, 1], shape (B, n, n), bilinear over a ``cells`` grid."""
    g = rng.uniform(-1, 1, (b, cells + 1, cells + 1)).astype(F)
    pos = np.linspace(0, cells, n, dtype=F)
    i = np.minimum(pos.astype(int), cells - 1)
    m = np.zeros((n, cells + 1), F)
    m[np.arange(n), i], m[np.arange(n), i + 1] = 1 - (pos - i), pos - i
    return m @ g @ m.T


def rotate(y, x, angle):
    c, s = np.cos(angle), np.sin(angle)
    return x * c + y * s, y * c - x * s


def over(lower, upper, y, level, n):
    """``upper`` above the horizontal line ``y = level``, ``lower`` below it."""
    return mix(lower, upper, step((level - y) * n))
