"""Synthetic context scenes written in COCO format, and the embedded backbones' pretraining sets.

The embedded benchmark of featlab (design, "Data"). Classes are grouped in supercategories;
every supercategory has its own kind of scene (grass field for animals, road for vehicles, ...),
so the background tells the supercategory with probability ``context_consistency`` (1.0 is
COCO-like, 0.0 CIFAR-like). The classes of one supercategory share a shape and differ by a
fine texture, so the *Similar* subset (one supercategory) is fine-grained and the *Dissimilar*
one (one class per supercategory) coarse, as in the fusion paper's Section 3.2. Images hold
one or two instances of a single class, their boxes cover at most half of the image (Section
2.2), and a Gaussian blur of the box removes the texture that separates classes (Section 3.1).

:func:`~.synthetic_pretraining.object_pretraining_set` (objects on plain backgrounds, the ImageNet analogue) and
:func:`~.synthetic_pretraining.scene_pretraining_set` (scenes without objects, the Places365 analogue) draw from a
broader set of object and scene types than any dataset uses.
"""
from __future__ import annotations

import io
import json
import logging
import numbers
import os

import numpy as np
from PIL import Image

from ..errors import FeatlabError
from . import synthetic_draw as draw
from .coco import load_coco
from .registry import DATASETS

logger = logging.getLogger(__name__)

#: Supercategories in order, with their class names; supercategory ``s`` is drawn on scene
#: ``draw.SCENES[s]`` and its objects have shape ``draw.SHAPES[s]``; class ``c`` of it has
#: texture ``draw.TEXTURES[c]``.
SUPERCATEGORIES = (
    ("animal", ("fox", "deer", "hare", "badger", "boar", "wolf")),
    ("vehicle", ("car", "bus", "truck", "van", "tractor", "scooter")),
    ("furniture", ("chair", "sofa", "lamp", "table", "shelf", "clock")),
    ("marine", ("fish", "seal", "crab", "dolphin", "eel", "shark")),
    ("bird", ("owl", "hawk", "crow", "swan", "heron", "robin")),
    ("food", ("apple", "bread", "cake", "pizza", "pear", "donut")),
)
MIN_BOX_FRACTION = 0.08  # every instance's box covers at least this part of the image
MAX_BOX_FRACTION = 0.5  # the union of the boxes covers at most this part (paper Section 2.2)


def object_types() -> list:
    """Every object type of the pretraining set as ``(name, shape, texture)``: all shape x
    texture pairs; a pair a dataset can use is named after its class, the others
    ``"<shape> <texture>"``."""
    types = []
    for shape, shape_name in enumerate(draw.SHAPES):
        for texture, texture_name in enumerate(draw.TEXTURES):
            named = shape < len(SUPERCATEGORIES) and texture < len(SUPERCATEGORIES[shape][1])
            name = SUPERCATEGORIES[shape][1][texture] if named else f"{shape_name} {texture_name}"
            types.append((name, shape, texture))
    return types


def _check(seed, n_images, image_size, context_consistency, n_super, per_super, val_fraction,
           jpeg_quality):
    max_per = min(len(names) for _, names in SUPERCATEGORIES)
    ints = dict(seed=(seed, 0, None), n_supercategories=(n_super, 1, len(SUPERCATEGORIES)),
                classes_per_supercategory=(per_super, 1, max_per),
                image_size=(image_size, 16, None),
                jpeg_quality=(jpeg_quality, 1, 95))
    for option, (value, lo, hi) in ints.items():
        if not (isinstance(value, numbers.Integral) and lo <= value <= (hi or value)):
            raise FeatlabError(f"{option} must be an integer in [{lo}, {hi or 'inf'}], "
                               f"got {value!r}")
    if not (isinstance(n_images, numbers.Integral) and n_images >= n_super * per_super):
        raise FeatlabError(f"n_images must be an integer >= the number of classes "
                           f"({n_super * per_super}), got {n_images!r}")
    for option, value, hi_open in (("context_consistency", context_consistency, False),
                                   ("val_fraction", val_fraction, True)):
        if not (isinstance(value, numbers.Real) and 0 <= value and
                (value < 1 if hi_open else value <= 1)):
            raise FeatlabError(f"{option} must be a number in [0, 1{')' if hi_open else ']'}, "
                               f"got {value!r}")


