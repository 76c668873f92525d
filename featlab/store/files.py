"""Writing store files so that a full disk or a read-only store costs one line, not data.

Every HDF5 file of a store is built in memory (:func:`h5_image`), then written whole with
plain file I/O to a temporary name, fsynced and renamed (:func:`write_h5`). HDF5 itself never
writes to disk, so a failed write (``ENOSPC``, ``EDQUOT``, ``EROFS``, ``EACCES``) raises an
ordinary ``OSError`` here — h5py writing straight to a full disk crashes the interpreter —
which :func:`disk_errors` turns into a :class:`FeatlabError` after the temporary file is
gone. What was complete stays complete; rerunning the command continues.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager

import h5py

from ..errors import FeatlabError
from ..utils.paths import atomic_write_bytes, atomic_write_text
from .checksums import read_record, sidecar
from .digests import image_record, storage_plans

log = logging.getLogger(__name__)
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DENIED = {errno.EROFS, errno.EACCES, errno.EPERM}


def h5_image(fill, plans: bool = False, **options) -> tuple[memoryview, dict | None]:
    """Bytes of a new HDF5 file and, if ``plans``, its datasets' storage plans (what its
    checksum record hashes, taken from the open file: no second parse of the image).

    ``fill(handle)`` writes the contents into an open file; it may return the datasets it
    made (all of the file's), which spares looking them up again."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", **options) as handle:
        made, table = fill(handle), None
        if plans:
            handle.flush()
            table = storage_plans(handle, made)
    return buffer.getbuffer(), table


def _reason(err: OSError) -> str:
    return os.strerror(err.errno) if err.errno else str(err).splitlines()[0]


@contextmanager
def disk_errors(root: str, what: str):
    """Turn a full disk or a refused write inside the block into a one-line FeatlabError."""
    try:
        yield
    except OSError as err:
        if err.errno in FULL:
            raise FeatlabError(f"no space left writing {what} in store {root} ({_reason(err)});"
                               f" everything completed before is kept — free space and rerun "
                               f"the same command to continue") from None
        if err.errno in DENIED:
            raise FeatlabError(f"cannot write {what} in store {root} ({_reason(err)}); the "
                               f"store is read-only for this user — give write access or "
                               f"copy it elsewhere") from None
        raise


def write_h5(path: str, fill, *, root: str, what: str, record: bool = True, **options) -> dict:
    """Build an HDF5 file in memory, then write its checksum record and itself atomically.

    The record is written first, so every file in place has its record. Returns the record
    (``{}`` when ``record`` is false, e.g. for the index, which is rebuilt, not verified).
    """
    image, plans = h5_image(fill, plans=record, **options)
    entry = image_record(os.path.basename(path), image, plans) if record else {}
    with disk_errors(root, what):
        if record:
            old = read_record(path)[0] if os.path.exists(path) else None
            kept = dict(entry, previous={k: v for k, v in old.items() if k != "previous"}) \
                if old else entry
            atomic_write_text(sidecar(path), json.dumps(kept, indent=1, sort_keys=True))
        atomic_write_bytes(path, image)
    return entry


def check_writable(root: str) -> None:
    """Refuse at once (one line) when the store ``root`` — or where it would be made — is
    not writable, before any work is done."""
    root = os.path.abspath(root)
    if os.path.exists(root) and not os.path.isdir(root):
        return  # the caller reports "is a file"
    probe = root
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    folders = [probe] if probe != root or not os.path.isdir(root) else [root] + [
        os.path.join(root, sub) for sub in ("heads", "conditions")
        if os.path.isdir(os.path.join(root, sub))]
    with disk_errors(root, "files"):
        for folder in folders:
            fd, path = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
            os.close(fd)
            os.unlink(path)
        lock = os.path.join(root, ".lock")
        if os.path.exists(lock):
            with open(lock, "a"):
                pass


def set_aside(root: str, path: str, problem: str, *, copy: bool = False) -> str:
    """Move a damaged file (and its checksum record) to ``root/damaged/`` — or, with
    ``copy``, copy them there and leave them for an atomic rewrite; returns the new path."""
    rel = os.path.relpath(path, root)
    target = os.path.join(root, "damaged", rel)
    n = 0
    while os.path.exists(target):
        n += 1
        target = os.path.join(root, "damaged", f"{rel}.{n}")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    move = shutil.copyfile if copy else os.replace
    move(path, target)
    if os.path.exists(sidecar(path)):
        move(sidecar(path), sidecar(target))
    log.warning("%s is damaged (%s); %s to %s, it will be %s", rel, problem,
                "copied" if copy else "moved", os.path.relpath(target, root),
                "rewritten" if copy else "recomputed")
    return target
