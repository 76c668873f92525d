"""COCO loader: the fusion paper's selection (Section 2.2), split, subsets, decoding.

The fixture writes a real COCO root (instances JSON read by pycocotools, JPEG/PNG files)
where every image's fate is known in advance.
"""
import json
import os
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from featlab.data import DATASETS
from featlab.data.base import MAX_INSTANCES
from featlab.data.coco import REASONS, load_coco
from featlab.errors import FeatlabError

W, H = 64, 48
CATEGORIES = [("dog", "animal"), ("cat", "animal"), ("horse", "animal"), ("car", "vehicle"),
              ("bus", "vehicle"), ("chair", "furniture"), ("toilet", "indoor"),
              ("zebra", "animal")]
CAT_ID = {name: i + 1 for i, (name, _) in enumerate(CATEGORIES)}
SMALL = (8, 8, 16, 12)  # 6% of the image


class CocoBuilder:
    """Writes images + instances JSONs and remembers what the loader must do with each."""

    def __init__(self, root):
        self.root, self.next_id = root, 1
        self.json = {}
        self.expected = {}  # file -> (reason or None, class, clipped boxes)

    def add(self, split, anns, reason=None, cls=None, *, mode="RGB", fmt="JPEG",
            color=(200, 30, 60), write="ok", boxes=None, image_id=None, size=(W, H)):
        image_id = image_id or self.next_id
        self.next_id = max(self.next_id, image_id) + 1
        ext = "png" if fmt == "PNG" else "jpg"
        name = f"{image_id:012d}.{ext}" if write != "duplicate" else f"dup_{image_id}.{ext}"
        data = self.json.setdefault(split, {"images": [], "annotations": [], "categories": [
            {"id": CAT_ID[n], "name": n, "supercategory": s} for n, s in CATEGORIES]})
        data["images"].append({"id": image_id, "file_name": name, "width": size[0],
                               "height": size[1]})
        for k, (c, bbox, *crowd) in enumerate(anns):
            data["annotations"].append({
                "id": len(data["annotations"]) + 1 + 1000 * image_id, "image_id": image_id,
                "category_id": CAT_ID[c], "bbox": list(bbox), "iscrowd": int(bool(crowd)),
                "area": float(bbox[2] * bbox[3])})
        path = os.path.join(self.root, split, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if write != "missing":
            _write_image(path, mode, fmt, color, write, size)
        key = f"{split}/{name}"
        boxes = boxes if boxes is not None else [a[1] for a in anns]
        self.expected[key] = (reason, cls or (anns[0][0] if anns else None), boxes)
        return key

    def finish(self):
        os.makedirs(os.path.join(self.root, "annotations"), exist_ok=True)
        for split, data in self.json.items():
            with open(os.path.join(self.root, "annotations", f"instances_{split}.json"),
                      "w") as f:
                json.dump(data, f)


def _write_image(path, mode, fmt, color, write, size):
    image = Image.new("RGB", size, color)
    if mode == "P":
        image = image.quantize(4)
    elif mode != "RGB":
        image = image.convert(mode)
    if write == "garbage":
        with open(path, "wb") as f:
            f.write(b"definitely not an image" * 10)
        return
    image.save(path, fmt, quality=95) if fmt == "JPEG" else image.save(path, fmt)
    if write == "truncated":
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])


