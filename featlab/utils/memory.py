"""The C allocator's settings for the allocation pattern of forward passes on the CPU.

Every layer of a forward pass allocates its output afresh (at 64 px and batch 64 a BN output
of ResNet18's first stage is 16 MB). glibc serves allocations above its mmap threshold (128 KB
at start, raised adaptively to at most 32 MB) with ``mmap`` and returns them with ``munmap``
when freed, so the next batch faults every page in again: on the 2-core machine of bench/,
the two ResNet18s took 522,240 minor page faults per 2,048 images at 64 px. With freed
memory kept in the process (mmap threshold 1 GB, trim threshold 2 GB - 1): 1,024 faults, the
forward passes 1.12x faster at 64 px and 1.53x at 224 px, for 100-160 MiB more peak memory
(bench/bench_memory_reuse.py). Features do not change (bytes compared in the tests).

:func:`keep_freed_memory` is called by the ``featlab`` command line for its own process;
``FEATLAB_KEEP_FREED_MEMORY=0`` turns it off. A Python session calls it itself if it wants it.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


@functools.cache
def keep_freed_memory(mmap_threshold: int = 1 << 30) -> bool:
    """Keep freed blocks up to ``mmap_threshold`` bytes in the process (glibc only).

    Returns whether the setting is in force; False off Linux/glibc, when the C library refuses
    it, or when ``FEATLAB_KEEP_FREED_MEMORY=0``. Calling it again with the same threshold
    changes nothing.
    """
    ok = False
    if os.environ.get("FEATLAB_KEEP_FREED_MEMORY", "1") != "0" and sys.platform == "linux":
        try:
            # the process's own symbols, the C library's among them (find_library would run
            # ldconfig in a subprocess at every start of the command line)
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            ok = (mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
                  and mallopt(M_TRIM_THRESHOLD, min(2 * mmap_threshold, 2 ** 31 - 1)) == 1)
    return ok
