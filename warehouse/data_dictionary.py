"""The data dictionary written with every publish (and by `shuku contracts docs`): `schemas.dictionary`
with a few example values from the lake, under the home (``docs/data-dictionary.md`` and ``.html``).
The HTML page is self-contained (inline style, no scripts, no external links), so it can be mailed or
opened from a shared drive, and shares every Shuku page's layout (it reads on a phone too).

Examples come only from core and marts columns that hold nothing personal: classified public or
internal, ``pii: none``, unmasked; a count under its ``minCellSize`` is left out. Pseudonyms,
free text typed by readers and anything confidential or restricted never appear.
"""

from __future__ import annotations

import html
from pathlib import Path

import duckdb

from schemas.dictionary import COLUMN_HEADERS, column_rows, table_facts, to_markdown
from schemas.model import Column, Contract, load_contracts
from schemas.roles import level, load_roles
from warehouse.pages import STYLE as PAGE_STYLE
from warehouse.pages import VIEWPORT, cell, head
from warehouse.settings import Settings

EXAMPLE_LAYERS = ("core", "marts")
EXAMPLES_PER_COLUMN = 3
ROWS_LOOKED_AT = 500
LONGEST_EXAMPLE = 40
STYLE = ("body{font-family:system-ui,sans-serif;margin:1em;max-width:80em}table{border-collapse:collapse;margin:.5em 0 2em}"
         "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eee}"
         "td{overflow-wrap:anywhere}.confidential{color:#a60}.restricted{color:#c00;font-weight:bold}"
         "dl{display:grid;grid-template-columns:max-content auto;gap:0 1em}dd{margin:0;min-width:0}")
ROLE_HEADERS = ("role", "clearance", "layers", "description")


def dictionary_path(settings: Settings) -> Path:
    """Where the published data dictionary is (its Markdown beside it)."""
    return settings.home / "docs" / "data-dictionary.html"


def may_show(column: Column) -> bool:
    """Whether example values of ``column`` may be printed in the dictionary."""
    return level(column.classification) <= level("internal") and column.pii == "none" and not column.masking


def _example(value, column: Column) -> str | None:
    if value is None or (column.min_cell_size and isinstance(value, int) and 0 < value < column.min_cell_size):
        return None
    if isinstance(value, float):
        text = f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= LONGEST_EXAMPLE else text[:LONGEST_EXAMPLE - 1] + "…"


def table_examples(con, contract: Contract) -> dict[str, list[str]]:
    """Up to three distinct values of each showable column, from the first rows of the table."""
    columns = [c for c in contract.columns if may_show(c)]
    if not columns:
        return {}
    select = ", ".join(f'"{c.name}"' for c in columns)
    try:
        rows = con.execute(f"SELECT {select} FROM {contract.qualified_name} LIMIT {ROWS_LOOKED_AT}").fetchall()
    except duckdb.Error:    # a table not built yet (no view, no files): no examples, the rest still documented
        return {}
    found: dict[str, list[str]] = {}
    for i, column in enumerate(columns):
        values: list[str] = []
        for row in rows:
            text = _example(row[i], column)
            if text is not None and text not in values:
                values.append(text)
                if len(values) == EXAMPLES_PER_COLUMN:
                    break
        if values:
            found[column.name] = values
    return found


def write_dictionary(settings: Settings, con) -> Path:
    """Write the dictionary with examples read through ``con`` (views over the lake); its HTML path."""
    contracts = load_contracts()
    examples = {name: table_examples(con, c) for name, c in contracts.items() if c.layer in EXAMPLE_LAYERS}
    write_docs(dictionary_path(settings).parent, contracts, examples)
    return dictionary_path(settings)


def to_html(contracts: dict[str, Contract], examples: dict[str, dict[str, list[str]]] | None = None) -> str:
    """The dictionary as one self-contained page; ``examples`` as in `schemas.dictionary.to_markdown`."""
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>", VIEWPORT,
             f"<title>Shuku data dictionary</title><style>{PAGE_STYLE}{STYLE}</style></head><body>",
             "<h1>Shuku data dictionary</h1>",
             "<p>Generated from the governance contracts and roles; do not edit by hand.</p><h2>Roles</h2>",
             "<table>", head(list(ROLE_HEADERS)), "<tbody>"]
    for role in load_roles().values():
        values = (role.name, role.clearance, ", ".join(role.layers), role.description)
        parts.append("<tr>" + "".join(cell(h, v) for h, v in zip(ROLE_HEADERS, values)) + "</tr>")
    parts.append("</tbody></table><h2>Tables</h2><ul>")
    parts += [f'<li><a href="#{e(n)}">{e(n)}</a></li>' for n in sorted(contracts)]
    parts.append("</ul>")
    for name, contract in sorted(contracts.items()):
        parts.append(f'<h2 id="{e(name)}">{e(name)}</h2><dl>')
        parts += [f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in table_facts(contract)]
        parts.append("</dl><table>" + head(list(COLUMN_HEADERS)) + "<tbody>")
        for row in column_rows(contract, (examples or {}).get(name)):
            parts.append(f'<tr class="{e(row[3])}">' + "".join(cell(h, str(v)) for h, v in zip(COLUMN_HEADERS, row))
                         + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_docs(out_dir: Path, contracts: dict[str, Contract] | None = None,
               examples: dict[str, dict[str, list[str]]] | None = None) -> list[Path]:
    """Write data-dictionary.md and data-dictionary.html into ``out_dir``, each whole or not at all
    (a temporary file renamed over the old one)."""
    contracts = load_contracts() if contracts is None else contracts
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in ((out_dir / "data-dictionary.md", to_markdown(contracts, examples)),
                       (out_dir / "data-dictionary.html", to_html(contracts, examples))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
