"""Backbones, dispatched by name through :data:`BACKBONES`.

Each entry is a function ``build(weights=None, cache_dir=None) -> Backbone``.
"""
from ..registry import Registry

BACKBONES = Registry("backbone")

from . import torchvision_r18, places365, synthetic  # noqa: E402,F401  (register entries)
from .base import Backbone, capture_features, resolve_device  # noqa: E402

__all__ = ["BACKBONES", "Backbone", "capture_features", "resolve_device"]
