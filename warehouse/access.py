"""Per-role published databases: `access/<role>.duckdb`, holding only what the role may see.

Each file holds real tables (copies, not views onto the lake), so it is self-contained and
can be opened in any DuckDB client. It is built as a new hidden file and renamed over the
old one, so a reader holding the old file is never locked out and never sees half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.contracts import Contract, load_contracts
from warehouse.disclosure import protects, suppress
from warehouse.roles import load_roles, role_named, visible_columns
from warehouse.settings import Settings
from warehouse.storage import compute_connection, fsync_dir, table_lock


@dataclass(frozen=True)
class PublishedRole:
    role: str
    path: Path
    tables: dict[str, int]          # layer.table → rows copied
    bytes: int
    suppressed: dict[str, int] = field(default_factory=dict)   # layer.table → cells hidden by disclosure control


def role_database(settings: Settings, role: str) -> Path:
    return settings.access_dir / f"{role}.duckdb"


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def publish_role(settings: Settings, role: str, contracts: dict[str, Contract] | None = None,
                 con=None) -> PublishedRole:
    """Write ``access/<role>.duckdb`` from the lake: per visible table, its visible columns.

    Under the role database's lock: two publishes of one role never share its temporary file.
    """
    with table_lock(settings, f"access.{role}"):
        return _publish_role(settings, role, contracts, con)


def _publish_role(settings: Settings, role: str, contracts: dict[str, Contract] | None, con) -> PublishedRole:
    contracts = load_contracts() if contracts is None else contracts
    final = role_database(settings, role)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{role}.duckdb.tmp"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    own = con is None
    con = compute_connection(settings) if own else con
    tables, suppressed = {}, {}
    suppressing = role_named(role).suppress_small_cells
    try:
        con.execute(f"ATTACH {_quoted(tmp)} AS published")
        try:
            for name, contract in sorted(contracts.items()):
                columns = visible_columns(role, contract)
                if not columns:
                    continue
                con.execute(f"CREATE SCHEMA IF NOT EXISTS published.{contract.layer}")
                select = ", ".join(f'"{c.name}"' for c in columns)
                if suppressing and protects(contract):
                    frame, report = suppress(con.sql(f"SELECT {select} FROM {name}").pl(), contract)
                    suppressed[name] = report.primary + report.secondary + report.derived
                    con.register("suppressed_frame", frame)
                    con.execute(f"CREATE TABLE published.{name} AS SELECT {select} FROM suppressed_frame")
                    con.unregister("suppressed_frame")
                else:
                    con.execute(f"CREATE TABLE published.{name} AS SELECT {select} FROM {name}")
                tables[name] = con.execute(f"SELECT count(*) FROM published.{name}").fetchone()[0]
            con.execute("CHECKPOINT published")
        finally:
            con.execute("DETACH published")
    finally:
        if own:
            con.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return PublishedRole(role=role, path=final, tables=tables, bytes=final.stat().st_size, suppressed=suppressed)


def publish(settings: Settings) -> list[PublishedRole]:
    """Publish every role declared in schemas/roles.yaml."""
    contracts = load_contracts()
    con = compute_connection(settings)
    try:
        return [publish_role(settings, role, contracts, con) for role in load_roles()]
    finally:
        con.close()
