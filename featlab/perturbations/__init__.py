"""Perturbations ("conditions"), dispatched by name through :data:`PERTURBATIONS`."""
from .registry import PERTURBATIONS

from . import clean, blur  # noqa: F401  (register entries)
from . import attacks  # noqa

__all__ = ["PERTURBATIONS"]
