"""Filesystem helpers: the cache location and crash-safe writes."""
from __future__ import annotations

import os
import tempfile


def default_cache_dir() -> str:
    """``$FEATLAB_CACHE`` or ``./cache`` (the repository's git-ignored cache/)."""
    return os.environ.get("FEATLAB_CACHE", "cache")


def default_analyses_dir() -> str:
    """``$FEATLAB_ANALYSES`` or ``./analyses``."""
    return os.environ.get("FEATLAB_ANALYSES", "analyses")


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
