"""Robust-training recipes on the embedded synthetic benchmark, measured.

Trains standard, fgsm-at, mat-mixed, mat-parallel, tlat and mtlat (and mixup, iat) small
networks with ``featlab train``, extracts each one as the only backbone of its own store
(``--backbones NAME=PATH``: clean, white-box FGSM at 7 strengths against the network's own
logits, object blur at 3 sigmas), and scores the test split from the stored logits with
Wilson 95 % intervals. The parallel-MAT members (single-strength networks, MAT Eq. 3) are
scored too. Then it checks the papers' claims with paired bootstrap intervals on the same
test images, and writes ``analyses/train-recipes/results.{json,md}`` and a figure.

    PYTHONPATH=. python analyses/recipes/train_recipes.py            # the README numbers
    PYTHONPATH=. python analyses/recipes/train_recipes.py --epochs 1 --limit 400   # a smoke run
"""
from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import torch

import featlab
from featlab.analyses.stats import wilson_interval
from featlab.backbones.trained import read_trained, save_trained
from featlab.utils.figures import new_figure, save_figure
from featlab.utils.results import write_json

STRENGTHS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)
MAT = "0.01,0.03,0.05"
RECIPES = (("standard", {}), ("fgsm-at", dict(strengths="0.03")),
           ("mat-mixed", dict(strengths=MAT)), ("mat-parallel", dict(strengths=MAT)),
           ("tlat", {}), ("mtlat", {}), ("mixup", {}), ("iat", {}))
BLUR = (1, 2, 4)
log = logging.getLogger("train_recipes")


def conditions() -> str:
    eps = ":".join(map(str, STRENGTHS))
    return f"clean,fgsm:eps={eps}:target=fg,blur:sigma={':'.join(map(str, BLUR))}:region=object"


def train_all(args) -> dict:
    reports = {}
    for recipe, extra in RECIPES:
        spec = featlab.TrainSpec(
            out=os.path.join(args.cache, "weights", f"tr-{recipe}.pt"), root=args.data,
            recipe=recipe, arch=args.arch, epochs=args.epochs, image_size=args.image_size,
            batch_size=args.batch_size, seed=args.seed, device="cpu", limit=args.limit,
            name=f"tr-{recipe}", **extra)
        began, cpu = time.perf_counter(), time.process_time()
        report = featlab.train(spec)
        reports[recipe] = dict(report, wall_seconds=time.perf_counter() - began,
                               cpu_seconds=time.process_time() - cpu, out=spec.out)
        log.info("%s: %.0f s wall, %.0f s CPU", recipe, reports[recipe]["wall_seconds"],
                 reports[recipe]["cpu_seconds"])
    return reports


def member_files(path: str) -> dict:
    """Each parallel-MAT member as its own trained file (the single-strength networks)."""
    payload, out = read_trained(path), {}
    strengths = payload["meta"]["report"]["strengths"]
    for k, (state, eps) in enumerate(zip(payload["members"], strengths)):
        member = path.replace(".pt", f"-member{k}.pt")
        if not os.path.isfile(member):
            save_trained(member, [state], arch=payload["arch"], classes=payload["classes"],
                         normalization=payload["normalization"], image_size=payload["image_size"],
                         recipe=f"single-strength eps={eps} (MAT Eq. 3)", meta=dict(eps=eps))
        out[f"single eps={eps}"] = member
    return out


def score(name: str, path: str, args) -> dict:
    """Extract the network alone and score the test split from its stored logits."""
    store = os.path.join(args.cache, "train-recipes", name)
    featlab.extract(featlab.ExtractionSpec(
        store=store, root=args.data, backbones=(f"{name}={path}",), conditions=conditions(),
        device="cpu", image_size=args.image_size, seed=args.seed, limit=args.limit,
        batch_size=128))
    fs = featlab.FeatureStore(store)
    labels = fs.labels(split="test")
    rows = {}
    for cond in fs.conditions:
        pred = fs.read(backbone=name, layer="logits", condition=cond, split="test").argmax(1)
        correct = pred == labels
        low, high = wilson_interval(correct.sum(), len(correct))
        rows[cond] = dict(accuracy=float(correct.mean()), ci=[low, high], n=int(len(correct)),
                          correct=correct.astype(int).tolist())
    return rows