def build_root(root):
    b = CocoBuilder(str(root))
    counts = {"dog": 6, "cat": 6, "horse": 3, "car": 6, "bus": 4, "chair": 4, "toilet": 1}
    for cls, n in counts.items():
        for k in range(n):
            split = "val2017" if k % 3 == 2 else "train2017"
            b.add(split, [(cls, SMALL)], color=(20 * k, 100, 200 - 10 * k))
    b.special = {
        "gray": b.add("train2017", [("dog", SMALL)], mode="L"),
        "cmyk": b.add("train2017", [("cat", SMALL)], mode="CMYK"),
        "palette": b.add("train2017", [("horse", SMALL)], mode="P", fmt="PNG"),
        "rgba": b.add("train2017", [("car", SMALL)], mode="RGBA", fmt="PNG"),
        "truncated": b.add("train2017", [("dog", SMALL)], write="truncated"),
        "garbage": b.add("val2017", [("chair", SMALL)], write="garbage"),
        "union_ok": b.add("train2017", [("bus", (0, 0, 32, 32)), ("bus", (8, 8, 32, 32))]),
        "half": b.add("train2017", [("car", (0, 0, 32, 48))]),
        "invalid_dropped": b.add("train2017", [("dog", SMALL), ("car", (5, 5, 0, 5))],
                                 boxes=[SMALL]),
        "clipped": b.add("train2017", [("cat", (-4, 40, 20, 20))], boxes=[(0, 40, 16, 8)]),
    }
    b.add("train2017", [("dog", SMALL), ("dog", (30, 20, 10, 10), "crowd")], "crowd")
    b.add("train2017", [("dog", (5, 5, 0, 10))], "invalid box")
    b.add("train2017", [("cat", (70, 5, 10, 10))], "invalid box")
    b.add("train2017", [], "no annotations")
    b.add("val2017", [("dog", SMALL), ("car", (40, 30, 8, 8))], "several categories")
    b.add("train2017", [("horse", (0, 0, 8, 8)), ("horse", (10, 10, 8, 8)),
                        ("horse", (20, 20, 8, 8))], "too many instances")
    b.add("train2017", [("car", (0, 0, 60, 40))], "box too large")
    b.add("train2017", [("bus", (0, 0, 32, 32)), ("bus", (32, 16, 32, 32))], "box too large")
    b.add("train2017", [("dog", SMALL)], "file not found", write="missing")
    b.add("val2017", [("cat", SMALL)], "duplicate image", write="duplicate", image_id=1)
    b.finish()
    return b


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return build_root(root), str(root)


def selected(expected):
    return {f: e for f, e in expected.items() if e[0] is None}


def test_selection_is_exactly_the_papers(coco, capsys):
    builder, root = coco
    ds = DATASETS.get("coco")(root, image_size=32)
    assert capsys.readouterr().out == ""  # pycocotools kept quiet
    want = selected(builder.expected)
    assert sorted(ds.samples.file) == sorted(want)
    reasons = Counter(e[0] for e in builder.expected.values() if e[0] is not None)
    assert ds.selection_stats == {r: reasons.get(r, 0) for r in REASONS}
    assert ds.samples.skipped == [(f, "file not found") for f, e in builder.expected.items()
                                  if e[0] == "file not found"]
    assert sum(ds.selection_stats.values()) + len(ds) == len(builder.expected)


def test_table_fields(coco):
    builder, root = coco
    s = load_coco(root, image_size=32).samples
    assert s.classes == sorted({e[1] for e in selected(builder.expected).values()})
    assert "zebra" not in s.classes
    assert s.class_supercategory == [dict(CATEGORIES)[c] for c in s.classes]
    for i, f in enumerate(s.file):
        _, cls, boxes = builder.expected[f]
        assert s.class_name[i] == cls and s.classes[s.label[i]] == cls
        assert s.supercategory[i] == dict(CATEGORIES)[cls]
        assert int(s.image_id[i]) == int(os.path.basename(f).split(".")[0])
        assert (s.width[i], s.height[i]) == (W, H)
        assert s.boxes.shape[1:] == (MAX_INSTANCES, 4) and s.boxes.dtype == np.float32
        np.testing.assert_allclose(s.boxes[i, :len(boxes)], boxes)
        assert np.isnan(s.boxes[i, len(boxes):]).all()
    assert list(s.image_id) == sorted(s.image_id)


