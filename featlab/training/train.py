"""``train(spec)``: train a classifier on a dataset's own classes and save it as a backbone.

Stages (each checkpointed per epoch, see :mod:`.loop`):

- one network (``standard``, ``fgsm-at``, ``mat-mixed``, ``mixup``, ``tlat``, ``mtlat``,
  ``iat``): stage ``main``;
- ``mat-parallel``: stage ``members``, one network per strength, then the voting
  coefficients fitted on the validation split (:func:`featlab.mat.fit_voting`);
- a fixed crafting model (``--crafting-model``, MAT Section 5.1, :mod:`.crafting`):
  ``auto`` trains a ``standard`` network first (stage ``crafting``, written beside
  ``--out`` as ``<stem>-crafting.pt``); its FGSM directions of the training images are
  computed once and every FGSM stage trains on those static sets;
- ``--strengths auto`` (MAT Section 4.3): stage ``candidates``, one single-strength network
  (Eq. 3) per candidate; the accuracy matrix A on the validation split (clean + FGSM at
  every candidate); the random walk (:func:`featlab.mat.random_walk_select`) picks the
  strengths; parallel MAT keeps the chosen candidates as its members, mixed MAT trains a
  new network on them (stage ``main``).

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
from ..mat import fit_voting, random_walk_select, voting_nll
from .checkpoint import remove_checkpoints
from .crafting import AUTO, SELF, StaticSets, load_crafting_model, weights_identity
from .data import data_identity, load_images, load_training_dataset, split_train_val
from .evaluate import accuracy_matrix, true_label_probabilities
from .loop import Stage, run_stage
from .model import arch_of, build_network
from .output import check_output, crafting_path, finished
from .recipes import TRAIN_RECIPES
from .spec import TrainSpec, check_spec, parse_strengths

log = logging.getLogger(__name__)


def _ensemble(members, voting, name, normalization):
    nets = [copy.deepcopy(m.net) for m in members]
    return EnsembleBackbone(name, VotingNet(nets, voting), normalization)


def _vote(members, val, strengths, device, name, crafter=None):
    """Fit parallel MAT's voting coefficients on the validation split (clean + FGSM at each
    member strength, crafted by the crafting model, or against the uniformly weighted
    ensemble when there is none)."""
    uniform = [1.0 / len(members)] * len(members)
    probe = _ensemble(members, uniform, name, members[0].normalization)
    probs = true_label_probabilities(probe, val, strengths, device=device, crafter=crafter)
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
    ctx["history"]["candidates"] = run_stage(stage, nets, train_images, spec,
                                             static=ctx["static"], **ctx["run"])
    tested = [0.0, *candidates]
    A = accuracy_matrix(nets, val_images, tested, device=ctx["run"]["device"],
                        crafter=ctx["crafter"])
    selection = random_walk_select(A, candidates, tested, walk_steps=spec.walk_steps,
                                   walks=spec.walks, walk_penalty=spec.walk_penalty,
                                   seed=spec.seed)
    log.info("random walk chose strengths %s (G = %.4f)", selection["strengths"],
             selection["G"])
    return [nets[i] for i in selection["chosen"]], selection["strengths"], selection


def _crafting(spec, dataset, train_images, ctx):
    """The run's fixed crafting model and the static sets of the training images (MAT
    Section 5.1), or (None, None) for ``self``; ``auto`` trains a ``standard`` network
    first (stage ``crafting``)."""
    entry = spec.resolved_crafting()
    if entry in (None, SELF):
        return None, None
    if entry == AUTO:
        model = build_network(spec, dataset, member=200)
        stage = Stage("crafting", TRAIN_RECIPES.get("standard")(), [[]])
        ctx["history"]["crafting"] = run_stage(stage, [model], train_images, spec, **ctx["run"])
    else:
        model = load_crafting_model(entry, dataset.samples.classes, spec.cache_dir)
    return model, StaticSets(model, train_images, ctx["run"]["device"])


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
    ctx["history"][stage.name] = run_stage(stage, nets, train_images, spec,
                                           static=ctx["static"], **ctx["run"])
    return nets, strengths, selection


def _save_crafter(spec, crafter, dataset, meta) -> dict:
    """Write the crafting network of ``--crafting-model auto`` (a ``standard`` network)
    beside ``--out``; the record of the crafting model for the main file's meta."""
    if spec.resolved_crafting() != AUTO:
        return dict(model=spec.resolved_crafting(), weights_sha256=crafter.weights_sha256)
    path = crafting_path(spec.out)
    payload = save_trained(
        path, [crafter.cpu().net.state_dict()], arch=arch_of(crafter.net),
        classes=list(dataset.samples.classes), normalization=crafter.normalization,
        image_size=dataset.image_size, recipe="standard", role=crafter.role,
        meta=dict(meta, crafting_model_of=spec.out))
    return dict(model=AUTO, file=path, weights_sha256=payload["weights_sha256"])


