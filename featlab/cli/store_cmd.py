"""``featlab store info`` and ``featlab store verify``."""
import json
import os

import click

from ..errors import FeatlabError


@click.group("store")
def store_group():
    """Inspect and check feature stores.

    \b
    featlab store info cache/demo
    featlab store info cache/coco --json
    featlab store verify cache/coco
    """


def _echo_problems(problems) -> None:
    for p in problems:
        click.echo(f"problem   {p['file']}: {p['problem']} — {p['repair']}")


def _check(path: str, full: bool) -> dict:
    from ..store.integrity import check_store

    if not os.path.isdir(path):
        raise FeatlabError(f"no feature store at {path}; create one with "
                           f"'featlab extract --store {path} ...'")
    return check_store(os.path.abspath(path), full=full)


@store_group.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path, as_json):
    """Describe the store at PATH: samples, backbones, conditions, heads, and the problems a
    quick check finds (file sizes and structure; 'featlab store verify' checks every byte).

    \b
    featlab store info cache/demo
    """
    from ..store import FeatureStore

    before = _check(path, full=False)["problems"]  # before opening: opening rebuilds the index
    try:
        summary = FeatureStore(path).info()
    except FeatlabError:  # the error line follows the problems found (a bad manifest is it)
        _echo_problems([p for p in before if p["file"] != "manifest.json"])
        raise
    found = {(p["file"], p["problem"]) for p in summary["problems"]}
    repaired = {"store.h5": "rebuilt now", "samples.h5": "rewritten now from the copy in store.h5"}
    summary["problems"] = summary["problems"] + [
        dict(p, repair=repaired[p["file"]]) for p in before
        if p["file"] in repaired and (p["file"], p["problem"]) not in found]
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
    _echo_problems(summary["problems"])
    if not summary["problems"]:
        click.echo("problems  none found by the quick check (run 'featlab store verify' for "
                   "every byte)")


@store_group.command("verify")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def verify(ctx, path, as_json):
    """Check every file of the store at PATH: each part and head against the checksum
    recorded when it was written, the sample table against the manifest, the index against
    the parts. Lists every problem and how to repair it; exit code 1 when there are any
    (DAMAGED; UNVERIFIED: files without checksum records; BUSY: another featlab process is
    writing the store), 0 when the store is healthy.

    \b
    featlab store verify cache/coco
    featlab store verify cache/coco --json
    """
    result = _check(path, full=True)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        if result["writer"] is not None:
            click.echo(f"writer    featlab process pid {result['writer']} is writing this store "
                       f"(extract or fit-head): its unfinished conditions, heads and the index "
                       f"are left out; verify again when it has finished")
        _echo_problems(result["problems"])
        c = result["checked"]
        leftovers = (f"; {c['unfinished']} unfinished temporary file(s) of a stopped write, "
                     f"removed by the next command that writes to the store"
                     if c["unfinished"] else "")
        click.echo(f"{result['status']}: {result['path']} — {len(result['problems'])} "
                   f"problem(s); checked {c['parts']} part(s) and {c['heads']} head(s) against "
                   f"their checksum records{leftovers}")
    ctx.exit(0 if result["healthy"] else 1)