def _key(rows, prefix, value):
    return next(k for k in rows if k.startswith(prefix) and f"={value}:" in k + ":")


def curve(rows) -> list:
    """Accuracy at strength 0 (clean) and each FGSM strength."""
    return [rows["clean"]["accuracy"]] + [rows[_key(rows, "fgsm", e)]["accuracy"]
                                          for e in STRENGTHS]


def correct_matrix(rows) -> np.ndarray:
    """(n_test, 1 + n_strengths) 0/1: clean, then each FGSM strength."""
    cols = [rows["clean"]["correct"]] + [rows[_key(rows, "fgsm", e)]["correct"] for e in STRENGTHS]
    return np.asarray(cols).T


def paired_ci(a: np.ndarray, b: np.ndarray, seed=0, n_boot=4000) -> list:
    """95 % paired-bootstrap interval of mean(a) - mean(b) over the same test images."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = a[idx].mean(1) - b[idx].mean(1)
    return [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]


def claims(scores: dict) -> list:
    """The papers' claims, checked on these networks (paired intervals, same test images)."""
    c = {name: correct_matrix(rows) for name, rows in scores.items()}
    avg = {name: m[:, 1:].mean(1) for name, m in c.items()}  # per-image mean over strengths
    singles = sorted(n for n in scores if n.startswith("single"))
    out = []
    # MAT Sec. 3 / Fig. 1: each single strength has its own working range (curves cross)
    winners = [max(singles, key=lambda n: c[n][:, j].mean()) for j in range(1, len(STRENGTHS) + 1)]
    lo, hi = winners[0], winners[-1]
    cross = [paired_ci(c[lo][:, 1], c[hi][:, 1]), paired_ci(c[hi][:, -1], c[lo][:, -1])]
    out.append(dict(claim="single-strength AT has a limited working range (MAT Fig. 1): the best "
                          "single-strength network changes with the tested strength",
                    winners=dict(zip(map(str, STRENGTHS), winners)), crossing_ci=cross,
                    holds=bool(lo != hi and cross[0][0] > 0 and cross[1][0] > 0)))
    # MAT Table 1: parallel MAT >= single strength, average over the strength range
    for other in ["fgsm-at"] + singles:
        ci = paired_ci(avg["mat-parallel"], avg[other])
        diff = float(avg["mat-parallel"].mean() - avg[other].mean())
        out.append(dict(claim=f"parallel MAT >= {other} (average FGSM accuracy, MAT Table 1)",
                        difference=diff, ci=ci, holds=bool(diff >= 0),
                        significant=bool(ci[0] > 0 or ci[1] < 0)))
    # M-TLAT Table 1: clean accuracy within 1 point of standard, robustness raised
    d_clean = float(c["mtlat"][:, 0].mean() - c["standard"][:, 0].mean())
    out.append(dict(claim="M-TLAT keeps clean accuracy within 1 point of standard",
                    difference=d_clean, ci=paired_ci(c["mtlat"][:, 0], c["standard"][:, 0]),
                    holds=bool(d_clean >= -0.01)))
    ci = paired_ci(avg["mtlat"], avg["standard"])
    out.append(dict(claim="M-TLAT raises FGSM robustness over standard (average over strengths)",
                    difference=float(avg["mtlat"].mean() - avg["standard"].mean()), ci=ci,
                    holds=bool(ci[0] > 0), significant=bool(ci[0] > 0 or ci[1] < 0)))
    d = float(c["tlat"][:, 0].mean() - c["fgsm-at"][:, 0].mean())
    out.append(dict(claim="TLAT loses less clean accuracy than FGSM AT (M-TLAT Table 3)",
                    difference=d, ci=(ci := paired_ci(c["tlat"][:, 0], c["fgsm-at"][:, 0])),
                    holds=bool(d >= 0), significant=bool(ci[0] > 0 or ci[1] < 0)))
    return out


