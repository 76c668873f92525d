"""COCO selection cache at train2017's size: the first load parses the annotation
file and examines every image, the second reads the per-file cache. Target: second < 2 s.

The annotation file is generated here (in a temporary folder, never in the repository):
118,287 images and 860,001 annotations, as train2017, over 80 categories in 12
supercategories, 1-40 annotations per image (mean 7.3), 1 % crowd, each with a 16-point
polygon; every image file exists (empty: the selection never opens files whose size the
JSON gives).

    python bench/bench_coco_cache.py [--images 118287] [--annotations 860001]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

import numpy as np

from featlab.data.coco import load_coco


def _categories():
    groups = ["person", "vehicle", "outdoor", "animal", "accessory", "sports", "kitchen",
              "food", "furniture", "electronic", "appliance", "indoor"]
    return [{"id": i + 1, "name": f"class{i:02d}", "supercategory": groups[i % len(groups)]}
            for i in range(80)]


def _counts(rng, n_images: int, n_annotations: int) -> np.ndarray:
    counts = np.clip(rng.geometric(1 / 7.3, n_images), 1, 40)
    while counts.sum() != n_annotations:  # adjust to the exact total
        diff = n_annotations - counts.sum()
        rows = rng.integers(0, n_images, abs(diff))
        counts[rows] = np.clip(counts[rows] + np.sign(diff), 1, 40)
    return counts


def _annotation_arrays(rng, counts: np.ndarray) -> dict:
    """Every annotation's image, category, box, crowd flag and polygon, drawn at once."""
    n = int(counts.sum())
    image = np.repeat(np.arange(1, len(counts) + 1), counts)
    single = np.repeat(rng.random(len(counts)) < 0.2, counts)  # one category per image
    first_cat = np.repeat(rng.integers(1, 81, len(counts)), counts)
    cat = np.where(single, first_cat, rng.integers(1, 81, n))
    w, h = rng.uniform(4, 320, n), rng.uniform(4, 240, n)
    x, y = rng.uniform(0, 1, n) * (640 - w), rng.uniform(0, 1, n) * (480 - h)
    u = rng.uniform(0, 1, (n, 8, 2))
    poly = np.stack([x[:, None] + u[..., 0] * w[:, None], y[:, None] + u[..., 1] * h[:, None]],
                    axis=2).reshape(n, 16)
    return dict(image=image, cat=cat, box=np.stack([x, y, w, h], 1), poly=poly,
                crowd=(rng.random(n) < 0.01).astype(int))


def write_annotations(path: str, n_images: int, n_annotations: int, seed: int = 0) -> int:
    """Write a COCO instances JSON to ``path``; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    a = _annotation_arrays(rng, _counts(rng, n_images, n_annotations))
    with open(path, "w") as out:
        out.write('{"info": {}, "licenses": [], "categories": ')
        out.write(json.dumps(_categories()))
        out.write(', "images": [')
        out.write(",".join(f'{{"id": {i + 1}, "file_name": "{i + 1:012d}.jpg", '
                           f'"width": 640, "height": 480}}' for i in range(n_images)))
        out.write('], "annotations": [')
        for k in range(0, len(a["cat"]), 100_000):
            rows = range(k, min(k + 100_000, len(a["cat"])))
            out.write(("," if k else "") + ",".join(
                f'{{"id": {i + 1}, "image_id": {a["image"][i]}, "category_id": {a["cat"][i]}, '
                f'"bbox": [{a["box"][i, 0]:.2f}, {a["box"][i, 1]:.2f}, {a["box"][i, 2]:.2f}, '
                f'{a["box"][i, 3]:.2f}], "area": {a["box"][i, 2] * a["box"][i, 3]:.2f}, '
                f'"iscrowd": {a["crowd"][i]}, "segmentation": [['
                + ", ".join(f"{v:.2f}" for v in a["poly"][i]) + "]]}" for i in rows))
        out.write("]}")
    return os.path.getsize(path)


def main(n_images: int, n_annotations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = os.path.join(tmp, "coco"), os.path.join(tmp, "cache")
        os.makedirs(os.path.join(root, "annotations"))
        os.makedirs(os.path.join(root, "train2017"))
        start = time.perf_counter()
        size = write_annotations(os.path.join(root, "annotations", "instances_train2017.json"),
                                 n_images, n_annotations)
        for i in range(n_images):
            open(os.path.join(root, "train2017", f"{i + 1:012d}.jpg"), "wb").close()
        print(f"generated {n_images} images, {n_annotations} annotations, "
              f"{size / 2 ** 20:.0f} MiB of JSON in {time.perf_counter() - start:.0f} s")
        timings = {}
        for call in ("first (parse + cache)", "second (cache)", "third (cache)"):
            start = time.perf_counter()
            ds = load_coco(root, cache_dir=cache)
            timings[call] = time.perf_counter() - start
            print(f"{call}: {timings[call]:.2f} s, {len(ds)} images selected in "
                  f"{len(ds.samples.classes)} classes")
        second = timings["second (cache)"]
        cached = sum(os.path.getsize(os.path.join(cache, "coco-selection", f))
                     for f in os.listdir(os.path.join(cache, "coco-selection")))
        print(f"cache {cached / 2 ** 20:.1f} MiB; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.1f} GiB; "
              f"second call {second:.2f} s (target < 2 s), "
              f"{timings['first (parse + cache)'] / second:.0f}x faster than the first")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118287)
    parser.add_argument("--annotations", type=int, default=860001)
    args = parser.parse_args()
    main(args.images, args.annotations)
