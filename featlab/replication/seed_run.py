"""One seed of the demo's study: the seed reaches everything that varies in it.

``seed`` generates the synthetic benchmarks (their images and their stratified train/test
split), pretrains both embedded backbones (initialisation, pretraining images, order and
flips: :func:`featlab.backbones.synthetic.pretrain` with ``recipe["seed"] = seed``), and seeds
the extraction and every bootstrap; the heads are convex fits, determined by the features.
Everything lives under the seed's folder (``cache/``: data, weights, stores; ``analyses/``:
the demo's outputs), so seeds never share a file. At the default size with seed 0 and the
demo's torch thread count this is ``featlab demo``'s study (the same weights and claim rows;
one thread instead of two changes the weights by rounding).
"""
from __future__ import annotations

import logging
import os
import time

from ..backbones.base import resolve_device
from ..backbones.synthetic import build_synthetic
from ..errors import FeatlabError
from ..reporting.demo import DemoSpec, demo

log = logging.getLogger(__name__)

#: Sizes of a seed: DemoSpec fields and per-backbone pretraining recipe overrides. ``default``
#: is the demo's own; ``quick`` (32 px, fewer images, one pretraining epoch) is for many
#: seeds or a first look.
SIZES = {
    "default": dict(demo={}, pretrain={"object": {}, "scene": {}}),
    "quick": dict(demo=dict(n_images=256, image_size=32, dose_images=128, n_boot=500),
                  pretrain={"object": dict(n_train=1200, n_val=300, epochs=1, image_size=32),
                            "scene": dict(n_train=600, n_val=200, epochs=1, image_size=32)}),
}
DEMO_FIELDS = set(DemoSpec.__dataclass_fields__) - {"cache_dir", "analyses_dir", "seed", "weights",
                                                    "report", "explore", "device", "workers"}


def size_config(size: str, options=None) -> dict:
    """The ``demo`` and ``pretrain`` settings of a named size, with ``options`` (same shape:
    ``{"demo": {...}, "pretrain": {"object": {...}, "scene": {...}}}``) laid over them."""
    if size not in SIZES:
        raise FeatlabError(f"size {size!r}: expected one of {', '.join(SIZES)}")
    options = dict(options or {})
    unknown = set(options) - {"demo", "pretrain"}
    bad = set(options.get("demo", {})) - DEMO_FIELDS
    if unknown or bad:
        raise FeatlabError(f"options {sorted(unknown | bad)}: not settings of a seed; demo "
                           f"settings are {', '.join(sorted(DEMO_FIELDS))}")
    demo_ = dict(SIZES[size]["demo"], **options.get("demo", {}))
    pretrain = {kind: dict(SIZES[size]["pretrain"][kind], **options.get("pretrain", {}).get(kind, {}))
                for kind in ("object", "scene")}
    return dict(size=size, demo={k: list(v) if isinstance(v, tuple) else v
                                 for k, v in demo_.items()}, pretrain=pretrain)


def pretrain_backbones(seed: int, cache_dir: str, pretrain: dict, device: str) -> dict:
    """Pretrain (or reuse from ``cache_dir/weights``) both backbones with ``seed``; returns
    ``{"weights": {name: path}, "pretraining": {name: held-out accuracy, seconds}}``."""
    weights, reports = {}, {}
    for kind in ("object", "scene"):
        model = build_synthetic(kind, cache_dir=cache_dir, device=resolve_device(device),
                                **dict(pretrain[kind], seed=int(seed)))
        weights[model.name] = model.weights_path
        report = getattr(model, "pretraining_report", {}) or {}
        reports[model.name] = dict(val_accuracy=report.get("val_accuracy"),
                                   seconds=report.get("seconds"))
    return dict(weights=weights, pretraining=reports)


def run_seed(seed_dir: str, config: dict) -> dict:
    """Run the demo's study for ``config["seed"]`` under ``seed_dir``; returns the seed's
    summary (``seed``, ``claims``, ``verdicts``, ``stores``, ``pretraining``, ``seconds``)."""
    start = time.perf_counter()
    seed, cache = int(config["seed"]), os.path.join(seed_dir, "cache")
    backbones = pretrain_backbones(seed, cache, config["pretrain"], config["device"])
    demo_ = {k: tuple(v) if isinstance(v, list) else v for k, v in config["demo"].items()}
    spec = DemoSpec(cache_dir=cache, analyses_dir=os.path.join(seed_dir, "analyses"), seed=seed,
                    weights=backbones["weights"], device=config["device"], report=False,
                    **demo_)
    summary = demo(spec)
    log.info("seed %d: verdicts %s", seed, summary["verdicts"])
    return dict(seed=seed, claims=summary["claims"], verdicts=summary["verdicts"],
                stores=summary["stores"], pretraining=backbones["pretraining"],
                demo_summary=summary["summary_json"], seconds=time.perf_counter() - start)
