"""Robust-training recipes on the embedded synthetic benchmark, measured.

Trains standard, fgsm-at, mat-mixed, mat-parallel, tlat and mtlat (and mixup, iat) small
networks with ``featlab train``, extracts each one as the only backbone of its own store
(``--backbones NAME=PATH``: clean, white-box FGSM at 7 strengths against the network's own
logits, the same FGSM strengths crafted by the crafting model, object blur at 3 sigmas),
and scores the test split from the stored logits with Wilson 95 % intervals. The crafting
model is the ``standard`` network: MAT's threat model (Section 5.1) crafts the training
and the test sets once with a separate fixed model, so mat-mixed and mat-parallel train on
its static sets (``--crafting-model``) and every network is also scored on test sets it
crafted (``fgsm:...:target=surrogate:surrogate=crafter``); fgsm-at crafts against itself
(Kurakin et al.). The parallel-MAT members (single-strength networks, MAT Eq. 3) are scored
too. Then it checks the papers' claims with paired bootstrap intervals on the same test
images (MAT's on the crafted sets, as the paper measures them, and white-box), and writes
``analyses/train-recipes/results.{json,md}`` and a figure.

    PYTHONPATH=. python analyses/recipes/train_recipes.py            # the Benchmarks page's numbers
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
from featlab.analyses.stats import paired_bootstrap, verdict as stats_verdict, wilson_interval
from featlab.backbones.trained import read_trained, save_trained
from featlab.utils.figures import new_figure, save_figure
from featlab.utils.results import write_json

STRENGTHS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)
MAT = "0.01,0.03,0.05"
CRAFTER = "crafter"  # the standard network, crafting MAT's static sets (Section 5.1)
#: (row name, recipe, further TrainSpec fields); fgsm-at opens with its default clean
#: warm-up (half the epochs), "fgsm-at cold" starts FGSM at once (--clean-epochs 0)
RECIPES = (("standard", "standard", {}), ("fgsm-at", "fgsm-at", dict(strengths="0.03")),
           ("fgsm-at cold", "fgsm-at", dict(strengths="0.03", clean_epochs=0)),
           ("mat-mixed", "mat-mixed", dict(strengths=MAT, crafting_model=CRAFTER)),
           ("mat-parallel", "mat-parallel", dict(strengths=MAT, crafting_model=CRAFTER)),
           ("tlat", "tlat", {}), ("mtlat", "mtlat", {}), ("mixup", "mixup", {}),
           ("iat", "iat", {}))
BLUR = (1, 2, 4)
log = logging.getLogger("train_recipes")


def conditions() -> str:
    eps = ":".join(map(str, STRENGTHS))
    return (f"clean,fgsm:eps={eps}:target=fg,fgsm:eps={eps}:target=surrogate:surrogate={CRAFTER},"
            f"blur:sigma={':'.join(map(str, BLUR))}:region=object")


def crafter_path(args) -> str:
    return os.path.join(args.cache, "weights", "tr-standard.pt")


def train_all(args) -> dict:
    reports = {}
    for row, recipe, extra in RECIPES:
        stem = "tr-" + row.replace(" ", "-")
        if extra.get("crafting_model") == CRAFTER:
            extra = dict(extra, crafting_model=f"{CRAFTER}={crafter_path(args)}")
        spec = featlab.TrainSpec(
            out=os.path.join(args.cache, "weights", f"{stem}.pt"), root=args.data,
            recipe=recipe, arch=args.arch, epochs=args.epochs, image_size=args.image_size,
            batch_size=args.batch_size, seed=args.seed, device="cpu", limit=args.limit,
            name=stem, **extra)
        began, cpu = time.perf_counter(), time.process_time()
        report = featlab.train(spec)
        reports[row] = dict(report, wall_seconds=time.perf_counter() - began,
                            cpu_seconds=time.process_time() - cpu, out=spec.out)
        log.info("%s: %.0f s wall, %.0f s CPU", row, reports[row]["wall_seconds"],
                 reports[row]["cpu_seconds"])
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
        batch_size=128, weights={CRAFTER: crafter_path(args)}))
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


def _key(rows, prefix, value, crafted=False):
    return next(k for k in rows if k.startswith(prefix) and f"={value}:" in k + ":"
                and ("target=surrogate" in k) == crafted)


def curve(rows, crafted=False) -> list:
    """Accuracy at strength 0 (clean) and each FGSM strength (white-box, or crafted by the
    crafting model)."""
    return [rows["clean"]["accuracy"]] + [rows[_key(rows, "fgsm", e, crafted)]["accuracy"]
                                          for e in STRENGTHS]


def correct_matrix(rows, crafted=False) -> np.ndarray:
    """(n_test, 1 + n_strengths) 0/1: clean, then each FGSM strength."""
    cols = [rows["clean"]["correct"]] + [rows[_key(rows, "fgsm", e, crafted)]["correct"]
                                         for e in STRENGTHS]
    return np.asarray(cols).T


def paired_ci(a: np.ndarray, b: np.ndarray) -> list:
    """95 % paired-bootstrap interval of mean(a) - mean(b) over the same test images."""
    out = paired_bootstrap(a, b, n_boot=4000, seed=0)
    return [out["low"], out["high"]]


def verdict(ci, margin: float = 0.0) -> str:
    """``yes`` when the 95 % interval lies above ``margin``, ``no`` when below, else
    ``inconclusive`` (:func:`featlab.analyses.stats.verdict`, shifted by ``margin``)."""
    return stats_verdict(ci[0] - margin, ci[1] - margin)


def mat_claims(scores: dict, crafted: bool) -> list:
    """MAT's claims (paired intervals, same test images), on the crafting model's test sets
    (``crafted``, the paper's Section 5.1) or white-box."""
    c = {name: correct_matrix(rows, crafted) for name, rows in scores.items()}
    avg = {name: m[:, 1:].mean(1) for name, m in c.items()}  # per-image mean over strengths
    singles = sorted(n for n in scores if n.startswith("single"))
    where = "crafted test sets" if crafted else "white-box"
    # MAT Sec. 3 / Fig. 1: each single strength has its own working range (curves cross)
    winners = [max(singles, key=lambda n: c[n][:, j].mean()) for j in range(1, len(STRENGTHS) + 1)]
    lo, hi = winners[0], winners[-1]
    cross = [paired_ci(c[lo][:, 1], c[hi][:, 1]), paired_ci(c[hi][:, -1], c[lo][:, -1])]
    crossing = "no" if lo == hi or cross[0][1] < 0 or cross[1][1] < 0 else \
        "yes" if cross[0][0] > 0 and cross[1][0] > 0 else "inconclusive"
    out = [dict(claim=f"single-strength AT has a limited working range (MAT Fig. 1, {where}): "
                      f"the best single-strength network changes with the tested strength",
                winners=dict(zip(map(str, STRENGTHS), winners)), crossing_ci=cross,
                verdict=crossing)]
    # MAT Table 1: parallel MAT >= single strength, average over the strength range
    for other in ["fgsm-at", "mat-mixed"] + singles:
        ci = paired_ci(avg["mat-parallel"], avg[other])
        diff = float(avg["mat-parallel"].mean() - avg[other].mean())
        out.append(dict(claim=f"parallel MAT > {other} (average FGSM accuracy, MAT Table 1, "
                              f"{where})", difference=diff, ci=ci, verdict=verdict(ci)))
    return out


def claims(scores: dict) -> list:
    """The papers' claims, checked on these networks (paired intervals, same test images)."""
    c = {name: correct_matrix(rows) for name, rows in scores.items()}
    avg = {name: m[:, 1:].mean(1) for name, m in c.items()}  # per-image mean over strengths
    out = mat_claims(scores, crafted=True) + mat_claims(scores, crafted=False)
    # FGSM AT at eps = 8/255 keeps clean accuracy >= 0.6 (it does on CIFAR-10)
    n = len(c["fgsm-at"])
    low, high = wilson_interval(int(c["fgsm-at"][:, 0].sum()), n)
    out.append(dict(claim="FGSM AT at eps 0.03 keeps clean accuracy >= 0.6",
                    accuracy=float(c["fgsm-at"][:, 0].mean()), ci=[low, high],
                    verdict=verdict([low, high], margin=0.6)))
    # M-TLAT Table 1: clean accuracy within 1 point of standard, robustness raised
    ci = paired_ci(c["mtlat"][:, 0], c["standard"][:, 0])
    out.append(dict(claim="M-TLAT keeps clean accuracy within 1 point of standard",
                    difference=float(c["mtlat"][:, 0].mean() - c["standard"][:, 0].mean()),
                    ci=ci, verdict=verdict(ci, margin=-0.01)))
    ci = paired_ci(avg["mtlat"], avg["standard"])
    out.append(dict(claim="M-TLAT raises FGSM robustness over standard (average over strengths)",
                    difference=float(avg["mtlat"].mean() - avg["standard"].mean()), ci=ci,
                    verdict=verdict(ci)))
    ci = paired_ci(c["tlat"][:, 0], c["fgsm-at"][:, 0])
    out.append(dict(claim="TLAT loses less clean accuracy than FGSM AT (M-TLAT Table 3)",
                    difference=float(c["tlat"][:, 0].mean() - c["fgsm-at"][:, 0].mean()), ci=ci,
                    verdict=verdict(ci)))
    return out


def figure(scores: dict, stem: str) -> list:
    fig, axes = new_figure(2, size=(6, 4.6))
    xs = (0.0,) + STRENGTHS
    for ax, crafted in zip(axes, (False, True)):
        for name, rows in scores.items():
            style = ":" if name.startswith("single") else "-"
            ax.plot(xs, curve(rows, crafted), style, marker="o", ms=3, label=name)
        ax.set_xscale("symlog", linthresh=0.002)
        ax.set_xlabel("FGSM eps (pixels in [0, 1]), " + (
            "crafted by the standard network (MAT Sec. 5.1)" if crafted else
            "white-box against each network"))
        ax.set_ylabel("test accuracy")
    axes[0].legend(fontsize=7, ncol=2)
    return save_figure(fig, stem)


CRAFTED_SHOWN = (0.01, 0.03, 0.05)


def _row(name, rows, rep) -> list:
    acc, crafted = curve(rows), curve(rows, crafted=True)
    blur = [rows[_key(rows, "blur", s)]["accuracy"] for s in BLUR]
    shown = [crafted[1 + STRENGTHS.index(e)] for e in CRAFTED_SHOWN]
    return [name] + [f"{a:.3f}" for a in acc] + [f"{np.mean(acc[1:]):.3f}"] + \
        [f"{a:.3f}" for a in shown] + [f"{np.mean(crafted[1:]):.3f}"] + \
        [f"{b:.3f}" for b in blur] + ([f"{rep['wall_seconds']:.0f} / {rep['cpu_seconds']:.0f}"]
                                      if rep else ["(member)"])


def markdown(scores, reports, claim_rows) -> str:
    head = ["network", "clean"] + [f"ε={e}" for e in STRENGTHS] + ["avg FGSM"] + \
        [f"crafted ε={e}" for e in CRAFTED_SHOWN] + ["avg crafted"] + \
        [f"blur σ={s}" for s in BLUR] + ["train s (wall / CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in scores.items():
        lines.append("| " + " | ".join(_row(name, rows, reports.get(name, {}))) + " |")
    half = max((r["ci"][1] - r["ci"][0]) / 2 for rows in scores.values() for r in rows.values())
    lines.append(f"\n95 % Wilson half-widths are at most ±{half:.3f} per cell (n = "
                 f"{next(iter(scores.values()))['clean']['n']} test images).\n")
    for row in claim_rows:
        ci = row.get("ci") or row.get("crossing_ci")
        value = (f": difference {row['difference']:+.3f}" if "difference" in row else
                 f": {row['accuracy']:.3f}" if "accuracy" in row else "")
        lines.append(f"- [{row['verdict']}] {row['claim']}{value}"
                     f", 95 % {'Wilson' if 'accuracy' in row else 'paired'} CI "
                     f"{np.round(ci, 3).tolist()}")
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
