"""Numbers as the report prints them: an estimate with its 95 % interval, table cells."""
from __future__ import annotations

import math


def ci(value, low, high, digits=2) -> str:
    """``0.62 [0.48, 0.74]``; ``n/a`` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def acc_row(row) -> str:
    """An accuracy row (``accuracy``, ``ci_low``, ``ci_high``) as :func:`ci`."""
    return ci(row["accuracy"], row["ci_low"], row["ci_high"])


def table(columns, rows, caption="") -> dict:
    """A table item of a section: ``columns`` (header cells) and ``rows`` (lists of str)."""
    return dict(kind="table", columns=[str(c) for c in columns],
                rows=[[str(c) for c in r] for r in rows], caption=caption)


def figure(png: str, caption: str) -> dict:
    """A figure item of a section: the PNG file and what featlab measured."""
    return dict(kind="figure", png=png, caption=caption)


def strength(param: str, value: float) -> str:
    return f"{ {'sigma': 'σ', 'eps': 'ε'}.get(param, param)}={value:g}"
