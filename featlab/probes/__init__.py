"""Probe sets for the local-property analyses (Aghdam, Heravi & Puig, VISAPP 2017).

A probe set is not an image perturbation: for a seeded selection of test images it feeds
``copies`` perturbed copies of each image, at each radius, to every backbone (the extractor's
:class:`~featlab.extraction.probing.ProbeRunner` does the work). Probe sets are registered in
:data:`PROBES` under the names used in condition strings (``isotropy``, ``symmetry``); the
array math is in :mod:`.sets`.
"""
from .registry import PROBES

from . import base  # noqa: F401  (register entries)
from .base import Probe

__all__ = ["PROBES", "Probe"]
