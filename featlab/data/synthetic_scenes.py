"""The scene kinds of the synthetic benchmark (the context channel: one kind per
supercategory, plus extra kinds for the scene-centric pretraining set), float32
``(B, H, W, 3)`` in ``[0, 1]``; lengths in pixels of a 64-px image, scaled with the size."""
from __future__ import annotations

import numpy as np

from .synthetic_primitives import F, TAU, colour, grid, lines, mix, noise, over, rotate, step, uniform, wave

SCENES = ("grass field", "road", "tiled room", "sea", "sky", "kitchen table",
          "desert", "forest", "brick wall", "snowfield", "night city", "carpet")


def _grass(rng, b, n, k):
    y, x = grid(n)
    hz = uniform(rng, .1, .35, b)
    sky = mix(colour(rng, (.45, .65, .95), b), colour(rng, (.85, .9, .95), b), np.clip(y / hz, 0, 1))
    a, _ = rotate(y, x, uniform(rng, -.7, .7, b))
    t = (.55 * wave(a * n, uniform(rng, 10, 16, b) * k, 3) + .2 * noise(rng, b, n, 6)
         + .25 * wave(x * n + 2 * k * noise(rng, b, n, 8), 2.5 * k))
    return over(mix(colour(rng, (.15, .4, .1), b), colour(rng, (.45, .75, .25), b), t), sky, y, hz, n)


def _road(rng, b, n, k):
    y, x = grid(n)
    a, c = rotate(y - .5, x - .5, uniform(rng, -.5, .5, b))
    road = mix(colour(rng, (.28, .28, .3), b, .04), colour(rng, (.5, .5, .5), b, .04),
                .5 + .5 * noise(rng, b, n, 6))
    side = step(1.2 * k - np.abs(np.abs(c) - uniform(rng, .25, .4, b)) * n)
    mid = step(k - np.abs(c) * n) * wave(a * n + uniform(rng, 0, 20, b), uniform(rng, 10, 16, b) * k)
    return mix(mix(road, colour(rng, (.95, .95, .9), b), side), colour(rng, (.95, .8, .2), b), mid)


def _tiles(rng, b, n, k):
    y, x = grid(n)
    p, fl = uniform(rng, 8, 13, b) * k, uniform(rng, .55, .8, b)
    wall = mix(colour(rng, (.9, .87, .8), b), colour(rng, (.55, .55, .55), b),
                lines(x * n + uniform(rng, 0, 9, b), y * n, p, p))
    q = 1.6 * p
    chk = np.sin(TAU * (x * n + uniform(rng, 0, 9, b)) / q) * np.sin(TAU * y * n / q)
    chk = np.clip(.5 + 4 * chk, 0, 1)
    floor = mix(colour(rng, (.45, .3, .2), b), colour(rng, (.65, .5, .35), b), chk)
    return over(floor, wall, y, fl, n)


def _sea(rng, b, n, k):
    y, x = grid(n)
    hz = uniform(rng, 0, .2, b)
    a, c = rotate(y, x, uniform(rng, -.3, .3, b))
    deep = mix(colour(rng, (.1, .38, .62), b), colour(rng, (.04, .18, .4), b), y)
    w = c * n + uniform(rng, 1, 3, b) * k * np.sin(TAU * (a * uniform(rng, 1.5, 3, b) + uniform(rng, 0, 1, b)))
    crest = wave(w + 1.5 * k * noise(rng, b, n), uniform(rng, 6, 10, b) * k, 2)
    return over(mix(deep, colour(rng, (.6, .8, .95), b), .5 * crest), colour(rng, (.75, .85, .95), b),
                 y, hz, n)


def _sky(rng, b, n, k):
    y, _ = grid(n)
    g = uniform(rng, .8, .95, b)
    air = mix(colour(rng, (.2, .4, .85), b), colour(rng, (.75, .85, .98), b), np.clip(y / g, 0, 1))
    cloud = np.clip((noise(rng, b, n, 3) - uniform(rng, 0, .4, b)) * 3, 0, 1)
    air = mix(air, colour(rng, (.97, .97, .97), b, .02), .9 * cloud)
    return over(colour(rng, (.2, .3, .15), b), air, y, g, n)


def _wood(rng, b, n, k):
    y, x = grid(n)
    a, c = rotate(y, x, uniform(rng, -.35, .35, b))
    grain = wave(c * n + 3 * k * noise(rng, b, n, 3), uniform(rng, 4, 7, b) * k, 2)
    wood = mix(colour(rng, (.75, .55, .35), b), colour(rng, (.5, .32, .18), b),
                .6 * grain + .2 * noise(rng, b, n, 5))
    p = uniform(rng, 16, 24, b) * k
    seam = step(k - (p / 2 - np.abs(a * n % p - p / 2)))
    return mix(wood, colour(rng, (.25, .15, .08), b), .8 * seam)


