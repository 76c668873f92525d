"""The same report as a PDF, drawn by matplotlib alone (``PdfPages``; no browser): a summary
page, then per section its page(s): the paper's claim, each figure (the same PNG as the HTML
page) or table with what featlab measured, or the box saying which command produces it."""
from __future__ import annotations

import os
import textwrap

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.image import imread

from ..utils.paths import output_errors
from .papers import PAPERS

A4 = (8.27, 11.69)
COLOURS = {"rendered": "#2a7d2a", "missing": "#b35a00", "unreadable": "#b00020"}
WRAP = 105


def _page(title: str):
    fig = Figure(figsize=A4)
    fig.text(0.06, 0.97, textwrap.fill(title, 80), fontsize=11, weight="bold", va="top")
    return fig


def _text(fig, y, text, *, size=8.5, colour="#222", box=None, width=WRAP) -> float:
    """Wrapped text from height ``y`` (figure fraction) down; returns the next free height."""
    lines = textwrap.fill(str(text), width=width).count("\n") + 1
    fig.text(0.06, y, textwrap.fill(str(text), width=width), fontsize=size, va="top",
             color=colour, bbox=box, wrap=False)
    return y - lines * size * 1.45 / 72 / A4[1] - 0.012


def _figure(fig, y, item) -> float:
    image = imread(item["png"])
    h, w = image.shape[:2]
    width = 0.88
    height = min(width * h / w * A4[0] / A4[1], y - 0.22)
    ax = fig.add_axes((0.06, y - height, width, height))
    ax.imshow(image)
    ax.set_axis_off()
    return _text(fig, y - height - 0.015,
                 f"featlab measured ({item['store']}): {item['caption']}")


def _table(fig, y, item) -> float:
    y = _text(fig, y, f"featlab measured ({item['store']}): {item['caption']}")
    n = len(item["rows"]) + 1
    height = min(0.022 * n, y - 0.05)
    ax = fig.add_axes((0.06, y - height, 0.88, height))
    ax.set_axis_off()
    grid = ax.table(cellText=item["rows"], colLabels=item["columns"], loc="upper left",
                    bbox=(0, 0, 1, 1), cellLoc="left")
    grid.auto_set_font_size(False)
    grid.set_fontsize(6 if len(item["columns"]) > 6 else 7)
    return y - height - 0.03


def _section_pages(pdf, s):
    title = f"{PAPERS[s['paper']].split(' (')[0]} — {s['label']}: {s['title']}"
    fig = _page(title)
    y = _text(fig, 0.925, f"The paper reports: {s['reports']}", colour="#1f3b66",
              box=dict(facecolor="#eef3fa", edgecolor="#4c72b0", pad=4))
    for gap in s["missing"]:
        y = _text(fig, y - 0.01, f"No data in {gap['store']}: {gap['reason']}. Produce it with: "
                  f"{gap['command']}", box=dict(facecolor="#fff4e5", edgecolor="#dd8452", pad=4))
    for bad in s["unreadable"]:
        y = _text(fig, y - 0.01, f"Cannot read {bad['store']}: {bad['reason']}. Check it with: "
                  f"{bad['command']}", box=dict(facecolor="#fde8eb", edgecolor="#b00020", pad=4))
    for item in s["items"]:
        if y < 0.45:
            pdf.savefig(fig)
            fig, y = _page(title + " (continued)"), 0.925
        y = _figure(fig, y, item) if item["kind"] == "figure" else _table(fig, y, item)
    pdf.savefig(fig)


def write_pdf(path: str, sections: list, stores: list, meta: dict) -> str:
    """Write the PDF (no timestamps, so the same report gives the same bytes)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with output_errors(path):
            _pages(tmp, sections, stores, meta)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _pages(tmp: str, sections: list, stores: list, meta: dict) -> None:
    with PdfPages(tmp, metadata={"CreationDate": None, "Producer": None}) as pdf:
        fig = _page("featlab report")
        y = _text(fig, 0.93, f"Stores: {', '.join(stores)}. featlab {meta['version']}, seed "
                  f"{meta['seed']}. Every number was measured on these stores; intervals are "
                  f"95 %.")
        for s in sections:
            y = _text(fig, y, f"[{s['status']}] {PAPERS[s['paper']].split(' (')[0]} — "
                      f"{s['label']}: {s['title']}", size=9,
                      colour=COLOURS[s["status"]])
        pdf.savefig(fig)
        for s in sections:
            _section_pages(pdf, s)
