"""``featlab fit-head``."""
import click

from .common import also_json, echo_outputs, echo_table, json_option


def accuracy_table(rows) -> list[dict]:
    """One line per condition: accuracy of each head."""
    table: dict = {}
    for row in rows:
        line = table.setdefault(row["condition"], {"condition": row["condition"]})
        column = row["head"] if row["alpha"] is None else f"joint(a={row['alpha']:g})"
        line[column] = row["accuracy"]
    return list(table.values())


@click.command("fit-head")
@click.option("--store", required=True, help="Store directory.")
@click.option("--alpha", "alphas", multiple=True, type=float, default=(0.0,), show_default=True,
              help="Penalty alpha on the joint head's foreground weights (repeatable).")
@click.option("--subset", default="all", show_default=True, help="all, similar or dissimilar.")
@click.option("--layer", default="penultimate", show_default=True)
@click.option("--l2", default=1e-4, show_default=True, help="Small ridge on all weights.")
@click.option("--fg", default=None, help="Foreground backbone [the object one].")
@click.option("--bg", default=None, help="Background backbone [the scene one].")
@json_option
@click.option("--out", default=None,
              help="Directory for JSON and figures [analyses/<store>/fit-head].")
def fit_head_command(store, alphas, subset, layer, l2, fg, bg, json_out, out):
    """Fit foreground, background and joint heads on clean train features and score them
    on the test split of every stored condition (fusion paper Sections 3.2-3.4).

    \b
    featlab fit-head --store cache/coco --alpha 10
    featlab fit-head --store cache/coco --alpha 0 --alpha 0.1 --alpha 1 --alpha 10 --subset dissimilar
    """
    from ..analyses.heads.run import fit_head
    from ..store import FeatureStore
    from ..utils.results import output_dir

    fs = FeatureStore(store)
    result = fit_head(fs, alphas=alphas, subset=subset, layer=layer, fg=fg, bg=bg, l2=l2,
                      out_dir=output_dir(store, "fit-head", out))
    also_json(result, json_out)
    click.echo(f"heads on {result['n_train']} clean train images of subset {subset} "
               f"({len(result['classes'])} classes); fg={result['fg']} bg={result['bg']}")
    rows = accuracy_table(result["rows"])
    echo_table(rows, list(rows[0]))
    for w in result["weights"]:
        click.echo(f"joint alpha={w['alpha']:g}: mean |weight| fg {w['fg']:.4f}, bg {w['bg']:.4f}")
    click.echo(f"saved heads {', '.join(result['heads'])}")
    echo_outputs(result)
