"""Input checks, in one place: each raises :class:`~featlab.errors.FeatlabError` (a
``ValueError``) with one line that says what was expected, what was received, what to do."""
from __future__ import annotations

import numpy as np

from ..errors import FeatlabError

MIN_COPIES = 3  # perturbed copies per sample the local-property statistics need
MIN_RESAMPLES = 100  # bootstrap resamples behind a 95 % interval that marks a difference


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


def enough_resamples(n_boot, name: str = "--n-boot") -> int:
    """``n_boot`` as an int >= :data:`MIN_RESAMPLES`: fewer resamples give 2.5 % / 97.5 %
    quantiles of a handful of values (0 resamples: a 0-width interval), so a mark drawn
    from them says nothing."""
    return positive_int(n_boot, name, low=MIN_RESAMPLES,
                        hint=f"; the 95 % bootstrap intervals need at least {MIN_RESAMPLES} "
                             f"resamples (1000 is the default)")


def one_of(value, choices, name: str):
    if value not in choices:
        raise FeatlabError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_features(X, name="X"):
    """X as a 2-D float array (float32 kept, other dtypes to float64); FeatlabError on
    a wrong rank or on NaN/inf rows (filter them first)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise FeatlabError(f"{name} must have shape (n_samples, n_features); got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise FeatlabError(f"{name} has {int(bad.sum())} rows with NaN or inf (first: row "
                           f"{int(np.flatnonzero(bad)[0])}); drop them before fitting, e.g. "
                           f"keep = np.isfinite({name}).all(axis=1)")
    return X


def finite_number(value, name: str, *, low=None, high=None, low_open=False, hint=""):
    """``value`` as a finite float in [low, high] (``low_open``: > low); FeatlabError otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise FeatlabError(f"{name}={value!r}: expected a number{hint}") from None
    bad = not np.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) \
        or (high is not None and value > high)
    if bad:
        lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
        hi = "" if high is None else f"<= {high:g}"
        want = " and ".join(t for t in (lo, hi) if t) or "finite"
        raise FeatlabError(f"{name}={value:g}: expected a finite number {want}{hint}")
    return value


def positive_int(value, name: str, *, low=1, hint=""):
    """``value`` as an int >= ``low``; FeatlabError otherwise."""
    try:
        bad = isinstance(value, bool) or not float(value).is_integer() or int(value) < low
    except (TypeError, ValueError, OverflowError):
        bad = True
    if bad:
        raise FeatlabError(f"{name}={value!r}: expected an integer >= {low}{hint}")
    return int(value)
