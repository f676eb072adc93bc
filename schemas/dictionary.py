"""The data dictionary, generated from the contracts and roles: one Markdown and one HTML file.

The HTML is self-contained (inline style, no scripts, no external links), so it can be mailed
or opened from a shared drive.
"""

from __future__ import annotations

import html
from pathlib import Path

from schemas.model import Contract, load_contracts
from schemas.roles import load_roles, roles_seeing

COLUMN_HEADERS = ("column", "type", "required", "classification", "pii", "masking", "roles that see it", "description")
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


def column_rows(contract: Contract) -> list[tuple[str, ...]]:
    return [(c.name, c.physical_type, "yes" if c.required else "no", c.classification, c.pii, c.masking or "-",
             ", ".join(roles_seeing(contract, c)) or "(none)", c.description or "-")
            for c in contract.columns]


def to_markdown(contracts: dict[str, Contract]) -> str:
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
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in column_rows(contract)]
    return "\n".join(lines) + "\n"


def to_html(contracts: dict[str, Contract]) -> str:
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
        for row in column_rows(contract):
            parts.append(f'<tr class="{e(row[3])}">' + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_docs(out_dir: Path, contracts: dict[str, Contract] | None = None) -> list[Path]:
    """Write data-dictionary.md and data-dictionary.html into ``out_dir``."""
    contracts = load_contracts() if contracts is None else contracts
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "data-dictionary.md", out_dir / "data-dictionary.html"
    md.write_text(to_markdown(contracts), encoding="utf-8")
    page.write_text(to_html(contracts), encoding="utf-8")
    return [md, page]