def test_split_is_stratified_seeded_and_75_25(coco):
    _, root = coco
    a, b = load_coco(root, seed=0), load_coco(root, seed=0)
    other = load_coco(root, seed=1)
    np.testing.assert_array_equal(a.samples.split, b.samples.split)
    assert not np.array_equal(a.samples.split, other.samples.split)
    s = a.samples
    assert set(s.split) == {"train", "test"}
    for k, name in enumerate(s.classes):
        n = int((s.label == k).sum())
        n_test = int(((s.label == k) & (s.split == "test")).sum())
        want = 0 if n == 1 else min(max(int(np.floor(n * 0.25 + 0.5)), 1), n - 1)
        assert n_test == want, name
    assert abs((s.split == "test").mean() - 0.25) < 0.1
    assert len(s.indices("test")) + len(s.indices("train")) == len(s)
    # restricting the class list keeps each remaining class's split
    few = load_coco(root, classes=["dog", "car"], seed=0).samples
    for f, split in zip(few.file, few.split):
        assert split == s.split[list(s.file).index(f)]


def test_classes_restrict_and_order(coco):
    builder, root = coco
    ds = load_coco(root, classes=["car", "dog", "zebra"])
    s = ds.samples
    assert s.classes == ["car", "dog"]  # given order; zebra has no selected image
    assert set(s.class_name) == {"car", "dog"}
    assert (np.asarray(s.classes)[s.label] == s.class_name).all()
    others = sum(1 for e in selected(builder.expected).values() if e[1] not in ("car", "dog"))
    assert ds.selection_stats["class not selected"] == others
    assert ds.spec["classes"] == ["car", "dog"]
    with pytest.raises(FeatlabError, match="available: .*bus, car, cat"):
        load_coco(root, classes=["dog", "unicorn"])


def test_min_images_per_class_drops_small_classes(coco):
    _, root = coco
    ds = load_coco(root, min_images_per_class=2)
    assert "toilet" not in ds.samples.classes
    assert ds.selection_stats["class too small"] == 1


def test_subsets(coco):
    _, root = coco
    s = load_coco(root).samples
    sup = dict(zip(s.classes, s.class_supercategory))
    assert s.subsets["all"] == s.classes
    assert s.subsets["similar"] == ["cat", "dog", "horse"]  # animal has the most classes
    dis = s.subsets["dissimilar"]
    assert sorted(sup[c] for c in dis) == sorted(set(s.class_supercategory))
    for seed in range(5):
        small = load_coco(root, subset_size=2, seed=seed).samples.subsets
        assert len(small["similar"]) == 2 and {sup[c] for c in small["similar"]} == {"animal"}
        assert len(small["dissimilar"]) == 2 and len({sup[c] for c in small["dissimilar"]}) == 2
    runs = {tuple(load_coco(root, subset_size=2, seed=k).samples.subsets["dissimilar"])
            for k in range(8)}
    assert len(runs) > 1  # the choice depends on the seed
    two = load_coco(root, classes=["dog", "car"]).samples.subsets
    assert "similar" not in two and two["dissimilar"] == ["dog", "car"]
    assert load_coco(root, classes=["dog"]).samples.subsets == {}


def test_spec_recreates_the_dataset(coco):
    _, root = coco
    ds = load_coco(root, seed=3, image_size=40, test_fraction=0.3)
    again = load_coco(**ds.spec)
    assert ds.spec["root"] == os.path.abspath(root) and json.dumps(ds.spec)
    for column in ("file", "label", "split", "boxes"):
        np.testing.assert_array_equal(getattr(ds.samples, column), getattr(again.samples, column))
    assert again.samples.subsets == ds.samples.subsets and ds.normalization is None


@pytest.mark.parametrize("which", ["gray", "cmyk", "palette", "rgba", "half"])
def test_load_decodes_every_colour_mode(coco, which):
    builder, root = coco
    ds = load_coco(root, image_size=24)
    i = list(ds.samples.file).index(builder.special[which])
    image, boxes = ds.load(i)
    assert image.shape == (3, 24, 24) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    color = np.array([200, 30, 60]) / 255.0
    if which == "gray":
        np.testing.assert_array_equal(image[0], image[1])
        np.testing.assert_array_equal(image[0], image[2])
        color = np.full(3, (200 * 299 + 30 * 587 + 60 * 114) / 1000 / 255.0)
    np.testing.assert_allclose(image.mean(axis=(1, 2)), color, atol=0.03)
    assert boxes.shape == (MAX_INSTANCES, 4) and boxes.dtype == np.float32


