"""The training loop of one stage: a recipe applied to one or more networks, epoch by epoch.

SGD (momentum 0.9, Nesterov) with a one-cycle learning rate over all steps, as the
embedded backbones' pretraining. The first ``spec.resolved_clean_epochs()`` epochs train
``standard`` (clean batches), the rest the stage's recipe. Each epoch visits the training
images in a permutation drawn from ``(seed, stage, epoch)``; each step's random draws
(Mixup lambda, TLAT eps and targets) come from ``(seed, stage, epoch, step, network)``.
Nothing else is random, so a run is a pure function of its settings and can stop after any
epoch and continue (see :mod:`.checkpoint`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..utils.progress import progress
from ..utils.seeding import derive_seed, generator
from .checkpoint import checkpoint_path, load_checkpoint, restore, save_checkpoint
from .model import set_train_mode, trainable
from .output import check_finite
from .recipes import TRAIN_RECIPES, StepContext

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """``recipe`` trained on ``len(strengths)`` networks, network k at ``strengths[k]``."""

    name: str
    recipe: object
    strengths: list


def n_steps(n_images: int, batch_size: int) -> int:
    """Batches per epoch (a last batch of one image is dropped)."""
    full, rest = divmod(n_images, batch_size)
    return full + (rest >= 2)


def _optimizers(nets, spec, steps: int):
    opts = [torch.optim.SGD(trainable(n), lr=spec.lr, momentum=0.9, nesterov=True,
                            weight_decay=spec.weight_decay) for n in nets]
    scheds = [torch.optim.lr_scheduler.OneCycleLR(o, spec.lr, total_steps=spec.epochs * steps)
              for o in opts]
    return opts, scheds


def _step(net, recipe, x, y, ctx, opt, sched, train_layers):
    set_train_mode(net, train_layers)
    result = recipe.step(net, x, y, ctx)
    opt.zero_grad(set_to_none=True)
    result.loss.backward()
    opt.step()
    sched.step()
    with torch.no_grad():
        correct = (result.logits.argmax(1) == result.labels).sum().item()
    return result.loss.item(), correct, len(result.labels)


def run_stage(stage: Stage, nets, images, spec, *, fingerprint: str, device, n_classes: int,
              static=None):
    """Train ``nets`` (moved to ``device``) for ``spec.epochs`` epochs; returns the history,
    a list of per-epoch dicts with each network's mean loss and training accuracy.
    ``static``: the :class:`~.crafting.StaticSets` of ``images`` (FGSM examples from a
    fixed crafting model), or None (recipes craft against the network being trained)."""
    nets = [n.to(device) for n in nets]
    steps = n_steps(len(images), spec.batch_size)
    opts, scheds = _optimizers(nets, spec, steps)
    path = checkpoint_path(spec.out, stage.name)
    state = load_checkpoint(path, fingerprint, stage.name)
    history, start = [], 0
    if state is not None:
        restore(state, nets, opts, scheds)
        history, start = list(state["history"]), state["epoch"]
        log.info("%s: continuing %s after epoch %d/%d", spec.out, stage.name, start, spec.epochs)
    bar = progress(total=(spec.epochs - start) * steps * len(nets),
                   desc=f"train {stage.recipe.name} [{stage.name}]", unit="step")
    clean = spec.resolved_clean_epochs()
    for epoch in range(start, spec.epochs):
        began = time.perf_counter()
        recipe = TRAIN_RECIPES.get("standard")() if epoch < clean else stage.recipe
        order = torch.randperm(len(images), generator=generator(spec.seed, stage.name, epoch))
        totals = np.zeros((len(nets), 4))  # loss sum over steps, correct, seen, steps
        for step, (x, y, idx) in enumerate(images.batches(order, spec.batch_size,
                                                          positions=True)):
            x, y = x.to(device), y.to(device)
            sign = None if static is None else static.sign(idx, x, y)
            for k, net in enumerate(nets):
                parts = (spec.seed, stage.name, epoch, step, k)
                ctx = StepContext(n_classes=n_classes, strengths=stage.strengths[k],
                                  eps_max=spec.eps_max, mixup_alpha=spec.mixup_alpha,
                                  generator=generator(*parts),
                                  rng=np.random.default_rng(derive_seed(*parts)), sign=sign)
                loss, correct, count = _step(net, recipe, x, y, ctx, opts[k], scheds[k],
                                             spec.train_layers)
                totals[k] += (loss, correct, count, 1)
                bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{totals[:, 0].sum() / totals[:, 3].sum():.3f}",
                            acc=f"{totals[:, 1].sum() / totals[:, 2].sum():.3f}")
        history.append(dict(epoch=epoch + 1, recipe=recipe.name,
                            loss=[float(t[0] / max(t[3], 1)) for t in totals],
                            train_accuracy=[float(t[1] / max(t[2], 1)) for t in totals]))
        check_finite(nets, spec, stage.name, epoch + 1)
        save_checkpoint(path, fingerprint=fingerprint, stage=stage.name, epoch=epoch + 1,
                        nets=nets, optimizers=opts, schedulers=scheds, history=history)
        log.info("%s epoch %d/%d: loss %s, train accuracy %s (%.1f s)", stage.name, epoch + 1,
                 spec.epochs, _fmt(history[-1]["loss"]), _fmt(history[-1]["train_accuracy"]),
                 time.perf_counter() - began)
    bar.close()
    for net in nets:
        net.eval()
    return history


def _fmt(values) -> str:
    return ", ".join(f"{v:.3f}" for v in values)
