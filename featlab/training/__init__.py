"""Robust training end to end: ``featlab train`` (issue 9, sections 2-3).

``train(TrainSpec(...))`` trains a classifier with a registered recipe (``RECIPES``) and
writes it as a backbone file; :mod:`.random_walk` (MAT Section 4.3) and :mod:`.voting`
(Section 4.2) are pure functions shared with the head-level recipes.
"""
from .recipes import RECIPES
from .random_walk import random_walk_selection
from .spec import TrainSpec
from .train import train
from .voting import fit_voting

__all__ = ["RECIPES", "TrainSpec", "fit_voting", "random_walk_selection", "train"]