def figure(scores: dict, stem: str) -> list:
    fig, (ax,) = new_figure(1, size=(7, 4.6))
    xs = (0.0,) + STRENGTHS
    for name, rows in scores.items():
        style = ":" if name.startswith("single") else "-"
        ax.plot(xs, curve(rows), style, marker="o", ms=3, label=name)
    ax.set_xscale("symlog", linthresh=0.002)
    ax.set_xlabel("FGSM eps (pixels in [0, 1]), white-box against each network")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, stem)


def markdown(scores, reports, claim_rows) -> str:
    head = ["network", "clean"] + [f"ε={e}" for e in STRENGTHS] + ["avg FGSM"] + \
        [f"blur σ={s}" for s in BLUR] + ["train s (wall / CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in scores.items():
        acc = curve(rows)
        blur = [rows[_key(rows, "blur", s)]["accuracy"] for s in BLUR]
        half = max((r["ci"][1] - r["ci"][0]) / 2 for r in rows.values())
        rep = reports.get(name, {})
        cells = [name] + [f"{a:.3f}" for a in acc] + [f"{np.mean(acc[1:]):.3f}"] + \
            [f"{b:.3f}" for b in blur] + ([f"{rep['wall_seconds']:.0f} / {rep['cpu_seconds']:.0f}"]
                                          if rep else ["(member)"])
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n95 % Wilson half-widths are at most ±{half:.3f} per cell (n = "
                 f"{next(iter(scores.values()))['clean']['n']} test images).\n")
    for row in claim_rows:
        ci = row.get("ci") or row.get("crossing_ci")
        sig = " (significant)" if row.get("significant") else ""
        lines.append(f"- [{'holds' if row['holds'] else 'FAILS'}{sig}] {row['claim']}"
                     + (f": difference {row['difference']:+.3f}" if "difference" in row else "")
                     + f", 95 % paired CI {np.round(ci, 3).tolist()}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cache/train-recipes-data")
    parser.add_argument("--cache", default="cache")
    parser.add_argument("--out", default="analyses/train-recipes")
    parser.add_argument("--arch", default="resnet10-w16")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a CPU shared with other jobs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if not os.path.isdir(os.path.join(args.data, "annotations")):
        featlab.generate_synthetic(args.data, seed=0, n_images=1600, image_size=64)
    reports = train_all(args)
    networks = {name: r["out"] for name, r in reports.items()}
    networks.update(member_files(reports["mat-parallel"]["out"]))
    scores = {name: score(os.path.basename(path)[:-3], path, args)
              for name, path in networks.items()}
    claim_rows = claims(scores)
    os.makedirs(args.out, exist_ok=True)
    text = markdown(scores, reports, claim_rows)
    with open(os.path.join(args.out, "results.md"), "w") as handle:
        handle.write(text)
    slim = {n: {k: {kk: vv for kk, vv in v.items() if kk != "correct"} for k, v in rows.items()}
            for n, rows in scores.items()}
    settings = dict(vars(args), strengths=STRENGTHS, mat_strengths=MAT, blur=BLUR,
                    torch=torch.__version__)
    write_json(os.path.join(args.out, "results.json"), dict(
        settings=settings, scores=slim, claims=claim_rows,
        training={n: {k: r.get(k) for k in ("wall_seconds", "cpu_seconds", "strengths", "voting",
                                              "n_train", "history")} for n, r in reports.items()},
        figures=figure(scores, os.path.join(args.out, "accuracy_vs_eps"))))
    print(text)


if __name__ == "__main__":
    main()
