"""Benchmark: FGSM throughput through three backbones against a linear, an MLP and a gated head.

What ``fgsm:target=head:NAME`` costs per head type: featlab's FGSM (``attack_many``, one
gradient per batch) through :class:`featlab.backbones.classifier.HeadClassifier` — three
ResNet18 backbones (random init, no download, eval mode, channels-last as extraction uses
them) whose 512-d penultimate features (1,536 in all) feed a head over 24 classes. Heads:

- ``linear``: the stored-head module attacks use (:func:`featlab.backbones.classifier.
  head_module` of random ``coef``/``intercept``);
- ``mlp`` (STAND-IN, built here): concat -> Linear(1536, 256) -> ReLU -> Linear(256, 24);
- ``gated`` (STAND-IN, built here): one linear expert per input, a softmax gate over the
  inputs computed from the concatenated features, logits ``log sum_i g_i softmax(z_i)``.

The stand-ins take the list of per-input features, the signature of a head's ``to_torch()``
module; they have the layer sizes of the heads they stand for, which is what the attack's
cost depends on. Target: mlp and gated >= 0.8 of linear's images/s. The three run interleaved
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
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from featlab.backbones.base import Backbone  # noqa: E402
from featlab.backbones.classifier import HeadClassifier, head_module  # noqa: E402
from featlab.perturbations import PERTURBATIONS  # noqa: E402

DIM, N_INPUTS, N_CLASSES, WIDTH = 512, 3, 24, 256


class MLPStandIn(nn.Module):
    """STAND-IN for the mlp head: one hidden layer over the concatenated inputs."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM * N_INPUTS, WIDTH), nn.ReLU(),
                                 nn.Linear(WIDTH, N_CLASSES))

    def forward(self, blocks):
        return self.net(torch.cat(list(blocks), dim=1))


class GatedStandIn(nn.Module):
    """STAND-IN for the gated head: linear experts per input, a softmax gate over inputs."""

    def __init__(self):
        super().__init__()
        self.experts = nn.ModuleList(nn.Linear(DIM, N_CLASSES) for _ in range(N_INPUTS))
        self.gate = nn.Linear(DIM * N_INPUTS, N_INPUTS)

    def forward(self, blocks):
        blocks = list(blocks)
        log_gate = torch.log_softmax(self.gate(torch.cat(blocks, dim=1)), dim=1)  # (n, k)
        log_p = torch.stack([torch.log_softmax(e(b), dim=1)
                             for e, b in zip(self.experts, blocks)], dim=1)  # (n, k, C)
        return torch.logsumexp(log_gate.unsqueeze(2) + log_p, dim=1)


def backbones() -> list:
    out = []
    for i in range(N_INPUTS):
        torch.manual_seed(i)
        net = torchvision.models.resnet18(num_classes=N_CLASSES)
        out.append(Backbone(f"net{i}", net).to(memory_format=torch.channels_last).eval())
    return out


def linear_head() -> nn.Module:
    rng = np.random.default_rng(0)
    arrays = dict(coef=rng.normal(0, 0.02, (N_CLASSES, DIM * N_INPUTS)).astype(np.float32),
                  intercept=np.zeros(N_CLASSES, np.float32))
    return head_module(arrays, {})


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
    models = {"linear": HeadClassifier(nets, linear_head()).eval(),
              "mlp": HeadClassifier(nets, MLPStandIn()).eval(),
              "gated": HeadClassifier(nets, GatedStandIn()).eval()}
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