def test_boxes_follow_the_resize(coco):
    builder, root = coco
    ds = load_coco(root, image_size=32)
    s = ds.samples
    i = list(s.file).index(builder.special["union_ok"])
    _, boxes = ds.load(i)
    sx, sy = 32 / W, 32 / H
    np.testing.assert_allclose(boxes, [[0, 0, 32 * sx, 32 * sy], [8 * sx, 8 * sy, 40 * sx,
                                                                   40 * sy]], rtol=1e-6)
    j = list(s.file).index(builder.special["half"])
    _, boxes = ds.load(j)
    np.testing.assert_allclose(boxes[0], [0, 0, 16, 32])
    assert np.isnan(boxes[1]).all()


@pytest.mark.parametrize("which", ["truncated", "garbage"])
def test_corrupt_files_fail_at_decode(coco, which):
    builder, root = coco
    ds = load_coco(root)
    i = list(ds.samples.file).index(builder.special[which])
    with pytest.raises(OSError, match=builder.special[which]):
        ds.load(i)


def test_box_content_matches_box_after_draft_decode(tmp_path):
    """A white rectangle in a 640x480 JPEG: after the reduced-scale decode, the resized box
    must cover the bright pixels; and the result must match a full decode + resize."""
    b = CocoBuilder(str(tmp_path))
    key = b.add("val2017", [("dog", (200, 120, 160, 200))], size=(640, 480), color=(0, 0, 0))
    b.finish()
    image = Image.new("RGB", (640, 480))
    ImageDraw.Draw(image).rectangle((200, 120, 359, 319), fill=(255, 255, 255))
    image.save(os.path.join(tmp_path, key), quality=95)
    ds = load_coco(tmp_path, image_size=64)
    decoded, boxes = ds.load(0)
    x0, y0, x1, y1 = boxes[0]
    np.testing.assert_allclose(boxes[0], [20, 16, 36, 42.666668], rtol=1e-5)
    gray = decoded.mean(axis=0)
    assert gray[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1].min() > 0.9
    outside = np.ones_like(gray, dtype=bool)
    outside[int(y0) - 1:int(np.ceil(y1)) + 1, int(x0) - 1:int(np.ceil(x1)) + 1] = False
    assert gray[outside].max() < 0.1
    with Image.open(os.path.join(tmp_path, key)) as full:
        reference = np.asarray(full.convert("RGB").resize((64, 64), Image.BILINEAR),
                               dtype=np.float32).transpose(2, 0, 1) / 255
    assert np.abs(decoded - reference).mean() < 0.01


def test_mis_sized_annotation_fails_at_decode(tmp_path):
    b = CocoBuilder(str(tmp_path))
    b.add("val2017", [("dog", SMALL)], size=(W, H))
    b.json["val2017"]["images"][0]["width"] = 2 * W
    b.finish()
    with pytest.raises(ValueError, match="annotations say 128x48"):
        load_coco(tmp_path).load(0)


def test_errors_for_bad_roots(tmp_path, coco):
    _, root = coco
    with pytest.raises(FeatlabError, match="does not exist"):
        load_coco(tmp_path / "nope")
    with pytest.raises(FeatlabError, match="instances_<split>.json"):
        load_coco(tmp_path)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_x.json").write_text("{not json")
    with pytest.raises(FeatlabError, match="cannot read COCO annotations .*instances_x.json"):
        load_coco(tmp_path)
    with pytest.raises(FeatlabError, match=r"excluded: .*box too large: \d+"):
        load_coco(root, max_box_fraction=0.001)
    with pytest.raises(FeatlabError, match="max_instances must be between 1 and 2"):
        load_coco(root, max_instances=3)
