"""``train(spec)``: train a classifier on a dataset's own classes and save it as a backbone.

Stages (each checkpointed per epoch, see :mod:`.loop`):

- one network (``standard``, ``fgsm-at``, ``mat-mixed``, ``mixup``, ``tlat``, ``mtlat``,
  ``iat``): stage ``main``;
- ``mat-parallel``: stage ``members``, one network per strength, then the voting
  coefficients fitted on the validation split (:mod:`.voting`);
- ``--strengths auto`` (MAT Section 4.3): stage ``candidates``, one single-strength network
  (Eq. 3) per candidate; the accuracy matrix A on the validation split; the random walk
  (:mod:`.random_walk`) picks the strengths; parallel MAT keeps the chosen candidates as its
  members, mixed MAT trains a new network on them (stage ``main``).

The result (:func:`featlab.backbones.trained.save_trained`) loads with
``featlab extract --backbones NAME=PATH``.
"""
from __future__ import annotations

import copy
import logging
import time

from ..backbones.base import resolve_device
from ..backbones.ensemble import EnsembleBackbone, VotingNet
from ..backbones.trained import save_trained
from ..errors import FeatlabError
from .checkpoint import remove_checkpoints
from .data import data_identity, load_images, load_training_dataset, split_train_val
from .evaluate import accuracy_matrix, true_label_probabilities
from .loop import Stage, run_stage
from .model import arch_of, build_network
from .output import check_output, finished
from .random_walk import random_walk_selection
from .recipes import RECIPES
from .spec import TrainSpec, check_spec, parse_strengths
from .voting import fit_voting, mixture_nll

log = logging.getLogger(__name__)


def _ensemble(members, voting, name, normalization):
    nets = [copy.deepcopy(m.net) for m in members]
    return EnsembleBackbone(name, VotingNet(nets, voting), normalization)


def _vote(members, val, strengths, device, name):
    """Fit parallel MAT's voting coefficients on the validation split (clean + FGSM at each
    member strength, crafted against the uniformly weighted ensemble)."""
    uniform = [1.0 / len(members)] * len(members)
    probe = _ensemble(members, uniform, name, members[0].normalization)
    probs = true_label_probabilities(probe, val, strengths, device=device)
    voting = fit_voting(probs)
    return [float(a) for a in voting], dict(nll_uniform=mixture_nll(probs, uniform),
                                            nll_fitted=mixture_nll(probs, voting),
                                            n_validation_rows=int(len(probs)))


def _new_nets(spec, dataset, n: int, offset: int = 0):
    return [build_network(spec, dataset, member=offset + k) for k in range(n)]


def _select(spec, dataset, train_images, val_images, ctx) -> tuple:
    """``--strengths auto``: candidates stage, A, random walk -> (chosen nets, strengths,
    selection)."""
    candidates = parse_strengths(spec.candidates, "--candidates")
    nets = _new_nets(spec, dataset, len(candidates))
    stage = Stage("candidates", RECIPES.get("mat-parallel")(), [[s] for s in candidates])
    ctx["history"]["candidates"] = run_stage(stage, nets, train_images, spec, **ctx["run"])
    A = accuracy_matrix(nets, val_images, candidates, device=ctx["run"]["device"])
    selection = random_walk_selection(A, steps=spec.walk_steps, walks=spec.walks,
                                      penalty=spec.walk_penalty, seed=spec.seed,
                                      strengths=candidates)
    log.info("random walk chose strengths %s (G = %.4f)", selection["chosen_strengths"],
             selection["G"])
    return [nets[i] for i in selection["chosen"]], selection["chosen_strengths"], selection


def _train_networks(spec, recipe, dataset, train_images, val_images, ctx):
    """Train what the recipe needs; returns (networks, strengths, selection)."""
    strengths, selection = spec.resolved_strengths(), None
    if strengths == "auto":
        chosen, strengths, selection = _select(spec, dataset, train_images, val_images, ctx)
        if recipe.parallel:
            return chosen, strengths, selection
    if recipe.parallel:
        stage = Stage("members", recipe, [[s] for s in strengths])
        nets = _new_nets(spec, dataset, len(strengths))
    else:
        stage = Stage("main", recipe, [list(strengths or [])])
        nets = _new_nets(spec, dataset, 1, offset=100)
    ctx["history"][stage.name] = run_stage(stage, nets, train_images, spec, **ctx["run"])
    return nets, strengths, selection


def train(spec: TrainSpec) -> dict:
    """Train ``spec.recipe`` on ``spec.dataset`` and write ``spec.out``; returns a report.

    Rerunning the same spec continues a killed run; a finished one is a no-op.
    """
    recipe = RECIPES.get(spec.recipe)()
    check_spec(spec, recipe)
    check_output(spec)
    began = time.perf_counter()
    dataset = load_training_dataset(spec)
    fingerprint = spec.fingerprint(dict(data=data_identity(spec, dataset)))
    done = finished(spec, fingerprint)
    if done is not None:
        log.info("%s is already trained with these settings", spec.out)
        return dict(done.get("meta", {}).get("report", {}), out=spec.out, already_done=True)
    device = resolve_device(spec.device)
    classes = list(dataset.samples.classes)
    need_val = recipe.parallel or spec.resolved_strengths() == "auto"
    train_rows, val_rows = split_train_val(dataset.samples, spec.val_fraction, spec.seed, need_val)
    train_images = load_images(dataset, train_rows, spec.workers)
    val_images = load_images(dataset, val_rows, spec.workers) if need_val else None
    ctx = dict(history={}, run=dict(fingerprint=fingerprint, device=device,
                                    n_classes=len(classes)))
    nets, strengths, selection = _train_networks(spec, recipe, dataset, train_images,
                                                 val_images, ctx)
    voting, vote_info = None, None
    if recipe.parallel:
        voting, vote_info = _vote(nets, val_images, strengths, device, spec.name or "trained")
    report = dict(recipe=recipe.name, paper=recipe.paper, classes=classes,
                  n_train=len(train_images), n_val=0 if val_images is None else len(val_images),
                  strengths=strengths, eps_max=spec.eps_max, history=ctx["history"],
                  selection=selection, voting=voting, voting_fit=vote_info)
    payload = save_trained(
        spec.out, [n.cpu().net.state_dict() for n in nets], arch=arch_of(nets[0].net),
        classes=classes, normalization=nets[0].normalization, image_size=dataset.image_size,
        recipe=recipe.name, voting=voting, role=nets[0].role,
        meta=dict(fingerprint=fingerprint, dataset=dataset.spec, seed=spec.seed,
                  epochs=spec.epochs, batch_size=spec.batch_size, init=spec.init,
                  train_layers=spec.train_layers, lr=spec.lr, report=report))
    remove_checkpoints(spec.out)
    seconds = time.perf_counter() - began
    log.info("wrote %s (%s, %d network(s)) in %.0f s", spec.out, recipe.name, len(nets), seconds)
    return dict(report, out=spec.out, weights_sha256=payload["weights_sha256"],
                seconds=seconds, device=str(device), already_done=False)
