"""Sharded extraction: images/s of ``torchrun --nproc_per_node 1`` vs ``2``, one
torch thread per rank (OMP_NUM_THREADS=1), on the same data, measured side by side.
Target on a 2-core machine: 2 ranks >= 1.7x one rank.

Both runs use ``featlab extract`` on the embedded synthetic benchmark (1,600 JPEGs at 64 px,
COCO format), conditions ``clean`` and ``blur:sigma=2:region=object``, both backbones with
every layer captured, random-init weights (throughput does not depend on them). The
extraction time is rank 0's ``seconds`` (after start-up, up to the index written, so the
barrier waits for the slower rank); the wall time adds process start, imports and model
loading. The stores of both runs are compared: the same bytes in every block.

    python bench/bench_distributed.py [--images 1600] [--size 64] [--repeats 2]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import torch
import torchvision

CONDITIONS = "clean,blur:sigma=2:region=object"


def _weights(folder: str) -> dict:
    out = {}
    for name, k in (("synthetic-object", 16), ("synthetic-scene", 16)):
        torch.manual_seed(len(out))
        path = os.path.join(folder, f"{name}.pt")
        torch.save({"state_dict": torchvision.models.resnet18(num_classes=k).state_dict()}, path)
        out[name] = path
    return out


def _run(ranks: int, root: str, store: str, weights: dict, size: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", str(ranks), "-m", "featlab", "-q", "extract",
           "--dataset", "synthetic", "--root", root, "--store", store,
           "--conditions", CONDITIONS, "--device", "cpu", "--image-size", str(size),
           "--batch-size", "32", "--chunk-size", "32"]
    for name, path in weights.items():
        cmd += ["--weights", f"{name}={path}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", FEATLAB_NO_PROGRESS="1")
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    seconds = float(re.search(r" in ([0-9.]+) s$", out.stdout.splitlines()[0]).group(1))
    return seconds, wall


def _blocks(store: str) -> dict:
    out = {}
    with h5py.File(os.path.join(store, "store.h5"), "r") as index:
        index.visititems(lambda n, o: out.__setitem__(n, o[()].tobytes())
                         if isinstance(o, h5py.Dataset) and n.startswith("conditions/")
                         else None)
    return out


def main(images: int, size: int, repeats: int) -> None:
    from featlab.data.synthetic import generate_synthetic

    print(f"torch {torch.__version__}, cpu count {os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "data")
        generate_synthetic(root, seed=0, n_images=images, image_size=size)
        weights = _weights(tmp)
        times = {1: [], 2: []}
        for r in range(repeats):
            for ranks in (1, 2):
                store = os.path.join(tmp, f"store-{ranks}-{r}")
                times[ranks].append(_run(ranks, root, store, weights, size))
        n = images * len(CONDITIONS.split(","))
        rate = {k: n / statistics.median(t for t, _ in v) for k, v in times.items()}
        wall = {k: n / statistics.median(w for _, w in v) for k, v in times.items()}
        same = _blocks(os.path.join(tmp, "store-1-0")) == _blocks(os.path.join(tmp, "store-2-0"))
    for k in (1, 2):
        print(f"{k} rank(s): {rate[k]:.1f} images/s extracting, {wall[k]:.1f} images/s "
              f"wall (runs: {[round(t, 1) for t, _ in times[k]]} s)")
    print(f"2 ranks vs 1: {rate[2] / rate[1]:.2f}x extracting (target >= 1.7), "
          f"{wall[2] / wall[1]:.2f}x wall; stores identical: {same}; load average now "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1600)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    main(args.images, args.size, args.repeats)
