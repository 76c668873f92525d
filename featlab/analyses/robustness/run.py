"""``robustness``: the M-TLAT paper's Table 1 for every classifier of a store.

Classifiers: the linear heads fitted in the store (``featlab fit-head``: fg, bg and joint at
every alpha) of one ``subset``, and every backbone whose own logits classify the task (the
networks ``featlab train`` makes), as ``<backbone> (logits)``. Every stored image condition is a column: clean accuracy,
then ``R = A_phi / A_clean`` (equation 7); a perturbation with a ``severity`` (the
ImageNet-C corruptions, rotate/translate/color/occlude) is one column, the mean of R over
its stored severities, as Table 1 does; each other condition (attacks, blur) is its own
column. "+"/"-" mark where a classifier's R differs from the reference's outside the 95 %
paired-bootstrap interval (same test images); mCE relative to the reference over the
ImageNet-C corruptions (:mod:`.scores`). Attack conditions are white-box for the head they
were crafted on (recorded in the condition's info) and transfer for the other heads; a
column whose conditions were made against a head refit since is marked ``stale`` in every
row's ``scores``, and `` (stale)`` in the CSV header and the heatmap (``stale`` maps each
condition to True/False/None). A head whose fit-head run's heads are mixed with another
run's (a run stopped between head files, :mod:`featlab.store.fits`) has ``mixed: true`` in
its row, is listed in ``mixed_heads``, and a warning names the heads.
"""
from __future__ import annotations

import csv
import io
import logging
import os

import numpy as np

from ...conditions import parse_condition
from ...errors import FeatlabError
from ...perturbations.corrupt import IMAGENET_C
from ...store.fits import REPAIR, describe_mix, mixed_fits
from ...store.heads import head_probabilities, heads_for, list_heads, load_head
from ...store.rerun import extract_hint
from ...utils.figures import new_figure, save_figure
from ...utils.paths import atomic_write_text, output_errors
from ...utils.results import finish
from ...utils.validation import enough_resamples
from ..inputs import condition_family, staleness
from ..registry import ANALYSES
from .plots import column_label, plot_robustness
from .scores import mean_corruption_error, robustness_scores

log = logging.getLogger(__name__)


def _task_backbones(store) -> dict:
    """Backbones whose own logits classify the store's task (networks ``featlab train``
    made, whose manifest record names the task's classes in label order): ``name (logits)``
    -> a classifier that takes the argmax of the stored logits."""
    classes = list(store.samples.classes)
    return {f"{b} (logits)": dict(inputs=[b], layer="logits", logits_of=b)
            for b, meta in store.backbone_meta.items()
            if meta.get("task_classes") == classes and "logits" in meta.get("layers", ())}


def _predict(classifier: dict, feats: dict) -> np.ndarray:
    if "logits_of" in classifier:
        return feats[f"{classifier['logits_of']}/logits"].argmax(axis=1)
    return head_probabilities(classifier, feats).argmax(axis=1)


def _classifiers(store, subset: str) -> dict:
    names = [n for n in list_heads(store.path) if load_head(store.path, n)[1].get("subset") == subset]
    heads = dict(heads_for(store.path, names, store.backbones), **_task_backbones(store))
    if not heads:
        raise FeatlabError(f"store {store.path} has no classifier for subset {subset!r} "
                           f"(heads: {', '.join(list_heads(store.path)) or 'none'}); fit them: featlab "
                           f"fit-head --store {store.path} --subset {subset}")
    return heads


def _mixed(store, heads: dict) -> set:
    """Classifiers among ``heads`` whose fit-head run's heads are mixed with another run's
    (:mod:`featlab.store.fits`): their rows compare heads that were not fitted together."""
    mixed = [m for m in mixed_fits(store.path) if set(m["heads"] + m["changed"]) & set(heads)]
    if mixed:
        log.warning("%s; their rows are marked mixed — %s", describe_mix(mixed), REPAIR)
    return {n for m in mixed for n in m["heads"] + m["changed"]} & set(heads)


def _columns(keys: list) -> tuple[dict, dict]:
    """Column name -> condition keys, and the ImageNet-C ones (for mCE)."""
    columns: dict = {}
    for key in keys:
        family, parameter, _ = condition_family(key)
        name = family.replace(":region=all", "") if parameter == "severity" else key
        columns.setdefault(name, []).append(key)
    corruptions = {c: k for c, k in columns.items() if c.startswith("corrupt:")}
    return columns, corruptions


