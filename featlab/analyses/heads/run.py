"""``fit-head``: foreground, background and joint linear heads on cached features.

Fusion paper Sections 2.1 and 3.2–3.4: a foreground head on the object backbone's 512-d
penultimate features, a background head on the scene backbone's, and a joint head on their
1024-d concatenation whose foreground weights carry the L2 penalty ``alpha·|θ_fg|²``.
Heads are trained on clean train features and scored on the test split of every stored
condition; they are saved in the store (with alpha, subset and training conditions) so that
attacks and later analyses reuse them.
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
from ..inputs import block, condition_family
from ..registry import ANALYSES
from .figures import heads_figures
from .fusion import evaluate, fit_fusion_heads, mean_abs_weights

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


def _attack_outcomes(store, keys, subset) -> dict:
    """Per attack condition: its target, the head it attacked and its success rate."""
    attacks = {}
    for key in keys:
        info = store.condition_info(key)
        if "target" in info:
            success = store.read_array("attack/success", key, split="test", subset=subset)
            attacks[key] = dict(target=info["target"], head=info["head"],
                                head_alpha=info["head_settings"].get("alpha"),
                                success_rate=float(np.mean(success)) if len(success) else None)
    return attacks


@ANALYSES.register("fit-head")
def fit_head(store, *, alphas=(0.0,), subset="all", layer="penultimate", fg=None, bg=None,
             l2=1e-4, conditions=None, save=True, tol=1e-6, max_iter=500, out_dir=None) -> dict:
    """Fit the three heads (one joint head per alpha) and score them on every condition.

    Returns a dict with ``rows`` (condition, head, alpha, n, correct, accuracy, ci_low,
    ci_high, family, strength), ``weights`` (mean |weight| per backbone per alpha) and
    ``heads`` (names saved in the store). With ``out_dir``: the figures (``figures``) and
    ``fit-head-<subset>.json`` (``json``) are written there.
    """
    alphas = sorted({float(a) for a in alphas})
    if any(a < 0 for a in alphas):
        raise FeatlabError(f"--alpha {min(alphas)}: the penalty weight must be >= 0")
    if save:
        store.check_writable()  # refuse before fitting, not after
    fg, bg = fg_bg(store.backbone_meta, fg, bg, where=f"store {store.path}")
    keys = _conditions(store, conditions)
    (x_fg, x_bg), y, _ = block(store, (fg, bg), layer=layer, split="train", subset=subset)
    classes = store.classes(subset)
    if len(np.unique(y)) < 2:
        raise FeatlabError(f"subset {subset!r} has fewer than 2 classes with training images")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heads = fit_fusion_heads(x_fg, x_bg, y, alphas=alphas, l2=l2, n_classes=len(classes),
                                 tol=tol, max_iter=max_iter)
    if caught:
        log.info("%d head fit(s) stopped at max_iter=%d before tol=%g (accuracy is unaffected "
                 "at this precision; raise max_iter to go further)", len(caught), max_iter, tol)
    rows = []
    for key in keys:
        (t_fg, t_bg), t_y, _ = block(store, (fg, bg), layer=layer, condition=key, split="test",
                                     subset=subset)
        family, param, value = condition_family(key)
        for row in evaluate(heads, {key: (t_fg, t_bg)}, t_y):
            rows.append(dict(row, family=family, parameter=param, strength=value, subset=subset))
    attacks = _attack_outcomes(store, keys, subset)
    weights = []
    for alpha, head in heads["joint"].items():
        w_fg, w_bg = mean_abs_weights(head, x_fg.shape[1])
        weights.append(dict(alpha=alpha, fg=float(w_fg), bg=float(w_bg)))
    common = dict(subset=subset, layer=layer, l2=l2, training_conditions=["clean"],
                  classes=classes, n_train=int(len(y)), backbones=[fg, bg])
    records = {head_name("fg", subset): head_record(heads["fg"], kind="fg", alpha=None,
                                                    inputs=[fg], **common),
               head_name("bg", subset): head_record(heads["bg"], kind="bg", alpha=None,
                                                    inputs=[bg], **common)}
    for alpha, head in heads["joint"].items():
        records[head_name("joint", subset, alpha)] = head_record(
            head, kind="joint", alpha=alpha, inputs=[fg, bg], **common)
    if save:
        store.save_heads(records)
    result = dict(store=store.path, fg=fg, bg=bg, layer=layer, subset=subset, alphas=alphas,
                  n_train=int(len(y)), classes=classes, rows=rows, weights=weights,
                  attacks=attacks, heads=sorted(records), figures=[])
    if out_dir:
        result["figures"] = heads_figures(result, out_dir)
    return finish(result, out_dir, f"fit-head-{subset}")
