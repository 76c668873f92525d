"""``featlab extract``."""
import os

import click

from ..backbones.registry import BACKBONES
from ..data.registry import DATASETS
from ..errors import FeatlabError
from .common import echo_table

DEFAULT_BACKBONES = {"synthetic": "synthetic-object,synthetic-scene"}
REAL_BACKBONES = "imagenet-resnet18,places365-resnet18"


def parse_weights(items) -> dict:
    weights = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FeatlabError(f"--weights {item!r}: expected BACKBONE=PATH, e.g. "
                               f"places365-resnet18=resnet18_places365.pth.tar")
        weights[name] = path
    return weights


def _names(registry) -> str:
    return ", ".join(registry.names())


@click.command("extract")
@click.option("--dataset", default="synthetic", show_default=True,
              help=f"Dataset loader: {_names(DATASETS)}.")
@click.option("--root", required=True, help="Dataset root (COCO layout, CIFAR-10 folder, or "
              "the output of 'featlab data synthetic').")
@click.option("--store", default=None, help="Store directory [default: cache/<dataset>].")
@click.option("--backbones", default=None, help="Comma-separated backbones [default: "
              f"synthetic pair for synthetic, else {REAL_BACKBONES}]. Known: "
              f"{_names(BACKBONES)}; or NAME of a network trained by 'featlab train' into "
              "cache/weights/NAME.pt, or NAME=PATH of such a file.")
@click.option("--conditions", default="clean", show_default=True,
              help="Comma-separated conditions, e.g. clean,blur:sigma=1:5:10:region=object.")
@click.option("--weights", multiple=True, help="BACKBONE=PATH of a weights file (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--workers", default=0, show_default=True,
              help="Decoding processes (they also compute the corruptions).")
@click.option("--limit", type=int, default=None, help="Keep a seeded random N images.")
@click.option("--chunk-size", default=256, show_default=True, help="Rows per stored part.")
@click.option("--image-size", type=int, default=None, help="Resize to N x N [224; synthetic 64].")
@click.option("--classes", default=None, help="Comma-separated class list (COCO).")
@click.option("--seed", default=0, show_default=True,
              help="Split, --limit, attack and corruption seed.")
@click.option("--cache-dir", default=None, help="Weights and COCO-selection cache "
              "[default: cache/].")
@click.option("--selection", type=click.Choice(["paper", "all"]), default=None,
              help="COCO: the fusion paper's filter [paper], or every annotated image.")
@click.option("--layers", default=None, help="Comma-separated globs of the layers to store, "
              "e.g. penultimate,layer4.* [default: every captured layer].")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True, help="Stored feature dtype (reads return float32).")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32",
              show_default=True, help="Forward precision; fp32 keeps TF32 off.")
@click.option("--channels-last/--contiguous", default=None,
              help="Memory format of the forward passes of a new store: channels-last "
                   "[default; 1.4-1.7x faster forward passes at 224 px on CPU] or contiguous "
                   "(features differ by float32 rounding). A store keeps the one it was "
                   "started with.")
@click.option("--compression", type=click.Choice(["none", "gzip"]), default=None,
              help="Part compression of a new store: none [default], or gzip (deflate-1 + "
                   "shuffle: ~10 % smaller, ~30 % slower at 64 px on 2 CPU cores). A store "
                   "keeps the one it was started with.")
def extract_command(dataset, root, store, backbones, conditions, weights, device, batch_size,
                    workers, limit, chunk_size, image_size, classes, seed, cache_dir,
                    selection, layers, dtype, precision, channels_last, compression):
    """Extract BN, penultimate and logit features of every image under every condition.

    Rerunning the same command continues an interrupted run; a complete one does nothing.

    \b
    featlab extract --dataset synthetic --root cache/synthetic-data --conditions clean,blur:sigma=2:4:8
    featlab extract --dataset coco --root DATA/coco --store cache/coco \\
        --weights places365-resnet18=resnet18_places365.pth.tar \\
        --conditions clean,blur:sigma=1:5:10:20:45
    featlab extract --dataset cifar10 --root DATA/cifar10 --conditions clean --limit 2000
    featlab extract --dataset imagefolder --root DATA/my_images --layers penultimate \\
        --dtype float16 --conditions clean,blur:sigma=2:region=all
    torchrun --nproc_per_node 4 -m featlab extract --dataset coco --root DATA/coco ...
    featlab extract --dataset synthetic --root cache/synthetic-data --workers 2 \\
        --conditions clean,corrupt:name=imagenet-c:severity=1:2:3:4:5,rotate:severity=1:2:3:4:5
    """
    from ..extraction import ExtractionSpec, extract

    options = {"classes": classes.split(",")} if classes else {}
    if selection is not None:
        options["selection"] = selection
    spec = ExtractionSpec(
        store=store or os.path.join(cache_dir or "cache", dataset), root=root, dataset=dataset,
        backbones=tuple((DEFAULT_BACKBONES.get(dataset, REAL_BACKBONES) if backbones is None
                         else backbones).split(",")),
        conditions=conditions, device=device, batch_size=batch_size, workers=workers,
        limit=limit, chunk_size=chunk_size, seed=seed, image_size=image_size,
        weights=parse_weights(weights), cache_dir=cache_dir, dataset_options=options,
        layers=layers, dtype=dtype, precision=precision, channels_last=channels_last,
        compression=compression)
    summary = extract(spec)
    if summary["rank"] != 0:
        return
    ranks = f" x {summary['ranks']} ranks" if summary["ranks"] > 1 else ""
    click.echo(f"store {summary['store']}: {summary['images']} images on {summary['device']}"
               f"{ranks} in {summary['seconds']:.1f} s")
    echo_table([dict(condition=k, chunks_computed=v["computed"])
                for k, v in summary["conditions"].items()], ["condition", "chunks_computed"])
    if summary["decode_failures"]:
        click.echo(f"{len(summary['decode_failures'])} image(s) could not be decoded "
                   f"(features NaN, valid=False); first: "
                   f"{next(iter(summary['decode_failures'].items()))}")
