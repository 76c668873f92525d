"""A features-only store for the head benchmarks: random-but-structured ResNet-like features
of two backbones for clean images and for FGSM-like attacks at several strengths, written
with featlab's own StoreWriter (so ``featlab fit-head`` reads it like any extracted store).

Clean features are :func:`bench_heads.synthetic_features`-like: a class latent mixed into
non-negative, correlated, power-law features. An attack of strength ``eps`` moves each image's
object latent toward a wrong class (``eps * push``) and its scene latent by a tenth of that,
with the same per-image noise, so the attacked features stay the same images.
"""
from __future__ import annotations

import numpy as np

from featlab.data.base import SampleTable
from featlab.store.writer import StoreWriter

BACKBONES = ("bench-object", "bench-scene")


def _block(rng, y, t, n_classes, strength, n_each, eps_list, push):
    n = len(y)
    protos = rng.normal(size=(n_classes, 64)) * strength
    latent = protos[y] + rng.normal(size=(n, 64))
    mix = rng.normal(size=(64, n_each)) / 8.0
    rot = np.linalg.qr(rng.normal(size=(n_each, n_each)))[0]
    noise = (rng.normal(size=(n, n_each)) * (1.0 + np.arange(n_each)) ** -0.5) @ rot.T
    step = protos[t] - protos[y]
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    return {eps: np.maximum((latent + eps * push * step) @ mix + noise + 0.3, 0).astype(np.float32)
            for eps in [0.0, *eps_list]}


def structured_features(n=7500, n_each=512, n_classes=24, eps_list=(0.1, 0.2, 0.3), seed=0):
    """({eps: (X_fg, X_bg)}, y): eps 0 is clean; float32 arrays (n, n_each)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    t = (y + rng.integers(1, n_classes, n)) % n_classes
    fg = _block(rng, y, t, n_classes, 0.35, n_each, eps_list, push=8.0)
    bg = _block(rng, y, t, n_classes, 0.25, n_each, eps_list, push=0.8)
    return {eps: (fg[eps], bg[eps]) for eps in fg}, y


def _samples(y, n_classes, seed):
    n = len(y)
    split = np.where(np.random.default_rng(seed + 1).random(n) < 0.75, "train", "test")
    classes = [f"class{c:02d}" for c in range(n_classes)]
    supers = [f"super{c % 4}" for c in range(n_classes)]
    return SampleTable(
        image_id=np.arange(n, dtype=np.int64), file=np.array([f"{i}.jpg" for i in range(n)]),
        label=y.astype(np.int64), class_name=np.array(classes)[y],
        supercategory=np.array(supers)[y], split=split,
        boxes=np.full((n, 2, 4), np.nan, np.float32), width=np.full(n, 224, np.int64),
        height=np.full(n, 224, np.int64), classes=classes, class_supercategory=supers,
        subsets={})


def write_store(root, *, n=7500, n_each=512, n_classes=24, eps_list=(0.1, 0.2, 0.3), seed=0,
                chunk=2048):
    """Write the store at ``root``; returns the FGSM condition keys (one per eps)."""
    from featlab.conditions import parse_condition

    features, y = structured_features(n, n_each, n_classes, eps_list, seed)
    meta = {name: dict(weights_sha256=f"{i}" * 64, weights_path=None, role=role,
                       normalization=None, layers={"penultimate": n_each})
            for i, (name, role) in enumerate(zip(BACKBONES, ("object", "scene")))}
    keys = {}
    with StoreWriter(root, samples=_samples(y, n_classes, seed), backbones=meta,
                     dataset_spec=dict(name="bench-features"), chunk_size=chunk) as writer:
        for eps in features:
            if eps == 0:
                key, info = "clean", dict(name="clean", params={}, label="clean")
            else:
                cond = parse_condition(f"fgsm:eps={eps}:target=fg")[0]
                key, info = cond.key, dict(name="fgsm", params=cond.params, label=cond.label,
                                           target="fg", head="fg-all", eps_space="pixel",
                                           head_settings=dict(kind="fg", alpha=None,
                                                              training_conditions=["clean"]))
                keys[eps] = key
            writer.add_condition(key, info)
            for start, stop in writer.chunks():
                arrays = {f"{b}/penultimate": x[start:stop]
                          for b, x in zip(BACKBONES, features[eps])}
                arrays["valid"] = np.ones(stop - start, bool)
                if eps:
                    arrays["attack/success"] = np.zeros(stop - start, bool)
                writer.write_part(key, start, stop, arrays)
        writer.rebuild_index()
    return keys
