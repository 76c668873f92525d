"""Training recipes, one per file, dispatched by name through :data:`RECIPES`.

``standard``, ``fgsm-at``, ``mat-mixed``, ``mat-parallel``, ``mixup``, ``tlat``, ``mtlat``,
``iat``; each is a :class:`~.base.Recipe` whose ``step`` returns one batch's loss.
"""
from ...registry import Registry

RECIPES = Registry("recipe")

from . import standard, fgsm_at, mat_mixed, mat_parallel, mixup, tlat, mtlat, iat  # noqa: E402,F401
from .base import Recipe, StepContext, StepResult  # noqa: E402

__all__ = ["RECIPES", "Recipe", "StepContext", "StepResult"]
