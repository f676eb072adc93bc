"""The data dictionary, generated from the contracts and roles: one Markdown and one HTML file.

Each column says what it means, its unit (a ``unit`` custom property, else read from the naming
rules: ``_count``, ``_at``, ``_date``, ``_per_``, shares …) and, when built at publish time from
the lake (`warehouse.data_dictionary`), a few example values of the columns that hold nothing personal.

The Markdown is written here; its HTML page, with the style every Shuku page shares, by
`warehouse.data_dictionary`.
"""

from __future__ import annotations

from schemas.model import Column, Contract
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
