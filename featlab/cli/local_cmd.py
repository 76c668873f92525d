"""``featlab isotropy``, ``symmetry``, ``mantel``, ``lipschitz`` (Aghdam et al., from probes)."""
import click

from .common import also_json, echo_outputs, echo_table

NORMS = {"1": 1, "2": 2, "inf": float("inf")}


def _common(func):
    """Options every local-property command takes."""
    options = [
        click.option("--store", required=True, help="Store directory."),
        click.option("--radius", "radii", multiple=True, type=float,
                     help="Radius in 0-255 pixel units (repeatable) [all extracted]."),
        click.option("--backbone", "backbones", multiple=True,
                     help="Backbone (repeatable) [all]."),
        click.option("--probe", default=None,
                     help="Probe family when the store holds several, e.g. isotropy:copies=100."),
        click.option("--json", "json_out", default=None, help="Write results here [analyses/...]."),
        click.option("--out", default=None, help="Directory for figures [analyses/<store>/<cmd>]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _folder(store, command, out) -> str:
    from ..utils.results import output_dir

    return output_dir(store, command, out)


def _score_command(kind, store, radii, backbones, probe, json_out, out, heads, layers):
    from ..analyses.registry import ANALYSES
    from ..store import FeatureStore

    result = ANALYSES.get(kind)(FeatureStore(store), probe=probe, radii=radii or None,
                                heads=heads or None, backbones=backbones or None, layers=layers,
                                out_dir=_folder(store, kind, out))
    also_json(result, json_out)
    click.echo(f"{result['probe']}: {result['n_samples']} images x {result['copies']} copies "
               f"per radius; score range max-min over the copies")
    echo_table([dict(head=h, **r) for h, rs in result["heads"].items() for r in rs],
               ["head", "radius", "n", "range_median", "range_q1", "range_q3",
                "misclassified_fraction"])
    if result["features"]:
        echo_table(result["features"], ["backbone", "layer", "radius", "relative_range_median",
                                        "displacement_median"])
    echo_outputs(result)


def _score_options(func):
    func = click.option("--layer", "layers", multiple=True, help="Also the range of "
                        "|phi(x+v) - phi(x)| at this layer (repeatable).")(func)
    func = click.option("--head", "heads", multiple=True,
                        help="fg-all, bg-all or joint-all-alpha=0 (repeatable) [all stored].")(func)
    return _common(func)


@click.command("isotropy")
@_score_options
def isotropy_command(store, radii, backbones, probe, json_out, out, heads, layers):
    """Local isotropy (Aghdam et al. Section 2.1, Figure 1): range of the true-class score
    over copies on the sphere of each radius, per head.

    \b
    featlab extract --store cache/coco --root DATA/coco --conditions isotropy:radius=1:5:10
    featlab isotropy --store cache/coco
    featlab isotropy --store cache/coco --radius 1 --head fg-all --layer penultimate
    """
    _score_command("isotropy", store, radii, backbones, probe, json_out, out, heads, layers)


@click.command("symmetry")
@_score_options
def symmetry_command(store, radii, backbones, probe, json_out, out, heads, layers):
    """Local symmetry (Aghdam et al. Section 2.2, Figure 3): range of the true-class score
    over permutations of one perturbation, per head and radius.

    \b
    featlab extract --store cache/coco --root DATA/coco --conditions symmetry:radius=1:5:10
    featlab symmetry --store cache/coco --head joint-all-alpha=0
    """
    _score_command("symmetry", store, radii, backbones, probe, json_out, out, heads, layers)


@click.command("mantel")
@_common
@click.option("--layer", "layers", multiple=True, default=("penultimate",), show_default=True,
              help="Layer (repeatable).")
@click.option("--permutations", default=999, show_default=True)
@click.option("--method", type=click.Choice(["pearson", "spearman"]), default="pearson",
              show_default=True)
@click.option("--alternative", type=click.Choice(["two-sided", "greater", "less"]),
              default="two-sided", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of the permutations.")
def mantel_command(store, radii, backbones, probe, json_out, out, layers, permutations, method,
                   alternative, seed):
    """Mantel test between the input and feature distance matrices of each image's perturbed
    copies (Aghdam et al. Section 2.3, Figure 4); p-values as scikit-bio's mantel.

    \b
    featlab mantel --store cache/coco --radius 1 --radius 10
    featlab mantel --store cache/coco --layer layer4.1.bn2 --layer penultimate --method spearman
    """
    from ..analyses.local.run import mantel
    from ..store import FeatureStore

    result = mantel(FeatureStore(store), radii=radii or None, layers=layers,
                    backbones=backbones or None, probe=probe, method=method,
                    permutations=permutations, alternative=alternative, seed=seed,
                    out_dir=_folder(store, "mantel", out))
    also_json(result, json_out)
    click.echo(f"{result['probe']}: Mantel r ({method}, {permutations} permutations) of "
               f"{result['n_samples']} images x {result['copies']} copies")
    echo_table(result["summary"], ["backbone", "layer", "radius", "n", "r_median", "r_q1", "r_q3",
                                   "fraction_p_below_0_05"])
    echo_outputs(result)


@click.command("lipschitz")
@_common
@click.option("--layer", "layers", multiple=True, default=("penultimate",), show_default=True,
              help="Layer (repeatable).")
@click.option("--per-feature", is_flag=True, help="Min-max normalize g per feature.")
@click.option("--bounds", is_flag=True, help="Also gradient-norm and CLEVER estimates "
              "(decodes the probed images and runs the heads' classifiers).")
@click.option("--head", "heads", multiple=True, help="Heads for --bounds (repeatable) [all].")
@click.option("--nb-batches", default=10, show_default=True, help="CLEVER nb_batches.")
@click.option("--batch-size", default=5, show_default=True, help="CLEVER batch_size.")
@click.option("--pool-factor", default=10, show_default=True, help="CLEVER pool_factor.")
@click.option("--clever-radius", default=5.0, show_default=True,
              help="CLEVER / gradient ball radius, 0-255 pixel units (ART radius x 255).")
@click.option("--norm", type=click.Choice(list(NORMS)), default="2", show_default=True)
@click.option("--max-samples", default=8, show_default=True, help="Images for --bounds.")
@click.option("--seed", default=0, show_default=True)
def lipschitz_command(store, radii, backbones, probe, json_out, out, layers, per_feature, bounds,
                      heads, nb_batches, batch_size, pool_factor, clever_radius, norm,
                      max_samples, seed):
    """Local Lipschitz ratios |g(phi(x+v)) - g(phi(x))| / |h(x+v) - h(x)| (Aghdam et al.
    equation 9, Figure 6), per layer and backbone; --bounds adds gradient and CLEVER estimates.

    \b
    featlab lipschitz --store cache/coco --layer layer2.1.bn2 --layer penultimate
    featlab lipschitz --store cache/coco --bounds --nb-batches 10 --batch-size 5 --norm 2
    """
    from ..analyses.local.run import lipschitz
    from ..store import FeatureStore

    options = dict(heads=heads or None, nb_batches=nb_batches, batch_size=batch_size,
                   pool_factor=pool_factor, clever_radius=clever_radius, norm=NORMS[norm],
                   max_samples=max_samples, seed=seed) if bounds else {}
    result = lipschitz(FeatureStore(store), radii=radii or None, layers=layers,
                       backbones=backbones or None, probe=probe, per_feature=per_feature,
                       out_dir=_folder(store, "lipschitz", out), bounds=bounds, **options)
    also_json(result, json_out)
    click.echo(f"{result['probe']}: local Lipschitz ratios of {result['n_samples']} images "
               f"x {result['copies']} copies x {len(result['radii'])} radii")
    echo_table(result["layers"], ["backbone", "layer", "fraction_below_one",
                                  "fraction_samples_below_one", "ratio_median"])
    if bounds:
        echo_table(result["bounds"]["rows"], ["image_id", "head", "probe_ratio_max", "gradient",
                                              "clever_pixels"])
    echo_outputs(result)
