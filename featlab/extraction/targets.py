"""The classifier a gradient attack runs against, built from the store's fitted heads.

``target=fg`` / ``bg``: the object / scene backbone with its head ``fg-all`` / ``bg-all``
(the fusion paper's threat model is ``fg``, Section 3.3); ``target=joint``: both backbones
and the joint head ``joint-all-alpha=<head_alpha>``, differentiated end to end (the adaptive
white-box attack); ``target=surrogate:surrogate=NAME``: the store backbone NAME with its own
head (a transfer attack onto the others). Heads come from ``featlab fit-head``; which
backbone is the object one comes from :mod:`featlab.backbones.roles`.
"""
from __future__ import annotations

import numpy as np
import torch

from ..backbones.classifier import classifier_from_head
from ..backbones.roles import fg_or_single
from ..errors import FeatlabError
from ..store.heads import head_name, load_head

HEAD_SETTINGS = ("kind", "alpha", "subset", "layer", "training_conditions", "inputs", "n_train")


class TargetModels:
    """Builds (and caches) target classifiers for the attack conditions of one run.

    Parameters
    ----------
    root : str — the store (its ``heads/``)
    models : list of Backbone, in ``--backbones`` order
    backbones : dict name -> metadata with ``role`` (as the manifest records it)
    """

    def __init__(self, root: str, models: list, backbones: dict):
        self.root = root
        self.models = {m.name: m for m in models}
        self.fg, self.bg = fg_or_single(backbones)
        self._cache: dict = {}

    def head_name(self, condition) -> str:
        p = condition.params
        if p["target"] == "joint":
            if self.bg is None:
                raise FeatlabError(f"{condition.key}: target=joint needs two backbones; this "
                                   f"store has {self.fg} only — use target=fg")
            return head_name("joint", "all", p["head_alpha"])
        if p["target"] == "surrogate":
            if p["surrogate"] not in self.models:
                raise FeatlabError(f"{condition.key}: surrogate {p['surrogate']!r} is not a "
                                   f"backbone of this store ({', '.join(self.models)})")
            return head_name("fg" if p["surrogate"] == self.fg else "bg", "all")
        if p["target"] == "bg" and self.bg is None:
            raise FeatlabError(f"{condition.key}: target=bg needs a scene backbone; this store "
                               f"has {self.fg} only — use target=fg")
        return head_name(p["target"], "all")

    def _load(self, name: str):
        arrays, attrs = load_head(self.root, name, purpose="to attack")
        if attrs.get("layer") != "penultimate":
            raise FeatlabError(f"head {name} was fitted on layer {attrs.get('layer')}; attacks "
                               f"need a penultimate-layer head (fit-head --layer penultimate)")
        return arrays, attrs

    def describe(self, condition) -> dict:
        """What an attack condition records about its target (empty for other conditions)."""
        if not getattr(condition.perturbation, "needs_model", False):
            return {}
        name = self.head_name(condition)
        _, attrs = self._load(name)
        return dict(target=condition.params["target"], head=name,
                    head_settings={k: attrs.get(k) for k in HEAD_SETTINGS},
                    eps_space=condition.params.get("eps_space", "pixel"))

    def model_for(self, condition):
        name = self.head_name(condition)
        if name not in self._cache:
            arrays, attrs = self._load(name)
            self._cache[name] = classifier_from_head(arrays, attrs, self.models, name=name,
                                                     purpose="an attack")
        return self._cache[name]

    @staticmethod
    def outcome(model, adv, aimed, targeted: bool) -> dict:
        """Per-row attack outcome against its own target model (stored beside features).

        ``aimed``: the target classes of a targeted attack, else the true labels.
        """
        with torch.inference_mode():
            pred = model(adv).argmax(1)
        success = pred == aimed if targeted else pred != aimed
        return {"attack/success": success.cpu().numpy().astype(bool),
                "attack/prediction": pred.cpu().numpy().astype(np.int64)}
