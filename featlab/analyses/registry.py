"""The registry of the analyses: ``ANALYSES.get("fit-head")`` is the function behind the
command of that name (``run(store, **options) -> dict``)."""
from ..registry import Registry

ANALYSES = Registry("analysis")
