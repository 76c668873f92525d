"""The embedded backbones: ResNet18s featlab pretrains itself, once, on synthetic images.

``synthetic-object`` is trained to classify object types drawn on plain backgrounds (the
ImageNet analogue), ``synthetic-scene`` to classify scene types without objects (the
Places365 analogue); both from :mod:`featlab.data.synthetic`. The weights are cached under
``<cache>/weights/`` by a hash of their recipe (which includes the generator's source), so
a second run reuses them and a changed recipe retrains.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import os
import time

import torch

from ..errors import FeatlabError
from ..utils.paths import atomic_write_bytes, default_cache_dir
from ..utils.progress import progress
from ..data import (synthetic, synthetic_draw, synthetic_pretraining, synthetic_primitives,
                    synthetic_scenes)
from .base import IMAGENET_NORMALIZATION, Backbone, file_sha256
from .registry import BACKBONES
from .resnet import resnet18

#: The generator's modules: their source is part of the recipe, so weights pretrained on
#: other images are never reused.
GENERATOR = (synthetic, synthetic_draw, synthetic_primitives, synthetic_scenes,
             synthetic_pretraining)

log = logging.getLogger(__name__)

RECIPE = dict(n_train=6000, n_val=1000, image_size=64, epochs=4, batch_size=64,
              max_lr=0.05, weight_decay=5e-4, seed=0)
# scenes are easier (held-out accuracy 0.998 with the full recipe): a shorter schedule
KIND_RECIPE = {"object": {}, "scene": dict(n_train=3000, epochs=3)}


def recipe_for(kind: str, **overrides) -> dict:
    sources = [inspect.getsource(module) for module in GENERATOR]
    recipe = dict(RECIPE, kind=kind, **KIND_RECIPE[kind])
    recipe.update(overrides)
    recipe["generator_sha256"] = hashlib.sha256("".join(sources).encode()).hexdigest()
    return recipe


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _pretraining_set(kind: str, n: int, seed: int, image_size: int):

    make = (synthetic_pretraining.object_pretraining_set if kind == "object"
            else synthetic_pretraining.scene_pretraining_set)
    images, labels, names = make(n, seed=seed, image_size=image_size)
    return torch.from_numpy(images), torch.from_numpy(labels).long(), names


def _accuracy(model, images, labels, batch_size=256) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].float().div_(255)
            correct += (model(x).argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / max(len(images), 1)


def pretrain(recipe: dict, device: torch.device) -> tuple[Backbone, dict]:
    """Train a ResNet18 from scratch following ``recipe``; returns it and a report."""
    start = time.perf_counter()
    torch.manual_seed(recipe["seed"])
    x_train, y_train, names = _pretraining_set(recipe["kind"], recipe["n_train"],
                                               recipe["seed"], recipe["image_size"])
    x_val, y_val, _ = _pretraining_set(recipe["kind"], recipe["n_val"], recipe["seed"] + 10_000,
                                       recipe["image_size"])
    net = resnet18(weights=None, num_classes=len(names))
    model = Backbone(f"synthetic-{recipe['kind']}", net, IMAGENET_NORMALIZATION).to(device)
    steps_per_epoch = -(-len(x_train) // recipe["batch_size"])
    opt = torch.optim.SGD(model.parameters(), lr=recipe["max_lr"], momentum=0.9, nesterov=True,
                          weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe["max_lr"],
                                                total_steps=recipe["epochs"] * steps_per_epoch)
    shuffler = torch.Generator().manual_seed(recipe["seed"])
    bar = progress(total=recipe["epochs"] * steps_per_epoch, desc=f"pretrain {model.name}",
                   unit="batch")
    for _ in range(recipe["epochs"]):
        model.train()
        order = torch.randperm(len(x_train), generator=shuffler)
        for start_i in range(0, len(order), recipe["batch_size"]):
            idx = order[start_i:start_i + recipe["batch_size"]]
            x = x_train[idx].to(device).float().div_(255)
            flip = torch.rand(len(idx), generator=shuffler) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = torch.nn.functional.cross_entropy(model(x), y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    model.cpu().eval()
    report = dict(recipe=recipe, classes=list(names), seconds=time.perf_counter() - start,
                  val_accuracy=_accuracy(model, x_val, y_val),
                  train_accuracy=_accuracy(model, x_train[:1000], y_train[:1000]))
    return model, report


def build_synthetic(kind: str, weights=None, cache_dir=None, device="cpu",
                    **recipe_overrides) -> Backbone:
    """Load the cached embedded backbone of ``kind``, pretraining it first if needed."""
    if weights is not None:
        return _load(kind, weights)
    recipe = recipe_for(kind, **recipe_overrides)
    folder = os.path.join(cache_dir or default_cache_dir(), "weights")
    path = os.path.join(folder, f"synthetic-{kind}-{recipe_hash(recipe)}.pt")
    if not os.path.isfile(path):
        log.info("pretraining synthetic-%s (once; cached at %s)", kind, path)
        model, report = pretrain(recipe, torch.device(device) if isinstance(device, str) else device)
        os.makedirs(folder, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({"state_dict": model.net.state_dict(), "report": report}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        atomic_write_bytes(path[:-3] + ".json", json.dumps(report, indent=2).encode())
        log.info("synthetic-%s: held-out accuracy %.3f in %.0f s", kind,
                 report["val_accuracy"], report["seconds"])
    return _load(kind, path)


def _load(kind: str, path) -> Backbone:
    if not os.path.isfile(path):
        raise FeatlabError(f"synthetic-{kind} weights {path} not found; omit --weights to "
                           f"pretrain them into the cache")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint["state_dict"]
    net = resnet18(weights=None, num_classes=state["fc.weight"].shape[0])
    net.load_state_dict(state)
    model = Backbone(f"synthetic-{kind}", net, IMAGENET_NORMALIZATION,
                     weights_sha256=file_sha256(path), weights_path=os.path.abspath(path),
                     role=kind)
    model.pretraining_report = checkpoint.get("report", {})
    return model


@BACKBONES.register("synthetic-object")
def synthetic_object(weights=None, cache_dir=None, **kwargs) -> Backbone:
    """ResNet18 pretrained by featlab on synthetic object-only images (ImageNet analogue)."""
    return build_synthetic("object", weights, cache_dir, **kwargs)


@BACKBONES.register("synthetic-scene")
def synthetic_scene(weights=None, cache_dir=None, **kwargs) -> Backbone:
    """ResNet18 pretrained by featlab on synthetic scene-only images (Places365 analogue)."""
    return build_synthetic("scene", weights, cache_dir, **kwargs)
