"""A re-split view of a store: the same features under a seeded train/test split, with heads
of its own, written without copying a feature or touching the source store.

The view is a store directory of its own: its ``manifest.json`` (the source's, with the new
sample table's hash and a ``resplit`` record), its ``samples.h5`` (the new split), and one
symbolic link per condition folder of the source. Its index maps the linked parts like any
store's, its heads are fitted into its own ``heads/``. Nothing is written into the source
(which may be read-only).
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np

from ..errors import FeatlabError
from ..store import FeatureStore
from ..store.files import write_h5
from ..store.index import build_index
from ..store.layout import MANIFEST, SAMPLES
from ..store.manifest import stored_manifest
from ..store.samples import table_hash, write_samples
from ..utils.paths import atomic_write_text
from ..utils.seeding import derive_seed

log = logging.getLogger(__name__)


def resplit(split, labels, seed: int) -> np.ndarray:
    """A new split with as many test images per class as ``split`` has, drawn with ``seed``.

    Parameters
    ----------
    split : ndarray of shape (n,), str — ``train`` / ``test`` (other values are kept).
    labels : ndarray of shape (n,), int — class of each row.
    seed : int.

    Returns
    -------
    ndarray of shape (n,), str — the same per-class counts, other rows in test.
    """
    split, labels = np.asarray(split).astype(object), np.asarray(labels)
    out = split.copy()
    rng = np.random.default_rng(derive_seed("replicate-split", int(seed)))
    for label in np.unique(labels):
        rows = np.flatnonzero((labels == label) & np.isin(split, ["train", "test"]))
        n_test = int(np.sum(split[rows] == "test"))
        chosen = rng.permutation(rows)
        out[chosen[:n_test]], out[chosen[n_test:]] = "test", "train"
    return out.astype(str)


def _link_conditions(source: str, root: str) -> None:
    src = os.path.join(source, "conditions")
    folder = os.path.join(root, "conditions")
    os.makedirs(folder, exist_ok=True)
    for slug in sorted(os.listdir(src)) if os.path.isdir(src) else []:
        link = os.path.join(folder, slug)
        if not os.path.lexists(link):
            os.symlink(os.path.join(src, slug), link, target_is_directory=True)


def resplit_store(source: str, root: str, seed: int) -> FeatureStore:
    """The store ``source`` under the split :func:`resplit` draws with ``seed``, as the store
    directory ``root`` (made, or reused when it is this very view)."""
    src = FeatureStore(source)
    record = dict(source=src.path, seed=int(seed), source_samples_sha256=src.manifest[
        "samples_sha256"])
    manifest_path = os.path.join(root, MANIFEST)
    view = stored_manifest(root)
    if view is not None:
        if view.get("resplit") != record:
            raise FeatlabError(f"{root} holds another store or split; remove it or use "
                               f"another --out")
        _link_conditions(src.path, root)  # conditions extracted into the source since
        return FeatureStore(root)
    samples = src.samples
    samples.split = resplit(samples.split, samples.label, seed)
    os.makedirs(root, exist_ok=True)
    _link_conditions(src.path, root)
    write_h5(os.path.join(root, SAMPLES), lambda h: write_samples(h, samples), root=root,
             what=SAMPLES)
    manifest = dict(src.manifest, samples_sha256=table_hash(samples), resplit=record)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2))  # after the samples
    build_index(root)
    log.info("re-split view of %s with seed %d in %s (%d test images)", src.path, seed, root,
             int(np.sum(samples.split == "test")))
    return FeatureStore(root)
