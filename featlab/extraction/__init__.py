"""Extraction: dataset -> perturbation -> backbones -> store."""
from .run import extract
from .spec import ExtractionSpec

__all__ = ["ExtractionSpec", "extract"]
