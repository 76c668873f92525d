"""``featlab fit-head``."""
import click

from ..heads import HEADS
from .common import also_json, echo_outputs, echo_table, json_option


def accuracy_table(rows) -> list[dict]:
    """One line per condition: accuracy of each head."""
    table: dict = {}
    for row in rows:
        line = table.setdefault(row["condition"], {"condition": row["condition"]})
        column = row["head"] if row["alpha"] is None else f"joint(alpha={row['alpha']:g})"
        line[column] = row["accuracy"]
    return list(table.values())


def echo_labels(result) -> None:
    """Which heads each attack is white-box for (the others: transfer), and whether it is
    stale (the analysis logs which heads changed)."""
    white = {}
    for row in result["rows"]:
        if row["threat"] == "white-box":
            white.setdefault(row["condition"], []).append(
                row["head"] if row["alpha"] is None else f"joint(alpha={row['alpha']:g})")
    for key, info in result["attacks"].items():
        crafted = "its own logits" if info["head"] in (None, "own-logits") else info["head"]
        label = (f"white-box for {', '.join(white[key])}; transfer for the others" if key in white
                 else f"transfer for every head here (crafted against {crafted})")
        click.echo(f"{key}: {label}"
                   f"{' [STALE: crafted against a head refit since]' if info['stale'] else ''}")


def echo_robust(result) -> None:
    """How the robust heads were trained, and the average over the strength range."""
    robust = result["robust"]
    adv = robust.get("adv")
    if adv:
        click.echo(f"adv: {robust['robust_head']} head on train split of "
                   f"{' + '.join(adv['training_conditions'])} (shares {adv['shares']})")
        for c in adv["crafted_against"]:
            click.echo(f"  {c['condition']}: crafted against head {c['head']} "
                       f"(target={c['target']})")
    if "strengths" in robust:
        st = robust["strengths"]
        how = st["selection"]["method"]
        click.echo(f"MAT strengths ({how}, {st['family']}): {', '.join(map(str, st['chosen']))}")
    if robust.get("mat-parallel"):
        weights = ", ".join(f"{w:.3f}" for w in robust["mat-parallel"]["voting_weights"])
        click.echo(f"mat-parallel voting weights: {weights}")
    if result.get("range") and result["range"]["table"]:
        click.echo(f"average accuracy over {result['range']['family']} strengths "
                   f"{result['range']['strengths']} (95% bootstrap):")
        echo_table([dict(head=r["head"], alpha=r["alpha"], mean=r["mean"], ci_low=r["ci_low"],
                         ci_high=r["ci_high"]) for r in result["range"]["table"]],
                   ["head", "alpha", "mean", "ci_low", "ci_high"])


@click.command("fit-head")
@click.option("--store", required=True, help="Store directory.")
@click.option("--alpha", "alphas", multiple=True, type=float, default=(0.0,), show_default=True,
              help="Penalty alpha on the joint head's foreground weights (repeatable), on the "
                   "paper's scale (Section 3.4: beside the cross-entropy SUMMED over the N "
                   "training images; its Figure 5 sweeps 0.1..10). Head names carry it.")
@click.option("--alpha-scale", type=click.Choice(["sum", "mean"]), default="sum",
              show_default=True, help="mean: --alpha is beside the MEAN cross-entropy, i.e. "
                                      "the paper's alpha / N (the head is named by alpha * N).")
@click.option("--subset", default="all", show_default=True, help="all, similar or dissimilar.")
@click.option("--layer", default="penultimate", show_default=True)
@click.option("--l2", default=1e-4, show_default=True, help="Small ridge on all weights.")
@click.option("--fg", default=None, help="Foreground backbone [the object one].")
@click.option("--bg", default=None, help="Background backbone [the scene one].")
@click.option("--head", type=click.Choice(HEADS.names()), default="linear", show_default=True,
              help="Head type. Not linear, or with --inputs/--penalty: heads of this type on "
                   "--inputs [the roles' fg,bg], one per --alpha, instead of fg/bg/joint.")
@click.option("--inputs", default=None, metavar="A,B[/LAYER],...",
              help="Backbones the head reads, in order (any number; BACKBONE/LAYER for "
                   "another layer than --layer).")
@click.option("--penalty", multiple=True, metavar="INPUT=VALUE",
              help="Penalty on an input's first-layer weights, paper's scale (repeatable); "
                   "--alpha sweeps the fg input's when it is not given here.")
@click.option("--width", type=int, default=None, help="Hidden units of --head mlp [32].")
@click.option("--train-on", default=None, metavar="CONDITIONS",
              help="Also fit an adversarially retrained head on these train-split conditions, "
                   "half clean, half attacked (e.g. clean,fgsm:eps=0.3:target=fg).")
