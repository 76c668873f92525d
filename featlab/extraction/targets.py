"""Classifiers that gradient attacks are run against (filled in by the attacks work)."""
from __future__ import annotations

from ..errors import FeatlabError


class TargetModels:
    """Builds the model a condition's perturbation needs (none for clean and blur)."""

    def __init__(self, root, models, device):
        self.root, self.models, self.device = root, models, device

    def describe(self, condition) -> dict:
        return {}

    def model_for(self, condition):
        raise FeatlabError(f"condition {condition.key} needs a target classifier, which this "
                           f"featlab cannot build yet")

    def extras(self, condition, model, adv, labels) -> dict:
        return {}
