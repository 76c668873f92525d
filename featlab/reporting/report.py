"""``featlab report``: every figure and table of the four papers, measured on feature stores,
as one self-contained HTML page and the same as a PDF.

A section per figure or table (:data:`~.papers.CLAIMS`, grouped by paper): the fusion paper's
Figures 2-5, the MAT paper's Figure 4, Table 1 and random-walk matrix, the M-TLAT Tables 1-2
and the local-properties paper's Figures 1, 3, 4 and 6. Each is computed by the analysis
behind the command of the same name (``pca-shift``, ``fit-head``, ``robustness``,
``isotropy``, ``symmetry``, ``mantel``, ``lipschitz``) on every store that holds its data, and
captioned with what the paper reports and what featlab measured (95 % intervals). A section
no store supports is a box naming the command that produces its data. Heads are fitted for
the report without being saved: the stores are only read.
"""
from __future__ import annotations

import logging
import os

from .._version import __version__
from ..errors import FeatlabError
from ..store import FeatureStore
from ..utils.results import write_json
from ..utils.validation import positive_int
from . import fusion, local, robust
from .context import Context, Missing
from .html import write_html
from .papers import CLAIMS
from .pdf import write_pdf
from .replication import replication_section
from .style import report_style

log = logging.getLogger(__name__)

BUILDERS = {
    "fusion-figure-2": fusion.figure2, "fusion-figure-3": fusion.figure3,
    "fusion-figure-4": fusion.figure4, "fusion-figure-5": fusion.figure5,
    "mat-figure-4": robust.mat_figure4, "mat-table-1": robust.mat_table1,
    "mat-random-walk": robust.mat_random_walk,
    "mtlat-table-1": robust.mtlat_table1, "mtlat-table-2": robust.mtlat_table2,
    "local-figure-1": local.figure1, "local-figure-3": local.figure3,
    "local-figure-4": local.figure4, "local-figure-6": local.figure6,
}


def _open(stores) -> list:
    if isinstance(stores, (str, os.PathLike, FeatureStore)):
        stores = [stores]
    stores = list(stores or [])
    if not stores:
        raise FeatlabError("--store: give at least one feature store")
    out = []
    for s in stores:
        if isinstance(s, FeatureStore):
            out.append(s)
        elif not os.path.isdir(s):
            raise FeatlabError(f"--store {s}: no such store (make one with featlab extract)")
        else:
            out.append(FeatureStore(str(s)))
    return out


def _command_in(text: str) -> str:
    at = text.find("featlab ")
    return text[at:] if at >= 0 else "see the reason"


def _section(ctx, sid) -> dict:
    paper, label, title, reports = CLAIMS[sid]
    items, missing = [], []
    for store in ctx.stores:
        name = ctx.name(store)
        try:
            got = BUILDERS[sid](ctx, store)
        except Missing as gap:
            missing.append(dict(store=name, reason=gap.reason, command=gap.command))
            continue
        except FeatlabError as err:
            missing.append(dict(store=name, reason=str(err), command=_command_in(str(err))))
            continue
        items += [dict(item, store=name, alt=f"{label}: {title} ({name})") for item in got]
    status = "rendered" if items else "missing"
    log.info("report: %s %s", sid, status)
    return dict(id=sid, paper=paper, label=label, title=title, reports=reports,
                status=status, items=items, missing=missing)


def report(stores, out_dir="analyses/report", *, alphas=(0.0, 0.1, 1.0, 10.0), n_boot=1000,
           seed=0, replicate=None) -> dict:
    """Write ``report.html``, ``report.pdf`` and ``report.json`` in ``out_dir``.

    Parameters
    ----------
    stores : str or FeatureStore, or a list of them — every section uses each store that
        holds its data.
    alphas : the joint heads' foreground penalties (fusion paper Section 3.4, Figure 5).
    n_boot, seed : bootstrap resamples and the seed of every random choice.
    replicate : a ``featlab replicate`` result (its folder, ``replicate.json`` or dict): adds
        the "Replication" section (per claim across seeds, forest plots). With it ``stores``
        may be empty (the report is then that section alone).

    Returns
    -------
    dict: ``html``, ``pdf``, ``json`` (paths), ``sections`` (per section: ``id``, ``paper``,
    ``label``, ``title``, ``status`` rendered|missing, ``missing`` (store, reason, command
    that produces the data), ``figures`` (PNG paths)).
    """
    extra = [replication_section(replicate)] if replicate is not None else []
    stores = _open(stores) if stores or not extra else []
    alphas = sorted({float(a) for a in alphas})
    if not alphas or min(alphas) < 0:
        raise FeatlabError(f"--alpha {alphas}: give penalty weights >= 0")
    positive_int(n_boot, "--n-boot")
    os.makedirs(out_dir, exist_ok=True)
    ctx = Context(stores, out_dir, alphas=alphas, n_boot=n_boot, seed=seed)
    with report_style():
        sections = [_section(ctx, sid) for sid in CLAIMS] if stores else []
    sections += extra
    meta = dict(version=__version__, seed=seed)
    paths = [s.path for s in stores]
    html = write_html(os.path.join(out_dir, "report.html"), sections, paths, meta)
    pdf = write_pdf(os.path.join(out_dir, "report.pdf"), sections, paths, meta)
    summary = [dict(id=s["id"], paper=s["paper"], label=s["label"], title=s["title"],
                    status=s["status"], missing=s["missing"],
                    figures=[i["png"] for i in s["items"] if i["kind"] == "figure"])
               for s in sections]
    result = dict(html=html, pdf=pdf, stores=paths, alphas=alphas, seed=seed,
                  sections=summary)
    result["json"] = write_json(os.path.join(out_dir, "report.json"), result)
    return result
