"""CPU analyses on a feature store, dispatched by name through :data:`ANALYSES`.

Each entry is ``run(store, **options) -> dict`` (JSON-able results; figures written under
``out_dir`` when given). The CLI commands of the same names are thin wrappers.
"""
from ..registry import Registry

ANALYSES = Registry("analysis")

from . import run_heads, run_local, run_pca  # noqa: E402,F401  (register entries)

__all__ = ["ANALYSES"]
