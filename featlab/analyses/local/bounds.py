"""Gradient-norm and CLEVER estimates of the local Lipschitz constant of the probed images.

For comparison with the probe ratios (Aghdam et al., Section 2.4), these need the images
and the classifiers: the dataset is rebuilt from the store manifest (loader, root and
options recorded at extraction; the sample table must hash the same), the backbones from
the recorded weights (same SHA-256), and each head (``fg-all``, ``bg-all``,
``joint-all-alpha=0``, penultimate) on top, as the attacks build them. Per probed image and
head:

* ``probe_ratio_max`` — ``max |s(x+v) - s(x)| / |v|`` over the stored copies (L2, image
  units): an empirical lower bound of the true-class score's local Lipschitz constant;
* ``gradient`` — :func:`featlab.analyses.local.gradient_lipschitz`: max dual norm of the
  score's gradient at ``x`` and ``n_points`` points in the ``norm``-ball of ``radius``;
* ``clever`` — :func:`featlab.analyses.local.clever_u` (ART's ``clever_u`` parameters
  ``nb_batches``, ``batch_size``, ``radius``, ``norm``, ``pool_factor``; pool points clipped
  to [0, 1] as ART's ``clip_values``): the estimated minimal adversarial distortion of the
  logit margin, in image units (``clever_pixels``: x 255).

``radius`` is given in 0-255 pixel units like the probe radii (ART's radius x 255).
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ...backbones.classifier import classifier_from_head
from ...errors import FeatlabError
from ...extraction.rebuild import rebuild
from ...store.heads import load_head
from ...utils.seeding import derive_seed
from .clever import clever_u
from .family import PIXELS, heads_in, read_rows, stack_radii
from .lipschitz import gradient_lipschitz

log = logging.getLogger(__name__)


def probe_ratio(store, family, radii, rows, head) -> np.ndarray:
    """``max |s(x+v) - s(x)| / |v|`` per row over all radii and copies (image units)."""
    s = stack_radii(store, family, radii, f"scores/{head}", rows)
    s0 = read_rows(store, family.keys[radii[0]], f"clean_score/{head}", rows)
    v = stack_radii(store, family, radii, "norms", rows) / PIXELS
    return (np.abs(s - s0[:, None, None]) / v).reshape(len(rows), -1).max(axis=1)


def lipschitz_bounds(store, family, radii, rows, *, heads=None, nb_batches=10, batch_size=5,
                     clever_radius=5.0, norm=2, pool_factor=10, n_points=8, max_samples=8,
                     seed=0) -> dict:
    """Rows (image, head) of probe, gradient and CLEVER estimates (see module docstring)."""
    if max_samples < 1 or clever_radius <= 0:
        raise FeatlabError("--max-samples must be >= 1 and --clever-radius > 0")
    names = heads_in(store, family, radii, heads)
    rows = np.asarray(rows)[:max_samples]
    dataset, models = rebuild(store)
    radius = clever_radius / PIXELS
    out = []
    for head in names:
        arrays, attrs = load_head(store.path, head)
        model = classifier_from_head(arrays, attrs, models, name=head, purpose="--bounds")
        ratios = probe_ratio(store, family, radii, rows, head)
        for row, ratio in zip(rows, ratios):
            image, _ = dataset.load(int(row))
            x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
            label, image_id = int(store.samples.label[row]), store.samples.image_id[row]
            seed = derive_seed("lipschitz-bounds", seed, image_id) % 2 ** 32
            grad = gradient_lipschitz(model, x, norm, radius=radius, n_points=n_points,
                                      label=label, random_state=seed)
            clever = clever_u(model, x.numpy(), nb_batches, batch_size, radius, norm,
                              pool_factor=pool_factor, random_state=seed, clip_values=(0.0, 1.0))
            out.append(dict(image_id=image_id.item(), head=head, probe_ratio_max=float(ratio),
                            gradient=grad, clever=clever, clever_pixels=clever * PIXELS))
            log.info("bounds %s image %s: gradient %.4g clever %.4g", head, image_id, grad, clever)
    return dict(norm=str(norm), clever_radius_pixels=clever_radius, nb_batches=nb_batches,
                batch_size=batch_size, pool_factor=pool_factor, n_points=n_points, rows=out)
