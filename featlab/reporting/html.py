"""The report as one self-contained HTML page: inline CSS, figures as base64 PNG, no script,
no link to anything outside the file."""
from __future__ import annotations

import html

from ..utils.paths import atomic_write_text, output_errors
from .papers import PAPERS
from .style import png_base64

CSS = """
body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #4c72b0;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}.paper{background:#eef3fa;border-left:4px solid #4c72b0;padding:.5em 1em}
.missing{background:#fff4e5;border-left:4px solid #dd8452;padding:.5em 1em}
code{background:#f4f4f4;padding:.1em .3em;font-size:.92em;word-break:break-all}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.92em;color:#333;margin-top:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.rendered{color:#2a7d2a}.missing-status{color:#b35a00}
.unreadable{background:#fde8eb;border-left:4px solid #b00020;padding:.5em 1em}
.unreadable-status{color:#b00020}
"""


def _e(text) -> str:
    return html.escape(str(text))


def _table(columns, rows) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _item(item) -> str:
    who = f"featlab measured ({_e(item['store'])}): "
    if item["kind"] == "figure":
        return (f"<figure><img src=\"{png_base64(item['png'])}\" alt=\"{_e(item['alt'])}\">"
                f"<figcaption><b>{who}</b>{_e(item['caption'])}</figcaption></figure>")
    return f"<p><b>{who}</b>{_e(item['caption'])}</p>" + _table(item["columns"], item["rows"])


def _section(s) -> str:
    parts = [f"<section id=\"{_e(s['id'])}\"><h3>{_e(s['label'])}: {_e(s['title'])}</h3>",
             f"<div class=\"paper\"><b>The paper reports:</b> {_e(s['reports'])}</div>"]
    parts += [_item(i) for i in s["items"]]
    for gap in s["missing"]:
        parts.append(f"<div class=\"missing\"><b>No data{' in ' + _e(gap['store'])}:</b> "
                     f"{_e(gap['reason'])}. Produce it with: <code>{_e(gap['command'])}</code>"
                     f"</div>")
    for bad in s["unreadable"]:
        parts.append(f"<div class=\"unreadable\"><b>Cannot read {_e(bad['store'])}:</b> "
                     f"{_e(bad['reason'])}. Check it with: <code>{_e(bad['command'])}</code>"
                     f"</div>")
    return "\n".join(parts) + "</section>"


def _summary(sections) -> str:
    rows = []
    for s in sections:
        css = "rendered" if s["status"] == "rendered" else f"{s['status']}-status"
        status = f"<span class=\"{css}\">{s['status']}</span>"
        rows.append(f"<tr><td><a href=\"#{_e(s['id'])}\">{_e(PAPERS[s['paper']].split(' (')[0])}"
                    f" — {_e(s['label'])}</a></td><td>{status}</td></tr>")
    return ("<table><thead><tr><th>section</th><th>status</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def write_html(path: str, sections: list, stores: list, meta: dict) -> str:
    """Write the page; ``sections`` as built by :func:`~.report.report`."""
    names = ", ".join(f"<code>{_e(s)}</code>" for s in stores)
    body = [f"<h1>featlab report</h1><p>Stores: {names}."
            f" featlab {_e(meta['version'])}, seed {meta['seed']}. Every number below was "
            f"measured on these stores; intervals are 95 %.</p>", _summary(sections)]
    for paper, title in PAPERS.items():
        mine = [s for s in sections if s["paper"] == paper]
        if mine:
            body.append(f"<h2>{_e(title)}</h2>")
            body += [_section(s) for s in mine]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>featlab report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    with output_errors(path):
        atomic_write_text(path, page)
    return path
