"""Pooling the examined annotation files of a COCO root, then the filters that depend on
the run (class list) or on the file system (missing files), which are never cached."""
from __future__ import annotations

import glob
import logging
import os

import numpy as np

from ..errors import FeatlabError
from .coco_cache import examined
from .coco_rules import REASONS, SELECTED

logger = logging.getLogger("featlab.data.coco")
FILE_REASONS = ("file not found", "unreadable file")  # also listed in samples.skipped


def pool(root: str, options: dict, cache_dir, layout: str):
    """Columns of every image of every annotation file (a repeated image id is a
    ``duplicate image`` after its first file), and the category -> supercategory map."""
    paths = sorted(glob.glob(os.path.join(root, "annotations", "instances_*.json")))
    if not paths:
        raise FeatlabError(f"no annotations/instances_*.json under {root}; {layout}")
    parts = [examined(path, root, options, cache_dir) for path in paths]
    supercategory: dict = {}
    for part in parts:
        for cat, sup in part.supercategory.items():
            supercategory.setdefault(cat, sup)
    width = max(p.boxes.shape[1] for p in parts)
    pooled = {c: np.concatenate([getattr(p, c) for p in parts])
              for c in ("image_id", "file", "width", "height", "category")}
    pooled["reason"] = np.concatenate([p.reason for p in parts]).astype(np.int8)
    pooled["boxes"] = np.concatenate([np.pad(p.boxes, ((0, 0), (0, width - p.boxes.shape[1]),
                                                       (0, 0)), constant_values=np.nan)
                                      for p in parts])
    _, first = np.unique(pooled["image_id"], return_index=True)
    duplicate = np.ones(len(pooled["image_id"]), dtype=bool)
    duplicate[first] = False
    pooled["reason"][duplicate] = REASONS.index("duplicate image")
    dropped = sum(p.dropped_boxes for p in parts)
    if dropped:
        logger.warning("%d boxes beyond max_boxes=%d (the smallest of their images) were "
                       "dropped; raise max_boxes to keep them", dropped, options["max_boxes"])
    return pooled, supercategory


def existing(root: str, files: np.ndarray) -> np.ndarray:
    """Boolean mask: ``root/file`` is an existing file (one listing per folder)."""
    listings: dict = {}
    out = np.zeros(len(files), dtype=bool)
    for i, rel in enumerate(files):
        folder, name = os.path.split(rel)
        if folder not in listings:
            try:
                with os.scandir(os.path.join(root, folder)) as entries:
                    listings[folder] = {e.name for e in entries if e.is_file()}
            except OSError:
                listings[folder] = set()
        out[i] = name in listings[folder]
    return out


def apply_filters(pooled: dict, root: str, wanted):
    """Class restriction and file existence on the selected rows, in place; returns the
    counts per reason and the skipped files."""
    reason = pooled["reason"]
    selected = reason == SELECTED
    if wanted is not None:
        other = selected & ~np.isin(pooled["category"], np.asarray(wanted, dtype=str))
        reason[other] = REASONS.index("class not selected")
    selected = np.flatnonzero(reason == SELECTED)
    missing = selected[~existing(root, pooled["file"][selected])]
    reason[missing] = REASONS.index("file not found")
    counts = np.bincount(reason[reason >= 0].astype(np.int64), minlength=len(REASONS))
    stats = {r: int(c) for r, c in zip(REASONS, counts)}
    codes = [REASONS.index(r) for r in FILE_REASONS]
    skipped = [(str(pooled["file"][i]), REASONS[reason[i]])
               for i in np.flatnonzero(np.isin(reason, codes))]
    return stats, skipped