def _desert(rng, b, n, k):
    y, x = grid(n)
    hz = uniform(rng, .15, .35, b)
    w = y * n + 4 * k * np.sin(TAU * (x * uniform(rng, .8, 2, b) + uniform(rng, 0, 1, b)))
    sand = mix(colour(rng, (.85, .62, .33), b), colour(rng, (.97, .82, .52), b),
                .7 * wave(w, uniform(rng, 12, 20, b) * k, 5) + .15 * noise(rng, b, n))
    return over(sand, colour(rng, (.6, .75, .95), b), y, hz, n)


def _forest(rng, b, n, k):
    _, x = grid(n)
    bg = mix(colour(rng, (.1, .25, .1), b), colour(rng, (.25, .45, .2), b),
              .5 + .5 * noise(rng, b, n, 5))
    p = uniform(rng, 10, 16, b) * k
    xx = x * n + 2 * k * noise(rng, b, n, 2) + uniform(rng, 0, 16, b)
    trunk = np.clip((np.sin(TAU * xx / p) - .4) * p / 2, 0, 1)
    return mix(bg, colour(rng, (.35, .22, .12), b), trunk)


def _bricks(rng, b, n, k):
    y, x = grid(n)
    hb = uniform(rng, 5, 8, b) * k
    lb = 2.2 * hb
    xs = x * n + (np.floor(y * n / hb) % 2) * lb / 2 + uniform(rng, 0, 9, b)
    brick = mix(colour(rng, (.65, .25, .15), b), colour(rng, (.5, .2, .12), b),
                 .5 + .5 * noise(rng, b, n, 6))
    return mix(brick, colour(rng, (.8, .78, .72), b), lines(xs, y * n, lb, hb, .5))


def _snow(rng, b, n, k):
    y, _ = grid(n)
    hz = uniform(rng, .1, .4, b)
    snow = mix(colour(rng, (.93, .95, .97), b, .03), colour(rng, (.75, .8, .9), b, .03),
                .5 + .5 * noise(rng, b, n, 4))
    sky = mix(colour(rng, (.55, .6, .68), b), colour(rng, (.8, .82, .85), b), np.clip(y / hz, 0, 1))
    return over(snow, sky, y, hz, n)


def _city(rng, b, n, k):
    y, x = grid(n)
    sky = mix(colour(rng, (.02, .03, .12), b, .02), colour(rng, (.1, .12, .3), b, .03), y)
    block = np.floor(x[0, 0] * n / (uniform(rng, 6, 11, b)[:, 0] * k)).astype(int)  # (B, n)
    top = np.take_along_axis(rng.uniform(.2, .75, (b, n)).astype(F), np.minimum(block, n - 1), 1)
    building = step((y - top[:, None, :]) * n)
    ry, cx = (np.arange(n) / (4 * k)).astype(int), (np.arange(n) / (3 * k)).astype(int)
    lit = (rng.random((b, ry[-1] + 1, cx[-1] + 1)) < .45)[:, ry[:, None], cx[None, :]]
    win = lit * wave(x * n, 3 * k) * wave(y * n, 4 * k) * building
    img = mix(sky, colour(rng, (.12, .12, .14), b, .02), building)
    return mix(img, colour(rng, (.95, .85, .4), b), win)


def _carpet(rng, b, n, k):
    y, x = grid(n)
    s1 = wave(x * n + uniform(rng, 0, 9, b), uniform(rng, 8, 14, b) * k, 1.5)
    s2 = wave(y * n + uniform(rng, 0, 9, b), uniform(rng, 8, 14, b) * k, 1.5)
    img = mix(colour(rng, (.55, .15, .25), b, .1), colour(rng, (.2, .15, .4), b, .1), .5 * s1)
    return mix(img, colour(rng, (.9, .8, .6), b, .1), .35 * s2)


_SCENE_FN = dict(zip(SCENES, (_grass, _road, _tiles, _sea, _sky, _wood, _desert, _forest, _bricks,
                              _snow, _city, _carpet)))


def draw_scenes(rng, scene, b, n):
    """``b`` random scenes of kind ``SCENES[scene]``, float32 (b, n, n, 3) in [0, 1]."""
    img = _SCENE_FN[SCENES[scene]](rng, b, n, n / 64.0)
    img = np.broadcast_to(img, (b, n, n, 3)) + F(.015) * rng.standard_normal((b, n, n, 3), dtype=F)
    return np.clip(img, 0, 1)


def plain_backgrounds(rng, b, n):
    """Neutral backgrounds for object pretraining: a flat random colour, a faint linear
    gradient and pixel noise; float32 (b, n, n, 3)."""
    y, x = grid(n)
    a, _ = rotate(y - .5, x - .5, uniform(rng, 0, 2 * np.pi, b))
    img = mix(colour(rng, (.5, .5, .5), b, .2), colour(rng, (.5, .5, .5), b, .2), .3 * (a + .5))
    return np.clip(img + F(.015) * rng.standard_normal((b, n, n, 3), dtype=F), 0, 1)
