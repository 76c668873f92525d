"""Why FGSM adversarial training from a random start stays at the supercategory on the
embedded benchmark, in controlled runs of ``featlab train``.

Every run is ``fgsm-at`` at eps 0.03 (8/255) on the recipe table's setting (resnet10-w16,
1,600 synthetic images, 48 px, 8 epochs, batch 64: 19 steps per epoch) unless its row says
otherwise, scored on the 400 test images: clean accuracy, white-box FGSM accuracy at 0.03,
and the supercategory accuracy of the clean predictions (1.0 with 0.25 class accuracy = the
network tells the 4 supercategories and guesses among their 4 classes). Rows:

- ``cold``: FGSM from the first step (``--clean-epochs 0``), seeds 0-4; ``warm``: the default
  clean warm-up (the first 4 epochs standard), seeds 0-4; the same at 64 px, 10 epochs;
- controls on seed 0: learning-rate peak 0.01 / 0.2, batch normalisation of the clean and the
  attacked half apart (two forward passes), the attack crafted in train mode (batch
  statistics), eps 0.01, weight decay 0;
- the start: FGSM training from the standard network of the same seed (``--init``), and on
  the static sets of that standard network (``--crafting-model``, MAT Section 5.1).

    PYTHONPATH=. python analyses/recipes/fgsm_plateau.py     # writes analyses/fgsm-plateau/
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import featlab
from featlab.analyses.stats import wilson_interval
from featlab.backbones.trained import load_trained
from featlab.data.synthetic import SUPERCATEGORIES
from featlab.perturbations.attacks import input_gradient
from featlab.training import TRAIN_RECIPES
from featlab.training.data import load_images, load_training_dataset
from featlab.training.evaluate import fgsm_correct
from featlab.training.recipes.base import StepResult, fgsm_examples, halves
from featlab.training.recipes.fgsm_at import FgsmAT
from featlab.utils.results import write_json

log = logging.getLogger("fgsm_plateau")
EPS = 0.03


@TRAIN_RECIPES.register("fgsm-at-separate-bn")
class SeparateBN(FgsmAT):
    """fgsm-at with the clean and the attacked half in two forward passes (each half gets
    its own batch statistics)."""

    name = "fgsm-at-separate-bn"

    def step(self, model, images, labels, ctx):
        clean, attacked = halves(len(images))
        (adv,) = fgsm_examples(model, images[attacked], labels[attacked], ctx.strengths[:1])
        logits = torch.cat([model(images[clean]), model(adv)])
        return StepResult(F.cross_entropy(logits, labels), logits, labels)


@TRAIN_RECIPES.register("fgsm-at-train-mode-attack")
class TrainModeAttack(FgsmAT):
    """fgsm-at with the FGSM gradient taken in train mode (batch statistics, as the
    training forward sees the batch)."""

    name = "fgsm-at-train-mode-attack"

    def step(self, model, images, labels, ctx):
        clean, attacked = halves(len(images))
        grad = input_gradient(model, images[attacked], labels[attacked])
        adv = torch.clamp(images[attacked] + ctx.strengths[0] * grad.sign(), 0, 1).detach()
        logits = model(torch.cat([images[clean], adv]))
        return StepResult(F.cross_entropy(logits, labels), logits, labels)


def runs(std_path) -> list:
    """(row, seed, TrainSpec fields) of every run; ``std_path(seed)`` is the standard
    network of that seed."""
    base = dict(recipe="fgsm-at", strengths=str(EPS))
    out = []
    for seed in range(5):
        out += [("cold", seed, dict(base, clean_epochs=0)), ("warm", seed, dict(base))]
    for seed in range(3):
        big = dict(base, image_size=64, epochs=10)
        out += [("cold, 64 px, 10 epochs", seed, dict(big, clean_epochs=0)),
                ("warm, 64 px, 10 epochs", seed, big)]
    cold = dict(base, clean_epochs=0)
    out += [("cold, lr 0.01", 0, dict(cold, lr=0.01)), ("cold, lr 0.2", 0, dict(cold, lr=0.2)),
            ("cold, weight decay 0", 0, dict(cold, weight_decay=0.0)),
            ("cold, eps 0.01", 0, dict(cold, strengths="0.01")),
            ("cold, BN per half", 0, dict(cold, recipe="fgsm-at-separate-bn")),
            ("cold, attack in train mode", 0, dict(cold, recipe="fgsm-at-train-mode-attack"))]
    for seed in range(2):
        entry = f"std{seed}={std_path(seed)}"
        out += [("cold from the standard network (--init)", seed, dict(cold, init=entry)),
                ("static sets of the standard network", seed, dict(base, crafting_model=entry))]
    return out


def evaluate(path: str, spec) -> dict:
    """Clean, FGSM (white-box, eps 0.03) and supercategory accuracy on the test split."""
    dataset = load_training_dataset(spec)
    test = load_images(dataset, np.flatnonzero(dataset.samples.split == "test"))
    model = load_trained(path)
    correct = fgsm_correct(model, test, [0.0, EPS], device="cpu")
    sup_of = {n: i for i, (_, names) in enumerate(SUPERCATEGORIES) for n in names}
    sup = torch.tensor([sup_of[c] for c in dataset.samples.classes])
    with torch.no_grad():
        pred = torch.cat([model(x).argmax(1) for x, _ in test.batches(torch.arange(len(test)),
                                                                      256, min_size=1)])
    n = len(test)
    return dict(n=n, clean=correct[0] / n, clean_ci=wilson_interval(int(correct[0]), n),
                fgsm=correct[1] / n, fgsm_ci=wilson_interval(int(correct[1]), n),
                supercategory=float((sup[pred] == sup[test.labels]).float().mean()))


def train_one(args, name: str, seed: int, fields: dict):
    out = os.path.join(args.cache, "weights", "plateau", f"{name}.pt")
    spec = featlab.TrainSpec(**dict(dict(
        out=out, root=args.data, arch="resnet10-w16", epochs=8, image_size=48, batch_size=64,
        seed=seed, device="cpu", name=name), **fields))
    began = time.process_time()
    featlab.train(spec)
    return out, spec, time.process_time() - began


def markdown(results: list) -> str:
    lines = ["| run | seed | clean (95 % CI) | FGSM ε=0.03 (95 % CI) | supercategory |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['row']} | {r['seed']} | {r['clean']:.3f} [{r['clean_ci'][0]:.2f}, "
                     f"{r['clean_ci'][1]:.2f}] | {r['fgsm']:.3f} [{r['fgsm_ci'][0]:.2f}, "
                     f"{r['fgsm_ci'][1]:.2f}] | {r['supercategory']:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cache/train-recipes-data")
    parser.add_argument("--cache", default="cache")
    parser.add_argument("--out", default="analyses/fgsm-plateau")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(1)
    if not os.path.isdir(os.path.join(args.data, "annotations")):
        featlab.generate_synthetic(args.data, seed=0, n_images=1600, image_size=64)
    std = {seed: train_one(args, f"standard-s{seed}", seed, dict(recipe="standard"))[0]
           for seed in range(2)}
    results = []
    for row, seed, fields in runs(std.get):
        name = f"{row}-s{seed}".replace(" ", "_").replace(",", "").replace("(", "") \
            .replace(")", "").replace("/", "")
        path, spec, cpu = train_one(args, name, seed, fields)
        results.append(dict(row=row, seed=seed, cpu_seconds=cpu, **evaluate(path, spec)))
        log.info("%s", json.dumps(results[-1]))
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "results.json"), dict(eps=EPS, results=results))
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
