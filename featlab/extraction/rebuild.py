"""Rebuild what a store was extracted from: its dataset and its backbones.

Analyses that need the images again (``lipschitz --bounds``) ask for them here: the loader,
root and options recorded in the manifest, the same sample table (hash checked) and the same
weights (SHA-256 checked).
"""
from __future__ import annotations

import torch

from ..data import DATASETS
from ..errors import FeatlabError
from ..store.samples import table_hash
from .pipeline import ExtractionSpec, build_backbones, load_dataset


def rebuild(store):
    """The store's dataset and backbones (CPU), checked against the manifest.

    Returns
    -------
    (ImageDataset, dict name -> Backbone)
    """
    m = store.manifest
    ds = dict(m["dataset"])
    name, root = ds.pop("name", None), ds.pop("root", None)
    if name not in DATASETS or root is None:
        raise FeatlabError(f"store {store.path} does not record a known dataset loader "
                           f"({name!r}); --bounds needs the images")
    limit, size, seed = ds.pop("limit", None), ds.pop("image_size", None), m.get("seed", 0)
    ds.pop("seed", None)
    weights = {b: v.get("weights_path") or None for b, v in m["backbones"].items()}
    spec = ExtractionSpec(store=store.path, root=root, dataset=name,
                          backbones=tuple(m["backbones"]), limit=limit, seed=seed,
                          image_size=size, weights=weights, dataset_options=ds, device="cpu")
    dataset = load_dataset(spec)
    if table_hash(dataset.samples) != m["samples_sha256"]:
        raise FeatlabError(f"the dataset at {root} no longer gives the sample table of "
                           f"{store.path}; --bounds needs the images the store was made from")
    models = build_backbones(spec, dataset, torch.device("cpu"))
    for model in models:
        if model.weights_sha256 != m["backbones"][model.name]["weights_sha256"]:
            raise FeatlabError(f"{model.name} weights differ from those of {store.path}")
    return dataset, {model.name: model for model in models}
