"""Forward passes with and without featlab's allocator setting (featlab/utils/memory.py),
measured side by side: fresh processes in pairs, alternating which goes first.

Both ResNet18s (1000 and 365 classes, random weights, channels-last as a new store's
default), ``--batches`` batches of 64 random images; each process times the forward passes
of all batches twice after one warm-up batch and reports the faster pass and its minor page
faults. Prints the median over ``--pairs`` of the paired time ratio (without / with), its
range, and the faults and peak resident memory of each setting.

    python bench/bench_memory_reuse.py [--size 64] [--batches 32] [--pairs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from featlab.utils.memory import keep_freed_memory
applied = keep_freed_memory()
import torch
from featlab.backbones.resnet import resnet18
size, n = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
models = [resnet18(num_classes=k).eval().to(memory_format=torch.channels_last) for k in (1000, 365)]
gen = torch.Generator().manual_seed(0)
batches = [torch.rand(64, 3, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
           for _ in range(n)]
def run(items):
    start = time.perf_counter()
    with torch.inference_mode():
        for images in items:
            for model in models:
                model(images)
    return time.perf_counter() - start
run(batches[:1])
best = None
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = run(batches)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    best = min(best or (seconds, faults), (seconds, faults))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(applied=applied, seconds=best[0], faults=best[1], rss=rss)))
"""


def _child(size: int, batches: int, keep: bool) -> dict:
    env = dict(os.environ, FEATLAB_KEEP_FREED_MEMORY="1" if keep else "0")
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(batches)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    runs = {False: [], True: []}
    for i in range(args.pairs):
        for keep in ((False, True) if i % 2 == 0 else (True, False)):
            runs[keep].append(_child(args.size, args.batches, keep))
    if not all(r["applied"] for r in runs[True]):
        raise SystemExit("the allocator setting was not applied (not glibc?)")
    ratios = [off["seconds"] / on["seconds"] for off, on in zip(runs[False], runs[True])]
    for keep, label in ((False, "glibc defaults"), (True, "featlab's setting")):
        rows = runs[keep]
        print(f"{label:18s}: {statistics.median(r['seconds'] for r in rows):.2f} s for "
              f"{64 * args.batches} images at {args.size} px, "
              f"{statistics.median(r['faults'] for r in rows):,.0f} minor faults, peak RSS "
              f"{statistics.median(r['rss'] for r in rows):.0f} MiB")
    print(f"speed-up of the forward passes: median {statistics.median(ratios):.3f}x over "
          f"{args.pairs} pairs (range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
