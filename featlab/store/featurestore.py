"""Reading a store: ``FeatureStore(path).read(backbone=, layer=, condition=)``.

Blocks come back as numpy arrays aligned with the sample table (``store.samples``), or with
its rows restricted by ``split`` / ``subset``. Everything goes through ``store.h5``, which is
a plain HDF5 file: ``h5py.File("STORE/store.h5")["conditions/clean/<backbone>/penultimate"]``.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Optional

import h5py
import numpy as np

from ..errors import DamagedData, FeatlabError
from ..conditions import parse_condition
from . import heads as _heads
from .files import check_writable
from .index import build_index, parts_signature
from .integrity import check_part, check_store, damaged_parts
from .layout import INDEX, SAMPLES, WriterLock, condition_dir, condition_slug, list_parts
from .manifest import check_schema, read_manifest
from .samples import describe
from .table import trusted_samples

log = logging.getLogger(__name__)


def _names(items) -> str:
    items = list(items)
    return ", ".join(items) if items else "(none)"


class FeatureStore:
    """A read view of the store directory ``path`` (see :mod:`featlab.store.layout`)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise FeatlabError(f"no feature store at {path}; create one with "
                               f"'featlab extract --store {path} ...'")
        self.manifest = read_manifest(self.path)
        self.samples = trusted_samples(self.path, self.manifest)  # checked, not the index's
        self._refresh_index()
        with h5py.File(self.index_path, "r") as index:
            check_schema({"schema_version": int(index.attrs["schema_version"])}, self.path)
            self._conditions = {key: json.loads(group.attrs["info"]) | {
                "complete": bool(group.attrs["complete"]), "n_parts": int(group.attrs["n_parts"]),
                "n_chunks": int(group.attrs["n_chunks"])}
                for key, group in index["conditions"].items()}

    @property
    def index_path(self) -> str:
        return os.path.join(self.path, INDEX)

    def _check_samples_file(self) -> None:
        if not os.path.isfile(os.path.join(self.path, SAMPLES)):
            raise FeatlabError(f"store {self.path} has lost {SAMPLES} (its sample table); "
                               f"rerun the extract command to rewrite it")

    def _refresh_index(self) -> None:
        """Rebuild ``store.h5`` when parts were added since it was written (e.g. a killed run)
        or it was built from another sample table."""
        current = readable = None
        try:
            with h5py.File(self.index_path, "r") as index:
                readable = index.attrs.get("parts_signature")
                same = index["samples"].attrs.get("sha256") == self.manifest["samples_sha256"]
                current = readable if same else None
        except (OSError, ValueError, KeyError):  # missing or unreadable: rebuild it
            pass
        if current is not None and current == parts_signature(self.path):
            return
        try:
            with WriterLock(self.path):
                build_index(self.path)
        except FeatlabError as err:
            if readable is None:
                raise FeatlabError(f"store {self.path} has no usable index {INDEX} and it "
                                   f"cannot be rebuilt now: {err}") from None
            log.warning("%s; reading its last index", err)

    # -- descriptors -------------------------------------------------------------------
    @property
    def backbones(self) -> list[str]:
        return list(self.manifest["backbones"])

    @property
    def backbone_meta(self) -> dict:
        """Backbone name -> its manifest record (weights hash, layers, role), in order."""
        return dict(self.manifest["backbones"])

    @property
    def conditions(self) -> list[str]:
        return list(self._conditions)

    def layers(self, backbone: str) -> list[str]:
        self._check_backbone(backbone)
        return list(self.manifest["backbones"][backbone]["layers"])

    def condition_info(self, condition: str) -> dict:
        return self._conditions[self.resolve_condition(condition)]

    def resolve_condition(self, text: str) -> str:
        """Canonical key of a stored condition given any spelling of it."""
        if text in self._conditions:
            return text
        try:
            parsed = parse_condition(text)
        except FeatlabError:
            parsed = []
        key = parsed[0].key if len(parsed) == 1 else text
        if key not in self._conditions:
            raise FeatlabError(f"condition {text!r} is not in store {self.path}; stored: "
                               f"{_names(self._conditions)}")
        return key

    def _check_backbone(self, backbone: str) -> None:
        if backbone not in self.manifest["backbones"]:
            raise FeatlabError(f"backbone {backbone!r} is not in store {self.path}; stored: "
                               f"{_names(self.backbones)}")

    def rows(self, split: Optional[str] = None, subset: Optional[str] = None) -> np.ndarray:
        """Row indices for ``split`` (train/test/None) and class ``subset`` (None: all)."""
        if split not in (None, "train", "test"):
            raise FeatlabError(f"split {split!r}: expected train or test")
        classes = None
        if subset not in (None, "all"):
            if subset not in self.samples.subsets:
                raise FeatlabError(f"subset {subset!r} is not defined for this store; defined: "
                                   f"{_names(self.samples.subsets)}")
            classes = self.samples.subsets[subset]
        return self.samples.indices(split, classes)

    # -- data --------------------------------------------------------------------------
    def read(self, *, backbone: str, layer: str, condition: str = "clean",
             split: Optional[str] = None, subset: Optional[str] = None) -> np.ndarray:
        """Features of ``layer`` of ``backbone`` under ``condition``.

        Returns
        -------
        ndarray of shape (n_rows, n_features), float32, rows as :meth:`rows` (NaN rows:
        images that could not be decoded; see :meth:`valid`).
        """
        key = self.resolve_condition(condition)
        self._check_backbone(backbone)
        if layer not in self.manifest["backbones"][backbone]["layers"]:
            raise FeatlabError(f"layer {layer!r} is not stored for {backbone}; stored: "
                               f"{_names(self.layers(backbone))}")
        return self.read_array(f"{backbone}/{layer}", key, split=split, subset=subset)

    def read_array(self, name: str, condition: str, *, split=None, subset=None,
                   rows=None) -> np.ndarray:
        """Any per-row array stored with a condition (features, ``valid``, extras).

        ``rows``: sorted row indices to read (only those are loaded, e.g. the probed rows
        of a large store); otherwise the rows of ``split`` / ``subset``.
        """
        key = self._complete_key(condition)
        with h5py.File(self.index_path, "r") as index:
            group = index["conditions"][key]
            if name not in group:
                raise FeatlabError(f"{name!r} is not stored with {key}; stored: "
                                   f"{_names(self._datasets(group))}")
            self.check_parts(key, name)
            data = group[name]
            if rows is not None:
                rows = np.asarray(rows, dtype=np.int64)
                if not len(rows):
                    return np.empty((0,) + data.shape[1:], data.dtype)
                return data[rows]
            return data[()][self.rows(split, subset)]

    def check_parts(self, condition: str, name: str) -> None:
        """Check ``name`` in every part of ``condition`` against its checksum (once per
        process per part); a damaged or unverified part raises a one-line FeatlabError."""
        key = self.resolve_condition(condition)
        for _, _, path in list_parts(condition_dir(self.path, key)):
            check_part(self.path, key, path, name)

    def array_names(self, condition: str, prefix: str = "") -> list[str]:
        """Names of the arrays stored with ``condition`` (under ``prefix``, e.g. "scores")."""
        key = self._complete_key(condition)
        with h5py.File(self.index_path, "r") as index:
            group = index["conditions"][key]
            if prefix:
                return sorted(group[prefix]) if prefix in group else []
            return self._datasets(group)

    @staticmethod
    def _datasets(group) -> list[str]:
        found = []
        group.visit(lambda n: found.append(n) if isinstance(group[n], h5py.Dataset) else None)
        return found

    def _complete_key(self, condition: str) -> str:
        key = self.resolve_condition(condition)
        info = self._conditions[key]
        if not info["complete"]:
            raise DamagedData(f"condition {key} is incomplete in {self.path} ({info['n_parts']}"
                               f"/{info['n_chunks']} chunks); rerun the extract command to finish")
        return key

    def valid(self, condition: str = "clean", *, split=None, subset=None) -> np.ndarray:
        """Boolean mask: the image was decoded and its features are finite."""
        return self.read_array("valid", condition, split=split, subset=subset).astype(bool)

    def labels(self, *, split=None, subset=None) -> np.ndarray:
        """Labels of the rows, re-indexed 0..k-1 within ``subset`` when one is given."""
        rows = self.rows(split, subset)
        names = self.samples.class_name[rows]
        classes = self.classes(subset)
        lookup = {name: i for i, name in enumerate(classes)}
        return np.array([lookup[n] for n in names], dtype=np.int64)

    def classes(self, subset=None) -> list:
        if subset in (None, "all"):
            return list(self.samples.classes)
        return [c for c in self.samples.classes if c in set(self.samples.subsets[subset])]

    def check_writable(self) -> None:
        """Refuse (one line) before any work when nothing could be saved in this store."""
        check_writable(self.path)
        self._check_samples_file()

    def info(self) -> dict:
        """A JSON-able summary (what ``featlab store info`` prints), with the ``problems`` a
        quick check finds (sizes, structure; ``check_store(path, full=True)`` reads bytes)."""
        problems = check_store(self.path)["problems"]
        damaged = damaged_parts(problems)
        conditions = {k: damaged.get(condition_slug(k)) or (
            "complete" if v["complete"] else f"{v['n_parts']}/{v['n_chunks']} chunks")
            for k, v in self._conditions.items()}
        for k, v in self._conditions.items():  # made against a head refit since
            changed = _heads.stale_heads(self.path, v)
            conditions[k] += f"; stale (head {', '.join(changed)} refit since)" if changed else ""
        return dict(describe(self.path, self.manifest, self.samples), conditions=conditions,
                    heads=_heads.list_heads(self.path), problems=problems)
