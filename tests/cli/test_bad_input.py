"""One line, exit 2, nothing touched: each user mistake gives one line
``featlab: error: ...``, exit 2, and writes nothing."""
import json
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import one_error_line, read_only_mount
from featlab.errors import FeatlabError
from featlab.extraction.chunks import refuse_non_finite


def _cli(args):
    from featlab.cli.main import cli

    return CliRunner().invoke(cli, ["-q"] + [str(a) for a in args])  # warnings only


def _one_line(args, match):
    res = _cli(args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("featlab: error:") and match in lines[0], lines[0]


def _files(path):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(str(root), seed=3, n_images=16, image_size=16, n_supercategories=2,
                       classes_per_supercategory=2)
    return str(root)


def _extract(root, store, tiny_weights, conditions, *extra):
    weights = [a for name, path in tiny_weights.items() for a in ("--weights", f"{name}={path}")]
    return ["extract", "--dataset", "synthetic", "--root", root, "--store", store,
            "--device", "cpu", "--image-size", "16", "--conditions", conditions,
            "--cache-dir", os.path.join(os.path.dirname(store), "cache"), *weights, *extra]


@pytest.mark.parametrize("conditions,match", [
    ("fgsm:eps=nan:target=fg", "eps=nan"),
    ("blur:sigma=nan", "sigma=nan"),
    ("isotropy:radius=nan", "radius=nan"),
    ("isotropy:radius=inf", "radius=inf"),
    ("blur:sigma=-1", "out of range"),
    ("isotropy:radius=0", "radius must be > 0"),
    ("isotropy:radius=1:copies=2", "at least 3"),
    ("isotropy:radius=1:norm=l3", "norm"),
    ("clean,blur:sigma=5,blur:sigma=nan", "sigma=nan"),  # one bad member: nothing written
    ("pgd:eps=0.03:target=fg", "fit-head"),  # no heads on a new path: no store created
])
def test_bad_conditions_write_nothing(synthetic_root, tiny_weights, tmp_path, conditions,
                                      match):
    store = tmp_path / "store"
    _one_line(_extract(synthetic_root, store, tiny_weights, conditions), match)
    assert not store.exists()


@pytest.mark.parametrize("extra,match", [
    (["--backbones", ""], "--backbones"),
    (["--image-size", "0"], "--image-size"),
])
def test_no_silent_defaults(synthetic_root, tiny_weights, tmp_path, extra, match):
    store = tmp_path / "store"
    _one_line(_extract(synthetic_root, store, tiny_weights, "clean", *extra), match)
    assert not store.exists()


def test_synthetic_out_pointing_at_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    _one_line(["data", "synthetic", "--out", target, "--n-images", "16"], str(target))
    assert target.read_text() == "x"


def test_non_finite_features_of_a_valid_image_are_an_error():
    arrays = {"a/penultimate": np.ones((4, 3), np.float32), "scores/fg-all": np.full(4, np.nan)}
    refuse_non_finite("blur:sigma=5", arrays, np.ones(4, bool), 8, [f"img{i}" for i in range(12)])
    arrays["a/penultimate"][2, 1] = np.inf
    with pytest.raises(FeatlabError, match=r"not finite for image img10 \(row 10"):
        refuse_non_finite("blur:sigma=5", arrays, np.ones(4, bool), 8,
                          [f"img{i}" for i in range(12)])
    refuse_non_finite("blur:sigma=5", arrays, np.array([1, 1, 0, 1], bool), 8, ["x"] * 12)
    probe = {"clean/a/l": np.full((4, 3), np.nan, np.float32), "probed": np.zeros(4, bool),
             "delta/a/l": np.full((4, 2, 3), np.nan, np.float32)}
    refuse_non_finite("isotropy:radius=1", probe, np.ones(4, bool), 0, ["x"] * 4)
    probe["probed"][3] = True
    with pytest.raises(FeatlabError, match="clean/a/l is not finite"):
        refuse_non_finite("isotropy:radius=1", probe, np.ones(4, bool), 0, ["x"] * 4)


def test_store_files_are_group_readable(synthetic_root, tiny_weights, tmp_path):
    store = tmp_path / "store"
    old = os.umask(0o022)
    try:
        res = _cli(_extract(synthetic_root, store, tiny_weights, "clean"))
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    for path in _files(store):
        if path.endswith(("manifest.json", "condition.json")):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            assert mode & 0o044 == 0o044, (path, oct(mode))
    manifest = store / "manifest.json"
    data = json.loads(manifest.read_text())
    data["version"] = "1"
    manifest.write_text(json.dumps(data))
    res = _cli(["store", "info", store])
    assert "1 is newer than 1" not in res.output


@pytest.fixture(scope="module")
def small_store(synthetic_root, tiny_weights, tmp_path_factory):
    """A store with clean and blur features and fitted heads (fg-all, bg-all, joint)."""
    store = str(tmp_path_factory.mktemp("bad") / "store")
    res = _cli(_extract(synthetic_root, store, tiny_weights, "clean,blur:sigma=2:region=all",
                        "--chunk-size", "8"))
    assert res.exit_code == 0, res.output
    res = _cli(["fit-head", "--store", store, "--alpha", "0"])
    assert res.exit_code == 0, res.output
    return store


def _stamps(path):
    return {p: (os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in _files(path)}


@pytest.mark.parametrize("args,match", [
    (["fit-head", "--alpha", "nan"], "alpha"),
    (["fit-head", "--alpha", "inf"], "alpha"),
    (["fit-head", "--l2", "0"], "l2"),
    (["fit-head", "--l2", "-1"], "l2"),
    (["fit-head", "--l2", "nan"], "l2"),
    (["pca-shift", "--condition", "blur:sigma=2:region=all", "-k", "-3"], "-k"),
    (["pca-shift", "--condition", "blur:sigma=2:region=all", "-k", "0"], "-k"),
    (["pca-shift", "--condition", "blur:sigma=2:region=all", "--permutations", "-1"],
     "permutations"),
])
def test_bad_numbers_touch_nothing(small_store, args, match):
    before = _stamps(small_store)
    _one_line([args[0], "--store", small_store, "--out", os.path.dirname(small_store),
               *args[1:]], match)
    assert _stamps(small_store) == before


def test_bad_manifest_is_one_line(small_store, tmp_path):
    import shutil

    for text in ("[]", json.dumps({"version": 1})):
        copy = tmp_path / f"copy{len(text)}"
        shutil.copytree(small_store, copy)
        (copy / "manifest.json").write_text(text)
        _one_line(["store", "info", copy], "manifest")
        _one_line(["fit-head", "--store", copy, "--alpha", "0"], "manifest")


@pytest.mark.parametrize("text", ["[]", '"store"', "3"])
@pytest.mark.parametrize("extra", [(), ("--compression", "none", "--channels-last")],
                         ids=["store-defaults", "options-given"])
def test_extract_on_a_store_whose_manifest_is_not_an_object(small_store, synthetic_root,
                                                            tiny_weights, tmp_path, text,
                                                            extra):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_store, copy)
    (copy / "manifest.json").write_text(text)
    def contents():  # the lock file holds the pid of the last process that took the lock
        return {f: open(f, "rb").read() for f in _files(copy) if not f.endswith(".lock")}

    before = contents()
    _one_line(_extract(synthetic_root, str(copy), tiny_weights, "clean", *extra),
              "manifest.json holds a JSON")
    assert contents() == before


@pytest.mark.parametrize("damage,match", [
    (lambda d: d["images"][0].pop("file_name"), "file_name"),
    (lambda d: d["annotations"][0].__setitem__("bbox", "1,2,3,4"), "bbox"),
])
def test_bad_coco_entries_are_one_line(synthetic_root, tiny_weights, tmp_path, damage, match):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    path = root / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    store = tmp_path / "store"
    _one_line(_extract(str(root), store, tiny_weights, "clean"), match)
    assert not store.exists()


def test_fit_head_without_test_images_says_so(synthetic_root, tiny_weights, tmp_path):
    """A store whose split left no test image: fit-head fits and saves the heads (attacks can
    use them) and says why there is no accuracy, instead of printing NaN accuracies."""
    from featlab import ExtractionSpec, FeatureStore, extract

    store = str(tmp_path / "store")
    extract(ExtractionSpec(store=store, root=synthetic_root, device="cpu", image_size=16,
                           batch_size=8, chunk_size=8, weights=tiny_weights,
                           cache_dir=str(tmp_path / "cache"),
                           dataset_options={"test_fraction": 0.0}))
    assert not len(FeatureStore(store).rows("test"))
    res = _cli(["fit-head", "--store", store, "--alpha", "0", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "no test images" in res.output and "nan" not in res.output.lower()
    result = json.loads((tmp_path / "out" / "fit-head-all.json").read_text())
    assert result["rows"] == [] and "fg-all" in result["heads"]


def test_pca_shift_without_a_class_pair_is_refused(small_store):
    """One test image per class: no within-class spread and no pair of images of a class,
    so no centroid shift is defined; pca-shift refuses in one line instead of printing NaN."""
    from featlab import FeatureStore, pca_shift

    store = FeatureStore(small_store)
    counts = np.unique(store.labels(split="test"), return_counts=True)[1]
    assert (counts == 1).all(), counts  # 16 images, 4 classes, test fraction 0.25
    with pytest.raises(FeatlabError, match="no class has two valid images in split 'test'"):
        pca_shift(store, condition="blur:sigma=2:region=all", permutations=9, n_boot=20)


def test_fit_head_default_out_in_a_read_only_folder(small_store, tmp_path, monkeypatch):
    before = _stamps(small_store)
    (tmp_path / "ro").mkdir()
    monkeypatch.setenv("FEATLAB_ANALYSES", str(tmp_path / "ro" / "analyses"))
    read_only_mount(monkeypatch, tmp_path / "ro")
    _one_line(["fit-head", "--store", small_store, "--alpha", "0"],
              "Read-only file system); give --out a writable folder, or set FEATLAB_ANALYSES")
    monkeypatch.undo()
    assert _stamps(small_store) == before and not (tmp_path / "ro" / "analyses").exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    monkeypatch.setenv("FEATLAB_ANALYSES", str(a_file))
    _one_line(["fit-head", "--store", small_store, "--alpha", "0"], "is a file, not a folder")
    assert _stamps(small_store) == before


def test_pca_shift_out_on_a_read_only_mount(small_store, tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    read_only_mount(monkeypatch, tmp_path / "ro")
    _one_line(["pca-shift", "--store", small_store, "--condition", "blur:sigma=2:region=all",
               "--out", tmp_path / "ro" / "out"], f"--out {tmp_path / 'ro' / 'out'}: cannot "
              "write in")
    monkeypatch.undo()
    assert not (tmp_path / "ro" / "out").exists()


def test_write_failing_after_the_work_is_one_line(small_store, tmp_path, monkeypatch):
    """The folder was writable when checked, the disk fills up before the figures: one line
    naming the file, not a traceback."""
    import errno

    from matplotlib.figure import Figure

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    res = _cli(["pca-shift", "--store", small_store, "--condition", "blur:sigma=2:region=all",
                "--out", tmp_path / "out", "--permutations", "9", "--n-boot", "20",
                "--split", "train"])
    line = one_error_line(res.output)
    assert res.exit_code == 2 and "pca-shift-pca-blur_sigma-2_region-all.png (No space left " \
        "on device); give --out a writable folder with free space" in line, line
