"""One look for every figure of the report: a seaborn theme applied through
``matplotlib.rc_context`` (no global state is changed, no pyplot), and the helpers that turn
a saved PNG into what the HTML page and the PDF embed."""
from __future__ import annotations

import base64
import contextlib

import matplotlib
import seaborn as sns

THEME = dict(style="whitegrid", context="notebook", palette="colorblind", font_scale=0.95)


def theme_params() -> dict:
    """rcParams of the report's seaborn theme (``sns.set_theme`` with :data:`THEME`, as a
    dict instead of a global change)."""
    params = dict(sns.axes_style(THEME["style"]))
    params.update(sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]))
    params["axes.prop_cycle"] = matplotlib.cycler(color=sns.color_palette(THEME["palette"]))
    params.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.titlesize": "medium",
                   "legend.fontsize": "small", "axes.labelsize": "medium"})
    return params


@contextlib.contextmanager
def report_style(grid: bool = True):
    """Every figure drawn inside (by the report or by an analysis it calls) gets the theme;
    ``grid=False`` for heatmaps (the same theme without grid lines across the cells)."""
    with matplotlib.rc_context(dict(theme_params(), **{"axes.grid": bool(grid)})):
        yield


def png_base64(path: str) -> str:
    """``data:`` URI of a PNG file, for an ``<img>`` that needs no network."""
    with open(path, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")
