"""What every HTML page Shuku writes shares so it reads on a desk screen and on a phone: the
viewport, long words that wrap instead of pushing the page wider (break-word, not anywhere: a
table column keeps its words whole), and tables that turn into
labelled cards on a narrow screen (each cell says which column it is, from ``data-label``)."""

from __future__ import annotations

import html

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
NARROW = 640  # px: below this, tables are shown one card per row

STYLE = f"""
*,*::before,*::after{{box-sizing:border-box}}
body{{overflow-wrap:break-word}}
img,svg{{max-width:100%}}
table{{max-width:100%}}
@media (max-width:{NARROW}px){{
  table,table tbody,table tr,table td{{display:block;width:100%}}
  table thead{{display:none}}
  table tr{{border:1px solid #ccc;margin:0 0 .6rem}}
  table td{{border:none;border-bottom:1px dotted #ddd;text-align:right;min-height:1.6em}}
  table td::before{{content:attr(data-label);float:left;font-weight:600;text-align:left;padding-right:.6em}}
}}
"""


def head(headers: list[str]) -> str:
    """A table's header row (in ``thead``, which the cards leave out)."""
    return "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>"


def labelled(label: str, inner: str, attrs: str = "") -> str:
    """One table cell (``inner`` is HTML already) that names its column when the table is shown as cards."""
    return f'<td data-label="{html.escape(label, quote=True)}"{attrs}>{inner}</td>'


def cell(label: str, text: str) -> str:
    return labelled(label, html.escape(text))
