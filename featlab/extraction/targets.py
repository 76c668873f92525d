"""The classifier a gradient attack runs against, built from the store's fitted heads.

``target=fg`` / ``bg``: the object / scene backbone with its head ``fg-all`` / ``bg-all``
(the fusion paper's threat model is ``fg``, Section 3.3); ``target=joint``: both backbones
and the joint head ``joint-all-alpha=<head_alpha>``, differentiated end to end (the adaptive
white-box attack); ``target=surrogate:surrogate=NAME``: the store backbone NAME with its own
head (a transfer attack onto the others). Heads come from ``featlab fit-head``.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy as np
import torch

from ..backbones.classifier import HeadClassifier, JointClassifier, linear_from_arrays
from ..errors import FeatlabError


class TargetModels:
    """Builds (and caches) target classifiers for the attack conditions of one run."""

    def __init__(self, root: str, models: list, device):
        self.root, self.device = root, device
        self.models = {m.name: m for m in models}
        self.names = [m.name for m in models]
        self._cache: dict = {}

    def _roles(self) -> tuple[str, str | None]:
        from ..analyses.features import OBJECT_HINTS, SCENE_HINTS

        fg = next((n for n in self.names if any(h in n for h in OBJECT_HINTS)), self.names[0])
        rest = [n for n in self.names if n != fg]
        bg = next((n for n in rest if any(h in n for h in SCENE_HINTS)), rest[0] if rest else None)
        return fg, bg

    def head_name(self, condition) -> str:
        p = condition.params
        fg, bg = self._roles()
        if p["target"] == "joint":
            if bg is None:
                raise FeatlabError(f"{condition.key}: target=joint needs two backbones; this "
                                   f"store has {fg} only — use target=fg")
            from ..perturbations.conditions import format_value

            return f"joint-all-alpha={format_value(float(p['head_alpha']))}"
        if p["target"] == "surrogate":
            if p["surrogate"] not in self.models:
                raise FeatlabError(f"{condition.key}: surrogate {p['surrogate']!r} is not a "
                                   f"backbone of this store ({', '.join(self.names)})")
            return "fg-all" if p["surrogate"] == fg else "bg-all"
        return f"{p['target']}-all"

    def _load_head(self, name: str):
        path = os.path.join(self.root, "heads", f"{name}.h5")
        if not os.path.isfile(path):
            raise FeatlabError(f"no head {name!r} in store {self.root} to attack; fit it first: "
                               f"featlab fit-head --store {self.root} --subset all"
                               + (f" --alpha {name.split('=')[1]}" if "alpha=" in name else ""))
        with h5py.File(path, "r") as handle:
            arrays = {k: handle[k][()] for k in ("coef", "intercept")}
            attrs = {k: json.loads(v) for k, v in handle.attrs.items()}
        if attrs.get("layer") != "penultimate":
            raise FeatlabError(f"head {name} was fitted on layer {attrs.get('layer')}; attacks "
                               f"need a penultimate-layer head (fit-head --layer penultimate)")
        return arrays, attrs

    def describe(self, condition) -> dict:
        if not getattr(condition.perturbation, "needs_model", False):
            return {}
        name = self.head_name(condition)
        _, attrs = self._load_head(name)
        keep = ("kind", "alpha", "subset", "layer", "training_conditions", "inputs", "n_train")
        return dict(target=condition.params["target"], head=name,
                    head_settings={k: attrs.get(k) for k in keep},
                    eps_space=condition.params.get("eps_space", "pixel"))

    def model_for(self, condition):
        name = self.head_name(condition)
        if name not in self._cache:
            arrays, attrs = self._load_head(name)
            head = linear_from_arrays(arrays).to(self.device)
            inputs = [self.models[b] for b in attrs["inputs"]]
            model = (JointClassifier(inputs[0], inputs[1], head) if len(inputs) == 2
                     else HeadClassifier(inputs[0], head))
            self._cache[name] = model.eval()
        return self._cache[name]

    def extras(self, model, adv, labels, perturbation) -> dict:
        """Per-row attack outcome against its own target model (stored beside features)."""
        with torch.inference_mode():
            pred = model(adv).argmax(1)
        targets = getattr(perturbation, "target_labels_", None)
        success = pred != labels if targets is None else pred == targets
        return {"attack/success": success.cpu().numpy().astype(bool),
                "attack/prediction": pred.cpu().numpy().astype(np.int64)}
