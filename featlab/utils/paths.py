"""Filesystem helpers: the cache location, crash-safe writes, and output folders that
refuse at once (one line) when they cannot be written."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

from ..errors import CannotWrite


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


def os_reason(err: OSError) -> str:
    """What the system said, without the path (``Read-only file system``)."""
    return err.strerror or (os.strerror(err.errno) if err.errno else str(err).splitlines()[0])


def check_output_dir(path: str, what: str = "--out", advice: str = "") -> str:
    """Refuse (one line) the output folder ``path`` before any work when nothing could be
    written there: a file in its place or on its way, a read-only mount, no permission.

    The folder, or its nearest existing ancestor when it does not exist yet, is probed with
    a temporary file removed at once; nothing is created. ``advice`` ends the message
    (default: give ``what`` a writable folder). Returns ``path``.
    """
    advice = advice or f"give {what} a writable folder"
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CannotWrite(f"{what} {path}: {probe} is a file, not a folder; {advice}")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise CannotWrite(f"{what} {path}: cannot write in {probe} ({os_reason(err)}); "
                           f"{advice}") from None
    return path


def check_output_file(path: str, what: str) -> str:
    """:func:`check_output_dir` for the folder of the file ``path`` (``--json``), and
    refuse a folder in the file's place."""
    if os.path.isdir(path):
        raise CannotWrite(f"{what} {path} is a folder; give a file name, e.g. "
                           f"{os.path.join(path, 'results.json')}")
    check_output_dir(os.path.dirname(os.path.abspath(path)), what)
    return path


@contextmanager
def output_errors(path: str, what: str = "--out"):
    """Turn a failed write of the output ``path`` (full disk, read-only mount, a file in the
    way) into one line naming it; files written before are kept."""
    try:
        yield
    except OSError as err:
        raise CannotWrite(f"cannot write {path} ({os_reason(err)}); give {what} a writable "
                           f"folder with free space and rerun") from None
