"""MS COCO (or any dataset in COCO instances format), selected as in the fusion paper.

Fusion paper, Section 2.2: keep images holding a single object category with at most two
instances whose boxes cover at most half of the image, on a fixed class list; split 75/25.
Section 3.2 / Figure 3c-d: the *Similar* (one supercategory) and *Dissimilar* (one class per
supercategory) 8-class subsets.

Layout: ``root/annotations/instances_<X>.json`` (read with pycocotools) with its images in
``root/<X>/``. All annotation files are pooled before the selection, and the train/test split
is featlab's seeded, class-stratified one, not COCO's.
"""
from __future__ import annotations

import contextlib
import glob
import io
import logging
import numbers
import os

from ..errors import FeatlabError
from .registry import DATASETS
from .base import MAX_INSTANCES, ImageDataset
from .coco_selection import build_table, check_classes, drop_small_classes
from .images import clip_box, decode_resized, file_exists, read_size, union_area, \
    xywh_to_resized_xyxy

logger = logging.getLogger(__name__)

#: Why an image was not selected, in the order the checks are applied.
REASONS = ("duplicate image", "no annotations", "crowd", "invalid box", "several categories",
           "too many instances", "box too large", "class not selected", "file not found",
           "unreadable file", "class too small")
FILE_REASONS = ("file not found", "unreadable file")  # also listed in samples.skipped
LAYOUT = ("expected the COCO layout root/annotations/instances_<split>.json with the images "
          "of each split in root/<split>/ (e.g. annotations/instances_val2017.json and "
          "val2017/000000000139.jpg)")


class CocoDataset(ImageDataset):
    """A selected COCO-format dataset; see :func:`load_coco`.

    Attributes
    ----------
    selection_stats : dict str -> int — how many pooled images each reason in
        :data:`REASONS` excluded
    """

    normalization = None

    def __init__(self, *, name, root, samples, image_size, spec, selection_stats):
        self.name, self.root, self.samples = name, root, samples
        self.image_size, self.spec, self.selection_stats = image_size, spec, selection_stats

    def load(self, index: int):
        """Decode row ``index``: image (3, S, S) float32 in [0, 1] and boxes (MAX_INSTANCES,
        4) ``x0, y0, x1, y1`` in resized pixels (NaN rows: no instance). Raises OSError or
        ValueError for a missing, corrupt or mis-sized file."""
        table = self.samples
        path = os.path.join(self.root, str(table.file[index]))
        image, size = decode_resized(path, self.image_size)
        expected = (int(table.width[index]), int(table.height[index]))
        if tuple(size) != expected:
            raise ValueError(f"image {path} is {size[0]}x{size[1]} pixels but its "
                             f"annotations say {expected[0]}x{expected[1]}")
        return image, xywh_to_resized_xyxy(table.boxes[index], *expected, self.image_size)

    def __repr__(self) -> str:
        return (f"CocoDataset(name={self.name!r}, root={self.root!r}, n={len(self)}, "
                f"classes={len(self.samples.classes)})")


@DATASETS.register("coco")
def load_coco(root, *, classes=None, image_size=224, seed=0, max_instances=2,
              max_box_fraction=0.5, test_fraction=0.25, subset_size=8,
              min_images_per_class=1, name="coco") -> CocoDataset:
    """Load a COCO-format root with the fusion paper's selection (Section 2.2).

    Parameters
    ----------
    root : str — folder holding ``annotations/instances_<X>.json`` and ``<X>/`` image folders
    classes : list of str or None — restrict to these category names (label order = this
        order); None keeps every selected category, sorted by name
    image_size : int — ``load`` returns ``image_size x image_size`` images
    seed : int — seeds the stratified split and the subset choice
    max_instances : int — at most this many (valid) instances of the single category
    max_box_fraction : float — the union of the boxes covers at most this part of the image
    test_fraction : float — per-class fraction of images in the test split
    subset_size : int — classes in the ``similar`` and ``dissimilar`` subsets
    min_images_per_class : int — classes with fewer selected images are dropped
    name : str — the dataset's name (recorded in ``spec``)

    Returns
    -------
    CocoDataset, with ``selection_stats`` counting the excluded images by reason. Crowd
    annotations exclude their image; boxes are clipped to the image and those left empty
    are dropped as invalid. Missing files are listed in ``samples.skipped``.
    """
    root = _check_root(root)
    _check_options(image_size, seed, max_instances, max_box_fraction, test_fraction,
                   subset_size, min_images_per_class)
    stats = dict.fromkeys(REASONS, 0)
    records, supercategory = _pool_images(root, stats)
    wanted = check_classes(classes, supercategory)
    kept, skipped, allowed = [], [], None if wanted is None else set(wanted)
    for record in records:
        reason = _examine(record, root, max_instances, max_box_fraction)
        if reason is None and allowed is not None and record["class"] not in allowed:
            reason = "class not selected"
        if reason is None and not file_exists(root, record["file"]):
            reason = "file not found"
        if reason in FILE_REASONS:
            skipped.append((record["file"], reason))
        if reason is None:
            kept.append(record)
        else:
            stats[reason] += 1
    kept, class_list = drop_small_classes(kept, wanted, min_images_per_class, stats)
    if not kept:
        excluded = ", ".join(f"{k}: {v}" for k, v in stats.items() if v) or "no images"
        raise FeatlabError(f"no image of {root} passes the selection (one category, 1 to "
                           f"{max_instances} instances, boxes <= {max_box_fraction:g} of the "
                           f"image); excluded: {excluded}; check classes or loosen the limits")
    samples = build_table(kept, class_list, supercategory, seed, test_fraction, subset_size)
    samples.skipped = skipped
    spec = dict(name=name, root=root, classes=list(class_list), image_size=int(image_size),
                seed=int(seed), max_instances=int(max_instances),
                max_box_fraction=float(max_box_fraction), test_fraction=float(test_fraction),
                subset_size=int(subset_size), min_images_per_class=int(min_images_per_class))
    logger.info("%s: %d images in %d classes selected from %s; excluded %s", name, len(kept),
                len(class_list), root, {k: v for k, v in stats.items() if v})
    return CocoDataset(name=name, root=root, samples=samples, image_size=int(image_size),
                       spec=spec, selection_stats=stats)


