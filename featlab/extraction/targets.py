"""The classifier a gradient attack runs against, built from the store's fitted heads.

``target=fg`` / ``bg``: the object / scene backbone with its head ``fg-all`` / ``bg-all``
(the fusion paper's threat model is ``fg``, Section 3.3); ``target=joint``: both backbones
and the joint head ``joint-all-alpha=<head_alpha>`` (the paper's alpha), differentiated end
to end (the adaptive white-box attack); ``target=head:NAME``: any stored head NAME (a robust
head, a head over N backbones, ...) with every backbone it reads, in the order of its
``inputs``, differentiated end to end (``fg``/``bg``/``joint`` are the heads they name);
``target=surrogate:surrogate=NAME``: the store backbone NAME with its own head (a transfer
attack onto the others). ``head_subset=similar|dissimilar`` attacks the head fitted on that
class subset (``fg-similar``, ``joint-dissimilar-alpha=0``; widened to the store's classes by
:func:`~featlab.store.heads.in_store_classes`, so only the subset's rows are meaningful — the
ones ``fit-head --subset`` scores). Heads come from ``featlab fit-head``; which backbone is
the object one comes from :mod:`featlab.backbones.roles`.

A network trained by ``featlab train`` on the store's classes is its own classifier: with
``target=fg`` / ``bg`` (when it has that role) or ``target=surrogate:surrogate=NAME`` the
attack climbs *its logits*, no head needed (``head="own-logits"`` in the condition's
record). A surrogate need not be in the store: NAME may be a trained file in
``<cache>/weights/NAME.pt`` or one given with ``--weights NAME=PATH``; the attack is
crafted on it and the store's backbones see the result (a transfer attack).
"""
from __future__ import annotations

import numpy as np
import torch

from ..backbones.classifier import classifier_from_head
from ..backbones.roles import fg_or_single
from ..backbones.trained import build_backbone
from ..errors import FeatlabError
from ..params import head_target
from ..store.heads import head_digest, head_digests, head_name, in_store_classes, list_heads, \
    load_head
from .probing import scoring_heads

HEAD_SETTINGS = ("kind", "alpha", "alpha_scale", "subset", "layer", "training_conditions", "inputs", "n_train")


class TargetModels:
    """Builds (and caches) target classifiers for the attack conditions of one run.

    Parameters
    ----------
    root : str — the store (its ``heads/``)
    models : list of Backbone, in ``--backbones`` order
    backbones : dict name -> metadata with ``role`` (as the manifest records it)
    classes : list of str — the store's classes (a trained network whose ``task_classes``
        equal them is attacked through its own logits)
    weights, cache_dir : where surrogates outside the store are found (``NAME=PATH``)
    """

    def __init__(self, root: str, models: list, backbones: dict, classes=None, weights=None,
                 cache_dir=None):
        self.root = root
        self.models = {m.name: m for m in models}
        self.fg, self.bg = fg_or_single(backbones)
        self.classes = None if classes is None else list(classes)
        self.weights, self.cache_dir = dict(weights or {}), cache_dir
        self._cache: dict = {}
        self._external: dict = {}

    def own_classifier(self, condition):
        """The attacked network itself when it classifies the store's classes, else None."""
        p = condition.params
        if p["target"] == "joint" or head_target(p["target"]) or self.classes is None:
            return None
        name = p["surrogate"] if p["target"] == "surrogate" else (
            self.fg if p["target"] == "fg" else self.bg)
        model = self.models.get(name)
        if model is None and p["target"] == "surrogate":
            model = self._surrogate(name, condition)
        return model if getattr(model, "task_classes", None) == self.classes else None

    def _surrogate(self, name: str, condition):
        """A surrogate outside the store: a trained file classifying the store's classes."""
        if name not in self._external:
            device = next(iter(self.models.values())).mean.device
            model = build_backbone(name, weights=self.weights.get(name), cache_dir=self.cache_dir)
            if getattr(model, "task_classes", None) != self.classes:
                raise FeatlabError(f"{condition.key}: surrogate {name} is not in this store and "
                                   f"does not classify its classes ({', '.join(self.classes)}); "
                                   f"train one on this dataset with featlab train")
            self._external[name] = model.to(device).eval()
        return self._external[name]

    def head_name(self, condition) -> str:
        p = condition.params
        named = head_target(p["target"])
        if named is not None:
            if named not in list_heads(self.root):
                raise FeatlabError(f"{condition.key}: no head {named!r} in store {self.root}; "
                                   f"stored heads: {', '.join(list_heads(self.root)) or '(none)'}"
                                   f" — fit it with featlab fit-head or target one of those")
            return named
        if p["target"] == "joint":
            if self.bg is None:
                raise FeatlabError(f"{condition.key}: target=joint needs two backbones; this "
                                   f"store has {self.fg} only — use target=fg")
            return head_name("joint", p["head_subset"], p["head_alpha"])
        if p["target"] == "surrogate":
            if p["surrogate"] not in self.models:
                raise FeatlabError(f"{condition.key}: surrogate {p['surrogate']!r} is not a "
                                   f"backbone of this store ({', '.join(self.models)})")
            return head_name("fg" if p["surrogate"] == self.fg else "bg", p["head_subset"])
        if p["target"] == "bg" and self.bg is None:
            raise FeatlabError(f"{condition.key}: target=bg needs a scene backbone; this store "
                               f"has {self.fg} only — use target=fg")
        return head_name(p["target"], p["head_subset"])

    def _load(self, name: str):
        arrays, attrs = load_head(self.root, name, purpose="to attack")
        if attrs.get("layer") != "penultimate":
            raise FeatlabError(f"head {name} was fitted on layer {attrs.get('layer')}; attacks "
                               f"need a penultimate-layer head (fit-head --layer penultimate)")
        return arrays, attrs

    def _widened(self, name: str):
        arrays, attrs = self._load(name)
        return (arrays if self.classes is None else in_store_classes(arrays, attrs, self.classes),
                attrs)

    def describe(self, condition) -> dict:
        """What an attack condition records about its target, and a probe condition about its
        heads (``heads``: name -> :func:`~featlab.store.heads.head_digest`); empty for others."""
        if condition.family == "probe":
            return dict(heads=head_digests(self.root, scoring_heads(condition.params["select"])))
        if not condition.perturbation.needs_model:
            return {}
        own = self.own_classifier(condition)
        if own is not None:
            return dict(target=condition.params["target"], head="own-logits",
                        classifier=own.name, weights_sha256=own.weights_sha256,
                        weights_path=own.weights_path,
                        eps_space=condition.params.get("eps_space", "pixel"))
        name = self.head_name(condition)
        arrays, attrs = self._load(name)
        return dict(target=condition.params["target"], head=name,
                    heads={name: head_digest(arrays, attrs)},
                    head_settings={k: attrs.get(k) for k in HEAD_SETTINGS},
                    eps_space=condition.params.get("eps_space", "pixel"))

    def model_for(self, condition):
        own = self.own_classifier(condition)
        if own is not None:
            return own
        name = self.head_name(condition)
        if name not in self._cache:
            arrays, attrs = self._widened(name)
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
