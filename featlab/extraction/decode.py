"""Decoding rows of a dataset in worker processes, one chunk per loader batch.

A file that cannot be decoded yields a zero image and its reason; the extractor records
the reason, stores NaN features for that row and goes on.

``work`` (optional, a :class:`featlab.extraction.cpu_perturb.PerImagePlan`) is per-image
CPU work done in the workers right after decoding (the corruptions): it splits chunks into
loader items, computes each image's corrupted versions and collates them into the 6th
element of what :func:`iter_chunks` yields (None without ``work``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class DecodedRows(Dataset):
    def __init__(self, dataset, work=None):
        self.dataset, self.work = dataset, work
        self.size = dataset.image_size
        self.n_boxes = dataset.samples.boxes.shape[1]

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        # extraction asks for (row, part) so the workers know the chunk; training for rows
        row, part = item if isinstance(item, tuple) else (item, None)
        decoded = self._decode(row)
        return decoded if self.work is None else self.work.apply(part, int(row), *decoded)

    def _decode(self, row):
        try:
            image, boxes = self.dataset.load(int(row))
            return (torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
                    torch.from_numpy(np.asarray(boxes, dtype=np.float32)), "")
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three
            reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
            return (torch.zeros(3, self.size, self.size),
                    torch.full((self.n_boxes, 4), float("nan")), reason or "decode failed")


def collate_decoded(items):
    images, boxes, reasons = zip(*items)
    return torch.stack(images), torch.stack(boxes), list(reasons)


def iter_chunks(dataset, chunks: list[tuple[int, int]], workers: int = 0, work=None,
                pin_memory: bool = False):
    """Yield ``(start, stop, images, boxes, reasons, cpu)`` per loader item, in order.

    Without ``work`` there is one item per chunk and ``cpu`` is None; with it, a chunk may
    come as several items (see :mod:`featlab.extraction.cpu_perturb`). ``pin_memory``
    returns the batches in page-locked memory (non-blocking copies to a GPU).
    """
    if not chunks:
        return
    items = work.items(chunks) if work is not None else [(a, b, None) for a, b in chunks]
    collate = collate_decoded if work is None else work.collate
    loader = DataLoader(DecodedRows(dataset, work),
                        batch_sampler=[[(r, part) for r in range(a, b)] for a, b, part in items],
                        num_workers=workers, collate_fn=collate,
                        persistent_workers=False, pin_memory=pin_memory,
                        prefetch_factor=2 if workers else None)
    for (start, stop, _), batch in zip(items, loader):
        yield (start, stop, *batch) if work is not None else (start, stop, *batch, None)
