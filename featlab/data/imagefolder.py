"""Any folder of images in torchvision's ImageFolder layout: ``root/<class>/<image>``.

Classes are the sub-folders (sorted by name, as :class:`torchvision.datasets.ImageFolder`
sorts them), images every file with one of torchvision's image extensions, in the order
of torchvision's :func:`~torchvision.datasets.folder.make_dataset`, so that on a tree of
plain folders row ``i`` is ``ImageFolder(root).samples[i]``. Unlike torchvision, featlab
does not follow folder links (one can loop, ``ln -s .. root/a/loop``, or reach outside the
tree; they are skipped with a warning), skips hidden folders and files (``.hidden/``,
``._x.jpg``: not classes, not images), and keeps each file once by its resolved path (an
image also reached through a file link is one sample, labelled by the folder it lies in).
There are no boxes (conditions that need them, ``region=object`` or ``region=background``,
are refused before a run starts) and no supercategories (the only class subset is ``all``). The split is featlab's seeded,
class-stratified one. Image sizes are not read at load time (``width``/``height`` are 0):
files are opened only when decoded.
"""
from __future__ import annotations

import logging
import numbers
import os

import numpy as np

from ..errors import FeatlabError
from .registry import DATASETS
from .base import MAX_INSTANCES, ImageDataset, SampleTable
from .images import decode_resized
from .coco_selection import stratified_split

logger = logging.getLogger(__name__)


class ImageFolderDataset(ImageDataset):
    """Rows of an image folder; see :func:`load_imagefolder`."""

    normalization = None

    def __init__(self, *, name, root, samples, image_size, spec):
        self.name, self.root, self.samples = name, root, samples
        self.image_size, self.spec = image_size, spec

    def load(self, index: int):
        """Image (3, S, S) float32 in [0, 1] and all-NaN boxes (MAX_INSTANCES, 4)."""
        path = os.path.join(self.root, str(self.samples.file[index]))
        image, _ = decode_resized(path, self.image_size)
        return image, np.full((MAX_INSTANCES, 4), np.nan, dtype=np.float32)

    def __repr__(self) -> str:
        return (f"ImageFolderDataset(root={self.root!r}, n={len(self)}, "
                f"classes={len(self.samples.classes)})")


def _class_folders(root: str, links: list) -> list[str]:
    """Sorted names of the class folders of ``root``: sub-folders that are neither hidden nor
    links (links are appended to ``links``)."""
    try:
        entries = list(os.scandir(root))
    except OSError as err:
        raise FeatlabError(f"cannot list image folder {root} ({err.strerror})") from None
    found = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            links.extend([entry.name] if entry.is_dir() else [])
        elif entry.is_dir(follow_symlinks=False):
            found.append(entry.name)
    return sorted(found)


