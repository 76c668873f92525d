"""``train(spec)``: train a classifier on a dataset's own classes and save it as a backbone.

Stages (each checkpointed per epoch, see :mod:`.loop`):

- one network (``standard``, ``fgsm-at``, ``mat-mixed``, ``mixup``, ``tlat``, ``mtlat``,
  ``iat``): stage ``main``;
- ``mat-parallel``: stage ``members``, one network per strength, then the voting
  coefficients fitted on the validation split (:func:`featlab.mat.fit_voting`);
- ``--strengths auto`` (MAT Section 4.3): stage ``candidates``, one single-strength network
  (Eq. 3) per candidate; the accuracy matrix A on the validation split (clean + FGSM at
  every candidate); the random walk (:func:`featlab.mat.random_walk_select`) picks the strengths; parallel MAT keeps the chosen candidates as its
  members, mixed MAT trains a new network on them (stage ``main``).

The result (:func:`featlab.backbones.trained.save_trained`) loads with
``featlab extract --backbones NAME=PATH``.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import time

from ..backbones.base import resolve_device
from ..backbones.ensemble import EnsembleBackbone, VotingNet
from ..backbones.trained import save_trained
from ..errors import FeatlabError
from ..mat import fit_voting, random_walk_select, voting_nll
from .checkpoint import remove_checkpoints
from .data import load_images, load_training_dataset, split_train_val
from .evaluate import accuracy_matrix, true_label_probabilities
from .loop import Stage, run_stage
from .model import arch_of, build_network
from .recipes import TRAIN_RECIPES
from .spec import TrainSpec, check_spec, parse_strengths

log = logging.getLogger(__name__)


def _finished(spec: TrainSpec, fingerprint: str):
    """The sidecar of an existing result from the same settings (None when there is none);
    refuses to overwrite a result made with other settings."""
    sidecar = os.path.splitext(spec.out)[0] + ".json"
    if not os.path.isfile(spec.out):
        return None
    try:
        with open(sidecar) as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        info = {}
    if info.get("meta", {}).get("fingerprint") == fingerprint:
        return info
    raise FeatlabError(f"{spec.out} already exists and was not trained with these settings; "
                       f"choose another --out or delete it")


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
    return [float(a) for a in voting], dict(nll_uniform=voting_nll(probs, uniform),
                                            nll_fitted=voting_nll(probs, voting),
                                            n_validation_rows=int(len(probs)))


def _new_nets(spec, dataset, n: int, offset: int = 0):
    return [build_network(spec, dataset, member=offset + k) for k in range(n)]


def _select(spec, dataset, train_images, val_images, ctx) -> tuple:
    """``--strengths auto``: candidates stage, A, random walk -> (chosen nets, strengths,
    selection)."""
    candidates = parse_strengths(spec.candidates, "--candidates")
    nets = _new_nets(spec, dataset, len(candidates))
    stage = Stage("candidates", TRAIN_RECIPES.get("mat-parallel")(), [[s] for s in candidates])
    ctx["history"]["candidates"] = run_stage(stage, nets, train_images, spec, **ctx["run"])
    tested = [0.0, *candidates]
    A = accuracy_matrix(nets, val_images, tested, device=ctx["run"]["device"])
    selection = random_walk_select(A, candidates, tested, walk_steps=spec.walk_steps,
                                   walks=spec.walks, walk_penalty=spec.walk_penalty,
                                   seed=spec.seed)
    log.info("random walk chose strengths %s (G = %.4f)", selection["strengths"],
             selection["G"])
    return [nets[i] for i in selection["chosen"]], selection["strengths"], selection


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
    recipe = TRAIN_RECIPES.get(spec.recipe)()
    check_spec(spec, recipe)
    fingerprint = spec.fingerprint()
    done = _finished(spec, fingerprint)
    if done is not None:
        log.info("%s is already trained with these settings", spec.out)
        return dict(done.get("meta", {}).get("report", {}), out=spec.out, already_done=True)
    began = time.perf_counter()
    device = resolve_device(spec.device)
    dataset = load_training_dataset(spec)
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
