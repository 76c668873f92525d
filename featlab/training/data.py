"""Training data: the dataset's train split (a validation part carved from it when a recipe
needs one), served as seeded batches of float images in [0, 1].

Rows are decoded once into memory as uint8 when they fit in ``preload_bytes`` (every loader
decodes 8-bit files, so ``uint8 / 255`` reproduces its float32 images exactly, which is
checked); larger sets (CIFAR-10 at 224 px) are decoded batch by batch in ``workers``
processes. Files that cannot be decoded are left out, with a log line.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data import open_dataset
from ..errors import FeatlabError
from ..extraction.decode import collate_decoded, DecodedRows
from ..extraction.pipeline import DEFAULT_IMAGE_SIZE, limit_rows
from ..store.samples import table_hash

log = logging.getLogger(__name__)
PRELOAD_BYTES = 2 << 30


def load_training_dataset(spec):
    """The dataset of ``spec`` (``--limit`` applied), refusing one with fewer than 2 classes
    in its train split."""
    options = dict(spec.dataset_options, seed=spec.seed)
    options["image_size"] = spec.image_size or DEFAULT_IMAGE_SIZE.get(spec.dataset, 224)
    dataset = open_dataset(spec.dataset, spec.root, options, cache_dir=spec.cache_dir)
    if spec.limit is not None:
        limit_rows(dataset, spec.limit, spec.seed)
    train = dataset.samples.split == "train"
    present = np.unique(dataset.samples.label[train])
    if len(present) < 2:
        raise FeatlabError(f"dataset {dataset.name} at {spec.root} has {len(present)} class(es) "
                           f"in its train split; a classifier needs at least 2 (check --root, "
                           f"--classes or --limit)")
    return dataset


def data_identity(spec, dataset) -> dict:
    """What makes the training data these images: the resolved root, the loader and its
    selection settings, and a digest of the sample list (ids, files, labels, splits, boxes)
    and of the class list. Part of a run's fingerprint."""
    settings = {k: v for k, v in dict(dataset.spec).items() if k != "root"}
    return dict(root=os.path.realpath(spec.root), dataset=dataset.name, settings=settings,
                image_size=int(dataset.image_size), classes=list(dataset.samples.classes),
                samples_sha256=table_hash(dataset.samples))


def split_train_val(samples, val_fraction: float, seed: int, need_val: bool):
    """Row indices (train, val) of the train split; val is a seeded, class-stratified
    ``val_fraction`` of it (at least one row per class), empty unless ``need_val``."""
    rows = np.flatnonzero(samples.split == "train")
    if not need_val:
        return rows, rows[:0]
    rng = np.random.default_rng([seed, 9])
    val = []
    for label in np.unique(samples.label[rows]):
        members = rows[samples.label[rows] == label]
        k = max(1, int(round(len(members) * val_fraction)))
        if k >= len(members):
            raise FeatlabError(f"class {samples.classes[label]!r} has {len(members)} training "
                               f"image(s): too few to carve a validation split; lower "
                               f"--val-fraction or add images")
        val.append(rng.permutation(members)[:k])
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(rows, val), val


@dataclass
class Images:
    """Rows of a dataset with their labels; ``pixels`` (n, 3, S, S) uint8 when preloaded."""

    dataset: object
    rows: np.ndarray
    labels: torch.Tensor
    pixels: torch.Tensor | None
    workers: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, order, batch_size: int, min_size: int = 2, positions: bool = False):
        """Yield ``(images (b, 3, S, S) float in [0, 1], labels (b,))`` in ``order``
        (positions into this set), with ``positions`` also the batch's positions (b,)
        int64; a last batch smaller than ``min_size`` is dropped (training: BatchNorm and
        the half-and-half recipes need two samples)."""
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        chunks = [c for c in chunks if len(c) >= min_size]
        if self.pixels is not None:
            for idx in chunks:
                batch = self.pixels[idx].float().div_(255), self.labels[idx]
                yield (*batch, idx) if positions else batch
            return
        loader = DataLoader(DecodedRows(self.dataset), batch_sampler=[self.rows[c.numpy()].tolist()
                                                                for c in chunks],
                            num_workers=self.workers, collate_fn=collate_decoded)
        for idx, (images, _, reasons) in zip(chunks, loader):
            keep = torch.tensor([not r for r in reasons])
            if keep.sum() >= min_size:
                batch = images[keep], self.labels[idx][keep]
                yield (*batch, idx[keep]) if positions else batch


def load_images(dataset, rows, workers: int = 0, preload_bytes: int = PRELOAD_BYTES) -> Images:
    """An :class:`Images` over ``rows``, decoded into memory when it fits."""
    rows = np.asarray(rows)
    size = dataset.image_size
    labels = torch.from_numpy(dataset.samples.label[rows].astype(np.int64))
    if len(rows) * 3 * size * size > preload_bytes:
        log.info("%d images at %d px exceed the preload budget: decoding per batch",
                 len(rows), size)
        return Images(dataset, rows, labels, None, workers)
    pixels, ok = torch.empty((len(rows), 3, size, size), dtype=torch.uint8), []
    loader = DataLoader(DecodedRows(dataset), batch_sampler=[rows[i:i + 256].tolist()
                                                       for i in range(0, len(rows), 256)],
                        num_workers=workers, collate_fn=collate_decoded)
    for start, (images, _, reasons) in zip(range(0, len(rows), 256), loader):
        as_bytes = images.mul(255).round_().to(torch.uint8)
        if not torch.equal(as_bytes.float().div_(255), images):
            raise RuntimeError(f"{dataset.name}.load returned images that are not 8-bit")
        pixels[start:start + len(images)] = as_bytes
        ok.extend(not r for r in reasons)
    ok = np.asarray(ok, dtype=bool)
    if not ok.all():
        log.warning("%d training image(s) could not be decoded and are left out", (~ok).sum())
    keep = torch.from_numpy(ok)
    return Images(dataset, rows[ok], labels[keep], pixels[keep], workers)
