"""CPU analyses on a feature store, dispatched by name through :data:`ANALYSES`.

One room per capability, each holding the function named after its command:

* :mod:`.heads` — ``fit-head``: foreground, background and joint linear heads (solver,
  fusion, run, figures);
* :mod:`.shift` — ``pca-shift``: how a condition moves each backbone's features;
* :mod:`.local` — ``isotropy``, ``symmetry``, ``mantel``, ``lipschitz``: local properties
  from probe sets;
* :mod:`.robustness` — ``robustness``: the M-TLAT Table 1 for every classifier.

Each entry is ``run(store, **options) -> dict`` (JSON-able results; with ``out_dir`` the
figures and the JSON are written there, exactly as the CLI writes them).
"""
from .registry import ANALYSES

from .heads import run as _heads_run  # noqa: F401  (register entries)
from .local import run as _local_run  # noqa: F401
from .shift import run as _shift_run  # noqa: F401
from .robustness import run as _robustness_run  # noqa: F401

__all__ = ["ANALYSES"]
