"""``featlab fit-head``."""
import os

import click

from .common import echo_table, output_dir, write_json
from .main import cli


def accuracy_table(rows) -> list[dict]:
    """One line per condition: accuracy of each head."""
    table: dict = {}
    for row in rows:
        line = table.setdefault(row["condition"], {"condition": row["condition"]})
        column = row["head"] if row["alpha"] is None else f"joint(a={row['alpha']:g})"
        line[column] = row["accuracy"]
    return list(table.values())


@cli.command("fit-head")
@click.option("--store", required=True, help="Store directory.")
@click.option("--alpha", "alphas", multiple=True, type=float, default=(0.0,), show_default=True,
              help="Penalty alpha on the joint head's foreground weights (repeatable).")
@click.option("--subset", default="all", show_default=True, help="all, similar or dissimilar.")
@click.option("--layer", default="penultimate", show_default=True)
@click.option("--l2", default=1e-4, show_default=True, help="Small ridge on all weights.")
@click.option("--fg", default=None, help="Foreground backbone [the object one].")
@click.option("--bg", default=None, help="Background backbone [the scene one].")
@click.option("--json", "json_out", default=None, help="Write results here [analyses/...].")
@click.option("--out", default=None, help="Directory for figures [analyses/<store>/fit-head].")
def fit_head_command(store, alphas, subset, layer, l2, fg, bg, json_out, out):
    """Fit foreground, background and joint heads on clean train features and score them
    on the test split of every stored condition (fusion paper Sections 3.2-3.4).

    \b
    featlab fit-head --store cache/coco --alpha 10
    featlab fit-head --store cache/coco --alpha 0 --alpha 0.1 --alpha 1 --alpha 10 --subset dissimilar
    """
    from ..analyses.report_heads import heads_figures
    from ..analyses.run_heads import fit_heads
    from ..store import FeatureStore

    fs = FeatureStore(store)
    result = fit_heads(fs, alphas=alphas, subset=subset, layer=layer, fg=fg, bg=bg, l2=l2)
    folder = output_dir(store, "fit-head", out)
    result["figures"] = heads_figures(result, folder)
    path = write_json(json_out or os.path.join(folder, f"fit-head-{subset}.json"), result)
    click.echo(f"heads on {result['n_train']} clean train images of subset {subset} "
               f"({len(result['classes'])} classes); fg={result['fg']} bg={result['bg']}")
    rows = accuracy_table(result["rows"])
    echo_table(rows, list(rows[0]))
    for w in result["weights"]:
        click.echo(f"joint alpha={w['alpha']:g}: mean |weight| fg {w['fg']:.4f}, bg {w['bg']:.4f}")
    click.echo(f"saved heads {', '.join(result['heads'])}; results {path}")
