"""The data dictionary, generated from the contracts and roles: one Markdown and one HTML file.

Each column says what it means, its unit (a ``unit`` custom property, else read from the naming
rules: ``_count``, ``_at``, ``_date``, ``_per_``, shares …) and, when built at publish time from
the lake (`warehouse.data_dictionary`), a few example values of the columns that hold nothing personal.

The HTML is self-contained (inline style, no scripts, no external links), so it can be mailed
or opened from a shared drive.
"""

from __future__ import annotations

import html
from pathlib import Path

from schemas.model import Column, Contract, load_contracts
from schemas.roles import load_roles, roles_seeing

COLUMN_HEADERS = ("column", "type", "required", "classification", "pii", "masking", "roles that see it", "description",
                  "unit", "examples")
# (part of a name, unit), the first that matches; types decide the rest (see `unit`).
UNIT_BY_NAME = (("utilisation", "share of seats (0-1)"), ("occupancy", "readers present"),
                ("_share", "share (0-1)"), ("_ratio", "ratio"),
                ("coverage", "share (0-1)"), ("confidence", "share (0-1)"), ("mape", "share (0-1)"),
                ("_hours_needed", "staff hours"), ("_hour", "hour of day (0-23)"), ("_days", "days"),
                ("_year", "year"), ("year", "year"), ("month", "month (1-12)"), ("weekday", "day of week (1-7)"),
                ("iso_week", "ISO week"), ("rank_change", "places"), ("rank", "rank (1 = first)"),
                ("cost", "currency, as eresource_costs.yaml lists it"), ("_pid", "pseudonym (keyed hash)"))
COUNTED_TYPES = ("BIGINT", "INTEGER", "HUGEINT", "SMALLINT")
STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:.5em 0 2em}"
         "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eee}"
         ".confidential{color:#a60}.restricted{color:#c00;font-weight:bold}"
         "dl{display:grid;grid-template-columns:max-content auto;gap:0 1em}")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g} days"


def _years(value: float | None) -> str:
    return "-" if value is None else f"{value:g} years"


def table_facts(contract: Contract) -> list[tuple[str, str]]:
    part = contract.partition_column
    return [
        ("description", contract.description or "-"),
        ("owner", contract.owner or "-"),
        ("layer", contract.layer),
        ("partitioning", f"by {contract.partitioning} on {part.name}" if part
         else (contract.partitioning or "none (whole table)")),
        ("freshness", _days(contract.freshness_days)),
        ("retention", _years(contract.retention_years)),
        ("contract", f"schemas/{contract.layer}/{contract.path.name}"),
    ]


def unit(column: Column) -> str:
    """The column's unit: its contract's ``unit`` custom property, else what its name and type say."""
    if column.custom.get("unit"):
        return str(column.custom["unit"])
    name, kind = column.name, column.physical_type.upper()
    if "_per_" in name:
        return name.replace("_", " ")
    if kind == "BOOLEAN":
        return "yes/no"
    if kind.startswith("TIMESTAMP"):
        return "date and time"
    if kind == "DATE":
        return "month (its first day)" if name.endswith("_month") else "date"
    for ending, meaning in UNIT_BY_NAME:
        if ending in name:
            return meaning
    if kind in COUNTED_TYPES and not name.endswith(("_id", "_number", "_code", "_key", "_version")):
        return "count"
    return "-"


def column_rows(contract: Contract, examples: dict[str, list[str]] | None = None) -> list[tuple[str, ...]]:
    examples = examples or {}
    return [(c.name, c.physical_type, "yes" if c.required else "no", c.classification, c.pii, c.masking or "-",
             ", ".join(roles_seeing(contract, c)) or "(none)", c.description or "-", unit(c),
             ", ".join(examples.get(c.name, [])) or "-")
            for c in contract.columns]


def to_markdown(contracts: dict[str, Contract], examples: dict[str, dict[str, list[str]]] | None = None) -> str:
    """The dictionary in Markdown; ``examples``: per ``layer.table``, a few values per column."""
    lines = ["# Shuku data dictionary", "",
             "Generated from the governance contracts (schemas/) and roles (schemas/roles.yaml); do not edit by hand.", "",
             "## Roles", "", "| role | clearance | layers | description |", "|---|---|---|---|"]
    for role in load_roles().values():
        lines.append(f"| {role.name} | {role.clearance} | {', '.join(role.layers)} | {role.description} |")
    lines.append("")
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731 - a table cell escape
    for name, contract in sorted(contracts.items()):
        lines += ["", f"## {name}", ""]
        lines += [f"- **{k}**: {cell(v)}" for k, v in table_facts(contract)]
        lines += ["", "| " + " | ".join(COLUMN_HEADERS) + " |", "|" + "---|" * len(COLUMN_HEADERS)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |"
                  for row in column_rows(contract, (examples or {}).get(name))]
    return "\n".join(lines) + "\n"


def to_html(contracts: dict[str, Contract], examples: dict[str, dict[str, list[str]]] | None = None) -> str:
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>Shuku data dictionary</title>",
             f"<style>{STYLE}</style></head><body><h1>Shuku data dictionary</h1>",
             "<p>Generated from the governance contracts and roles; do not edit by hand.</p><h2>Roles</h2>",
             "<table><tr><th>role</th><th>clearance</th><th>layers</th><th>description</th></tr>"]
    for role in load_roles().values():
        parts.append(f"<tr><td>{e(role.name)}</td><td>{e(role.clearance)}</td><td>{e(', '.join(role.layers))}</td>"
                     f"<td>{e(role.description)}</td></tr>")
    parts.append("</table><h2>Tables</h2><ul>")
    parts += [f'<li><a href="#{e(n)}">{e(n)}</a></li>' for n in sorted(contracts)]
    parts.append("</ul>")
    for name, contract in sorted(contracts.items()):
        parts.append(f'<h2 id="{e(name)}">{e(name)}</h2><dl>')
        parts += [f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in table_facts(contract)]
        parts.append("</dl><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in COLUMN_HEADERS) + "</tr>")
        for row in column_rows(contract, (examples or {}).get(name)):
            parts.append(f'<tr class="{e(row[3])}">' + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
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
