"""Decoding rows of a dataset in worker processes, one chunk per loader batch.

A file that cannot be decoded yields a zero image and its reason; the extractor records
the reason, stores NaN features for that row and goes on.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.base import MAX_INSTANCES


class _Rows(Dataset):
    def __init__(self, dataset):
        self.dataset = dataset
        self.size = dataset.image_size

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, row):
        try:
            image, boxes = self.dataset.load(int(row))
            return (torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
                    torch.from_numpy(np.asarray(boxes, dtype=np.float32)), "")
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three
            reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
            return (torch.zeros(3, self.size, self.size),
                    torch.full((MAX_INSTANCES, 4), float("nan")), reason or "decode failed")


def _collate(items):
    images, boxes, reasons = zip(*items)
    return torch.stack(images), torch.stack(boxes), list(reasons)


def iter_chunks(dataset, chunks: list[tuple[int, int]], workers: int = 0):
    """Yield ``(start, stop, images, boxes, reasons)`` for each chunk, decoded in order."""
    if not chunks:
        return
    loader = DataLoader(_Rows(dataset), batch_sampler=[list(range(a, b)) for a, b in chunks],
                        num_workers=workers, collate_fn=_collate,
                        persistent_workers=False, prefetch_factor=2 if workers else None)
    for (start, stop), (images, boxes, reasons) in zip(chunks, loader):
        yield start, stop, images, boxes, reasons
