"""Input checks shared by the local-property analyses (one line a user can act on)."""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError

MIN_COPIES = 3


def finite_array(a, name: str, ndim=None, dtype=np.float64) -> np.ndarray:
    """``a`` as an ndarray of ``dtype``; FeatlabError if non-finite or of the wrong rank."""
    try:
        a = np.asarray(a, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise FeatlabError(f"{name} must be numeric: {exc}") from None
    if ndim is not None and a.ndim not in np.atleast_1d(ndim):
        raise FeatlabError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        where = np.argwhere(bad)[0].tolist()
        raise FeatlabError(
            f"{name} holds {int(bad.sum())} non-finite values (first at index {where}); "
            "re-extract the features or drop those samples")
    return a


def enough_copies(t: int, what: str = "perturbed copies") -> None:
    """FeatlabError unless there are at least :data:`MIN_COPIES` copies per sample."""
    if t < MIN_COPIES:
        raise FeatlabError(
            f"at least {MIN_COPIES} {what} per sample are needed, got {t}; "
            "extract the probe condition with a larger T (e.g. copies=100)")


def one_of(value, choices, name: str):
    if value not in choices:
        raise FeatlabError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
