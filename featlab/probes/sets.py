"""Probe sets around one sample: isotropy (equation 4) and symmetry (equation 6) probes.

Aghdam, Heravi & Puig perturb a clean image ``x`` with ``T`` vectors at each radius ``r``:

* isotropy, equation 4: ``s_i^r = Phi(x + r * v_i^r / |v_i^r|)``, ``v_i^r ~ U(-1, 1)``;
* symmetry, equation 6: ``s_i^r = Phi(x + permute_i(r * v^r / |v^r|))``, one ``v^r ~ U(-1, 1)``
  whose elements are re-ordered by ``T`` random permutations.

Conventions (the paper leaves them implicit):

* **Norm**: L2 over all ``C * H * W`` elements of the image (``norm="l2"``); the paper does
  not say, and ``norm="linf"`` reads the radius per pixel instead (``max_j |v_j| = r``).
* **On the sphere**: every probe has norm exactly ``r`` (up to the output dtype's rounding);
  the paper's probes lie on the sphere of radius ``r``, not in the ball.
* **Units**: the paper's radii (``eps, 1, ..., 20`` "pixels") are in 0-255 pixel units.
  featlab images are in ``[0, 1]``, so with the default ``scale=255`` a radius ``r`` yields a
  vector of norm ``r / 255`` in image units. Pass ``scale=1`` for radii already in image
  units. Norms and distances returned by :func:`perturbation_norms` and
  :func:`pairwise_condensed` are in the units of the tensors given to them.
* **No clipping**: ``x + v`` may leave ``[0, 1]`` slightly; clipping would change ``|v|``
  and break the equal-radius premise of equations 2 and 4, so probes are fed unclipped.
* **Seeds**: the paper gives each sample its own seed so that every network sees the same
  perturbations; :func:`sample_seed` derives it from a base seed and the image id, and each
  radius draws from a generator keyed by (seed, r), so one radius can be generated at a
  time (memory) and a probe set never depends on which other radii were requested.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import FeatlabError
from ..utils.seeding import derive_seed

PIXEL_SCALE = 255.0


def sample_seed(base_seed: int, image_id) -> int:
    """Stable 63-bit per-sample seed (sha256 of the base seed and ``str(image_id)``)."""
    return derive_seed("local-probes", int(base_seed), str(image_id))


def _radius_generator(seed: int, kind: str, radius: float) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(kind, int(seed), repr(float(radius))))


def _check(shape, T: int, radii) -> tuple:
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise FeatlabError(f"shape must be a non-empty image shape such as (3, 224, 224), got {shape}")
    if int(T) < 1:
        raise FeatlabError(f"T (copies per radius) must be >= 1, got {T}")
    r = np.asarray(radii, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise FeatlabError(f"radii must be positive finite numbers, got {radii!r}")
    return shape


def _on_sphere(v: torch.Tensor, radius: float, scale: float, norm: str = "l2") -> torch.Tensor:
    """Rescale each row of ``v`` (float64, shape (T, D)) to ``norm`` (``l2``/``linf``)
    ``radius / scale``."""
    if norm not in ("l2", "linf"):
        raise FeatlabError(f"norm must be 'l2' or 'linf', got {norm!r}")
    size = (torch.linalg.vector_norm(v, dim=1, keepdim=True) if norm == "l2"
            else v.abs().amax(dim=1, keepdim=True))
    return v * ((radius / scale) / size)


def isotropy_perturbations(shape, radii, T: int, seed: int, *, scale: float = PIXEL_SCALE,
                           dtype=torch.float32, norm: str = "l2") -> torch.Tensor:
    """Equation 4: ``T`` uniform random directions at each radius, on the sphere.

    Parameters
    ----------
    shape : tuple of int — one image's shape, e.g. (3, H, W)
    radii : sequence of float — radii ``r``, in 0-255 pixel units when ``scale=255``
    T : int — probes per radius
    seed : int — the sample's seed (:func:`sample_seed`)
    scale : float — pixel units per image unit (255 for images in [0, 1]; 1 for none)
    dtype : torch dtype of the result (computed in float64)
    norm : ``l2`` (over all elements) or ``linf`` (per element) — what a radius measures

    Returns
    -------
    Tensor of shape (len(radii), T, *shape); ``out[k, i]`` has ``norm`` ``radii[k] / scale``.
    """
    shape = _check(shape, T, radii)
    d = int(np.prod(shape))
    out = torch.empty((len(radii), int(T)) + shape, dtype=dtype)
    for k, r in enumerate(radii):
        g = _radius_generator(seed, "isotropy", r)
        v = torch.rand((int(T), d), generator=g, dtype=torch.float64) * 2 - 1
        out[k] = _on_sphere(v, float(r), scale, norm).reshape((int(T),) + shape).to(dtype)
    return out


def symmetry_perturbations(shape, T: int, seed: int, radius: float, *,
                           scale: float = PIXEL_SCALE, dtype=torch.float32,
                           norm: str = "l2") -> torch.Tensor:
    """Equation 6: ``T`` random permutations of one perturbation of norm ``radius``.

    The permutations re-order all ``C * H * W`` elements; every copy holds exactly the same
    values (so the same norm, bit for bit). Parameters as :func:`isotropy_perturbations`.

    Returns
    -------
    Tensor of shape (T, *shape)
    """
    shape = _check(shape, T, [radius])
    d = int(np.prod(shape))
    g = _radius_generator(seed, "symmetry", radius)
    v = _on_sphere(torch.rand((1, d), generator=g, dtype=torch.float64) * 2 - 1,
                   float(radius), scale, norm)[0].to(dtype)
    idx = torch.stack([torch.randperm(d, generator=g) for _ in range(int(T))])
    return v[idx].reshape((int(T),) + shape)


def perturbation_norms(perturbed, clean) -> np.ndarray:
    """``|x_a - x|`` for each copy, float64, in the tensors' units.

    Parameters
    ----------
    perturbed : Tensor or ndarray of shape (T, *shape) — the inputs actually fed
    clean : Tensor or ndarray of shape (*shape)

    Returns
    -------
    ndarray of shape (T,)
    """
    p = torch.as_tensor(perturbed).to(torch.float64).flatten(1)
    c = torch.as_tensor(clean).to(torch.float64).flatten()
    if p.shape[1] != c.shape[0]:
        raise FeatlabError(f"perturbed copies {tuple(p.shape)} and clean image "
                           f"{tuple(c.shape)} differ in size")
    return torch.linalg.vector_norm(p - c, dim=1).numpy()


def pairwise_condensed(X) -> np.ndarray:
    """Euclidean distances between the ``T`` rows of ``X``, condensed (``pdist`` order).

    Float64 throughout. The rows are centred first (distances are translation
    invariant; the copies of one image then have norms comparable to their distances),
    then ``d_ij^2 = g_ii + g_jj - 2 g_ij`` from the Gram matrix, one BLAS call; pairs whose
    ``d^2`` is small against ``g_ii + g_jj`` (where cancellation could cost digits) are
    recomputed directly from the original rows. Matches ``scipy.spatial.distance.pdist`` to ~1e-12
    relative for perturbed copies of one image, however small the radius.

    Parameters
    ----------
    X : Tensor or ndarray of shape (T, *shape)

    Returns
    -------
    ndarray of shape (T * (T - 1) / 2,), float64
    """
    x = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
    x = x.detach().to(torch.float64).reshape(x.shape[0], -1)
    if not torch.isfinite(x).all():
        raise FeatlabError("pairwise_condensed: the copies hold non-finite values")
    xc = x - x.mean(dim=0, keepdim=True)
    gram = xc @ xc.T
    sq = torch.diagonal(gram)
    iu, ju = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    d2 = (sq[iu] + sq[ju] - 2 * gram[iu, ju]).clamp_min(0)
    risky = d2 < 1e-4 * (sq[iu] + sq[ju])
    if risky.any():  # direct differences of the original rows, as pdist does
        a, b = iu[risky], ju[risky]
        d2[risky] = torch.stack([torch.sum((x[i] - x[j]) ** 2) for i, j in zip(a, b)])
    return torch.sqrt(d2).numpy()
