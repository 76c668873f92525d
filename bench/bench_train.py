"""Benchmark ``featlab train``: each recipe's training throughput vs a
bare PyTorch loop doing the same forward and backward passes, side by side in one run.

featlab: :func:`featlab.training.loop.run_stage` — the real loop: per-step seeded
generators, the recipe (attacks through featlab's FGSM / targeted FGSM, soft labels),
SGD + one-cycle schedule, the progress bookkeeping and the per-epoch checkpoint written
atomically. Bare: the same network, optimiser, schedule and batches, with the attack's
input gradient and the training forward/backward written inline (``torch.autograd.grad``,
``F.cross_entropy``) and no checkpoint. Both start from the same weights and see the same
preloaded images. Throughput = clean training images per second (mat-parallel: per
ensemble, i.e. its S networks together). Runs alternate (bare, featlab, bare, ...) so
background load hits both alike; the ratio is the median of the per-repeat ratios.
Target: featlab >= 0.8x bare for every recipe.

    python bench/bench_train.py [--repeats 3] [--images 512] [--size 48] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from featlab.backbones.base import Backbone  # noqa: E402
from featlab.backbones.trained import make_net  # noqa: E402
from featlab.training.data import Images  # noqa: E402
from featlab.training.labels import one_hot  # noqa: E402
from featlab.training.loop import Stage, n_steps, run_stage  # noqa: E402
from featlab.training.recipes import TRAIN_RECIPES  # noqa: E402
from featlab.training.spec import TrainSpec  # noqa: E402

N_CLASSES, MAT = 16, [0.01, 0.03, 0.05]
STRENGTHS = {"fgsm-at": [[0.03]], "mat-mixed": [MAT], "mat-parallel": [[s] for s in MAT]}


def grad_sign(net, x, y, targeted=False):
    """One forward + backward for the input gradient, in eval mode (as featlab's attacks)."""
    net.eval()
    xg = x.detach().requires_grad_(True)
    loss = F.cross_entropy(net(xg), y)
    (g,) = torch.autograd.grad(-loss if targeted else loss, xg)
    net.train()
    return g.sign()


def soft_ce(logits, target):
    return -(target * logits.log_softmax(1)).sum(1).mean()


def mix(x, t, lam):
    perm = torch.randperm(len(x))
    return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]


def bare_loss(recipe, net, x, y, strengths):
    """The loss of one step, the same passes as the featlab recipe, written inline."""
    h, oh = len(x) // 2, one_hot(y, N_CLASSES)
    if recipe == "standard":
        return F.cross_entropy(net(x), y)
    if recipe == "mixup":
        xm, ym = mix(x, oh, 0.3)
        return soft_ce(net(xm), ym)
    if recipe in ("fgsm-at", "tlat"):
        t = (y[h:] + 1) % N_CLASSES
        targeted = recipe == "tlat"
        adv = (x[h:] + (-0.02 if targeted else strengths[0]) *
               grad_sign(net, x[h:], t if targeted else y[h:], targeted)).clamp(0, 1)
        return F.cross_entropy(net(torch.cat([x[:h], adv])), y)
    if recipe in ("mat-mixed", "mat-parallel"):
        sign = grad_sign(net, x, y)
        advs = [(x + s * sign).clamp(0, 1) for s in strengths]
        return F.cross_entropy(net(torch.cat([x, *advs])), y.repeat(len(advs) + 1),
                               reduction="sum") / len(x)
    x1, y1 = mix(x[:h], oh[:h], 0.3)
    if recipe == "mtlat":
        x2, y2 = mix(x[h:], oh[h:], 0.6)
        x2 = (x2 - 0.02 * grad_sign(net, x2, (y[h:] + 1) % N_CLASSES, True)).clamp(0, 1)
    else:  # iat: attack first, then mix
        x2, y2 = mix((x[h:] + 0.02 * grad_sign(net, x[h:], y[h:])).clamp(0, 1), oh[h:], 0.6)
    logits = net(torch.cat([x1, x2]))
    return soft_ce(logits[:h], y1) + soft_ce(logits[h:], y2)


def bare(recipe, nets, images, spec, strengths):
    steps = n_steps(len(images), spec.batch_size)
    opts = [torch.optim.SGD(n.parameters(), lr=spec.lr, momentum=0.9, nesterov=True,
                            weight_decay=spec.weight_decay) for n in nets]
    scheds = [torch.optim.lr_scheduler.OneCycleLR(o, spec.lr, total_steps=spec.epochs * steps)
              for o in opts]
    for epoch in range(spec.epochs):
        order = torch.randperm(len(images))
        for x, y in images.batches(order, spec.batch_size):
            for net, opt, sched, s in zip(nets, opts, scheds, strengths):
                net.train()
                loss = bare_loss(recipe, net, x, y, s)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()


def featlab_run(recipe, nets, images, spec, strengths):
    with tempfile.TemporaryDirectory() as folder:
        run_spec = copy.copy(spec)
        run_spec.out = os.path.join(folder, "bench.pt")
        run_stage(Stage("main", TRAIN_RECIPES.get(recipe)(), strengths), nets, images, run_spec,
                  fingerprint="bench", device=torch.device("cpu"), n_classes=N_CLASSES)


def measure(recipe, images, spec, repeats):
    strengths = STRENGTHS.get(recipe, [[]])
    torch.manual_seed(0)
    init = [Backbone("bench", make_net(spec.arch, N_CLASSES)) for _ in strengths]
    times = {"bare": [], "featlab": []}
    for r in range(repeats + 1):  # the first round warms up
        for name, fn in (("bare", bare), ("featlab", featlab_run)):
            nets = copy.deepcopy(init)
            start = time.perf_counter()
            fn(recipe, nets, images, spec, strengths)
            if r:
                times[name].append(time.perf_counter() - start)
    n = len(images) * spec.epochs
    ratios = [b / f for b, f in zip(times["bare"], times["featlab"])]
    return dict(bare=n / statistics.median(times["bare"]),
                featlab=n / statistics.median(times["featlab"]), ratio=statistics.median(ratios))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--arch", default="resnet10-w16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recipes", default=",".join(TRAIN_RECIPES.names()))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("FEATLAB_NO_PROGRESS", "1")
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (args.images, 3, args.size, args.size), generator=g,
                           dtype=torch.uint8)
    labels = torch.randint(0, N_CLASSES, (args.images,), generator=g)
    images = Images(None, np.arange(args.images), labels, pixels)
    spec = TrainSpec(out="", root="", arch=args.arch, epochs=1, batch_size=args.batch)
    print(f"{args.arch}, {args.size} px, batch {args.batch}, {args.images} images x 1 epoch, "
          f"torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
          f"median of {args.repeats}")
    print(f"{'recipe':14s} {'bare img/s':>11s} {'featlab img/s':>14s} {'ratio':>6s}")
    for recipe in args.recipes.split(","):
        row = measure(recipe, images, spec, args.repeats)
        flag = "" if row["ratio"] >= 0.8 else "  (below 0.8)"
        print(f"{recipe:14s} {row['bare']:11.1f} {row['featlab']:14.1f} {row['ratio']:6.2f}{flag}")


if __name__ == "__main__":
    main()
