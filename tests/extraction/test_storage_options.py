"""What a run stores: --layers (globs, probes included), --dtype float16 (reads float32; heads
and PCA shifts agree with float32 within their intervals), the disk estimate and refusal,
--precision / --channels-last, and resuming only with the options a store was made with."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from featlab.analyses.heads.run import fit_head
from featlab.analyses.shift.run import pca_shift
from conftest import one_error_line
from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.extraction import storage
from featlab.extraction.precision import precision_mode
from featlab.store import FeatureStore

CONDITIONS = "clean,blur:sigma=2:region=object"
PROBE = "isotropy:radius=8:copies=4:samples=3:threshold=0"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    path = tmp_path_factory.mktemp("storage") / "data"
    generate_synthetic(str(path), seed=5, n_images=96, image_size=32, n_supercategories=2,
                       classes_per_supercategory=2)
    return str(path)


def _spec(root, store, weights, **kw):
    options = dict(store=str(store), root=root, dataset="synthetic", conditions=CONDITIONS,
                   device="cpu", batch_size=16, chunk_size=16, image_size=32, weights=weights,
                   dataset_options=dict(cache_dir=os.path.join(os.path.dirname(root), "c")))
    options.update(kw)
    return ExtractionSpec(**options)


@pytest.fixture(scope="module")
def stores(root, tiny_weights, tmp_path_factory):
    """float32 and float16 stores of the same run."""
    base = tmp_path_factory.mktemp("stores")
    out = {}
    for dtype in ("float32", "float16"):
        out[dtype] = str(base / dtype)
        out[dtype + "-summary"] = extract(_spec(root, out[dtype], tiny_weights, dtype=dtype))
    return out


def test_float16_parts_read_as_float32_equal_to_rounded_float32(stores):
    full, half = FeatureStore(stores["float32"]), FeatureStore(stores["float16"])
    assert half.manifest["storage"]["dtype"] == "float16"
    assert full.manifest["storage"]["dtype"] == "float32"
    for layer in ("layer1.0.bn1", "penultimate", "logits"):
        for cond in ("clean", "blur:sigma=2"):
            a = full.read(backbone="synthetic-scene", layer=layer, condition=cond)
            b = half.read(backbone="synthetic-scene", layer=layer, condition=cond)
            assert b.dtype == np.float32
            np.testing.assert_array_equal(b, a.astype(np.float16).astype(np.float32))
    part = next(p for d, _, fs in os.walk(os.path.join(stores["float16"], "conditions"))
                for p in (os.path.join(d, f) for f in fs) if p.endswith("000000016.h5"))
    with h5py.File(part, "r") as handle:
        assert handle["synthetic-object/penultimate"].dtype == np.float16
        assert handle["valid"].dtype == bool
    with h5py.File(os.path.join(stores["float16"], "store.h5"), "r") as index:
        assert index["conditions/clean/synthetic-object/penultimate"].dtype == np.float32
    sizes = {k: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
                    os.walk(os.path.join(stores[k], "conditions")) for f in fs)
             for k in ("float32", "float16")}
    assert sizes["float16"] < 0.65 * sizes["float32"]


def test_heads_and_pca_shifts_agree_with_float32_within_their_intervals(stores, tmp_path):
    results = {}
    for dtype in ("float32", "float16"):
        copy = tmp_path / dtype
        shutil.copytree(stores[dtype], copy)
        store = FeatureStore(str(copy))
        heads = fit_head(store, alphas=(0.0, 10.0), subset="all")
        shift = pca_shift(store, condition="blur:sigma=2", permutations=199)
        results[dtype] = heads["rows"], shift["backbones"]
    rows32, shift32 = results["float32"]
    rows16, shift16 = results["float16"]
    assert len(rows32) == len(rows16) >= 8
    for a, b in zip(rows32, rows16):
        assert (a["condition"], a["head"], a.get("alpha")) == (b["condition"], b["head"],
                                                                b.get("alpha"))
        assert a["ci_low"] <= b["accuracy"] <= a["ci_high"], (a, b)
    for name, a in shift32.items():
        b = shift16[name]
        shifts = np.asarray(a["centroid_shift"], dtype=float)
        shifts = shifts[np.isfinite(shifts)]
        half = 1.96 * shifts.std(ddof=1) / np.sqrt(len(shifts))
        assert abs(b["centroid_shift_mean"] - a["centroid_shift_mean"]) <= half
        norm = a["displacement_norm"]
        half = 1.96 * norm["std"] / np.sqrt(a["n"])
        assert abs(b["displacement_norm"]["mean"] - norm["mean"]) <= half
        assert abs(b["outside_fraction"] - a["outside_fraction"]) < 0.01
        assert (a["p_value"] < 0.05) == (b["p_value"] < 0.05)


def test_layer_globs_store_only_matching_layers(root, tiny_weights, stores, tmp_path):
    path = tmp_path / "some"
    extract(_spec(root, path, tiny_weights, layers="penultimate,layer4.*"))
    store = FeatureStore(str(path))
    for backbone in store.backbones:
        layers = store.layers(backbone)
        assert layers[-1] == "penultimate" and "logits" not in layers
        assert set(layers[:-1]) == {"layer4.0.bn1", "layer4.0.bn2", "layer4.0.downsample.1",
                                    "layer4.1.bn1", "layer4.1.bn2"}
    full = FeatureStore(stores["float32"])
    for layer in ("penultimate", "layer4.1.bn2"):
        np.testing.assert_array_equal(
            store.read(backbone="synthetic-object", layer=layer, condition="blur:sigma=2"),
            full.read(backbone="synthetic-object", layer=layer, condition="blur:sigma=2"))
    with pytest.raises(FeatlabError, match="not stored for synthetic-object"):
        store.read(backbone="synthetic-object", layer="bn1")
    with pytest.raises(FeatlabError, match="holds layers penultimate,layer4.* of"):
        extract(_spec(root, path, tiny_weights, layers="penultimate"))


def test_unknown_layer_pattern_is_one_line_listing_the_layers(root, tiny_weights, tmp_path):
    with pytest.raises(FeatlabError) as err:
        extract(_spec(root, tmp_path / "x", tiny_weights, layers="penultimate,layer9.*"))
    message = str(err.value)
    assert "\n" not in message and "'layer9.*' matches no layer" in message
    assert "bn1, layer1.0.bn1" in message and "penultimate, logits" in message
    assert not (tmp_path / "x").exists()
    w = tiny_weights
    result = CliRunner().invoke(cli, [
        "extract", "--dataset", "synthetic", "--root", root, "--store", str(tmp_path / "y"),
        "--device", "cpu", "--image-size", "32", "--layers", "fc7",
        "--weights", f"synthetic-object={w['synthetic-object']}",
        "--weights", f"synthetic-scene={w['synthetic-scene']}"])
    assert result.exit_code == 2 and "fc7" in one_error_line(result.output)


def test_probe_conditions_store_only_selected_layers(root, tiny_weights, tmp_path):
    path = tmp_path / "probe"
    extract(_spec(root, path, tiny_weights, conditions="clean", layers="layer3.*,penultimate"))
    fit_head(FeatureStore(str(path)), alphas=(0.0,), subset="all")
    shutil.copytree(path, tmp_path / "without")
    extract(_spec(root, path, tiny_weights, conditions=PROBE, layers="layer3.*,penultimate"))
    store = FeatureStore(str(path))
    key = store.conditions[[c.startswith("isotropy") for c in store.conditions].index(True)]
    rows = np.flatnonzero(store.read_array("probed", key))
    assert len(rows) == 3
    feats = store.read_array("synthetic-scene/layer3.1.bn2", key)
    assert feats.shape[1:] == (4, 256) and np.isfinite(feats[rows]).all()
    assert np.isfinite(store.read_array("scores/fg-all", key)[rows]).all()
    with h5py.File(store.index_path, "r") as index:
        names = []
        index["conditions"][key].visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    stored = {n.split("/")[-1] for n in names if "synthetic-" in n}
    assert {n.split("/")[0] for n in names if n.endswith("/layer3.1.bn2")} == \
        {"synthetic-object", "synthetic-scene", "clean", "delta", "noise", "noise_run"}
    assert stored == {"penultimate", "layer3.0.bn1", "layer3.0.bn2", "layer3.0.downsample.1",
                      "layer3.1.bn1", "layer3.1.bn2"}
    with pytest.raises(FeatlabError, match="matches no layer"):
        extract(_spec(root, tmp_path / "without", tiny_weights, conditions=PROBE,
                      layers="layer3.*,nothing"))


def test_estimate_bounds_the_written_bytes_and_a_full_disk_is_refused(
        stores, root, tiny_weights, tmp_path, monkeypatch):
    def written(kind):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
                   os.walk(os.path.join(stores[kind], "conditions")) for f in fs)

    estimate = stores["float32-summary"]["estimated_bytes"]
    half = stores["float16-summary"]["estimated_bytes"]
    assert written("float32") <= estimate <= 1.6 * written("float32")
    assert written("float16") <= half <= 1.6 * written("float16")
    # features halve; the sample columns, checksums and HDF5 overhead do not
    assert half < 0.7 * estimate

    class Usage:
        free = estimate // 2

    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(FeatlabError, match=r"needs about .* MiB for this run and only") as err:
        extract(_spec(root, tmp_path / "full", tiny_weights))
    assert "\n" not in str(err.value) and not (tmp_path / "full").exists()
    before = sorted(os.listdir(os.path.join(stores["float32"], "conditions")))
    summary = extract(_spec(root, stores["float32"], tiny_weights))  # nothing left: fits
    assert summary["estimated_bytes"] == 0
    assert sorted(os.listdir(os.path.join(stores["float32"], "conditions"))) == before


def test_resuming_with_other_dtype_or_precision_is_refused(stores, root, tiny_weights):
    for option, match in ((dict(dtype="float32"), "dtype=float16, not dtype=float32"),
                          (dict(dtype="float16", precision="bf16"), "precision=fp32"),
                          (dict(dtype="float16", channels_last=False), "channels_last=True")):
        with pytest.raises(FeatlabError, match=match):
            extract(_spec(root, stores["float16"], tiny_weights, **option))
    with pytest.raises(FeatlabError, match="--precision 'fp16'"):
        extract(_spec(root, stores["float16"], tiny_weights, precision="fp16"))


def test_precision_flags_are_set_and_restored():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    cudnn.allow_tf32 = matmul.allow_tf32 = True  # PyTorch's cuDNN default
    try:
        with precision_mode("fp32", torch.device("cpu")) as autocast:
            assert cudnn.allow_tf32 is False and matmul.allow_tf32 is False
            with autocast():
                assert not torch.is_autocast_enabled("cpu")
        assert cudnn.allow_tf32 is True and matmul.allow_tf32 is True
        with precision_mode("tf32", torch.device("cpu")):
            assert cudnn.allow_tf32 and matmul.allow_tf32
        with precision_mode("bf16", torch.device("cpu")) as autocast:
            assert not cudnn.allow_tf32
            with autocast():
                assert torch.is_autocast_enabled("cpu")
                assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    finally:
        cudnn.allow_tf32 = matmul.allow_tf32 = False


def test_bf16_and_channels_last_runs_are_close_to_fp32(stores, root, tiny_weights, tmp_path):
    full = FeatureStore(stores["float32"])
    ref = full.read(backbone="synthetic-object", layer="penultimate")
    scale = np.abs(ref).mean()
    for name, options, tol in (("bf16", dict(precision="bf16"), 0.05),
                               ("contiguous", dict(channels_last=False), 1e-5)):
        path = tmp_path / name
        extract(_spec(root, path, tiny_weights, conditions="clean", layers="penultimate",
                      **options))
        got = FeatureStore(str(path)).read(backbone="synthetic-object", layer="penultimate")
        error = np.abs(got - ref).mean() / scale
        assert error <= tol, (name, error)
        if name == "bf16":
            assert error > 1e-4  # really computed in bfloat16
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["storage"][next(iter(options))] == next(iter(options.values()))


def test_channels_last_by_default_a_store_keeps_its_own(stores, root, tiny_weights, tmp_path):
    def memory_format(path):
        return json.loads((path / "manifest.json").read_text())["storage"]["channels_last"]

    assert json.loads(open(os.path.join(stores["float32"], "manifest.json")).read())[
        "storage"]["channels_last"] is True
    path = tmp_path / "contiguous"
    extract(_spec(root, path, tiny_weights, conditions="clean", channels_last=False))
    extract(_spec(root, path, tiny_weights, conditions="clean,blur:sigma=2:region=object"))
    assert memory_format(path) is False  # continued without the option: the store's own
    ours = FeatureStore(str(path)).read(condition="blur:sigma=2:region=object",
                                        backbone="synthetic-object", layer="penultimate")
    theirs = FeatureStore(stores["float32"]).read(condition="blur:sigma=2:region=object",
                                                  backbone="synthetic-object", layer="penultimate")
    assert ours.tobytes() != theirs.tobytes() and np.allclose(ours, theirs, atol=1e-4)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["storage"]["channels_last"]  # a store from before featlab recorded it
    (path / "manifest.json").write_text(json.dumps(manifest))
    # continued as contiguous: resolving to channels-last would be refused by check_settings
    extract(_spec(root, path, tiny_weights, conditions="clean,blur:sigma=3"))
    assert "channels_last" not in json.loads((path / "manifest.json").read_text())["storage"] \
        or memory_format(path) is False


def _float_filters(store):
    """(compression, shuffle) of every float dataset in the store's parts."""
    seen = set()
    for folder, _, files in os.walk(os.path.join(store, "conditions")):
        for name in files:
            if name.startswith("part-") and name.endswith(".h5"):
                with h5py.File(os.path.join(folder, name), "r") as part:
                    part.visititems(lambda _, d: seen.add((d.compression, d.shuffle))
                                    if isinstance(d, h5py.Dataset) and d.dtype.kind == "f"
                                    and d.size > 64 else None)
    return seen


