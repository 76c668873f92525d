"""CLEVER robustness scores (Weng et al., ICLR 2018), compatible with IBM ART's ``clever_u``.

CLEVER estimates the local Lipschitz constant of the margin
``f_c(x) - f_j(x)`` (logits of the predicted class ``c`` and a target ``j``) in a ball of
radius ``R`` around ``x``: sample a pool of ``pool_factor * batch_size`` points in the ball,
take the dual norm of the margin's gradient at each, form ``nb_batches`` batch maxima
(``batch_size`` points drawn from the pool with replacement), fit a reverse Weibull
distribution to the maxima by maximum likelihood and take its location ``loc`` as the
maximum gradient norm. The score is ``min(margin(x) / loc, R)``; the untargeted score is
the minimum over targets.

Parameters and steps follow ``art.metrics.clever_u(classifier, x, nb_batches, batch_size,
radius, norm, c_init, pool_factor)`` (ART 1.20): the same ball sampler law
(``art.utils.random_sphere``), a fresh pool per target class, clipping to
``clip_values``, dual norms (L1 <-> Linf, L2 <-> L2), and the same call sequence on the
random generator. ART draws from NumPy's global state; here randomness comes only from
``random_state``. Passing ``numpy.random.RandomState(s)`` reproduces
``numpy.random.seed(s); art.metrics.clever_u(...)`` draw for draw, for every norm (tested
for norms 1 and 2 against ART 1.20); a ``numpy.random.Generator`` or an int seed gives the
same law, not the same draws.

The ball law (:func:`sample_ball`) is uniform in the ball. For ``norm=1`` a point's L1 norm
``s`` then has ``P(s <= t) = (t / R)^d`` in ``d = prod(x.shape)`` dimensions, mean
``R d / (d + 1)``: almost every point lies near the sphere (0.995 R for d = 192). Clipping
the pool to ``clip_values`` (as ART does) moves points of saturated pixels back inside, so
the *clipped* displacements are shorter (a mean L1 norm of 0.674 R was measured for such a
clipped pool); that is the clip, not the sampler.

``model`` maps a float batch (N, *x.shape) to logits (N, K), like the module inside ART's
``PyTorchClassifier``; put it in eval mode first.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.optimize import fmin
from scipy.special import gammainc
from scipy.stats import weibull_min

from ...errors import FeatlabError

log = logging.getLogger(__name__)

DUAL = {1: np.inf, 2: 2, np.inf: 1}


def check_norm(norm) -> float:
    """The norm order ``1``, ``2`` or ``np.inf`` of ``norm`` (``"inf"`` accepted), else a
    one-line FeatlabError; the keys of :data:`DUAL`."""
    norm = np.inf if norm in ("inf", np.inf, float("inf")) else norm
    if norm not in DUAL:
        raise FeatlabError(f"norm must be 1, 2 or inf, got {norm!r}")
    return norm


def _rng(random_state):
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    return np.random.default_rng(random_state)


def sample_ball(shape, n: int, radius: float, norm, random_state=None) -> np.ndarray:
    """``n`` points uniformly in the ``norm``-ball of ``radius`` around 0 (ART's law).

    Returns
    -------
    ndarray of shape (n, *shape), float64
    """
    rng, norm, d = _rng(random_state), check_norm(norm), int(np.prod(shape))
    if norm == 2:
        a = rng.standard_normal((n, d))
        s2 = np.sum(a ** 2, axis=1)
        res = a * (gammainc(d / 2.0, s2 / 2.0) ** (1 / d) * radius / np.sqrt(s2))[:, None]
    elif norm == np.inf:
        res = rng.uniform(-radius, radius, (n, d))
    else:
        u = np.sort(rng.uniform(size=(n, d)))
        gaps = u - np.concatenate([np.zeros((n, 1)), u[:, : d - 1]], axis=-1)
        res = radius * gaps * rng.choice([-1, 1], (n, d))
    return res.reshape((n,) + tuple(shape))


def margin_grad_norms(model, points, pred: int, target: int, norm, chunk: int = 64) -> np.ndarray:
    """Dual norms of the gradient of ``logit[pred] - logit[target]`` at each point.

    Parameters
    ----------
    points : ndarray of shape (n, *x.shape), float32
    norm : the perturbation norm (the dual norm is taken)

    Returns
    -------
    ndarray of shape (n,)
    """
    dual = DUAL[check_norm(norm)]
    out = []
    for lo in range(0, len(points), chunk):
        xb = torch.as_tensor(points[lo:lo + chunk]).clone().requires_grad_(True)
        logits = model(xb)
        (grad,) = torch.autograd.grad((logits[:, pred] - logits[:, target]).sum(), xb)
        out.append(np.linalg.norm(grad.reshape(len(xb), -1).numpy(), ord=dual, axis=1))
    return np.concatenate(out)


def fit_reverse_weibull(maxima, c_init: float = 1.0) -> tuple[float, float, float]:
    """ML fit of a reverse Weibull distribution to batch maxima.

    The reverse Weibull law of ``m`` (``scipy.stats.weibull_max``) is the Weibull law of
    ``-m``; it is fitted in that form, ``weibull_min.fit(-m, c_init, optimizer=fmin)``, as
    ART does: the same model, but scipy's starting values for ``weibull_max.fit`` can
    diverge on tightly clustered maxima (observed: loc ~ 1e6 for maxima near 5) where this
    form converges. Returns ``(shape, loc, scale)`` of the ``weibull_max`` law; ``loc``
    estimates the maximum gradient norm. Constant maxima (a locally linear margin) have
    no Weibull fit: ``loc`` is then their value.
    """
    m = np.asarray(maxima, dtype=np.float64)
    if np.ptp(m) == 0:
        log.warning("CLEVER: all batch maxima equal %.6g; using it as the Lipschitz estimate", m[0])
        return np.nan, float(m[0]), 0.0
    c, loc, scale = weibull_min.fit(-m, c_init, optimizer=fmin)
    return float(c), -float(loc), float(scale)


def _logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x[None])).numpy()[0]


def clever_t(model, x, target_class: int, nb_batches: int, batch_size: int, radius: float,
             norm, c_init: float = 1.0, pool_factor: int = 10, *, random_state=None,
             clip_values=None) -> float:
    """Targeted CLEVER score of ``x`` (array (C, H, W), float32) against ``target_class``."""
    x = np.asarray(x, dtype=np.float32)
    rng = _rng(random_state)
    logits = _logits(model, x)
    pred = int(np.argmax(logits))
    if target_class == pred:
        raise FeatlabError(f"target_class {target_class} is the predicted class")
    if pool_factor < 1 or batch_size < 1 or nb_batches < 2:
        raise FeatlabError("CLEVER needs pool_factor >= 1, batch_size >= 1 and nb_batches >= 2")
    n_pool = pool_factor * batch_size
    pool = (sample_ball(x.shape, n_pool, radius, norm, rng) + x[None]).astype(np.float32)
    if clip_values is not None:
        np.clip(pool, clip_values[0], clip_values[1], out=pool)
    grads = margin_grad_norms(model, pool, pred, target_class, norm)
    maxima = [np.max(grads[rng.choice(n_pool, batch_size)]) for _ in range(nb_batches)]
    _, loc, _ = fit_reverse_weibull(maxima, c_init)
    return float(min((logits[pred] - logits[target_class]) / loc, radius))


def clever_u(model, x, nb_batches: int, batch_size: int, radius: float, norm,
             c_init: float = 1.0, pool_factor: int = 10, *, random_state=None,
             clip_values=None) -> float:
    """Untargeted CLEVER score: the minimum of :func:`clever_t` over all other classes.

    Parameters
    ----------
    model : torch.nn.Module — (N, *x.shape) float32 -> logits (N, K)
    x : array of shape (C, H, W) — one input, in the model's input units
    nb_batches, batch_size, radius, norm, c_init, pool_factor : as ART's ``clever_u``
    random_state : int, numpy Generator or RandomState, or None
    clip_values : (min, max) or None — clip pool points, as ART's ``clip_values``

    Returns
    -------
    float — estimated minimum adversarial distortion, in ``norm`` and input units
    """
    x = np.asarray(x, dtype=np.float32)
    rng = _rng(random_state)
    logits = _logits(model, x)
    k, pred = logits.shape[0], int(np.argmax(logits))
    scores = [clever_t(model, x, j, nb_batches, batch_size, radius, norm, c_init, pool_factor,
                       random_state=rng, clip_values=clip_values) for j in range(k) if j != pred]
    return float(np.min(scores))
