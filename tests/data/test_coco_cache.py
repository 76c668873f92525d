"""The COCO selection cache (one parse per annotation file, keyed by path, size, mtime and the
selection options; never beside the data) and ``selection="all"`` (no paper filter)."""
import os

import numpy as np
import pytest
from test_coco import CAT_ID, build_root

from featlab.data import coco_rules
from featlab.data.coco import load_coco
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore


@pytest.fixture()
def coco(tmp_path):
    root = tmp_path / "coco"
    return build_root(root), str(root), str(tmp_path / "cache")


def _listing(path):
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, _, fs in os.walk(path) for f in fs)


def _no_parse(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was parsed again")

    monkeypatch.setattr(coco_rules, "read_annotations", refuse)


def _same(a, b):
    for column in ("image_id", "file", "label", "split", "boxes", "width", "height"):
        np.testing.assert_array_equal(getattr(a.samples, column), getattr(b.samples, column))
    assert a.selection_stats == b.selection_stats and a.samples.skipped == b.samples.skipped
    assert a.samples.subsets == b.samples.subsets


def test_second_load_reads_the_cache_and_matches(coco, monkeypatch):
    _, root, cache = coco
    data_before = _listing(root)
    first = load_coco(root, image_size=32, cache_dir=cache)
    assert len(_listing(cache)) == 2  # one entry per annotation file
    assert _listing(root) == data_before  # nothing written beside the data
    _no_parse(monkeypatch)
    _same(first, load_coco(root, image_size=32, cache_dir=cache))
    # class list, split seed and class-size limits are applied after the cache
    few = load_coco(root, classes=["dog", "car"], seed=4, min_images_per_class=2,
                    cache_dir=cache)
    assert few.samples.classes == ["dog", "car"]


def test_uncached_equals_cached(coco):
    _, root, cache = coco
    _same(load_coco(root, cache_dir=False), load_coco(root, cache_dir=cache))
    _same(load_coco(root, cache_dir=False), load_coco(root, cache_dir=cache))


def test_changed_file_or_options_are_parsed_again(coco, monkeypatch):
    _, root, cache = coco
    load_coco(root, cache_dir=cache)
    path = os.path.join(root, "annotations", "instances_val2017.json")
    stamp = os.stat(path).st_mtime_ns + 10 ** 9
    os.utime(path, ns=(stamp, stamp))
    parsed = []
    real = coco_rules.read_annotations
    monkeypatch.setattr(coco_rules, "read_annotations",
                        lambda p: parsed.append(os.path.basename(p)) or real(p))
    load_coco(root, cache_dir=cache)
    assert parsed == ["instances_val2017.json"]
    load_coco(root, cache_dir=cache, max_instances=1)
    assert parsed[1:] == ["instances_train2017.json", "instances_val2017.json"]


def test_missing_files_are_checked_live_not_cached(coco):
    builder, root, cache = coco
    first = load_coco(root, cache_dir=cache)
    victim = str(first.samples.file[0])
    os.rename(os.path.join(root, victim), os.path.join(root, victim + ".away"))
    second = load_coco(root, cache_dir=cache)
    assert victim not in set(second.samples.file) and (victim, "file not found") in \
        second.samples.skipped
    assert second.selection_stats["file not found"] == first.selection_stats["file not found"] + 1


def test_unwritable_cache_costs_a_parse_only(coco, tmp_path, caplog):
    _, root, _ = coco
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    ds = load_coco(root, cache_dir=str(blocker))
    assert len(ds) > 10 and "could not cache" in caplog.text


def test_selection_all_keeps_every_image_with_a_box(coco):
    builder, root, cache = coco
    ds = load_coco(root, selection="all", image_size=32, cache_dir=cache)
    s, stats = ds.samples, ds.selection_stats
    expected = {f for f, (reason, _, _) in builder.expected.items()
                if reason not in ("no annotations", "invalid box", "file not found",
                                  "duplicate image")}
    assert set(s.file) == expected
    assert stats["no annotations"] == 1 and stats["invalid box"] == 2
    assert stats["crowd"] == stats["several categories"] == stats["box too large"] == 0
    assert ds.spec["selection"] == "all" and s.boxes.shape[1] == 3  # the horse image
    row = {f: i for i, f in enumerate(s.file)}
    several = [f for f, e in builder.expected.items() if e[0] == "several categories"][0]
    i = row[several]  # dog 16x12 beats car 8x8; both boxes kept, largest first
    assert s.class_name[i] == "dog"
    np.testing.assert_allclose(s.boxes[i, :2], [[8, 8, 16, 12], [40, 30, 8, 8]])
    many = [f for f, e in builder.expected.items() if e[0] == "too many instances"][0]
    assert np.isfinite(s.boxes[row[many], :, 0]).sum() == 3
    crowd = [f for f, e in builder.expected.items() if e[0] == "crowd"][0]
    assert np.isfinite(s.boxes[row[crowd], :, 0]).sum() == 2  # the crowd box is an object too
    assert set(s.classes) <= set(CAT_ID)


def test_selection_all_max_boxes_keeps_the_largest(coco, caplog):
    builder, root, cache = coco
    s = load_coco(root, selection="all", max_boxes=2, cache_dir=cache).samples
    many = [f for f, e in builder.expected.items() if e[0] == "too many instances"][0]
    assert s.boxes.shape[1] == 2 and "boxes beyond max_boxes=2" in caplog.text
    assert np.isfinite(s.boxes[list(s.file).index(many), :, 0]).all()


def test_selection_all_extracts_with_object_regions(coco, tiny_weights, tmp_path):
    _, root, cache = coco
    store = tmp_path / "store"
    extract(ExtractionSpec(store=str(store), root=root, dataset="coco",
                           backbones=("synthetic-object", "synthetic-scene"),
                           conditions="clean,blur:sigma=2:region=object", device="cpu",
                           image_size=32, chunk_size=16, weights=tiny_weights,
                           layers="penultimate",
                           dataset_options=dict(selection="all", cache_dir=cache)))
    fs = FeatureStore(str(store))
    assert fs.samples.boxes.shape[1] == 3
    valid = fs.valid("clean")
    x = fs.read(backbone="synthetic-object", layer="penultimate")
    assert np.isfinite(x[valid]).all() and (~valid).sum() == 2  # truncated + garbage files


def test_the_synthetic_loader_keeps_its_selection_in_the_named_cache(tmp_path, monkeypatch):
    from featlab.data import open_dataset
    from featlab.data.synthetic import generate_synthetic

    root = str(tmp_path / "data")
    generate_synthetic(root, seed=0, n_images=24, image_size=16, n_supercategories=2,
                       classes_per_supercategory=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEATLAB_CACHE", raising=False)
    open_dataset("synthetic", root, dict(image_size=16), cache_dir=str(tmp_path / "mine"))
    assert len(os.listdir(tmp_path / "mine" / "coco-selection")) == 2
    assert not (tmp_path / "cache").exists()