def test_compression_none_by_default_gzip_on_request_same_values(stores, root, tiny_weights,
                                                                 tmp_path):
    plain = stores["float32"]
    assert json.loads(open(os.path.join(plain, "manifest.json")).read())["storage"][
        "compression"] == "none"
    assert _float_filters(plain) == {(None, False)}
    packed = tmp_path / "gzip"
    extract(_spec(root, packed, tiny_weights, compression="gzip"))
    assert _float_filters(str(packed)) == {("gzip", True)}
    a, b = FeatureStore(plain), FeatureStore(str(packed))
    for condition in ("clean", "blur:sigma=2:region=object"):
        for layer in ("penultimate", "layer3.1.bn2"):
            assert np.array_equal(a.read(condition=condition, backbone="synthetic-object", layer=layer),
                                  b.read(condition=condition, backbone="synthetic-object", layer=layer))
    # continuing without --compression keeps the store's own; asking for another is refused
    extract(_spec(root, packed, tiny_weights, conditions="clean,blur:sigma=3"))
    assert _float_filters(str(packed)) == {("gzip", True)}
    with pytest.raises(FeatlabError, match="compression=gzip, not compression=none"):
        extract(_spec(root, packed, tiny_weights, compression="none"))
    with pytest.raises(FeatlabError, match="--compression 'zstd': expected one of none, gzip"):
        extract(_spec(root, tmp_path / "other", tiny_weights, compression="zstd"))
    assert not os.path.exists(tmp_path / "other")


