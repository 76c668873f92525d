"""``featlab pca-shift``."""
import click

from .common import also_json, echo_outputs, echo_table, json_option


@click.command("pca-shift")
@click.option("--store", required=True, help="Store directory.")
@click.option("--condition", required=True, help="Perturbed condition, e.g. blur:sigma=5.")
@click.option("--layer", default="penultimate", show_default=True)
@click.option("--method", default="pca", show_default=True, help="pca or umap.")
@click.option("--split", default="test", show_default=True)
@click.option("--subset", default=None, help="all, similar or dissimilar.")
@click.option("-k", "k", default=10, show_default=True, help="Clean subspace dimension.")
@click.option("--permutations", default=999, show_default=True)
@click.option("--tolerance", default=1.25, show_default=True,
              help="Membership test: largest median-residual ratio that counts as staying inside.")
@click.option("--n-boot", default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True)
@json_option
@click.option("--out", default=None,
              help="Directory for JSON and figures [analyses/<store>/pca-shift].")
def pca_shift_command(store, condition, layer, method, split, subset, k, permutations, tolerance,
                      n_boot, seed, json_out, out):
    """Project clean and perturbed features into the clean PCA subspace of each backbone
    (fusion paper Figure 2) and measure the shift.

    \b
    featlab pca-shift --store cache/coco --condition blur:sigma=5
    featlab pca-shift --store cache/coco --condition blur:sigma=10 --layer layer4.1.bn2 --method umap
    """
    from ..analyses.shift.run import pca_shift
    from ..store import FeatureStore
    from ..utils.results import output_dir

    result = pca_shift(FeatureStore(store), condition=condition, layer=layer, split=split,
                       subset=subset, method=method, k=k, permutations=permutations,
                       tolerance=tolerance, n_boot=n_boot, seed=seed,
                       out_dir=output_dir(store, "pca-shift", out))
    also_json(result, json_out)
    rows = [dict(backbone=b, centroid_shift=s["centroid_shift_mean"],
                 outside_fraction=s["outside_fraction"], p_value=s["p_value"],
                 residual_ratio=s["membership"]["ratio"],
                 ci=f'{s["membership"]["ratio_low"]:.2f}-{s["membership"]["ratio_high"]:.2f}',
                 stays_inside=s["membership"]["stays_inside"])
            for b, s in result["backbones"].items()]
    click.echo(f"{result['condition']} vs clean, layer {layer}, {split} split "
               "(centroid shift in within-class spreads; displacement outside clean top-k; "
               "sign-flip p; median residual outside the clean train top-k subspace, perturbed / "
               f"clean, 95% paired bootstrap; stays inside if the interval ends below {tolerance:g})")
    echo_table(rows, ["backbone", "centroid_shift", "outside_fraction", "p_value",
                      "residual_ratio", "ci", "stays_inside"])
    echo_outputs(result)