def _check_root(root) -> str:
    root = os.path.abspath(os.path.expanduser(str(root)))
    if not os.path.isdir(root):
        raise FeatlabError(f"COCO root {root} does not exist or is not a folder; {LAYOUT}")
    return root


def _check_options(image_size, seed, max_instances, max_box_fraction, test_fraction,
                   subset_size, min_images_per_class) -> None:
    checks = [
        ("image_size", image_size, _int(image_size) and image_size >= 1, ">= 1"),
        ("seed", seed, _int(seed) and seed >= 0, "an integer >= 0"),
        ("max_instances", max_instances, _int(max_instances)
         and 1 <= max_instances <= MAX_INSTANCES, f"between 1 and {MAX_INSTANCES}"),
        ("max_box_fraction", max_box_fraction, _real(max_box_fraction)
         and 0 < max_box_fraction <= 1, "in (0, 1]"),
        ("test_fraction", test_fraction, _real(test_fraction) and 0 <= test_fraction < 1,
         "in [0, 1)"),
        ("subset_size", subset_size, _int(subset_size) and subset_size >= 2, ">= 2"),
        ("min_images_per_class", min_images_per_class,
         _int(min_images_per_class) and min_images_per_class >= 1, ">= 1"),
    ]
    for option, value, ok, expected in checks:
        if not ok:
            raise FeatlabError(f"{option} must be {expected}, got {value!r}")


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _read_json(path: str):
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(path)
    except (OSError, ValueError, AssertionError, KeyError, TypeError) as exc:
        raise FeatlabError(f"cannot read COCO annotations {path} ({type(exc).__name__}: "
                           f"{exc}); it must be a COCO instances JSON") from None


def _pool_images(root: str, stats: dict):
    """Records of every image of every annotation file (first file wins for a repeated
    image id), and the category name -> supercategory map."""
    paths = sorted(glob.glob(os.path.join(root, "annotations", "instances_*.json")))
    if not paths:
        raise FeatlabError(f"no annotations/instances_*.json under {root}; {LAYOUT}")
    records, supercategory, seen = [], {}, set()
    for path in paths:
        folder = os.path.basename(path)[len("instances_"):-len(".json")]
        coco = _read_json(path)
        names = {c["id"]: c["name"] for c in coco.dataset.get("categories", [])}
        for c in coco.dataset.get("categories", []):
            supercategory.setdefault(c["name"], c.get("supercategory") or "none")
        for image_id in sorted(coco.imgs):
            if image_id in seen:
                stats["duplicate image"] += 1
                continue
            seen.add(image_id)
            image = coco.imgs[image_id]
            records.append(dict(id=int(image_id), file=f"{folder}/{image['file_name']}",
                                width=image.get("width"), height=image.get("height"),
                                anns=coco.imgToAnns.get(image_id, []), names=names))
    return records, supercategory


def _examine(record: dict, root: str, max_instances: int, max_box_fraction: float):
    """Why ``record`` is excluded (a key of REASONS) or None; fills its class and boxes."""
    anns = record["anns"]
    if not anns:
        return "no annotations"
    if any(a.get("iscrowd", 0) for a in anns):
        return "crowd"
    if not (record["width"] or 0) > 0 or not (record["height"] or 0) > 0:
        try:  # sizes missing from the JSON: read the file header
            record["width"], record["height"] = read_size(os.path.join(root, record["file"]))
        except FileNotFoundError:
            return "file not found"
        except OSError:
            return "unreadable file"
    valid = []
    for a in anns:
        bbox = a.get("bbox")
        box = clip_box(bbox, record["width"], record["height"]) if bbox and len(bbox) == 4 \
            else None
        if box is not None:
            valid.append((a["category_id"], box))
    if not valid:
        return "invalid box"
    if len({c for c, _ in valid}) > 1:
        return "several categories"
    if len(valid) > max_instances:
        return "too many instances"
    boxes = [b for _, b in valid]
    if union_area(boxes) > max_box_fraction * record["width"] * record["height"]:
        return "box too large"
    if valid[0][0] not in record["names"]:
        raise FeatlabError(f"image {record['file']} has an annotation of category_id "
                           f"{valid[0][0]}, which its JSON's categories do not define")
    record["class"], record["boxes"] = record["names"][valid[0][0]], boxes
    return None
