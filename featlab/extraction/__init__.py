"""Extraction: dataset -> perturbation -> backbones -> store."""
from .pipeline import ExtractionSpec, extract

__all__ = ["ExtractionSpec", "extract"]
