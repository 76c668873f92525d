"""The store end to end: extraction streams into a self-describing, crash-safe HDF5 store."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore, StoreWriter
from featlab.store.layout import MANIFEST

CONDITIONS = "clean,blur:sigma=2:region=object,blur:sigma=4:region=all"


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(str(root), seed=3, n_images=48, image_size=32)
    return str(root)


def _spec(root, store, weights, **kw):
    options = dict(store=str(store), root=root, dataset="synthetic", conditions=CONDITIONS,
                   device="cpu", batch_size=8, chunk_size=8, image_size=32, weights=weights)
    options.update(kw)
    return ExtractionSpec(**options)


@pytest.fixture(scope="module")
def store_path(synthetic_root, tiny_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("stores") / "reference"
    extract(_spec(synthetic_root, path, tiny_weights))
    return str(path)


def _all_arrays(path):
    out = {}
    with h5py.File(os.path.join(path, "store.h5"), "r") as index:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.startswith("conditions/"):
                out[name] = obj[()]
        index.visititems(visit)
    return out


def _part_bytes(path):
    """File bytes of every part and checksum record (what must not depend on the run)."""
    out = {}
    for folder, _, names in os.walk(os.path.join(path, "conditions")):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                out[os.path.relpath(os.path.join(folder, name), path)] = handle.read()
    return out


def test_store_is_self_describing_and_plain_h5py_readable(store_path):
    store = FeatureStore(store_path)
    n = len(store.samples)
    assert set(store.backbones) == {"synthetic-object", "synthetic-scene"}
    assert len(store.conditions) == 3
    layers = store.layers("synthetic-object")
    assert len([name for name in layers if name not in ("penultimate", "logits")]) == 20
    x = store.read(backbone="synthetic-scene", layer="penultimate", condition="blur:sigma=2")
    assert x.shape == (n, 512) and x.dtype == np.float32 and np.isfinite(x).all()
    train = store.read(backbone="synthetic-object", layer="layer3.1.bn2", split="train")
    assert train.shape == ((store.samples.split == "train").sum(), 256)
    with h5py.File(os.path.join(store_path, "store.h5"), "r") as f:
        assert f.attrs["schema_version"] == 1
        manifest = json.loads(f.attrs["manifest"])
        assert len(manifest["backbones"]["synthetic-object"]["weights_sha256"]) == 64
        assert f["samples/class_name"].shape == (n,)
        assert f["samples/boxes"].shape == (n, 2, 4)
        block = f["conditions/clean/synthetic-object/penultimate"]
        assert block.is_virtual and block.chunks is None
        info = json.loads(f["conditions/blur:sigma=2:region=object"].attrs["info"])
        assert info["params"] == {"sigma": 2.0, "region": "object"}
    # blur really changed the features, clean vs clean would not
    clean = store.read(backbone="synthetic-object", layer="penultimate")
    assert not np.allclose(clean, store.read(backbone="synthetic-object", layer="penultimate",
                                             condition="blur:sigma=4:region=all"))


def test_same_inputs_same_bytes(store_path, synthetic_root, tiny_weights, tmp_path):
    extract(_spec(synthetic_root, tmp_path / "again", tiny_weights))
    first, second = _all_arrays(store_path), _all_arrays(str(tmp_path / "again"))
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name
    assert _part_bytes(store_path) == _part_bytes(str(tmp_path / "again"))  # files, not values


def test_complete_run_repeated_is_a_noop(store_path, synthetic_root, tiny_weights):
    before = {p: os.stat(os.path.join(d, p)).st_mtime_ns for d, _, ps in
              os.walk(os.path.join(store_path, "conditions")) for p in ps}
    summary = extract(_spec(synthetic_root, store_path, tiny_weights))
    assert all(v["computed"] == 0 for v in summary["conditions"].values())
    after = {p: os.stat(os.path.join(d, p)).st_mtime_ns for d, _, ps in
             os.walk(os.path.join(store_path, "conditions")) for p in ps}
    assert before == after


def test_sigkill_midway_then_rerun_equals_uninterrupted(store_path, synthetic_root,
                                                        tiny_weights, tmp_path):
    target = tmp_path / "killed"
    cmd = [sys.executable, "-m", "featlab", "-q", "extract", "--dataset", "synthetic",
           "--root", synthetic_root, "--store", str(target), "--conditions", CONDITIONS,
           "--device", "cpu", "--batch-size", "8", "--chunk-size", "8", "--image-size", "32",
           "--weights", f"synthetic-object={tiny_weights['synthetic-object']}",
           "--weights", f"synthetic-scene={tiny_weights['synthetic-scene']}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    n_parts = 0
    while time.time() < deadline and proc.poll() is None:
        n_parts = sum(f.startswith("part-") for _, _, fs in os.walk(target) for f in fs)
        if n_parts >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    total = 3 * 6  # conditions x chunks of 8 rows over 48 images
    assert 3 <= n_parts < total
    summary = extract(_spec(synthetic_root, target, tiny_weights))
    assert 0 < sum(v["computed"] for v in summary["conditions"].values()) < total
    reference, resumed = _all_arrays(store_path), _all_arrays(str(target))
    assert reference.keys() == resumed.keys()
    for name in reference:
        assert reference[name].tobytes() == resumed[name].tobytes(), name
    expected, got = _part_bytes(store_path), _part_bytes(str(target))
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


def test_missing_keys_name_the_existing_ones(store_path):
    store = FeatureStore(store_path)
    with pytest.raises(FeatlabError, match=r"stored: blur:sigma=2:region=object, blur:sigma=4:region=all, clean"):
        store.read(backbone="synthetic-object", layer="penultimate", condition="blur:sigma=9")
    with pytest.raises(FeatlabError, match="stored: synthetic-object, synthetic-scene"):
        store.read(backbone="imagenet-resnet18", layer="penultimate")
    with pytest.raises(FeatlabError, match="stored: bn1, layer1.0.bn1"):
        store.read(backbone="synthetic-object", layer="fc7")
    with pytest.raises(FeatlabError, match="no feature store"):
        FeatureStore(os.path.join(store_path, "nope"))


def test_newer_schema_is_refused(store_path, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store_path, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["schema_version"] = 99
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FeatlabError, match="schema version 99, newer"):
        FeatureStore(str(copy))


def test_second_writer_is_refused_and_first_keeps_working(store_path, synthetic_root,
                                                          tiny_weights):
    store = FeatureStore(store_path)
    first = StoreWriter(store_path, samples=store.samples, backbones=store.manifest["backbones"],
                        dataset_spec={})
    try:
        with pytest.raises(FeatlabError, match="being written by another featlab process"):
            extract(_spec(synthetic_root, store_path, tiny_weights))
    finally:
        first.close()
    assert FeatureStore(store_path).read(backbone="synthetic-object", layer="logits").shape[1] == 6


def test_other_backbones_or_samples_are_refused(store_path, synthetic_root, tiny_weights):
    with pytest.raises(FeatlabError, match="holds another sample table"):
        extract(_spec(synthetic_root, store_path, tiny_weights, limit=20))
    swapped = {"synthetic-object": tiny_weights["synthetic-scene"],
               "synthetic-scene": tiny_weights["synthetic-object"]}
    with pytest.raises(FeatlabError, match="other synthetic-object weights"):
        extract(_spec(synthetic_root, store_path, swapped))


def test_undecodable_image_is_recorded_and_the_run_completes(synthetic_root, tiny_weights,
                                                             tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(synthetic_root, root)
    store_dir = tmp_path / "s"
    from featlab.data import DATASETS

    victim = DATASETS.get("synthetic")(str(root), image_size=32, seed=0).samples.file[5]
    (root / victim).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    summary = extract(_spec(str(root), store_dir, tiny_weights, conditions="clean"))
    assert list(summary["decode_failures"]) == [victim]
    store = FeatureStore(str(store_dir))
    valid = store.valid("clean")
    assert valid.sum() == len(valid) - 1 and not valid[5]
    x = store.read(backbone="synthetic-object", layer="penultimate")
    assert np.isnan(x[5]).all() and np.isfinite(x[valid]).all()
