"""``featlab replicate``."""
import click

from .common import echo_table


@click.command("replicate")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--seeds", default="0-4", show_default=True,
              help="Seeds to run: 0-4, 0,3,7 or 0-2,5.")
@click.option("--jobs", default=1, show_default=True,
              help="Seeds side by side, each with cores // jobs torch threads.")
@click.option("--out", "out_dir", default="analyses/replicate", show_default=True,
              help="Folder of the seeds (seed-K/) and of the pooled result.")
@click.option("--quick", is_flag=True,
              help="Quick size (32 px, 256 images, one pretraining epoch) for many seeds.")
@click.option("--store", default=None,
              help="A feature store: vary its train/test split and heads per seed instead.")
@click.option("--merge", is_flag=True,
              help="Run nothing: pool the seeds found in DIRS (seed or replicate folders).")
@click.option("--device", default="auto", show_default=True)
@click.option("--min-seeds", default=3, show_default=True,
              help="Fewer seeds with an interval: the verdict across seeds is inconclusive.")
def replicate_command(dirs, seeds, jobs, out_dir, quick, store, merge, device, min_seeds):
    """Repeat a study once per seed and pool every claim across the seeds (DerSimonian-Laird
    random effects), with a verdict across seeds and how many seeds agree with it.

    Each seed of the demo's study regenerates the data, pretrains both backbones, extracts,
    fits and decides every claim, in its own folder OUT/seed-K (a killed run resumes; a
    seed can run on another machine and be merged). With --store the seeds re-split the
    store's images into train/test and refit the heads.

    \b
    featlab replicate --seeds 0-4
    featlab replicate --quick --seeds 0-19 --jobs 2 --out analyses/replicate-quick
    featlab replicate --store cache/coco --seeds 0-19
    featlab replicate --seeds 7 --out runs/seed-7          # one seed, e.g. one cluster job
    featlab replicate --merge runs/seed-* --out analyses/replicate
    """
    from ..errors import FeatlabError
    from ..replication.run import replicate

    if dirs and not merge:
        raise FeatlabError(f"unexpected argument(s) {' '.join(dirs)}; to pool folders give "
                           f"--merge DIR...")
    if merge and not dirs:
        raise FeatlabError("--merge: name the folders to pool, e.g. --merge runs/seed-*")
    result = replicate(seeds, jobs=jobs, out_dir=out_dir, quick=quick, store=store,
                       merge=list(dirs) if merge else None, device=device,
                       min_seeds=min_seeds)
    echo_result(result)


def _interval(p):
    return "-" if p is None else f"{p['effect']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]"


def echo_result(result) -> None:
    """The pooled rows, then per claim the per-seed verdicts and the verdict across seeds."""
    seeds = result["seeds"]
    click.echo(f"featlab replicate: {len(seeds)} seed(s) {','.join(map(str, seeds))}")
    rows = [dict(id=r["id"], claim=r["claim"][:70], pooled=_interval(r["pooled"]),
                 tau2=None if r["pooled"] is None else r["pooled"]["tau2"],
                 I2=None if r["pooled"] is None else f"{r['pooled']['i2']:.0%}",
                 verdict=r["verdict"], agree=f"{r['agree']}/{len(r['seeds'])}",
                 seeds=" ".join(s["verdict"][:3] for s in r["seeds"]))
            for r in result["rows"]]
    echo_table(rows, ["id", "claim", "pooled", "tau2", "I2", "verdict", "agree", "seeds"])
    click.echo(f"verdict per claim across seeds (a row needs >= {result['min_seeds']} seeds; "
               "per seed in seed order):")
    for cid, c in result["claims"].items():
        state = "flips" if c["flips"] else "stable" if c["stable"] else "varies"
        per_seed = " ".join(f"{s}:{v}" for s, v in c["per_seed"].items())
        click.echo(f"  [{c['verdict']:^12}] {cid:3s} {c['agree']}/{len(seeds)} seeds' own verdicts "
                   f"agree with it; per seed {state}: {per_seed}")
    click.echo(f"results {result['json']} and {result['csv']}; forest plots "
               f"{', '.join(p[0] for p in result['figures'].values())}")
