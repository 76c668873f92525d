"""``mat-parallel``: parallel multi-strength adversarial training, MAT paper Section 4.2.

S copies of the network; copy k minimises Eq. (3),
``J_{P,k} = sum_i J(theta, X_i, T_i) + sum_i J(theta, f_k(X_i), T_i)`` — the clean batch
and its FGSM examples at strength k (``mat-mixed``'s loss with one strength). After
training, the voting coefficients ``a_k`` of Eq. (4) are fitted on a validation split
carved from the training split (:mod:`featlab.mat.voting`) and the copies are saved
as one voting ensemble (:mod:`featlab.backbones.ensemble`).
"""
from __future__ import annotations

from .registry import TRAIN_RECIPES
from .mat_mixed import MatMixed


@TRAIN_RECIPES.register("mat-parallel")
class MatParallel(MatMixed):
    """Each copy trained like ``mat-mixed`` with its own single strength."""

    name = "mat-parallel"
    paper = "MAT Sec. 4.2, Eqs. (3)-(4)"
    parallel = True
