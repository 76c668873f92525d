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

F = np.float32
TAU = F(2 * np.pi)

SCENES = ("grass field", "road", "tiled room", "sea", "sky", "kitchen table",
          "desert", "forest", "brick wall", "snowfield", "night city", "carpet")
SHAPES = ("ellipse", "triangle", "square", "star", "cross", "diamond",
          "hexagon", "crescent", "heart", "ring")
TEXTURES = ("hstripes", "vstripes", "checker", "dots", "rings", "diagonal", "grid", "zigzag")


def _grid(n):
    c = (np.arange(n, dtype=F) + F(0.5)) / F(n)
    return c[None, :, None], c[None, None, :]  # y (1, n, 1), x (1, 1, n) in (0, 1)


def _u(rng, lo, hi, b):
    return rng.uniform(lo, hi, (b, 1, 1)).astype(F)


def _col(rng, rgb, b, jitter=0.06):
    return np.clip(np.asarray(rgb, F) + rng.normal(0, jitter, (b, 1, 1, 3)), 0, 1).astype(F)


def _mix(a, c, t):
    return a + (c - a) * np.asarray(t, F)[..., None]


def _step(d):
    """Soft step: 0 for d <= -0.5 px, 1 for d >= 0.5 px."""
    return np.clip(d + F(0.5), 0, 1)


def _wave(x, period, edge=1.0):
    """Soft square wave of ``x`` (px) with ``period`` (px); transitions ``edge`` px wide."""
    return np.clip(0.5 + np.sin(TAU * x / period) * period / (TAU * edge), 0, 1).astype(F)


def _lines(a, b, pa, pb, width=1.0):
    """Grid lines every ``pa`` px along ``a`` and ``pb`` px along ``b``."""
    da = pa / 2 - np.abs(a % pa - pa / 2)
    db = pb / 2 - np.abs(b % pb - pb / 2)
    return np.clip(width + 0.5 - np.minimum(da, db), 0, 1)


def _noise(rng, b, n, cells=4):
    """Smooth value noise in [-1, 1], shape (B, n, n), bilinear over a ``cells`` grid."""
    g = rng.uniform(-1, 1, (b, cells + 1, cells + 1)).astype(F)
    pos = np.linspace(0, cells, n, dtype=F)
    i = np.minimum(pos.astype(int), cells - 1)
    m = np.zeros((n, cells + 1), F)
    m[np.arange(n), i], m[np.arange(n), i + 1] = 1 - (pos - i), pos - i
    return m @ g @ m.T


def _rot(y, x, angle):
    c, s = np.cos(angle), np.sin(angle)
    return x * c + y * s, y * c - x * s


def _over(lower, upper, y, level, n):
    """``upper`` above the horizontal line ``y = level``, ``lower`` below it."""
    return _mix(lower, upper, _step((level - y) * n))


def _grass(rng, b, n, k):
    y, x = _grid(n)
    hz = _u(rng, .1, .35, b)
    sky = _mix(_col(rng, (.45, .65, .95), b), _col(rng, (.85, .9, .95), b), np.clip(y / hz, 0, 1))
    a, _ = _rot(y, x, _u(rng, -.7, .7, b))
    t = (.55 * _wave(a * n, _u(rng, 10, 16, b) * k, 3) + .2 * _noise(rng, b, n, 6)
         + .25 * _wave(x * n + 2 * k * _noise(rng, b, n, 8), 2.5 * k))
    return _over(_mix(_col(rng, (.15, .4, .1), b), _col(rng, (.45, .75, .25), b), t), sky, y, hz, n)


def _road(rng, b, n, k):
    y, x = _grid(n)
    a, c = _rot(y - .5, x - .5, _u(rng, -.5, .5, b))
    road = _mix(_col(rng, (.28, .28, .3), b, .04), _col(rng, (.5, .5, .5), b, .04),
                .5 + .5 * _noise(rng, b, n, 6))
    side = _step(1.2 * k - np.abs(np.abs(c) - _u(rng, .25, .4, b)) * n)
    mid = _step(k - np.abs(c) * n) * _wave(a * n + _u(rng, 0, 20, b), _u(rng, 10, 16, b) * k)
    return _mix(_mix(road, _col(rng, (.95, .95, .9), b), side), _col(rng, (.95, .8, .2), b), mid)


