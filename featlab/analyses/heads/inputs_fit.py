"""``fit-head --head TYPE --inputs A,B,C --penalty A=10``: heads of any registered type
(:data:`featlab.heads.HEADS`) on any list of stored backbones, with a penalty per input.

The fusion paper (Sections 2.1, 3.4) fuses two backbones with a linear head and penalizes the
foreground block (``alpha |theta_fg|^2`` beside the summed cross-entropy); its conclusion
(Section 4) proposes more contexts and richer fusion layers. Here a head is described by its inputs (backbone,
or ``backbone/layer``), in order, and one penalty per input on the paper's scale (each
solved as ``penalty / N`` beside the mean loss: :mod:`.alphas`). ``alphas`` sweep the penalty
of the foreground (object) backbone when it is an input that ``penalty`` does not name, as
the joint head's alpha does; without ``inputs`` the inputs are the roles' fg and bg.

Names: with ``inputs`` given, ``mlp-object+scene+third-all-object=10`` (type, inputs,
subset, then each nonzero penalty); without, ``mlp-joint-all-alpha=10``. Each head is scored
like the paper's heads (accuracy with a Wilson interval per condition, ``threat``,
``stale``; ``head`` is its name, ``alpha`` None and ``penalty_alpha`` the swept foreground
penalty or None); ``weights`` give per input the mean |first-layer weight| (linear, mlp; Figure 4b)
or the mean gate weight (gated), and each gated row carries its condition's gate means.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ...backbones.roles import fg_bg
from ...errors import FeatlabError
from ...heads import HEADS
from ...heads.base import fit_sweep
from ...params import format_value
from ...store.heads import head_digest, head_record, save_heads
from ...utils.results import finish
from ...utils.validation import finite_number
from ..inputs import check_not_probe, condition_family, staleness
from ..stats import wilson_interval
from .alphas import alpha_fields, mean_alpha, paper_alphas
from .scoring import attack_info, score_conditions

log = logging.getLogger(__name__)


def parse_inputs(store, inputs, layer: str) -> list[tuple[str, str]]:
    """``[(backbone, layer), ...]`` from ``"a,b/logits"`` or a list; checked against the store."""
    items = inputs.split(",") if isinstance(inputs, str) else list(inputs)
    out = []
    for item in (str(i).strip() for i in items):
        backbone, _, own = item.partition("/")
        if backbone not in store.backbones:
            raise FeatlabError(f"--inputs {item!r}: no backbone {backbone!r} in store "
                               f"{store.path}; stored: {', '.join(store.backbones)}")
        if (own or layer) not in store.layers(backbone):
            raise FeatlabError(f"--inputs {item!r}: layer {own or layer!r} is not stored for "
                               f"{backbone}; stored: {', '.join(store.layers(backbone))}")
        out.append((backbone, own or layer))
    if not out or len({b for b, _ in out}) != len(out):
        raise FeatlabError(f"--inputs {inputs!r}: give one or more distinct backbones")
    return out


def parse_penalty(penalty, names) -> dict:
    """``{input: paper-scale penalty}`` from a dict or ``"a=10,b=1"`` / ``["a=10", ...]``."""
    if penalty is None:
        return {}
    if not isinstance(penalty, dict):
        items = penalty.split(",") if isinstance(penalty, str) else list(penalty)
        pairs = [str(i).partition("=") for i in items if str(i).strip()]
        if any(not sep for _, sep, _ in pairs):
            raise FeatlabError(f"--penalty {penalty!r}: expected INPUT=VALUE, e.g. object=10")
        penalty = {k.strip(): v for k, _, v in pairs}
    unknown = [k for k in penalty if k not in names]
    if unknown:
        raise FeatlabError(f"--penalty names {unknown[0]!r}, not an input; inputs: "
                           f"{', '.join(names)}")
    return {k: finite_number(v, f"--penalty {k}", low=0, hint="; a penalty must be >= 0")
            for k, v in penalty.items()}


def _foreground(store):
    """The object (fg) backbone of the store, None when it has a single backbone."""
    try:
        return fg_bg(store.backbone_meta, where=f"store {store.path}")[0]
    except FeatlabError:
        return None


def _plan(store, head, pairs, roles, penalty, alphas, alpha_scale, n):
    """Per head: (name template, paper-scale penalty per input, its fg alpha or None), and
    the paper's alphas of the sweep."""
    names, fg = [b for b, _ in pairs], _foreground(store)
    fixed = parse_penalty(penalty, names)
    sweep = paper_alphas(alphas, alpha_scale, n)
    if sweep != [0.0] and (fg not in names or fg in fixed):
        raise FeatlabError(f"--alpha penalizes the foreground backbone {fg}; it is not an "
                           f"unpenalized input here: give its penalty with --penalty {fg}=V")
    plans = []
    for alpha in sweep:
        pen = {b: fixed.get(b, alpha if b == fg else 0.0) for b in names}
        if roles and not fixed:
            name = f"{head}-joint-{{subset}}-alpha={format_value(alpha)}"
        else:
            name = f"{head}-{'+'.join(names)}-{{subset}}" + "".join(
                f"-{b}={format_value(v)}" for b, v in pen.items() if v)
        plans.append((name, pen, alpha if fg in names and fg not in fixed else None))
    return plans, sweep


