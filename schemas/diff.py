"""Compare two versions of the contracts and say which changes break the people who read the tables.

Breaking: a table or column removed, a type changed, a column made required (or a required
column added), a classification lowered, allowed values narrowed, masking removed or a pii
level lowered, the partitioning or primary key changed. Everything else (a nullable column
added, a description changed, a classification raised, allowed values widened…) is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.model import Column, Contract, load_contract
from schemas.roles import level

PII_ORDER = ("none", "quasi", "direct")


@dataclass(frozen=True)
class Change:
    table: str
    column: str | None
    kind: str
    breaking: bool
    message: str


def _load(path: Path) -> dict[str, Contract]:
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("*.odcs.yaml"))
    if not files:
        raise ValueError(f"{path}: no *.odcs.yaml contract files found; give a contract file or a folder of them.")
    return {c.qualified_name: c for c in map(load_contract, files)}


def _pii_rank(value: str) -> int:
    return PII_ORDER.index(value) if value in PII_ORDER else 0


def _column_changes(table: str, old: Column, new: Column) -> list[Change]:
    out = []

    def add(kind: str, breaking: bool, message: str) -> None:
        out.append(Change(table, new.name, kind, breaking, message))

    if old.physical_type != new.physical_type:
        add("type changed", True, f"type {old.physical_type} → {new.physical_type}")
    if new.required and not old.required:
        add("required added", True, "now required (writers must fill it)")
    if old.required and not new.required:
        add("required dropped", False, "no longer required (readers may now see nulls)")
    if old.classification != new.classification:
        lowered = level(new.classification) < level(old.classification)
        add("classification lowered" if lowered else "classification raised", lowered,
            f"classification {old.classification} → {new.classification}")
    if old.allowed_values is not None and new.allowed_values != old.allowed_values:
        removed = set(old.allowed_values) - set(new.allowed_values or ())
        added = set(new.allowed_values or ()) - set(old.allowed_values)
        if new.allowed_values is not None and removed:
            add("enum narrowed", True, f"allowed values no longer include {', '.join(sorted(removed))}")
        elif added or new.allowed_values is None:
            add("enum widened", False, f"allowed values widened ({', '.join(sorted(added)) or 'any value'})")
    elif old.allowed_values is None and new.allowed_values is not None:
        add("enum added", True, f"now limited to {', '.join(new.allowed_values)}")
    if old.masking and not new.masking:
        add("masking removed", True, f"masking {old.masking} removed")
    elif old.masking != new.masking:
        add("masking changed", False, f"masking {old.masking} → {new.masking}")
    if _pii_rank(new.pii) < _pii_rank(old.pii):
        add("pii lowered", True, f"pii {old.pii} → {new.pii}")
    elif new.pii != old.pii:
        add("pii raised", False, f"pii {old.pii} → {new.pii}")
    if old.description != new.description:
        add("description changed", False, "description changed")
    if old.options != new.options:
        add("options changed", False, f"logicalTypeOptions {old.options} → {new.options}")
    return out


def diff(old: dict[str, Contract], new: dict[str, Contract]) -> list[Change]:
    """Every change from ``old`` to ``new``, table by table, column by column."""
    changes = []
    for name in sorted(set(old) - set(new)):
        changes.append(Change(name, None, "table removed", True, "table removed"))
    for name in sorted(set(new) - set(old)):
        changes.append(Change(name, None, "table added", False, "table added"))
    for name in sorted(set(old) & set(new)):
        a, b = old[name], new[name]
        if a.partitioning != b.partitioning:
            changes.append(Change(name, None, "partitioning changed", True,
                                  f"partitioning {a.partitioning} → {b.partitioning}"))
        if a.primary_key != b.primary_key:
            changes.append(Change(name, None, "primary key changed", True, f"primary key {a.primary_key} → {b.primary_key}"))
        if a.description != b.description:
            changes.append(Change(name, None, "description changed", False, "table description changed"))
        for attr, label in (("owner", "owner"), ("freshness_days", "freshness"), ("retention_years", "retention")):
            if getattr(a, attr) != getattr(b, attr):
                changes.append(Change(name, None, f"{label} changed", False,
                                      f"{label} {getattr(a, attr)} → {getattr(b, attr)}"))
        old_cols = {c.name: c for c in a.columns}
        new_cols = {c.name: c for c in b.columns}
        for col in a.columns:
            if col.name not in new_cols:
                changes.append(Change(name, col.name, "column removed", True, "column removed"))
            else:
                changes += _column_changes(name, col, new_cols[col.name])
        for col in b.columns:
            if col.name not in old_cols:
                if col.required:
                    changes.append(Change(name, col.name, "required column added", True,
                                          f"required column added ({col.physical_type}); writers must fill it"))
                else:
                    changes.append(Change(name, col.name, "column added", False,
                                          f"nullable column added ({col.physical_type}, {col.classification})"))
    return changes


def diff_paths(old: Path, new: Path) -> list[Change]:
    """Compare two contract files, or two folders of them."""
    return diff(_load(old), _load(new))
