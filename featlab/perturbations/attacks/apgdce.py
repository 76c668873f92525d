"""APGD-CE: auto-PGD on the cross-entropy loss, Linf.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Section 3 (Algorithm 1, the
iteration in :mod:`._apgd`) with the cross entropy as ``f``; the first attack of AutoAttack.
Only correctly classified points are attacked; ``n_restarts`` runs from new random starts
on the points still robust. Each image is returned as its last misclassified iterate, or
unchanged when no run breaks it (as the authors' code and torchattacks do), so a robust
image's features are its clean features. With the same seed in ``generator`` as in
``torch.manual_seed`` it gives the iterates of ``torchattacks.APGD(loss='ce')``.
"""
from __future__ import annotations

from ..registry import PERTURBATIONS
from ._apgd import APGD_STEPS, N_RESTARTS, RHO, apgd_run
from ._base import LINF_PARAMS
from ._common import space_scale
from ._losses import cross_entropy
from ._robust import RobustComponent, attack_robust


@PERTURBATIONS.register("apgdce")
class APGDCE(RobustComponent):
    """APGD with the cross-entropy loss (Croce & Hein 2020)."""

    name = "apgdce"
    params = LINF_PARAMS + (APGD_STEPS, N_RESTARTS, RHO)

    @staticmethod
    def run(images, shared, model, generator, params) -> tuple:
        """``(adv, robust, broken_by)`` of :func:`._robust.attack_robust`."""
        eps = params["eps"] * space_scale(params["eps_space"], model, images)
        labels = shared["target"]

        def one_run(x, y, rows):
            return apgd_run(model, x, y, lambda logits: cross_entropy(logits, y), eps,
                            params["steps"], params["rho"], generator)

        return attack_robust(images, labels, shared["correct"],
                             [one_run] * params["n_restarts"])
