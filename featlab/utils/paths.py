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


def current_umask() -> int:
    """The process umask (read from /proc where possible, so it is never changed)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The file gets the mode a plain ``open(path, "w")`` would give (0666 minus the umask),
    not mkstemp's private 0600, so a group can read a shared store.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
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
