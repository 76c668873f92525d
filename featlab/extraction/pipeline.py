"""The extraction pipeline: each image decoded once, perturbed once, fed to every backbone.

For every chunk of rows (``chunk_size`` images) whose part is missing for some condition:
decode the chunk (worker processes with ``workers > 0``), then for each missing condition
perturb it batch by batch, run every backbone once on the perturbed batch with feature
capture on, and write the chunk's features as one part (see :mod:`featlab.store.layout`).
Memory holds one chunk at a time, whatever the dataset's size; a killed run continues from
the parts on disk; a complete run repeated does nothing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..backbones import BACKBONES
from ..backbones.base import resolve_device
from ..backbones.roles import ROLES
from ..backbones.trained import build_backbone, parse_backbone_entry
from ..conditions import condition_class, parse_conditions
from ..data import DATASETS
from ..errors import FeatlabError
from ..store import StoreWriter
from ..utils.progress import progress
from ..utils.seeding import generator
from .decode import iter_chunks
from .forward import forward
from .probing import ProbeRunner
from .targets import TargetModels

log = logging.getLogger(__name__)
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


def load_dataset(spec: ExtractionSpec):
    options = dict(spec.dataset_options, seed=spec.seed)
    size = spec.image_size or DEFAULT_IMAGE_SIZE.get(spec.dataset)
    if size:
        options["image_size"] = size
    dataset = DATASETS.get(spec.dataset)(spec.root, **options)
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
    """The store's backbones: each entry of ``spec.backbones`` is a registered NAME, the NAME
    of a trained file in ``<cache>/weights/``, or ``NAME=PATH`` (a trained file)."""
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
        models.append(model.to(device).eval())
    return models


def backbone_meta(models) -> dict:
    """The manifest's record of each backbone, in ``--backbones`` order. A backbone that
    declares no role gets the one its position implies (first object, second scene)."""
    meta = {}
    for i, model in enumerate(models):
        role = model.role or (ROLES[i] if i < len(ROLES) else None)
        meta[model.name] = dict(weights_sha256=model.weights_sha256,
                                weights_path=model.weights_path, role=role,
                                normalization=model.normalization, layers=model.layer_dims())
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


def _groups(conditions) -> list[list]:
    """Conditions that differ only in the multi-valued parameter share one perturb call."""
    groups: dict = {}
    for cond in conditions:
        spec = condition_class(cond.name)[0]
        multi = {p.name for p in spec.params if p.multi}
        key = (cond.name, tuple((k, v) for k, v in cond.params.items() if k not in multi))
        groups.setdefault(key, []).append(cond)
    return list(groups.values())


def _perturb_chunk(group, images, labels, boxes, models, targets, batch_size, seed, start):
    """Yield per-condition feature dicts (and extras) for one decoded chunk."""
    perturbation = group[0].perturbation
    model = targets.model_for(group[0]) if perturbation.needs_model else None
    results = [dict() for _ in group]
    for b in range(0, len(images), batch_size):
        sl = slice(b, b + batch_size)
        gen = generator(seed, "|".join(c.key for c in group), start + b)
        params = [c.params for c in group]
        if model is not None:
            perturbed, aimed = perturbation.attack_many(images[sl], params, labels=labels[sl],
                                                        model=model, generator=gen)
        else:
            perturbed = perturbation.perturb_many(images[sl], params, labels=labels[sl],
                                                  boxes=boxes[sl], model=None, generator=gen)
        for cond, result, adv in zip(group, results, perturbed):
            feats = forward(models, adv)
            if model is not None:
                feats.update(targets.outcome(model, adv, aimed, perturbation.targeted))
            for name, values in feats.items():
                result.setdefault(name, []).append(values)
    return [{k: np.concatenate(v) for k, v in r.items()} for r in results]


def extract(spec: ExtractionSpec) -> dict:
    """Run (or continue) an extraction; returns a JSON-able summary."""
    conditions = parse_conditions(spec.conditions)
    if spec.batch_size < 1 or spec.chunk_size < 1 or spec.workers < 0:
        raise FeatlabError("--batch-size and --chunk-size must be >= 1, --workers >= 0")
    dataset = load_dataset(spec)
    check_conditions(conditions, dataset)
    device = resolve_device(spec.device)
    models = build_backbones(spec, dataset, device)
    meta = backbone_meta(models)
    started = time.perf_counter()
    with StoreWriter(spec.store, samples=dataset.samples, backbones=meta,
                     dataset_spec=dict(dataset.spec, limit=spec.limit),
                     chunk_size=spec.chunk_size, extra=dict(seed=spec.seed)) as writer:
        targets = TargetModels(writer.root, models, writer.manifest["backbones"],
                               classes=dataset.samples.classes, weights=spec.weights,
                               cache_dir=spec.cache_dir)
        for cond in conditions:
            writer.add_condition(cond.key, dict(name=cond.name, params=cond.params,
                                                label=cond.label, **targets.describe(cond)))
        missing = {c.key: set(writer.missing_chunks(c.key)) for c in conditions}
        needed = sorted(set().union(*missing.values()))
        summary = dict(store=writer.root, images=writer.n_rows, device=str(device),
                       conditions={c.key: dict(computed=len(missing[c.key])) for c in conditions},
                       decode_failures={})
        probes = None
        labels_all = torch.from_numpy(dataset.samples.label.astype(np.int64))
        bar = progress(total=sum(len(v) for v in missing.values()) * spec.chunk_size,
                       desc="extract", unit="img")
        for start, stop, images, boxes, reasons in iter_chunks(dataset, needed, spec.workers):
            images, boxes = images.to(device), boxes.to(device)
            labels = labels_all[start:stop].to(device)
            valid = np.array([not r for r in reasons])
            for row, reason in enumerate(reasons):
                if reason:
                    summary["decode_failures"][str(dataset.samples.file[start + row])] = reason
            todo = [c for c in conditions if (start, stop) in missing[c.key]]
            for group in _groups(todo):
                if group[0].family == "probe":
                    probes = probes or ProbeRunner(writer, dataset, models, spec)
                    results = probes.chunk(group, start, stop, images, labels)
                else:
                    results = _perturb_chunk(group, images, labels, boxes, models, targets,
                                             spec.batch_size, spec.seed, start)
                for cond, arrays in zip(group, results):
                    for name, values in arrays.items():
                        if values.dtype.kind == "f":
                            values[~valid] = np.nan
                    arrays["valid"] = valid
                    writer.write_part(cond.key, start, stop, arrays,
                                      attrs=dict(errors=repr({i: r for i, r in enumerate(reasons) if r})))
                    bar.update(stop - start)
        bar.close()
        writer.rebuild_index()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["skipped_at_load"] = len(dataset.samples.skipped)
    return summary
