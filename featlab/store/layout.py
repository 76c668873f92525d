"""Where things live inside a store directory, and the writer lock.

::

    STORE/
      manifest.json                    schema, featlab version, dataset spec, backbones, chunking
      samples.h5                       the sample table (written once)
      conditions/<slug>/condition.json a condition's key and parameters
      conditions/<slug>/part-<a>-<b>.h5 features of rows [a, b) — written whole, then renamed
      heads/<name>.h5                  fitted linear heads
      store.h5                         the index: sample table + every block as an HDF5 virtual
                                       dataset over the parts + links to heads; plain h5py reads it
      .lock                            held (flock) by the one process writing

Every file is written to a temporary name and renamed into place, so a run killed at any
moment (SIGKILL included) leaves only complete files; the index is rebuilt from the parts.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time

from ..errors import FeatlabError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CONDITION_RECORD = "condition.json"
SAMPLES = "samples.h5"
INDEX = "store.h5"
LOCK = ".lock"
PART_RE = re.compile(r"^part-(\d{9})-(\d{9})\.h5$")


def condition_slug(key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)[:80]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def condition_dir(root: str, key: str) -> str:
    return os.path.join(root, "conditions", condition_slug(key))


def part_name(start: int, stop: int) -> str:
    return f"part-{start:09d}-{stop:09d}.h5"


def list_parts(folder: str) -> list[tuple[int, int, str]]:
    """Complete parts of a condition folder as (start, stop, path), sorted."""
    if not os.path.isdir(folder):
        return []
    out = []
    for entry in os.scandir(folder):
        match = PART_RE.match(entry.name)
        if match:
            out.append((int(match.group(1)), int(match.group(2)), entry.path))
    return sorted(out)


def is_complete(parts: list, n_chunks: int) -> bool:
    """Whether the parts listed by :func:`list_parts` cover every chunk of a condition."""
    return len(parts) == n_chunks


def temporaries(root: str) -> list[str]:
    """Paths of the unfinished files (``.tmp-*``) under ``root``."""
    return [os.path.join(folder, name) for folder, _, files in os.walk(root)
            for name in files if name.startswith(".tmp-")]


def remove_temporaries(root: str) -> int:
    """Delete leftovers of writes that were killed before their rename; the caller holds
    the writer lock, so no live writer owns them (write probes, made and removed at once
    without the lock, are left alone for a minute)."""
    removed = 0
    for path in temporaries(root):
        try:
            if os.path.basename(path).startswith(".tmp-probe-") and \
                    time.time() - os.path.getmtime(path) < 60:
                continue
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def lock_holder(root: str):
    """The pid (text) of the live process holding the writer lock of store ``root``, or
    None. Probes with a shared lock for an instant; never writes the lock file."""
    try:
        handle = open(os.path.join(root, LOCK))
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class WriterLock:
    """An exclusive, non-blocking ``flock`` on ``STORE/.lock`` (released by the OS on death)."""

    def __init__(self, root: str):
        self.path = os.path.join(root, LOCK)
        self.handle = None

    def acquire(self) -> "WriterLock":
        root = os.path.dirname(self.path)
        try:
            os.makedirs(root, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as err:
            raise FeatlabError(f"cannot write to store {root} ({err.strerror}); the store is "
                               f"read-only for this user — give write access or copy it "
                               f"elsewhere") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise FeatlabError(
                f"store {os.path.dirname(self.path)} is being written by another featlab "
                f"process (pid {owner}); wait for it to finish or use another --store") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
