"""The registry of the perturbation family: entries register themselves on import of the package."""
from ..registry import Registry

PERTURBATIONS = Registry("perturbation")