def _prepare(spec, recipe):
    """Check, load the data, fingerprint the run; (dataset, fingerprint, extra output
    paths, the report of an earlier identical run or None)."""
    check_spec(spec, recipe)
    extra = [crafting_path(spec.out)] if spec.resolved_crafting() == AUTO else []
    check_output(spec, extra)
    dataset = load_training_dataset(spec)
    identity = dict(data=data_identity(spec, dataset),
                    init=weights_identity(spec.init, spec.cache_dir),
                    crafting=weights_identity(spec.resolved_crafting(), spec.cache_dir))
    fingerprint = spec.fingerprint(identity)
    return dataset, fingerprint, extra, finished(spec, fingerprint, extra)


def train(spec: TrainSpec) -> dict:
    """Train ``spec.recipe`` on ``spec.dataset`` and write ``spec.out``; returns a report.

    Rerunning the same spec continues a killed run; a finished one is a no-op.
    """
    recipe = TRAIN_RECIPES.get(spec.recipe)()
    began = time.perf_counter()
    dataset, fingerprint, extra, done = _prepare(spec, recipe)
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
    ctx["crafter"], ctx["static"] = _crafting(spec, dataset, train_images, ctx)
    nets, strengths, selection = _train_networks(spec, recipe, dataset, train_images,
                                                 val_images, ctx)
    voting, vote_info = None, None
    if recipe.parallel:
        voting, vote_info = _vote(nets, val_images, strengths, device, spec.name or "trained",
                                  ctx["crafter"])
    report = dict(recipe=recipe.name, paper=recipe.paper, classes=classes,
                  n_train=len(train_images), n_val=0 if val_images is None else len(val_images),
                  strengths=strengths, eps_max=spec.eps_max, history=ctx["history"],
                  selection=selection, voting=voting, voting_fit=vote_info)
    meta = dict(fingerprint=fingerprint, dataset=dataset.spec, seed=spec.seed,
                epochs=spec.epochs, batch_size=spec.batch_size, init=spec.init,
                train_layers=spec.train_layers, lr=spec.lr)
    if ctx["crafter"] is not None:
        report["crafting"] = _save_crafter(spec, ctx["crafter"], dataset, meta)
    payload = save_trained(
        spec.out, [n.cpu().net.state_dict() for n in nets], arch=arch_of(nets[0].net),
        classes=classes, normalization=nets[0].normalization, image_size=dataset.image_size,
        recipe=recipe.name, voting=voting, role=nets[0].role, meta=dict(meta, report=report))
    remove_checkpoints(spec.out)
    seconds = time.perf_counter() - began
    log.info("wrote %s (%s, %d network(s)) in %.0f s", spec.out, recipe.name, len(nets), seconds)
    return dict(report, out=spec.out, weights_sha256=payload["weights_sha256"],
                seconds=seconds, device=str(device), already_done=False)
