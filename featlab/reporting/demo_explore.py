"""The demo's exploration beside the paper's claims: non-linear fusion heads.

The fusion paper (Section 4) names richer fusion layers as future work; this is not a claim
of the papers and its rows do not count in the demo's verdicts. On the main demo store,
the ``mlp`` and ``gated`` heads (:data:`featlab.heads.HEADS`) are fitted on the object and
scene backbones' clean train features (alpha 0) and compared with the linear joint head
(alpha 0) on the same test images under object blur (the middle sigma) and fg-targeted FGSM
(the middle eps): a paired bootstrap 95 % interval of the accuracy difference, exact McNemar
p, and the claims' verdict rule (:func:`~featlab.analyses.stats.verdict`, "effect > 0" with
the claims' :data:`~.claims.GAIN_MARGIN`: yes when the interval lies above 0, no when it lies
below the margin, else inconclusive). Beside them, the adaptive attack ``fgsm:eps=<middle>:
target=head:NAME`` crafted through both backbones and that head: its accuracy with a 95 %
Wilson interval, reported (no verdict). Only test images are scored, so the adaptive attack
runs on them alone and in memory (:func:`adaptive_correct`, the classifier extraction builds
for that condition; nothing is added to the store).

A row is ``dict(head, condition, versus, verdict, effect, low, high, margin, test, n)``
(plus ``p_value`` for the paired rows); ``versus`` is the linear joint head's name, or None
for the adaptive rows, whose ``effect`` is the accuracy and ``verdict`` "reported".
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..analyses.heads.correct import head_predictions
from ..analyses.heads.run import fit_head
from ..analyses.stats import mcnemar, paired_bootstrap, verdict, wilson_interval
from ..backbones.base import resolve_device
from ..conditions import parse_conditions
from ..extraction import ExtractionSpec
from ..extraction.precision import precision_mode
from ..extraction.spec import build_backbones, load_dataset
from ..extraction.storage import with_store_defaults
from ..extraction.targets import TargetModels
from ..store.heads import head_name
from ..training.data import load_images
from .claims import GAIN_MARGIN
from .robust import short

log = logging.getLogger(__name__)

#: The head types explored against the linear joint head.
EXPLORED = ("mlp", "gated")


def compare(head, condition, versus, correct, reference, *, n_boot, seed,
            margin=GAIN_MARGIN) -> dict:
    """``mean(correct) - mean(reference) > 0`` on the same images, decided as the claims
    decide "effect > 0".

    Parameters
    ----------
    head, condition, versus : str — labels of the row
    correct, reference : ndarray of shape (n,) bool — per test image, right or not, for
        ``head`` and ``versus`` on the same images
    n_boot, seed : bootstrap resamples and their seed
    margin : float — practical-equivalence margin (accuracy points)
    """
    base = dict(head=head, condition=condition, versus=versus, margin=float(margin))
    if len(correct) == 0:
        return dict(base, verdict="inconclusive", effect=None, low=None, high=None,
                    test="not measured: no test images", n=0)
    s = paired_bootstrap(correct, reference, n_boot=n_boot, seed=seed)
    return dict(base, verdict=verdict(s["low"], s["high"], "greater", margin),
                effect=s["effect"], low=s["low"], high=s["high"], n=s["n"],
                test="paired bootstrap 95% + exact McNemar",
                p_value=mcnemar(correct, reference)["p_value"])


def adaptive(head, condition, correct) -> dict:
    """The accuracy of ``head`` under the attack crafted through it, 95 % Wilson interval."""
    n, k = len(correct), int(correct.sum())
    low, high = wilson_interval(k, n) if n else (None, None)
    return dict(head=head, condition=condition, versus=None, verdict="reported",
                effect=k / n if n else None, low=low, high=high, margin=0.0,
                test="accuracy, Wilson 95%", n=n)


def _correct(store, names, key):
    p = head_predictions(store, names, key)
    return {n: p["predictions"][n] == p["labels"] for n in names}


def adaptive_correct(store, root: str, attacks: list, *, device="auto", seed=0, image_size=None,
                     cache_dir=None, weights=None, batch_size=64) -> list:
    """Per attack condition of ``attacks`` (gradient attacks with ``target=...``, e.g.
    ``fgsm:eps=0.01:target=head:NAME``), whether each test image of ``store`` is classified
    right under it: the images of the store's benchmark ``root`` are attacked in memory
    through the classifier extraction would build for that condition (its backbones with
    the store's settings, the head, fp32), and nothing is written.

    Returns a list (one per attack) of ndarray of shape (n_test,) bool, in the order of
    ``store``'s test rows (an image that cannot be decoded is left out)."""
    run = with_store_defaults(ExtractionSpec(
        store=store.path, root=root, backbones=tuple(store.backbone_meta), device=device,
        seed=seed, image_size=image_size, cache_dir=cache_dir, weights=dict(weights or {})))
    dataset, device = load_dataset(run), resolve_device(device)
    images = load_images(dataset, dataset.samples.indices(split="test"))
    with precision_mode("fp32", device):
        models = build_backbones(run, dataset, device)
        targets = TargetModels(store.path, models, store.backbone_meta,
                               classes=dataset.samples.classes, weights=run.weights,
                               cache_dir=cache_dir)
        return [_correct_under(targets, condition, images, device, batch_size, seed)
                for condition in parse_conditions(attacks)]


def _correct_under(targets, condition, images, device, batch_size, seed) -> np.ndarray:
    """Per image, the prediction extraction stores (``TargetModels.outcome``) == the label."""
    out, attack, model = [], condition.perturbation, targets.model_for(condition)
    generator = torch.Generator().manual_seed(seed)
    for x, y in images.batches(torch.arange(len(images)), batch_size, min_size=1):
        x, y = x.to(device), y.to(device)
        (adv,), aimed = attack.attack_many(x, [condition.params], labels=y, model=model,
                                           generator=generator)
        pred = targets.outcome(model, adv, aimed, attack.targeted)["attack/prediction"]
        out.append(pred == y.cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, bool)


def explore(spec, store, root: str, blur: str, fgsm: str, eps: float) -> list[dict]:
    """Fit the :data:`EXPLORED` heads on ``store`` (subset all, alpha 0, saved), attack the
    test images with FGSM at ``eps`` through each (:func:`adaptive_correct`), and return the
    exploration rows (module docstring). ``blur`` / ``fgsm``: the conditions compared on."""
    names = {}
    for kind in EXPLORED:
        fitted = fit_head(store, head=kind, alphas=(0.0,), subset="all", conditions=["clean"])
        names[kind] = fitted["heads"][0]
    attacks = {name: f"fgsm:eps={eps:g}:target=head:{name}" for name in names.values()}
    log.info("demo exploration: %s on the test images", ", ".join(attacks.values()))
    adaptive_rows = adaptive_correct(store, root, list(attacks.values()), device=spec.device,
                                     seed=spec.seed, image_size=spec.image_size,
                                     cache_dir=spec.cache_dir, weights=spec.weights)
    linear = head_name("joint", "all", 0.0)
    kw = dict(n_boot=spec.n_boot, seed=spec.seed)
    rows = []
    for label, key in (("blur", blur), ("fg-FGSM", fgsm)):
        correct = _correct(store, [linear, *names.values()], key)
        rows += [compare(name, f"{label} {short(key)}", linear, correct[name],
                         correct[linear], **kw) for name in names.values()]
    for (name, attack), correct in zip(attacks.items(), adaptive_rows):
        rows.append(adaptive(name, attack, correct))
    return rows
