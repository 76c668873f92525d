"""``fit-head``: foreground, background and joint linear heads on cached features.

Fusion paper Sections 2.1 and 3.2–3.4: a foreground head on the object backbone's 512-d
penultimate features, a background head on the scene backbone's, and a joint head on their
1024-d concatenation whose foreground weights carry the L2 penalty ``alpha·|θ_fg|²``.
Heads are trained on clean train features and scored on the test split of every stored
condition; they are saved in the store (with alpha, subset and training conditions) so that
attacks and later analyses reuse them.

``alphas`` are on the paper's scale by default (``alpha_scale="sum"``: the penalty beside the
cross-entropy summed over the N training images, Section 3.4), ``alpha_scale="mean"`` reads
them beside the mean loss (the paper's alpha / N); heads are named, recorded and reported by
the paper's alpha (``joint-all-alpha=10``) whichever way it was typed (:mod:`.alphas`).

Every result row is labelled: ``threat`` is ``white-box`` when the condition is an
attack crafted against this very head (same kind, subset and alpha), ``transfer`` when it
was crafted against another classifier, None for conditions that are not attacks;
``stale`` is true when the condition was made against a head whose content has changed
since (a refit; :func:`featlab.store.heads.stale_heads`), None when it predates head
digests.

Beside them (:mod:`.robust_run`): ``train_on`` adds an adversarially retrained head (Section
3.4 / Figure 5), ``recipe`` the MAT heads (MAT paper Section 4), scored on the same conditions,
with the average over the strength range (MAT Table 1) and their figure.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ...backbones.roles import fg_bg
from ...errors import FeatlabError
from ...mat import DEFAULT_PENALTY, DEFAULT_WALKS
from ...store.heads import head_digest, head_name, head_record, save_heads, stale_heads
from ...utils.results import finish
from ..inputs import block, condition_family, staleness
from ..registry import ANALYSES
from .figures import heads_figures
from .alphas import alpha_fields, checked, fit_paper_heads, joint_attrs, paper_alphas
from .fusion import evaluate, mean_abs_weights
from .inputs_fit import fit_head_inputs
from .robust_figures import robust_figures
from .robust_run import fit_robust_heads, plan_robust
from .scoring import attack_info as _attacks, condition_rows, range_table, score_conditions \
    as _conditions, test_inputs

log = logging.getLogger(__name__)


def _records(heads, fg, bg, common):
    subset, n = common["subset"], common["n_train"]
    records = {head_name("fg", subset): head_record(heads["fg"], kind="fg", alpha=None,
                                                    inputs=[fg], **common),
               head_name("bg", subset): head_record(heads["bg"], kind="bg", alpha=None,
                                                    inputs=[bg], **common)}
    for alpha, head in heads["joint"].items():
        records[head_name("joint", subset, alpha)] = head_record(
            head, kind="joint", inputs=[fg, bg], **joint_attrs(alpha, n), **common)
    return records


def _weights(heads, n_fg):
    """Mean |weight| per backbone and alpha: ``fg``/``bg`` on standardized features,
    ``fg_raw``/``bg_raw`` on the features as stored (:func:`.fusion.mean_abs_weights`)."""
    out = []
    for alpha, head in heads["joint"].items():
        w_fg, w_bg = mean_abs_weights(head, n_fg)
        r_fg, r_bg = mean_abs_weights(head, n_fg, space="raw")
        out.append(dict(alpha=alpha, fg=w_fg, bg=w_bg, fg_raw=r_fg, bg_raw=r_bg))
    return out


def _entries(heads, robust):
    entries = [dict(head="fg", alpha=None, kind="fg", model=heads["fg"]),
               dict(head="bg", alpha=None, kind="bg", model=heads["bg"])]
    entries += [dict(head="joint", alpha=a, kind="joint", model=h)
                for a, h in heads["joint"].items()]
    kind = robust["info"]["robust_head"] if robust else None
    return entries, [dict(head=label, alpha=None, kind=kind, model=m)
                     for label, m in (robust["models"].items() if robust else ())]


def threat(info: dict, head: str, alpha, subset: str):
    """``white-box`` / ``transfer`` for a row of ``head`` (fg, bg, joint with ``alpha``, or a
    robust head's label) on a condition whose record is ``info``; None if not an attack."""
    if "target" not in info:
        return None
    name = head_name(head, subset, alpha) if head in ("fg", "bg", "joint") else head
    return "white-box" if info.get("head") == name else "transfer"


def _score(store, keys, heads, extra, where, stale):
    rows = []
    for key in keys:
        inputs, t_y, _ = test_inputs(store, key, **where)
        family, param, value = condition_family(key)
        info = store.condition_info(key)
        scored = evaluate(heads, {key: (inputs["fg"], inputs["bg"])}, t_y)
        for row in scored + condition_rows(extra, inputs, t_y, key):
            rows.append(dict(row, family=family, parameter=param, strength=value,
                             subset=where["subset"], stale=stale[key],
                             threat=threat(info, row["head"], row["alpha"], where["subset"])))
    return rows


def _check_split(store, subset, y):
    if len(np.unique(y)) < 2:
        raise FeatlabError(f"subset {subset!r} has fewer than 2 classes with training images")
    if len(store.rows("test", subset)):
        return True
    log.warning("subset %r of store %s has no test images: the heads are fitted and saved but "
                "not scored (no accuracy rows); extract more images (a larger --limit) to "
                "score them", subset, store.path)
    return False


def _staleness(store, keys, records, robust):
    """Staleness of ``keys`` judged against the heads as this fit leaves them."""
    digests = {n: head_digest(*r) for n, r in records.items()}
    if robust:  # the mark is part of the robust heads' content: digest them after it
        _mark_trained_on_stale(store, robust, records, digests)
        digests.update({n: head_digest(*records[n]) for n in robust["records"]})
    return staleness(store, keys, digests)


def _mark_trained_on_stale(store, robust, records, digests):
    """Robust heads trained on attacks made against a head that has changed since: the
    attacks are still valid examples, but no longer against today's head. Each such head's
    record and ``robust["info"]["trained_on_stale"]`` list those training conditions."""
    used = {k for _, attrs in robust["records"].values()
            for k in attrs.get("training_conditions", ()) if k != "clean"}
    bad = sorted(k for k in used if stale_heads(store.path, store.condition_info(k), digests))
    robust["info"]["trained_on_stale"] = bad
    for name in robust["records"]:
        attrs = records[name][1]
        attrs["trained_on_stale"] = [k for k in attrs.get("training_conditions", ()) if k in bad]
    if bad:
        log.warning("the robust heads were trained on %d attack condition(s) crafted against a "
                    "head refit since (%s): recorded as trained_on_stale", len(bad),
                    ", ".join(bad))


def _range(store, robust, entries, where, seed):
    if not robust or robust["family"] is None:
        return None
    by_strength = {r["strength"]: r["condition"] for r in robust["rows"]
                   if r["family"] == robust["family"]}
    strengths = [0.0] + sorted(s for s in by_strength if s > 0)
    keys = ["clean"] + [by_strength[s] for s in strengths[1:]]
    return dict(family=robust["family"], strengths=strengths,
                table=range_table(store, entries, keys, strengths, seed=seed, **where))


def _quietly(fit, max_iter, tol):
    """``fit()``, its convergence warnings counted in one log line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fit()
    if caught:
        log.info("%d head fit(s) stopped at max_iter=%d before tol=%g (accuracy is unaffected "
                 "at this precision; raise max_iter to go further)", len(caught), max_iter, tol)
    return out


@ANALYSES.register("fit-head")
def fit_head(store, *, alphas=(0.0,), subset="all", layer="penultimate", fg=None, bg=None,
             l2=1e-4, conditions=None, save=True, tol=1e-6, max_iter=500, train_on=None,
             recipe=None, strengths=None, attack=None, robust_head="joint", val_fraction=0.2,
             walk_steps=None, walks=DEFAULT_WALKS, walk_penalty=DEFAULT_PENALTY, seed=0,
             alpha_scale="sum", head="linear", inputs=None, penalty=None, width=None,
             out_dir=None) -> dict:
    """Fit the three heads (one joint head per alpha typed on ``alpha_scale``, ``sum`` or
    ``mean``) and the robust heads of ``train_on`` / ``recipe`` (:func:`~.robust_run.
    fit_robust_heads`); score them all on every condition but probe sets (``skipped``).
    ``head`` (not linear), ``inputs``, ``penalty``, ``width``: heads of that type on those
    inputs instead (:func:`.inputs_fit.fit_head_inputs`; no robust heads, no figures).

    Returns a dict with ``alphas`` (the paper's scale, as every ``alpha``; :func:`.alphas.
    alpha_fields`), ``rows`` (condition, head, alpha, n, correct, accuracy, ci_low, ci_high,
    family, strength, threat, stale), ``weights`` (mean |weight| per backbone per alpha:
    ``fg``/``bg`` standardized, ``fg_raw``/``bg_raw`` raw), ``heads`` (saved), ``stale``
    and, with robust heads, ``robust`` and ``range`` (over the strength range)."""
    given, l2 = checked(alphas, l2, alpha_scale)
    if save:
        store.check_writable()  # refuse before fitting, not after
    if head != "linear" or (inputs, penalty, width) != (None,) * 3:
        return fit_head_inputs(store, conditions, subset, out_dir, dict(
            train_on=train_on, recipe=recipe, fg=fg, bg=bg), head=head, inputs=inputs,
            penalty=penalty, width=width, alphas=given, alpha_scale=alpha_scale, layer=layer,
            l2=l2, save=save, linear_kw=dict(tol=tol, max_iter=max_iter))
    fg, bg = fg_bg(store.backbone_meta, fg, bg, where=f"store {store.path}")
    keys, skipped = _conditions(store, conditions)
    plan = plan_robust(store, train_on=train_on, recipe=recipe, strengths=strengths,
                       attack=attack, robust_head=robust_head, val_fraction=val_fraction, seed=seed,
                       walk=dict(walk_steps=walk_steps, walks=walks, walk_penalty=walk_penalty))
    (x_fg, x_bg), y, _ = block(store, (fg, bg), layer=layer, split="train", subset=subset)
    classes = store.classes(subset)
    if not _check_split(store, subset, y):
        keys = []  # nothing to score: no rows rather than NaN accuracies
    alphas, head_kw = paper_alphas(given, alpha_scale, len(y)), dict(
        n_classes=len(classes), l2=l2, tol=tol, max_iter=max_iter)
    heads, robust = _quietly(lambda: (fit_paper_heads(x_fg, x_bg, y, alphas, **head_kw), (
        fit_robust_heads(store, plan, fg=fg, bg=bg, layer=layer, subset=subset,
                         classes=classes, head_kw=head_kw) if plan else None)), max_iter, tol)
    common = dict(subset=subset, layer=layer, l2=l2, training_conditions=["clean"],
                  classes=classes, n_train=int(len(y)), backbones=[fg, bg])
    records = {**_records(heads, fg, bg, common), **(robust["records"] if robust else {})}
    stale = _staleness(store, keys, records, robust)
    where, (entries, extra) = dict(fg=fg, bg=bg, layer=layer, subset=subset), _entries(
        heads, robust)
    rows = _score(store, keys, heads, extra, where, stale)
    if save:
        save_heads(store.path, records)
    result = dict(store=store.path, fg=fg, bg=bg, layer=layer, subset=subset,
                  **alpha_fields(alphas, len(y), given, alpha_scale), n_train=int(len(y)),
                  classes=classes, rows=rows, weights=_weights(heads, x_fg.shape[1]), stale=stale,
                  skipped=skipped, attacks=_attacks(store, keys, subset, stale),
                  heads=sorted(records), figures=[])
    if robust:
        result["robust"] = robust["info"]
        result["range"] = _range(store, dict(robust, rows=rows), entries + extra, where,
                                 seed) if rows else None
    if out_dir and rows:
        result["figures"] = heads_figures(result, out_dir) + robust_figures(result, out_dir)
    return finish(result, out_dir, f"fit-head-{subset}")
