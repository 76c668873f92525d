"""Robust training end to end: ``featlab train``.

``train(TrainSpec(...))`` trains a classifier with a registered recipe (``TRAIN_RECIPES``)
and writes it as a backbone file. MAT's strength selection (Section 4.3) and voting
(Section 4.2) are :mod:`featlab.mat`, shared with the head-level recipes.
"""
from .recipes import TRAIN_RECIPES
from .spec import TrainSpec
from .train import train

__all__ = ["TRAIN_RECIPES", "TrainSpec", "train"]
