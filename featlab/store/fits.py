"""Which ``featlab fit-head`` run saved each head, so that heads of two runs are told apart.

One run saves several heads at once (fg, bg, one joint head per alpha, robust heads). Each
head file records, in its attribute ``fit``, the content digest
(:func:`~featlab.store.heads.head_digest`, which leaves ``fit`` out) of every head that run
saved: ``{"heads": {name: digest}}``. The heads of a run are *mixed* when one of them is no
longer as the run saved it, or is gone: a run stopped between head files (the older run's
heads remain beside the new ones), or a later run refit some of them with other settings.
A refit with the same settings saves the same content and mixes nothing; runs that save
other names (another ``--subset``) do not touch each other. Heads saved before this record
existed carry none and are not judged.
"""
from __future__ import annotations

import json

import h5py

from ..errors import FeatlabError
from .heads import FIT, current_digest, head_path, list_heads

REPAIR = ("rerun one fit-head command for all of them, with the settings you want (a run "
          "saves fg, bg and every --alpha of a --subset)")


def _records(root: str) -> dict:
    """Head name -> the ``fit`` record it carries (None: none, or the file is unreadable;
    damage is reported by the checksum checks)."""
    out = {}
    for name in list_heads(root):
        try:
            with h5py.File(head_path(root, name), "r") as handle:
                raw = handle.attrs.get(FIT)
            out[name] = json.loads(raw)["heads"] if raw is not None else None
        except (OSError, ValueError, KeyError, TypeError):
            out[name] = None
    return out


def mixed_fits(root: str) -> list[dict]:
    """The runs whose heads are mixed: one dict per run with ``heads`` (its heads still as
    it saved them) and ``changed`` (the heads it saved that differ now or are gone; a
    damaged head is left to the checksum checks)."""
    records = _records(root)
    own = {name: fit[name] for name, fit in records.items() if fit and name in fit}

    def now(name, saved):
        if name in own:
            return own[name]
        try:
            return current_digest(root, name)
        except FeatlabError:  # damaged: the checksum checks name it, not judged here
            return saved

    runs: dict = {}
    for name, fit in records.items():
        if fit:
            runs.setdefault(json.dumps(fit, sort_keys=True), []).append(name)
    out = []
    for key, names in sorted(runs.items(), key=lambda item: item[1]):
        fit = json.loads(key)
        changed = sorted(n for n, digest in fit.items()
                         if n not in names and now(n, digest) != digest)
        if changed:
            out.append(dict(heads=sorted(names), changed=changed))
    return out


def describe_mix(mixed: list[dict]) -> str:
    """One line naming the mixed heads, e.g. ``fg-all was saved with bg-all as it no longer
    is``."""
    parts = [f"{', '.join(m['heads'])} {'was' if len(m['heads']) == 1 else 'were'} saved "
             f"with {', '.join(m['changed'])} as {'it' if len(m['changed']) == 1 else 'they'} "
             f"no longer {'is' if len(m['changed']) == 1 else 'are'}" for m in mixed]
    return ("heads of different fit-head runs are mixed (a run stopped between head files, "
            "or refit some heads with other settings): " + "; ".join(parts))


def mix_problems(root: str) -> list[dict]:
    """:func:`mixed_fits` as store problems (``featlab store verify`` and ``info``)."""
    mixed = mixed_fits(root)
    if not mixed:
        return []
    return [dict(file="heads/", problem=describe_mix(mixed), repair=REPAIR)]
