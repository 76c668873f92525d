"""The registry of training recipes (entries register themselves on import of the package)."""
from ...registry import Registry

RECIPES = Registry("recipe")
