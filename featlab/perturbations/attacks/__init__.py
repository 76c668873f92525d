"""Gradient attacks as perturbations: one file per attack, registered by name.

``fgsm``, ``tfgsm`` (targeted FGSM, random target), ``bim``, ``pgd``, ``pgdll`` (PGD towards
the least likely class), ``mifgsm`` and ``cw`` (CW-L2); the AutoAttack family ``apgdce``,
``apgdt``, ``fab`` (FAB-T), ``square`` and the ensemble ``autoattack``. All take images in
[0, 1] and a classifier with normalization inside; see :class:`~._base.Attack` for the
contract.
"""
from ._base import Attack  # noqa: F401
from ._common import eval_mode, input_gradient, success_rate  # noqa: F401
from . import bim, cw, fgsm, mifgsm, pgd, pgdll, tfgsm  # noqa: F401  (register entries)
from . import apgdce, apgdt, autoattack, fab, square  # noqa: F401,E402  (AutoAttack family)

__all__ = ["Attack", "eval_mode", "input_gradient", "success_rate"]