def _tight_box(alpha: np.ndarray):
    """``[x, y, w, h]`` (px, floats) of the pixels with alpha >= 0.5, or None."""
    rows, cols = np.flatnonzero((alpha >= .5).any(1)), np.flatnonzero((alpha >= .5).any(0))
    if not rows.size:
        return None
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1 - cols[0]),
            float(rows[-1] + 1 - rows[0])]


def _union(boxes) -> float:
    area = sum(w * h for _, _, w, h in boxes)
    if len(boxes) == 2:
        (x0, y0, w0, h0), (x1, y1, w1, h1) = boxes
        area -= max(0., min(x0 + w0, x1 + w1) - max(x0, x1)) * \
            max(0., min(y0 + h0, y1 + h1) - max(y0, y1))
    return area


def nominal_boxes(rng, k: int, n: int, lo: float, hi: float) -> np.ndarray:
    """``k`` boxes ``x, y, w, h`` of area fraction in [lo, hi), placed apart when possible."""
    boxes = []
    for _ in range(k):
        for _attempt in range(20):
            area, aspect = rng.uniform(lo, hi) * n * n, np.exp(rng.uniform(-.3, .3))
            w = min(np.sqrt(area * aspect), .9 * n)
            h = min(area / w, .9 * n)
            box = (rng.uniform(0, n - w), rng.uniform(0, n - h), w, h)
            if all(_union([box, other]) >= box[2] * box[3] + other[2] * other[3] - 1e-6
                   for other in boxes):
                break
        boxes.append(box)
    return np.asarray(boxes, np.float32)


def _scene_image(rng, shape: int, texture: int, scene: int, n: int):
    """One dataset image (n, n, 3) uint8 and its instances' tight boxes."""
    k = 1 if rng.random() < .6 else 2
    lo, hi = (.14, .4) if k == 1 else (.1, .2)
    for _attempt in range(100):
        alpha, rgb = draw.draw_objects(rng, shape, texture, nominal_boxes(rng, k, n, lo, hi), n)
        boxes = [_tight_box(a) for a in alpha]
        if all(b is not None and b[2] * b[3] >= MIN_BOX_FRACTION * n * n for b in boxes) \
                and _union(boxes) <= MAX_BOX_FRACTION * n * n:
            break
    else:  # pragma: no cover - the geometry above practically always fits
        raise RuntimeError("could not place the objects of a synthetic image")
    image = draw.draw_scenes(rng, scene, 1, n)[0]
    for a, c in zip(alpha, rgb):
        image = image + (c - image) * a[..., None]
    return draw.to_uint8(image), boxes


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=0,
                                optimize=False, progressive=False)
    return buf.getvalue()


def _plan(seed, n_images, n_classes, val_fraction):
    """Balanced shuffled labels (n_images,) and a per-class stratified val mask."""
    labels = np.random.default_rng([seed, 0]).permutation(np.arange(n_images) % n_classes)
    is_val = np.zeros(n_images, bool)
    for k in range(n_classes):
        rows = np.flatnonzero(labels == k)
        is_val[rows[:int(np.floor(len(rows) * val_fraction + .5))]] = True
    return labels, is_val


def _write_image(folder: str, i: int, cls: tuple, p: dict):
    """Draw image ``i`` of class ``cls`` = (name, supercategory, texture), write its JPEG in
    ``folder``; return its COCO image entry and its boxes."""
    _, sup, texture = cls
    rng = np.random.default_rng([p["seed"], 1, i])
    consistent = rng.random() < p["context_consistency"]
    scene = sup if consistent else int(rng.integers(p["n_supercategories"]))
    image, boxes = _scene_image(rng, sup, texture, scene, p["image_size"])
    file_name = f"{i + 1:012d}.jpg"
    _write_atomic(os.path.join(folder, file_name), _jpeg(image, p["jpeg_quality"]))
    return dict(id=i + 1, file_name=file_name, width=p["image_size"], height=p["image_size"],
                license=1, scene=draw.SCENES[scene]), boxes


def _write_annotations(out_dir, out: dict, classes: list, params: dict) -> None:
    """``annotations/instances_<split>.json`` of each split, each written atomically."""
    categories = [dict(id=k + 1, name=name, supercategory=SUPERCATEGORIES[s][0])
                  for k, (name, s, _) in enumerate(classes)]
    for split, (images, anns) in out.items():
        doc = dict(info=dict(description="featlab synthetic context scenes", version="1",
                             contributor="featlab", featlab_params=params),
                   licenses=[dict(id=1, name="generated by featlab, public domain", url="")],
                   images=images, annotations=anns, categories=categories)
        _write_atomic(os.path.join(out_dir, "annotations", f"instances_{split}.json"),
                      json.dumps(doc, separators=(",", ":")).encode())


