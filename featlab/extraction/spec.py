"""What defines an extraction run (:class:`ExtractionSpec`) and the objects it builds from
it: the dataset, the backbones and their manifest records, checked against the conditions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..backbones import BACKBONES
from ..backbones.roles import ROLES
from ..backbones.trained import build_backbone, parse_backbone_entry
from ..conditions import condition_class
from ..data import open_dataset
from ..errors import FeatlabError

DEFAULT_IMAGE_SIZE = {"synthetic": 64}


@dataclass
class ExtractionSpec:
    """Everything that defines an extraction run (the CLI builds one from its flags)."""

    store: str
    root: str
    dataset: str = "synthetic"
    backbones: tuple = ("synthetic-object", "synthetic-scene")
    conditions: object = "clean"
    device: str = "auto"
    batch_size: int = 64
    workers: int = 0
    limit: Optional[int] = None
    chunk_size: int = 256
    seed: int = 0
    image_size: Optional[int] = None
    weights: dict = field(default_factory=dict)
    cache_dir: Optional[str] = None
    dataset_options: dict = field(default_factory=dict)
    layers: Optional[str] = None
    dtype: str = "float32"
    precision: str = "fp32"
    channels_last: Optional[bool] = None  # None: the store's own, channels-last for a new one
    compression: Optional[str] = None  # none | gzip; None: the store's own, none for a new one


def load_dataset(spec: ExtractionSpec):
    options = dict(spec.dataset_options, seed=spec.seed)
    if spec.image_size is not None and (isinstance(spec.image_size, bool)
                                        or int(spec.image_size) != spec.image_size
                                        or spec.image_size < 8):
        raise FeatlabError(f"--image-size {spec.image_size}: expected an integer >= 8 (pixels)")
    size = spec.image_size or DEFAULT_IMAGE_SIZE.get(spec.dataset)
    if size:
        options["image_size"] = size
    dataset = open_dataset(spec.dataset, spec.root, options, cache_dir=spec.cache_dir)
    if spec.limit is not None:
        limit_rows(dataset, spec.limit, spec.seed)
    return dataset


def limit_rows(dataset, limit: int, seed: int) -> None:
    """Keep a seeded random ``limit`` rows (order preserved) — for quick looks."""
    if limit < 1:
        raise FeatlabError(f"--limit {limit}: expected a positive number of images")
    n = len(dataset.samples)
    if limit >= n:
        return
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:limit])
    dataset.subset_rows(keep)


def build_backbones(spec: ExtractionSpec, dataset, device) -> list:
    """The run's backbones on ``device`` (channels-last if asked), in eval mode. Each entry
    of ``spec.backbones`` is a registered NAME, the NAME of a trained file in
    ``<cache>/weights/``, or ``NAME=PATH`` (a file written by ``featlab train``)."""
    if not spec.backbones or any(not str(b).strip() for b in spec.backbones):
        raise FeatlabError(f"--backbones {','.join(spec.backbones)!r}: an empty backbone name; "
                           f"known: {', '.join(BACKBONES.names())}")
    entries = [parse_backbone_entry(b) for b in spec.backbones]
    names = [name for name, _ in entries]
    if not names or len(set(names)) != len(names):
        raise FeatlabError(f"--backbones {','.join(names)}: give one or more distinct names; "
                           f"known: {', '.join(BACKBONES.names())}")
    models = []
    for name, path in entries:
        model = build_backbone(name, weights=path or spec.weights.get(name),
                               cache_dir=spec.cache_dir)
        if dataset.normalization is not None:
            model.set_normalization(dataset.normalization)
        model = model.to(device)
        if spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
        models.append(model.eval())
    return models


def backbone_meta(models, layers=None) -> dict:
    """The manifest's record of each backbone, in ``--backbones`` order. A backbone that
    declares no role gets the one its position implies (first object, second scene).
    ``layers`` (backbone name -> stored layer names) restricts the recorded layers."""
    meta = {}
    for i, model in enumerate(models):
        role = model.role or (ROLES[i] if i < len(ROLES) else None)
        dims = model.layer_dims()
        if layers is not None:
            dims = {k: v for k, v in dims.items() if k in set(layers[model.name])}
        meta[model.name] = dict(weights_sha256=model.weights_sha256,
                                weights_path=model.weights_path, role=role,
                                normalization=model.normalization, layers=dims)
        if getattr(model, "task_classes", None) is not None:  # trained by featlab train
            meta[model.name].update(task_classes=model.task_classes, recipe=model.recipe)
    return meta


def check_conditions(conditions, dataset) -> None:
    has_boxes = bool(np.isfinite(dataset.samples.boxes).any())
    for cond in conditions:
        perturbation = condition_class(cond.name)[0]
        needs = perturbation.needs_boxes and cond.params.get("region", "object") != "all"
        if needs and not has_boxes:
            raise FeatlabError(f"condition {cond.key} needs object boxes and dataset "
                               f"{dataset.name} has none; use region=all")
        perturbation.check_classes(cond.key, cond.params, len(dataset.samples.classes))
