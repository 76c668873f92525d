"""CIFAR-10 from a local torchvision root, as the fusion paper uses it (Section 2.2).

The official split (50 000 train / 10 000 test), images resized to ``image_size`` (224 in
the paper) and normalized with the CIFAR-10 mean and standard deviation. The
normalization is not applied here: :attr:`Cifar10Dataset.normalization` tells the model
wrapper to apply it, so images stay in ``[0, 1]`` like every other dataset. CIFAR has no
boxes (all NaN). featlab never downloads the data.
"""
from __future__ import annotations

import logging
import numbers
import os
import pickle

import numpy as np
from PIL import Image
from torchvision.datasets import CIFAR10

from ..errors import FeatlabError
from .registry import DATASETS
from .base import MAX_INSTANCES, ImageDataset, SampleTable
from .images import resize_rgb, to_chw_float

logger = logging.getLogger(__name__)

FOLDER = "cifar-10-batches-py"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SUPERCATEGORY = {"airplane": "vehicle", "automobile": "vehicle", "ship": "vehicle",
                 "truck": "vehicle", "bird": "animal", "cat": "animal", "deer": "animal",
                 "dog": "animal", "frog": "animal", "horse": "animal"}
FILES = tuple(name for name, _ in CIFAR10.train_list + CIFAR10.test_list) \
    + (CIFAR10.meta["filename"],)


class LocalCIFAR10(CIFAR10):
    """torchvision's CIFAR-10 reader with its md5 checks relaxed to existence checks.

    torchvision compares the md5 of every batch file with the published archive's. featlab
    accepts any batch files in the same pickle format (e.g. re-written test fixtures) and
    checks their *format* instead (:func:`_check_format`); it never downloads.
    ``folder`` replaces the ``cifar-10-batches-py`` folder name.
    """

    def __init__(self, root: str, folder: str = FOLDER, train: bool = True):
        self.base_folder = folder
        super().__init__(root, train=train, download=False)

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, name)) for name in FILES)

    def _load_meta(self) -> None:
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        with open(path, "rb") as handle:
            self.classes = list(pickle.load(handle, encoding="latin1")[self.meta["key"]])
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class Cifar10Dataset(ImageDataset):
    """CIFAR-10 rows (train first, then test); see :func:`load_cifar10`.

    Attributes
    ----------
    pixels : ndarray of shape (n, 32, 32, 3), uint8 — the original images, table order
    """

    normalization = (MEAN, STD)

    def __init__(self, *, name, root, samples, image_size, spec, pixels):
        self.name, self.root, self.samples = name, root, samples
        self.image_size, self.spec, self.pixels = image_size, spec, pixels

    def load(self, index: int):
        """Image (3, S, S) float32 in [0, 1] (bilinear resize) and all-NaN boxes."""
        image = resize_rgb(Image.fromarray(self.pixels[index]), self.image_size)
        return to_chw_float(image), np.full((MAX_INSTANCES, 4), np.nan, dtype=np.float32)

    def subset_rows(self, rows) -> None:
        """Keep only ``rows`` (the pixel array follows the table)."""
        super().subset_rows(rows)
        self.pixels = self.pixels[np.asarray(rows)]

    def __repr__(self) -> str:
        return f"Cifar10Dataset(name={self.name!r}, root={self.root!r}, n={len(self)})"


