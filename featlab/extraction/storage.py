"""What a run stores: which layers (``--layers``), in which dtype (``--dtype``), and whether
the disk can hold it (checked before anything is computed).

``--layers penultimate,layer4.*`` keeps the captured layers whose names match one of the
comma-separated :mod:`fnmatch` patterns (case-sensitive), for every backbone and every
condition, probe conditions included; only those layers are hooked. ``--dtype float16``
stores features in half precision (about half the bytes; 11-bit mantissa, relative error
<= 2**-11); the index presents every block as float32, so every reader gets float32.

Options that change stored bytes and have no value given (``compression``, ``channels_last``)
take the store's own setting, so that a store is continued as it was started; a new store
gets :data:`NEW_STORE_COMPRESSION` and :data:`NEW_STORE_CHANNELS_LAST`.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import shutil

import numpy as np

from ..errors import FeatlabError
from ..store.layout import condition_dir, list_parts
from ..store.manifest import stored_chunk_size, stored_manifest
from ..store.writer import COMPRESSIONS, LEGACY_COMPRESSION

log = logging.getLogger(__name__)
FEATURE_DTYPES = {"float32": np.float32, "float16": np.float16}
#: the settings of a store whose manifest predates one of them
DEFAULT_SETTINGS = dict(dtype="float32", layers="*", precision="fp32", channels_last=False,
                        compression=LEGACY_COMPRESSION)
#: ``--compression`` of a new store when none is given (an existing store keeps its own)
NEW_STORE_COMPRESSION = "none"
#: ``--channels-last`` of a new store when neither it nor ``--contiguous`` is given: the
#: forward passes are 1.4-1.7x faster in channels-last at 224 px on this 2-core CPU (0.9-1.2x
#: at 64 px); features differ from contiguous ones only by float32 rounding
NEW_STORE_CHANNELS_LAST = True
#: what a new store gets for each option the run leaves unset
NEW_STORE = dict(compression=NEW_STORE_COMPRESSION, channels_last=NEW_STORE_CHANNELS_LAST)


def parse_patterns(layers) -> list[str]:
    """``"penultimate,layer4.*"`` or a list -> patterns; None or empty -> ``["*"]``."""
    if layers is None:
        return ["*"]
    items = layers.split(",") if isinstance(layers, str) else list(layers)
    patterns = [p.strip() for p in items if p and p.strip()]
    return patterns or ["*"]


def select_layers(layers, models) -> dict[str, list[str]]:
    """Backbone name -> stored layer names (capture order) for the patterns ``layers``.

    Raises FeatlabError (one line, listing the captured layers) when a pattern matches no
    layer of a backbone.
    """
    patterns = parse_patterns(layers)
    selection = {}
    for model in models:
        names = list(model.layer_dims())
        for pattern in patterns:
            if not fnmatch.filter(names, pattern):
                raise FeatlabError(f"--layers {pattern!r} matches no layer of {model.name}; "
                                   f"its layers: {', '.join(names)}")
        selection[model.name] = [n for n in names
                                 if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return selection


def feature_dtype(name: str):
    if name not in FEATURE_DTYPES:
        raise FeatlabError(f"--dtype {name!r}: expected one of {', '.join(FEATURE_DTYPES)}")
    return FEATURE_DTYPES[name]


def settings_of(spec) -> dict:
    """The run options that change stored bytes (recorded in the manifest as ``storage``),
    of a ``spec`` whose unset options :func:`with_store_defaults` has resolved."""
    if spec.compression not in COMPRESSIONS:
        raise FeatlabError(f"--compression {spec.compression!r}: expected one of "
                           f"{', '.join(COMPRESSIONS)}")
    return dict(dtype=spec.dtype, layers=",".join(parse_patterns(spec.layers)),
                precision=spec.precision, channels_last=bool(spec.channels_last),
                compression=spec.compression)


def store_settings(manifest: dict) -> dict:
    """The ``storage`` settings a store's manifest records, :data:`DEFAULT_SETTINGS` for
    those it predates."""
    return dict(DEFAULT_SETTINGS, **manifest.get("storage", {}))


def with_store_defaults(spec):
    """``spec`` with its unset options (``compression``, ``channels_last``: None) resolved:
    the store's own settings (a store that predates a record: :data:`DEFAULT_SETTINGS`),
    :data:`NEW_STORE` for a new store."""
    unset = [name for name in NEW_STORE if getattr(spec, name) is None]
    if not unset:
        return spec
    stored = stored_manifest(os.path.abspath(spec.store))
    own = NEW_STORE if stored is None else store_settings(stored)
    return dataclasses.replace(spec, **{name: own[name] for name in unset})


def check_settings(manifest: dict, settings: dict, root: str, backbones: dict) -> None:
    """A store is continued only with the options it was started with (``backbones``: the
    run's manifest entries, whose ``layers`` must be the stored ones)."""
    stored = store_settings(manifest)
    for name, meta in backbones.items():
        have = list(manifest["backbones"].get(name, {}).get("layers", []))
        if have != list(meta["layers"]):
            raise FeatlabError(f"store {root} holds layers {stored['layers']} of {name}, not "
                               f"{settings['layers']} ({len(have)} vs {len(meta['layers'])} "
                               f"layers); rerun with the same --layers or use another --store")
    diff = [k for k in settings if k != "layers" and stored.get(k) != settings[k]]
    if diff:
        was = ", ".join(f"{k}={stored.get(k)}" for k in diff)
        now = ", ".join(f"{k}={settings[k]}" for k in diff)
        raise FeatlabError(f"store {root} was extracted with {was}, not {now}; rerun with "
                           f"the same options or use another --store")


def cast_features(arrays: dict, dtype) -> dict:
    """Feature blocks (``<backbone>/<layer>``, ``clean/<backbone>/<layer>``, float32) cast
    to ``dtype``; every other array (validity, norms, scores, ...) unchanged."""
    if dtype == np.float32:
        return arrays
    return {k: (v.astype(dtype) if v.dtype == np.float32 and is_feature(k) else v)
            for k, v in arrays.items()}


def is_feature(name: str) -> bool:
    parts = name.split("/")
    return (len(parts) == 2 and parts[0] not in ("attack", "scores", "pred", "clean_score",
                                                   "clean_pred")) \
        or (len(parts) == 3 and parts[0] == "clean")


def row_bytes(condition, dims: int, itemsize: int, n_heads: int = 3) -> int:
    """Upper bound of the bytes one row of ``condition`` takes (uncompressed).

    ``dims``: stored feature dimensions summed over backbones and layers; probe rows also
    hold the float32 differences ``delta/...`` (T x dims).
    """
    params = condition.params
    if condition.family == "probe":
        t = params["copies"]
        return ((t + 1) * dims * itemsize + t * dims * 4 + t * 8 + t * (t - 1) // 2 * 8
                + n_heads * (t * 16 + 8) + 32)
    extra = 9 if condition.perturbation.needs_model else 0
    return dims * itemsize + 1 + extra


#: HDF5 object header, chunk index and checksum record of one dataset in a part (measured:
#: 2.5-3 KiB for the 45 datasets of a ResNet18 pair's part)
DATASET_OVERHEAD = 4096


def estimate_bytes(conditions, missing: dict, dims: int, itemsize: int, chunk_size: int,
                   n_blocks: int) -> int:
    """Bytes of the parts still to write: ``missing`` maps condition key -> chunk list.

    ``dims``: feature dimensions summed over stored layers and backbones; ``n_blocks``: the
    number of stored (backbone, layer) blocks. Data are counted uncompressed (float features
    shrink by ~10 % at best) plus :data:`DATASET_OVERHEAD` per dataset of each part. Probe
    conditions store full rows only in chunks holding a probed image: at most ``samples``.
    """
    total = 0
    for cond in conditions:
        chunks = missing.get(cond.key, [])
        rows = sum(b - a for a, b in chunks)
        n_data = n_blocks + 3
        if cond.family == "probe":
            rows = min(rows, cond.params["samples"] * chunk_size)
            n_data = 5 * n_blocks + 3 * 4 + 5  # copies, clean, delta, noise, noise_run
        total += rows * row_bytes(cond, dims, itemsize) + len(chunks) * (n_data + 1) * \
            DATASET_OVERHEAD
    return total


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_disk(root: str, needed: int) -> None:
    """Log the estimate; FeatlabError when the file system of ``root`` cannot hold it."""
    probe = os.path.abspath(root)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    log.info("estimated size of the parts to write: %s (uncompressed upper bound); %s free "
             "at %s", human(needed), human(free), probe)
    if needed > free:
        raise FeatlabError(f"store {root} needs about {human(needed)} for this run and only "
                           f"{human(free)} is free there; free disk space, store fewer "
                           f"--layers or --dtype float16, or use another --store")


def missing_on_disk(root: str, keys, n_rows: int, chunk_size: int) -> tuple[dict, int]:
    """Chunks of each condition key that no complete part of ``root`` holds yet (read-only:
    the store may not exist), and the chunk size in use (the store's, if it exists)."""
    chunk_size = stored_chunk_size(root) or chunk_size  # the writer reports a damaged one
    chunks = [(s, min(s + chunk_size, n_rows)) for s in range(0, n_rows, chunk_size)]
    missing = {}
    for key in keys:
        done = {(a, b) for a, b, _ in list_parts(condition_dir(root, key))}
        missing[key] = [c for c in chunks if c not in done]
    return missing, chunk_size
