"""Per-image predictions of the heads saved in a store, for paired tests.

Accuracy rows (:mod:`.fusion`, :mod:`.scoring`) count correct images; a paired test (paired
bootstrap, McNemar: :mod:`featlab.analyses.stats`) needs *which* images each head got right,
on the same images. :func:`head_predictions` gives that for any saved heads (``fg-all``,
``joint-all-alpha=10``, ``adv-joint-all`` ...) on one condition's valid test rows, from the
head files themselves (their float32 weights), so every head is scored on exactly the rows
and weights an attack or a later analysis sees.
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError
from ...store.heads import head_probabilities, heads_for, list_heads


def head_predictions(store, names, condition, *, subset=None, split="test") -> dict:
    """``{"ids": store row ids (n,), "labels": (n,), "predictions": {name: (n,)}}`` for the heads
    ``names`` on ``condition``'s valid ``split`` rows of ``subset`` (rows where every
    backbone's features are finite and the image decoded, under that condition).

    The heads must be fitted on ``subset`` (their classes index the subset's labels).
    """
    key = store.resolve_condition(condition)
    heads = heads_for(store.path, names, store.backbones)
    missing = [n for n in names if n not in heads]
    if missing:
        raise FeatlabError(f"store {store.path} lacks head(s) {', '.join(missing)}; fitted: "
                           f"{', '.join(list_heads(store.path)) or '(none)'}")
    classes = store.classes(subset)
    valid = store.valid(key, split=split, subset=subset)
    feats = {}
    for head in heads.values():
        for b, layer in zip(head["inputs"], head["layers"]):
            name = f"{b}/{layer}"
            if name not in feats:
                feats[name] = store.read(backbone=b, layer=layer, condition=key,
                                         split=split, subset=subset)
                valid &= np.isfinite(feats[name]).all(axis=1)
    labels = store.labels(split=split, subset=subset)[valid]
    out = dict(ids=store.rows(split, subset)[valid], labels=labels, predictions={})
    for name, head in heads.items():
        if head["classes"] is not None and list(head["classes"]) != classes:
            raise FeatlabError(f"head {name} was fitted on other classes than subset {subset!r}")
        probs = head_probabilities(head, {k: v[valid] for k, v in feats.items()})
        out["predictions"][name] = probs.argmax(axis=1)
    return out
