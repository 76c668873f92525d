"""Backbones, dispatched by name through :data:`BACKBONES`.

Each entry is a function ``build(weights=None, cache_dir=None) -> Backbone``; its module is
imported on first ``BACKBONES.get(name)``. :mod:`.base` holds the wrapper and the feature
capture, :mod:`.classifier` backbone + head classifiers, :mod:`.roles` object vs scene.
"""
from .registry import BACKBONES

__all__ = ["BACKBONES"]
