"""Small HTML primitives for a static page: escaped text, tables with classed cells, the page shell and CSS.

No template engine and no JavaScript: the page is a plain file that opens anywhere, including from a CI
artifact or a results repository.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Td:
    """A table cell: text (escaped unless ``raw``), a CSS class, a tooltip, a column span."""

    text: object
    cls: str = ""
    title: str = ""
    colspan: int = 1
    raw: bool = False

    def render(self, tag: str = "td") -> str:
        attributes = ""
        if self.cls:
            attributes += f' class="{esc(self.cls)}"'
        if self.title:
            attributes += f' title="{esc(self.title)}"'
        if self.colspan > 1:
            attributes += f' colspan="{self.colspan}"'
        body = str(self.text) if self.raw else esc(self.text)
        return f"<{tag}{attributes}>{body}</{tag}>"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def cell(value: object) -> Td:
    return value if isinstance(value, Td) else Td(value, cls="muted" if value == "not measured" else "")


def table(headers: Iterable[object], rows: Iterable[Iterable[object]], cls: str = "") -> str:
    head = "".join(cell(h).render("th") for h in headers)
    body = "\n".join("<tr>" + "".join(cell(v).render() for v in row) + "</tr>" for row in rows)
    class_attribute = f' class="{esc(cls)}"' if cls else ""
    return f"<table{class_attribute}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def key_values(pairs: Iterable[tuple[object, object]]) -> str:
    rows = "\n".join(f"<tr><th>{esc(k)}</th>{cell(v).render()}</tr>" for k, v in pairs)
    return f'<table class="kv">\n{rows}\n</table>'


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    return f'<section id="{esc(anchor)}">\n<h{level}>{esc(title)}</h{level}>\n{body}\n</section>'


def figure(src: str, caption: str) -> str:
    return f'<figure><img src="{esc(src)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def paragraph(text: str, cls: str = "") -> str:
    class_attribute = f' class="{esc(cls)}"' if cls else ""
    return f"<p{class_attribute}>{esc(text)}</p>"


def bullets(items: Iterable[str], raw: bool = False) -> str:
    return "<ul>" + "".join(f"<li>{item if raw else esc(item)}</li>" for item in items) + "</ul>"


def anchor_id(*parts: object) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in str(p)).strip("-") for p in parts).lower()


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212121; margin: 0 auto;
       max-width: 1280px; padding: 0 24px 48px; }
h1 { font-size: 1.6em; margin-top: 1.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px;
margin-top: 2em; } h3 { margin-top: 1.5em; } h4 { margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #e0e0e0; padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #f5f5f5; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { background: #fafafa; font-weight: 600; width: 14em; }
tr.group td { background: #eef3f8; font-weight: 600; }
.muted { color: #9e9e9e; } .rank1 { font-weight: 700; } .small { font-size: 11px; }
.failed, .WRONG-DATA, .hang, .crash { background: #ffebee; color: #b71c1c; font-weight: 600; }
.unavailable, .skipped, .unsupported { background: #f5f5f5; color: #616161; }
p.summary { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 12px; }
.exact { background: #e8f5e9; color: #1b5e20; } .clear-error { background: #fff8e1; color: #8d6e00; }
.alert { border: 2px solid #c62828; background: #ffebee; padding: 8px 14px; margin: 1em 0; }
.alert strong { color: #b71c1c; } .note { background: #f9fbe7; border-left: 4px solid #c0ca33;
padding: 6px 12px; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #616161; } details { margin: 1em 0; } summary { cursor: pointer; }
nav ul { columns: 2; } code { background: #f5f5f5; padding: 0 3px; }
"""


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
