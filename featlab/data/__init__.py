"""Dataset loaders, dispatched by name through :data:`DATASETS` (each module registers its
loader; ``DATASETS.get(name)`` imports it on first use)."""
from .registry import DATASETS, open_dataset

__all__ = ["DATASETS", "open_dataset"]
