"""Perturbations ("conditions"), dispatched by name through :data:`PERTURBATIONS`."""
from ..registry import Registry

PERTURBATIONS = Registry("perturbation")

from . import clean, blur, probes  # noqa: E402,F401  (register entries)
from . import attacks  # noqa
from .conditions import Condition, parse_condition, parse_conditions  # noqa: E402

__all__ = ["PERTURBATIONS", "Condition", "parse_condition", "parse_conditions"]
