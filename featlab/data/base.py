"""The sample table and the dataset interface every dataset loader returns.

A dataset is a :class:`SampleTable` (one row per usable image, aligned with every feature
block of a store) plus a way to decode row ``i`` into a float image in ``[0, 1]`` at the
dataset's ``image_size`` and its object boxes in the same pixel coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

MAX_INSTANCES = 2  # the fusion paper keeps images with at most two instances (Section 2.2)


@dataclass
class SampleTable:
    """Per-image descriptors, all arrays of length ``n_samples``.

    Attributes
    ----------
    image_id : ndarray of shape (n,), int64
    file : ndarray of shape (n,), str — path relative to the dataset root
    label : ndarray of shape (n,), int64 — index into ``classes``
    class_name, supercategory : ndarray of shape (n,), str
    split : ndarray of shape (n,), str — ``"train"`` or ``"test"``
    boxes : ndarray of shape (n, MAX_INSTANCES, 4), float32 — ``x, y, w, h`` in the
        original image's pixels, NaN rows for absent instances (all NaN: no box known)
    width, height : ndarray of shape (n,), int64 — original image size
    classes : list of str — class names in label order
    class_supercategory : list of str — supercategory of each class, label order
    subsets : dict str -> list of str — named class subsets (``similar``, ``dissimilar``)
    skipped : list of (file, reason) — images dropped while loading, with why
    """

    image_id: np.ndarray
    file: np.ndarray
    label: np.ndarray
    class_name: np.ndarray
    supercategory: np.ndarray
    split: np.ndarray
    boxes: np.ndarray
    width: np.ndarray
    height: np.ndarray
    classes: list
    class_supercategory: list
    subsets: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    COLUMNS = ("image_id", "file", "label", "class_name", "supercategory", "split",
               "boxes", "width", "height")

    def __len__(self) -> int:
        return len(self.image_id)

    def take(self, rows) -> "SampleTable":
        """A new table with only ``rows`` (class list, subsets and skipped kept)."""
        rows = np.asarray(rows)
        columns = {c: getattr(self, c)[rows] for c in self.COLUMNS}
        return SampleTable(**columns, classes=list(self.classes),
                           class_supercategory=list(self.class_supercategory),
                           subsets=dict(self.subsets), skipped=list(self.skipped))

    def indices(self, split: Optional[str] = None, classes: Optional[list] = None) -> np.ndarray:
        """Row indices of ``split`` (None: all) restricted to ``classes`` (None: all)."""
        mask = np.ones(len(self), dtype=bool)
        if split is not None:
            mask &= self.split == split
        if classes is not None:
            mask &= np.isin(self.class_name, np.asarray(classes, dtype=str))
        return np.flatnonzero(mask)


class ImageDataset:
    """Interface of a loaded dataset.

    Attributes
    ----------
    name : str — registry name (``coco``, ``cifar10``, ``synthetic``)
    root : str
    samples : SampleTable
    image_size : int — images are resized to ``image_size x image_size``
    normalization : tuple (mean, std) of 3-tuples, or None to use each backbone's own
    spec : dict — JSON-able parameters that recreate this dataset (recorded in stores)
    """

    name: str
    root: str
    samples: SampleTable
    image_size: int
    normalization = None
    spec: dict

    def load(self, index: int):
        """Decode row ``index``.

        Returns
        -------
        image : ndarray of shape (3, image_size, image_size), float32 in [0, 1]
        boxes : ndarray of shape (MAX_INSTANCES, 4), float32 — ``x0, y0, x1, y1`` in
            resized pixel coordinates, NaN rows for absent instances

        Raises
        ------
        OSError or ValueError when the file is missing or cannot be decoded; extraction
        records the reason and skips the image.
        """
        raise NotImplementedError

    def subset_rows(self, rows) -> None:
        """Keep only ``rows`` of the sample table (``load`` reads files from the table)."""
        self.samples = self.samples.take(rows)

    def __len__(self) -> int:
        return len(self.samples)
