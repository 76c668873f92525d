"""Training data of the robust heads: train-split features only, and a validation split
carved from train (never from test).

:class:`HeadData` reads a store's *train* split alone — the test split, on which every head
is scored, is never read here — so features crafted against a head (the attack conditions
store every split) enter training through their train rows only. The validation rows (for
the MAT strength selection and the parallel-MAT voting coefficients) are a seeded,
class-stratified fraction of the clean train rows.
"""
from __future__ import annotations

import numpy as np

from ...conditions import parse_condition, parse_conditions
from ...errors import FeatlabError
from ...store.heads import paper_alpha
from ...utils.validation import finite_number
from ..inputs import block, condition_family

KINDS = ("fg", "bg", "joint")
PARTS = ("train", "fit", "val")


def carve_validation(ids, y, fraction, seed=0):
    """Split row ids (n,) with labels y (n,) into (fit_ids, val_ids), stratified by class.

    Each class with at least two rows gives ``round(fraction * n_c)`` rows (at least one, at
    most ``n_c - 1``) to validation, chosen by a generator seeded with ``seed``. Both outputs
    are sorted; they are disjoint and their union is ``ids``.
    """
    fraction = finite_number(fraction, "val_fraction", low=0, high=1, low_open=True)
    if fraction >= 1:
        raise FeatlabError(f"val_fraction={fraction:g}: expected a fraction in (0, 1)")
    ids, y = np.asarray(ids), np.asarray(y)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        rows = ids[y == c]
        if len(rows) >= 2:
            k = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
            val.append(rng.permutation(rows)[:k])
    val = np.sort(np.concatenate(val)) if val else np.array([], ids.dtype)
    if not len(val):
        raise FeatlabError("no class has two train images: cannot carve a validation split")
    return np.setdiff1d(ids, val), val


class HeadData:
    """Train-split features of one head input (``kind``: fg, bg or joint) per condition.

    Parameters
    ----------
    store : FeatureStore. fg, bg : backbone names. kind : "fg", "bg" or "joint".
    layer, subset : as ``fit-head``. val_fraction, seed : see :func:`carve_validation`.
    """

    def __init__(self, store, *, fg, bg, kind="joint", layer="penultimate", subset="all",
                 val_fraction=0.2, seed=0):
        if kind not in KINDS:
            raise FeatlabError(f"robust_head={kind!r}: expected one of {', '.join(KINDS)}")
        self.store, self.fg, self.bg, self.kind = store, fg, bg, kind
        self.layer, self.subset, self._cache = layer, subset, {}
        _, y, ids = self._train("clean")
        self.train_ids = ids
        self.fit_ids, self.val_ids = carve_validation(ids, y, val_fraction, seed)

    def _train(self, key):
        if key not in self._cache:
            (x_fg, x_bg), y, valid = block(self.store, (self.fg, self.bg), layer=self.layer,
                                           condition=key, split="train", subset=self.subset)
            X = {"fg": x_fg, "bg": x_bg}.get(self.kind)
            if X is None:
                X = np.hstack([x_fg, x_bg.astype(x_fg.dtype, copy=False)])
            ids = self.store.rows("train", self.subset)[valid]
            self._cache[key] = (X, y, ids)
        return self._cache[key]

    def sets(self, keys, part="train"):
        """[(X, y)] of each condition key on ``part``: "train", "fit" or "val" rows."""
        if part not in PARTS:
            raise ValueError(f"part {part!r}: expected one of {PARTS}")
        out = []
        for key in keys:
            X, y, ids = self._train(key)
            if part != "train":
                keep = np.isin(ids, self.val_ids if part == "val" else self.fit_ids)
                X, y = X[keep], y[keep]
            out.append((X, y))
        return out


def train_conditions(store, train_on) -> list[str]:
    """Store keys of ``--train-on`` (a comma-separated string or a list of strings; a
    condition with several strengths expands to each)."""
    return [store.resolve_condition(c.key) for c in parse_conditions(train_on)]


def crafted_against(store, key) -> dict:
    """Which head an attack condition's features were crafted against (empty otherwise)."""
    info = store.condition_info(key)
    if "head" not in info:
        return {}
    settings = info.get("head_settings") or {}
    return dict(condition=key, target=info.get("target"), head=info["head"],
                head_alpha=paper_alpha(settings), eps_space=info.get("eps_space"),
                head_training_conditions=settings.get("training_conditions"))


def families(store) -> dict:
    """{family label: {strength: key}} of the store's complete conditions with a strength."""
    out: dict = {}
    for key in store.conditions:
        if key != "clean" and store.condition_info(key)["complete"]:
            family, param, value = condition_family(key)
            if param:
                out.setdefault(family, {})[value] = key
    return out


def strength_family(store, attack=None, hint_keys=()) -> tuple[str, dict]:
    """(family label, {strength: key}) of the condition family MAT draws strengths from.

    ``attack``: a condition template such as ``fgsm:eps_space=normalized:target=fg`` (its
    strength, if given, is ignored). Without it: the family of the ``--train-on`` conditions
    (``hint_keys``) if they have one, else the store's only attack family.
    """
    found = families(store)
    if attack:
        family = condition_family(parse_condition(attack)[0].key)[0]
    else:
        hinted = {condition_family(k)[0] for k in hint_keys if k != "clean"}
        attacks = [f for f, ks in found.items()
                   if "head" in store.condition_info(next(iter(ks.values())))]
        family = hinted.pop() if len(hinted) == 1 else attacks[0] if len(attacks) == 1 else None
        if family is None:
            raise FeatlabError(f"which attack do the MAT strengths come from? give --attack, "
                               f"one of: {', '.join(found) or '(no stored family)'}")
    if family not in found:
        raise FeatlabError(f"--attack {attack or family}: no stored conditions of family "
                           f"{family!r}; stored families: {', '.join(found) or '(none)'}")
    return family, dict(sorted(found[family].items()))
