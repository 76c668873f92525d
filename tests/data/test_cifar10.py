"""CIFAR-10 loader on tiny batches written in the real (Python 2 pickle) format."""
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from featlab.data import DATASETS
from featlab.data.base import MAX_INSTANCES
from featlab.data.cifar10 import load_cifar10
from featlab.errors import FeatlabError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]
PER_TRAIN_BATCH, N_TEST = 4, 10


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 ``str`` (BINSTRING opcodes), as in the published
    batches: ``pickle.load(f, encoding='bytes')`` gives ``b'data'`` keys and
    ``encoding='latin1'`` (torchvision) gives ``'data'``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def dump_py2(obj, path):
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def write_cifar(root, seed=0):
    """5 train batches of 4 images + a test batch of 10; returns (train, test) as
    (pixels (n, 32, 32, 3), labels)."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    splits = {"train": ([], []), "test": ([], [])}
    batches = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for name in batches:
        n = N_TEST if name == "test_batch" else PER_TRAIN_BATCH
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        dump_py2({"batch_label": f"{name} of 5", "labels": labels, "data": data,
                  "filenames": [f"img_{i}.png" for i in range(n)]}, os.path.join(folder, name))
        part = splits["test" if name == "test_batch" else "train"]
        part[0].append(data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1))
        part[1].extend(labels)
    dump_py2({"num_cases_per_batch": 10000, "label_names": NAMES, "num_vis": 3072},
             os.path.join(folder, "batches.meta"))
    return {k: (np.concatenate(v[0]), np.array(v[1])) for k, v in splits.items()}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    return write_cifar(str(root)), str(root)


def test_fixture_has_the_real_keys(cifar):
    _, root = cifar
    with open(os.path.join(root, "cifar-10-batches-py", "data_batch_1"), "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (4, 3072)
    assert isinstance(batch[b"labels"], list)


def test_table_matches_the_batches(cifar):
    truth, root = cifar
    ds = DATASETS.get("cifar10")(root, image_size=48)
    s = ds.samples
    assert len(ds) == 30 and s.classes == NAMES
    np.testing.assert_array_equal(s.split, ["train"] * 20 + ["test"] * 10)
    np.testing.assert_array_equal(s.label, np.r_[truth["train"][1], truth["test"][1]])
    np.testing.assert_array_equal(ds.pixels, np.r_[truth["train"][0], truth["test"][0]])
    assert list(s.class_name) == [NAMES[k] for k in s.label]
    assert s.class_supercategory == ["vehicle", "vehicle"] + ["animal"] * 6 + ["vehicle"] * 2
    assert s.supercategory[list(s.class_name).index(s.class_name[0])] == \
        s.class_supercategory[s.label[0]]
    assert np.isnan(s.boxes).all() and s.boxes.shape == (30, MAX_INSTANCES, 4)
    assert (s.width == 32).all() and (s.height == 32).all()
    assert s.subsets == {"all": NAMES} and len(set(s.file)) == 30
    assert ds.normalization == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def test_load_resizes_like_a_bilinear_upsample(cifar):
    truth, root = cifar
    ds = load_cifar10(root, image_size=64)
    image, boxes = ds.load(23)  # third test image
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert np.isnan(boxes).all() and boxes.shape == (MAX_INSTANCES, 4)
    original = torch.from_numpy(truth["test"][0][3]).permute(2, 0, 1)[None].float()
    reference = torch.nn.functional.interpolate(original, size=64, mode="bilinear",
                                                align_corners=False)[0] / 255
    assert np.abs(image - reference.numpy()).max() < 2.5 / 255  # PIL vs torch rounding
    same, _ = load_cifar10(root, image_size=32).load(23)
    np.testing.assert_array_equal(same * 255, truth["test"][0][3].transpose(2, 0, 1))


def test_batches_folder_itself_and_ignored_options(cifar):
    _, root = cifar
    ds = load_cifar10(os.path.join(root, "cifar-10-batches-py"), image_size=8,
                      max_instances=2, classes=None, test_fraction=0.5)
    assert len(ds) == 30 and ds.spec["image_size"] == 8
    again = load_cifar10(**ds.spec)
    np.testing.assert_array_equal(again.pixels, ds.pixels)


def test_errors_never_download(tmp_path):
    with pytest.raises(FeatlabError, match="does not exist.*never downloads"):
        load_cifar10(tmp_path / "missing")
    with pytest.raises(FeatlabError, match="no CIFAR-10 batches.*download=True"):
        load_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(b"garbage")
    with pytest.raises(FeatlabError, match="cannot read the CIFAR-10 batches"):
        load_cifar10(tmp_path)


def test_pil_and_array_agree_on_channel_order(cifar):
    truth, root = cifar
    ds = load_cifar10(root, image_size=32)
    image, _ = ds.load(0)
    expected = np.asarray(Image.fromarray(truth["train"][0][0]), dtype=np.float32) / 255
    np.testing.assert_array_equal(image, expected.transpose(2, 0, 1))
