"""MS COCO (or any dataset in COCO instances format), selected as in the fusion paper.

Fusion paper, Section 2.2: keep images holding a single object category with at most two
instances whose boxes cover at most half of the image, on a fixed class list; split 75/25.
Section 3.2 / Figure 3c-d: the *Similar* (one supercategory) and *Dissimilar* (one class per
supercategory) 8-class subsets. ``selection="all"`` keeps every annotated image instead
(:mod:`featlab.data.coco_rules`).

Layout: ``root/annotations/instances_<X>.json`` (read with pycocotools) with its images in
``root/<X>/``. All annotation files are pooled before the selection, and the train/test split
is featlab's seeded, class-stratified one, not COCO's. Each file's examination is cached
(:mod:`featlab.data.coco_cache`), so a large file is parsed once.
"""
from __future__ import annotations

import logging
import numbers
import os

import numpy as np

from ..errors import FeatlabError
from .base import MAX_INSTANCES, ImageDataset
from .coco_pool import apply_filters, pool
from .coco_rules import REASONS, SELECTED, SELECTIONS
from .coco_selection import build_table, check_classes, class_subsets, drop_small_classes, \
    stratified_split
from .images import decode_resized, xywh_to_resized_xyxy
from .registry import DATASETS

__all__ = ["CocoDataset", "load_coco", "REASONS", "stratified_split", "class_subsets"]

logger = logging.getLogger(__name__)
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


def _selection_spec(selection, max_instances, max_box_fraction, max_boxes) -> dict:
    """The selection's part of a dataset spec (the paper's keys as before ``selection``)."""
    spec = dict(max_instances=int(max_instances), max_box_fraction=float(max_box_fraction))
    if selection != "paper":
        spec.update(selection=selection, max_boxes=int(max_boxes))
    return spec


@DATASETS.register("coco")
def load_coco(root, *, classes=None, image_size=224, seed=0, max_instances=2,
              max_box_fraction=0.5, test_fraction=0.25, subset_size=8,
              min_images_per_class=1, name="coco", selection="paper", max_boxes=16,
              cache_dir=None) -> CocoDataset:
    """Load a COCO-format root with the fusion paper's selection (Section 2.2), or all of it.

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
    selection : ``"paper"`` or ``"all"`` — ``all``: every image with a valid box, labelled by
        its dominant category, with up to ``max_boxes`` boxes of every category (see
        :mod:`featlab.data.coco_rules`); ``max_instances`` and ``max_box_fraction`` unused
    max_boxes : int — boxes kept per image with ``selection="all"`` (largest first)
    cache_dir : str, None or False — featlab's cache folder for the per-file selection cache
        (None: ``$FEATLAB_CACHE`` or ``./cache``; False: no cache)

    Returns
    -------
    CocoDataset, with ``selection_stats`` counting the excluded images by reason. Crowd
    annotations exclude their image (paper selection); boxes are clipped to the image and
    those left empty are dropped as invalid. Missing files are listed in ``samples.skipped``.
    """
    root = _check_root(root)
    _check_options(image_size, seed, max_instances, max_box_fraction, test_fraction,
                   subset_size, min_images_per_class, selection, max_boxes)
    options = _rule_options(selection, max_instances, max_box_fraction, max_boxes)
    pooled, supercategory = pool(root, options, cache_dir, LAYOUT)
    wanted = check_classes(classes, supercategory)
    stats, skipped = apply_filters(pooled, root, wanted)
    keep = np.flatnonzero(pooled["reason"] == SELECTED)
    keep, class_list = drop_small_classes(pooled, keep, wanted, min_images_per_class, stats)
    if not len(keep):
        excluded = ", ".join(f"{k}: {v}" for k, v in stats.items() if v) or "no images"
        raise FeatlabError(f"no image of {root} passes the selection ({_describe(options)}); "
                           f"excluded: {excluded}; check classes or loosen the limits")
    samples = build_table(pooled, keep, class_list, supercategory, seed, test_fraction,
                           subset_size)
    samples.skipped = skipped
    spec = dict(name=name, root=root, classes=list(class_list), image_size=int(image_size),
                seed=int(seed), test_fraction=float(test_fraction), subset_size=int(subset_size),
                min_images_per_class=int(min_images_per_class), **_selection_spec(
                    selection, max_instances, max_box_fraction, max_boxes))
    logger.info("%s: %d images in %d classes selected from %s; excluded %s", name, len(keep),
                len(class_list), root, {k: v for k, v in stats.items() if v})
    return CocoDataset(name=name, root=root, samples=samples, image_size=int(image_size),
                       spec=spec, selection_stats=stats)


def _rule_options(selection, max_instances, max_box_fraction, max_boxes) -> dict:
    """The options the per-file examination (and its cache key) depends on."""
    if selection == "all":  # the paper's limits do not apply: one cache entry for all
        return dict(selection=selection, max_instances=0, max_box_fraction=0.0,
                    max_boxes=int(max_boxes))
    return dict(selection=selection, max_instances=int(max_instances),
                max_box_fraction=float(max_box_fraction), max_boxes=int(max_boxes))


def _describe(options: dict) -> str:
    if options["selection"] == "all":
        return "selection=all: at least one valid box"
    return (f"one category, 1 to {options['max_instances']} instances, boxes <= "
            f"{options['max_box_fraction']:g} of the image")


def _check_root(root) -> str:
    root = os.path.abspath(os.path.expanduser(str(root)))
    if not os.path.isdir(root):
        raise FeatlabError(f"COCO root {root} does not exist or is not a folder; {LAYOUT}")
    return root


def _check_options(image_size, seed, max_instances, max_box_fraction, test_fraction,
                   subset_size, min_images_per_class, selection="paper", max_boxes=16) -> None:
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
        ("selection", selection, selection in SELECTIONS, " or ".join(SELECTIONS)),
        ("max_boxes", max_boxes, _int(max_boxes) and max_boxes >= 1, "an integer >= 1"),
    ]
    for option, value, ok, expected in checks:
        if not ok:
            raise FeatlabError(f"{option} must be {expected}, got {value!r}")


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
