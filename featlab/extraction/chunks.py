"""Computing the parts of the chunks a process owns: decode (a thread runs one chunk ahead;
worker processes with ``--workers``, which also apply the per-image corruptions), perturb,
forward the stored layers of every backbone, and hand each part to the background writer.
"""
from __future__ import annotations

import numpy as np
import torch

from ..conditions import condition_class
from ..errors import FeatlabError
from ..utils.progress import progress
from ..utils.seeding import generator
from .background import BackgroundWriter, prefetch
from .cpu_perturb import PerImagePlan
from .decode import iter_chunks
from .probing import ProbeRunner
from .storage import cast_features, is_feature


def groups(conditions) -> list[list]:
    """Conditions that differ only in the multi-valued parameter share one perturb call."""
    found: dict = {}
    for cond in conditions:
        spec = condition_class(cond.name)[0]
        multi = {p.name for p in spec.params if p.multi}
        key = (cond.name, tuple((k, v) for k, v in cond.params.items() if k not in multi))
        found.setdefault(key, []).append(cond)
    return list(found.values())


def perturb_chunk(group, images, labels, boxes, fwd, targets, batch_size, seed, start):
    """Per-condition feature dicts (and extras) for one decoded chunk; ``fwd``: the run's
    :class:`~featlab.extraction.forward.FeatureForward`."""
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
            feats = fwd(adv)
            if model is not None:
                feats.update(targets.outcome(model, adv, aimed, perturbation.targeted))
            for name, values in feats.items():
                result.setdefault(name, []).append(values)
    return [{k: np.concatenate(v) for k, v in r.items()} for r in results]


def _results(group, cpu, plan, probes, images, labels, boxes, start, stop, run):
    """The arrays of each condition of ``group`` for rows [start, stop)."""
    spec, fwd = run["spec"], run["fwd"]
    if cpu is not None and group[0].key in cpu.images:
        return plan.features(group, cpu, fwd, spec.batch_size, run["device"])
    if group[0].family == "probe":
        return probes().chunk(group, start, stop, images, labels)
    return perturb_chunk(group, images, labels, boxes, fwd, run["targets"], spec.batch_size,
                         spec.seed, start)


def refuse_non_finite(key: str, arrays: dict, valid: np.ndarray, start: int, files) -> None:
    """Features that are not finite for a decoded (valid) image, in a probed row for probe
    conditions, are an error, not a stored row: FeatlabError naming the image."""
    rows = valid & arrays["probed"].astype(bool) if "probed" in arrays else valid
    for name, values in arrays.items():
        if values.dtype.kind != "f" or not (is_feature(name) or name.startswith("delta/")):
            continue
        bad = rows & ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            raise FeatlabError(f"{key}: {name} is not finite for image {files[row]} (row {row},"
                               f" {int(bad.sum())} rows of this chunk); its chunk was not "
                               f"stored; check the backbone weights and the parameters")


def compute_chunks(run: dict, conditions, dataset, writer, missing: dict, mine) -> list:
    """Compute and write every missing part of the chunks ``mine``.

    ``run``: ``spec``, ``fwd`` (FeatureForward), ``targets``, ``device``, ``dtype``;
    ``missing``: condition key -> set of chunks. Returns the decode failures as sorted
    ``(row, file, reason)``.
    """
    spec, device = run["spec"], run["device"]
    failures, runner = {}, []
    labels_all = torch.from_numpy(dataset.samples.label.astype(np.int64))
    plan = PerImagePlan.for_run(conditions, missing, dataset, spec.seed)  # or None
    work = plan  # corruptions: done by the decode workers
    pin = device.type == "cuda"

    def probes():  # built on first use: it reads the store's heads and clean features
        if not runner:
            runner.append(ProbeRunner(writer, dataset, run["fwd"], spec))
        return runner[0]

    bar = progress(total=sum((b - a) * sum((a, b) in m for m in missing.values())
                             for a, b in mine), desc="extract", unit="img")
    decoded = prefetch(iter_chunks(dataset, mine, spec.workers, work, pin_memory=pin))
    with BackgroundWriter(writer) as out:
        for start, stop, images, boxes, reasons, cpu in decoded:
            images = images.to(device, non_blocking=pin)
            boxes = boxes.to(device, non_blocking=pin)
            labels = labels_all[start:stop].to(device)
            valid = np.array([not r for r in reasons])
            failures.update({start + i: (str(dataset.samples.file[start + i]), r)
                             for i, r in enumerate(reasons) if r})
            todo = [c for c in conditions if (start, stop) in missing[c.key]]
            todo = todo if cpu is None else plan.todo(cpu, todo)  # what this item holds
            for group in groups(todo):
                results = _results(group, cpu, plan, probes, images, labels, boxes, start,
                                   stop, run)
                for cond, arrays in zip(group, results):
                    for values in arrays.values():
                        if values.dtype.kind == "f":
                            values[~valid] = np.nan
                    refuse_non_finite(cond.key, arrays, valid, start, dataset.samples.file)
                    arrays["valid"] = valid
                    errors = repr({i: r for i, r in enumerate(reasons) if r})
                    out.submit(cond.key, start, stop, cast_features(arrays, run["dtype"]),
                               attrs=dict(errors=errors))
                    bar.update(stop - start)
    bar.close()
    return sorted((row, file, reason) for row, (file, reason) in failures.items())
