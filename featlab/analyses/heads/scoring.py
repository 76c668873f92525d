"""Scoring any head beside the alpha heads: which conditions are scored, accuracy rows per
condition, what each attack condition targeted, and the average accuracy over a strength
range with a bootstrap interval (MAT paper Table 1).

A scored *entry* is ``dict(head=label, alpha=float or None, kind="fg"|"bg"|"joint",
model=predictor)``; the predictor has ``predict(X) -> labels`` on the features of its kind.
"""
from __future__ import annotations

import logging

import numpy as np

from ...conditions import parse_condition
from ...errors import FeatlabError
from ...store.heads import paper_alpha
from ...store.rerun import extract_hint
from ..inputs import block
from ..stats import wilson_interval
from .fusion import _joint

log = logging.getLogger(__name__)


def test_inputs(store, key, *, fg, bg, layer, subset):
    """Test-split features of ``key`` for each kind, labels (n,) and store row ids (n,)."""
    (x_fg, x_bg), y, valid = block(store, (fg, bg), layer=layer, condition=key, split="test",
                                   subset=subset)
    ids = store.rows("test", subset)[valid]
    return {"fg": x_fg, "bg": x_bg, "joint": _joint(x_fg, x_bg)}, y, ids


def condition_rows(entries, inputs, y, condition) -> list[dict]:
    """Rows ``{condition, head, alpha, n, correct, accuracy, ci_low, ci_high}`` (as
    :func:`~.fusion.evaluate`) of each entry on one condition's test features."""
    rows, n = [], len(y)
    for e in entries:
        correct = int((e["model"].predict(inputs[e["kind"]]) == y).sum()) if n else 0
        low, high = wilson_interval(correct, n) if n else (float("nan"),) * 2
        rows.append(dict(condition=condition, head=e["head"], alpha=e["alpha"], n=n,
                         correct=correct, accuracy=correct / n if n else float("nan"),
                         ci_low=low, ci_high=high))
    return rows


def bootstrap_mean(correct, *, n_boot=2000, seed=0, confidence=0.95, index=None):
    """Mean accuracy over images and conditions of ``correct`` (n_images, n_conditions) and
    its percentile bootstrap interval, resampling images (paired across conditions).

    ``index`` (n_boot, n_images): resampled rows to reuse (the same for every head, so that
    heads are compared on the same resamples); drawn from ``seed`` when None.
    """
    correct = np.asarray(correct, np.float64)
    if correct.size == 0:  # an empty subset: no estimate, and no NumPy warning about it
        return dict(mean=float("nan"), ci_low=float("nan"), ci_high=float("nan"))
    per_image = correct.mean(axis=1)
    if index is None:
        index = np.random.default_rng(seed).integers(len(per_image), size=(n_boot, len(per_image)))
    boots = per_image[index].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boots, [tail, 100 - tail])
    return dict(mean=float(per_image.mean()), ci_low=float(low), ci_high=float(high))


def range_table(store, entries, range_keys, strengths, *, fg, bg, layer, subset, n_boot=2000,
                seed=0) -> list[dict]:
    """Average test accuracy of each entry over the conditions ``range_keys`` (clean and each
    stored strength of a family, at ``strengths``), on the test images valid in all of them,
    with a 95% paired bootstrap interval (MAT Table 1)."""
    per_key = [test_inputs(store, k, fg=fg, bg=bg, layer=layer, subset=subset)
               for k in range_keys]
    common = per_key[0][2]
    for _, _, ids in per_key[1:]:
        common = np.intersect1d(common, ids)
    if not len(common):
        return []
    columns = {id(e): [] for e in entries}
    for inputs, y, ids in per_key:
        keep = np.isin(ids, common)
        for e in entries:
            columns[id(e)].append(e["model"].predict(inputs[e["kind"]][keep]) == y[keep])
    index = np.random.default_rng(seed).integers(len(common), size=(n_boot, len(common)))
    table = []
    for e in entries:
        stats = bootstrap_mean(np.stack(columns[id(e)], axis=1), index=index)
        table.append(dict(head=e["head"], alpha=e["alpha"], **stats, n_images=int(len(common)),
                          strengths=[float(s) for s in strengths]))
    return table


def score_conditions(store, conditions):
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
                           f"run '{extract_hint(store.path, store.manifest, 'clean')}'")
    return keys, probes


def attack_info(store, keys, subset, stale) -> dict:
    """Condition -> what its attack targeted (target, head, stale, head alpha, success rate)."""
    attacks = {}
    for key in keys:
        info = store.condition_info(key)
        if "target" in info:
            success = store.read_array("attack/success", key, split="test", subset=subset)
            attacks[key] = dict(target=info["target"], head=info["head"], stale=stale[key],
                                head_alpha=paper_alpha(info.get("head_settings") or {}),
                                success_rate=float(np.mean(success)) if len(success) else None)
    return attacks
