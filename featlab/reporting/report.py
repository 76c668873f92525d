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

Data a store records but that cannot be read (a damaged part or head, an incomplete
condition: :class:`~featlab.errors.DamagedData`) is not "missing": a store whose quick check
(``featlab store info``) finds such a file is refused before any work; damage only a read
finds (bytes that do not match their checksum) marks the sections that read it
``unreadable``, the report is written, then a one-line error names what is damaged. A store
that disappears while the report reads it stops the report with one line.
"""
from __future__ import annotations

import logging
import os
import shlex

from .._version import __version__
from ..errors import CannotWrite, DamagedData, FeatlabError
from ..store import FeatureStore
from ..store.integrity import check_store
from ..store.layout import INDEX
from ..store.manifest import has_manifest
from ..utils.paths import check_output_dir, os_reason, output_errors
from ..utils.results import write_json
from ..utils.validation import enough_resamples, finite_number
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
    """The stores, each once (by resolved path: a store given twice is read once, logged)."""
    if isinstance(stores, (str, os.PathLike, FeatureStore)):
        stores = [stores]
    stores = list(stores or [])
    if not stores:
        raise FeatlabError("--store: give at least one feature store")
    out, seen = [], {}
    for s in stores:
        path = s.path if isinstance(s, FeatureStore) else str(s)
        real = os.path.realpath(path)
        if real in seen:
            log.warning("--store %s is the store %s given before; reading it once", path,
                        seen[real])
            continue
        if not isinstance(s, FeatureStore) and not os.path.isdir(s):
            raise FeatlabError(f"--store {s}: no such store (make one with featlab extract)")
        seen[real] = path
        out.append(s if isinstance(s, FeatureStore) else FeatureStore(path))
    return out


def _command_in(text: str) -> str:
    """The ``featlab ...`` command an error message suggests (up to its closing quote when
    it is quoted)."""
    at = text.find("featlab ")
    if at < 0:
        return "see the reason"
    quote = text[at - 1] if at and text[at - 1] in "'\"" else ""
    end = text.find(quote, at) if quote else -1
    return text[at:end] if end > 0 else text[at:]


def _check_intact(store) -> None:
    """Refuse (one line, before any work) a store whose quick check (file sizes, records,
    structure: what ``featlab store info`` runs) finds a damaged or missing file. The index
    is left out: opening the store rebuilt it, or reads its last one where it cannot."""
    problems = [p for p in check_store(store.path)["problems"] if p["file"] != INDEX]
    if problems:
        first = problems[0]
        raise DamagedData(f"store {store.path} has {len(problems)} problem(s), first "
                          f"{first['file']}: {first['problem']} ({first['repair']}); "
                          f"'{_verify(store)}' lists them all; repair them, then rerun "
                          f"featlab report")


def _check_present(store) -> None:
    """One line when ``store`` has gone since the report opened it."""
    if not has_manifest(store.path):
        raise FeatlabError(f"store {store.path} disappeared while the report read it (deleted "
                           f"or moved); restore it and rerun featlab report (report.html was "
                           f"not written)")


def _verify(store) -> str:
    return f"featlab store verify {shlex.quote(store.path)}"


def _build(ctx, sid, store):
    """(items, gap, problem) of one section on one store: its items, or why its data is
    missing (``gap``), or what of the store cannot be read (``problem``)."""
    name = ctx.name(store)
    try:
        return BUILDERS[sid](ctx, store), None, None
    except CannotWrite:
        raise
    except Exception as err:  # classified below when the store is still there; else raised
        _check_present(store)
        if isinstance(err, Missing):
            return [], dict(store=name, reason=err.reason, command=err.command), None
        if isinstance(err, DamagedData):
            return [], None, dict(store=name, reason=str(err), command=_verify(store))
        if isinstance(err, OSError):
            reason = f"cannot read {err.filename or store.path} ({os_reason(err)})"
            return [], None, dict(store=name, reason=reason, command=_verify(store))
        if isinstance(err, FeatlabError):
            return [], dict(store=name, reason=str(err), command=_command_in(str(err))), None
        raise


def _section(ctx, sid) -> dict:
    paper, label, title, reports = CLAIMS[sid]
    items, missing, unreadable = [], [], []
    for store in ctx.stores:
        got, gap, problem = _build(ctx, sid, store)
        name = ctx.name(store)
        items += [dict(item, store=name, alt=f"{label}: {title} ({name})") for item in got]
        missing += [gap] if gap else []
        unreadable += [problem] if problem else []
    status = "rendered" if items else "unreadable" if unreadable else "missing"
    log.info("report: %s %s", sid, status)
    return dict(id=sid, paper=paper, label=label, title=title, reports=reports,
                status=status, items=items, missing=missing, unreadable=unreadable)


def _refuse_unreadable(sections, html: str) -> None:
    """After the report is written: one line naming what of the stores could not be read."""
    problems = [p for s in sections for p in s["unreadable"]]
    if not problems:
        return
    first = problems[0]
    others = len({p["reason"] for p in problems}) - 1
    hit = sum(bool(s["unreadable"]) for s in sections)
    raise DamagedData(f"store {first['store']} holds data that cannot be read: {first['reason']}"
                      f"{f' (and {others} other problem(s))' if others else ''}; {hit} of "
                      f"{len(sections)} sections are unreadable — '{first['command']}' lists "
                      f"every problem and its repair; then rerun featlab report (the report "
                      f"with those sections marked is in {html})")


def _checked_alphas(alphas) -> list:
    alphas = sorted({finite_number(a, "--alpha", low=0, hint="; give penalty weights >= 0")
                     for a in alphas})
    if not alphas:
        raise FeatlabError("--alpha: give at least one penalty weight >= 0")
    return alphas


def report(stores, out_dir="analyses/report", *, alphas=(0.0, 0.1, 1.0, 10.0), n_boot=1000,
           seed=0, replicate=None) -> dict:
    """Write ``report.html``, ``report.pdf`` and ``report.json`` in ``out_dir``.

    Parameters
    ----------
    stores : str or FeatureStore, or a list of them — every section uses each store that
        holds its data.
    alphas : the joint heads' foreground penalties on the paper's scale (fusion paper
        Section 3.4: beside the cross-entropy summed over the N training images; Figure 5
        sweeps 0.1 to 10). Captions and ``report.json`` (``alpha_scale``) say so.
    n_boot, seed : bootstrap resamples and the seed of every random choice.
    replicate : a ``featlab replicate`` result (its folder, ``replicate.json`` or dict): adds
        the "Replication" section (per claim across seeds, forest plots). With it ``stores``
        may be empty (the report is then that section alone).

    Returns
    -------
    dict: ``html``, ``pdf``, ``json`` (paths), ``sections`` (per section: ``id``, ``paper``,
    ``label``, ``title``, ``status`` rendered|missing|unreadable, ``missing`` (store,
    reason, command that produces the data), ``unreadable`` (store, reason, the ``featlab
    store verify`` command), ``figures`` (PNG paths)).

    Raises
    ------
    FeatlabError
        on bad input, an output folder that cannot be written, or a store that disappears
        (before the report is written); :class:`~featlab.errors.DamagedData` after the
        report is written when a store holds data that cannot be read.
    """
    extra = [replication_section(replicate)] if replicate is not None else []
    stores = _open(stores) if stores or not extra else []
    alphas = _checked_alphas(alphas)
    enough_resamples(n_boot)
    for store in stores:
        _check_intact(store)
    check_output_dir(out_dir)
    with output_errors(out_dir):
        os.makedirs(out_dir, exist_ok=True)
    ctx = Context(stores, out_dir, alphas=alphas, n_boot=n_boot, seed=seed)
    with report_style():
        sections = [_section(ctx, sid) for sid in CLAIMS] if stores else []
    for store in stores:
        _check_present(store)
    sections += extra
    meta = dict(version=__version__, seed=seed)
    paths = [s.path for s in stores]
    html = write_html(os.path.join(out_dir, "report.html"), sections, paths, meta)
    pdf = write_pdf(os.path.join(out_dir, "report.pdf"), sections, paths, meta)
    summary = [dict(id=s["id"], paper=s["paper"], label=s["label"], title=s["title"],
                    status=s["status"], missing=s["missing"], unreadable=s["unreadable"],
                    figures=[i["png"] for i in s["items"] if i["kind"] == "figure"])
               for s in sections]
    result = dict(html=html, pdf=pdf, stores=paths, alphas=alphas, alpha_scale="sum", seed=seed,
                  sections=summary)
    result["json"] = write_json(os.path.join(out_dir, "report.json"), result)
    _refuse_unreadable(sections, html)
    return result
