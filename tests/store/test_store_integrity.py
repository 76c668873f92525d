"""Damaged parts, lost sample table, lost index — detected, named, repaired."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from featlab.cli.main import cli
from featlab.errors import FeatlabError
from featlab.extraction import ExtractionSpec, extract
from featlab.store import FeatureStore
from featlab.store.checksums import sidecar
from featlab.store.integrity import check_store
from featlab.store.layout import condition_dir, list_parts

LAYER = "synthetic-object/layer3.1.bn2"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    path = tmp_path_factory.mktemp("integrity-data")
    generate_synthetic(str(path), seed=5, n_images=16, image_size=32)
    return str(path)


def _spec(root, store, weights, **kw):
    return ExtractionSpec(**dict(dict(store=str(store), root=root, conditions="clean",
                                       device="cpu", batch_size=8, chunk_size=8, image_size=32,
                                       weights=weights), **kw))


@pytest.fixture(scope="module")
def reference(root, tiny_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("integrity") / "reference"
    extract(_spec(root, path, tiny_weights))
    return str(path)


@pytest.fixture
def store(reference, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(reference, copy)
    return str(copy)


def _parts(store):
    return list_parts(condition_dir(store, "clean"))


def _flip_inside(path, name, where=10):
    """Flip one byte inside the stored bytes of dataset ``name`` (contiguous or chunked)."""
    with h5py.File(path, "r") as handle:
        dset = handle[name]
        chunked = dset.chunks is not None
        start = dset.id.get_chunk_info(0).byte_offset if chunked else dset.id.get_offset()
        offset = start + where
    with open(path, "r+b") as raw:
        raw.seek(offset)
        byte = raw.read(1)
        raw.seek(offset)
        raw.write(bytes([byte[0] ^ 0xFF]))


def _one_line(message):
    assert "\n" not in message and "Traceback" not in message
    return message


def _invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _tree_bytes(store):
    out = {}
    for folder, _, files in os.walk(os.path.join(store, "conditions")):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                out[os.path.relpath(os.path.join(folder, name), store)] = handle.read()
    return out


def test_parts_are_recorded_and_verify_passes(reference):
    for start, stop, path in _parts(reference):
        record = json.load(open(sidecar(path)))
        assert record["size"] == os.path.getsize(path) and len(record["sha256"]) == 64
        assert record["datasets"][LAYER]["shape"] == [stop - start, 256]
        with h5py.File(path, "r") as part:
            # new stores are uncompressed by default (docs/concepts/store.md)
            assert part[LAYER].compression is None and part[LAYER].chunks is None
    result = _invoke("store", "verify", reference)
    assert result.exit_code == 0 and "healthy" in result.output
    data = json.loads(_invoke("store", "verify", reference, "--json").output)
    assert data["healthy"] and data["checked"]["parts"] == 2 and data["problems"] == []


def test_bit_rot_is_named_on_read_and_verify_and_repaired_by_extract(store, reference, root,
                                                                     tiny_weights):
    (_, _, intact), (_, _, bad) = _parts(store)
    intact_stat = os.stat(intact)
    _flip_inside(bad, LAYER)
    fs = FeatureStore(store)
    with pytest.raises(FeatlabError, match="part-000000008-000000016.h5 of condition clean is "
                                           "damaged.*rerun the extract command to recompute it"
                       ) as err:
        fs.read(backbone="synthetic-object", layer="layer3.1.bn2")
    _one_line(str(err.value))
    # the other datasets of the part are intact and still readable
    assert np.isfinite(fs.read(backbone="synthetic-scene", layer="penultimate")).all()
    result = _invoke("store", "verify", store)
    assert result.exit_code == 1 and "part-000000008-000000016.h5" in result.output
    assert "part-000000000-000000008.h5" not in result.output
    problems = json.loads(_invoke("store", "verify", store, "--json").output)["problems"]
    assert [p["file"].split("/")[-1] for p in problems] == ["part-000000008-000000016.h5"]
    summary = extract(_spec(root, store, tiny_weights))
    assert summary["conditions"]["clean"]["computed"] == 1
    assert os.stat(intact).st_mtime_ns == intact_stat.st_mtime_ns
    assert os.path.isfile(os.path.join(store, "damaged", os.path.relpath(bad, store)))
    assert _invoke("store", "verify", store).exit_code == 0
    assert _tree_bytes(store) == _tree_bytes(reference)


def test_flipped_metadata_byte_is_caught_by_verify(store):
    _, _, path = _parts(store)[0]
    with open(path, "r+b") as raw:  # the superblock's end-of-file address region
        raw.seek(40)
        byte = raw.read(1)
        raw.seek(40)
        raw.write(bytes([byte[0] ^ 0x01]))
    problems = check_store(store, full=True)["problems"]
    assert len(problems) == 1 and "do not match the checksum" in problems[0]["problem"]


def test_truncated_part_is_not_complete_anywhere(store, root, tiny_weights):
    _, _, path = _parts(store)[1]
    with open(path, "r+b") as raw:
        raw.truncate(os.path.getsize(path) // 2)
    info = json.loads(_invoke("store", "info", store, "--json").output)
    assert info["conditions"]["clean"] == "damaged (1 part(s))"
    assert "truncated" in info["problems"][0]["problem"]
    result = _invoke("fit-head", "--store", store, "--out", os.path.join(store, "..", "o"))
    assert result.exit_code == 2 and "part-000000008-000000016.h5" in result.output
    _one_line(result.output.strip())
    assert not os.path.isdir(os.path.join(store, "heads"))
    summary = extract(_spec(root, store, tiny_weights))
    assert summary["conditions"]["clean"]["computed"] == 1
    assert check_store(store, full=True)["healthy"]


def test_truncated_part_without_record_is_skipped_by_the_index(store, caplog):
    _, _, path = _parts(store)[1]
    os.unlink(sidecar(path))
    with open(path, "r+b") as raw:
        raw.truncate(1000)
    os.unlink(os.path.join(store, "store.h5"))
    fs = FeatureStore(store)
    assert not fs.condition_info("clean")["complete"]
    assert "not indexed" in caplog.text
    with pytest.raises(FeatlabError, match="incomplete"):
        fs.read(backbone="synthetic-object", layer="penultimate")
    problems = check_store(store)["problems"]
    assert any(p["file"].endswith("part-000000008-000000016.h5") for p in problems)


def test_lost_sample_table_refuses_readers_and_keeps_heads(store, root, tiny_weights):
    from featlab.analyses.heads.run import fit_head as fit_heads

    fit_heads(FeatureStore(store))
    heads = {n: open(os.path.join(store, "heads", n), "rb").read()
             for n in os.listdir(os.path.join(store, "heads"))}
    os.unlink(os.path.join(store, "samples.h5"))
    with pytest.raises(FeatlabError, match="lost samples.h5.*rerun the extract command"):
        FeatureStore(store)
    result = _invoke("fit-head", "--store", store, "--alpha", "3")
    assert result.exit_code == 2 and "samples.h5" in _one_line(result.output.strip())
    assert {n: open(os.path.join(store, "heads", n), "rb").read()
            for n in os.listdir(os.path.join(store, "heads"))} == heads
    info = _invoke("store", "info", store)
    assert info.exit_code == 2 and "problem   samples.h5: missing" in info.output
    verify = _invoke("store", "verify", store)
    assert verify.exit_code == 1 and "samples.h5" in verify.output
    summary = extract(_spec(root, store, tiny_weights))
    assert summary["conditions"]["clean"]["computed"] == 0
    assert check_store(store, full=True)["healthy"]
    assert len(FeatureStore(store).samples) == 16


def test_lost_index_is_reported_then_rebuilt(store):
    os.unlink(os.path.join(store, "store.h5"))
    assert [p["file"] for p in check_store(store)["problems"]] == ["store.h5"]
    result = _invoke("store", "info", store)
    assert result.exit_code == 0 and "store.h5: missing" in result.output
    assert check_store(store)["healthy"]


def test_old_lzf_parts_without_records_are_read_but_unverified(store, caplog):
    """A store made before checksums (no records, the sample table's either): its parts are
    read, each named once as unchecked; verify calls the store UNVERIFIED, not healthy."""
    _, _, path = _parts(store)[0]
    with h5py.File(path, "r") as part:
        arrays = {}
        part.visititems(lambda n, o: arrays.__setitem__(n, o[()])
                        if isinstance(o, h5py.Dataset) else None)
    expected = FeatureStore(store).read(backbone="synthetic-scene", layer="layer2.0.bn1")
    os.unlink(sidecar(path))
    os.unlink(sidecar(os.path.join(store, "samples.h5")))
    with h5py.File(path, "w") as part:  # the writer before checksum records
        for name, values in arrays.items():
            opts = dict(compression="lzf", shuffle=True) if values.dtype.kind == "f" else {}
            part.create_dataset(name, data=values, **opts)
    got = FeatureStore(store).read(backbone="synthetic-scene", layer="layer2.0.bn1")
    assert np.array_equal(got, expected)
    assert "has no checksum record (written before featlab recorded checksums)" in caplog.text
    result = check_store(store, full=True)
    assert result["status"] == "UNVERIFIED" and result["checked"]["unrecorded"] == 1
    assert [p["problem"].split(":")[0] for p in result["problems"]] == ["unverified"]


def test_damaged_condition_json_is_reported_and_rewritten(store, root, tiny_weights):
    folder = condition_dir(store, "clean")
    with open(os.path.join(folder, "condition.json"), "w") as handle:
        handle.write("{not json")
    problems = check_store(store)["problems"]
    assert any(p["file"].endswith("condition.json") for p in problems)
    summary = extract(_spec(root, store, tiny_weights))
    assert summary["conditions"]["clean"]["computed"] == 0
    assert check_store(store, full=True)["healthy"]


# ------------------------------------------------------------ the sample table's checksum
def _flip_split(path, group=""):
    """Move row 0 to the other split (h5py r+, as a slip of a user's script would)."""
    with h5py.File(path, "r+") as handle:
        split = handle[group + "split"].asstr()[0]
        handle[group + "split"][0] = "test" if split == "train" else "train"


def test_damaged_sample_table_is_rewritten_from_the_index(store, reference, caplog):
    n_test = len(FeatureStore(reference).rows("test"))
    _flip_split(os.path.join(store, "samples.h5"))
    problems = check_store(store, full=True)["problems"]
    assert [(p["file"], p["problem"]) for p in problems] == [
        ("samples.h5", "its bytes do not match the checksum recorded when it was written")]
    fs = FeatureStore(store)  # the index's copy has the manifest's hash: repaired from it
    assert "rewrote samples.h5 of store" in caplog.text
    assert len(fs.rows("test")) == n_test
    assert os.path.isfile(os.path.join(store, "damaged", "samples.h5"))
    assert check_store(store, full=True)["healthy"]


def test_sample_table_damaged_everywhere_is_refused_and_never_indexed(store, reference, root,
                                                                     tiny_weights):
    from featlab.store.index import build_index
    from featlab.store.layout import WriterLock

    _flip_split(os.path.join(store, "samples.h5"))
    _flip_split(os.path.join(store, "store.h5"), "samples/")
    with pytest.raises(FeatlabError, match="samples.h5 of store .* is damaged: its bytes do not "
                                           "match the checksum recorded when it was written, and "
                                           "the index holds no intact copy; rerun the extract "
                                           "command to rewrite it") as err:
        FeatureStore(store)
    _one_line(str(err.value))
    index = open(os.path.join(store, "store.h5"), "rb").read()
    with WriterLock(store), pytest.raises(FeatlabError, match="no intact copy"):
        build_index(store)
    assert open(os.path.join(store, "store.h5"), "rb").read() == index
    result = _invoke("fit-head", "--store", store, "--out", os.path.join(store, "..", "o"))
    assert result.exit_code == 2 and "samples.h5" in _one_line(result.output.strip())
    assert not os.path.isdir(os.path.join(store, "heads"))
    problems = {p["file"] for p in check_store(store, full=True)["problems"]}
    assert problems == {"samples.h5", "store.h5"}
    extract(_spec(root, store, tiny_weights))  # the writer rewrites it from the dataset
    assert check_store(store, full=True)["healthy"]
    assert len(FeatureStore(store).rows("test")) == len(FeatureStore(reference).rows("test"))


def test_sample_table_without_record_is_checked_against_the_manifest(store):
    os.unlink(sidecar(os.path.join(store, "samples.h5")))
    _flip_split(os.path.join(store, "samples.h5"))
    problems = check_store(store)["problems"]
    assert [(p["file"], p["problem"]) for p in problems] == [
        ("samples.h5", "its rows differ from the table the store was made for")]


# ------------------------------------------------------------ parts without their record
def _flip_exponent(path, name=LAYER):
    """Flip a bit of one float32 exponent of ``name`` (0.36 -> ~1e38 and the like)."""
    with h5py.File(path, "r") as handle:
        offset = handle[name].id.get_offset() + 4 * 3 + 3
    with open(path, "r+b") as raw:
        raw.seek(offset)
        byte = raw.read(1)
        raw.seek(offset)
        raw.write(bytes([byte[0] ^ 0x40]))


def test_part_without_its_record_is_unverified_refused_and_recomputed(store, reference, root,
                                                                      tiny_weights):
    _, _, path = _parts(store)[0]
    os.unlink(sidecar(path))
    _flip_exponent(path)
    result = _invoke("store", "verify", store)
    assert result.exit_code == 1 and "UNVERIFIED" in result.output.splitlines()[-1]
    assert ("part-000000000-000000008.h5: unverified: its checksum record "
            "part-000000000-000000008.h5.json is missing, so its bytes cannot be checked — "
            "rerun the extract command to recompute it") in result.output
    with pytest.raises(FeatlabError, match="part conditions/.*/part-000000000-000000008.h5 of "
                                           "condition clean is unverified: its checksum record"):
        FeatureStore(store).read(backbone="synthetic-object", layer="layer3.1.bn2")
    info = json.loads(_invoke("store", "info", store, "--json").output)
    assert info["conditions"]["clean"] == "unverified (1 part(s) without checksum record)"
    fit = _invoke("fit-head", "--store", store, "--out", os.path.join(store, "..", "o"))
    assert fit.exit_code == 2 and "is unverified" in _one_line(fit.output.strip())
    assert extract(_spec(root, store, tiny_weights))["conditions"]["clean"]["computed"] == 1
    assert _invoke("store", "verify", store).exit_code == 0
    assert _tree_bytes(store) == _tree_bytes(reference)


# ------------------------------------------------------------ a live writer
def test_verify_names_a_live_writer_and_leaves_its_work_out(store):
    from featlab.store.layout import WriterLock

    _, _, path = _parts(store)[1]
    os.unlink(path)  # as if the writer had not written it yet
    os.unlink(sidecar(path))
    with WriterLock(store):
        busy = _invoke("store", "verify", store)
        data = json.loads(_invoke("store", "verify", store, "--json").output)
    assert busy.exit_code == 1 and "problem   " not in busy.output
    assert busy.output.splitlines()[0].startswith(
        f"writer    featlab process pid {os.getpid()} is writing this store")
    assert busy.output.splitlines()[-1].startswith("BUSY: ")
    assert data["writer"] == str(os.getpid()) and data["problems"] == []
    after = _invoke("store", "verify", store)
    assert after.output.splitlines()[-1].startswith("DAMAGED: ") and "incomplete" in after.output


def test_head_without_its_record_is_unverified(store):
    from featlab.analyses.heads.run import fit_head as fit_heads
    from featlab.store.heads import load_head

    fit_heads(FeatureStore(store))
    os.unlink(sidecar(os.path.join(store, "heads", "fg-all.h5")))
    result = check_store(store, full=True)
    assert result["status"] == "UNVERIFIED"
    assert [(p["file"], p["problem"].split(":")[0]) for p in result["problems"]
            if p["file"] != "store.h5"] == [("heads/fg-all.h5", "unverified")]
    with pytest.raises(FeatlabError, match="head fg-all in store .* is unverified: its checksum "
                                           "record fg-all.h5.json is missing"):
        load_head(store, "fg-all")
