"""APGD-T: targeted auto-PGD on the targeted DLR loss, Linf.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Sections 3-4: the APGD iteration
(:mod:`._apgd`) maximising DLR-T (Eq. 7, :func:`._losses.dlr_targeted`) towards each of the
``n_target_classes`` classes with the 2nd, 3rd, ... largest clean logits of the image (9
in AutoAttack, at most K - 1: the default tries every other class when K <= 10, a larger
value typed in the condition is refused before a run; ``condition.json`` records the number
tried as ``target_classes``), one after the other, each on the points still robust
(``n_restarts`` runs per target). It is an untargeted attack built from targeted runs: an
image counts as broken, and the stored success flag is set, when it is misclassified as any
class. Needs K >= 4 classes. Robust images are returned unchanged, broken ones as the last
misclassified iterate. With the same seed it gives the iterates of ``torchattacks.APGDT``
(which tries ``n_classes - 1`` targets).
"""
from __future__ import annotations

import logging

from ..registry import PERTURBATIONS
from ._apgd import APGD_STEPS, N_RESTARTS, N_TARGET_CLASSES, RHO, apgd_run
from ._base import LINF_PARAMS
from ._common import space_scale
from ._losses import check_classes, dlr_targeted
from ._robust import RobustComponent, attack_robust, ranked_targets

logger = logging.getLogger(__name__)


@PERTURBATIONS.register("apgdt")
class APGDT(RobustComponent):
    """Targeted APGD with the DLR-T loss over several target classes (Croce & Hein 2020)."""

    name = "apgdt"
    params = LINF_PARAMS + (APGD_STEPS, N_RESTARTS, RHO, N_TARGET_CLASSES)

    @staticmethod
    def run(images, shared, model, generator, params) -> tuple:
        """``(adv, robust, broken_by)`` of :func:`._robust.attack_robust`."""
        eps = params["eps"] * space_scale(params["eps_space"], model, images)
        check_classes(shared["logits"], 4, "apgdt (the targeted DLR loss)")
        targets = ranked_targets(shared["logits"], params["n_target_classes"])
        if len(targets) < params["n_target_classes"]:
            logger.debug("apgdt: %d classes, so %d target classes instead of %d",
                         shared["logits"].shape[1], len(targets), params["n_target_classes"])

        def run_towards(target):
            def one_run(x, y, rows):
                t = target[rows]
                return apgd_run(model, x, y, lambda logits: dlr_targeted(logits, y, t), eps,
                                params["steps"], params["rho"], generator)
            return one_run

        runs = [run_towards(t) for t in targets for _ in range(params["n_restarts"])]
        return attack_robust(images, shared["target"], shared["correct"], runs)
