"""The robust part of ``fit-head``: ``--train-on`` (adversarial retraining), ``--recipe``
(mixed / parallel MAT) and ``--strengths`` (given, or ``auto``: the random walk of MAT
Section 4.3 on single-strength heads' validation accuracy matrix).

:func:`fit_robust_heads` returns the fitted models (scored beside the alpha heads by
:mod:`.scoring`), what the JSON reports about them, and the records saved in the store.
"""
from __future__ import annotations

import logging

from ...errors import FeatlabError
from ...mat import check_walk_options, random_walk_select
from ...store.heads import head_record, robust_head_name
from ...utils.validation import finite_number
from ..inputs import condition_family
from .robust import (HEAD_RECIPES, accuracy_matrix, fit_multiset, half_and_half, selection_kw,
                     single_strength_heads)
from .robust_data import KINDS, HeadData, crafted_against, strength_family, train_conditions

log = logging.getLogger(__name__)
ADVERSARIAL = "adv"


def parse_recipes(recipe) -> list[str]:
    """``--recipe``: a comma-separated string or a list; each a registered recipe."""
    items = recipe.split(",") if isinstance(recipe, str) else list(recipe or [])
    names = [r.strip() for r in items if r and r.strip()]
    for name in names:
        HEAD_RECIPES.get(name)
    return list(dict.fromkeys(names))


def parse_strengths(strengths):
    """``--strengths``: None, ``"auto"``, a comma-separated string or a list of floats."""
    if strengths is None or strengths == "auto":
        return "auto"
    items = strengths.split(",") if isinstance(strengths, str) else list(strengths)
    try:
        values = sorted({float(s) for s in items if str(s).strip()})
    except ValueError:
        raise FeatlabError(f"--strengths {strengths!r}: expected 'auto' or numbers such as "
                           f"0.05,0.1,0.15") from None
    if not values:
        raise FeatlabError("--strengths is empty; give e.g. 0.05,0.1,0.15 or auto")
    return values


def _pick(by_strength, values, family):
    out = []
    for v in values:
        match = [s for s in by_strength if abs(s - v) <= 1e-9 * max(1.0, abs(v))]
        if not match:
            raise FeatlabError(f"--strengths {v:g}: not stored for {family}; stored: "
                               f"{', '.join(f'{s:g}' for s in by_strength)} (extract it first)")
        out.append(match[0])
    return out


def plan_robust(store, *, train_on=None, recipe=None, strengths=None, attack=None,
                robust_head="joint", val_fraction=0.2, seed=0, walk=None) -> dict | None:
    """Check every robust option against the store before anything is fitted.

    Returns None when neither ``train_on`` nor ``recipe`` asks for a robust head, else the
    plan :func:`fit_robust_heads` follows: ``recipes``, ``train_keys`` (store keys),
    ``family`` and ``by_strength`` ({strength: key}) of the MAT strengths, ``strengths``
    ("auto" or the chosen stored values), and the other options.
    """
    recipes = parse_recipes(recipe)
    if strengths is not None and not recipes:
        raise FeatlabError("--strengths applies to --recipe mat-mixed / mat-parallel; add one")
    if robust_head not in KINDS:
        raise FeatlabError(f"--robust-head {robust_head!r}: expected one of {', '.join(KINDS)}")
    walk = dict(walk or {})
    walk_steps, walks, walk_penalty = check_walk_options(
        walk.get("walk_steps"), walk.get("walks", 1), walk.get("walk_penalty", 0.0))
    walk.update(walk_steps=walk_steps, walks=walks, walk_penalty=walk_penalty)
    finite_number(val_fraction, "--val-fraction", low=0, high=1, low_open=True)
    if not train_on and not recipes:
        return None
    plan = dict(recipes=recipes, robust_head=robust_head, val_fraction=val_fraction, seed=seed,
                walk=walk, family=None, train_keys=train_conditions(store, train_on)
                if train_on else [])
    if recipes:
        family, by_strength = strength_family(store, attack, plan["train_keys"])
        values = parse_strengths(strengths)
        if values == "auto" and not any(s > 0 for s in by_strength):
            raise FeatlabError(f"--strengths auto: {family} has no stored strength > 0")
        plan.update(family=family, by_strength=by_strength,
                    strengths=values if values == "auto" else _pick(by_strength, values, family))
    return plan


def _select(data, by_strength, tested, strengths, walk, head_kw):
    """Chosen strengths, the selection report and the fit-split single-strength heads."""
    if strengths != "auto":
        return strengths, dict(method="given"), {}
    candidates = [s for s in by_strength if s > 0]
    fitted = single_strength_heads(data, [by_strength[s] for s in candidates], "fit",
                                   **selection_kw(head_kw))
    A = accuracy_matrix(fitted, data, tested)
    result = random_walk_select(A, candidates, [0.0, *candidates], **walk)
    result.update(method="random-walk", tol=selection_kw(head_kw)["tol"])
    log.info("random walk chose strengths %s (G=%.4f)", result["strengths"], result["G"])
    return result["strengths"], result, fitted


