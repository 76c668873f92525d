"""Writing a store: create or reopen it, then add parts, conditions and heads.

A :class:`StoreWriter` holds the store's lock for its whole life (one writer at a time;
a second one gets a one-line error). Opening an existing store checks that it was made by
a schema this featlab reads, for the same backbones and the same sample table; then work
already on disk is skipped, so a killed run continues where it stopped.
"""
from __future__ import annotations

import json
import logging
import os
import time

import h5py
import numpy as np

from .._version import __version__
from ..errors import FeatlabError
from ..utils.paths import atomic_write_text, fsync_dir
from .index import build_index
from .layout import (MANIFEST, SAMPLES, SCHEMA_VERSION, WriterLock, condition_dir, is_complete,
                     list_parts, part_name, remove_temporaries)
from .samples import table_hash, write_samples

log = logging.getLogger(__name__)
COMPRESSION = dict(compression="lzf", shuffle=True)


def check_schema(manifest: dict, root: str) -> None:
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise FeatlabError(f"store {root} has schema version {version}, newer than this featlab "
                           f"reads ({SCHEMA_VERSION}); upgrade featlab (pip install -U featlab)")


def read_manifest(root: str) -> dict:
    path = os.path.join(root, MANIFEST)
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise FeatlabError(f"no feature store at {root} (no {MANIFEST}); create one with "
                           f"'featlab extract --store {root} ...'") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FeatlabError(f"{path} is not valid JSON; the store is damaged — move it "
                           f"aside and extract again") from None
    check_schema(manifest, root)
    return manifest


class StoreWriter:
    """Open ``root`` for writing (creating it from ``manifest`` + ``samples`` if new)."""

    def __init__(self, root: str, *, samples, backbones: dict, dataset_spec: dict,
                 chunk_size: int = 256, extra: dict | None = None):
        self.root = os.path.abspath(root)
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise FeatlabError(f"--store {root} is a file; give a directory path for the store")
        self.lock = WriterLock(self.root).acquire()
        try:
            self.manifest = self._open_or_create(samples, backbones, dataset_spec, chunk_size,
                                                 extra or {})
        except BaseException:
            self.lock.release()
            raise
        self.n_rows = self.manifest["n_samples"]
        self.chunk_size = self.manifest["chunk_size"]

    def _open_or_create(self, samples, backbones, dataset_spec, chunk_size, extra) -> dict:
        if os.path.isfile(os.path.join(self.root, MANIFEST)):
            manifest = read_manifest(self.root)
            removed = remove_temporaries(self.root)
            if removed:
                log.info("removed %d unfinished file(s) of an interrupted run", removed)
            self._check_same(manifest, samples, backbones)
            return manifest
        manifest = dict(schema_version=SCHEMA_VERSION, featlab_version=__version__,
                        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        dataset=dataset_spec, n_samples=len(samples), chunk_size=chunk_size,
                        samples_sha256=table_hash(samples), backbones=backbones, **extra)
        tmp = os.path.join(self.root, f".tmp-{SAMPLES}")
        with h5py.File(tmp, "w") as handle:
            write_samples(handle, samples)
        os.replace(tmp, os.path.join(self.root, SAMPLES))
        atomic_write_text(os.path.join(self.root, MANIFEST), json.dumps(manifest, indent=2))
        return manifest

    def _check_same(self, manifest, samples, backbones) -> None:
        old = sorted(manifest["backbones"])
        if old != sorted(backbones):
            raise FeatlabError(f"store {self.root} holds backbones {','.join(old)}, not "
                               f"{','.join(sorted(backbones))}; use another --store")
        for name, meta in backbones.items():
            if manifest["backbones"][name]["weights_sha256"] != meta["weights_sha256"]:
                raise FeatlabError(f"store {self.root} was extracted with other {name} weights; "
                                   f"use the same --weights or another --store")
        if manifest["samples_sha256"] != table_hash(samples):
            raise FeatlabError(f"store {self.root} holds another sample table (other dataset, "
                               f"root, classes, seed or --limit); use the same options or "
                               f"another --store")

    # -- conditions and parts ---------------------------------------------------------
    def chunks(self) -> list[tuple[int, int]]:
        return [(s, min(s + self.chunk_size, self.n_rows))
                for s in range(0, self.n_rows, self.chunk_size)]

    def add_condition(self, key: str, info: dict) -> None:
        folder = condition_dir(self.root, key)
        path = os.path.join(folder, "condition.json")
        if os.path.isfile(path):
            return
        os.makedirs(folder, exist_ok=True)
        atomic_write_text(path, json.dumps(dict(info, key=key), indent=2, sort_keys=True))

    def condition_dir(self, key: str) -> str:
        return condition_dir(self.root, key)

    def stored_rows(self, key: str, name: str):
        """Yield ``(start, stop, values or None)`` of array ``name`` in each stored part."""
        for start, stop, path in list_parts(condition_dir(self.root, key)):
            with h5py.File(path, "r") as part:
                yield start, stop, part[name][()] if name in part else None

    def read_complete(self, key: str, names, *, how: str = "") -> dict:
        """Arrays ``names`` of a complete condition over all rows, from its parts (the index
        may be stale while this writer holds the store)."""
        parts = list_parts(condition_dir(self.root, key))
        n_chunks = len(self.chunks())
        if not is_complete(parts, n_chunks):
            raise FeatlabError(f"{key} is not complete in store {self.root} ({len(parts)} of "
                               f"{n_chunks} chunks present); {how}")
        out = {name: [] for name in names}
        for _, _, path in parts:
            with h5py.File(path, "r") as part:
                for name in names:
                    out[name].append(part[name][()])
        return {name: np.concatenate(v) for name, v in out.items()}

    def missing_chunks(self, key: str) -> list[tuple[int, int]]:
        done = {(a, b) for a, b, _ in list_parts(condition_dir(self.root, key))}
        return [c for c in self.chunks() if c not in done]

    def write_part(self, key: str, start: int, stop: int, arrays: dict, attrs=None) -> None:
        """Write rows [start, stop) of every array (name -> (rows, ...) array) at once."""
        folder = condition_dir(self.root, key)
        final = os.path.join(folder, part_name(start, stop))
        tmp = os.path.join(folder, ".tmp-" + part_name(start, stop))
        with h5py.File(tmp, "w") as part:
            for name, values in arrays.items():
                values = np.ascontiguousarray(values)
                if len(values) != stop - start:
                    raise ValueError(f"{name}: {len(values)} rows for part [{start}, {stop})")
                opts = COMPRESSION if values.dtype.kind == "f" and values.size > 64 else {}
                part.create_dataset(name, data=values, track_times=False, **opts)
            for attr, value in (attrs or {}).items():
                part.attrs[attr] = value
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(folder)

    def rebuild_index(self) -> str:
        return build_index(self.root)

    def close(self) -> None:
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
