"""Benchmark: FGSM throughput through three backbones against a linear, an MLP and a gated head.

What ``fgsm:target=head:NAME`` costs per head type: featlab's FGSM (``attack_many``, one
gradient per batch) through :class:`featlab.backbones.classifier.HeadClassifier` — three
ResNet18 backbones (random init, no download, eval mode, channels-last as extraction uses
them) whose 512-d penultimate features (1,536 in all) feed a head over 24 classes. Heads:

every entry of :data:`featlab.heads.HEADS` (``linear``, ``mlp`` at width 256, ``gated``),
fitted for a few L-BFGS iterations on random features of that shape (the attack's cost
depends on the layer sizes, not on the fitted values), attacked through its own
``to_torch()`` module. Target: mlp and gated >= 0.8 of linear's images/s. The three run interleaved
(linear, mlp, gated, linear, ...) so background load hits all alike, and each repeat is
timed in wall time and in CPU time of this process (``time.process_time``: what other jobs
on a shared machine do not add to; with ``--threads 1`` no idle-thread spinning either).
Printed per head: images/s of the fastest repeat in both clocks, and the median of the
per-repeat paired CPU-time ratios with a 95 % percentile bootstrap interval (seeded), which
decides: met when the interval lies at or above 0.8, not met when below it, inconclusive
when it straddles 0.8.

    python bench/bench_head_attacks.py [--repeats 9] [--batch 16] [--size 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from featlab.backbones.base import Backbone  # noqa: E402
from featlab.backbones.classifier import HeadClassifier  # noqa: E402
from featlab.heads import HEADS  # noqa: E402
from featlab.perturbations import PERTURBATIONS  # noqa: E402

DIM, N_INPUTS, N_CLASSES, WIDTH = 512, 3, 24, 256


def backbones() -> list:
    out = []
    for i in range(N_INPUTS):
        torch.manual_seed(i)
        net = torchvision.models.resnet18(num_classes=N_CLASSES)
        out.append(Backbone(f"net{i}", net).to(memory_format=torch.channels_last).eval())
    return out


def heads() -> dict:
    """Each registered head type fitted briefly on random (n, 512) blocks of three inputs."""
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(240, DIM)).astype(np.float32) for _ in range(N_INPUTS)]
    y = np.arange(240) % N_CLASSES
    settings = dict(linear=dict(max_iter=20), mlp=dict(width=WIDTH, max_iter=5),
                    gated=dict(max_iter=5))
    with warnings.catch_warnings():  # a few iterations on purpose: not converged
        warnings.simplefilter("ignore")
        return {name: HEADS.get(name)(**settings.get(name, {})).fit(blocks, y).to_torch()
                for name in HEADS.names()}


def timed(fn) -> tuple:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def verdict(ratios, target=0.8, n_boot=2000, seed=0) -> tuple:
    """Median paired ratio, its 95 % percentile bootstrap interval and the decision."""
    rng = np.random.default_rng(seed)
    r = np.asarray(ratios)
    boot = np.median(r[rng.integers(0, len(r), (n_boot, len(r)))], axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    decided = "met" if low >= target else "NOT met" if high < target else "inconclusive"
    return float(np.median(r)), float(low), float(high), decided


def main(repeats: int, batch: int, size: int, threads: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nets = backbones()
    models = {name: HeadClassifier(nets, module).eval() for name, module in heads().items()}
    x, y = torch.rand(batch, 3, size, size), torch.randint(0, N_CLASSES, (batch,))
    fgsm = PERTURBATIONS.get("fgsm")()

    def attack(model):
        return lambda: fgsm.attack_many(x, [{"eps": 0.03}], labels=y, model=model)

    for model in models.values():
        attack(model)()  # warm-up
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(timed(attack(model)))
    print(f"FGSM through {N_INPUTS} ResNet18 backbones ({N_INPUTS * DIM}-d features, "
          f"{N_CLASSES} classes), batch {batch}, {size} px, {repeats} repeats, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'head':8s} {'images/s wall':>13s} {'images/s CPU':>12s} "
          f"{'CPU-time ratio to linear, median [95% CI]':>42s}  target >= 0.8")
    for name, ts in times.items():
        wall, cpu = (np.array(t) for t in zip(*ts))
        base = np.array([t[1] for t in times["linear"]])
        median, low, high, decided = verdict(base / cpu)  # throughput ratios, paired
        print(f"{name:8s} {batch / wall.min():13.2f} {batch / cpu.min():12.2f} "
              f"{median:26.3f} [{low:.3f}, {high:.3f}]  {'' if name == 'linear' else decided}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    main(args.repeats, args.batch, args.size, args.threads)