def _tiles(rng, b, n, k):
    y, x = _grid(n)
    p, fl = _u(rng, 8, 13, b) * k, _u(rng, .55, .8, b)
    wall = _mix(_col(rng, (.9, .87, .8), b), _col(rng, (.55, .55, .55), b),
                _lines(x * n + _u(rng, 0, 9, b), y * n, p, p))
    q = 1.6 * p
    chk = np.sin(TAU * (x * n + _u(rng, 0, 9, b)) / q) * np.sin(TAU * y * n / q)
    chk = np.clip(.5 + 4 * chk, 0, 1)
    floor = _mix(_col(rng, (.45, .3, .2), b), _col(rng, (.65, .5, .35), b), chk)
    return _over(floor, wall, y, fl, n)


def _sea(rng, b, n, k):
    y, x = _grid(n)
    hz = _u(rng, 0, .2, b)
    a, c = _rot(y, x, _u(rng, -.3, .3, b))
    deep = _mix(_col(rng, (.1, .38, .62), b), _col(rng, (.04, .18, .4), b), y)
    w = c * n + _u(rng, 1, 3, b) * k * np.sin(TAU * (a * _u(rng, 1.5, 3, b) + _u(rng, 0, 1, b)))
    crest = _wave(w + 1.5 * k * _noise(rng, b, n), _u(rng, 6, 10, b) * k, 2)
    return _over(_mix(deep, _col(rng, (.6, .8, .95), b), .5 * crest), _col(rng, (.75, .85, .95), b),
                 y, hz, n)


def _sky(rng, b, n, k):
    y, _ = _grid(n)
    g = _u(rng, .8, .95, b)
    air = _mix(_col(rng, (.2, .4, .85), b), _col(rng, (.75, .85, .98), b), np.clip(y / g, 0, 1))
    cloud = np.clip((_noise(rng, b, n, 3) - _u(rng, 0, .4, b)) * 3, 0, 1)
    air = _mix(air, _col(rng, (.97, .97, .97), b, .02), .9 * cloud)
    return _over(_col(rng, (.2, .3, .15), b), air, y, g, n)


def _wood(rng, b, n, k):
    y, x = _grid(n)
    a, c = _rot(y, x, _u(rng, -.35, .35, b))
    grain = _wave(c * n + 3 * k * _noise(rng, b, n, 3), _u(rng, 4, 7, b) * k, 2)
    wood = _mix(_col(rng, (.75, .55, .35), b), _col(rng, (.5, .32, .18), b),
                .6 * grain + .2 * _noise(rng, b, n, 5))
    p = _u(rng, 16, 24, b) * k
    seam = _step(k - (p / 2 - np.abs(a * n % p - p / 2)))
    return _mix(wood, _col(rng, (.25, .15, .08), b), .8 * seam)


def _desert(rng, b, n, k):
    y, x = _grid(n)
    hz = _u(rng, .15, .35, b)
    w = y * n + 4 * k * np.sin(TAU * (x * _u(rng, .8, 2, b) + _u(rng, 0, 1, b)))
    sand = _mix(_col(rng, (.85, .62, .33), b), _col(rng, (.97, .82, .52), b),
                .7 * _wave(w, _u(rng, 12, 20, b) * k, 5) + .15 * _noise(rng, b, n))
    return _over(sand, _col(rng, (.6, .75, .95), b), y, hz, n)


def _forest(rng, b, n, k):
    _, x = _grid(n)
    bg = _mix(_col(rng, (.1, .25, .1), b), _col(rng, (.25, .45, .2), b),
              .5 + .5 * _noise(rng, b, n, 5))
    p = _u(rng, 10, 16, b) * k
    xx = x * n + 2 * k * _noise(rng, b, n, 2) + _u(rng, 0, 16, b)
    trunk = np.clip((np.sin(TAU * xx / p) - .4) * p / 2, 0, 1)
    return _mix(bg, _col(rng, (.35, .22, .12), b), trunk)


def _bricks(rng, b, n, k):
    y, x = _grid(n)
    hb = _u(rng, 5, 8, b) * k
    lb = 2.2 * hb
    xs = x * n + (np.floor(y * n / hb) % 2) * lb / 2 + _u(rng, 0, 9, b)
    brick = _mix(_col(rng, (.65, .25, .15), b), _col(rng, (.5, .2, .12), b),
                 .5 + .5 * _noise(rng, b, n, 6))
    return _mix(brick, _col(rng, (.8, .78, .72), b), _lines(xs, y * n, lb, hb, .5))


