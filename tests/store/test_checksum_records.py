"""Checksum records written from the open file (storage plans taken after a flush, no
re-parse of the image) equal the records made by reading the finished file back."""
import json
import os

import h5py
import numpy as np
import pytest

from featlab.extraction import ExtractionSpec, extract
from featlab.store.checksums import image_record, sidecar
from featlab.store.files import write_h5
from featlab.store.layout import condition_dir, list_parts
from featlab.store.writer import COMPRESSIONS


def _reread(path):
    with open(path, "rb") as handle:
        return image_record(os.path.basename(path), handle.read())


def _recorded(path):
    with open(sidecar(path)) as handle:
        return json.load(handle)


def _compact():
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return dcpl


def _fill(filters, give_back):
    rng = np.random.default_rng(3)

    def fill(handle):
        made = [handle.create_dataset("net/a", data=rng.standard_normal((40, 300), np.float32),
                                      track_times=False, **filters),
                handle.create_dataset("net/deep/b", data=rng.standard_normal((40, 7)),
                                      track_times=False, chunks=(8, 7), **filters),
                handle.create_dataset("valid", data=np.ones(40, bool), track_times=False),
                handle.create_dataset("names", data=np.array(["ab", "c"], dtype=object),
                                      track_times=False),
                handle.create_dataset("tiny", data=np.arange(4), track_times=False,
                                      dcpl=_compact()),
                handle.create_dataset("empty", shape=(0, 3), dtype="f4", track_times=False)]
        handle.attrs["what"] = "test"
        return made if give_back else None
    return fill


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
@pytest.mark.parametrize("give_back", [True, False], ids=["datasets-returned", "visited"])
def test_record_from_the_open_file_equals_the_reread_record(tmp_path, compression, give_back):
    path = str(tmp_path / "f.h5")
    entry = write_h5(path, _fill(COMPRESSIONS[compression], give_back), root=str(tmp_path),
                     what="f")
    assert set(entry["datasets"]) == {"net/a", "net/deep/b", "valid", "names", "tiny", "empty"}
    assert entry == _reread(path) == _recorded(path)


def test_a_tampered_plan_gives_another_record(tmp_path):
    """The comparison above can fail: a dataset's digest depends on the bytes planned."""
    path = str(tmp_path / "f.h5")
    write_h5(path, _fill({}, True), root=str(tmp_path), what="f")
    with open(path, "rb") as handle:
        image = bytearray(handle.read())
    with h5py.File(path, "r") as handle:
        offset = handle["net/a"].id.get_offset()
    image[offset + 5] ^= 0xFF
    changed = image_record("f.h5", bytes(image))
    assert changed["datasets"]["net/a"]["sha256"] != _recorded(path)["datasets"]["net/a"]["sha256"]
    assert changed["datasets"]["valid"] == _recorded(path)["datasets"]["valid"]


def test_extracted_store_records_equal_reread_records(tmp_path, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    generate_synthetic(str(tmp_path / "data"), seed=2, n_images=16, image_size=32)
    store = str(tmp_path / "store")
    extract(ExtractionSpec(store=store, root=str(tmp_path / "data"), conditions="clean",
                           device="cpu", batch_size=8, chunk_size=8, image_size=32,
                           weights=tiny_weights))
    files = [p for _, _, p in list_parts(condition_dir(store, "clean"))]
    files.append(os.path.join(store, "samples.h5"))
    assert len(files) == 3
    for path in files:
        assert _recorded(path) == _reread(path), path