def _image_files(folder: str, links: list) -> list[str]:
    """Image files under ``folder`` in torchvision's order (walked folders sorted by path,
    files by name), without entering hidden folders or folder links (appended to
    ``links``) and without hidden files."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    walked = []
    for top, dirs, files in os.walk(folder):  # os.walk never descends into folder links
        links.extend(os.path.join(top, d) for d in dirs if os.path.islink(os.path.join(top, d)))
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and not os.path.islink(os.path.join(top, d))]
        walked.append((top, files))
    return [os.path.join(top, name) for top, files in sorted(walked) for name in sorted(files)
            if not name.startswith(".") and has_file_allowed_extension(name, IMG_EXTENSIONS)]


def _one_per_file(root: str, items: list) -> list:
    """``items`` (path, label) with each file once, by resolved path: a file reached through
    a file link as well is kept where the file itself lies (its folder gives its class)."""
    real = [os.path.realpath(path) for path, _ in items]
    first: dict = {}
    for i, target in enumerate(real):
        own = items[i][0] == target
        if target not in first or own and items[first[target]][0] != target:
            first[target] = i
    keep = sorted(first.values())
    if len(keep) < len(items):
        dropped = [items[i][0] for i in range(len(items)) if i not in set(keep)]
        logger.warning("%s: %d file link(s) lead to images already in the tree; each image is "
                       "one sample (e.g. %s)", root, len(dropped),
                       os.path.relpath(dropped[0], root))
    return [items[i] for i in keep]


def _find(root: str, classes):
    """Class names in label order and the (path, label) rows of the tree."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    links: list = []
    found = _class_folders(root, links)
    if not found:
        raise FeatlabError(f"no class folders in {root}; expected the ImageFolder layout "
                           f"root/<class>/<image> (e.g. {root}/dog/001.jpg)"
                           + (f"; folder links are not followed ({links[0]})" if links else ""))
    if classes is not None:
        unknown = [c for c in classes if c not in found]
        if unknown:
            raise FeatlabError(f"unknown class(es) {unknown} in {root}; available: "
                               f"{', '.join(found)}")
        found = list(classes)
    index = {c: i for i, c in enumerate(found)}
    items = [(path, index[c]) for c in sorted(found)
             for path in _image_files(os.path.join(root, c), links)]
    empty = sorted(set(found) - {found[k] for _, k in items})
    if empty:
        raise FeatlabError(f"Found no valid file for the classes {', '.join(empty)} in {root}; "
                           f"each class folder needs at least one image "
                           f"({', '.join(IMG_EXTENSIONS)})")
    if links:
        logger.warning("%s: %d folder link(s) not followed (a link can loop or leave the tree; "
                       "link image files instead): %s", root, len(links),
                       ", ".join(os.path.relpath(os.path.join(root, p), root) for p in links[:3]))
    return found, _one_per_file(root, items)


@DATASETS.register("imagefolder")
def load_imagefolder(root, *, image_size=224, seed=0, classes=None, test_fraction=0.25,
                     name="imagefolder", **ignored_coco_options) -> ImageFolderDataset:
    """Load an ImageFolder root.

    Parameters
    ----------
    root : str — ``root/<class>/<image>``
    image_size : int — ``load`` returns ``image_size x image_size`` images
    seed : int — seeds the stratified split
    classes : list of str or None — class folders to keep, in label order (None: all, sorted)
    test_fraction : float — per-class fraction of images in the test split
    name : str — the dataset's name (recorded in ``spec``)
    **ignored_coco_options — COCO selection options, accepted and ignored
    """
    root = os.path.abspath(os.path.expanduser(str(root)))
    if not os.path.isdir(root):
        raise FeatlabError(f"image folder {root} does not exist or is not a folder")
    if not isinstance(image_size, numbers.Integral) or image_size < 1:
        raise FeatlabError(f"image_size must be >= 1, got {image_size!r}")
    if not (isinstance(test_fraction, numbers.Real) and 0 <= test_fraction < 1):
        raise FeatlabError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    found, items = _find(root, classes)
    n = len(items)
    label = np.array([k for _, k in items], dtype=np.int64)
    names = np.asarray(found, dtype=str)[label] if n else np.array([], dtype=str)
    samples = SampleTable(
        image_id=np.arange(n, dtype=np.int64),
        file=np.array([os.path.relpath(p, root) for p, _ in items], dtype=str),
        label=label, class_name=names, supercategory=np.full(n, "none", dtype=str),
        split=stratified_split(label, found, seed, test_fraction),
        boxes=np.full((n, MAX_INSTANCES, 4), np.nan, dtype=np.float32),
        width=np.zeros(n, dtype=np.int64), height=np.zeros(n, dtype=np.int64),
        classes=list(found), class_supercategory=["none"] * len(found),
        subsets={"all": list(found)} if len(found) >= 2 else {})
    spec = dict(name=name, root=root, classes=list(found), image_size=int(image_size),
                seed=int(seed), test_fraction=float(test_fraction))
    logger.info("%s: %d images in %d classes from %s", name, n, len(found), root)
    return ImageFolderDataset(name=name, root=root, samples=samples,
                              image_size=int(image_size), spec=spec)
