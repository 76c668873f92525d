"""``featlab robustness``."""
import click

from .common import also_json, echo_outputs, echo_table, json_option


@click.command("robustness")
@click.option("--store", required=True, help="Store directory.")
@click.option("--reference", default=None,
              help="Classifier the +/- marks and mCE compare with [fg-<subset>].")
@click.option("--subset", default="all", show_default=True,
              help="Heads of this subset (all, similar, dissimilar), on its test images.")
@click.option("--n-boot", default=1000, show_default=True,
              help="Paired bootstrap resamples (at least 100).")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@json_option
@click.option("--out", default=None,
              help="Directory for CSV, JSON and figures [analyses/<store>/robustness].")
def robustness_command(store, reference, subset, n_boot, seed, json_out, out):
    """The M-TLAT paper's Table 1 for every fitted head of the store: clean accuracy,
    R = A_perturbed / A_clean per stored perturbation (ImageNet-C corruptions and the other
    severity families as the mean over their severities), +/- against the reference where
    the 95 % paired-bootstrap interval excludes 0, and mCE relative to the reference.

    \b
    featlab robustness --store cache/synth
    featlab robustness --store cache/coco --reference joint-all-alpha=0 --subset similar
    """
    from ..analyses.robustness.plots import column_label
    from ..analyses.robustness.run import robustness
    from ..store import FeatureStore
    from ..utils.results import output_dir

    result = robustness(FeatureStore(store), reference=reference, subset=subset, n_boot=n_boot,
                        seed=seed, out_dir=output_dir(store, "robustness", out))
    also_json(result, json_out)
    columns = list(result["columns"])
    click.echo(f"{len(result['rows'])} classifiers x {len(columns)} perturbations, "
               f"{result['n_test']} test images, reference {result['reference']}")
    rows = [dict(classifier=r["classifier"], clean=r["clean"], mCE=r["mCE"],
                 worst=column_label(result, min(columns, key=lambda c: r["scores"][c]["R"]))
                 if columns else None) for r in result["rows"]]
    mce = ["mCE"] if any(r["mCE"] is not None for r in rows) else []
    echo_table(rows, ["classifier", "clean", *mce, "worst"])
    click.echo(result["mce_note"])
    stale = [c for c in columns if column_label(result, c) != c]
    if stale:
        click.echo(f"stale (made against a head refit since; re-extract them): "
                   f"{', '.join(stale)}")
    click.echo(f"table {result.get('csv')}")
    echo_outputs(result)
