"""Sharded extraction under torchrun (gloo, CPU): 2 processes on one machine, 2 "nodes" with
a c10d rendezvous on 127.0.0.1, a rank killed then the run continued with another number of
ranks, and a second job refused by the lock. Every store must equal the one-process store:
the same values in every block and the same bytes in every part file."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

import h5py
import pytest

import featlab
from featlab.extraction import ExtractionSpec, extract
from featlab.extraction.distributed import RankContext, assign_chunks
from featlab.store.layout import WriterLock

CONDITIONS = "clean,blur:sigma=2:region=object"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(featlab.__file__)))
N_CHUNKS = 2 * 8  # conditions x chunks of 6 rows over 48 images


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_weights):
    from featlab.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("dist")
    root = str(base / "data")
    generate_synthetic(root, seed=3, n_images=48, image_size=32)
    cache = str(base / "cache")
    reference = str(base / "reference")
    extract(ExtractionSpec(store=reference, root=root, dataset="synthetic",
                           conditions=CONDITIONS, device="cpu", batch_size=6, chunk_size=6,
                           image_size=32, weights=tiny_weights,
                           dataset_options=dict(cache_dir=cache)))
    return dict(root=root, cache=cache, reference=reference, weights=tiny_weights, base=base)


def _args(setup, store):
    w = setup["weights"]
    return ["-m", "featlab", "extract", "--dataset", "synthetic", "--root", setup["root"],
            "--store", str(store), "--conditions", CONDITIONS, "--device", "cpu",
            "--batch-size", "6", "--chunk-size", "6", "--image-size", "32",
            "--cache-dir", setup["cache"],
            "--weights", f"synthetic-object={w['synthetic-object']}",
            "--weights", f"synthetic-scene={w['synthetic-scene']}"]


def _env():
    return dict(os.environ, PYTHONPATH=REPO, FEATLAB_NO_PROGRESS="1", OMP_NUM_THREADS="1")


def _torchrun(launcher, setup, store, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, *_args(setup, store)]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def _finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _blocks(path):
    out = {}
    with h5py.File(os.path.join(path, "store.h5"), "r") as index:
        index.visititems(lambda n, o: out.__setitem__(n, o[()].tobytes())
                         if isinstance(o, h5py.Dataset) and n.startswith("conditions/")
                         else None)
    return out


def _parts(path):
    """Complete part files (and condition.json files) -> sha256 of their bytes."""
    out = {}
    for folder, _, files in os.walk(os.path.join(path, "conditions")):
        for name in files:
            if name.startswith(".tmp-"):
                continue
            full = os.path.join(folder, name)
            with open(full, "rb") as handle:
                out[os.path.relpath(full, path)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _is_part(path) -> bool:
    """A part file proper (not its checksum sidecar ``part-...h5.json``)."""
    name = os.path.basename(path)
    return name.startswith("part-") and name.endswith(".h5")


def _n_parts(path) -> int:
    return sum(_is_part(p) for p in _parts(path))


def assert_same_store(reference, other):
    ref, got = _blocks(reference), _blocks(other)
    assert ref.keys() == got.keys() and len(ref) > 40
    assert [k for k in ref if ref[k] != got[k]] == []
    parts = _parts(other)
    assert sum(_is_part(p) for p in parts) == N_CHUNKS
    assert parts == _parts(reference)


def test_assignment_is_disjoint_complete_deterministic_and_balanced():
    costs = {(a, a + 10): 1 + (a // 10) % 3 for a in range(0, 370, 10)}
    shares = [assign_chunks(costs, 4, r) for r in range(4)]
    assert sorted(c for s in shares for c in s) == sorted(costs)
    assert shares == [assign_chunks(dict(reversed(costs.items())), 4, r) for r in range(4)]
    loads = [sum(costs[c] for c in s) for s in shares]
    assert max(loads) - min(loads) <= max(costs.values())
    equal = {(a, a + 1): 1 for a in range(7)}
    assert [assign_chunks(equal, 3, r) for r in range(3)] == [
        [(0, 1), (3, 4), (6, 7)], [(1, 2), (4, 5)], [(2, 3), (5, 6)]]
    assert assign_chunks(equal, 1, 0) == sorted(equal)


def test_one_process_context_is_a_no_op():
    ctx = RankContext()
    assert not ctx.distributed and ctx.broadcast(5) == 5 and ctx.all_gather(3) == [3]
    assert ctx.decide(lambda: ("local", "shared")) == ("local", "shared")
    assert ctx.first(lambda: 7) == 7
    ctx.agree(None)


def test_two_processes_on_one_machine_equal_one_process(setup):
    store = setup["base"] / "two-procs"
    _, err = _finish(_torchrun(["--standalone", "--nproc_per_node", "2"], setup, store))
    assert "rank 0 of 2: 4 of 8 chunks" in err and "rank 1 of 2: 4 of 8 chunks" in err
    assert_same_store(setup["reference"], str(store))


def test_two_nodes_with_c10d_rendezvous_equal_one_process(setup):
    store = setup["base"] / "two-nodes"
    launcher = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend", "c10d",
                "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "featlab-test"]
    nodes = [_torchrun(launcher, setup, store) for _ in range(2)]
    errs = [_finish(node)[1] for node in nodes]
    assert sum("rank 0 of 2" in e for e in errs) == 1
    assert sum("rank 1 of 2" in e for e in errs) == 1
    assert_same_store(setup["reference"], str(store))


def _workers(pid: int) -> list[int]:
    """Child processes of the torchrun agent ``pid`` (its worker ranks)."""
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(p) for p in handle.read().split()]


def test_rank_killed_then_continued_with_three_ranks(setup):
    store = setup["base"] / "killed"
    proc = _torchrun(["--standalone", "--nproc_per_node", "2"], setup, store)
    deadline, n_parts = time.time() + 180, 0
    while time.time() < deadline and proc.poll() is None:
        n_parts = _n_parts(store) if store.exists() else 0
        if n_parts >= 3:
            victim = _workers(proc.pid)[-1]
            os.kill(victim, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate(timeout=120)
    assert proc.returncode != 0, "the run finished before a rank could be killed"
    done = _n_parts(store)
    assert 3 <= done < N_CHUNKS
    resumed = _torchrun(["--standalone", "--nproc_per_node", "3"], setup, store)
    out, err = _finish(resumed)
    computed = sum(int(line.split()[-1]) for line in out.splitlines()[2:])
    assert computed == N_CHUNKS - done  # nothing complete was recomputed
    assert "rank 2 of 3" in err
    assert_same_store(setup["reference"], str(store))


def test_a_second_job_is_refused_on_every_rank(setup):
    store = setup["base"] / "locked"
    extract(ExtractionSpec(store=str(store), root=setup["root"], dataset="synthetic",
                           conditions="clean", device="cpu", batch_size=6, chunk_size=6,
                           image_size=32, weights=setup["weights"], limit=6,
                           dataset_options=dict(cache_dir=setup["cache"])))
    before = _parts(store)
    with WriterLock(str(store)):
        proc = _torchrun(["--standalone", "--nproc_per_node", "2"], setup, store)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode != 0
    refusals = [line for line in err.splitlines() if line.startswith("featlab: error:")]
    assert len(refusals) == 2, err[-2000:]  # one line per rank, the same line
    assert "being written by another featlab process" in refusals[0]
    assert refusals[0] == refusals[1] and _parts(store) == before
