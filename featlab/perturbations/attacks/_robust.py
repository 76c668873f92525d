"""AutoAttack's book-keeping: attack only what is still classified correctly, keep the first hit.

Croce & Hein (ICML 2020, Section 5) run every attack, every restart and every target class
only on the points that no earlier run has broken, and return, per point, the first
adversarial example found (the clean image when none is). :func:`attack_robust` is that
loop; the components (:mod:`.apgdce`, :mod:`.apgdt`, :mod:`.fab`, :mod:`.square`) and the
ensemble (:mod:`.autoattack`) are built on it, so a point that is misclassified to begin
with is never attacked and is returned unchanged.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

from ...errors import FeatlabError
from ._base import Attack

# one run: (images, labels, rows of the batch) -> (candidates, fooled), on the given rows only
Run = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple]


@torch.no_grad()
def clean_state(model, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """What every component needs once per batch: ``target`` (the labels), ``logits``
    of shape (n, K) on the clean images and ``correct`` of shape (n,)."""
    logits = model(images)
    return {"target": labels, "logits": logits, "correct": logits.argmax(1) == labels}


def attack_robust(images: torch.Tensor, labels: torch.Tensor, robust: torch.Tensor,
                  runs: Iterable[Run]) -> tuple:
    """Apply ``runs`` in order, each to the rows that are still ``robust``.

    Parameters
    ----------
    images : Tensor of shape (n, C, H, W) — clean images in [0, 1]
    labels : Tensor of shape (n,)
    robust : bool Tensor of shape (n,) — rows to attack (the correctly classified ones)
    runs : iterable of callables ``run(images[rows], labels[rows], rows)`` returning
        ``(candidates, fooled)`` of shapes (m, C, H, W) and (m,)

    Returns
    -------
    adv : Tensor of shape (n, C, H, W) — each row's first successful candidate, else clean
    robust : bool Tensor of shape (n,) — rows that no run broke
    broken_by : int64 Tensor of shape (n,) — index of the run that broke the row, -1 if none
    """
    adv, robust = images.clone(), robust.clone()
    broken_by = torch.full((len(images),), -1, dtype=torch.int64, device=images.device)
    for index, run in enumerate(runs):
        rows = robust.nonzero().flatten()
        if len(rows) == 0:
            break
        candidates, fooled = run(images[rows], labels[rows], rows)
        hit = rows[fooled]
        adv[hit] = candidates[fooled].to(adv.dtype)
        robust[hit] = False
        broken_by[hit] = index
    return adv, robust, broken_by


def ranked_targets(logits: torch.Tensor, count: int) -> list:
    """Target labels of the targeted runs: the 2nd, 3rd, ... largest clean logit of each row.

    Returns a list of ``min(count, K - 1)`` int64 Tensors of shape (n,).
    """
    order = logits.argsort(dim=1, descending=True)
    return [order[:, rank] for rank in range(1, min(count, logits.shape[1] - 1) + 1)]


def predict_batch(model, images: torch.Tensor) -> torch.Tensor:
    """Arg-max class of ``model`` on ``images`` (one forward, no graph), shape (n,)."""
    with torch.no_grad():
        return model(images).argmax(1)


class RobustComponent(Attack):
    """Base of the AutoAttack components: the clean state once per batch (:func:`clean_state`),
    and ``attack`` = the adversarial images of :meth:`run`, which returns
    ``(adv, robust, broken_by)`` of :func:`attack_robust`."""

    @classmethod
    def check_classes(cls, key: str, params: dict, n_classes: int) -> None:
        """Refuse (one line, before a run) an ``n_target_classes`` the classifier cannot give:
        the targets are the 2nd to (n+1)-th largest of ``n_classes`` logits, so at most
        ``n_classes - 1``. The default (9, AutoAttack's) tries every class when there are
        fewer (recorded as ``target_classes``, :meth:`class_record`); another value must be
        honoured."""
        wanted = params.get("n_target_classes")
        default = next((p.default for p in cls.params if p.name == "n_target_classes"), None)
        if wanted is None or wanted == default or wanted <= n_classes - 1:
            return
        raise FeatlabError(f"condition {key}: n_target_classes={wanted}, but the store has "
                           f"{n_classes} classes, so at most {n_classes - 1} target classes "
                           f"exist; use n_target_classes={n_classes - 1} or fewer")

    @classmethod
    def class_record(cls, params: dict, n_classes: int) -> dict:
        """What a condition records beside its key about the classes it ran on: the number
        of target classes tried (``target_classes``), which the default caps at K - 1."""
        wanted = params.get("n_target_classes")
        return {} if wanted is None else {"target_classes": min(wanted, n_classes - 1)}

    def prepare(self, images, labels, model, generator) -> dict:
        return clean_state(model, images, labels)

    def attack(self, images, shared, model, generator, params) -> torch.Tensor:
        return self.run(images, shared, model, generator, params)[0]

    @staticmethod
    def run(images, shared, model, generator, params) -> tuple:
        raise NotImplementedError
