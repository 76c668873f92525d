"""The fusion paper's Figure 2 (clean vs perturbed features in the clean PCA plane) as
``f(..., ax=None) -> ax``.

Without ``ax`` a new ``matplotlib.figure.Figure`` is made (no pyplot, no display, so nothing
depends on the interactive backend); save it with ``ax.figure.savefig("x.png")`` / ``.pdf``.
"""
from __future__ import annotations

import colorsys

import numpy as np
import seaborn as sns
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure



def _axes(ax, size=(5.0, 4.0)):
    return Figure(figsize=size).add_subplot() if ax is None else ax


def _darker(colour, factor=0.55):
    hue, lightness, saturation = colorsys.rgb_to_hls(*to_rgb(colour))
    return colorsys.hls_to_rgb(hue, lightness * factor, saturation)


def _name(class_names, label):
    if class_names is None:
        return str(label)
    try:
        return str(class_names[label])
    except (KeyError, IndexError, TypeError):
        return str(label)


def plot_pca_shift(clean_2d, perturbed_2d, labels, *, class_names=None, ax=None, title=None):
    """Figure 2: clean (small, bright) and perturbed (large, dark) 2-D features per class.

    Parameters
    ----------
    clean_2d, perturbed_2d : ndarray (n_samples, 2). Embeddings of the same images.
    labels : ndarray (n_samples,). One colour per class (seaborn "bright" palette up to its
        10 colours, evenly spaced "husl" hues beyond, so no two classes share a colour); the
        perturbed dots use a darker shade of the class colour.
    class_names : sequence or dict indexed by label, optional. Legend names.
    """
    ax = _axes(ax)
    clean_2d, perturbed_2d, labels = map(np.asarray, (clean_2d, perturbed_2d, labels))
    classes = np.unique(labels)
    palette = sns.color_palette("bright" if len(classes) <= 10 else "husl", len(classes))
    for colour, c in zip(palette, classes):
        rows = labels == c
        ax.scatter(*clean_2d[rows].T, s=8, color=colour, alpha=0.7, linewidths=0,
                   label=_name(class_names, c.item()))
        ax.scatter(*perturbed_2d[rows].T, s=36, color=_darker(colour), alpha=0.85,
                   linewidths=0)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(fontsize="small", markerscale=1.8, frameon=False, loc="best")
    if title:
        ax.set_title(title)
    return ax
