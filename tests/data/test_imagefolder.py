"""--dataset imagefolder: torchvision's ImageFolder layout, row order and labels as torchvision
gives them, no boxes (region=object/background refused in one line), extraction end to end."""
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from torchvision.datasets import ImageFolder

from conftest import one_error_line
from featlab.cli.main import cli
from featlab.data import DATASETS
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder") / "images"
    rng = np.random.default_rng(0)
    for k, (cls, n) in enumerate((("zebra", 5), ("apple", 6), ("Mug", 4))):
        os.makedirs(root / cls / "nested")
        for i in range(n):
            size = (40 + 7 * i, 30 + 5 * k)
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            ext, sub = ("png", "nested/") if i == 0 else ("jpg", "")
            Image.fromarray(pixels).save(root / cls / f"{sub}{i:03d}.{ext}")
        (root / cls / "notes.txt").write_text("not an image")
    return str(root)


def test_rows_and_labels_are_torchvisions(folder):
    ds = DATASETS.get("imagefolder")(folder, image_size=24, seed=1)
    reference = ImageFolder(folder)
    s = ds.samples
    assert s.classes == reference.classes == ["Mug", "apple", "zebra"]
    assert [os.path.join(folder, f) for f in s.file] == [p for p, _ in reference.samples]
    assert list(s.label) == list(reference.targets)
    assert list(s.class_name) == [reference.classes[t] for t in reference.targets]
    assert np.isnan(s.boxes).all() and s.boxes.shape == (15, 2, 4)
    assert s.subsets == {"all": ["Mug", "apple", "zebra"]}
    for k in range(3):  # stratified 75/25 with at least one test image per class
        rows = s.label == k
        assert 1 <= (s.split[rows] == "test").sum() < rows.sum()
    image, boxes = ds.load(3)
    assert image.shape == (3, 24, 24) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1 and np.isnan(boxes).all()
    again = DATASETS.get("imagefolder")(**ds.spec)
    np.testing.assert_array_equal(again.samples.split, s.split)


def test_classes_restrict_and_order(folder):
    s = DATASETS.get("imagefolder")(folder, classes=["zebra", "apple"]).samples
    assert s.classes == ["zebra", "apple"] and set(s.class_name) == {"zebra", "apple"}
    assert len(s) == 11


@pytest.mark.parametrize("name,match", [("missing", "does not exist"),
                                        ("none", "no class folders"),
                                        ("empty", "at least one image")])
def test_bad_roots_are_one_line(tmp_path, name, match):
    (tmp_path / "none").mkdir()
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(FeatlabError, match=match) as err:
        DATASETS.get("imagefolder")(str(tmp_path / name))
    assert "\n" not in str(err.value)


def test_unknown_class_lists_the_folders(folder):
    with pytest.raises(FeatlabError, match="available: Mug, apple, zebra"):
        DATASETS.get("imagefolder")(folder, classes=["unicorn"])


def _args(folder, store, weights, conditions):
    return ["extract", "--dataset", "imagefolder", "--root", folder, "--store", str(store),
            "--conditions", conditions, "--device", "cpu", "--image-size", "32",
            "--chunk-size", "8", "--batch-size", "8", "--layers", "penultimate,logits",
            "--backbones", "synthetic-object,synthetic-scene",
            "--weights", f"synthetic-object={weights['synthetic-object']}",
            "--weights", f"synthetic-scene={weights['synthetic-scene']}"]


def test_extraction_end_to_end_and_object_regions_refused(folder, tiny_weights, tmp_path):
    store = tmp_path / "store"
    for region in ("object", "background"):
        result = CliRunner().invoke(cli, _args(folder, store, tiny_weights,
                                               f"clean,blur:sigma=2:region={region}"))
        assert result.exit_code == 2, result.output
        line = one_error_line(result.output)
        assert "needs object boxes" in line and "region=all" in line
        assert not store.exists()
    result = CliRunner().invoke(cli, _args(folder, store, tiny_weights,
                                           "clean,blur:sigma=2:region=all"))
    assert result.exit_code == 0, result.output
    fs = FeatureStore(str(store))
    x = fs.read(backbone="synthetic-object", layer="penultimate")
    blurred = fs.read(backbone="synthetic-object", layer="penultimate",
                      condition="blur:sigma=2:region=all")
    assert x.shape == (15, 512) and np.isfinite(x).all() and not np.allclose(x, blurred)
    assert fs.layers("synthetic-scene") == ["penultimate", "logits"]
    assert fs.manifest["dataset"]["name"] == "imagefolder"
    summary = extract(ExtractionSpec(store=str(store), root=folder, dataset="imagefolder",
                                     conditions="clean", device="cpu", image_size=32,
                                     chunk_size=8, layers="penultimate,logits",
                                     weights=tiny_weights))
    assert summary["conditions"]["clean"]["computed"] == 0


def _png(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def test_links_and_hidden_folders_give_each_file_once(tmp_path, caplog):
    """A folder link back into the tree (a loop), a class folder that is a link, a file link
    to an image of another class and hidden folders/files: 18 images are 18 samples, each
    labelled by the folder the file lies in; the plain files are torchvision's rows."""
    root = tmp_path / "tree"
    for k, cls in enumerate("abc"):
        for i in range(6):
            _png(str(root / cls / f"{i}.png"), 40 * k + i)
    plain = [p for p, _ in ImageFolder(str(root)).samples]
    os.symlink("..", root / "a" / "loop")
    assert len(ImageFolder(str(root))) == 738  # torchvision follows the loop 40 deep
    os.symlink("a", root / "d")
    os.symlink(os.path.join("..", "a", "0.png"), root / "b" / "0a.png")
    _png(str(root / ".hidden" / "x.png"), 1)
    _png(str(root / "c" / ".cache" / "y.png"), 2)
    _png(str(root / "c" / "._z.png"), 3)
    s = DATASETS.get("imagefolder")(str(root), seed=0).samples
    assert len(s) == 18 and s.classes == ["a", "b", "c"]
    assert [os.path.join(str(root), f) for f in s.file] == plain
    assert list(s.class_name) == [f[0] for f in s.file]
    assert len({os.path.realpath(os.path.join(str(root), f)) for f in s.file}) == 18
    assert "3 folder link(s) not followed" not in caplog.text
    assert "2 folder link(s) not followed" in caplog.text and "a/loop" in caplog.text
    assert "1 file link(s) lead to images already in the tree" in caplog.text


def test_file_links_out_of_the_tree_are_images(tmp_path):
    """Images kept elsewhere and linked file by file are samples (a file link cannot loop);
    a tree of only folder links has no classes (one line)."""
    for i in range(3):
        _png(str(tmp_path / "elsewhere" / f"{i}.png"), i)
    for cls in ("x", "y"):
        os.makedirs(tmp_path / "tree" / cls)
        for i in range(3):
            os.symlink(tmp_path / "elsewhere" / f"{i}.png", tmp_path / "tree" / cls / f"{i}.png")
    s = DATASETS.get("imagefolder")(str(tmp_path / "tree")).samples
    assert len(s) == 3 and list(s.class_name) == ["x"] * 3  # each file once, first folder
    os.makedirs(tmp_path / "links")
    os.symlink(tmp_path / "tree" / "x", tmp_path / "links" / "x")
    with pytest.raises(FeatlabError, match="no class folders.*folder links are not followed"):
        DATASETS.get("imagefolder")(str(tmp_path / "links"))
