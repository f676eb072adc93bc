"""The state of each table as it was last written, in one small record (``table_state.json``):
rows, newest partition, and of a quarantine the lines per staging table and reason.

`shuku status` reads this record instead of the lake: a year of a university's partitions is
thousands of files, and counting them at every look took seconds. The record is updated where
the views are refreshed after every write (`warehouse.lake.views.refresh_warehouse_views`),
under the warehouse's lock, so it says what the views show. A home without it (written by an
older version) is read from the lake once more by `shuku status`, until the next run writes it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from schemas.model import Contract, load_contracts
from schemas.vocabulary import DATA_LAYERS, QUARANTINE
from warehouse.lake.files import write_text_atomic
from warehouse.lake.paths import data_files, partition_end, partition_files, relative
from warehouse.settings import Settings

# Bumped when a table's entry changes its keys: an older record is then read as absent.
VERSION = 1


def state_path(settings: Settings) -> Path:
    return settings.home / "table_state.json"


def read_states(settings: Settings) -> dict[str, dict] | None:
    """``layer.table`` → its entry, or None when the home has no (readable, current) record."""
    try:
        record = json.loads(state_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(record.get("tables"), dict):
        return None
    return record["tables"]


def _files_list(settings: Settings, files: list[Path]) -> str:
    return "[" + ", ".join("'" + relative(settings, f).replace("'", "''") + "'" for f in files) + "]"


def table_entry(settings: Settings, contract: Contract, con: duckdb.DuckDBPyConnection) -> dict:
    """What the record keeps of one table, read from its files' footers (rows) and folder names
    (partitions); of a quarantine, its lines by staging table and reason. ``con`` resolves the
    home's relative paths (its file_search_path)."""
    files = sorted(data_files(settings, contract))
    rows = 0
    if files:
        rows = con.execute(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({_files_list(settings, files)})"
                           ).fetchone()[0]
    entry = {"layer": contract.layer, "rows": int(rows), "files": len(files), "partitioning": contract.partitioning,
             "freshness_days": contract.freshness_days, "newest": None, "covers_until": None,
             "written_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if contract.partition_column is not None and rows:
        keys = sorted(partition_files(settings, contract))
        if keys:
            entry["newest"] = keys[-1]
            try:
                entry["covers_until"] = partition_end(keys[-1], contract.partitioning).isoformat()
            except ValueError:
                pass                                   # a key that is no date: no staleness to tell
    if contract.layer == QUARANTINE:
        by_table: dict[str, dict[str, int]] = {}
        if files:
            for table, reason, count in con.execute(
                    f"SELECT staging_table, reason, count(*) FROM read_parquet({_files_list(settings, files)}, "
                    "hive_partitioning = true, hive_types = {'staging_table': VARCHAR, 'partition_key': VARCHAR}, "
                    "union_by_name = true) GROUP BY ALL ORDER BY ALL").fetchall():
                by_table.setdefault(f"staging.{table}", {})[reason] = int(count)
        entry["quarantined"] = by_table
    return entry


def record_states(settings: Settings, contracts: list[Contract], con: duckdb.DuckDBPyConnection) -> None:
    """Update the record's entries of ``contracts`` (those of data layers and quarantine); the
    caller holds the warehouse's lock. A home without a record gets every table's entry then."""
    kept = [c for c in contracts if c.layer in (*DATA_LAYERS, QUARANTINE)]
    if not kept:
        return
    tables = read_states(settings)
    if tables is None:
        tables = {}
        kept = [c for c in load_contracts().values() if c.layer in (*DATA_LAYERS, QUARANTINE)]
    for contract in kept:
        tables[contract.qualified_name] = table_entry(settings, contract, con)
    write_text_atomic(state_path(settings), json.dumps({"version": VERSION, "tables": dict(sorted(tables.items()))},
                                                       indent=1))
