"""Reading analysis inputs from a store: features of several backbones with labels and the
valid-row mask, how a condition key plots (family, strength), and whether a condition is
stale (made against a head that has been refit since)."""
from __future__ import annotations

import logging

import numpy as np

from ..conditions import condition_class, parse_condition
from ..errors import FeatlabError
from ..store.heads import stale_heads

log = logging.getLogger(__name__)


def is_probe(key: str) -> bool:
    """Probe sets hold T copies per row: only the local-property analyses read them."""
    return key != "clean" and parse_condition(key)[0].family == "probe"


def check_not_probe(key: str, what: str) -> None:
    if is_probe(key):
        raise FeatlabError(f"{what}: condition {key} is a probe set (copies per image), not "
                           f"one perturbed image per row; use it with featlab isotropy, "
                           f"symmetry, mantel or lipschitz")


def staleness(store, keys, now=None) -> dict:
    """Condition key -> True when it was made against a head that has changed or gone
    since (:func:`featlab.store.heads.stale_heads`), False when not, None when it predates
    head digests. Logs one note naming the stale ones. ``now``: name -> digest of heads
    fitted but not saved yet."""
    out, changed = {}, {}
    for key in keys:
        heads = stale_heads(store.path, store.condition_info(key), now)
        out[key] = None if heads is None else bool(heads)
        if heads:
            changed[key] = heads
    if changed:
        log.warning("stale: %d condition(s) were made against head(s) refit since (%s); their "
                    "results are labelled stale=true; to refresh one, delete its folder under "
                    "%s/conditions and extract it again", len(changed),
                    "; ".join(f"{k} <- {', '.join(h)}" for k, h in changed.items()), store.path)
    return out


def block(store, backbones, *, layer="penultimate", condition="clean", split=None, subset=None):
    """Features of several backbones (list of arrays), labels and the valid-row mask."""
    check_not_probe(condition, "these features")
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
