"""Dataset loaders, dispatched by name through :data:`DATASETS`."""
from ..registry import Registry

DATASETS = Registry("dataset")

from . import coco, cifar10, synthetic  # noqa: E402,F401  (register entries)

__all__ = ["DATASETS"]
