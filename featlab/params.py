"""Parameters of condition families (perturbations, probes) and how values print.

A :class:`Param` declares one parameter of a registered perturbation or probe set;
:class:`ConditionType` is what every class registered under a condition name declares;
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


class ConditionType:
    """What every class registered under a condition name declares, with its default.

    The perturbations (:class:`featlab.perturbations.base.Perturbation`) and the probe sets
    (:class:`featlab.probes.base.Probe`) subclass it. Condition parsing
    (:mod:`featlab.conditions`) and extraction read these names, and only these, off a
    registered class; an entry overrides the ones that differ from the defaults.

    Attributes
    ----------
    name : str
        The registry name used in condition strings (``blur``, ``fgsm``, ``isotropy``).
    params : tuple of Param
        The parameters in canonical-key order.
    needs_boxes : bool
        Needs object boxes (``region=object`` blur, ...); extraction refuses a dataset
        without boxes unless the condition has ``region=all``.
    needs_model : bool
        Needs a differentiable classifier (the gradient attacks).
    per_image : bool
        Computed one image at a time on the CPU inside the decode workers
        (:mod:`featlab.extraction.cpu_perturb`), see
        :class:`featlab.perturbations.per_image.PerImagePerturbation`.
    """

    name: str = ""
    params: tuple = ()
    needs_boxes: bool = False
    needs_model: bool = False
    per_image: bool = False

    @classmethod
    def expand_values(cls, values: dict) -> dict:
        """Expand aliases among the parsed values before the product is taken.

        Parameters
        ----------
        values : dict
            Parameter name -> list of converted values (defaults filled in).

        Returns
        -------
        dict of the same form; the default returns ``values`` unchanged
        (``corrupt:name=imagenet-c`` becomes the 15 ImageNet-C corruptions).
        """
        return values

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Check one complete parameter setting (cross-parameter rules) and return it.

        Raises :class:`~featlab.errors.FeatlabError` with one line saying what to change;
        the default accepts every setting whose values passed their :class:`Param` checks.
        """
        return params

    @classmethod
    def check_classes(cls, key: str, params: dict, n_classes: int) -> None:
        """Refuse, before extraction writes anything, a setting the dataset's ``n_classes``
        cannot honour (e.g. more target classes than exist); the default accepts all."""

    @classmethod
    def class_record(cls, params: dict, n_classes: int) -> dict:
        """What a condition records in its ``condition.json`` about the classes it ran on
        (e.g. ``target_classes``); the default records nothing."""
        return {}
