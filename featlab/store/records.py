"""Condition records: ``conditions/<slug>/condition.json``, a condition's key and what its
run recorded beside it (parameters, label, the heads an attack or probe ran against, the
classes it ran on).

The store writes them (:meth:`featlab.store.writer.StoreWriter.add_condition`) and reads them
here; code outside :mod:`featlab.store` calls these functions and never opens the file.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from ..utils.paths import atomic_write_bytes
from .layout import CONDITION_RECORD, condition_dir, list_parts


def read_record(folder: str) -> dict:
    """The record in the condition folder ``folder``.

    Raises
    ------
    OSError
        When the file is missing or unreadable.
    ValueError
        When it is not JSON, or not an object holding the condition's ``key``.
    """
    with open(os.path.join(folder, CONDITION_RECORD), encoding="utf-8") as handle:
        info = json.load(handle)
    if not isinstance(info, dict) or not isinstance(info.get("key"), str):
        raise ValueError(f"{CONDITION_RECORD} is not an object with the condition's key")
    return info


def stored_record(root: str, key: str) -> Optional[dict]:
    """The record of condition ``key`` in the store ``root``, or None when there is none or
    it cannot be read (a damaged record is rewritten by the next extraction)."""
    try:
        return read_record(condition_dir(root, key))
    except (OSError, ValueError):
        return None


def record_bytes(root: str, key: str) -> Optional[bytes]:
    """The bytes of condition ``key``'s record as they are now (None: no record), to give
    to :func:`restore_records`."""
    try:
        with open(os.path.join(condition_dir(root, key), CONDITION_RECORD), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def restore_records(root: str, before: dict, *, remove_empty_store: bool = False) -> None:
    """Put back the records of the conditions that got no part since ``before`` was taken.

    Parameters
    ----------
    root : str
        The store directory (its writer lock is held by the caller).
    before : dict
        Condition key -> :func:`record_bytes` before the run: the bytes are written back,
        and a condition that had no record loses its folder. Conditions with parts stay.
    remove_empty_store : bool
        Also remove ``root`` when no condition holds a part (a store the run created).
    """
    for key, old in before.items():
        folder = condition_dir(root, key)
        if list_parts(folder):
            continue
        if old is None:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            atomic_write_bytes(os.path.join(folder, CONDITION_RECORD), old)
    base = os.path.join(root, "conditions")
    folders = os.listdir(base) if os.path.isdir(base) else []
    if remove_empty_store and not any(list_parts(os.path.join(base, d)) for d in folders):
        shutil.rmtree(root, ignore_errors=True)
