"""``fit-head``: foreground, background and joint linear heads on cached features.

Fusion paper Sections 2.1 and 3.2–3.4: a foreground head on the object backbone's 512-d
penultimate features, a background head on the scene backbone's, and a joint head on their
1024-d concatenation whose foreground weights carry the L2 penalty ``alpha·|θ_fg|²``.
Heads are trained on clean train features and scored on the test split of every stored
condition; they are saved in the store (with alpha, subset and training conditions) so that
attacks and later analyses reuse them.

Beside them (:mod:`.robust_run`): ``train_on`` adds an adversarially retrained head (Section
3.4 / Figure 5), ``recipe`` the MAT heads (MAT paper Section 4), scored on the same conditions,
with the average over the strength range (MAT Table 1) and their figure.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ...backbones.roles import fg_bg
from ...conditions import parse_condition
from ...errors import FeatlabError
from ...store.heads import head_name, head_record
from ...utils.results import finish
from ...utils.validation import finite_number
from ..inputs import block, condition_family
from ..registry import ANALYSES
from .figures import heads_figures
from .fusion import evaluate, fit_fusion_heads, mean_abs_weights
from .robust_figures import robust_figures
from .robust_run import fit_robust_heads, plan_robust
from .scoring import condition_rows, range_table, test_inputs

log = logging.getLogger(__name__)


def _conditions(store, conditions):
    """Conditions to score: those asked for, or every complete one that holds one perturbed
    image per row (probe sets hold copies per row: the local-property analyses use them)."""
    keys = [store.resolve_condition(c) for c in conditions] if conditions else [
        k for k in store.conditions if store.condition_info(k)["complete"]]
    probes = [k for k in keys if parse_condition(k)[0].family == "probe"]
    if probes:
        log.info("fit-head skips %d probe condition(s) (%s ...): they hold probe copies, scored "
                 "by 'featlab isotropy' and 'featlab symmetry'", len(probes), probes[0])
    keys = [k for k in keys if k not in probes]
    if "clean" not in store.conditions:
        raise FeatlabError(f"store {store.path} has no clean features to train heads on; "
                           f"run 'featlab extract --store {store.path} --conditions clean ...'")
    return keys


def _attacks(store, keys, subset):
    attacks = {}
    for key in keys:
        info = store.condition_info(key)
        if "target" in info:
            success = store.read_array("attack/success", key, split="test", subset=subset)
            attacks[key] = dict(target=info["target"], head=info["head"],
                                head_alpha=info["head_settings"].get("alpha"),
                                success_rate=float(np.mean(success)) if len(success) else None)
    return attacks


def _records(heads, fg, bg, common):
    subset = common["subset"]
    records = {head_name("fg", subset): head_record(heads["fg"], kind="fg", alpha=None,
                                                    inputs=[fg], **common),
               head_name("bg", subset): head_record(heads["bg"], kind="bg", alpha=None,
                                                    inputs=[bg], **common)}
    for alpha, head in heads["joint"].items():
        records[head_name("joint", subset, alpha)] = head_record(
            head, kind="joint", alpha=alpha, inputs=[fg, bg], **common)
    return records


def _weights(heads, n_fg):
    out = []
    for alpha, head in heads["joint"].items():
        w_fg, w_bg = mean_abs_weights(head, n_fg)
        out.append(dict(alpha=alpha, fg=float(w_fg), bg=float(w_bg)))
    return out


def _entries(heads, robust):
    entries = [dict(head="fg", alpha=None, kind="fg", model=heads["fg"]),
               dict(head="bg", alpha=None, kind="bg", model=heads["bg"])]
    entries += [dict(head="joint", alpha=a, kind="joint", model=h)
                for a, h in heads["joint"].items()]
    kind = robust["info"]["robust_head"] if robust else None
    return entries, [dict(head=label, alpha=None, kind=kind, model=m)
                     for label, m in (robust["models"].items() if robust else ())]


def _score(store, keys, heads, extra, where):
    rows = []
    for key in keys:
        inputs, t_y, _ = test_inputs(store, key, **where)
        family, param, value = condition_family(key)
        scored = evaluate(heads, {key: (inputs["fg"], inputs["bg"])}, t_y)
        for row in scored + condition_rows(extra, inputs, t_y, key):
            rows.append(dict(row, family=family, parameter=param, strength=value,
                             subset=where["subset"]))
    return rows


def _range(store, robust, entries, where, seed):
    if not robust or robust["family"] is None:
        return None
    by_strength = {r["strength"]: r["condition"] for r in robust["rows"]
                   if r["family"] == robust["family"]}
    strengths = [0.0] + sorted(s for s in by_strength if s > 0)
    keys = ["clean"] + [by_strength[s] for s in strengths[1:]]
    return dict(family=robust["family"], strengths=strengths,
                table=range_table(store, entries, keys, strengths, seed=seed, **where))


@ANALYSES.register("fit-head")
def fit_head(store, *, alphas=(0.0,), subset="all", layer="penultimate", fg=None, bg=None,
             l2=1e-4, conditions=None, save=True, tol=1e-6, max_iter=500, train_on=None,
             recipe=None, strengths=None, attack=None, robust_head="joint", val_fraction=0.2,
             walk_steps=4, walks=200, walk_penalty=-0.005, seed=0, out_dir=None) -> dict:
    """Fit the three heads (one joint head per alpha), and the robust heads asked for by
    ``train_on`` / ``recipe`` (:func:`~.robust_run.fit_robust_heads`), and score them all on
    every condition.

    Returns a dict with ``rows`` (condition, head, alpha, n, correct, accuracy, ci_low,
    ci_high, family, strength), ``weights`` (mean |weight| per backbone per alpha),
    ``heads`` (names saved in the store) and, with robust heads, ``robust`` (how they were
    trained: conditions, the heads the attacks were crafted against, strengths, A, G, voting
    weights) and ``range`` (average accuracy over the strength range). With ``out_dir``: the
    figures (``figures``) and ``fit-head-<subset>.json`` (``json``) are written there.
    """
    alphas = sorted({finite_number(a, "--alpha", low=0, hint="; the penalty weight must be >= 0")
                     for a in alphas})
    l2 = finite_number(l2, "--l2", low=0, low_open=True, hint=" (a small ridge, e.g. 1e-4)")
    if save:
        store.check_writable()  # refuse before fitting, not after
    fg, bg = fg_bg(store.backbone_meta, fg, bg, where=f"store {store.path}")
    keys = _conditions(store, conditions)
    plan = plan_robust(store, train_on=train_on, recipe=recipe, strengths=strengths,
                       attack=attack, robust_head=robust_head, val_fraction=val_fraction, seed=seed,
                       walk=dict(walk_steps=walk_steps, walks=walks, walk_penalty=walk_penalty))
    (x_fg, x_bg), y, _ = block(store, (fg, bg), layer=layer, split="train", subset=subset)
    classes = store.classes(subset)
    if len(np.unique(y)) < 2:
        raise FeatlabError(f"subset {subset!r} has fewer than 2 classes with training images")
    head_kw = dict(n_classes=len(classes), l2=l2, tol=tol, max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heads = fit_fusion_heads(x_fg, x_bg, y, alphas=alphas, **head_kw)
        robust = fit_robust_heads(store, plan, fg=fg, bg=bg, layer=layer, subset=subset,
                                  classes=classes, head_kw=head_kw) if plan else None
    if caught:
        log.info("%d head fit(s) stopped at max_iter=%d before tol=%g (accuracy is unaffected "
                 "at this precision; raise max_iter to go further)", len(caught), max_iter, tol)
    where = dict(fg=fg, bg=bg, layer=layer, subset=subset)
    entries, extra = _entries(heads, robust)
    rows = _score(store, keys, heads, extra, where)
    weights = _weights(heads, x_fg.shape[1])
    common = dict(subset=subset, layer=layer, l2=l2, training_conditions=["clean"],
                  classes=classes, n_train=int(len(y)), backbones=[fg, bg])
    records = _records(heads, fg, bg, common)
    records.update(robust["records"] if robust else {})
    if save:
        store.save_heads(records)
    result = dict(store=store.path, fg=fg, bg=bg, layer=layer, subset=subset, alphas=alphas,
                  n_train=int(len(y)), classes=classes, rows=rows, weights=weights,
                  attacks=_attacks(store, keys, subset), heads=sorted(records), figures=[])
    if robust:
        result["robust"] = robust["info"]
        result["range"] = _range(store, dict(robust, rows=rows), entries + extra, where, seed)
    if out_dir:
        result["figures"] = heads_figures(result, out_dir) + robust_figures(result, out_dir)
    return finish(result, out_dir, f"fit-head-{subset}")
