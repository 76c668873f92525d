"""The COCO selection, cached per annotation file, so a 450 MB train2017 JSON is parsed once.

The examined columns of one instances file (:class:`~featlab.data.coco_rules.Examined`)
are saved as ``<cache>/coco-selection/<key>.npz`` (plain numpy arrays, no pickle), where
``key`` hashes the file's absolute path, size and modification time, the options the
examination depends on (``selection``, ``max_instances``, ``max_box_fraction``,
``max_boxes``) and the source of :mod:`featlab.data.coco_rules` (a changed rule is never
served from an old cache). The cache lives under featlab's cache folder, never beside the
user's data (which may be read-only). An unreadable cache file is recomputed.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import os

import numpy as np

from ..utils.paths import atomic_write_bytes, default_cache_dir
from . import coco_rules
from .coco_rules import Examined, examine_file

log = logging.getLogger(__name__)
FOLDER = "coco-selection"
_COLUMNS = ("image_id", "file", "width", "height", "reason", "category", "boxes")


def cache_key(path: str, options: dict) -> str:
    stat = os.stat(path)
    source = hashlib.sha256(inspect.getsource(coco_rules).encode()).hexdigest()
    text = json.dumps(dict(path=os.path.abspath(path), size=stat.st_size,
                           mtime_ns=stat.st_mtime_ns, options=options, rules=source),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _save(target: str, examined: Examined) -> None:
    buffer = io.BytesIO()
    meta = json.dumps(dict(supercategory=examined.supercategory,
                           dropped_boxes=examined.dropped_boxes))
    columns = {f"col_{c}": getattr(examined, c) for c in _COLUMNS}  # "file" is savez's own
    np.savez(buffer, meta=np.array(meta), **columns)
    atomic_write_bytes(target, buffer.getvalue())


def _load(target: str) -> Examined:
    with np.load(target, allow_pickle=False) as data:
        columns = {c: data[f"col_{c}"] for c in _COLUMNS}
        meta = json.loads(str(data["meta"]))
    return Examined(**columns, supercategory=meta["supercategory"],
                    dropped_boxes=int(meta["dropped_boxes"]))


def examined(path: str, root: str, options: dict, cache_dir=None) -> Examined:
    """The examination of annotation file ``path`` under ``options`` (keyword arguments of
    :func:`~featlab.data.coco_rules.examine_file`), from the cache when it has it.

    ``cache_dir``: featlab's cache folder (None: ``$FEATLAB_CACHE`` or ``./cache``);
    ``False`` disables the cache.
    """
    if cache_dir is False:
        return examine_file(path, root, **options)
    folder = os.path.join(default_cache_dir() if cache_dir is None else str(cache_dir), FOLDER)
    target = os.path.join(folder, cache_key(path, options) + ".npz")
    if os.path.isfile(target):
        try:
            return _load(target)
        except (OSError, ValueError, KeyError, EOFError) as err:
            log.warning("ignoring unreadable COCO selection cache %s (%s)", target, err)
    result = examine_file(path, root, **options)
    try:
        _save(target, result)
        log.info("cached the selection of %s in %s", path, target)
    except OSError as err:  # a read-only cache folder costs a re-parse, nothing else
        log.warning("could not cache the selection of %s in %s (%s)", path, folder, err)
    return result
