"""``featlab demo``."""
import time

import click

from .common import echo_table


@click.command("demo")
@click.option("--cache-dir", default="cache", show_default=True)
@click.option("--analyses-dir", default="analyses", show_default=True)
@click.option("--n-images", default=1600, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--workers", default=0, show_default=True)
def demo_command(cache_dir, analyses_dir, n_images, seed, device, workers):
    """Run the whole pipeline on the embedded synthetic benchmark (minutes on a CPU):
    generate data, pretrain the two embedded backbones (once; cached), extract clean and
    blurred features, fit heads, measure the PCA shift, print the fusion paper's findings.

    \b
    featlab demo
    featlab demo --n-images 800 --device cpu
    """
    from ..reporting.demo import DemoSpec, demo

    start = time.perf_counter()
    summary = demo(DemoSpec(cache_dir=cache_dir, analyses_dir=analyses_dir, seed=seed,
                                n_images=n_images, device=device, workers=workers))
    click.echo(f"featlab demo: {summary['images']} synthetic images, store {summary['store']}")
    click.echo("test accuracy of the foreground, background and joint (alpha=0) heads:")
    echo_table(summary["table"], ["subset", "condition", "fg", "bg", "joint", "gain"])
    shifts = ", ".join(f"{b} {v:.2f}" for b, v in summary["centroid_shift"].items())
    click.echo(f"centroid shift under {summary['shift_condition']} (within-class spreads): {shifts}")
    gains = ", ".join(f"{s} {g:+.3f}" for s, g in summary["mean_blur_gain"].items())
    click.echo(f"mean joint - fg accuracy under blur: {gains}")
    for finding, holds in summary["findings"].items():
        click.echo(f"  [{'yes' if holds else 'NO '}] {finding}")
    click.echo(f"figures: {', '.join(summary['figures'])}")
    click.echo(f"done in {time.perf_counter() - start:.0f} s")
