"""The fusion paper's class bookkeeping on a COCO selection (Section 2.2, Figure 3c-d): the
class list, classes too small to keep, the sample table, the seeded class-stratified 75/25
split, and the *Similar* / *Dissimilar* 8-class subsets."""
from __future__ import annotations

import logging
import zlib
from collections import Counter

import numpy as np

from ..errors import FeatlabError
from .base import MAX_INSTANCES, SampleTable

logger = logging.getLogger(__name__)


def check_classes(classes, supercategory: dict):
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    classes = list(classes)
    unknown = [c for c in classes if c not in supercategory]
    if unknown or not classes:
        raise FeatlabError(f"unknown class(es) {unknown or classes}; available: "
                           f"{', '.join(sorted(supercategory))}")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise FeatlabError(f"classes lists {', '.join(repeated)} more than once")
    return classes


def drop_small_classes(pooled: dict, keep: np.ndarray, wanted, min_images: int,
                       stats: dict):
    """Rows of ``keep`` whose class has at least ``min_images`` of them, and the classes."""
    counts = Counter(pooled["category"][keep].tolist())
    order = wanted if wanted is not None else sorted(counts)
    class_list = [c for c in order if counts[c] >= min_images]
    dropped = [c for c in order if counts[c] < min_images]
    if dropped:
        logger.warning("dropping classes with fewer than %d selected images: %s", min_images,
                       ", ".join(f"{c} ({counts[c]})" for c in dropped))
    stats["class too small"] += sum(counts[c] for c in dropped)
    keep = keep[np.isin(pooled["category"][keep], np.asarray(class_list, dtype=str))]
    return keep, class_list


def build_table(pooled, keep, classes, supercategory, seed, test_fraction, subset_size):
    """The SampleTable of the pooled rows ``keep``, sorted by (image id, file)."""
    keep = keep[np.lexsort((pooled["file"][keep], pooled["image_id"][keep]))]
    label_of = {c: i for i, c in enumerate(classes)}
    names = pooled["category"][keep]
    label = np.array([label_of[c] for c in names.tolist()], dtype=np.int64)
    class_super = [supercategory[c] for c in classes]
    boxes = pooled["boxes"][keep]
    used = int(np.isfinite(boxes[:, :, 0]).sum(1).max()) if boxes.size else 0
    boxes = boxes[:, :max(used, MAX_INSTANCES)]  # selection=all: as many as an image has
    if boxes.shape[1] < MAX_INSTANCES:
        boxes = np.pad(boxes, ((0, 0), (0, MAX_INSTANCES - boxes.shape[1]), (0, 0)),
                       constant_values=np.nan)
    return SampleTable(
        image_id=pooled["image_id"][keep].astype(np.int64),
        file=pooled["file"][keep].astype(str),
        label=label,
        class_name=names.astype(str),
        supercategory=np.array([supercategory[c] for c in names.tolist()], dtype=str),
        split=stratified_split(label, classes, seed, test_fraction),
        boxes=boxes.astype(np.float32),
        width=pooled["width"][keep].astype(np.int64),
        height=pooled["height"][keep].astype(np.int64),
        classes=list(classes), class_supercategory=class_super,
        subsets=class_subsets(classes, class_super, seed, subset_size))


def stratified_split(label: np.ndarray, classes: list, seed: int,
                     test_fraction: float) -> np.ndarray:
    """Per class, a seeded ``round(n * test_fraction)`` of the rows go to ``"test"`` (at
    least one, and at least one left for training, when the class has two or more rows).
    Each class draws from its own stream (seed, crc32 of its name), so restricting the class
    list leaves the split of the remaining classes unchanged."""
    split = np.full(len(label), "train", dtype="<U5")
    for k, name in enumerate(classes):
        rows = np.flatnonzero(label == k)
        n = len(rows)
        n_test = int(np.floor(n * test_fraction + 0.5))
        if test_fraction > 0 and n >= 2:
            n_test = min(max(n_test, 1), n - 1)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        split[rows[rng.permutation(n)[:n_test]]] = "test"
    return split


def class_subsets(classes: list, class_super: list, seed: int, subset_size: int) -> dict:
    """``all``; ``similar``: up to ``subset_size`` classes of the supercategory with the most
    classes (ties: first by name); ``dissimilar``: one seeded class per supercategory, up to
    ``subset_size`` of them. Fusion paper Section 3.2. Subsets of < 2 classes are omitted."""
    rng = np.random.default_rng([seed, zlib.crc32(b"subsets")])
    groups: dict = {}
    for c, s in zip(classes, class_super):
        groups.setdefault(s, []).append(c)
    largest = sorted(groups, key=lambda s: (-len(groups[s]), s))[0]
    similar = list(groups[largest])
    if len(similar) > subset_size:
        similar = [similar[i] for i in rng.choice(len(similar), subset_size, replace=False)]
    dissimilar = [groups[s][rng.integers(len(groups[s]))] for s in sorted(groups)]
    if len(dissimilar) > subset_size:
        dissimilar = [dissimilar[i] for i in
                      rng.choice(len(dissimilar), subset_size, replace=False)]
    order = {c: i for i, c in enumerate(classes)}
    subsets = {"all": list(classes), "similar": sorted(similar, key=order.get),
               "dissimilar": sorted(dissimilar, key=order.get)}
    return {k: v for k, v in subsets.items() if len(v) >= 2}
