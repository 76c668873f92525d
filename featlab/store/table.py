"""The sample table readers use: ``samples.h5``, checked before it is trusted.

``samples.h5`` has a checksum record like every store file (:mod:`.checksums`). A reader
checks the whole file's sha256 against it — once per process per file state (inode, size
and mtime of the file and of its record): 0.04 s for a 120,000-row table, beside the
0.44 s of decoding it — and a table without a record by its rows' hash against the
manifest's ``samples_sha256`` (``featlab store verify`` checks both). A table that fails is
never used and never copied into the index: when the copy in the index still has the
manifest's hash, the reader rewrites ``samples.h5`` from it (the damaged file is copied to
``STORE/damaged/`` first), or reads that copy when it cannot write now; otherwise it refuses in
one line.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import h5py

from ..errors import FeatlabError
from . import checksums
from .files import set_aside, write_h5
from .layout import INDEX, SAMPLES, WriterLock
from .samples import read_samples, table_hash, write_samples

log = logging.getLogger(__name__)
REWRITE = "rerun the extract command to rewrite it"
_TRUSTED: set = set()  # file states of samples.h5 checked in this process


def _state(path: str, manifest: dict) -> tuple:
    out = [path, manifest["samples_sha256"]]
    for name in (path, checksums.sidecar(path)):
        try:
            st = os.stat(name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def records_expected(root: str) -> bool:
    """Whether the files of store ``root`` carry checksum records: its sample table has one
    (a store made before featlab recorded checksums has none)."""
    return os.path.isfile(checksums.sidecar(os.path.join(root, SAMPLES)))


def rows_problem(table, manifest: dict) -> Optional[str]:
    """Why ``table`` is not the table the store was made for (None: it is)."""
    if table_hash(table) != manifest["samples_sha256"]:
        return "its rows differ from the table the store was made for"
    return None


def _read(path: str):
    """(table, None) or (None, why it cannot be read)."""
    try:
        with h5py.File(path, "r") as handle:
            return read_samples(handle), None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        return None, f"it cannot be read ({checksums.first_line(err)})"


def samples_problem(root: str, manifest: dict, *, full: bool = False) -> Optional[str]:
    """Why ``root/samples.h5`` cannot be trusted (None: it can).

    With a checksum record: the file's sha256 against it (and, when ``full``, its rows
    against the manifest too); without one: its rows against the manifest.
    """
    path = os.path.join(root, SAMPLES)
    if not os.path.isfile(path):
        return "missing (the sample table)"
    key = _state(path, manifest) + (full,)
    if key in _TRUSTED:
        return None
    record, problem = checksums.read_record(path)
    if problem is None and record is not None:
        problem = checksums.check_file(path)
    if problem is None and (record is None or full):
        table, problem = _read(path)
        problem = problem or rows_problem(table, manifest)
    if problem is None:
        _TRUSTED.update({key, key[:-1] + (False,)})
    return problem


def index_copy(root: str, manifest: dict):
    """The sample table held in the index ``store.h5`` when it has the manifest's hash, or
    None."""
    try:
        with h5py.File(os.path.join(root, INDEX), "r") as index:
            table = read_samples(index["samples"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    return None if rows_problem(table, manifest) else table


def _rewrite(root: str, table, problem: str, locked: bool) -> None:
    path = os.path.join(root, SAMPLES)
    try:
        lock = None if locked else WriterLock(root).acquire()
        try:
            set_aside(root, path, problem, copy=True)
            write_h5(path, lambda handle: write_samples(handle, table), root=root, what=SAMPLES)
        finally:
            if lock is not None:
                lock.release()
    except (FeatlabError, OSError) as err:
        log.warning("%s of store %s is damaged (%s); reading the copy in %s, which matches the "
                    "manifest (it cannot be rewritten now: %s); %s", SAMPLES, root, problem,
                    INDEX, checksums.first_line(err), REWRITE)
        return
    log.warning("rewrote %s of store %s from the copy in %s, which matches the manifest",
                SAMPLES, root, INDEX)


def trusted_samples(root: str, manifest: dict, *, locked: bool = False):
    """The store's sample table, checked (see the module docstring); ``locked``: the caller
    holds the writer lock. Raises a one-line FeatlabError when no intact copy is left."""
    path = os.path.join(root, SAMPLES)
    if not os.path.isfile(path):
        raise FeatlabError(f"store {root} has lost {SAMPLES} (its sample table); {REWRITE}")
    problem = samples_problem(root, manifest)
    if problem is None:
        table, problem = _read(path)
        if problem is None:
            return table
    copy = index_copy(root, manifest)
    if copy is None:
        raise FeatlabError(f"{SAMPLES} of store {root} is damaged: {problem}, and the index "
                           f"holds no intact copy; {REWRITE}")
    _rewrite(root, copy, problem, locked)
    return copy