@DATASETS.register("cifar10")
def load_cifar10(root, *, image_size=224, seed=0, name="cifar10",
                 **ignored_coco_options) -> Cifar10Dataset:
    """Load CIFAR-10 from ``root/cifar-10-batches-py/`` (or that folder itself).

    Parameters
    ----------
    root : str — a torchvision CIFAR-10 root
    image_size : int — ``load`` returns ``image_size x image_size`` images
    seed : int — recorded only (the split is the official one)
    name : str — the dataset's name (recorded in ``spec``)
    **ignored_coco_options — COCO selection options (``classes``, ``max_instances`` ...),
        accepted so one call serves every dataset, and ignored
    """
    if not isinstance(image_size, numbers.Integral) or image_size < 1:
        raise FeatlabError(f"image_size must be >= 1, got {image_size!r}")
    if ignored_coco_options.get("classes") is not None:
        logger.warning("cifar10 uses all 10 classes; ignoring classes=%r",
                       ignored_coco_options["classes"])
    root = os.path.abspath(os.path.expanduser(str(root)))
    folder = _find_batches(root)
    parts = [_read_split(folder, train) for train in (True, False)]
    pixels = np.concatenate([p[0] for p in parts])
    label = np.concatenate([p[1] for p in parts])
    classes = parts[0][2]
    split = np.array(["train"] * len(parts[0][1]) + ["test"] * len(parts[1][1]), dtype="<U5")
    prefix = os.path.relpath(folder, root)
    prefix = "" if prefix == "." else prefix + "/"
    index = np.concatenate([np.arange(len(p[1])) for p in parts])
    n = len(label)
    class_super = [SUPERCATEGORY.get(c, "unknown") for c in classes]
    samples = SampleTable(
        image_id=np.arange(n, dtype=np.int64),
        file=np.array([f"{prefix}{s}[{i}]" for s, i in zip(split, index)], dtype=str),
        label=label, class_name=np.asarray(classes, dtype=str)[label],
        supercategory=np.asarray(class_super, dtype=str)[label], split=split,
        boxes=np.full((n, MAX_INSTANCES, 4), np.nan, dtype=np.float32),
        width=np.full(n, 32, dtype=np.int64), height=np.full(n, 32, dtype=np.int64),
        classes=classes, class_supercategory=class_super, subsets={"all": list(classes)})
    spec = dict(name=name, root=root, image_size=int(image_size), seed=seed)
    logger.info("%s: %d train + %d test images from %s", name, len(parts[0][1]),
                len(parts[1][1]), folder)
    return Cifar10Dataset(name=name, root=root, samples=samples, image_size=int(image_size),
                          spec=spec, pixels=pixels)


def _how_to_get(root: str) -> str:
    return (f"expected {root}/{FOLDER}/ holding {', '.join(FILES)} (the python version); "
            "featlab never downloads: on a machine with internet run "
            f"torchvision.datasets.CIFAR10(ROOT, download=True) and copy ROOT/{FOLDER} here")


def _find_batches(root: str) -> str:
    if not os.path.isdir(root):
        raise FeatlabError(f"CIFAR-10 root {root} does not exist or is not a folder; "
                           f"{_how_to_get(root)}")
    for folder in (os.path.join(root, FOLDER), root):
        if all(os.path.isfile(os.path.join(folder, name)) for name in FILES):
            return folder
    raise FeatlabError(f"no CIFAR-10 batches under {root}; {_how_to_get(root)}")


def _read_split(folder: str, train: bool):
    """(pixels (n, 32, 32, 3) uint8, labels (n,) int64, class names) of one split."""
    parent, name = os.path.split(folder)
    try:
        reader = LocalCIFAR10(parent, folder=name, train=train)
    except (OSError, ValueError, KeyError, EOFError, RuntimeError,
            pickle.UnpicklingError) as exc:
        raise FeatlabError(f"cannot read the CIFAR-10 batches in {folder} "
                           f"({type(exc).__name__}: {exc}); they must be the python-version "
                           f"pickles; {_how_to_get(os.path.dirname(folder))}") from None
    return _check_format(reader, folder)


def _check_format(reader: CIFAR10, folder: str):
    pixels = np.asarray(reader.data)
    labels = np.asarray(reader.targets, dtype=np.int64)
    classes = [str(c) for c in reader.classes]
    problem = None
    if pixels.dtype != np.uint8 or pixels.shape[1:] != (32, 32, 3):
        problem = f"images are {pixels.dtype} {pixels.shape[1:]}, expected uint8 3x32x32"
    elif len(labels) != len(pixels):
        problem = f"{len(labels)} labels for {len(pixels)} images"
    elif len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        problem = f"labels outside 0..{len(classes) - 1}"
    if problem:
        raise FeatlabError(f"CIFAR-10 batches in {folder} are malformed: {problem}")
    return np.ascontiguousarray(pixels), labels, classes
