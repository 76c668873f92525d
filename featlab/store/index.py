"""Build ``store.h5``, the index every reader opens, from the files of a store directory.

Each stored block ``/conditions/<key>/<backbone>/<layer>`` is an HDF5 virtual dataset of
shape ``(n_samples, ...)`` whose rows map onto the parts that hold them (relative paths, so
the store directory can be moved); rows no part holds read as NaN. Nothing is copied.
"""
from __future__ import annotations

import hashlib
import json
import os

import h5py
import numpy as np

from .layout import INDEX, MANIFEST, SAMPLES, is_complete, list_parts
from .samples import read_samples, write_samples


def parts_signature(root: str) -> str:
    """A hash of the names of every complete part, condition and head file."""
    names = []
    for sub in ("conditions", "heads"):
        base = os.path.join(root, sub)
        if not os.path.isdir(base):
            continue
        for folder, _, files in os.walk(base):
            rel = os.path.relpath(folder, root)
            names.extend(f"{rel}/{name}" for name in files if not name.startswith(".tmp-"))
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def _dataset_shapes(path: str) -> dict:
    shapes = {}
    with h5py.File(path, "r") as part:
        part.visititems(lambda name, obj: shapes.__setitem__(name, (obj.shape, obj.dtype))
                        if isinstance(obj, h5py.Dataset) else None)
    return shapes


def _fill(dtype):
    return np.nan if np.dtype(dtype).kind == "f" else 0


def _add_condition(group: h5py.Group, folder: str, n_rows: int, n_chunks: int) -> None:
    with open(os.path.join(folder, "condition.json")) as handle:
        info = json.load(handle)
    parts = list_parts(folder)
    cond = group.create_group(info["key"])
    cond.attrs["info"] = json.dumps(info)
    cond.attrs["n_parts"] = len(parts)
    cond.attrs["n_chunks"] = n_chunks
    cond.attrs["complete"] = is_complete(parts, n_chunks)
    if not parts:
        return
    layouts = {}
    for start, stop, path in parts:
        rel = os.path.relpath(path, os.path.dirname(os.path.dirname(folder)))
        for name, (shape, dtype) in _dataset_shapes(path).items():
            if name not in layouts:
                layouts[name] = (h5py.VirtualLayout((n_rows,) + shape[1:], dtype), dtype)
            layouts[name][0][start:stop] = h5py.VirtualSource(rel, name, shape=shape)
    for name, (layout, dtype) in sorted(layouts.items()):
        cond.create_virtual_dataset(name, layout, fillvalue=_fill(dtype))


def build_index(root: str) -> str:
    """Write ``root/store.h5`` afresh (temporary name, then rename). Returns its path."""
    with open(os.path.join(root, MANIFEST)) as handle:
        manifest = json.load(handle)
    n_rows, chunk = manifest["n_samples"], manifest["chunk_size"]
    n_chunks = -(-n_rows // chunk)
    tmp = os.path.join(root, f".tmp-{os.getpid()}-{INDEX}")
    with h5py.File(tmp, "w", track_order=True) as index:
        index.attrs["schema_version"] = manifest["schema_version"]
        index.attrs["featlab_version"] = manifest["featlab_version"]
        index.attrs["manifest"] = json.dumps(manifest)
        index.attrs["parts_signature"] = parts_signature(root)
        with h5py.File(os.path.join(root, SAMPLES), "r") as samples:
            write_samples(index.create_group("samples"), read_samples(samples))
        conditions = index.create_group("conditions", track_order=True)
        base = os.path.join(root, "conditions")
        for slug in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if os.path.isfile(os.path.join(base, slug, "condition.json")):
                _add_condition(conditions, os.path.join(base, slug), n_rows, n_chunks)
        heads = index.create_group("heads")
        head_dir = os.path.join(root, "heads")
        for name in sorted(os.listdir(head_dir)) if os.path.isdir(head_dir) else []:
            if name.endswith(".h5") and not name.startswith(".tmp-"):
                heads[name[:-3]] = h5py.ExternalLink(f"heads/{name}", "/")
    os.replace(tmp, os.path.join(root, INDEX))
    return os.path.join(root, INDEX)
