"""``featlab replicate``: two seeds side by side (``--jobs 2``, one torch thread each) vs one
after the other (``--jobs 1``, every core's threads each), wall time of the whole command.
Target on a 2-core machine: ``--jobs 2`` >= 1.6x faster.

Each run starts from an empty folder, so both do the same work: per seed, generate the
synthetic data, pretrain both backbones, extract every condition of the demo, fit the heads
and decide the claims (the quick size by default: 32 px, 256 images, one pretraining epoch).
Runs alternate (jobs 2, jobs 1, jobs 1, jobs 2, ...) so that a change of load on a shared
machine falls on both; the load average is printed before and after. The verdicts of both
runs are compared (the thread count may move a pretrained weight by a rounding, so an effect
by an image, rarely a verdict).

    python bench/bench_replicate.py [--size quick|default] [--repeats 1] [--seeds 0-1]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

from featlab.replication.run import replicate
from featlab.replication.runner import cores


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(tmp: str, jobs: int, seeds: str, quick: bool, label: str) -> tuple[float, float, dict]:
    out = os.path.join(tmp, label)
    cpu, start = _cpu(), time.perf_counter()
    result = replicate(seeds, jobs=jobs, quick=quick, device="cpu", out_dir=out)
    wall = time.perf_counter() - start
    verdicts = {s: {cid: c["per_seed"][s] for cid, c in result["claims"].items()}
                for s in result["seeds"]}
    print(f"  jobs {jobs}: {wall:.0f} s wall, {_cpu() - cpu:.0f} s CPU of the seeds' "
          f"processes (per seed {[round(v) for v in result['run_seconds'].values()]} s), "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return wall, _cpu() - cpu, verdicts


def main(size: str, repeats: int, seeds: str) -> None:
    print(f"{cores()} core(s); seeds {seeds} at the {size} size; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    times, verdicts = {1: [], 2: []}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for jobs in ((2, 1) if r % 2 == 0 else (1, 2)):
                wall, cpu, v = _run(tmp, jobs, seeds, size == "quick", f"jobs{jobs}-{r}")
                times[jobs].append(wall)
                verdicts.setdefault(jobs, v)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"--jobs 2 vs --jobs 1: {one / two:.2f}x (target >= 1.6; medians {two:.0f} s and "
          f"{one:.0f} s); verdicts per seed identical: {verdicts[1] == verdicts[2]}; load "
          f"average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("quick", "default"), default="quick")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeds", default="0-1")
    args = parser.parse_args()
    main(args.size, args.repeats, args.seeds)
