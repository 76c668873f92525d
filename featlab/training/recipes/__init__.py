"""Training recipes, one per file, dispatched by name through :data:`TRAIN_RECIPES`.

``standard``, ``fgsm-at``, ``mat-mixed``, ``mat-parallel``, ``mixup``, ``tlat``, ``mtlat``,
``iat``; each is a :class:`~.base.Recipe` whose ``step`` returns one batch's loss.
"""
from . import fgsm_at, iat, mat_mixed, mat_parallel, mixup, mtlat, standard, tlat  # noqa: F401
from .base import Recipe, StepContext, StepResult
from .registry import TRAIN_RECIPES

__all__ = ["TRAIN_RECIPES", "Recipe", "StepContext", "StepResult"]
