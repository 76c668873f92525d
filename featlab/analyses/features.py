"""Reading analysis inputs from a store: which backbone is foreground, valid rows, labels."""
from __future__ import annotations

import numpy as np

from ..errors import FeatlabError

OBJECT_HINTS = ("imagenet", "object")
SCENE_HINTS = ("places", "scene")


def fg_bg(store, fg=None, bg=None) -> tuple[str, str]:
    """The foreground (object) and background (scene) backbones of a store."""
    names = store.backbones
    if fg is None:
        fg = next((n for n in names if any(h in n for h in OBJECT_HINTS)), names[0])
    if bg is None:
        rest = [n for n in names if n != fg]
        bg = next((n for n in rest if any(h in n for h in SCENE_HINTS)), rest[0] if rest else None)
    for name in (fg, bg):
        if name is None:
            raise FeatlabError(f"store {store.path} has one backbone ({fg}); fusion needs two — "
                               f"extract with --backbones OBJECT,SCENE")
        if name not in names:
            raise FeatlabError(f"backbone {name!r} is not in store {store.path}; stored: "
                               f"{', '.join(names)}")
    return fg, bg


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
    from ..perturbations import PERTURBATIONS, parse_condition

    if key == "clean":
        return "clean", "", 0.0
    (cond,) = parse_condition(key)
    spec = PERTURBATIONS.get(cond.name).params
    multi = next((p.name for p in spec if p.multi), None)
    rest = ":".join(f"{k}={v}" for k, v in cond.params.items() if k != multi)
    family = f"{cond.name}:{rest}" if rest else cond.name
    return family, multi or "", float(cond.params.get(multi, 0.0)) if multi else 0.0
