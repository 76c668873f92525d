"""The embedded benchmark: synthetic context scenes written in COCO format.

Classes are grouped in supercategories; every supercategory has its own kind of scene, and
every class its own object appearance — the supercategory's shape with the class's texture —
so classes of one supercategory are told apart by a fine texture (period 4.5–7 px at 64 px)
that a Gaussian blur of the box wipes out, while the scene around the box keeps telling the
supercategory (fusion paper Sections 3.1–3.2). ``context_consistency`` is the probability that
the scene is the class's own (1.0 ≈ COCO-like; 0.0 ≈ CIFAR-like, the background says nothing).

The generator also makes the pretraining sets of the two embedded backbones: objects of a
broader set of types on plain backgrounds (the ImageNet analogue) and scenes without objects
of a broader set of scene types (the Places365 analogue). Everything is drawn with numpy from
one seed; the same arguments give byte-identical files.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
from PIL import Image

from ..errors import FeatlabError
from ..utils.paths import atomic_write_bytes, atomic_write_text
from . import DATASETS
from .synthetic_draw import SCENES, SHAPES, TEXTURES, draw_objects, draw_scenes, plain_backgrounds

SUPERCATEGORIES = (
    ("animal", ("fox", "owl", "deer", "hare", "lynx", "crow", "mole", "wren")),
    ("vehicle", ("car", "bus", "van", "truck", "tram", "taxi", "cart", "jeep")),
    ("kitchen", ("cup", "bowl", "jug", "pan", "kettle", "plate", "spoon", "fork")),
    ("outdoor", ("bench", "sign", "kite", "hydrant", "meter", "lamp", "gate", "post")),
    ("sports", ("ball", "racket", "skis", "board", "bat", "glove", "puck", "net")),
    ("food", ("apple", "pear", "donut", "cake", "pizza", "bread", "lemon", "plum")),
    ("indoor", ("clock", "vase", "book", "chair", "sofa", "bed", "desk", "shelf")),
    ("accessory", ("hat", "bag", "tie", "scarf", "shoe", "belt", "watch", "ring")),
)


def class_catalogue(n_supercategories=4, classes_per_supercategory=4) -> list[dict]:
    """One dict per class: name, supercategory, shape, texture, scene (indices into draw tables)."""
    if not 1 <= n_supercategories <= len(SUPERCATEGORIES):
        raise FeatlabError(f"--supercategories {n_supercategories}: expected 1..{len(SUPERCATEGORIES)}")
    if not 1 <= classes_per_supercategory <= len(TEXTURES):
        raise FeatlabError(f"--classes-per-supercategory {classes_per_supercategory}: expected "
                           f"1..{len(TEXTURES)}")
    return [dict(name=names[c], supercategory=sup, shape=s, texture=c, scene=s)
            for s, (sup, names) in enumerate(SUPERCATEGORIES[:n_supercategories])
            for c in range(classes_per_supercategory)]


def _boxes(rng, n_objects: int, n: int) -> np.ndarray:
    """``x, y, w, h`` boxes: each >= 8% of the image, union <= 50%."""
    lo, hi = (0.36, 0.62) if n_objects == 1 else (0.30, 0.44)
    sides = rng.uniform(lo, hi, (n_objects, 2)) * n
    xy = rng.uniform(0, 1, (n_objects, 2)) * (n - sides)
    return np.round(np.hstack([xy, sides]), 2)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0,
                                optimize=False)
    return buffer.getvalue()


def _render(rng, classes, labels, scenes, boxes, n):
    """Images (b, n, n, 3) uint8 for the given labels, scene indices and box lists."""
    out = np.empty((len(labels), n, n, 3), np.float32)
    for scene in np.unique(scenes):
        idx = np.flatnonzero(scenes == scene)
        out[idx] = draw_scenes(rng, int(scene), len(idx), n)
    for label in np.unique(labels):
        rows = [(i, box) for i in np.flatnonzero(labels == label) for box in boxes[i]]
        cls = classes[label]
        alpha, rgb = draw_objects(rng, cls["shape"], cls["texture"],
                                  np.array([b for _, b in rows]), n)
        for k, (i, _) in enumerate(rows):
            out[i] = out[i] * (1 - alpha[k, ..., None]) + rgb[k] * alpha[k, ..., None]
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def generate_synthetic(out_dir, *, seed=0, n_images=1600, image_size=64, context_consistency=1.0,
                       n_supercategories=4, classes_per_supercategory=4, val_fraction=0.25,
                       jpeg_quality=92) -> dict:
    """Write the benchmark to ``out_dir`` in COCO layout (``annotations/instances_{train,val}.json``,
    ``train/*.jpg``, ``val/*.jpg``) and return a summary."""
    if not 0.0 <= context_consistency <= 1.0:
        raise FeatlabError(f"context_consistency {context_consistency}: expected a value in [0, 1]")
    if n_images < 1 or image_size < 16:
        raise FeatlabError("n_images must be >= 1 and image_size >= 16")
    classes = class_catalogue(n_supercategories, classes_per_supercategory)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_images) % len(classes))
    own = np.array([classes[k]["scene"] for k in labels])
    scenes = np.where(rng.random(n_images) < context_consistency, own,
                      rng.integers(0, len(SCENES), n_images))
    counts = np.where(rng.random(n_images) < 0.3, 2, 1)
    boxes = [_boxes(rng, int(c), image_size) for c in counts]
    images = _render(rng, classes, labels, scenes, boxes, image_size)
    is_val = rng.random(n_images) < val_fraction
    categories = [dict(id=k + 1, name=c["name"], supercategory=c["supercategory"])
                  for k, c in enumerate(classes)]
    for split in ("train", "val"):
        entries, annotations = [], []
        for i in np.flatnonzero(is_val == (split == "val")):
            name = f"{i + 1:06d}.jpg"
            atomic_write_bytes(os.path.join(out_dir, split, name), _jpeg(images[i], jpeg_quality))
            entries.append(dict(id=int(i + 1), file_name=name, width=image_size,
                                height=image_size, scene=SCENES[scenes[i]]))
            for x, y, w, h in boxes[i]:
                annotations.append(dict(
                    id=len(annotations) + 1 + (0 if split == "train" else 10 * n_images),
                    image_id=int(i + 1), category_id=int(labels[i] + 1),
                    bbox=[float(x), float(y), float(w), float(h)], area=float(w * h), iscrowd=0,
                    segmentation=[[float(x), float(y), float(x + w), float(y), float(x + w),
                                   float(y + h), float(x), float(y + h)]]))
        payload = dict(info=dict(description="featlab synthetic context scenes", seed=seed),
                       licenses=[], images=entries, annotations=annotations, categories=categories)
        atomic_write_text(os.path.join(out_dir, "annotations", f"instances_{split}.json"),
                          json.dumps(payload))
    return dict(n_images=int(n_images), n_val=int(is_val.sum()), classes=[c["name"] for c in classes],
                supercategories=[s for s, _ in SUPERCATEGORIES[:n_supercategories]],
                seed=seed, image_size=image_size, context_consistency=context_consistency)


def _object_types(n_extra: int = 16) -> list[tuple[int, int]]:
    """(shape, texture) of every dataset class of the largest catalogue, plus extra types."""
    used = {(c["shape"], c["texture"]) for c in class_catalogue(4, 4)}
    extra = [(s, t) for s in range(len(SHAPES)) for t in range(len(TEXTURES)) if (s, t) not in used]
    pick = np.random.default_rng(12345).permutation(len(extra))[:n_extra]
    return sorted(used) + [extra[i] for i in sorted(pick)]


def object_pretraining_set(n, *, seed=0, image_size=64):
    """Objects of 32 types on plain backgrounds. Returns (uint8 (n, 3, H, W), labels, names)."""
    types = _object_types()
    rng = np.random.default_rng([seed, 1])
    labels = rng.permutation(np.arange(n) % len(types))
    out = plain_backgrounds(rng, n, image_size)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        boxes = np.vstack([_boxes(rng, 1, image_size) for _ in idx])
        alpha, rgb = draw_objects(rng, *types[label], boxes, image_size)
        out[idx] = out[idx] * (1 - alpha[..., None]) + rgb * alpha[..., None]
    images = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    names = [f"{SHAPES[s]}/{TEXTURES[t]}" for s, t in types]
    return np.ascontiguousarray(images), labels.astype(np.int64), names


def scene_pretraining_set(n, *, seed=0, image_size=64):
    """Scenes of every scene type, no objects. Returns (uint8 (n, 3, H, W), labels, names)."""
    rng = np.random.default_rng([seed, 2])
    labels = rng.permutation(np.arange(n) % len(SCENES))
    out = np.empty((n, image_size, image_size, 3), np.float32)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        out[idx] = draw_scenes(rng, int(label), len(idx), image_size)
    images = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), labels.astype(np.int64), list(SCENES)


@DATASETS.register("synthetic")
def load_synthetic(root, **kwargs):
    """The COCO loader pointed at the output of :func:`generate_synthetic`."""
    from .coco import load_coco

    kwargs.setdefault("image_size", 64)
    return load_coco(root, name="synthetic", **kwargs)
