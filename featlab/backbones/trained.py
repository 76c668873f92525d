"""Networks trained by ``featlab train``, loaded as backbones.

A trained file (``cache/weights/NAME.pt``) is a ``torch.save``-d dict readable with
``torch.load(path, weights_only=True)``::

    format          "featlab-trained-backbone", format_version 1
    arch            "resnet18" (any name in ARCHS: resnet18/34/50, resnet10-w16)
    members         list of torchvision ResNet state dicts (one; S for parallel MAT)
    voting          None, or the S voting coefficients (sum 1)
    classes         the dataset's class names in label order (the logits' order)
    normalization   (mean, std) the network was trained with
    image_size      training image size
    role            "object", "scene" or None (:mod:`featlab.backbones.roles`)
    recipe          recipe name; meta: recipe parameters, dataset, history, selection
    weights_sha256  sha256 of the parameters and buffers (names, dtypes, shapes, bytes)

Its logits are the task classifier (``task_classes``), so a store extracted with it holds
its own predictions under every condition, and attacks against it use those logits (see
:mod:`featlab.extraction.targets`). A backbone is named by ``--backbones NAME=PATH``, or
``--backbones NAME`` when ``<cache>/weights/NAME.pt`` is a trained file.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os

import torch

from ..errors import FeatlabError
from ..registry import Registry
from ..utils.paths import atomic_write_bytes, atomic_write_text, default_cache_dir
from .registry import BACKBONES
from .base import Backbone, file_sha256
from .ensemble import EnsembleBackbone, VotingNet
from . import resnet

log = logging.getLogger(__name__)

FORMAT, FORMAT_VERSION = "featlab-trained-backbone", 1
ARCHS = Registry("architecture")
for _name in ("resnet18", "resnet34", "resnet50"):
    ARCHS.register(_name)(getattr(resnet, _name))
ARCHS.register("resnet10-w16")(resnet.resnet10_w16)


def make_net(arch: str, n_classes: int) -> torch.nn.Module:
    """A randomly initialised ResNet ``arch`` (torchvision's, from :mod:`.resnet`) with ``n_classes`` outputs."""
    return ARCHS.get(arch)(weights=None, num_classes=n_classes)


def state_sha256(states) -> str:
    """sha256 over a list of state dicts: every entry's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for k, state in enumerate(states):
        for key, value in state.items():
            value = value.detach().cpu().contiguous()
            digest.update(f"{k}/{key}/{value.dtype}/{tuple(value.shape)}".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class TrainedBackbone(Backbone):
    """A :class:`Backbone` that classifies a task: its logits follow ``task_classes``.

    It keeps the normalization it was trained with: :meth:`set_normalization` with another
    one (extraction applies the dataset's) is ignored, with a log line.
    """

    def set_normalization(self, normalization) -> None:
        if getattr(self, "_trained_normalization", None) is None:
            super().set_normalization(normalization)
            self._trained_normalization = self.normalization
        elif _close(normalization, self._trained_normalization):
            return
        else:
            log.info("%s keeps the normalization it was trained with, %s (not %s)",
                     self.name, self._trained_normalization, normalization)


class TrainedEnsemble(EnsembleBackbone, TrainedBackbone):
    """A parallel-MAT voting ensemble trained by featlab (see :mod:`.ensemble`)."""


def _close(a, b) -> bool:
    flat = [float(v) for part in a for v in part], [float(v) for part in b for v in part]
    return len(flat[0]) == len(flat[1]) and all(abs(x - y) < 1e-7 for x, y in zip(*flat))


def save_trained(path: str, members: list, *, arch: str, classes: list, normalization,
                 image_size: int, recipe: str, voting=None, role=None, meta=None) -> dict:
    """Write a trained file atomically (and ``<stem>.json``, its metadata); return it.

    ``members`` are state dicts of ``arch`` ResNets with ``len(classes)`` outputs.
    """
    members = [{k: v.detach().cpu().clone() for k, v in m.items()} for m in members]
    payload = dict(format=FORMAT, format_version=FORMAT_VERSION, arch=arch, members=members,
                   voting=None if voting is None else [float(a) for a in voting],
                   classes=list(classes), image_size=int(image_size), recipe=recipe, role=role,
                   normalization=[list(map(float, normalization[0])),
                                  list(map(float, normalization[1]))],
                   meta=json.loads(json.dumps(meta or {})),  # plain objects: same bytes
                   weights_sha256=state_sha256(members))
    bad = non_finite(members)
    if bad:
        raise FeatlabError(f"refusing to write {path}: {bad} holds NaN or inf")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    write_sidecar(path, payload)
    return payload


def write_sidecar(path: str, payload: dict) -> None:
    """``<stem>.json``: the trained file's record without the weights."""
    info = {k: v for k, v in payload.items() if k != "members"}
    atomic_write_text(os.path.splitext(path)[0] + ".json", json.dumps(info, indent=2))


def non_finite(states) -> str | None:
    """``"member K's KEY"`` of the first floating tensor holding NaN or inf, else None."""
    for k, state in enumerate(states):
        for key, value in state.items():
            if torch.is_tensor(value) and value.is_floating_point() and \
                    not torch.isfinite(value).all():
                return f"member {k}'s {key}"
    return None


def read_trained(path: str) -> dict:
    """The payload of a trained file; a one-line error when it is not one."""
    if not os.path.isfile(path):
        raise FeatlabError(f"trained network {path} not found; train one with "
                           f"'featlab train --out {path}'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user-level mistake
        raise FeatlabError(f"{path} is not a readable torch file ({type(err).__name__}); "
                           f"expected a file written by featlab train") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FeatlabError(f"{path} is not a featlab-trained network (no format "
                           f"{FORMAT!r}); for a registered backbone use --weights NAME=PATH")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise FeatlabError(f"{path} has format_version {payload['format_version']}; this "
                           f"featlab reads up to {FORMAT_VERSION}: upgrade featlab")
    bad = non_finite(payload.get("members", []))
    if bad:
        raise FeatlabError(f"{path} has non-finite weights ({bad} holds NaN or inf): its "
                           f"training diverged; train it again with a lower --lr")
    return payload


def load_trained(path: str, name: str | None = None) -> TrainedBackbone:
    """Load a trained file as a :class:`TrainedBackbone` (or ensemble) named ``name``."""
    payload = read_trained(path)
    nets = []
    for state in payload["members"]:
        net = make_net(payload["arch"], len(payload["classes"]))
        net.load_state_dict(state, strict=True)
        nets.append(net)
    name = name or os.path.splitext(os.path.basename(path))[0]
    norm = tuple(tuple(v) for v in payload["normalization"])
    kwargs = dict(weights_sha256=file_sha256(path), weights_path=os.path.abspath(path),
                  role=payload.get("role"))
    if payload["voting"] is None:
        model = TrainedBackbone(name, nets[0], norm, **kwargs)
    else:
        model = TrainedEnsemble(name, VotingNet(nets, payload["voting"]), norm, **kwargs)
    model.task_classes = list(payload["classes"])
    model.recipe, model.image_size = payload["recipe"], payload["image_size"]
    model.trained_meta = dict(payload["meta"], weights_sha256=payload["weights_sha256"])
    return model.eval()


def cache_path(name: str, cache_dir=None) -> str:
    return os.path.join(cache_dir or default_cache_dir(), "weights", f"{name}.pt")


def trained_names(cache_dir=None) -> list:
    """Names of the trained files in ``<cache>/weights/`` (those with a format sidecar)."""
    folder = os.path.dirname(cache_path("x", cache_dir))
    names = []
    for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        stem, ext = os.path.splitext(entry)
        if ext == ".pt" and os.path.isfile(os.path.join(folder, stem + ".json")):
            try:
                with open(os.path.join(folder, stem + ".json")) as handle:
                    if json.load(handle).get("format") == FORMAT:
                        names.append(stem)
            except (OSError, ValueError):
                continue
    return names


def parse_backbone_entry(entry: str) -> tuple:
    """``"NAME"`` -> (NAME, None); ``"NAME=PATH"`` -> (NAME, PATH)."""
    name, sep, path = str(entry).strip().partition("=")
    if not name or (sep and not path):
        raise FeatlabError(f"backbone {entry!r}: expected NAME or NAME=PATH, e.g. "
                           f"robust=cache/weights/robust.pt")
    return name, (path or None)


def build_backbone(name: str, weights=None, cache_dir=None) -> Backbone:
    """A backbone by name: registered (``BACKBONES``), ``weights`` = a trained file, or a
    trained file ``<cache>/weights/NAME.pt``."""
    if name in BACKBONES:
        return BACKBONES.get(name)(weights=weights, cache_dir=cache_dir)
    path = weights or cache_path(name, cache_dir)
    if os.path.isfile(path):
        return load_trained(path, name=name)
    known = ", ".join(BACKBONES.names() + trained_names(cache_dir))
    raise FeatlabError(f"unknown backbone {name!r} (no {path}); known: {known}; or give a "
                       f"trained file as NAME=PATH")
