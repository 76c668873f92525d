"""Parameters of condition families (perturbations, probes) and how values print.

A :class:`Param` declares one parameter of a registered perturbation or probe set;
:func:`format_value` is how values appear in canonical condition keys and head names.
A parameter whose ``choices`` hold :data:`HEAD_CHOICE` also takes ``head:NAME``, any head
stored under that name (:func:`head_target`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


HEAD_PREFIX = "head:"
HEAD_CHOICE = HEAD_PREFIX + "NAME"  # the choice that stands for every stored head


def head_target(value):
    """``NAME`` of a ``head:NAME`` value, None for any other value."""
    if isinstance(value, str) and value.startswith(HEAD_PREFIX) and len(value) > len(HEAD_PREFIX):
        return value[len(HEAD_PREFIX):]
    return None


def format_value(value) -> str:
    """``5.0`` -> ``"5"``, ``0.03`` -> ``"0.03"`` (10 significant digits); others as str."""
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


@dataclass(frozen=True)
class Param:
    """One parameter of a perturbation.

    ``kind`` converts the string from a condition (``float``, ``int``, ``str``);
    ``choices`` restricts a string (:data:`HEAD_CHOICE` among them admits ``head:NAME``,
    :meth:`allows`); ``low``/``high`` bound a number (inclusive);
    ``multi`` marks the parameter that may take several values in one condition string
    (``blur:sigma=1:5:10``); ``default=None`` with ``required=True`` must be given;
    ``keyed_default=False`` leaves the parameter out of the canonical key while it has its
    default (a parameter added later keeps the keys of stored conditions valid).
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
    keyed_default: bool = True

    def allows(self, value) -> bool:
        """Is ``value`` one of ``choices`` (True when there are none)?"""
        if self.choices is None or value in self.choices:
            return True
        return HEAD_CHOICE in self.choices and head_target(value) is not None
