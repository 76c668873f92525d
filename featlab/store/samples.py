"""Reading and writing the sample table as HDF5 columns."""
from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

from ..data.base import SampleTable

STR = h5py.string_dtype("utf-8")
JSON_ATTRS = ("classes", "class_supercategory", "subsets", "skipped")


def table_hash(samples: SampleTable) -> str:
    """A hash of the rows (ids, files, labels, splits, boxes) that must match to resume."""
    digest = hashlib.sha256()
    for column in ("image_id", "file", "label", "split"):
        digest.update("\x1f".join(map(str, getattr(samples, column))).encode())
    digest.update(np.nan_to_num(samples.boxes.astype(np.float32), nan=-1).tobytes())
    return digest.hexdigest()


def write_samples(group: h5py.Group, samples: SampleTable) -> None:
    """Write columns into ``group`` (an open file or group)."""
    for column in SampleTable.COLUMNS:
        values = np.asarray(getattr(samples, column))
        if values.dtype.kind in "UO":
            group.create_dataset(column, data=values.astype(object), dtype=STR)
        else:
            group.create_dataset(column, data=values, track_times=False)
    for attr in JSON_ATTRS:
        group.attrs[attr] = json.dumps(getattr(samples, attr))
    group.attrs["sha256"] = table_hash(samples)


def read_samples(group: h5py.Group) -> SampleTable:
    columns = {}
    for column in SampleTable.COLUMNS:
        data = group[column]
        if h5py.check_string_dtype(data.dtype) is not None:
            columns[column] = np.asarray(data.asstr()[()], dtype=str)
        else:
            columns[column] = data[()]
    extras = {attr: json.loads(group.attrs[attr]) for attr in JSON_ATTRS}
    extras["skipped"] = [tuple(item) for item in extras["skipped"]]
    return SampleTable(**columns, **extras)


def describe(path: str, manifest: dict, samples: SampleTable) -> dict:
    """The descriptive part of ``featlab store info``: versions, dataset, splits, backbones."""
    splits = {s: int((samples.split == s).sum()) for s in ("train", "test")}
    return dict(path=path, schema_version=manifest["schema_version"],
                featlab_version=manifest["featlab_version"], dataset=manifest["dataset"],
                n_samples=manifest["n_samples"], splits=splits, classes=len(samples.classes),
                subsets={k: len(v) for k, v in samples.subsets.items()},
                skipped=len(samples.skipped),
                backbones={k: dict(weights_sha256=v["weights_sha256"], layers=len(v["layers"]))
                           for k, v in manifest["backbones"].items()})