def _snow(rng, b, n, k):
    y, _ = _grid(n)
    hz = _u(rng, .1, .4, b)
    snow = _mix(_col(rng, (.93, .95, .97), b, .03), _col(rng, (.75, .8, .9), b, .03),
                .5 + .5 * _noise(rng, b, n, 4))
    sky = _mix(_col(rng, (.55, .6, .68), b), _col(rng, (.8, .82, .85), b), np.clip(y / hz, 0, 1))
    return _over(snow, sky, y, hz, n)


def _city(rng, b, n, k):
    y, x = _grid(n)
    sky = _mix(_col(rng, (.02, .03, .12), b, .02), _col(rng, (.1, .12, .3), b, .03), y)
    block = np.floor(x[0, 0] * n / (_u(rng, 6, 11, b)[:, 0] * k)).astype(int)  # (B, n)
    top = np.take_along_axis(rng.uniform(.2, .75, (b, n)).astype(F), np.minimum(block, n - 1), 1)
    building = _step((y - top[:, None, :]) * n)
    ry, cx = (np.arange(n) / (4 * k)).astype(int), (np.arange(n) / (3 * k)).astype(int)
    lit = (rng.random((b, ry[-1] + 1, cx[-1] + 1)) < .45)[:, ry[:, None], cx[None, :]]
    win = lit * _wave(x * n, 3 * k) * _wave(y * n, 4 * k) * building
    img = _mix(sky, _col(rng, (.12, .12, .14), b, .02), building)
    return _mix(img, _col(rng, (.95, .85, .4), b), win)


def _carpet(rng, b, n, k):
    y, x = _grid(n)
    s1 = _wave(x * n + _u(rng, 0, 9, b), _u(rng, 8, 14, b) * k, 1.5)
    s2 = _wave(y * n + _u(rng, 0, 9, b), _u(rng, 8, 14, b) * k, 1.5)
    img = _mix(_col(rng, (.55, .15, .25), b, .1), _col(rng, (.2, .15, .4), b, .1), .5 * s1)
    return _mix(img, _col(rng, (.9, .8, .6), b, .1), .35 * s2)


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
    y, x = _grid(n)
    a, _ = _rot(y - .5, x - .5, _u(rng, 0, 2 * np.pi, b))
    img = _mix(_col(rng, (.5, .5, .5), b, .2), _col(rng, (.5, .5, .5), b, .2), .3 * (a + .5))
    return np.clip(img + F(.015) * rng.standard_normal((b, n, n, 3), dtype=F), 0, 1)


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
    return _step(.32 * s - np.hypot(a % s - s / 2, c % s - s / 2))


#: Texture name -> pattern in [0, 1] of the texture coordinates ``a, c`` (px) and period.
_TEXTURE = {
    "hstripes": lambda a, c, p: _wave(c, p),
    "vstripes": lambda a, c, p: _wave(a, p),
    "checker": lambda a, c, p: np.clip(.5 + 2 * np.sin(TAU * a / p) * np.sin(TAU * c / p), 0, 1),
    "dots": _dots,
    "rings": lambda a, c, p: _wave(np.hypot(a, c), p),
    "diagonal": lambda a, c, p: _wave((a + c) / F(1.414), p),
    "grid": lambda a, c, p: _lines(a, c, 1.3 * p, 1.3 * p, .6),
    "zigzag": lambda a, c, p: _wave(c + np.abs((a / p) % 1 - .5) * p, p),
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
    u, v = _rot(dy, dx, _u(rng, -.25, .25, b))
    u, v = u / hw, v / hh
    dist = _SDF[SHAPES[shape]](u, v, np.abs(u), np.abs(v), np.hypot(u, v)) * np.minimum(hw, hh)
    alpha = _step(-dist)
    period = _u(rng, 4.5, 7, b) * k
    a, c = _rot(dy, dx, _u(rng, -.2, .2, b))
    pattern = _TEXTURE[TEXTURES[texture]](a + _u(rng, 0, 8, b) * k, c + _u(rng, 0, 8, b) * k,
                                          period)
    base = rng.uniform(.12, .9, (b, 1, 1, 3)).astype(F)
    bright = (base @ np.array([.3, .59, .11], F) > .5)[..., None]
    ink = np.where(bright, base * .2, base + (1 - base) * .8)
    rgb = _mix(base, ink, pattern)
    rim = np.clip(1.2 - np.abs(dist + 1.2), 0, 1)
    rgb = _mix(rgb, np.where(bright, F(.08), F(.95)) * np.ones_like(base), .8 * rim)
    return alpha, rgb
