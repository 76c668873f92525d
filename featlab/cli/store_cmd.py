"""``featlab store info``."""
import json

import click



@click.group("store")
def store_group():
    """Inspect feature stores.

    \b
    featlab store info cache/demo
    featlab store info cache/coco --json
    """


@store_group.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path, as_json):
    """Describe the store at PATH: samples, backbones, conditions, heads.

    \b
    featlab store info cache/demo
    """
    from ..store import FeatureStore

    summary = FeatureStore(path).info()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"store     {summary['path']} (schema {summary['schema_version']}, featlab "
               f"{summary['featlab_version']})")
    click.echo(f"dataset   {summary['dataset'].get('name')} at {summary['dataset'].get('root')}")
    click.echo(f"samples   {summary['n_samples']} (train {summary['splits']['train']}, test "
               f"{summary['splits']['test']}), {summary['classes']} classes, subsets "
               f"{summary['subsets']}, skipped at load {summary['skipped']}")
    for name, meta in summary["backbones"].items():
        click.echo(f"backbone  {name}: {meta['layers']} layers, weights sha256 "
                   f"{meta['weights_sha256'][:16]}")
    for key, state in summary["conditions"].items():
        click.echo(f"condition {key}: {state}")
    click.echo(f"heads     {', '.join(summary['heads']) or '(none)'}")
