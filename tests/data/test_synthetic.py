"""Tests of the synthetic context-scene benchmark (featlab/data/synthetic.py)."""
import contextlib
import filecmp
import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from featlab.data import DATASETS
from featlab.data import synthetic_draw as draw
from featlab.data.synthetic import SUPERCATEGORIES, generate_synthetic, object_types
from featlab.data.synthetic_pretraining import object_pretraining_set, scene_pretraining_set
from featlab.errors import FeatlabError

SMALL = dict(n_images=48, image_size=48, n_supercategories=3, classes_per_supercategory=2)


def _coco(root, split):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(os.path.join(root, "annotations", f"instances_{split}.json"))


def _read(root):
    """images (n, H, W, 3) uint8, their annotation lists and image entries, train then val."""
    images, anns, entries = [], [], []
    for split in ("train", "val"):
        with open(os.path.join(root, "annotations", f"instances_{split}.json")) as f:
            doc = json.load(f)
        by_image = {}
        for a in doc["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for e in doc["images"]:
            images.append(np.asarray(Image.open(os.path.join(root, split, e["file_name"]))))
            anns.append(by_image.get(e["id"], []))
            entries.append(e)
    return np.stack(images), anns, entries, doc["categories"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("small"))
    return root, generate_synthetic(root, seed=3, **SMALL)


def test_pycocotools_loads_and_layout(small):
    root, summary = small
    n_files = 0
    for split in ("train", "val"):
        coco = _coco(root, split)
        assert set(coco.dataset) >= {"info", "licenses", "images", "annotations", "categories"}
        for image in coco.dataset["images"]:
            with Image.open(os.path.join(root, split, image["file_name"])) as im:
                assert im.format == "JPEG" and im.size == (48, 48) and im.mode == "RGB"
            n_files += 1
        cats = coco.loadCats(coco.getCatIds())
        assert [c["name"] for c in cats] == ["fox", "deer", "car", "bus", "chair", "sofa"]
        assert [c["supercategory"] for c in cats] == ["animal"] * 2 + ["vehicle"] * 2 + \
            ["furniture"] * 2
    assert n_files == summary["n_train"] + summary["n_val"] == 48
    assert summary["n_val"] == 12  # 2 of the 8 images of each class
    assert not [f for f in os.listdir(os.path.join(root, "annotations")) if "tmp" in f]


def test_instances_boxes_and_segmentation(small):
    root, summary = small
    images, anns, _, _ = _read(root)
    n_inst = [len(a) for a in anns]
    assert set(n_inst) == {1, 2} and sum(n_inst) == summary["n_annotations"]
    for a in anns:
        assert len({x["category_id"] for x in a}) == 1
        boxes = [x["bbox"] for x in a]
        for (x, y, w, h), ann in zip(boxes, a):
            assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 48
            assert w * h >= 0.08 * 48 * 48 and ann["area"] == w * h and ann["iscrowd"] == 0
            assert ann["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
        mask = np.zeros((48, 48), bool)
        for x, y, w, h in boxes:
            mask[int(y):int(y + h), int(x):int(x + w)] = True
        assert mask.mean() <= 0.5


def test_registered_loader_reads_it(small):
    root, _ = small
    ds = DATASETS.get("synthetic")(root, image_size=32)
    assert ds.name == "synthetic" and len(ds) == 48 and ds.samples.classes[0] == "bus"
    assert sum(ds.selection_stats.values()) == 0
    image, boxes = ds.load(0)
    assert image.shape == (3, 32, 32)
    with pytest.raises(FeatlabError, match="generate_synthetic"):
        DATASETS.get("synthetic")(os.path.join(root, "missing"))


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    root, summary = small
    again = generate_synthetic(tmp_path / "a", seed=3, **SMALL)
    assert {k: v for k, v in again.items() if k != "out_dir"} == \
        {k: v for k, v in summary.items() if k != "out_dir"}
    for sub in ("annotations", "train", "val"):
        names = sorted(os.listdir(os.path.join(root, sub)))
        match, mismatch, errors = filecmp.cmpfiles(os.path.join(root, sub),
                                                   tmp_path / "a" / sub, names, shallow=False)
        assert match == names and not mismatch and not errors
    generate_synthetic(tmp_path / "b", seed=4, **SMALL)
    a, b = _read(root)[0], _read(tmp_path / "b")[0]
    assert np.abs(a.astype(int) - b).mean() > 20
    assert not filecmp.cmp(os.path.join(root, "annotations", "instances_train.json"),
                           tmp_path / "b" / "annotations" / "instances_train.json", shallow=False)


def test_bad_parameters_are_user_errors(tmp_path):
    for bad in (dict(context_consistency=1.5), dict(n_supercategories=7), dict(n_images=3),
                dict(seed=-1), dict(image_size="64"), dict(val_fraction=1.0)):
        with pytest.raises(FeatlabError):
            generate_synthetic(tmp_path, **bad)


def _scenes_and_supers(root):
    _, anns, entries, cats = _read(root)
    sup_of = {c["id"]: c["supercategory"] for c in cats}
    scene_of = {s: draw.SCENES[i] for i, (s, _) in enumerate(SUPERCATEGORIES)}
    return (np.array([e["scene"] for e in entries]),
            np.array([scene_of[sup_of[a[0]["category_id"]]] for a in anns]))


@pytest.fixture(scope="module")
def context_sets(tmp_path_factory):
    """Two 160-image, 4-supercategory datasets of 32-px images: consistency 1 and 0."""
    kw = dict(seed=0, n_images=160, image_size=32, n_supercategories=4,
              classes_per_supercategory=2)
    roots = {p: str(tmp_path_factory.mktemp(f"c{p}")) for p in (1.0, 0.0)}
    for p, root in roots.items():
        generate_synthetic(root, context_consistency=p, **kw)
    return roots


def test_context_consistency_controls_the_scene(context_sets):
    scene, expected = _scenes_and_supers(context_sets[1.0])
    assert (scene == expected).all()
    scene, expected = _scenes_and_supers(context_sets[0.0])
    counts = np.unique(scene, return_counts=True)[1]
    assert len(counts) == 4 and counts.min() >= 20  # 40 expected each, uniform
    assert 0.1 < (scene == expected).mean() < 0.45  # 0.25 expected


def _outside_box_histograms(root):
    images, anns, _, cats = _read(root)
    sup_of = {c["id"]: c["supercategory"] for c in cats}
    feats = []
    for image, a in zip(images, anns):
        keep = np.ones(image.shape[:2], bool)
        for x, y, w, h in (x["bbox"] for x in a):
            keep[int(y):int(y + h), int(x):int(x + w)] = False
        q = image[keep] // 64  # 4 levels per channel
        feats.append(np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64) / len(q))
    return np.array(feats), np.array([sup_of[a[0]["category_id"]] for a in anns])


def test_background_predicts_supercategory_only_when_consistent(context_sets):
    accuracy = {}
    for p, root in context_sets.items():
        X, y = _outside_box_histograms(root)
        accuracy[p] = cross_val_score(LogisticRegression(C=10, max_iter=3000), X, y, cv=4).mean()
    assert accuracy[1.0] > 0.9
    assert accuracy[0.0] < 0.45  # chance is 0.25


def _centre_spectra(images, anns, sigma):
    """Log power spectrum of a 12x12 grey window at the first box's centre, after blurring
    the boxes with ``sigma`` (0: clean)."""
    feats, window = [], np.outer(np.hanning(12), np.hanning(12))
    for image, a in zip(images.astype(np.float64) / 255, anns):
        if sigma:
            blurred = gaussian_filter(image, (sigma, sigma, 0))
            for x, y, w, h in (x["bbox"] for x in a):
                sl = np.s_[int(y):int(y + h), int(x):int(x + w)]
                image[sl] = blurred[sl]
        x, y, w, h = a[0]["bbox"]
        cy, cx = int(y + h / 2), int(x + w / 2)
        patch = image[cy - 6:cy + 6, cx - 6:cx + 6].mean(-1)
        spectrum = np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
        feats.append(np.log1p(1e3 * spectrum).ravel())
    return np.array(feats)


def test_blurring_the_box_removes_the_class_detail(tmp_path):
    """Within one supercategory (same shape, texture decides the class), a classifier of
    texture spectra is good on clean objects and near chance once the box is blurred."""
    generate_synthetic(tmp_path, seed=1, n_images=160, image_size=64, n_supercategories=1,
                       classes_per_supercategory=4)
    images, anns, entries, _ = _read(tmp_path)
    y = np.array([a[0]["category_id"] for a in anns])
    train = np.arange(len(y)) < 120  # _read lists train images first
    clf = LogisticRegression(C=1, max_iter=3000).fit(_centre_spectra(images, anns, 0)[train],
                                                     y[train])
    clean = clf.score(_centre_spectra(images, anns, 0)[~train], y[~train])
    blurred = clf.score(_centre_spectra(images, anns, 4)[~train], y[~train])
    assert clean > 0.7 and blurred < clean - 0.3


@pytest.mark.parametrize("make, n_types", [(object_pretraining_set, len(object_types())),
                                           (scene_pretraining_set, len(draw.SCENES))])
def test_pretraining_sets(make, n_types):
    images, labels, names = make(100, seed=2, image_size=32)
    assert images.shape == (100, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (100,) and labels.dtype == np.int64 and len(names) == n_types
    counts = np.bincount(labels, minlength=n_types)
    assert counts.max() - counts.min() <= 1
    again = make(100, seed=2, image_size=32)
    assert np.array_equal(images, again[0]) and np.array_equal(labels, again[1])
    assert np.abs(images.astype(int) - make(100, seed=5, image_size=32)[0]).mean() > 20
    assert images.std() > 20  # not blank


def test_pretraining_types_cover_the_dataset_and_more():
    names = [name for name, _, _ in object_types()]
    dataset_classes = [c for _, classes in SUPERCATEGORIES for c in classes]
    assert set(dataset_classes) < set(names) and len(set(names)) == len(names)
    assert len(names) - len(dataset_classes) >= len(dataset_classes)
    assert len(draw.SCENES) > len(SUPERCATEGORIES)
