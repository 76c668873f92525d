"""One seed of the demo's claims on a user's store: fixed backbones and features, a seeded
train/test split (:mod:`.overlay`) and heads fitted on it.

The claims are those of :mod:`featlab.reporting.claims`, measured as the demo measures them
(:mod:`featlab.reporting.demo_measure`) on the conditions the store holds: object blur at its
stored sigmas (claims 1, 2), FGSM on the foreground head (claims 3, 4) and on the joint head
(3b). A claim whose conditions are absent is inconclusive, saying what is missing; claim 5
needs stores at several context consistencies and is not measured from one store. The stored
attacks were crafted once against the store's own heads: under a new split they are
transfer attacks from those heads (``stale`` in the heads' rows).
"""
from __future__ import annotations

import logging
import os
import time

from ..analyses.heads.run import fit_head
from ..analyses.shift.run import pca_shift
from ..conditions import parse_condition
from ..reporting import claims as C
from ..reporting.demo import DemoSpec
from ..reporting.demo_measure import attack_measures, blur_pairs
from .overlay import resplit_store

log = logging.getLogger(__name__)


def stored_conditions(store) -> dict:
    """``blur``: {sigma: key} (object region), ``fg`` / ``joint``: {eps: key} of the FGSM on
    the foreground / joint head (pixel eps, alpha-0 heads of All), complete ones only."""
    out = dict(blur={}, fg={}, joint={})
    for key in store.conditions:
        if key == "clean" or not store.condition_info(key)["complete"]:
            continue
        cond = parse_condition(key)[0]
        p = cond.params
        if cond.name == "blur" and p.get("region") == "object":
            out["blur"][float(p["sigma"])] = key
        elif cond.name == "fgsm" and p.get("target") in ("fg", "joint") and not p.get(
                "surrogate") and p.get("eps_space") == "pixel" and p.get("head_alpha") == 0 \
                and p.get("head_subset", "all") == "all":
            out[p["target"]][float(p["eps"])] = key
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _label(name, value):
    return f"{name}={value:g}"


def _fit(store, found, alphas, seed):
    subsets = ["all"] + [s for s in ("similar", "dissimilar") if s in store.samples.subsets]
    for subset in subsets:
        fit_head(store, alphas=(0.0,), subset=subset, seed=seed)
    eps = list(found["fg"])
    train_on = ["clean", found["fg"][eps[len(eps) // 2]]] if eps else None
    fit_head(store, alphas=alphas, subset="all", train_on=train_on, seed=seed)
    return set(subsets)


def _blur_rows(store, found, subsets, spec, out_dir, kw):
    sigmas = list(found["blur"])
    if not sigmas:
        return [C.missing("1", "joint > fg under object blur", "no object blur in the store"),
                C.missing("2", "features under object blur stay in / leave the clean "
                          "subspace", "no object blur in the store")]
    shift = pca_shift(store, condition=found["blur"][sigmas[len(sigmas) // 2]],
                      tolerance=spec.tolerance, margin=spec.shift_margin, n_boot=spec.n_boot,
                      seed=kw["seed"], out_dir=out_dir)
    blur = blur_pairs(store, list(found["blur"].values()), [_label("sigma", s) for s in sigmas],
                      subsets)
    return C.blur_claims(blur, **kw) + C.subspace_claims(shift["comparison"])


def _attack_rows(store, found, alphas, kw):
    eps = list(found["fg"])
    if not eps:
        return [C.missing(cid, "joint > fg under fg-targeted FGSM", "no fgsm target=fg in the "
                          "store") for cid in ("3", "3b", "4")]
    attack = attack_measures(store, list(found["fg"].values()),
                             [found["joint"].get(e) for e in eps],
                             [_label("eps", e) for e in eps], alpha=max(alphas))
    return C.attack_claims(attack, **kw)


def store_seed(source: str, seed_dir: str, config: dict) -> dict:
    """The claims of one seed on the store ``source``: a re-split view under
    ``seed_dir/store``, heads fitted there (alphas, n_boot and tolerance as the demo's);
    returns the seed's summary (``seed``, ``claims``, ``verdicts``, ``stores``, ``seconds``)."""
    start = time.perf_counter()
    seed = int(config["seed"])
    spec = DemoSpec(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in config["demo"].items()})
    store = resplit_store(source, os.path.join(seed_dir, "store"), seed)
    found = stored_conditions(store)
    subsets = _fit(store, found, spec.alphas, seed)
    kw = dict(n_boot=spec.n_boot, seed=seed)
    rows = (_blur_rows(store, found, subsets | {"all"}, spec,
                       os.path.join(seed_dir, "analyses"), kw)
            + _attack_rows(store, found, spec.alphas, kw))
    log.info("seed %d on %s: %d claim rows", seed, source, len(rows))
    return dict(seed=seed, claims=rows, verdicts=C.overall(rows), stores=[store.path],
                seconds=time.perf_counter() - start)
