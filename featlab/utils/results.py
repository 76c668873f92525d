"""Where results go and how they are written: JSON next to the figures, under ``analyses/``."""
from __future__ import annotations

import json
import os

import numpy as np

from .paths import atomic_write_text, check_output_dir, default_analyses_dir, output_errors


def output_dir(store_path: str, command: str, out=None) -> str:
    """``out`` or ``analyses/<store name>/<command>/`` (``$FEATLAB_ANALYSES`` for
    ``analyses``). A folder that cannot be written is refused in one line before any work
    (:func:`~.paths.check_output_dir`); it is created by the first result written into it,
    so a command refused later leaves nothing behind."""
    folder = out or os.path.join(default_analyses_dir(),
                                 os.path.basename(os.path.abspath(store_path)), command)
    return check_output_dir(folder, "--out" if out else "results folder",
                            "" if out else "give --out a writable folder, or set "
                                           "FEATLAB_ANALYSES")


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


def write_json(path: str, payload, what: str = "--out") -> str:
    """Write ``payload`` (numpy scalars and arrays allowed) as indented JSON, atomically; a
    failed write is one line naming ``path`` and the option ``what`` that set it
    (:func:`~.paths.output_errors`)."""
    text = json.dumps(payload, indent=2, default=_default, allow_nan=True)
    with output_errors(path, what):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write_text(path, text)
    return path


def finish(result: dict, out_dir, stem: str) -> dict:
    """With ``out_dir``: write ``result`` as ``out_dir/stem.json`` and record its path in
    ``result["json"]``. Returns ``result``."""
    if out_dir:
        result["json"] = os.path.join(out_dir, f"{stem}.json")
        write_json(result["json"], result)
    return result
