"""What defines a training run (``featlab train`` builds one from its flags), and its checks.

Every check raises :class:`~featlab.errors.FeatlabError` with one line: the option, what
was expected, what was received.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import FeatlabError
from ..mat import DEFAULT_PENALTY, DEFAULT_WALKS, check_walk_options

DEFAULT_STRENGTHS = {"fgsm-at": (0.03,), "mat-mixed": (0.01, 0.03, 0.05),
                     "mat-parallel": (0.01, 0.03, 0.05)}
DEFAULT_CANDIDATES = (0.01, 0.02, 0.03, 0.05, 0.08)
#: who crafts the FGSM training examples by default (see :mod:`.crafting`): the network
#: itself for Kurakin-style fgsm-at, a separate fixed model for MAT (its Section 5.1)
DEFAULT_CRAFTING = {"fgsm-at": "self", "mat-mixed": "auto", "mat-parallel": "auto"}
#: fields that do not change the trained weights (left out of the fingerprint); ``root``
#: enters it resolved, with the rest of the data's identity
NOT_IN_FINGERPRINT = ("out", "workers", "name", "root")


@dataclass
class TrainSpec:
    """A training run. ``strengths``: pixel-unit FGSM budgets in [0, 1] (fgsm-at, MAT),
    or ``"auto"`` (MAT Section 4.3, chosen among ``candidates``); ``eps_max``: the TLAT /
    M-TLAT / IAT bound (``eps ~ U[0, eps_max]``); ``init``: a backbone (``NAME`` or
    ``NAME=PATH``) whose weights start the network; ``train_layers``: ``all`` or ``fc``;
    ``role``: ``object`` or ``scene`` in a fusion store (default: the init backbone's);
    ``crafting_model``: who crafts the FGSM examples, ``self``, ``auto`` or a backbone
    (:mod:`.crafting`; default :data:`DEFAULT_CRAFTING`); ``clean_epochs``: epochs of
    ``standard`` training before the recipe starts (default: half of ``epochs`` when FGSM
    examples are crafted against the network itself, else 0; see
    :meth:`resolved_clean_epochs`)."""

    out: str
    root: str
    dataset: str = "synthetic"
    arch: str = "resnet18"
    recipe: str = "standard"
    epochs: int = 10
    batch_size: int = 64
    image_size: Optional[int] = None
    limit: Optional[int] = None
    seed: int = 0
    device: str = "auto"
    strengths: object = None
    candidates: tuple = DEFAULT_CANDIDATES
    eps_max: float = 0.025
    mixup_alpha: float = 0.4
    init: Optional[str] = None
    train_layers: str = "all"
    role: Optional[str] = None
    lr: float = 0.05
    weight_decay: float = 5e-4
    val_fraction: float = 0.2
    walk_steps: Optional[int] = None
    walks: int = DEFAULT_WALKS
    walk_penalty: float = DEFAULT_PENALTY
    crafting_model: Optional[str] = None
    clean_epochs: Optional[int] = None
    workers: int = 0
    cache_dir: Optional[str] = None
    name: Optional[str] = None
    dataset_options: dict = field(default_factory=dict)

    def fingerprint(self, identity: dict) -> str:
        """sha256 of everything that determines the final weights: every option that does,
        and ``identity`` — what the run reads (the training data, see
        :func:`~featlab.training.data.data_identity`, and the weight files it starts from)."""
        fields = {k: v for k, v in asdict(self).items() if k not in NOT_IN_FINGERPRINT}
        fields["strengths"] = self.resolved_strengths()
        fields["crafting_model"] = self.resolved_crafting()
        fields["clean_epochs"] = self.resolved_clean_epochs()
        fields["identity"] = identity
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()

    def resolved_strengths(self):
        """The strengths list (floats), ``"auto"``, or None when the recipe has none."""
        if isinstance(self.strengths, str) and self.strengths.strip() == "auto":
            return "auto"
        if self.strengths is None or self.strengths == "":
            default = DEFAULT_STRENGTHS.get(self.recipe)
            return list(default) if default else None
        return parse_strengths(self.strengths, "--strengths")


    def resolved_crafting(self):
        """``"self"``, ``"auto"`` or a backbone entry for recipes with FGSM strengths (the
        recipe's default when not given); otherwise what was given (None)."""
        if self.recipe in DEFAULT_CRAFTING and self.crafting_model in (None, ""):
            return DEFAULT_CRAFTING[self.recipe]
        return self.crafting_model


    def resolved_clean_epochs(self) -> int:
        """Epochs of clean (``standard``) training that open every stage of the recipe.

        FGSM training against the network itself from a random start first fits what no
        small perturbation changes (on the embedded benchmark: the supercategory, told by
        scene and shape) and then stays there: a texture feature the network begins to grow
        is not robust yet, and the attacked half of the batch takes back what the clean half
        gains. Started from a network that already separates the classes, the same training
        keeps them and makes them robust (docs, "Training backbones"). Default: half of
        ``epochs`` for ``self``-crafted FGSM recipes, 0 for every other recipe.
        """
        if self.clean_epochs is not None:
            return self.clean_epochs
        return self.epochs // 2 if self.resolved_crafting() == "self" else 0


def parse_strengths(value, option: str) -> list:
    """``"0.01,0.03"`` or a sequence -> sorted distinct floats, each in (0, 1]."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            eps = float(item)
        except (TypeError, ValueError):
            raise FeatlabError(f"{option} {value!r}: {item!r} is not a number; expected "
                               f"comma-separated budgets in [0, 1], e.g. 0.01,0.03") from None
        if not 0.0 < eps <= 1.0:
            raise FeatlabError(f"{option}: eps={eps} is outside (0, 1]; budgets are in pixel "
                               f"units of images in [0, 1] (e.g. 0.03 = 8/255)")
        out.append(eps)
    if not out:
        raise FeatlabError(f"{option} is empty; expected e.g. 0.01,0.03 or auto")
    return sorted(set(out))


def _integer(value, option: str, low: int) -> None:
    if not (isinstance(value, numbers.Integral) and value >= low):
        raise FeatlabError(f"{option} must be an integer >= {low}, got {value!r}")


def check_spec(spec: TrainSpec, recipe) -> None:
    """Refuse a spec that cannot run, before anything is loaded or written."""
    _integer(spec.epochs, "--epochs", 1)
    _integer(spec.batch_size, "--batch-size", 2)
    if spec.clean_epochs is not None:
        _integer(spec.clean_epochs, "--clean-epochs", 0)
        if spec.clean_epochs >= spec.epochs:
            raise FeatlabError(f"--clean-epochs {spec.clean_epochs} leaves no epoch of "
                               f"{spec.recipe} in --epochs {spec.epochs}; give fewer")
    _integer(spec.seed, "--seed", 0)
    _integer(spec.workers, "--workers", 0)
    check_walk_options(spec.walk_steps, spec.walks, spec.walk_penalty)
    if spec.image_size is not None:
        _integer(spec.image_size, "--image-size", 16)
    if spec.limit is not None:
        _integer(spec.limit, "--limit", 2)
    if not 0.0 <= float(spec.eps_max) <= 1.0:
        raise FeatlabError(f"--eps-max {spec.eps_max}: expected a budget in [0, 1] pixel units "
                           f"(the M-TLAT paper uses 0.025)")
    if not spec.mixup_alpha > 0:
        raise FeatlabError(f"--mixup-alpha {spec.mixup_alpha}: expected > 0 (the paper: 0.4)")
    if not 0.0 < spec.val_fraction < 1.0:
        raise FeatlabError(f"--val-fraction {spec.val_fraction}: expected a value in (0, 1)")
    if spec.role not in (None, "object", "scene"):
        raise FeatlabError(f"--role {spec.role!r}: expected object or scene")
    if spec.train_layers not in ("all", "fc"):
        raise FeatlabError(f"--train-layers {spec.train_layers!r}: expected all or fc")
    if spec.train_layers == "fc" and not spec.init:
        raise FeatlabError("--train-layers fc trains only the last layer of a pretrained "
                           "network; give --init BACKBONE (e.g. synthetic-scene)")
    if not (spec.lr > 0 and spec.weight_decay >= 0):
        raise FeatlabError(f"--lr must be > 0 and --weight-decay >= 0, got {spec.lr}, "
                           f"{spec.weight_decay}")
    strengths = spec.resolved_strengths()
    if strengths is not None and not recipe.uses_strengths:
        raise FeatlabError(f"--strengths applies to fgsm-at, mat-mixed and mat-parallel, not "
                           f"{recipe.name} (use --eps-max for tlat, mtlat, iat)")
    if strengths == "auto":
        if not recipe.auto_strengths:
            raise FeatlabError(f"--strengths auto needs mat-mixed or mat-parallel, not "
                               f"{recipe.name}")
        if len(parse_strengths(spec.candidates, "--candidates")) < 2:
            raise FeatlabError("--strengths auto needs at least two --candidates")
    crafting = spec.resolved_crafting()
    if crafting is not None and not recipe.uses_strengths:
        raise FeatlabError(f"--crafting-model applies to fgsm-at, mat-mixed and mat-parallel, "
                           f"not {recipe.name}")
    if crafting is not None and not str(crafting).strip():
        raise FeatlabError("--crafting-model is empty; expected self, auto or a backbone "
                           "(NAME or NAME=PATH)")
    if recipe.name == "fgsm-at" and strengths is not None and len(strengths) != 1:
        raise FeatlabError(f"fgsm-at trains at one strength; got --strengths "
                           f"{','.join(map(str, strengths))} (use mat-mixed or mat-parallel)")
