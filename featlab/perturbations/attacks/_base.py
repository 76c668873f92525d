"""The base class of the gradient attacks: parameters, validation, shared work per batch.

A subclass declares its :class:`~featlab.perturbations.base.Param` s and implements

- :meth:`Attack.prepare` — work that does not depend on the strength (the clean forward,
  target labels, FGSM's gradient sign), done once per batch;
- :meth:`Attack.attack` — one strength, given what ``prepare`` returned.

``perturb`` is ``perturb_many`` with one setting. Every setting of ``perturb_many`` starts
from the same generator state (common random numbers across strengths), so
``perturb_many(x, [p1, p2], generator=g)[k]`` equals ``perturb(x, generator=h, **pk)`` for
a generator ``h`` in the state ``g`` was in. The model runs in eval mode and every module's
train/eval flag is restored afterwards; parameters are never written.

``target``, ``surrogate``, ``head_alpha`` and ``head_subset`` name the classifier that is
attacked (``target=head:NAME``: the stored head NAME and every backbone it reads); the caller builds that model and passes it as ``model`` (an ``nn.Module`` mapping images in
[0, 1] to logits, with ``input_std`` for ``eps_space=normalized``). The attacks only
validate them: they do not care how the model was built.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch

from ...errors import FeatlabError
from ...params import HEAD_CHOICE, head_target
from ..base import Param, Perturbation
from ._common import eval_mode

logger = logging.getLogger(__name__)

PIXEL_EPS_MAX = 1.0
NORMALIZED_EPS_MAX = 10.0

EPS = Param("eps", float, default=0.03, low=0.0, high=NORMALIZED_EPS_MAX, multi=True,
            help="L-inf budget; pixel units in [0, 1] (eps_space=pixel) or normalized "
                 "input units in [0, 10] (eps_space=normalized)")
EPS_SPACE = Param("eps_space", str, default="pixel", choices=("pixel", "normalized"),
                  help="normalized: eps is in (x - mean) / std units, i.e. eps * std_c pixels")
TARGET_PARAMS = (
    Param("target", str, default="fg",
          choices=("fg", "bg", "joint", "surrogate", HEAD_CHOICE),
          help="attacked classifier: foreground, background, joint fused model, surrogate, "
               "or any stored head through every backbone it reads (head:NAME)"),
    Param("surrogate", str, default="",
          help="backbone whose classifier crafts the attack (with target=surrogate)"),
    Param("head_alpha", float, default=0.0, low=0.0, high=1e9,
          help="alpha (the paper's scale, as fit-head --alpha) of the joint head that is "
               "attacked"),
    Param("head_subset", str, default="all", keyed_default=False,
          help="class subset of the fitted head that is attacked (fit-head --subset): "
               "all, similar, dissimilar"),
)
LINF_PARAMS = (EPS, EPS_SPACE) + TARGET_PARAMS


def auto_alpha(params: dict, fraction: float) -> float:
    """Step size: ``params['alpha']``, or ``fraction * eps / steps`` when alpha is 0."""
    return params["alpha"] or fraction * params["eps"] / params["steps"]


class Attack(Perturbation):
    """A gradient attack on a classifier of images in [0, 1].

    Class attributes
    ----------------
    strength : str — the parameter that several conditions sweep (``eps``; ``c`` for CW)
    targeted : bool — climbs ``-J(x, t)`` towards target labels ``t`` instead of ``J(x, y)``
    norm : str — ``"linf"`` or ``"l2"``
    """

    needs_model = True
    params = LINF_PARAMS
    strength = "eps"
    targeted = False
    norm = "linf"

    # -- parameters -------------------------------------------------------------------
    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Fill defaults and check every value and cross-parameter rule.

        Raises :class:`FeatlabError` with one line saying what to change.
        """
        spec = {p.name: p for p in cls.params}
        unknown = sorted(set(params) - set(spec))
        if unknown:
            raise FeatlabError(f"{cls.name}: unknown parameter {unknown[0]!r}; "
                               f"known: {', '.join(spec)}")
        out = {}
        for name, param in spec.items():
            value = params.get(name, param.default)
            if value is None and param.required:
                raise FeatlabError(f"{cls.name} needs {name}=..., e.g. '{cls.name}:{name}=...'")
            _check_value(cls.name, param, value)
            out[name] = value
        cls._check_combination(out)
        return out

    @classmethod
    def _check_combination(cls, p: dict) -> None:
        if p["target"] == "surrogate" and not p["surrogate"]:
            raise FeatlabError(f"{cls.name}: target=surrogate needs surrogate=BACKBONE, "
                               f"e.g. '{cls.name}:target=surrogate:surrogate=imagenet-resnet18'")
        if p["surrogate"] and p["target"] != "surrogate":
            raise FeatlabError(f"{cls.name}: surrogate={p['surrogate']} only applies with "
                               f"target=surrogate (got target={p['target']})")
        if head_target(p["target"]) and (p["head_alpha"] or p["head_subset"] != "all"):
            raise FeatlabError(f"{cls.name}: target={p['target']} names its head; head_alpha "
                               f"and head_subset only choose among the fg/bg/joint heads")
        if "eps" in p and p.get("eps_space") == "pixel" and p["eps"] > PIXEL_EPS_MAX:
            raise FeatlabError(f"{cls.name}: eps={p['eps']} is out of range [0, 1] for pixel "
                               f"units; use eps_space=normalized for budgets in normalized "
                               f"input units (up to {NORMALIZED_EPS_MAX:g})")

    # -- running ----------------------------------------------------------------------
    def perturb(self, images, *, labels, model, generator: Optional[torch.Generator] = None,
                boxes=None, **params) -> torch.Tensor:
        """Adversarial images of shape (n, C, H, W) in [0, 1] for one parameter setting."""
        return self.perturb_many(images, [params], labels=labels, model=model,
                                 generator=generator, boxes=boxes)[0]

    def perturb_many(self, images, params_list: list, *, labels, model,
                     generator: Optional[torch.Generator] = None, boxes=None) -> list:
        """Adversarial images for each setting in ``params_list`` (list of dicts)."""
        return self.attack_many(images, params_list, labels=labels, model=model,
                                generator=generator)[0]

    def attack_many(self, images, params_list: list, *, labels, model,
                    generator: Optional[torch.Generator] = None) -> tuple[list, torch.Tensor]:
        """Adversarial images for each setting, and the labels the attack aimed at.

        Returns
        -------
        (list of Tensor (n, C, H, W), Tensor (n,)) — the second is the target classes of a
        targeted attack (success: predicted == target) or the true labels of an untargeted
        one (success: predicted != label); see :attr:`targeted`.
        """
        settings = [self.validate_params(dict(p)) for p in params_list]
        if model is None:
            raise ValueError(f"{self.name} is a gradient attack and needs a model")
        if images.dim() != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"expected images (n, C, H, W) and labels (n,), got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        images, labels = images.detach(), labels.detach()
        with eval_mode(model):
            shared = self.prepare(images, labels, model, generator)
            state = generator.get_state() if generator is not None else None
            out = []
            for p in settings:
                if state is not None:
                    generator.set_state(state)
                logger.debug("%s %s on %d images", self.name, p, len(images))
                out.append(self.attack(images, shared, model, generator, p).detach())
        return out, (shared["target"] if self.targeted else labels)

    def prepare(self, images, labels, model, generator) -> dict:
        """Strength-independent work; returns at least ``{"target": labels to climb}``."""
        return {"target": labels}

    def attack(self, images, shared: dict, model, generator, params: dict) -> torch.Tensor:
        """Adversarial images for one validated parameter setting."""
        raise NotImplementedError


def _check_value(attack: str, param: Param, value) -> None:
    if not param.allows(value):
        raise FeatlabError(f"{attack}: {param.name}={value!r}; expected one of "
                           f"{', '.join(map(str, param.choices))}")
    if param.kind in (int, float) and not isinstance(value, (int, float)):
        raise FeatlabError(f"{attack}: {param.name}={value!r} is not a number")
    if (param.low is not None and value < param.low
            or param.high is not None and value > param.high):
        raise FeatlabError(f"{attack}: {param.name}={value} is out of range "
                           f"[{param.low}, {param.high}]")