def _adversarial(out, data, store, keys, common, head_kw):
    """Adversarial retraining on the ``--train-on`` conditions, half clean, half attacked."""
    shares = half_and_half(keys)
    sets = data.sets(keys, "train")
    head = fit_multiset(sets, shares=shares, **head_kw)
    info = dict(training_conditions=keys, shares=shares, n_rows=[len(y) for _, y in sets],
                crafted_against=[c for c in (crafted_against(store, k) for k in keys) if c])
    out["models"][ADVERSARIAL], out["info"][ADVERSARIAL] = head, info
    out["records"][robust_head_name(ADVERSARIAL, common["kind"], common["subset"])] = \
        head_record(head, recipe=ADVERSARIAL, n_train=sum(info["n_rows"]),
                    training_conditions=keys, training_shares=shares,
                    crafted_against=info["crafted_against"], **common)
    out["family"] = next((condition_family(k)[0] for k in keys if k != "clean"), None)


def _mat(out, data, store, plan, common, head_kw):
    """The MAT recipes on the given or random-walk-selected strengths."""
    by_strength = plan["by_strength"]
    tested = ["clean"] + [by_strength[s] for s in by_strength if s > 0]
    chosen, selection, fitted = _select(data, by_strength, tested, plan["strengths"],
                                        dict(plan["walk"], seed=plan["seed"]), head_kw)
    keys = [by_strength[s] for s in chosen]
    param = condition_family(keys[0])[1]
    out["family"] = plan["family"]
    out["info"]["strengths"] = dict(family=plan["family"], parameter=param, chosen=chosen,
                                    conditions=keys, selection=selection,
                                    crafted_against=[crafted_against(store, k) for k in keys])

    def n_rows(training):
        return sum(len(y) for _, y in data.sets(training, "train"))

    for name in plan["recipes"]:
        model, details = HEAD_RECIPES.get(name)(data, keys, tested=tested, fitted=fitted, **head_kw)
        out["models"][name] = model
        out["info"][name] = dict(details, strengths=chosen, conditions=keys)
        ensemble = robust_head_name(name, common["kind"], common["subset"])
        if not hasattr(model, "heads"):
            out["records"][ensemble] = head_record(
                model, recipe=name, training_conditions=["clean", *keys], strengths=chosen,
                n_train=n_rows(["clean", *keys]), **common)
            continue
        for s, k, h, a in zip(chosen, keys, model.heads, model.weights):
            out["records"][robust_head_name(name, common["kind"], common["subset"], s, param)] = \
                head_record(h, recipe=name, ensemble=ensemble, voting_weight=float(a),
                            strengths=[s], training_conditions=["clean", k],
                            n_train=n_rows(["clean", k]), **common)


def fit_robust_heads(store, plan, *, fg, bg, layer, subset, classes, head_kw) -> dict:
    """Fit the robust heads of a :func:`plan_robust` plan.

    ``head_kw`` go to every :class:`~featlab.heads.linear.LinearHead` (``n_classes``, ``l2``, ``tol``,
    ``max_iter``); ``plan["walk"]`` holds ``walk_steps``, ``walks``, ``walk_penalty``
    (:func:`featlab.mat.random_walk_select`). Returns dict ``models`` (label -> fitted
    predictor), ``info`` (for the JSON), ``records`` (store name -> (arrays, attrs)) and
    ``family`` (the condition family of the strengths, or None).
    """
    kind = plan["robust_head"]
    data = HeadData(store, fg=fg, bg=bg, kind=kind, layer=layer, subset=subset,
                    val_fraction=plan["val_fraction"], seed=plan["seed"])
    inputs = {"fg": [fg], "bg": [bg], "joint": [fg, bg]}[kind]
    common = dict(kind=kind, alpha=None, inputs=inputs, subset=subset, layer=layer,
                  classes=classes, backbones=[fg, bg], l2=head_kw.get("l2"))
    out = dict(models={}, records={}, family=None,
               info=dict(robust_head=kind, n_train=len(data.train_ids),
                         n_fit=len(data.fit_ids), n_val=len(data.val_ids),
                         val_fraction=plan["val_fraction"], seed=plan["seed"]))
    if plan["train_keys"]:
        _adversarial(out, data, store, plan["train_keys"], common, head_kw)
    if plan["recipes"]:
        _mat(out, data, store, plan, common, head_kw)
    return out