def _read(store, pairs, *, condition="clean", split=None, subset=None):
    """Blocks of the inputs (each its own layer), labels and the valid-row mask (as
    :func:`~featlab.analyses.inputs.block`)."""
    check_not_probe(condition, "these features")
    arrays = [store.read(backbone=b, layer=lay, condition=condition, split=split, subset=subset)
              for b, lay in pairs]
    valid = store.valid(condition, split=split, subset=subset)
    for a in arrays:
        valid &= np.isfinite(a).all(axis=1)
    return [a[valid] for a in arrays], store.labels(split=split, subset=subset)[valid], valid


def _rows(store, keys, fitted, stale, subset, pairs):
    rows = []
    for key in keys:
        blocks, y, _ = _read(store, pairs, condition=key, split="test", subset=subset)
        family, param, value = condition_family(key)
        info, n = store.condition_info(key), len(y)
        for name, (h, alpha) in fitted.items():
            correct = int((h.predict(blocks) == y).sum()) if n else 0
            low, high = wilson_interval(correct, n) if n else (float("nan"),) * 2
            row = dict(condition=key, head=name, alpha=None, penalty_alpha=alpha, n=n,
                       correct=correct, accuracy=correct / n if n else float("nan"),
                       ci_low=low, ci_high=high, family=family, parameter=param,
                       strength=value, subset=subset, stale=stale[key],
                       threat=None if "target" not in info else
                       "white-box" if info.get("head") == name else "transfer")
            if hasattr(h, "gate_weights") and n:
                row["gate"] = [float(g) for g in h.gate_weights(blocks).mean(axis=0)]
            rows.append(row)
    return rows


def fit_input_heads(store, *, head, inputs, penalty, alphas, alpha_scale, subset, layer, l2,
                    width, keys, save, linear_kw=None) -> dict:
    """Fit, score and save the heads of one ``fit-head --head/--inputs/--penalty`` call
    (module docstring); the part of :func:`~.run.fit_head`'s result these heads give.
    ``linear_kw`` (``tol``, ``max_iter``) go to linear heads, as to the paper's heads."""
    if width is not None and head != "mlp":
        raise FeatlabError(f"--width sets the mlp head's hidden units; --head is {head}")
    HEADS.get(head)  # an unknown type is refused before anything is read
    roles = inputs is None
    pairs = parse_inputs(store, ",".join(fg_bg(store.backbone_meta, where=f"store "
                                               f"{store.path}")) if roles else inputs, layer)
    names = [b for b, _ in pairs]
    parse_penalty(penalty, names)
    blocks, y, _ = _read(store, pairs, split="train", subset=subset)
    plans, sweep = _plan(store, head, pairs, roles, penalty, alphas, alpha_scale, len(y))
    classes = store.classes(subset)
    if len(np.unique(y)) < 2:
        raise FeatlabError(f"subset {subset!r} has fewer than 2 classes with training images")
    params = dict(l2=l2, **({} if width is None else dict(width=int(width))),
                  **(linear_kw or {} if head == "linear" else {}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heads = fit_sweep(head, blocks, y, [[mean_alpha(p[b], len(y)) for b in names]
                                            for _, p, _ in plans],
                          n_classes=len(classes), **params)
    if caught:
        log.info("%d %s head fit(s) stopped at max_iter before tol", len(caught), head)
    fitted, records, weights = {}, {}, []
    for (template, pen, alpha), h in zip(plans, heads):
        name = template.format(subset=subset)
        fitted[name] = (h, alpha)
        records[name] = head_record(
            h, kind="fusion", alpha=alpha, penalty=pen, penalty_mean={
                b: mean_alpha(v, len(y)) for b, v in pen.items()}, subset=subset,
            layer=pairs[0][1] if len({lay for _, lay in pairs}) == 1 else "mixed",
            layers=[lay for _, lay in pairs], inputs=names, input_dims=h.input_dims_, l2=l2,
            training_conditions=["clean"], classes=classes, n_train=int(len(y)),
            backbones=names)
        weights.append(dict(head=name, measure="gate" if head == "gated" else "mean |weight|",
                            **dict(zip(names, h.input_weights()))))
    keys = keys if len(store.rows("test", subset)) else []
    stale = staleness(store, keys, {n: head_digest(*r) for n, r in records.items()})
    rows = _rows(store, keys, fitted, stale, subset, pairs)
    if save:
        save_heads(store.path, records)
    return dict(store=store.path, head=head, inputs=names, layer=layer, subset=subset,
                penalty=parse_penalty(penalty, names),
                **alpha_fields(sweep, len(y), alphas, alpha_scale), n_train=int(len(y)),
                classes=classes, rows=rows, weights=weights, stale=stale,
                heads=sorted(records), figures=[], scored=keys)


def fit_head_inputs(store, conditions, subset, out_dir, paper_only: dict, **kw) -> dict:
    """:func:`~.run.fit_head` with ``head`` / ``inputs`` / ``penalty`` / ``width``: the
    heads of :func:`fit_input_heads`, scored on every condition but probe sets. The options
    of the paper's linear heads (``paper_only``: ``train_on``, ``recipe``, ``fg``, ``bg``) are
    refused."""
    given = [f"--{k.replace('_', '-')}" for k, v in paper_only.items() if v]
    if given:
        raise FeatlabError(f"{', '.join(given)} go with the paper's linear fg/bg/joint heads; "
                           f"with --head/--inputs/--penalty/--width, list the backbones in "
                           f"--inputs instead")
    keys, skipped = score_conditions(store, conditions)
    result = fit_input_heads(store, subset=subset, keys=keys, **kw)
    result.update(skipped=skipped, attacks=attack_info(store, result.pop("scored"), subset,
                                                       result["stale"]))
    return finish(result, out_dir, f"fit-head-{subset}")

