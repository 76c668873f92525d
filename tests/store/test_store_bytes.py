"""Byte-identical after a crash: a run SIGKILLed at any point and resumed ends with the
same file bytes (parts, checksum records, sample table) as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys

import pytest

from featlab.extraction import ExtractionSpec, extract
from featlab.store.integrity import check_store

CONDITIONS = "clean,blur:sigma=2:region=all"

# One process imports featlab (and torch) once, runs nothing, then forks one child per
# kill point (safe: no torch thread pool exists yet); each child extracts into its own store
# and SIGKILLs itself at the chosen point of its n-th part write (parts are counted by their
# checksum record, which is written first). Prints each child's wait status.
KILLER = r"""
import json, os, signal, sys
from featlab.extraction import ExtractionSpec, extract
from featlab.store import files

spec, jobs = eval(sys.argv[1]), eval(sys.argv[2])
real_bytes, real_text = files.atomic_write_bytes, files.atomic_write_text

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def half_written(path, data):
    tmp = os.path.join(os.path.dirname(path), ".tmp-killed" + os.path.basename(path))
    with open(tmp, "wb") as handle:
        handle.write(bytes(data)[: len(data) // 2])
    die()

def child(point, n, store):
    seen = [0]

    def text(path, value):
        real_text(path, value)
        if os.path.basename(path).startswith("part-"):
            seen[0] += 1
            if point == "record-written" and seen[0] == n:
                die()

    def data(path, value):
        name = os.path.basename(path)
        if name.startswith("part-") and point == "mid-write" and seen[0] == n:
            half_written(path, value)
        if name == "store.h5" and point == "mid-index":
            half_written(path, value)
        real_bytes(path, value)
        if name.startswith("part-") and point == "after-part" and seen[0] == n:
            die()

    files.atomic_write_bytes, files.atomic_write_text = data, text
    extract(ExtractionSpec(store=store, **spec))

status = {}
for point, n, store in jobs:
    pid = os.fork()
    if pid == 0:
        try:
            child(point, n, store)
        finally:
            os._exit(0)
    status[store] = os.waitpid(pid, 0)[1]
print(json.dumps(status))
"""
POINTS = [("after-part", 1), ("record-written", 2), ("mid-write", 3), ("mid-index", 0)]


@pytest.fixture(scope="module")
def setup(tiny_weights, tmp_path_factory):
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("bytes")
    generate_synthetic(str(base / "data"), seed=9, n_images=16, image_size=32)
    spec = dict(root=str(base / "data"), dataset="synthetic", conditions=CONDITIONS,
                device="cpu", batch_size=4, chunk_size=4, image_size=32, limit=8,
                weights=tiny_weights)
    extract(ExtractionSpec(store=str(base / "reference"), **spec))
    jobs = [(point, n, str(base / f"killed-{point}")) for point, n in POINTS]
    proc = subprocess.run([sys.executable, "-c", KILLER, repr(spec), repr(jobs)],
                          capture_output=True, timeout=900,
                          env=dict(os.environ, FEATLAB_NO_PROGRESS="1"))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    status = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return spec, str(base / "reference"), {store: os.WIFSIGNALED(s) and os.WTERMSIG(s)
                                           for store, s in status.items()}, base


def _store_bytes(root):
    """Bytes of every file that must not depend on how the run went (the manifest and the
    index record the creation time and are excluded)."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if rel.startswith(("conditions", "samples.h5")):
                with open(os.path.join(folder, name), "rb") as handle:
                    out[rel] = handle.read()
    return out


@pytest.mark.parametrize("point, n", POINTS)
def test_killed_and_resumed_run_has_the_same_file_bytes(setup, point, n):
    spec, reference, killed, base = setup
    store = str(base / f"killed-{point}")
    assert killed[store] == signal.SIGKILL, f"the run was not killed at {point}"
    parts = [f for _, _, fs in os.walk(store) for f in fs if f.startswith("part-")
             and f.endswith(".h5")]
    assert len(parts) == (n if point == "after-part" else n - 1 if n else 4)
    summary = extract(ExtractionSpec(store=store, **spec))
    assert sum(v["computed"] for v in summary["conditions"].values()) == 4 - len(parts)
    expected, got = _store_bytes(reference), _store_bytes(store)
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []
    assert check_store(store, full=True)["healthy"]
    assert not [f for _, _, fs in os.walk(store) for f in fs if f.startswith(".tmp-")]
