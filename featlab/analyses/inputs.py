"""Reading analysis inputs from a store: features of several backbones with labels and the
valid-row mask, and how a condition key plots (family, strength)."""
from __future__ import annotations

import numpy as np

from ..conditions import condition_class, parse_condition


def block(store, backbones, *, layer="penultimate", condition="clean", split=None, subset=None):
    """Features of several backbones (list of arrays), labels and the valid-row mask."""
    arrays = [store.read(backbone=b, layer=layer, condition=condition, split=split, subset=subset)
              for b in backbones]
    valid = store.valid(condition, split=split, subset=subset)
    for a in arrays:
        valid &= np.isfinite(a).all(axis=1)
    labels = store.labels(split=split, subset=subset)
    return [a[valid] for a in arrays], labels[valid], valid


def condition_family(key: str) -> tuple[str, str, float]:
    """(family label, strength parameter, value) for plotting accuracy against strength."""
    if key == "clean":
        return "clean", "", 0.0
    (cond,) = parse_condition(key)
    spec = condition_class(cond.name)[0].params
    multi = next((p.name for p in spec if p.multi), None)
    rest = ":".join(f"{k}={v}" for k, v in cond.params.items() if k != multi)
    family = f"{cond.name}:{rest}" if rest else cond.name
    return family, multi or "", float(cond.params.get(multi, 0.0)) if multi else 0.0
