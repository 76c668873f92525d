"""Perturbations ("conditions"), dispatched by name through :data:`PERTURBATIONS`."""
from .registry import PERTURBATIONS

from . import clean, blur  # noqa: F401  (register entries)
from . import corrupt, rotate, translate, color_shift, occlude  # noqa: F401  (per-image CPU)
from . import attacks  # noqa

__all__ = ["PERTURBATIONS"]