@click.option("--recipe", default=None, metavar="RECIPES",
              help="Also fit MAT heads, comma-separated: mat-mixed (Eq. 2), mat-parallel "
                   "(Eqs. 3-4, voting weights learned on a validation split of train).")
@click.option("--strengths", default=None, metavar="S1,S2,...|auto",
              help="MAT strengths (stored values of the --attack family), or auto: the "
                   "random walk of MAT Section 4.3 [auto].")
@click.option("--attack", default=None, metavar="CONDITION",
              help="Condition family the MAT strengths come from, e.g. "
                   "fgsm:eps_space=normalized:target=fg [the --train-on attack, or the "
                   "store's only attack family].")
@click.option("--robust-head", type=click.Choice(["joint", "fg", "bg"]), default="joint",
              show_default=True, help="Input of the robust heads.")
@click.option("--val-fraction", default=0.2, show_default=True,
              help="Fraction of train images carved out (per class) for validation.")
@click.option("--walk-steps", type=int, default=None,
              help="Random walk: l, steps per walk [number of candidate strengths].")
@click.option("--walks", default=200, show_default=True, help="Random walk: t, number of walks.")
@click.option("--walk-penalty", default=-0.01, show_default=True,
              help="Random walk: a in G = H + a*S (negative: fewer strengths).")
@click.option("--seed", default=0, show_default=True,
              help="Seeds the validation split, the walks and the bootstrap.")
@json_option
@click.option("--out", default=None,
              help="Directory for JSON and figures [analyses/<store>/fit-head].")
def fit_head_command(store, alphas, alpha_scale, subset, layer, l2, fg, bg, head, inputs,
                     penalty, width, train_on, recipe, strengths, attack, robust_head,
                     val_fraction, walk_steps, walks, walk_penalty, seed, json_out, out):
    """Fit foreground, background and joint heads on clean train features and score them
    on the test split of every stored condition (fusion paper Sections 3.2-3.4); optionally
    beside them an adversarially retrained head (Figure 5) and MAT heads (MAT Section 4).

    \b
    featlab fit-head --store cache/coco --alpha 10
    featlab fit-head --store cache/coco --alpha 0.001 --alpha-scale mean
    featlab fit-head --store cache/coco --alpha 0 --alpha 0.1 --alpha 1 --alpha 10 --subset dissimilar
    featlab fit-head --store cache/coco --alpha 0 --alpha 10 \\
        --train-on clean,fgsm:eps=0.3:eps_space=normalized:target=fg \\
        --recipe mat-mixed,mat-parallel --strengths auto
    featlab fit-head --store cache/coco --head mlp --inputs object,scene,third --penalty object=10
    """
    from ..analyses.heads.alphas import SCALE_NOTE
    from ..analyses.heads.run import fit_head
    from ..store import FeatureStore
    from ..utils.results import output_dir

    fs = FeatureStore(store)
    result = fit_head(fs, alphas=alphas, alpha_scale=alpha_scale, subset=subset, layer=layer,
                      fg=fg, bg=bg, l2=l2, train_on=train_on, recipe=recipe, strengths=strengths,
                      attack=attack, robust_head=robust_head, val_fraction=val_fraction,
                      walk_steps=walk_steps, walks=walks, walk_penalty=walk_penalty, seed=seed,
                      head=head, inputs=inputs, penalty=list(penalty) or None, width=width,
                      out_dir=output_dir(store, "fit-head", out))
    also_json(result, json_out)
    reads = (f"{result['head']} heads on inputs {','.join(result['inputs'])}" if "inputs" in
             result else f"heads; fg={result['fg']} bg={result['bg']}")
    click.echo(f"{reads}; {result['n_train']} clean train images of subset {subset} "
               f"({len(result['classes'])} classes)")
    click.echo(f"alpha on {SCALE_NOTE} (N = {result['n_train']}; mean scale = alpha / N): "
               + ", ".join(f"{a:g} (mean {m:.3g})"
                           for a, m in zip(result["alphas"], result["alphas_mean"])))
    rows = accuracy_table(result["rows"])
    if rows:
        echo_table(rows, list(rows[0]))
    echo_labels(result)
    for w in result["weights"]:
        if "measure" in w:  # heads on --inputs: per input
            click.echo(f"{w['head']}: {w['measure']} " + ", ".join(
                f"{b} {w[b]:.4f}" for b in result["inputs"]))
            continue
        click.echo(f"joint alpha={w['alpha']:g}: mean |weight| fg {w['fg']:.4f}, bg {w['bg']:.4f} "
                   f"(standardized features; raw: fg {w['fg_raw']:.4g}, bg {w['bg_raw']:.4g})")
    if "robust" in result:
        echo_robust(result)
    click.echo(f"saved heads {', '.join(result['heads'])}")
    echo_outputs(result)
