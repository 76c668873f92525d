"""Benchmark the gradient attacks: ratios measured in one run.

(a) FGSM at 6 strengths: featlab ``perturb_many`` (one gradient, six signs applied) vs
    ``torchattacks.FGSM`` called once per strength.             target: featlab >= 3x faster
(b) PGD-10 throughput: featlab ``pgd`` vs a bare loop of 10 forward + backward passes of the
    same model.                                                 target: >= 0.8x

Model: torchvision ResNet18 (random init, no download) behind a normalization wrapper, eval
mode, 64 px, batch 32, on this CPU. The contenders run interleaved (A, B, A, B, ...) so
background load hits both alike; each ratio is the median of the per-repeat ratios.

    python bench/bench_attacks.py [--repeats 5] [--batch 32] [--size 64]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchattacks
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from featlab.perturbations import PERTURBATIONS  # noqa: E402

EPS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]


class Normalized(nn.Module):
    """Images in [0, 1] -> logits; ImageNet normalization inside; exposes ``input_std``."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @property
    def input_std(self):
        return self.std.flatten()

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(fn_a, fn_b, repeats):
    """Median seconds of each and the median of per-repeat ratios ``t_b / t_a``."""
    fn_a(), fn_b()  # warm-up
    times = [(timed(fn_a), timed(fn_b)) for _ in range(repeats)]
    a, b = zip(*times)
    ratios = [tb / ta for ta, tb in times]
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def main(repeats: int, batch: int, size: int) -> None:
    torch.manual_seed(0)
    model = Normalized(torchvision.models.resnet18(num_classes=10)).eval()
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    fgsm, pgd = PERTURBATIONS.get("fgsm")(), PERTURBATIONS.get("pgd")()

    def featlab_fgsm():
        fgsm.perturb_many(x, [{"eps": e} for e in EPS], labels=y, model=model)

    def torchattacks_fgsm():
        for e in EPS:
            torchattacks.FGSM(model, eps=e)(x, y)

    def featlab_pgd():
        pgd.perturb(x, labels=y, model=model, generator=torch.Generator().manual_seed(0),
                    eps=0.03, steps=10)

    def bare_backward():  # 10 x (forward + loss.backward()), parameter and input gradients
        for _ in range(10):
            xi = x.clone().requires_grad_(True)
            F.cross_entropy(model(xi), y).backward()
        model.zero_grad(set_to_none=True)

    def bare_input_grad():  # 10 x (forward + gradient w.r.t. the input only)
        for _ in range(10):
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xi), y), xi)

    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"ResNet18 {size}px, batch {batch}, {repeats} repeats (median)")
    t_f, t_ta, speedup = paired(featlab_fgsm, torchattacks_fgsm, repeats)
    print(f"(a) FGSM x{len(EPS)} strengths: featlab {t_f:.3f} s, torchattacks {t_ta:.3f} s "
          f"-> featlab {speedup:.2f}x faster (target >= 3)")
    t_p, t_b, ratio = paired(featlab_pgd, bare_backward, repeats)
    print(f"(b) PGD-10: featlab {t_p:.3f} s, bare fwd+backward loop {t_b:.3f} s "
          f"-> throughput ratio {ratio:.2f} (target >= 0.8)")
    t_p, t_g, ratio = paired(featlab_pgd, bare_input_grad, repeats)
    print(f"    stricter baseline, bare fwd + input-gradient loop {t_g:.3f} s "
          f"(featlab {t_p:.3f} s) -> throughput ratio {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    main(**vars(parser.parse_args()))
