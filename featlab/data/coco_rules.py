"""Examining the images of one COCO instances file: which are selected, with which class
and boxes (cached per file by :mod:`featlab.data.coco_cache`).

``selection="paper"`` (fusion paper, Section 2.2): an image is kept when its annotations
hold no crowd, at least one valid box, a single category, at most ``max_instances``
instances, and the union of the boxes covers at most ``max_box_fraction`` of the image.

``selection="all"``: every image with at least one valid box (crowd boxes included — they
mark objects too); its class is the category whose boxes cover the largest summed area
(ties: the lower category id), and its boxes are every valid box of every category,
largest first, up to ``max_boxes`` (the smallest ones beyond are dropped, and counted).

Boxes are ``x, y, w, h`` clipped to the image (empty ones invalid and dropped).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import FeatlabError
from .images import clip_box, read_size, union_area

log = logging.getLogger(__name__)

#: Why an image was not selected, in the order the checks are applied.
REASONS = ("duplicate image", "no annotations", "crowd", "invalid box", "several categories",
           "too many instances", "box too large", "class not selected", "file not found",
           "unreadable file", "class too small")
SELECTED = -1
SELECTIONS = ("paper", "all")


@dataclass
class Examined:
    """Columns over the images of one annotation file (sorted by image id).

    Attributes
    ----------
    image_id, width, height : ndarray of shape (n,), int64
    file : ndarray of shape (n,), str — ``<folder>/<file_name>``
    reason : ndarray of shape (n,), int8 — index into :data:`REASONS`, or -1 (selected)
    category : ndarray of shape (n,), str — class of a selected image, else ``""``
    boxes : ndarray of shape (n, k, 4), float32 — clipped ``x, y, w, h``, NaN padding
    supercategory : dict category name -> supercategory name
    dropped_boxes : int — boxes beyond ``max_boxes`` (``selection="all"``)
    """

    image_id: np.ndarray
    file: np.ndarray
    width: np.ndarray
    height: np.ndarray
    reason: np.ndarray
    category: np.ndarray
    boxes: np.ndarray
    supercategory: dict
    dropped_boxes: int = 0


def read_annotations(path: str):
    """The pycocotools COCO object of ``path`` (its prints silenced)."""
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(path)
    except (OSError, ValueError, AssertionError, KeyError, TypeError) as exc:
        raise FeatlabError(f"cannot read COCO annotations {path} ({type(exc).__name__}: "
                           f"{exc}); it must be a COCO instances JSON") from None


def examine_file(path: str, root: str, *, selection: str, max_instances: int,
                 max_box_fraction: float, max_boxes: int) -> Examined:
    """Examine every image of the annotation file ``path`` (images in ``root/<X>/``)."""
    coco = read_annotations(path)
    folder = os.path.basename(path)[len("instances_"):-len(".json")]
    cats = coco.dataset.get("categories", [])
    names = {c["id"]: c["name"] for c in cats}
    supercategory = {}
    for c in cats:
        supercategory.setdefault(c["name"], c.get("supercategory") or "none")
    ids = sorted(coco.imgs)
    k = max_boxes if selection == "all" else 2
    n = len(ids)
    out = Examined(np.array(ids, dtype=np.int64), np.empty(n, dtype=object),
                   np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, SELECTED, np.int8),
                   np.full(n, "", dtype=object), np.full((n, k, 4), np.nan, np.float32),
                   supercategory)
    check = _paper if selection == "paper" else _every
    for i, image_id in enumerate(ids):
        image = coco.imgs[image_id]
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise FeatlabError(f"{path}: image {image_id} has no file_name (a string); fix "
                               f"the JSON entry or remove the image")
        record = dict(file=f"{folder}/{image['file_name']}", width=image.get("width"),
                      height=image.get("height"), anns=coco.imgToAnns.get(image_id, []))
        reason, cls, boxes = check(record, root, names, max_instances, max_box_fraction)
        out.file[i] = record["file"]
        out.width[i], out.height[i] = record["width"] or 0, record["height"] or 0
        if reason is not None:
            out.reason[i] = REASONS.index(reason)
            continue
        out.category[i] = cls
        out.dropped_boxes += max(len(boxes) - k, 0)
        out.boxes[i, :min(len(boxes), k)] = boxes[:k]
    out.file, out.category = out.file.astype(str), out.category.astype(str)
    return out


def _sizes(record: dict, root: str):
    """Make sure the record has its image size (header read when the JSON lacks it)."""
    if (record["width"] or 0) > 0 and (record["height"] or 0) > 0:
        return None
    try:
        record["width"], record["height"] = read_size(os.path.join(root, record["file"]))
    except FileNotFoundError:
        return "file not found"
    except OSError:
        return "unreadable file"
    return None


def _valid_boxes(record: dict) -> list:
    valid = []
    for a in record["anns"]:
        bbox = a.get("bbox")
        if bbox is not None and (not isinstance(bbox, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise FeatlabError(f"image {record['file']}: annotation {a.get('id')} has bbox "
                               f"{bbox!r}; expected a list [x, y, width, height] of numbers")
        box = clip_box(bbox, record["width"], record["height"]) if bbox and len(bbox) == 4 \
            else None
        if box is not None:
            valid.append((a["category_id"], box))
    return valid


def _name(category_id, names: dict, record: dict) -> str:
    if category_id not in names:
        raise FeatlabError(f"image {record['file']} has an annotation of category_id "
                           f"{category_id}, which its JSON's categories do not define")
    return names[category_id]


def _usable(record, root, *, refuse_crowd: bool):
    """(reason or None, valid boxes): the checks both selections apply, in the order of
    :data:`featlab.data.coco.REASONS` (crowd annotations only refused by the paper's)."""
    if not record["anns"]:
        return "no annotations", None
    if refuse_crowd and any(a.get("iscrowd", 0) for a in record["anns"]):
        return "crowd", None
    reason = _sizes(record, root)
    if reason is not None:
        return reason, None
    valid = _valid_boxes(record)
    return (None, valid) if valid else ("invalid box", None)


def _paper(record, root, names, max_instances, max_box_fraction):
    """(reason or None, class, boxes) under the fusion paper's selection."""
    reason, valid = _usable(record, root, refuse_crowd=True)
    if reason is not None:
        return reason, None, None
    if len({c for c, _ in valid}) > 1:
        return "several categories", None, None
    if len(valid) > max_instances:
        return "too many instances", None, None
    boxes = [b for _, b in valid]
    if union_area(boxes) > max_box_fraction * record["width"] * record["height"]:
        return "box too large", None, None
    return None, _name(valid[0][0], names, record), boxes


def _every(record, root, names, max_instances, max_box_fraction):
    """(reason or None, class, boxes) with no filter: the dominant category, every box."""
    reason, valid = _usable(record, root, refuse_crowd=False)
    if reason is not None:
        return reason, None, None
    area: dict = {}
    for c, (_, _, w, h) in valid:
        area[c] = area.get(c, 0.0) + w * h
    dominant = min(area, key=lambda c: (-area[c], c))
    boxes = sorted((b for _, b in valid), key=lambda b: -b[2] * b[3])
    return None, _name(dominant, names, record), boxes