def test_a_store_from_before_the_setting_continues_with_gzip(root, tiny_weights, tmp_path):
    path = tmp_path / "legacy"
    extract(_spec(root, path, tiny_weights, conditions="clean", compression="gzip"))
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["storage"]["compression"]  # what featlab wrote before it recorded it
    manifest_path.write_text(json.dumps(manifest))
    extract(_spec(root, path, tiny_weights, conditions="clean,blur:sigma=2:region=object"))
    assert _float_filters(str(path)) == {("gzip", True)}


def test_cli_compression_option(root, tiny_weights, tmp_path):
    args = ["extract", "--dataset", "synthetic", "--root", root, "--store",
            str(tmp_path / "s"), "--device", "cpu", "--image-size", "32", "--conditions",
            "clean", "--weights", f"synthetic-object={tiny_weights['synthetic-object']}",
            "--weights", f"synthetic-scene={tiny_weights['synthetic-scene']}",
            "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, args + ["--compression", "gzip"])
    assert result.exit_code == 0, result.output
    assert _float_filters(str(tmp_path / "s")) == {("gzip", True)}
    bad = CliRunner().invoke(cli, args + ["--compression", "lzf"])
    assert bad.exit_code == 2 and "'lzf' is not one of 'none', 'gzip'" in bad.output
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["storage"]["channels_last"] is True  # the default of a new store
    contiguous = [a if a != str(tmp_path / "s") else str(tmp_path / "t") for a in args]
    result = CliRunner().invoke(cli, contiguous + ["--contiguous"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "t" / "manifest.json").read_text())["storage"][
        "channels_last"] is False
    refused = CliRunner().invoke(cli, contiguous + ["--channels-last"])
    assert refused.exit_code == 2 and "channels_last=False, not channels_last=True" in \
        refused.output
