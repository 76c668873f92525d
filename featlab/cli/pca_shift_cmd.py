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
@click.option("--margin", default=0.5, show_default=True,
              help="Practical-equivalence margin of the class-centroid shift in the clean PCA "
                   "coordinates, in within-class SDs: the claim's decider.")
@click.option("--tolerance", default=1.25, show_default=True,
              help="Residual ratio (second number): largest median-residual ratio that counts "
                   "as staying inside the clean subspace.")
@click.option("--n-boot", default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True)
@json_option
@click.option("--out", default=None,
              help="Directory for JSON and figures [analyses/<store>/pca-shift].")
def pca_shift_command(store, condition, layer, method, split, subset, k, permutations, margin,
                      tolerance, n_boot, seed, json_out, out):
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
                       margin=margin, tolerance=tolerance, n_boot=n_boot, seed=seed,
                       out_dir=output_dir(store, "pca-shift", out))
    also_json(result, json_out)
    echo_summary(result, margin, tolerance)
    echo_outputs(result)


def _ci(low, high):
    return f"[{low:+.2f}, {high:+.2f}]"


def echo_summary(result, margin, tolerance) -> None:
    """One row per backbone, then the paired object-vs-scene comparison."""
    rows = []
    for b, s in result["backbones"].items():
        shift, m = s["pca_centroid_shift"], s["membership"]
        rows.append(dict(backbone=b, centroid_shift=s["centroid_shift_mean"],
                         outside_fraction=s["outside_fraction"], p_value=s["p_value"],
                         pca_shift=shift["shift"], pca_shift_ci=_ci(shift["low"], shift["high"]),
                         moved=shift["moved"], stays=shift["stays"],
                         residual_ratio=m["ratio"], ratio_ci=_ci(m["ratio_low"], m["ratio_high"]),
                         stays_inside=m["stays_inside"]))
    click.echo(f"{result['condition']} vs clean, layer {result['layer']}, {result['split']} "
               "split (centroid shift in within-class spreads; displacement outside clean "
               "top-k; sign-flip p). pca_shift: class-centroid shift in the clean train top-k "
               "PCA coordinates, in within-class SDs (Mahalanobis), 95% bootstrap over test "
               f"images, margin ±{margin:g}: moved / stays decide. residual_ratio (second "
               "number): median residual outside that subspace, perturbed / clean; stays_inside "
               f"if the interval ends below {tolerance:g}.")
    echo_table(rows, ["backbone", "centroid_shift", "outside_fraction", "p_value", "pca_shift",
                      "pca_shift_ci", "moved", "stays", "residual_ratio", "ratio_ci",
                      "stays_inside"])
    c = result.get("comparison")
    if c:
        click.echo(f"object {c['object']} vs scene {c['scene']} (paired, same test images, "
                   f"margin ±{c['margin']:g} SD): pca_shift difference {c['effect']:+.2f} "
                   f"{_ci(c['low'], c['high'])}, object moves more: {c['moves_more']}; scene "
                   f"{c['scene_shift']:+.2f} {_ci(c['scene_low'], c['scene_high'])}, scene "
                   f"stays: {c['scene_stays']}")
