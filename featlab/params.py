"""Parameters of condition families (perturbations, probes) and how values print.

A :class:`Param` declares one parameter of a registered perturbation or probe set;
:func:`format_value` is how values appear in canonical condition keys and head names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


def format_value(value) -> str:
    """``5.0`` -> ``"5"``, ``0.03`` -> ``"0.03"`` (10 significant digits); others as str."""
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


@dataclass(frozen=True)
class Param:
    """One parameter of a perturbation.

    ``kind`` converts the string from a condition (``float``, ``int``, ``str``);
    ``choices`` restricts a string; ``low``/``high`` bound a number (inclusive);
    ``multi`` marks the parameter that may take several values in one condition string
    (``blur:sigma=1:5:10``); ``default=None`` with ``required=True`` must be given.
    ``in_key=False``: left out of the canonical key while at its default (a parameter added
    later, so that stores written before it keep their condition keys).
    """

    name: str
    kind: Callable[[str], Any] = float
    default: Any = None
    required: bool = False
    choices: Optional[tuple] = None
    low: Optional[float] = None
    high: Optional[float] = None
    multi: bool = False
    help: str = ""
    in_key: bool = True
