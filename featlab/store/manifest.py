"""Reading ``manifest.json``: every key a reader relies on is checked, one line per mistake.

Code outside :mod:`featlab.store` reads a manifest through :func:`read_manifest`,
:func:`stored_manifest` (the store may not exist yet) or :func:`stored_chunk_size`.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from ..errors import FeatlabError
from .layout import MANIFEST, SCHEMA_VERSION

#: key -> (type, description) of what every manifest holds
REQUIRED = {
    "schema_version": (int, "an integer"),
    "featlab_version": (str, "a string"),
    "dataset": (dict, "an object"),
    "n_samples": (int, "an integer"),
    "chunk_size": (int, "an integer"),
    "samples_sha256": (str, "a string"),
    "backbones": (dict, "an object"),
}


def _damaged(root: str, what: str) -> FeatlabError:
    return FeatlabError(f"{os.path.join(root, MANIFEST)} {what}; the store's manifest is "
                        f"damaged — restore it from a copy, or move the store aside and "
                        f"extract again")


def _type_ok(value, kind) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def check_schema(manifest: dict, root: str) -> None:
    """Refuse manifests of a newer schema, and versions that are not integers."""
    version = manifest.get("schema_version")
    if not _type_ok(version, int):
        raise _damaged(root, f"has schema_version {version!r} ({type(version).__name__}); "
                             f"expected an integer such as {SCHEMA_VERSION}")
    if version > SCHEMA_VERSION:
        raise FeatlabError(f"store {root} has schema version {version}, newer than this featlab "
                           f"reads ({SCHEMA_VERSION}); upgrade featlab (pip install -U featlab)")
    if version < 1:
        raise _damaged(root, f"has schema_version {version}; expected 1..{SCHEMA_VERSION}")


def check_manifest(manifest, root: str) -> dict:
    """``manifest`` unchanged when it has every key with the right type, else FeatlabError."""
    if not isinstance(manifest, dict):
        raise _damaged(root, f"holds a JSON {type(manifest).__name__}, expected an object "
                             f"with keys {', '.join(REQUIRED)}")
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise _damaged(root, f"lacks key(s) {', '.join(missing)}")
    check_schema(manifest, root)
    for key, (kind, words) in REQUIRED.items():
        if not _type_ok(manifest[key], kind):
            raise _damaged(root, f"has {key} = {manifest[key]!r}; expected {words}")
    if manifest["n_samples"] < 0 or manifest["chunk_size"] < 1:
        raise _damaged(root, f"has n_samples {manifest['n_samples']} and chunk_size "
                             f"{manifest['chunk_size']}; expected >= 0 and >= 1")
    if not isinstance(manifest.get("storage", {}), dict):
        raise _damaged(root, f"has storage = {manifest['storage']!r}; expected an object")
    for name, meta in manifest["backbones"].items():
        if not isinstance(meta, dict) or not isinstance(meta.get("layers"), dict) \
                or not isinstance(meta.get("weights_sha256"), str):
            raise _damaged(root, f"has backbone {name!r} without weights_sha256 and layers")
    return manifest


def read_manifest(root: str) -> dict:
    """The checked manifest of the store ``root``."""
    path = os.path.join(root, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise FeatlabError(f"no feature store at {root} (no {MANIFEST}); create one with "
                           f"'featlab extract --store {root} ...'") from None
    except IsADirectoryError:
        raise _damaged(root, "is a directory") from None
    except (ValueError, UnicodeDecodeError):
        raise _damaged(root, "is not valid JSON") from None
    except PermissionError as err:
        raise FeatlabError(f"cannot read {path} ({err.strerror}); ask for read access to the "
                           f"store") from None
    return check_manifest(manifest, root)


def has_manifest(root: str) -> bool:
    """Whether ``root`` holds a store's manifest (without reading it)."""
    return os.path.isfile(os.path.join(root, MANIFEST))


def stored_manifest(root: str) -> Optional[dict]:
    """The checked manifest of the store at ``root``, or None when there is none; a damaged
    one is a one-line FeatlabError (:func:`read_manifest`)."""
    return read_manifest(root) if has_manifest(root) else None


def stored_chunk_size(root: str) -> Optional[int]:
    """The chunk size of the store at ``root``, or None when it has no readable manifest
    (read-only and lenient: opening the store for writing reports a damaged manifest)."""
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as handle:
            return int(json.load(handle)["chunk_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