def _correctness(store, heads: dict, keys: list, subset: str):
    labels = store.labels(split="test", subset=subset)
    valid = np.ones(len(labels), bool)
    correct = {name: {} for name in heads}
    layers = {(b, layer) for h in heads.values()
              for b, layer in zip(h["inputs"], h.get("layers") or [h["layer"]] * len(h["inputs"]))}
    for key in keys:
        valid &= store.valid(key, split="test", subset=subset)
        feats = {f"{b}/{layer}": store.read(backbone=b, layer=layer, condition=key,
                                            split="test", subset=subset) for b, layer in layers}
        for values in feats.values():
            valid &= np.isfinite(values).all(axis=1)
        for name, head in heads.items():
            correct[name][key] = _predict(head, feats) == labels
    if valid.sum() < 2:
        raise FeatlabError(f"only {int(valid.sum())} test rows are valid in every condition; "
                           f"need >= 2")
    return {n: {k: v[valid] for k, v in by_key.items()} for n, by_key in correct.items()}, valid


@ANALYSES.register("robustness")
def robustness(store, *, reference=None, subset="all", n_boot=1000, seed=0,
               out_dir=None) -> dict:
    """Table 1 rows for every classifier; with ``out_dir`` also ``robustness-<subset>.csv``,
    the heatmap (PNG + PDF) and ``robustness-<subset>.json``.

    ``n_boot`` >= 100 resamples (the +/- marks come from their 95 % interval). A row's
    ``mCE`` is None where it is undefined, and ``mce_note`` says why (no ImageNet-C
    corruption stored, or the reference makes no error on one); otherwise ``mce_note``
    names how many of the 15 ImageNet-C corruptions it averages.
    """
    enough_resamples(n_boot)
    if "clean" not in store.conditions:
        raise FeatlabError(f"store {store.path} has no clean condition, which R divides by; "
                           f"extract it: {extract_hint(store.path, store.manifest, 'clean')}")
    heads = _classifiers(store, subset)
    reference = reference or next((n for n in sorted(heads) if n.startswith("fg-")),
                                  sorted(heads)[0])
    if reference not in heads:
        raise FeatlabError(f"--reference {reference!r} is not a classifier of subset {subset!r};"
                           f" known: {', '.join(sorted(heads))}")
    keys = [k for k in store.conditions if parse_condition(k)[0].family != "probe"]
    columns, corruptions = _columns([k for k in keys if k != "clean"])
    correct, valid = _correctness(store, heads, keys, subset)
    scores = robustness_scores(correct, "clean", columns, reference, n_boot=n_boot, seed=seed)
    mce = mean_corruption_error(correct, corruptions, reference)
    stale = staleness(store, keys)
    mixed = _mixed(store, heads)
    rows = [dict(classifier=n, clean=s["clean"], mCE=_defined(mce[n]["mCE"]), CE=mce[n]["CE"],
                 mixed=n in mixed, scores={c: dict(v, stale=any(stale[k] for k in columns[c]))
                                           for c, v in s["scores"].items()})
            for n, s in scores.items()]
    result = dict(store=store.path, subset=subset, reference=reference, n_test=int(valid.sum()),
                  n_boot=n_boot, columns=columns, rows=rows, stale=stale,
                  mixed_heads=sorted(mixed), figures=[],
                  mce_note=_mce_note(mce[reference]["CE"], reference))
    if out_dir:
        result["csv"] = _write_csv(result, os.path.join(out_dir, f"robustness-{subset}.csv"))
        fig, (ax,) = new_figure(1, size=(1.0 + 0.55 * len(columns), 1.2 + 0.45 * len(rows)))
        plot_robustness(result, ax=ax)
        result["figures"] = save_figure(fig, os.path.join(out_dir, f"robustness-{subset}"))
    return finish(result, out_dir, f"robustness-{subset}")


def _defined(value):
    return None if value != value else value  # NaN: undefined


def _mce_note(reference_ce: dict, reference: str) -> str:
    """Why mCE is missing, or what it averages (Hendrycks & Dietterich use all 15)."""
    if not reference_ce:
        return (f"mCE needs the {len(IMAGENET_C)} ImageNet-C corruptions "
                f"(corrupt:name=imagenet-c:severity=1:2:3:4:5); none is stored")
    none = sorted(c for c, v in reference_ce.items() if v != v)
    if none:
        return (f"mCE undefined: the reference {reference} makes no error on "
                f"{', '.join(none)} (CE divides by its errors)")
    return f"mCE over {len(reference_ce)} of the {len(IMAGENET_C)} ImageNet-C corruptions"


def _write_csv(result: dict, path: str) -> str:
    """Table 1 as the paper prints it: clean accuracy, R with its +/- mark, mCE (a column
    only when it is defined); stale columns marked (:func:`column_label`)."""
    columns = list(result["columns"])
    mce = any(row["mCE"] is not None for row in result["rows"])
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["classifier", "clean", *(column_label(result, c) for c in columns)]
                    + ["mCE"] * mce)
    for row in result["rows"]:
        cells = [f"{row['scores'][c]['R']:.4f}{row['scores'][c]['sign']}" for c in columns]
        writer.writerow([row["classifier"], f"{row['clean']:.4f}", *cells]
                        + ([f"{row['mCE']:.4f}" if row["mCE"] is not None else "n/a"] * mce))
    with output_errors(path):
        atomic_write_text(path, text.getvalue())
    return path
