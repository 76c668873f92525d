"""The demo's building steps: its settings checked before anything is written, the synthetic
benchmarks (generated once per parameters and generator code), and extraction into a store."""
from __future__ import annotations

import json
import logging
import os
import shutil

from ..backbones.synthetic import recipe_for
from ..data.synthetic import generate_synthetic
from ..errors import FeatlabError
from ..extraction import ExtractionSpec, extract
from ..utils.paths import atomic_write_text

log = logging.getLogger(__name__)


def check_spec(spec) -> None:
    """One-line errors for settings the demo cannot run with (before any work)."""
    checks = [
        (spec.n_images >= 64, f"--n-images {spec.n_images}: need at least 64"),
        (spec.dose_images >= 64, f"--dose-images {spec.dose_images}: need at least 64"),
        (len(spec.sigmas) >= 1 and all(s > 0 for s in spec.sigmas), "sigmas must be > 0"),
        (len(spec.eps) >= 1 and all(0 < e < 1 for e in spec.eps), "eps must be in (0, 1)"),
        (len(spec.alphas) >= 2 and all(a >= 0 for a in spec.alphas) and 0.0 in spec.alphas,
         "alphas need 0 and a larger value"),
        (all(0.0 <= c <= 1.0 for c in spec.consistencies), "consistencies must be in [0, 1]"),
        (spec.tolerance > 0, f"--tolerance {spec.tolerance}: must be > 0"),
        (spec.shift_margin >= 0, f"--shift-margin {spec.shift_margin}: must be >= 0"),
        (spec.n_boot >= 100, f"--n-boot {spec.n_boot}: need at least 100 resamples"),
    ]
    for ok, message in checks:
        if not ok:
            raise FeatlabError(message)


def benchmark(spec, name: str, store_path: str, n_images: int, consistency: float) -> str:
    """Generate a synthetic benchmark under ``<cache>/<name>`` unless the same one (parameters
    and generator code) exists; a changed benchmark removes the store derived from it."""
    root = os.path.join(spec.cache_dir, name)
    params = dict(seed=spec.seed, n_images=n_images, image_size=spec.image_size,
                  context_consistency=float(consistency),
                  generator=recipe_for("object")["generator_sha256"])
    marker = os.path.join(root, "featlab-demo.json")
    if os.path.isfile(marker):
        with open(marker) as handle:
            if json.load(handle) == params:
                log.info("reusing synthetic benchmark in %s", root)
                return root
    if os.path.isdir(store_path):
        log.info("the benchmark changed: removing the derived demo store %s", store_path)
        shutil.rmtree(store_path)
    log.info("generating the synthetic benchmark (%d images, context consistency %g) in %s",
             n_images, consistency, root)
    generate_synthetic(root, seed=spec.seed, n_images=n_images, image_size=spec.image_size,
                       context_consistency=float(consistency))
    atomic_write_text(marker, json.dumps(params))
    return root


def extract_into(spec, store_path: str, root: str, conditions: str) -> float:
    """Extract ``conditions`` (those not stored yet) into ``store_path``; returns seconds."""
    result = extract(ExtractionSpec(
        store=store_path, root=root, dataset="synthetic", conditions=conditions,
        device=spec.device, batch_size=64, workers=spec.workers, seed=spec.seed,
        image_size=spec.image_size, cache_dir=spec.cache_dir, weights=dict(spec.weights)))
    return float(result["seconds"])
