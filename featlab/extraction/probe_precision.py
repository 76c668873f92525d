"""Probe conditions computed in float64 on the CPU, and each probed image's noise floor.

Aghdam, Heravi & Puig (VISAPP 2017) compare the features of an image ``x`` with those of its
copies ``x + v`` (section 2, equations 4, 6 and 9; the Mantel test of section 2.3 uses the
copies' pairwise feature distances). At small radii ``|v| = radius / 255`` the feature
differences ``f(x + v) - f(x)`` are tiny against ``f(x)``, and in float32 they sit in
rounding noise (measured on the CPU: about 10 % error at radius 0.1 and 100 % at 0.01; TF32
convolutions make it about 9x worse at radius 1). Therefore:

* every probe condition is computed through a float64 copy of each backbone on the CPU
  (whatever ``--device``/``--precision``: TF32 and bf16 do not apply to probes), inputs
  ``x + v`` formed in float64 from the float32 image and the float32 probe;
* beside the float32 features, each probed row stores ``delta/<backbone>/<layer>`` (T, d):
  ``f(x + v) - f(x)`` computed in float64 and rounded once to float32, so a difference
  keeps float32's *relative* precision (2**-24) however small it is; readers
  (:func:`featlab.analyses.local.family.probe_features`) use it when present;
* the **noise floor** of each probed row and stored layer is measured and stored:
  ``noise/<backbone>/<layer>`` () is ``|f(x) - f'(x)|``, the float64 features of the clean
  image fed alone against the same image fed first in the batch of its copies (two
  evaluations of one image), at least ``2**-52 |f(x)|`` (one rounding of the result);
  ``noise_run/<backbone>/<layer>`` () is ``|f_run(x) - f(x)|``, the clean image's error in
  the run's own precision and device (what float32 probes would carry);
* a radius is **below the noise floor** where ``noise / median_t |delta_t| > NOISE_TOLERANCE``
  (1 %) for some probed image: extraction logs a warning, and the analyses add a note to
  their JSON (:func:`featlab.analyses.local.family.noise_notes`).
"""
from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from ..backbones.base import capture_features

log = logging.getLogger(__name__)
NOISE_TOLERANCE = 0.01  # relative noise of a radius's feature differences that warns
FLOOR_ULPS = 2.0 ** -52  # float64's machine epsilon: the least noise of one evaluation


def probe_metadata(condition) -> dict:
    """What ``condition.json`` records about how a probe condition is computed."""
    if condition.family != "probe":
        return {}
    return dict(probe_precision="float64 on the CPU; delta/<backbone>/<layer> = f(x+v) - f(x) "
                                "in float64, stored float32",
                noise_floor="per probed row: noise/<backbone>/<layer> (two float64 "
                            "evaluations of the clean image), noise_run/<backbone>/<layer> "
                            "(the run's precision against float64)",
                noise_tolerance=NOISE_TOLERANCE)


def float64_copies(models) -> list:
    """Float64 copies of ``models`` on the CPU (the originals are left as they are)."""
    out = []
    for model in models:
        twin = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
        twin.eval()
        out.append(twin)
    return out


def forward64(models64, batch: torch.Tensor, wanted, batch_size: int) -> dict:
    """``"<backbone>/<layer>" -> (n, d)`` float64 ndarrays of ``batch`` (float64, CPU);
    ``wanted(model)``: the layers to capture (None: all)."""
    parts = []
    with torch.inference_mode():
        for b in range(0, len(batch), batch_size):
            feats = {}
            for model in models64:
                with capture_features(model, wanted(model)) as captured:
                    model(batch[b:b + batch_size])
                feats.update({f"{model.name}/{k}": v.numpy() for k, v in captured.items()})
            parts.append(feats)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def noise_floor(clean: np.ndarray, alone: np.ndarray) -> float:
    """``max(|clean - alone|, 2**-52 |clean|)`` of two float64 evaluations of one image."""
    return float(max(np.linalg.norm(alone - clean), FLOOR_ULPS * np.linalg.norm(clean)))


def relative_noise(noise: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Per row: ``noise / median_t |delta_t|``; ``noise`` (n,), ``delta`` (n, T, d).

    Rows without a difference (all zero) give inf; NaN rows (not probed) stay NaN."""
    size = np.median(np.linalg.norm(np.asarray(delta, np.float64), axis=-1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(size > 0, noise / size, np.where(np.isnan(size), np.nan, np.inf))


def warn_below_floor(key: str, out: dict, rows) -> list:
    """Log one line (and return the layers) where the feature differences of condition
    ``key`` are below the noise floor in some row of ``rows``."""
    low, worst = [], 0.0
    for name in sorted(n for n in out if n.startswith("noise/")):
        layer = name[len("noise/"):]
        rel = np.nanmax(relative_noise(out[name][rows], out[f"delta/{layer}"][rows]))
        if rel > NOISE_TOLERANCE:
            low.append(layer)
            worst = max(worst, rel)
    if low:
        log.warning("%s: the feature differences of %d layers (%s) are below the noise floor "
                    "(relative noise up to %.3g > %g); use a larger radius", key, len(low),
                    ", ".join(low[:3]) + (", ..." if len(low) > 3 else ""), worst,
                    NOISE_TOLERANCE)
    return low
