"""A head as the store keeps it: its content digest and the head object of a record.

Light on purpose (no scikit-learn, no torch): the store reads digests of its heads without
loading any head type; :func:`head_from_arrays` imports the one a record names.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from .registry import HEADS

HEAD_TYPE = "head_type"  # the attribute naming a stored head's type; linear heads omit it


def content_digest(arrays: dict, attrs: dict, skip=()) -> str:
    """sha256 (hex) of a head's content: every array (name, dtype, shape, bytes) and every
    attribute but those in ``skip``, as JSON, in sorted order. Same fit, same bytes on CPU:
    same digest."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    content = {k: attrs[k] for k in sorted(attrs) if k not in skip}
    digest.update(json.dumps(content, sort_keys=True).encode())
    return digest.hexdigest()


def head_from_arrays(arrays: dict, attrs: dict):
    """The head object of a stored head, its type from ``attrs["head_type"]`` (linear when
    absent)."""
    return HEADS.get(attrs.get(HEAD_TYPE, "linear")).from_arrays(arrays, attrs)
