"""AutoAttack, standard version: APGD-CE, APGD-T, FAB-T and Square, worst case per image.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Section 5: the four attacks run one
after the other, each only on the images that are still correctly classified, and an image
is robust only if all four fail. The stored image is the first successful adversarial
example (so a success flag means "some component broke it"), else the last component's
output, which is the clean image. Settings are those of the standard version:
one restart each, 100 iterations for APGD-CE, APGD-T (9 target classes, DLR-T loss) and
FAB-T (9 target classes), 5000 queries for Square (``p_init = 0.8``, schedule not rescaled).
Every component starts from the same generator state (as the reference gives each the same
seed), so with ``steps=10`` and the same seed, APGD-CE and APGD-T reproduce
``torchattacks.AutoAttack(version='standard')`` (whose components use 10 steps).

After each call, ``broken_by_`` holds, per setting of ``perturb_many`` / ``attack_many``,
an int64 tensor of shape (n,): the index in :data:`COMPONENTS` of the component that broke
each image, -1 for images that stay robust or were misclassified to begin with.
"""
from __future__ import annotations

import dataclasses
import logging

import torch

from ..registry import PERTURBATIONS
from ._apgd import APGD_STEPS, N_TARGET_CLASSES
from ._base import LINF_PARAMS
from ._robust import RobustComponent, attack_robust
from .apgdce import APGDCE
from .apgdt import APGDT
from .fab import FAB
from .square import SQUARE_PARAMS, Square

logger = logging.getLogger(__name__)

COMPONENTS = (("apgd-ce", APGDCE), ("apgd-t", APGDT), ("fab-t", FAB), ("square", Square))
AA_STEPS = dataclasses.replace(APGD_STEPS, help="iterations of APGD-CE, APGD-T and FAB-T (100)")
AA_QUERIES = dataclasses.replace(SQUARE_PARAMS[0], help="queries of Square (5000)")


@PERTURBATIONS.register("autoattack")
class AutoAttack(RobustComponent):
    """The standard AutoAttack ensemble, Linf (Croce & Hein 2020)."""

    name = "autoattack"
    params = LINF_PARAMS + (AA_STEPS, N_TARGET_CLASSES, AA_QUERIES)

    def attack_many(self, images, params_list, **kwargs) -> tuple:
        self.broken_by_ = []
        return super().attack_many(images, params_list, **kwargs)

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        state = generator.get_state() if generator is not None else None
        runs = [_component(cls, params, shared, model, generator, state) for _, cls in COMPONENTS]
        adv, robust, broken_by = attack_robust(images, shared["target"], shared["correct"], runs)
        counts = {name: int((broken_by == k).sum()) for k, (name, _) in enumerate(COMPONENTS)}
        logger.info("autoattack eps=%g: %d/%d robust (clean correct %d); broken by %s",
                    params["eps"], int(robust.sum()), len(images), int(shared["correct"].sum()),
                    counts)
        self.broken_by_.append(broken_by.cpu())
        return adv


def _component(cls, params: dict, shared: dict, model, generator, state):
    """A run of ``attack_robust``: component ``cls`` on the rows still robust, fresh seed."""
    own = {p.name for p in cls.params}
    settings = cls.validate_params({k: v for k, v in params.items() if k in own})

    def run(images, labels, rows):
        if state is not None:
            generator.set_state(state)
        sub = {"target": labels, "logits": shared["logits"][rows],
               "correct": torch.ones(len(rows), dtype=torch.bool, device=images.device)}
        adv, robust, _ = cls.run(images, sub, model, generator, settings)
        return adv, ~robust

    return run
