"""DuckDB over the lake: a view per table, in ``warehouse.duckdb`` and in the in-memory
connections models and checks compute on.

The views read relative globs: every connection Shuku opens sets DuckDB's
``file_search_path`` to the home, and a plain DuckDB client finds the files when it runs in
the home folder (elsewhere it fails with "No files found", never reading another home's
files). Views that an older version wrote with absolute paths are found here and rewritten
by the next refresh.
"""

from __future__ import annotations

import logging
import os
import re
import shutil

import duckdb

from schemas.model import Contract, contract_for, load_contracts
from schemas.vocabulary import QUARANTINE
from warehouse.lake.files import put_in_place, write_beside
from warehouse.lake.locks import table_lock
from warehouse.lake.paths import data_files, partition_file, relative, table_dir
from warehouse.lake.table_state import record_states
from warehouse.settings import Settings

# A SQL string literal holding an absolute path (a view written before paths were relative).
ABSOLUTE_LITERAL = re.compile(r"'(/[^']*)'")

log = logging.getLogger("shuku.storage")

# The lock two writers of warehouse.duckdb take (its readers take none).
WAREHOUSE_LOCK = "warehouse"


def sql_string(value) -> str:
    """A value (a path, a key) as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def partition_filter(contract: Contract, keys: list[str]) -> str:
    """SQL that keeps the rows of a partitioned table's partitions ``keys`` (their folder values)."""
    part = contract.partition_column
    listed = ", ".join(f"CAST({sql_string(key)} AS {part.physical_type})" for key in keys)
    return f'"{part.name}" IN ({listed})'


def duckdb_config(settings: Settings) -> dict[str, str]:
    """Connection settings that make the views' relative globs read the current home's files."""
    if "," in str(settings.home):
        raise ValueError(f"{settings.home}: DuckDB's file_search_path cannot hold a folder whose name has a comma; "
                         "move the home folder (SHUKU_HOME) to a path without one.")
    return {"file_search_path": str(settings.home)}


def views_with_absolute_paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``layer.table`` of each view that reads a file by an absolute path (written by an older
    version, or in another home): they are to be created again with relative paths."""
    rows = con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    return sorted(f"{schema}.{view}" for schema, view, sql in rows if sql and ABSOLUTE_LITERAL.search(sql))


def _glob(settings: Settings, contract: Contract) -> str:
    """The table's files, relative to the home (read through the connection's file_search_path)."""
    return f"{relative(settings, table_dir(settings, contract))}/**/*.parquet"


def has_data(settings: Settings, contract: Contract) -> bool:
    return next(data_files(settings, contract), None) is not None


def view_sql(settings: Settings, contract: Contract, days: list[str] | None = None) -> str:
    """``CREATE OR REPLACE VIEW`` for a table: over its files, or typed and empty when it has none.
    ``days``: only those partitions of a partitioned table (a model built day by day)."""
    columns = ", ".join(f'"{c.name}"' for c in contract.columns)
    files = []
    if days is not None:
        part = contract.partition_column
        files = [p for p in (partition_file(settings, contract, d) for d in days) if p.exists()]
    if files:
        types = f"'{part.name}': {part.physical_type}"
        listed = ", ".join(sql_string(relative(settings, f)) for f in files)
        return (f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {columns} FROM read_parquet("
                f"[{listed}], hive_partitioning = true, hive_types = {{{types}}}, union_by_name = true)")
    if days is None and has_data(settings, contract):
        hive_cols = [c for c in contract.columns if c.partitioned]
        if contract.layer == QUARANTINE:
            hive = "hive_partitioning = true, hive_types = {'staging_table': VARCHAR, 'partition_key': VARCHAR}"
        elif hive_cols:
            types = ", ".join(f"'{c.name}': {c.physical_type}" for c in hive_cols)
            hive = f"hive_partitioning = true, hive_types = {{{types}}}"
        else:
            hive = "hive_partitioning = false"
        source = f"read_parquet({sql_string(_glob(settings, contract))}, {hive}, union_by_name = true)"
        return f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {columns} FROM {source}"
    typed = ", ".join(f'CAST(NULL AS {c.physical_type}) AS "{c.name}"' for c in contract.columns)
    return f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {typed} WHERE false"


def create_views(con: duckdb.DuckDBPyConnection, settings: Settings, contracts: list[Contract] | None = None) -> None:
    """Create the schemas and a view per table on ``con``."""
    contracts = list(load_contracts().values()) if contracts is None else contracts
    for schema in sorted({c.layer for c in contracts}):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for contract in contracts:
        con.execute(view_sql(settings, contract))


def compute_connection(settings: Settings, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table (or per named ``layer.table``): models compute
    here, never holding warehouse.duckdb. Naming the tables saves binding every other view."""
    try:
        settings.duckdb_temp.mkdir(parents=True, exist_ok=True)     # DuckDB makes only its last level
    except OSError:
        pass                                                       # a read-only home: reading spills nothing
    con = duckdb.connect(":memory:", config={"threads": os.cpu_count() or 2,
                                              "memory_limit": settings.duckdb_memory_limit,
                                              "temp_directory": str(settings.duckdb_temp),
                                              **duckdb_config(settings)})
    con.execute("SET TimeZone = 'UTC'")
    create_views(con, settings, None if tables is None else [contract_for(t) for t in dict.fromkeys(tables)])
    return con


def files_connection(settings: Settings, tables: list[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view over the files of each named table (``layer.table``) that
    has any, its columns those of its files: for reading a small unpartitioned log (check results,
    ingest log) without loading its contract. A table without files has no view: ask first."""
    con = duckdb.connect(":memory:", config=duckdb_config(settings))
    con.execute("SET TimeZone = 'UTC'")
    for name in dict.fromkeys(tables):
        if next(data_files(settings, name), None) is None:
            continue
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {name.split('.')[0]}")
        glob = sql_string(f"{relative(settings, table_dir(settings, name))}/**/*.parquet")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({glob}, hive_partitioning = false, "
                    "union_by_name = true)")
    return con


def refresh_warehouse_views(settings: Settings, contracts: list[Contract] | None = None) -> None:
    """Refresh views in ``warehouse.duckdb``: a copy of it is changed and renamed over it (under its
    lock, so two runs never lose each other's views), so a client holding the old file open, even
    for days, never makes a run wait or fail; it keeps reading its snapshot until it reconnects.

    Views with absolute paths (an older home, or a copy of one) are all created again, relative."""
    final = settings.warehouse_db

    refreshed = contracts

    def write(tmp) -> None:
        nonlocal refreshed
        if final.exists():
            shutil.copyfile(final, tmp)
        con = duckdb.connect(str(tmp), config=duckdb_config(settings))
        try:
            if refreshed is not None and views_with_absolute_paths(con):
                log.info("%s: views with absolute paths (an older or copied home); creating every view again.", final)
                refreshed = None
            create_views(con, settings, refreshed)
            con.execute("CHECKPOINT")
        finally:
            con.close()

    with table_lock(settings, WAREHOUSE_LOCK):
        tmp = write_beside(final, write)
        try:
            put_in_place(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        con = duckdb.connect(":memory:", config=duckdb_config(settings))
        try:
            record_states(settings, list(load_contracts().values()) if refreshed is None else refreshed, con)
        finally:
            con.close()
