"""The lake: Parquet files, Hive-partitioned, written atomically, with DuckDB views over them.

Layout under the home folder:
  lake/<layer>/<table>/<partition_column>=<key>/part-0.parquet   (partitioned tables)
  lake/<layer>/<table>/part-0.parquet                           (whole tables)
  quarantine/<source>/staging_table=<t>/partition_key=<k>/part-0.parquet
A file is written to a hidden temporary name in its final folder, flushed, then renamed
over the old one, so a reader sees the old partition or the new one, never half of one.
The partition column lives in the folder name, not in the file (readers get it back
through hive partitioning, typed from the contract).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb
import polars as pl

from warehouse.contracts import Contract, load_contracts
from warehouse.settings import Settings

PART_FILE = "part-0.parquet"
TMP_PREFIX = ".tmp-"


def partition_date(key: str, partitioning: str) -> dt.date:
    """The date a partition key stands for, as its folder is named: a day, or a month's first day."""
    return dt.date.fromisoformat(key if partitioning == "day" else f"{key}-01")


def table_dir(settings: Settings, contract: Contract) -> Path:
    if contract.layer == "quarantine":
        return settings.quarantine / contract.table
    return settings.lake / contract.layer / contract.table


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` to ``path`` through a temporary file and a rename. Returns bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet"
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path.stat().st_size


def partition_path(base: Path, parts: dict[str, str]) -> Path:
    for key, value in parts.items():
        base = base / f"{key}={value}"
    return base / PART_FILE


def write_partition(settings: Settings, contract: Contract, key: str | None, frame: pl.DataFrame) -> Path:
    """Replace one partition (or the whole table when ``key`` is None) with ``frame``."""
    base = table_dir(settings, contract)
    part = contract.partition_column
    if part is None:
        path = base / PART_FILE
        write_parquet_atomic(frame, path)
    else:
        path = partition_path(base, {part.name: key})
        write_parquet_atomic(frame.drop(part.name), path)
    clean_temp_files(path.parent)
    return path


def write_table(settings: Settings, contract: Contract, frame: pl.DataFrame) -> Path:
    return write_partition(settings, contract, None, frame)


def clean_temp_files(folder: Path, older_than_s: float = 0) -> int:
    """Remove temporary files a crashed writer left behind in ``folder``."""
    removed = 0
    now = time.time()
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        if now - tmp.stat().st_mtime >= older_than_s:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _glob(settings: Settings, contract: Contract) -> str:
    return str(table_dir(settings, contract) / "**" / "*.parquet")


def has_data(settings: Settings, contract: Contract) -> bool:
    base = table_dir(settings, contract)
    return base.exists() and any(p for p in base.rglob("*.parquet") if not p.name.startswith(TMP_PREFIX))


def view_sql(settings: Settings, contract: Contract) -> str:
    """``CREATE OR REPLACE VIEW`` for a table: over its files, or typed and empty when it has none."""
    columns = ", ".join(f'"{c.name}"' for c in contract.columns)
    if has_data(settings, contract):
        hive_cols = [c for c in contract.columns if c.partitioned]
        if contract.layer == "quarantine":
            hive = "hive_partitioning = true, hive_types = {'staging_table': VARCHAR, 'partition_key': VARCHAR}"
        elif hive_cols:
            types = ", ".join(f"'{c.name}': {c.physical_type}" for c in hive_cols)
            hive = f"hive_partitioning = true, hive_types = {{{types}}}"
        else:
            hive = "hive_partitioning = false"
        path = _glob(settings, contract).replace("'", "''")
        source = f"read_parquet('{path}', {hive}, union_by_name = true)"
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
    con = duckdb.connect(":memory:", config={"threads": os.cpu_count() or 2})
    con.execute("SET TimeZone = 'UTC'")
    contracts = load_contracts()
    create_views(con, settings, None if tables is None else [contracts[t] for t in dict.fromkeys(tables)])
    return con


def refresh_warehouse_views(settings: Settings, contracts: list[Contract] | None = None,
                            attempts: int = 40, wait_s: float = 0.25) -> None:
    """Refresh views in ``warehouse.duckdb`` in one short write, waiting while another process holds it."""
    settings.warehouse_db.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            con = duckdb.connect(str(settings.warehouse_db))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                raise RuntimeError(
                    f"{settings.warehouse_db}: held by another process for {attempts * wait_s:.0f} s "
                    "(a DuckDB client left open?); close it and re-run.") from exc
            time.sleep(wait_s)
            continue
        try:
            create_views(con, settings, contracts)
        finally:
            con.close()
        return


def copy_query_to_parquet(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    """Run ``sql`` and write its result to ``path`` atomically (DuckDB's own Parquet writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet"
    try:
        con.execute(f"COPY ({sql}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet, COMPRESSION zstd)")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_table(settings: Settings, contract: Contract) -> None:
    shutil.rmtree(table_dir(settings, contract), ignore_errors=True)
