"""``featlab data synthetic``."""
import click



@click.group("data")
def data_group():
    """Generate datasets.

    \b
    featlab data synthetic --out cache/synthetic-data --seed 0
    """


@data_group.command("synthetic")
@click.option("--out", required=True, help="Output directory (COCO layout).")
@click.option("--seed", default=0, show_default=True)
@click.option("--n-images", default=1600, show_default=True)
@click.option("--image-size", default=64, show_default=True)
@click.option("--context-consistency", default=1.0, show_default=True,
              help="1.0: the scene always matches the class's supercategory; 0.0: random.")
@click.option("--supercategories", "n_supercategories", default=4, show_default=True)
@click.option("--classes-per-supercategory", default=4, show_default=True)
def synthetic_command(out, seed, n_images, image_size, context_consistency, n_supercategories,
                      classes_per_supercategory):
    """Write the synthetic context-scene benchmark in COCO format.

    \b
    featlab data synthetic --out cache/synthetic-data --seed 0
    featlab data synthetic --out /tmp/cifar-like --context-consistency 0
    """
    from ..data.synthetic import generate_synthetic
    from ..errors import FeatlabError

    if not 0.0 <= context_consistency <= 1.0:
        raise FeatlabError(f"--context-consistency {context_consistency}: expected a value in [0, 1]")
    summary = generate_synthetic(out, seed=seed, n_images=n_images, image_size=image_size,
                                 context_consistency=context_consistency,
                                 n_supercategories=n_supercategories,
                                 classes_per_supercategory=classes_per_supercategory)
    click.echo(f"wrote {summary.get('n_images', n_images)} images in COCO format to {out}")
