"""The registry of dataset loaders. Entries are declared here (their names are known without
importing the loaders) and registered by their modules."""
import inspect

from ..registry import Registry

DATASETS = Registry("dataset", declared={
    "coco": "featlab.data.coco",
    "cifar10": "featlab.data.cifar10",
    "imagefolder": "featlab.data.imagefolder",
    "synthetic": "featlab.data.synthetic",
})


def open_dataset(name: str, root: str, options: dict, cache_dir=None):
    """``DATASETS.get(name)(root, **options)``, handing featlab's cache folder ``cache_dir``
    to the loaders that keep one (COCO's per-file selection cache), so that no loader falls
    back to ``./cache`` when the caller named another; a ``cache_dir`` in ``options`` wins."""
    loader = DATASETS.get(name)
    options = dict(options)
    if cache_dir is not None and "cache_dir" in inspect.signature(loader).parameters:
        options.setdefault("cache_dir", cache_dir)
    return loader(root, **options)
