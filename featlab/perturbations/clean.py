"""The unperturbed condition."""
from .registry import PERTURBATIONS
from .base import Perturbation


@PERTURBATIONS.register("clean")
class Clean(Perturbation):
    """Identity: the images as decoded."""

    name = "clean"

    def perturb(self, images, **kwargs):
        return images
