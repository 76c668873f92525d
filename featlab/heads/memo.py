"""An in-process memo of linear-head solutions (see :mod:`featlab.heads.linear`).

The head solver is deterministic, so a fit is a pure function of what it sees; :data:`FIT_MEMO`
maps a blake2b digest of those inputs to the solution and returns a copy on a repeated fit.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np


class FitMemo:
    """The last ``size`` head solutions, keyed by a digest of the solver's inputs.

    ``hits`` and ``misses`` count lookups (tests and logs); :meth:`clear` empties it and
    ``enabled = False`` turns it off. Stored values are copied in and out, so a caller that
    modifies a fitted head's arrays cannot change another's.
    """

    def __init__(self, size: int = 64):
        self.size, self.enabled = size, True
        self.entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def key(*parts) -> str:
        h = hashlib.blake2b(digest_size=20)
        for part in parts:
            if isinstance(part, np.ndarray):
                part = np.ascontiguousarray(part)
                h.update(f"{part.dtype.str}{part.shape}".encode())
                h.update(memoryview(part).cast("B"))
            else:
                h.update(repr(part).encode())
            h.update(b"|")
        return h.hexdigest()

    def get(self, key):
        if not self.enabled or key not in self.entries:
            self.misses += self.enabled
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return {k: np.copy(v) if isinstance(v, np.ndarray) else v
                for k, v in self.entries[key].items()}

    def put(self, key, value: dict) -> None:
        if not self.enabled:
            return
        self.entries[key] = {k: np.copy(v) if isinstance(v, np.ndarray) else v
                             for k, v in value.items()}
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
        self.hits = self.misses = 0


FIT_MEMO = FitMemo()
