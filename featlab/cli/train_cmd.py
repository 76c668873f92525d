"""``featlab train``: robust training end to end; the result is a backbone file.

Only click is imported here at module level; the library is imported when the command runs.
"""
import click

RECIPE_NAMES = ("standard", "fgsm-at", "mat-mixed", "mat-parallel", "mixup", "tlat", "mtlat",
                "iat")  # featlab.training.TRAIN_RECIPES (a test keeps the two in step)


@click.command("train")
@click.option("--dataset", default="synthetic", show_default=True,
              help="Dataset loader: synthetic, coco, cifar10.")
@click.option("--root", required=True, help="Dataset root.")
@click.option("--out", required=True, help="Output file, e.g. cache/weights/NAME.pt (then "
              "'featlab extract --backbones NAME' finds it).")
@click.option("--recipe", default="standard", show_default=True,
              help=f"One of: {', '.join(RECIPE_NAMES)}.")
@click.option("--arch", default="resnet18", show_default=True,
              help="resnet18, resnet34, resnet50, or resnet10-w16 (small, for CPUs).")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--image-size", type=int, default=None, help="Resize to N x N [224; synthetic 64].")
@click.option("--limit", type=int, default=None, help="Keep a seeded random N images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--strengths", default=None, help="FGSM budgets in [0, 1] pixel units, e.g. "
              "0.01,0.03,0.05 (fgsm-at: one), or 'auto' (MAT random walk over --candidates).")
@click.option("--candidates", default="0.01,0.02,0.03,0.05,0.08", show_default=True,
              help="Strengths the random walk chooses from (--strengths auto).")
@click.option("--eps-max", default=0.025, show_default=True,
              help="tlat/mtlat/iat: eps ~ U[0, eps_max] in [0, 1] pixel units.")
@click.option("--mixup-alpha", default=0.4, show_default=True)
@click.option("--init", default=None, help="Start from this backbone's weights (NAME or "
              "NAME=PATH), e.g. synthetic-object or imagenet-resnet18.")
@click.option("--train-layers", type=click.Choice(["all", "fc"]), default="all",
              show_default=True, help="fc: train only the last layer (needs --init).")
@click.option("--role", type=click.Choice(["object", "scene"]), default=None,
              help="Its side in a fusion store [default: the --init backbone's].")
@click.option("--lr", default=0.05, show_default=True, help="Peak one-cycle learning rate.")
@click.option("--weight-decay", default=5e-4, show_default=True)
@click.option("--val-fraction", default=0.2, show_default=True,
              help="Validation part of train (mat-parallel voting, --strengths auto).")
@click.option("--walk-steps", type=int, default=None, help="Random walk: steps l per walk "
              "[number of candidates].")
@click.option("--walks", default=200, show_default=True, help="Random walk: walks t.")
@click.option("--walk-penalty", default=-0.01, show_default=True,
              help="Random walk: a in G = H + a*S (negative penalises more strengths).")
@click.option("--workers", default=0, show_default=True, help="Decoding processes.")
@click.option("--classes", default=None, help="Comma-separated class list (COCO).")
@click.option("--cache-dir", default=None, help="Weights cache (for --init) [default: cache/].")
def train_command(dataset, root, out, recipe, arch, epochs, batch_size, image_size, limit, seed,
                  device, strengths, candidates, eps_max, mixup_alpha, init, train_layers, role,
                  lr, weight_decay, val_fraction, walk_steps, walks, walk_penalty, workers, classes,
                  cache_dir):
    """Train a classifier on the dataset's own classes with a robust-training recipe.

    Checkpointed every epoch: rerunning the same command continues a killed run, and a
    finished one does nothing. The file is a backbone for 'featlab extract'.

    \b
    featlab train --root cache/synthetic-data --recipe mtlat --out cache/weights/mtlat.pt
    featlab train --root cache/synthetic-data --recipe mat-parallel --strengths auto \\
        --arch resnet10-w16 --epochs 5 --out cache/weights/matp.pt
    featlab train --dataset cifar10 --root DATA/cifar10 --init imagenet-resnet18 \\
        --train-layers all --lr 0.01 --out cache/weights/cifar-fg.pt
    featlab extract --root cache/synthetic-data --backbones mtlat,synthetic-scene \\
        --conditions clean,fgsm:eps=0.01:0.03:target=fg
    """
    import os

    from ..training import TrainSpec, train
    from ..training.spec import parse_strengths

    spec = TrainSpec(
        out=out, root=root, dataset=dataset, arch=arch, recipe=recipe, epochs=epochs,
        batch_size=batch_size, image_size=image_size, limit=limit, seed=seed, device=device,
        strengths=strengths, candidates=tuple(parse_strengths(candidates, "--candidates")),
        eps_max=eps_max, mixup_alpha=mixup_alpha, init=init, train_layers=train_layers,
        role=role, lr=lr, weight_decay=weight_decay, val_fraction=val_fraction,
        walk_steps=walk_steps, walks=walks, walk_penalty=walk_penalty, workers=workers, cache_dir=cache_dir,
        name=os.path.splitext(os.path.basename(out))[0],
        dataset_options={"classes": classes.split(",")} if classes else {})
    report = train(spec)
    if report.get("already_done"):
        click.echo(f"{out}: already trained with these settings (nothing to do)")
        return
    last = {stage: h[-1] for stage, h in report["history"].items() if h}
    click.echo(f"{out}: {report['recipe']} ({report['paper']}) on {report['n_train']} images, "
               f"{len(report['classes'])} classes, {report['device']}, {report['seconds']:.0f} s")
    for stage, row in last.items():
        click.echo(f"  {stage}: epoch {row['epoch']}, loss "
                   f"{', '.join(f'{v:.3f}' for v in row['loss'])}, train accuracy "
                   f"{', '.join(f'{v:.3f}' for v in row['train_accuracy'])}")
    if report.get("selection"):
        click.echo(f"  random walk chose strengths {report['selection']['strengths']}")
    if report.get("voting"):
        click.echo(f"  voting coefficients {', '.join(f'{a:.3f}' for a in report['voting'])}")
    click.echo(f"  use it: featlab extract --backbones "
               f"{os.path.splitext(os.path.basename(out))[0]}={out} ...")
