"""Build ``store.h5``, the index every reader opens, from the files of a store directory.

Each stored block ``/conditions/<key>/<backbone>/<layer>`` is an HDF5 virtual dataset of
shape ``(n_samples, ...)`` whose rows map onto the parts that hold them (relative paths, so
the store directory can be moved); rows no part holds read as NaN. Nothing is copied.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os

import h5py
import numpy as np

from . import checksums
from .files import write_h5
from .layout import CONDITION_RECORD, INDEX, is_complete, list_parts
from .manifest import read_manifest
from .records import read_record
from .samples import write_samples
from .table import trusted_samples

log = logging.getLogger(__name__)


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


def _dataset_shapes(path: str) -> dict | None:
    """name -> (shape, dtype) of a part's datasets, from its checksum record when it has
    one of the right size, else from the file; None when the part is damaged."""
    record, problem = checksums.read_record(path)
    problem = problem or (checksums.size_problem(path, record) if record else None)
    if record is not None and problem is None:
        return {name: (tuple(d["shape"]), np.dtype(d["dtype"]))
                for name, d in record["datasets"].items()}
    shapes = {}
    try:
        if problem is None:
            with h5py.File(path, "r") as part:
                part.visititems(lambda name, obj: shapes.__setitem__(name, (obj.shape, obj.dtype))
                                if isinstance(obj, h5py.Dataset) else None)
            return shapes
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        problem = checksums.first_line(err)
    log.warning("part %s is damaged (%s); not indexed — rerun the extract command to "
                "recompute it", path, problem)
    return None


def _fill(dtype):
    return np.nan if np.dtype(dtype).kind == "f" else 0


def _add_condition(group: h5py.Group, folder: str, n_rows: int, n_chunks: int) -> None:
    try:
        info = read_record(folder)
    except (OSError, ValueError):
        log.warning("%s/%s is unreadable; condition not indexed — rerun the extract command "
                    "to rewrite it", folder, CONDITION_RECORD)
        return
    shapes = {}
    for start, stop, path in list_parts(folder):
        found = _dataset_shapes(path)
        if found is not None:
            shapes[(start, stop, path)] = found
    parts = sorted(shapes)
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
        for name, (shape, dtype) in shapes[(start, stop, path)].items():
            if name not in layouts:
                dtype = np.float32 if dtype == np.float16 else dtype  # f16 parts read as f32
                layouts[name] = (h5py.VirtualLayout((n_rows,) + shape[1:], dtype), dtype)
            layouts[name][0][start:stop] = h5py.VirtualSource(rel, name, shape=shape)
    for name, (layout, dtype) in sorted(layouts.items()):
        cond.create_virtual_dataset(name, layout, fillvalue=_fill(dtype))


def build_index(root: str) -> str:
    """Write ``root/store.h5`` afresh (built in memory, then renamed in), with the sample
    table that passes its check (:func:`~featlab.store.table.trusted_samples`; never one
    that fails). The caller holds the writer lock. Returns its path."""
    manifest = read_manifest(root)
    table = trusted_samples(root, manifest, locked=True)
    signature = parts_signature(root)
    write_h5(os.path.join(root, INDEX), lambda index: _fill_index(index, root, manifest, table,
                                                                   signature),
             root=root, what=INDEX, record=False, track_order=True)
    return os.path.join(root, INDEX)


def _fill_index(index: h5py.File, root: str, manifest: dict, table, signature: str) -> None:
    n_rows, chunk = manifest["n_samples"], manifest["chunk_size"]
    n_chunks = -(-n_rows // chunk)
    index.attrs["schema_version"] = manifest["schema_version"]
    index.attrs["featlab_version"] = manifest["featlab_version"]
    index.attrs["manifest"] = json.dumps(manifest)
    index.attrs["parts_signature"] = signature
    write_samples(index.create_group("samples"), table)
    conditions = index.create_group("conditions", track_order=True)
    base = os.path.join(root, "conditions")
    for slug in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if os.path.isfile(os.path.join(base, slug, CONDITION_RECORD)):
            _add_condition(conditions, os.path.join(base, slug), n_rows, n_chunks)
    heads = index.create_group("heads")
    head_dir = os.path.join(root, "heads")
    for name in sorted(os.listdir(head_dir)) if os.path.isdir(head_dir) else []:
        if name.endswith(".h5") and not name.startswith(".tmp-"):
            heads[name[:-3]] = h5py.ExternalLink(f"heads/{name}", "/")
