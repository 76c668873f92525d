"""Per-image CPU perturbations run inside the decode worker processes.

A corruption costs about 10-200 ms per image at 224 px, more than both backbones' forward
passes, so doing it in the main process would serialise the run on it. Conditions whose
perturbation declares ``per_image = True`` (:mod:`featlab.perturbations.per_image`) are
instead applied by the DataLoader workers right after they decode an image: each worker
returns the clean image *and* its corrupted versions, and the main process only runs the
backbones on them.

Loader items. A chunk is decoded once and carries every per-image condition it is
missing, unless that would make one loader item larger than :data:`ITEM_BYTES` (a chunk
of 256 images at 224 px is 38 MB per condition as uint8): then the chunk's conditions are
split over several items, each of which decodes the chunk again (decoding is ~1 % of the
corruption work). Only the first item of a chunk carries the clean images and the
chunk's other conditions (clean, blur, attacks); the others carry an empty image tensor.

Transport. A corrupted image that is exactly k/255 (the ImageNet-C outputs, and crops of
decoded images) travels as uint8 and becomes ``k / 255`` again in the main process: the
same float32 bytes, a quarter of the memory. Anything else travels as float32.

Every corrupted image depends on (run seed, image id, condition's corruption and severity)
only (:meth:`~featlab.perturbations.per_image.PerImagePerturbation.image_seed`), so the
bytes do not depend on ``--workers``, chunking or which items a chunk was split into.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..conditions import condition_class
from .forward import forward

ITEM_BYTES = 256 * 2 ** 20


def is_per_image(condition) -> bool:
    return condition_class(condition.name)[0].per_image


@dataclass(frozen=True)
class Part:
    """Which per-image conditions one loader item computes, and whether it is the first."""

    keys: tuple
    first: bool


@dataclass
class CpuImages:
    """What a loader item carries besides the clean batch: condition key -> (n, 3, H, W)."""

    first: bool
    images: dict = field(default_factory=dict)

    def float_images(self, key: str) -> torch.Tensor:
        values = self.images[key]
        if values.dtype == torch.uint8:
            out = values.numpy().astype(np.float32)
            out /= np.float32(255.0)
            return torch.from_numpy(out)
        return values


def _encode(image: np.ndarray) -> np.ndarray:
    """uint8 when ``image`` is exactly k/255 (lossless), else float32."""
    u8 = np.rint(image * np.float32(255.0)).astype(np.uint8)
    back = u8.astype(np.float32)
    back /= np.float32(255.0)
    return u8 if np.array_equal(back, image) else image


class PerImagePlan:
    """Splits chunks into loader items and does the per-image work in the workers.

    Parameters
    ----------
    conditions : list of Condition — all conditions of the run
    missing : dict condition key -> set of (start, stop) chunks still to compute
    image_ids : ndarray of shape (n_rows,) — the sample table's image ids
    run_seed : int
    image_size : int — side of the decoded images (for the memory budget)
    item_bytes : int — memory budget of one loader item's corrupted images
    """

    def __init__(self, conditions, missing: dict, image_ids, run_seed: int, image_size: int,
                 item_bytes: int = ITEM_BYTES):
        self.conditions = {c.key: c for c in conditions if is_per_image(c)}
        self.perturbations = {k: c.perturbation for k, c in self.conditions.items()}
        self.missing = {k: set(missing[k]) for k in self.conditions}
        self.image_ids = np.asarray(image_ids, dtype=np.int64)
        self.run_seed, self.image_size, self.item_bytes = int(run_seed), image_size, item_bytes
        for perturbation in self.perturbations.values():
            perturbation.prepare()  # here, before the workers are forked

    @classmethod
    def for_run(cls, conditions, missing: dict, dataset, run_seed: int):
        """The plan of an extraction run, or None when it has no per-image condition."""
        plan = cls(conditions, missing, dataset.samples.image_id, run_seed, dataset.image_size)
        return plan if plan.conditions else None

    def items(self, chunks) -> list[tuple[int, int, Part]]:
        """``(start, stop, part)`` loader items, in chunk order."""
        out = []
        for start, stop in chunks:
            keys = [k for k in self.conditions if (start, stop) in self.missing[k]]
            groups, current, size = [], [], 0
            for key in keys:
                per_image = 3 * self.image_size ** 2 * (
                    1 if self.perturbations[key].uint8_output else 4)
                cost = per_image * (stop - start)
                if current and size + cost > self.item_bytes:
                    groups.append(current)
                    current, size = [], 0
                current.append(key)
                size += cost
            groups.append(current)
            out += [(start, stop, Part(tuple(g), i == 0)) for i, g in enumerate(groups)]
        return out

    def apply(self, part: Part, row: int, image: torch.Tensor, boxes: torch.Tensor,
              reason: str):
        """Worker side, one image: ``(clean image or empty, boxes, reason, {key: array},
        first)``."""
        array, box_array = image.numpy(), boxes.numpy()
        out = {}
        for key in part.keys:
            if reason:  # undecodable: zeros (its features are stored as NaN)
                out[key] = np.zeros(array.shape, dtype=np.uint8)
                continue
            perturbation, params = self.perturbations[key], self.conditions[key].params
            seed = perturbation.image_seed(self.run_seed, self.image_ids[row], params)
            out[key] = _encode(perturbation.perturb_image(array, box_array, seed, **params))
        return (image if part.first else torch.zeros(0)), boxes, reason, out, part.first

    def collate(self, items) -> tuple:
        """Worker side, one loader item: stacks images, boxes and each condition's images."""
        images, boxes, reasons, extras, first = zip(*items)
        cpu = CpuImages(first=first[0])
        for key in extras[0]:
            arrays = [e[key] for e in extras]
            if all(a.dtype == np.uint8 for a in arrays):
                cpu.images[key] = torch.from_numpy(np.stack(arrays))
            else:
                cpu.images[key] = torch.from_numpy(np.stack(
                    [a.astype(np.float32) / np.float32(255.0) if a.dtype == np.uint8 else a
                     for a in arrays]))
        return torch.stack(images), torch.stack(boxes), list(reasons), cpu

    def todo(self, cpu: CpuImages, conditions: list) -> list:
        """The chunk's missing ``conditions`` that this loader item handles."""
        return [c for c in conditions
                if c.key in cpu.images or (cpu.first and c.key not in self.conditions)]

    @staticmethod
    def features(group, cpu: CpuImages, models, batch_size: int, device) -> list:
        """Main side: every backbone's features of each condition's corrupted images."""
        results = []
        for cond in group:
            images, parts = cpu.float_images(cond.key), {}
            for b in range(0, len(images), batch_size):
                for name, values in forward(models, images[b:b + batch_size].to(device)).items():
                    parts.setdefault(name, []).append(values)
            results.append({k: np.concatenate(v) for k, v in parts.items()})
        return results
