"""Figures of the local-properties study (Aghdam, Heravi & Puig): Figures 1/3, 4 and 6.

Every function takes ``ax=None`` (a new figure is made) and returns the axes.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ...errors import FeatlabError
from .lipschitz import polynomial_fits

RANGE_FLOOR = 1e-12  # ranges of exactly 0 are drawn here on the log axis


def _axes(ax):
    return Figure(figsize=(6, 4)).add_subplot() if ax is None else ax


def plot_score_range(ranges, mean_scores, misclassified, radii, ax=None, *, title=None,
                     jitter: float = 0.15, cmap="viridis"):
    """Figures 1 and 3: score range per radius on a log axis.

    Parameters
    ----------
    ranges, mean_scores : arrays of shape (n_samples, n_radii) (``isotropy.summarize``)
    misclassified : bool array of shape (n_samples, n_radii) — square markers where True
    radii : sequence of length n_radii — tick labels (radii sit at equal spacing)
    jitter : float — deterministic horizontal spread of the points of one radius
    """
    ax = _axes(ax)
    rng_, mean_, mis = (np.asarray(a) for a in (ranges, mean_scores, misclassified))
    if not (rng_.shape == mean_.shape == mis.shape) or rng_.shape[1] != len(radii):
        raise FeatlabError(f"ranges {rng_.shape}, mean_scores {mean_.shape}, misclassified "
                           f"{mis.shape} and {len(radii)} radii disagree")
    n_s, n_r = rng_.shape
    xs = np.arange(n_r)[None, :] + np.linspace(-jitter, jitter, n_s)[:, None]
    ys = np.maximum(rng_, RANGE_FLOOR)
    sc = None
    for marker, sel in (("o", ~mis.astype(bool)), ("s", mis.astype(bool))):
        if sel.any():
            sc = ax.scatter(xs[sel], ys[sel], c=mean_[sel], cmap=cmap, vmin=0, vmax=1,
                            marker=marker, s=14, edgecolors="none",
                            label="≥1 copy misclassified" if marker == "s" else None)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(n_r), [f"{r:g}" for r in radii])
    ax.set_xlabel("radius (pixels, 0-255 scale)")
    ax.set_ylabel("score range  max - min")
    if sc is not None:
        ax.figure.colorbar(sc, ax=ax, label="mean score")
    if mis.any():
        ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_mantel(r, radius, layer=None, ax=None, *, title=None):
    """Figure 4: distribution of the Mantel r across samples per radius (and layer).

    Parameters
    ----------
    r, radius : arrays of shape (n,) — one Mantel correlation per (sample, radius, layer)
    layer : array of shape (n,) of str, optional — one box per layer at each radius
    """
    import seaborn as sns

    ax = _axes(ax)
    r = np.asarray(r, dtype=float)
    ok = np.isfinite(r)
    data = {"r": r[ok], "radius": np.asarray(radius)[ok]}
    if layer is not None:
        data["layer"] = np.asarray(layer)[ok]
    sns.boxplot(data=data, x="radius", y="r", hue="layer" if layer is not None else None,
                ax=ax, fliersize=2, linewidth=0.8)
    ax.axhline(0, color="0.5", lw=0.6, ls=":")
    ax.set_xlabel("radius (pixels, 0-255 scale)")
    ax.set_ylabel("Mantel r (input vs feature distances)")
    if title:
        ax.set_title(title)
    return ax


def plot_lipschitz(input_dist, values, radius, ax=None, *, reference: float | None = 1.0,
                   ylabel: str = "local Lipschitz ratio $L_x$", title=None, cmap="coolwarm"):
    """Figure 6: ``values`` against the input distance, coloured by radius, with fits.

    Parameters
    ----------
    input_dist, values, radius : arrays of the same shape, e.g. (n_samples, T) — normalised
        input distance ``|h(x+v) - h(x)|``, the ratio (or the output distance), and the
        probe radius of each copy (colder colours: smaller radii, as in the paper)
    reference : float or None — a horizontal line (1 for ratios); None for none
    """
    ax = _axes(ax)
    x, y, c = (np.ravel(np.asarray(a, dtype=float)) for a in (input_dist, values, radius))
    if not (x.shape == y.shape == c.shape):
        raise FeatlabError("input_dist, values and radius must have the same shape")
    sc = ax.scatter(x, y, c=c, cmap=cmap, s=6, alpha=0.7, edgecolors="none")
    ax.figure.colorbar(sc, ax=ax, label="radius")
    xs = np.linspace(np.nanmin(x), np.nanmax(x), 100)
    fits = polynomial_fits(x, y, degrees=(1, 2))
    ax.plot(xs, np.polyval(fits[1], xs), color="black", lw=1.2, label="1st-order fit")
    ax.plot(xs, np.polyval(fits[2], xs), color="tab:blue", lw=1.2, label="2nd-order fit")
    if reference is not None:
        ax.axhline(reference, color="0.4", lw=0.6, ls="--")
    ax.set_xlabel("normalised input distance $|h(x+v) - h(x)|$")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
