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
from .files import check_writable, disk_errors, set_aside, write_h5
from .index import build_index
from .integrity import check_part, part_problem
from .layout import (CONDITION_RECORD, MANIFEST, SAMPLES, SCHEMA_VERSION, WriterLock,
                     condition_dir, is_complete, list_parts, part_name, remove_temporaries)
from .manifest import check_schema, read_manifest  # noqa: F401  (re-exported)
from .records import stored_record
from .samples import table_hash, write_samples
from .table import samples_problem

log = logging.getLogger(__name__)
#: Filters of the float datasets in a part, by the store's ``compression`` setting (manifest
#: ``storage``); stock HDF5 reads both. ``gzip``: deflate level 1 with byte shuffle
#: (deterministic bytes; ResNet18 features shrink by ~10 %). ``none``, the default of a new
#: store: gzip costs ~30 % of extraction throughput at 64 px on 2 CPU cores, where the
#: compressing thread competes with the forward passes (bench/bench_compression.py,
#: bench/bench_extract.py). Stores written with lzf are still read.
COMPRESSIONS = {"none": {}, "gzip": dict(compression="gzip", compression_opts=1, shuffle=True)}
#: the setting of stores made before it was recorded: they were written with gzip
LEGACY_COMPRESSION = "gzip"


def part_filters(manifest: dict) -> dict:
    """h5py filter options of the store's ``compression`` setting."""
    name = (manifest.get("storage") or {}).get("compression", LEGACY_COMPRESSION)
    if name not in COMPRESSIONS:
        raise FeatlabError(f"the store's manifest asks for compression {name!r}, which this "
                           f"featlab does not write ({', '.join(COMPRESSIONS)}); upgrade featlab")
    return COMPRESSIONS[name]


class StoreWriter:
    """Open ``root`` for writing (creating it from ``manifest`` + ``samples`` if new)."""

    def __init__(self, root: str, *, samples, backbones: dict, dataset_spec: dict,
                 chunk_size: int = 256, extra: dict | None = None, lock: bool = True):
        self.root = os.path.abspath(root)
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise FeatlabError(f"--store {root} is a file; give a directory path for the store")
        check_writable(self.root)
        # lock=False: a rank > 0 of a torchrun job, writing parts while rank 0 holds the lock
        self.lock = WriterLock(self.root).acquire() if lock else None
        try:
            if lock:
                self.manifest = self._open_or_create(samples, backbones, dataset_spec,
                                                     chunk_size, extra or {})
            else:
                self.manifest = read_manifest(self.root)
                self._check_same(self.manifest, samples, backbones)
        except BaseException:
            self.close()
            raise
        self.n_rows = self.manifest["n_samples"]
        self.chunk_size = self.manifest["chunk_size"]
        self.filters = part_filters(self.manifest)

    def _open_or_create(self, samples, backbones, dataset_spec, chunk_size, extra) -> dict:
        if os.path.isfile(os.path.join(self.root, MANIFEST)):
            manifest = read_manifest(self.root)
            removed = remove_temporaries(self.root)
            if removed:
                log.info("removed %d unfinished file(s) of an interrupted run", removed)
            self._check_same(manifest, samples, backbones)
            problem = samples_problem(self.root, manifest, full=True)
            if problem:
                path = os.path.join(self.root, SAMPLES)
                if os.path.exists(path):
                    set_aside(self.root, path, problem)
                self._write_samples(samples)
                log.warning("rewrote %s of store %s (%s)", SAMPLES, self.root, problem)
            return manifest
        manifest = dict(schema_version=SCHEMA_VERSION, featlab_version=__version__,
                        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        dataset=dataset_spec, n_samples=len(samples), chunk_size=chunk_size,
                        samples_sha256=table_hash(samples), backbones=backbones, **extra)
        self._write_samples(samples)
        with disk_errors(self.root, MANIFEST):
            atomic_write_text(os.path.join(self.root, MANIFEST), json.dumps(manifest, indent=2))
        return manifest

    def _write_samples(self, samples) -> None:
        write_h5(os.path.join(self.root, SAMPLES), lambda h: write_samples(h, samples),
                 root=self.root, what=SAMPLES)

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
        """Write ``condition.json`` unless an intact one describes stored parts (a damaged
        one is rewritten, and so is one without parts: nothing was made against it)."""
        folder = condition_dir(self.root, key)
        path = os.path.join(folder, CONDITION_RECORD)
        if (stored_record(self.root, key) or {}).get("key") == key and list_parts(folder):
            return
        with disk_errors(self.root, f"{key}/{CONDITION_RECORD}"):
            os.makedirs(folder, exist_ok=True)
            atomic_write_text(path, json.dumps(dict(info, key=key), indent=2, sort_keys=True))

    def condition_dir(self, key: str) -> str:
        return condition_dir(self.root, key)

    def stored_rows(self, key: str, name: str):
        """Yield ``(start, stop, values or None)`` of array ``name`` in each stored part."""
        for start, stop, path in list_parts(condition_dir(self.root, key)):
            self._check_part(key, path, name)
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
            for name in names:
                self._check_part(key, path, name, absent_ok=False)
            with h5py.File(path, "r") as part:
                for name in names:
                    out[name].append(part[name][()])
        return {name: np.concatenate(v) for name, v in out.items()}

    def _check_part(self, key: str, path: str, name: str, absent_ok: bool = True) -> None:
        check_part(self.root, key, path, name, absent_ok)

    def missing_chunks(self, key: str) -> list[tuple[int, int]]:
        """Chunks of ``key`` without an intact part; damaged parts are moved aside first."""
        done = set()
        for start, stop, path in list_parts(condition_dir(self.root, key)):
            problem = part_problem(path, start, stop, self.manifest, full=True)
            if problem:
                set_aside(self.root, path, problem)
            else:
                done.add((start, stop))
        return [c for c in self.chunks() if c not in done]

    def write_part(self, key: str, start: int, stop: int, arrays: dict, attrs=None) -> None:
        """Write rows [start, stop) of every array (name -> (rows, ...) array) at once."""
        for name, values in arrays.items():
            if len(values) != stop - start:
                raise ValueError(f"{name}: {len(values)} rows for part [{start}, {stop})")

        def fill(part):
            made = []
            for name, values in arrays.items():
                values = np.ascontiguousarray(values)
                opts = self.filters if values.dtype.kind == "f" and values.size > 64 else {}
                made.append(part.create_dataset(name, data=values, track_times=False, **opts))
            for attr, value in (attrs or {}).items():
                part.attrs[attr] = value
            return made  # every dataset of the part

        folder = condition_dir(self.root, key)
        write_h5(os.path.join(folder, part_name(start, stop)), fill, root=self.root,
                 what=f"part {part_name(start, stop)} of {key}")
        fsync_dir(folder)

    def rebuild_index(self) -> str:
        with disk_errors(self.root, "the index store.h5"):
            return build_index(self.root)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
