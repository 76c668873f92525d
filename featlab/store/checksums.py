"""Checksums of store files, recorded when each file is written and checked when it is read.

Every part ``conditions/<slug>/part-<a>-<b>.h5``, every head ``heads/<name>.h5`` and the
sample table ``samples.h5`` has a sidecar ``<file>.json`` written just before the file
itself is renamed into place::

    {"format": 1, "file": "part-000000000-000000256.h5", "size": 1234567,
     "sha256": "<sha256 of the file's bytes>",
     "datasets": {"<name>": {"shape": [256, 512], "dtype": "<f4", "sha256": "..."}, ...}}

A dataset's ``sha256`` covers its storage description (chunks, filters) and its raw stored
bytes (the compressed chunks as they lie in the file), so it can be checked without
decompressing and without reading the other datasets of the file: readers check exactly
the datasets they read, once per process (:func:`check_dataset`). ``featlab store verify``
and ``featlab extract`` check the whole file's ``sha256`` (:func:`check_file`).

Every file featlab writes gets its record before it is renamed into place, so in a store whose
sample table has a record, a part or head without one has lost it: it is *unverified* (its
bytes cannot be proven), and readers refuse it like a damaged one. Stores made before
checksums existed have no records; readers check their files for structure only and say
once per file that its bytes cannot be checked. ``featlab store verify`` names every
unverified file, and rerunning the extract command recomputes unverified parts.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Optional

import h5py

from ..errors import DamagedData
from .digests import FORMAT, dataset_digest, image_record, storage_plans  # noqa: F401

log = logging.getLogger(__name__)
SUFFIX = ".json"
CANNOT_CHECK = "so its bytes cannot be checked"
_VERIFIED: set = set()  # (path, dataset, inode, size, mtime_ns) checked in this process
_WARNED: set = set()  # files of old stores without records, named once per process


def unrecorded(path: str) -> str:
    """The problem of a file without its checksum record."""
    return f"its checksum record {os.path.basename(sidecar(path))} is missing, {CANNOT_CHECK}"


def verdict(problem: str) -> str:
    """``unverified`` (no record: its bytes cannot be proven) or ``damaged``."""
    return "unverified" if problem.endswith(CANNOT_CHECK) else "damaged"


def _no_record(path: str, required: bool) -> Optional[str]:
    """The problem of ``path`` having no record: one when records are ``required``, else
    (a store older than records) None, with a warning once per process."""
    if required:
        return unrecorded(path)
    if path not in _WARNED:
        _WARNED.add(path)
        log.warning("%s has no checksum record (written before featlab recorded checksums), %s;"
                    " rerun the command that wrote it to recompute it", path, CANNOT_CHECK)
    return None


def sidecar(path: str) -> str:
    """Path of the checksum record of ``path``."""
    return path + SUFFIX


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


def read_record(path: str) -> tuple[Optional[dict], Optional[str]]:
    """(record, None), (None, None) when there is no sidecar, or (None, problem)."""
    try:
        with open(sidecar(path)) as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"its checksum record {os.path.basename(sidecar(path))} is unreadable " \
                     f"({first_line(err)})"
    keys = ("size", "sha256", "datasets")
    if not isinstance(record, dict) or any(k not in record for k in keys):
        return None, f"its checksum record {os.path.basename(sidecar(path))} is malformed"
    return record, None


def _matching(path: str, record: dict) -> tuple[list, Optional[str]]:
    """Record entries of the file's size: the current one and/or ``previous`` (the file this
    one replaced, kept so that a write stopped between the record and the file is no false
    alarm); or a problem."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return [], "the file is missing"
    previous = record.get("previous")
    entries = [e for e in [record] + ([previous] if isinstance(previous, dict) else [])
               if e.get("size") == size]
    if not entries:
        return [], f"the file is {size} bytes, {record['size']} when it was written (truncated?)"
    return entries, None


def size_problem(path: str, record: dict) -> Optional[str]:
    return _matching(path, record)[1]


def file_sha256(path: str, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str) -> Optional[str]:
    """Why the whole file ``path`` differs from its record (None: it matches, or no record)."""
    record, problem = read_record(path)
    if problem or record is None:
        return problem
    entries, problem = _matching(path, record)
    if problem:
        return problem
    if file_sha256(path) not in {e.get("sha256") for e in entries}:
        return "its bytes do not match the checksum recorded when it was written"
    return None


def _dataset_problem(path: str, name: str, record: Optional[dict],
                     absent_ok: bool) -> Optional[str]:
    if record is not None and name not in record["datasets"]:
        return None if absent_ok else f"it was written without {name!r}"
    with open(path, "rb") as raw, h5py.File(path, "r") as handle:
        if name not in handle or not isinstance(handle[name], h5py.Dataset):
            return None if absent_ok and record is None else f"it has no dataset {name!r}"
        if record is None:
            return None
        want = record["datasets"][name]
        dset = handle[name]
        if list(dset.shape) != want["shape"] or dset.dtype.str != want["dtype"]:
            return (f"{name} has shape {list(dset.shape)} {dset.dtype.str}, "
                    f"{want['shape']} {want['dtype']} when it was written")
        if dataset_digest(dset, lambda o, n: os.pread(raw.fileno(), n, o)) != want["sha256"]:
            return f"the stored bytes of {name} do not match the checksum recorded when written"
    return None


def check_dataset(path: str, name: str, absent_ok: bool = False,
                  required: bool = True) -> Optional[str]:
    """Why dataset ``name`` of ``path`` cannot be trusted (None: it can). Once per process.

    ``absent_ok``: a part written without ``name`` is fine (probe parts without probed rows).
    ``required``: a file without a checksum record is unverified (False: an old store's).
    """
    try:
        st = os.stat(path)
    except OSError:
        return "the file is missing"
    key = (path, name, st.st_ino, st.st_size, st.st_mtime_ns, os.path.exists(sidecar(path)))
    if key in _VERIFIED:
        return None
    record, problem = read_record(path)
    if record is None and problem is None:
        problem = _no_record(path, required)
    if record is not None:
        entries, problem = _matching(path, record)
        record = entries[0] if entries else None
    if problem is None:
        try:
            problem = _dataset_problem(path, name, record, absent_ok)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            problem = f"it cannot be read as HDF5 ({first_line(err)})"
    if problem is None:
        _VERIFIED.add(key)
    return problem


def head_problem(path: str, required: bool = True) -> Optional[str]:
    """Why the head file ``path`` cannot be used (None: it can). Heads are small: whole file.
    ``required`` as for :func:`check_dataset`."""
    problem = check_file(path)
    if problem is None:
        try:
            with h5py.File(path, "r") as handle:
                handle.attrs.keys()
        except (OSError, ValueError) as err:
            problem = f"it cannot be read as HDF5 ({first_line(err)})"
    if problem is None and not os.path.exists(sidecar(path)):
        problem = _no_record(path, required)
    return problem


def check_head(path: str, name: str, root: str, required: bool = True) -> None:
    """Raise a one-line :class:`FeatlabError` when the head file ``path`` is damaged or
    unverified."""
    problem = head_problem(path, required)
    if problem:
        raise DamagedData(f"head {name} in store {root} is {verdict(problem)}: {problem}; fit "
                          f"it again with 'featlab fit-head --store {root}' (same options)")
