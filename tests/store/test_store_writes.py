"""File modes, read-only stores, full disks, damaged manifests and heads."""
import errno
import json
import os
import stat
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from featlab.cli.main import cli
from featlab.data.base import SampleTable
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.extraction import storage
from featlab.store import FeatureStore, StoreWriter
from featlab.store.checksums import sidecar
from featlab.store.heads import load_head
from featlab.store.integrity import check_store
from featlab.store.layout import condition_dir
from featlab.utils.paths import atomic_write_text

N, CHUNK = 12, 4
LAYERS = {"synthetic-object": {"penultimate": 8}, "synthetic-scene": {"penultimate": 8}}


def make_store(path):
    """A store written by StoreWriter from seeded random features (no backbones run)."""
    labels = np.arange(N) % 3
    samples = SampleTable(np.arange(N), np.array([f"{i}.jpg" for i in range(N)]), labels,
                          np.array([f"c{k}" for k in labels]), np.array(["s"] * N),
                          np.array(["train", "test"] * (N // 2)),
                          np.full((N, 2, 4), np.nan, np.float32), np.full(N, 32), np.full(N, 32),
                          ["c0", "c1", "c2"], ["s", "s", "s"])
    meta = {b: dict(weights_sha256="0" * 64, layers=dict(layers)) for b, layers in LAYERS.items()}
    rng = np.random.default_rng(0)
    with StoreWriter(str(path), samples=samples, backbones=meta, dataset_spec={"name": "t"},
                     chunk_size=CHUNK) as writer:
        writer.add_condition("clean", {"name": "clean", "params": {}})
        for start, stop in writer.missing_chunks("clean"):
            arrays = {f"{b}/penultimate": rng.standard_normal((stop - start, 8)).astype("f4")
                      + labels[start:stop, None] for b in LAYERS}
            writer.write_part("clean", start, stop, dict(arrays, valid=np.ones(stop - start, bool)))
        writer.rebuild_index()
    return str(path)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "store")


def _one_line(text):
    text = text.strip()
    assert "\n" not in text and "Traceback" not in text, text
    return text


# -- file modes ------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        root = make_store(tmp_path / "s")
        atomic_write_text(str(tmp_path / "plain.txt"), "x")
    finally:
        os.umask(old)
    folder = condition_dir(root, "clean")
    files = [os.path.join(root, n) for n in ("manifest.json", "samples.h5", "store.h5")] + [
        os.path.join(folder, n) for n in os.listdir(folder)] + [str(tmp_path / "plain.txt")]
    assert len(files) > 8
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, path


# -- damaged manifests ---------------------------------------------------------------------
@pytest.mark.parametrize("content, words", [
    ([], "holds a JSON list, expected an object"),
    ({"schema_version": 1}, "lacks key(s) featlab_version"),
    ("schema-string", "schema_version '1' (str); expected an integer"),
    ("schema-bool", "schema_version True (bool)"),
    ("n_samples-string", "n_samples = '12'; expected an integer"),
])
def test_damaged_manifest_is_one_line(store, content, words):
    path = os.path.join(store, "manifest.json")
    manifest = json.load(open(path))
    if content == "schema-string":
        content = dict(manifest, schema_version="1")
    elif content == "schema-bool":
        content = dict(manifest, schema_version=True)
    elif content == "n_samples-string":
        content = dict(manifest, n_samples="12")
    with open(path, "w") as handle:
        json.dump(content, handle)
    with pytest.raises(FeatlabError) as err:
        FeatureStore(store)
    assert words in str(err.value) and "newer" not in str(err.value)
    result = CliRunner().invoke(cli, ["store", "info", store])
    assert result.exit_code == 2 and words in _one_line(result.output)
    assert CliRunner().invoke(cli, ["store", "verify", store]).exit_code == 1


# -- read-only stores -------------------------------------------------------------------------
@pytest.fixture
def read_only(store, tmp_path):
    """The store seen through a read-only bind mount (or chmod when not root)."""
    view = tmp_path / "ro"
    view.mkdir()
    if os.geteuid() != 0:
        for folder, dirs, files in os.walk(store):
            for name in dirs + files:
                os.chmod(os.path.join(folder, name), 0o555 if name in dirs else 0o444)
        os.chmod(store, 0o555)
        yield store
        for folder, dirs, _ in os.walk(store):
            os.chmod(folder, 0o755)
        return
    done = subprocess.run(["mount", "--bind", store, str(view)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield str(view)
    finally:
        subprocess.run(["umount", str(view)])


def test_writers_on_a_read_only_store_refuse_before_any_work(read_only, monkeypatch):
    from featlab.analyses.heads import run as run_heads
    from featlab.extraction import pipeline

    fs = FeatureStore(read_only)  # readers work
    assert fs.read(backbone="synthetic-object", layer="penultimate").shape == (N, 8)
    assert check_store(read_only, full=True)["healthy"]

    def never(*a, **k):
        raise AssertionError("work was started on a read-only store")

    monkeypatch.setattr(pipeline, "load_dataset", never)
    monkeypatch.setattr(run_heads, "fit_paper_heads", never)
    with pytest.raises(FeatlabError, match="read-only") as err:
        extract(ExtractionSpec(store=read_only, root="nowhere", conditions="clean"))
    _one_line(str(err.value))
    result = CliRunner().invoke(cli, ["fit-head", "--store", read_only])
    assert result.exit_code == 2 and "read-only" in _one_line(result.output)
    with pytest.raises(FeatlabError, match="read-only"):
        StoreWriter(read_only, samples=fs.samples, backbones=fs.manifest["backbones"],
                    dataset_spec={})


# -- full disks -------------------------------------------------------------------------------
def _fail_fsync_of(monkeypatch, marker):
    """os.fsync raises ENOSPC for a temporary file whose name ends with ``marker``."""
    real = os.fsync

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(marker) and ".tmp-" in target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _temporaries(root):
    return [n for _, _, files in os.walk(root) for n in files if n.startswith(".tmp-")]


def test_full_disk_while_saving_heads_is_one_line_and_loses_nothing(store, monkeypatch):
    from featlab.analyses.heads.run import fit_head as fit_heads

    fit_heads(FeatureStore(store), alphas=(0.0,))
    before = {n: open(os.path.join(store, "heads", n), "rb").read()
              for n in os.listdir(os.path.join(store, "heads"))}
    _fail_fsync_of(monkeypatch, "joint-all-alpha=0.h5")
    with pytest.raises(FeatlabError, match="no space left writing head joint-all-alpha=0") as err:
        fit_heads(FeatureStore(store), alphas=(0.0,), l2=0.5)
    _one_line(str(err.value))
    monkeypatch.undo()
    assert not _temporaries(store)
    after = {n: open(os.path.join(store, "heads", n), "rb").read()
             for n in os.listdir(os.path.join(store, "heads"))}
    assert after["joint-all-alpha=0.h5"] == before["joint-all-alpha=0.h5"]
    # every head file complete and recorded; fg-all and bg-all of the stopped run beside the
    # older joint head are named as a mix
    problems = check_store(store, full=True)["problems"]
    assert [p["file"] for p in problems] == ["heads/"]
    assert "joint-all-alpha=0 was saved with bg-all, fg-all as they no longer are" in \
        problems[0]["problem"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    path = tmp_path_factory.mktemp("writes-data")
    generate_synthetic(str(path), seed=7, n_images=16, image_size=32)
    return str(path)


def _args(root, store, weights):
    return ["-q", "extract", "--dataset", "synthetic", "--root", root, "--store", store,
            "--conditions", "clean", "--device", "cpu", "--batch-size", "4", "--chunk-size",
            "4", "--image-size", "32", "--limit", "8"] + [a for name, path in weights.items()
                                          for a in ("--weights", f"{name}={path}")]


def test_full_disk_during_extraction_exits_2_and_resumes(data_root, tiny_weights, tmp_path,
                                                         monkeypatch):
    store = str(tmp_path / "s")
    _fail_fsync_of(monkeypatch, "part-000000004-000000008.h5")
    result = CliRunner().invoke(cli, _args(data_root, store, tiny_weights))
    assert result.exit_code == 2, result.output
    assert "no space left writing part part-000000004-000000008.h5 of clean" in \
        _one_line(result.output)
    monkeypatch.undo()
    assert not _temporaries(store)
    problems = check_store(store, full=True)["problems"]  # the index comes at the end
    assert [p["problem"] for p in problems] == ["missing (the index readers open)",
                                                "condition clean is incomplete (1/2 parts)"]
    result = CliRunner().invoke(cli, _args(data_root, store, tiny_weights))
    assert result.exit_code == 0, result.output
    assert check_store(store, full=True)["healthy"]


def test_full_disk_for_real_on_a_tiny_tmpfs(data_root, tiny_weights, tmp_path, monkeypatch):
    # the disk fills during the run (another writer, a wrong estimate): the preflight size
    # check must not be what refuses here, so it is told the disk is empty
    class Plenty:
        free = 1 << 40

    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: Plenty)
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=450k", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        store = str(mnt / "s")
        result = CliRunner().invoke(cli, _args(data_root, store, tiny_weights))
        assert result.exit_code == 2, result.output
        assert "no space left" in _one_line(result.output)
        assert not _temporaries(store)
        kept = check_store(store, full=True)
        assert all("incomplete" in p["problem"] or p["file"] == "store.h5"
                   for p in kept["problems"]), kept
        assert kept["checked"]["parts"] >= 1
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        result = CliRunner().invoke(cli, _args(data_root, store, tiny_weights))
        assert result.exit_code == 0, result.output
        assert check_store(store, full=True)["healthy"]
    finally:
        subprocess.run(["umount", str(mnt)])


# -- damaged heads -----------------------------------------------------------------------------
@pytest.mark.parametrize("keep_record", [True, False])
def test_truncated_head_is_one_line_for_readers_and_attacks(store, keep_record, data_root):
    from featlab.analyses.heads.run import fit_head as fit_heads
    from featlab.extraction.targets import TargetModels
    from featlab.conditions import parse_conditions

    fit_heads(FeatureStore(store))
    path = os.path.join(store, "heads", "fg-all.h5")
    if not keep_record:
        os.unlink(sidecar(path))
    with open(path, "r+b") as raw:
        raw.truncate(os.path.getsize(path) // 3)
    with pytest.raises(FeatlabError, match="head fg-all in store .* is damaged") as err:
        load_head(store, "fg-all")
    _one_line(str(err.value))
    cond = parse_conditions("fgsm:eps=0.03:target=fg")[0]
    with pytest.raises(FeatlabError, match="head fg-all in store .* is damaged.*fit-head"):
        TargetModels(store, [SimpleNamespace(name=b) for b in LAYERS],
                     FeatureStore(store).backbone_meta).describe(cond)
    problems = check_store(store)["problems"]
    assert [p["file"] for p in problems] == ["heads/fg-all.h5"]
