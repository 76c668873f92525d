"""Overlapping the stages of extraction with threads: parts are written (compressed,
fsynced, renamed) while the next chunk is computed, and the next chunk is decoded while the
current one runs through the backbones.

Crash safety is the writer's and does not change: every part is still written whole to a
temporary name and renamed, so a run killed while parts wait in the queue loses only those
parts, which the next run computes again. A write that fails (e.g. a full disk) is raised
in the extracting thread at its next :meth:`BackgroundWriter.submit` or at ``close``.
HDF5 compression and PIL decoding release the GIL, so the threads run in parallel with
the forward passes when a core is free.
"""
from __future__ import annotations

import queue
import threading

_DONE = object()


class BackgroundWriter:
    """``writer.write_part`` in a thread, at most ``max_pending`` parts queued.

    Use as a context manager; leaving the block normally waits for every queued part,
    leaving it with an exception discards the queued parts (not yet on disk) and stops.
    """

    def __init__(self, writer, max_pending: int = 2):
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="featlab-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if self.error is not None or self.stopping.is_set():
                continue
            key, start, stop, arrays, attrs = item
            try:
                self.writer.write_part(key, start, stop, arrays, attrs=attrs)
            except BaseException as err:  # handed to the extracting thread
                self.error = err

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            self.stopping.set()
            raise error

    def submit(self, key: str, start: int, stop: int, arrays: dict, attrs=None) -> None:
        """Queue one part (blocks while ``max_pending`` parts are waiting)."""
        self._raise()
        while True:
            try:
                self.queue.put((key, start, stop, arrays, attrs), timeout=0.5)
                return
            except queue.Full:
                self._raise()
                if not self.thread.is_alive():
                    raise RuntimeError("the featlab writer thread stopped") from None

    def close(self) -> None:
        """Wait until every queued part is written; raise a failed write's error."""
        if self.thread.is_alive():
            self.queue.put(_DONE)
            self.thread.join()
        self._raise()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return
        self.stopping.set()
        while True:  # drop what is queued, then let the thread finish its current part
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(_DONE)
        self.thread.join()


def prefetch(iterable, depth: int = 1):
    """Iterate ``iterable`` in a background thread, up to ``depth`` items ahead.

    Exceptions of the iterable are raised where the consumer would have received the
    item; a consumer that stops early stops the thread at its next item.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                if not _put(items, ("item", item), stop):
                    return
        except BaseException as err:  # re-raised in the consumer
            _put(items, ("error", err), stop)
            return
        _put(items, ("end", None), stop)

    thread = threading.Thread(target=produce, name="featlab-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def _put(items: queue.Queue, entry, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
