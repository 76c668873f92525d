"""numba's compiled Mantel kernels are cached under featlab's cache directory, never
inside the installed package."""
import os
import subprocess
import sys

import pytest

import featlab

pytest.importorskip("numba")

RUN = r"""
import numpy as np
from featlab.analyses.local._mantel_kernels import perm_stats_numpy, perm_stats_shared, \
    perm_stats_per_sample
rng = np.random.default_rng(0)
n = 8
m = n * (n - 1) // 2
xn, yn = rng.standard_normal((2, m)), rng.standard_normal((2, m))
perms = np.array([rng.permutation(n) for _ in range(5)])
shared = perm_stats_shared(xn, yn, perms)
each = perm_stats_per_sample(xn, yn, np.stack([perms, perms]))
assert np.array_equal(shared[1], perm_stats_numpy(xn[1], yn[1], perms))
assert np.array_equal(each, shared)
print("ok")
"""


def _files(root):
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def test_kernels_cache_outside_the_package(tmp_path):
    package = os.path.dirname(featlab.__file__)
    before = _files(package)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(FEATLAB_CACHE=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.path.dirname(package))
    for _ in range(2):  # the second run loads what the first compiled
        done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True,
                              timeout=600, cwd=str(tmp_path))
        assert done.returncode == 0 and done.stdout.decode().strip() == "ok", done.stderr
    assert _files(package) == before
    cached = _files(str(tmp_path / "cache" / "numba"))
    assert any(f.endswith(".nbi") for f in cached) and any(f.endswith(".nbc") for f in cached)
    assert any("_shared_kernel" in f for f in cached) and any("_per_sample" in f for f in cached)
