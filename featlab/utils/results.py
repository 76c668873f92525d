"""Where results go and how they are written: JSON next to the figures, under ``analyses/``."""
from __future__ import annotations

import json
import os

import numpy as np

from .paths import atomic_write_text, default_analyses_dir


def output_dir(store_path: str, command: str, out=None) -> str:
    """``out`` or ``analyses/<store name>/<command>/`` (created)."""
    folder = out or os.path.join(default_analyses_dir(),
                                 os.path.basename(os.path.abspath(store_path)), command)
    os.makedirs(folder, exist_ok=True)
    return folder


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def write_json(path: str, payload) -> str:
    """Write ``payload`` (numpy scalars and arrays allowed) as indented JSON, atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2, default=_default, allow_nan=True))
    return path


def finish(result: dict, out_dir, stem: str) -> dict:
    """With ``out_dir``: write ``result`` as ``out_dir/stem.json`` and record its path in
    ``result["json"]``. Returns ``result``."""
    if out_dir:
        result["json"] = os.path.join(out_dir, f"{stem}.json")
        write_json(result["json"], result)
    return result
