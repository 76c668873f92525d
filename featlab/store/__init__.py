"""The HDF5 feature store (see :mod:`featlab.store.layout` for the on-disk layout)."""
from .featurestore import FeatureStore
from .layout import SCHEMA_VERSION
from .writer import StoreWriter

__all__ = ["FeatureStore", "StoreWriter", "SCHEMA_VERSION"]