def generate_synthetic(out_dir, *, seed=0, n_images=1600, image_size=64, context_consistency=1.0,
                       n_supercategories=4, classes_per_supercategory=4, val_fraction=0.25,
                       jpeg_quality=92) -> dict:
    """Write a synthetic context-scene dataset in COCO layout under ``out_dir``.

    Writes ``annotations/instances_{train,val}.json`` (each image entry has an extra key
    ``scene``, the name of its background) and the JPEGs in ``train/`` and ``val/``. Classes
    are balanced; the split is stratified by class. Same arguments, same bytes. The JSON is
    written last and atomically, so an interrupted run leaves no annotation file.

    Parameters
    ----------
    seed : int — seeds everything
    n_images : int — images in total (train + val)
    image_size : int — square images of this many pixels
    context_consistency : float — probability that an image's scene is its supercategory's
        scene; otherwise the scene is drawn uniformly from the dataset's scene kinds
    n_supercategories, classes_per_supercategory : int — at most 6 each
    val_fraction : float — per-class fraction of the images in ``val``
    jpeg_quality : int — JPEG quality (4:4:4, baseline)

    Returns
    -------
    dict — counts, classes, supercategories, scenes and the parameters
    """
    _check(seed, n_images, image_size, context_consistency, n_supercategories,
           classes_per_supercategory, val_fraction, jpeg_quality)
    params = dict(seed=int(seed), n_images=int(n_images), image_size=int(image_size),
                  context_consistency=float(context_consistency),
                  n_supercategories=int(n_supercategories),
                  classes_per_supercategory=int(classes_per_supercategory),
                  val_fraction=float(val_fraction), jpeg_quality=int(jpeg_quality))
    classes = [(SUPERCATEGORIES[s][1][c], s, c) for s in range(n_supercategories)
               for c in range(classes_per_supercategory)]
    labels, is_val = _plan(seed, n_images, len(classes), val_fraction)
    out = {"train": ([], []), "val": ([], [])}
    for path in [out_dir] + [os.path.join(out_dir, f) for f in ("train", "val", "annotations")]:
        if os.path.exists(path) and not os.path.isdir(path):
            raise FeatlabError(f"--out {out_dir}: {path} is a file, not a directory")
    for folder in ("train", "val", "annotations"):
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    n_ann = 0
    for i, label in enumerate(labels):
        split = "val" if is_val[i] else "train"
        entry, boxes = _write_image(os.path.join(out_dir, split), i, classes[label], params)
        out[split][0].append(entry)
        for x, y, w, h in boxes:
            n_ann += 1
            out[split][1].append(dict(
                id=n_ann, image_id=i + 1, category_id=int(label) + 1, bbox=[x, y, w, h],
                area=w * h, iscrowd=0, segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    _write_annotations(out_dir, out, classes, params)
    summary = dict(out_dir=str(out_dir), n_images=int(n_images), n_train=len(out["train"][0]),
                   n_val=len(out["val"][0]), n_annotations=n_ann,
                   classes=[c[0] for c in classes],
                   class_supercategory=[SUPERCATEGORIES[c[1]][0] for c in classes],
                   supercategories=[s for s, _ in SUPERCATEGORIES[:n_supercategories]],
                   scenes=list(draw.SCENES[:n_supercategories]), params=params)
    logger.info("wrote %d synthetic images (%d classes) to %s", n_images, len(classes), out_dir)
    return summary


@DATASETS.register("synthetic")
def load_synthetic(root, cache_dir=None, **kwargs):
    """Load a dataset written by :func:`generate_synthetic` with the COCO loader
    (``featlab.data.coco.load_coco``, same keyword arguments; ``cache_dir``: where its
    selection cache goes), named ``"synthetic"``."""
    if not os.path.isdir(os.path.join(str(root), "annotations")):
        raise FeatlabError(f"no synthetic dataset at {root}; create one with "
                           f"featlab.data.synthetic.generate_synthetic({str(root)!r})")
    return load_coco(root, name="synthetic", cache_dir=cache_dir, **kwargs)
