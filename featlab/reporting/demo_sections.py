"""What the demo adds so that its report renders every section, at a small size.

- Probe sets (``isotropy`` and ``symmetry``, :mod:`featlab.probes`) on a few test images of
  the main store, for the local-properties paper's Figures 1, 3, 4 and 6.
- Small networks trained by ``featlab train`` on the main benchmark's images (by default a
  standard and a TLAT ResNet-10 of width 16 at 32 px, M-TLAT Section 3), extracted into
  their own store (at that size) with FGSM and PGD crafted on each network's own logits, for
  the M-TLAT Table 2 ablation (each network's own logits are its row,
  :func:`featlab.reporting.robust.mtlat_table2`).

The trained files are named by the benchmark and the training settings, so a changed
benchmark or setting trains again, and the trained store is rebuilt when its networks change.
"""
from __future__ import annotations

import json
import logging
import os
import shutil

from ..training import TrainSpec, train
from ..utils.paths import atomic_write_text
from .demo_steps import extract_into

log = logging.getLogger(__name__)
TRAINED_STORE = "demo-trained"


def _values(values) -> str:
    return ":".join(f"{v:g}" for v in values)


def probe_conditions(spec) -> str:
    """The isotropy and symmetry probe sets of the demo's settings (one condition each)."""
    tail = (f"radius={_values(spec.probe_radii)}:copies={spec.probe_copies}:"
            f"samples={spec.probe_samples}:threshold={spec.probe_threshold:g}")
    return f"isotropy:{tail},symmetry:{tail}"


def _read(path: str):
    """The text of ``path``, or None when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _benchmark_id(root: str) -> str:
    """The benchmark's parameters as the demo recorded them (:func:`.demo_steps.benchmark`)."""
    return _read(os.path.join(root, "featlab-demo.json")) or ""


def _train(spec, root: str, recipe: str) -> tuple[str, str]:
    """(backbone name, weights file) of one trained network; trains it unless done."""
    settings = TrainSpec(out="", root=root, dataset="synthetic", arch=spec.train_arch,
                         recipe=recipe, epochs=spec.train_epochs, batch_size=64,
                         image_size=spec.train_image_size, seed=spec.seed, device=spec.device,
                         workers=spec.workers, cache_dir=spec.cache_dir)
    key = settings.fingerprint(dict(benchmark=_benchmark_id(root)))
    out = os.path.join(spec.cache_dir, "weights", f"demo-{recipe}-{key[:12]}.pt")
    settings.out = out
    log.info("demo: %s network (%s, %d epochs at %d px) -> %s", recipe, spec.train_arch,
             spec.train_epochs, spec.train_image_size, out)
    train(settings)
    return f"demo-{recipe}", out


def _attacks(names, spec) -> str:
    """FGSM at ``trained_eps`` and PGD at the largest, each crafted on one network's logits."""
    out = []
    for name in names:
        on = f"target=surrogate:surrogate={name}"
        out += [f"fgsm:eps={_values(spec.trained_eps)}:{on}",
                f"pgd:eps={max(spec.trained_eps):g}:steps=5:{on}"]
    return ",".join(out)


def trained_store(spec, root: str):
    """Train ``spec.trained_recipes`` and extract them into ``<cache>/demo-trained``: clean
    features and logits, and the attacks of :func:`_attacks`. Returns the store's path, or
    None when no recipe is asked for."""
    if not spec.trained_recipes:
        return None
    networks = [_train(spec, root, recipe) for recipe in spec.trained_recipes]
    path = os.path.join(spec.cache_dir, TRAINED_STORE)
    marker, wanted = path + ".json", json.dumps(dict(networks))
    if os.path.isdir(path) and _read(marker) != wanted:
        log.info("the demo's trained networks changed: removing %s", path)
        shutil.rmtree(path)
    atomic_write_text(marker, wanted)
    names = [name for name, _ in networks]
    extract_into(spec, path, root, "clean," + _attacks(names, spec),
                 backbones=tuple(f"{n}={w}" for n, w in networks), layers="penultimate,logits",
                 image_size=spec.train_image_size)
    return path
