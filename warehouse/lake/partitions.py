"""Replacing a table's partitions (or a whole table), under its lock, and keeping each file's checksum.

Re-running a partition replaces it; nothing is appended twice. A partition can be staged
beside the one it replaces, under a hidden name no view reads, checked, and only then
published (write, audit, publish). Every partition file written is recorded, SHA-256 and
size, in meta.file_checksums (`warehouse.integrity` compares the files with them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from schemas.model import Contract
from warehouse.lake.files import (clean_temp_files, fsync_dir, os_error_in, put_in_place, sha256_of, storage_error,
                                  write_atomic, write_beside, write_parquet, write_parquet_atomic)
from warehouse.lake.locks import table_lock
from warehouse.lake.paths import (TMP_PREFIX, checksum_record_path, checksums_root, data_files, describe_file,
                                  partition_file, partition_files, table_dir, table_file)
from warehouse.lake.views import partition_filter, sql_string
from warehouse.settings import Settings


@dataclass(frozen=True)
class PendingPartition:
    """A partition written beside the one it replaces, under a hidden name no view reads: checked
    before `publish_partition` renames it into place, or dropped by `discard_partition`."""

    table: str          # layer.table
    key: str | None     # partition folder value (None: the whole table)
    path: Path          # the partition file it replaces
    staged: Path        # the new data, beside it


def stage_partition(settings: Settings, contract: Contract, key: str | None, frame: pl.DataFrame) -> PendingPartition:
    """Write ``frame`` as the next version of one partition (or of the whole table when ``key`` is
    None) beside the stored one, which readers keep seeing until it is published."""
    part = contract.partition_column
    if part is not None and key is None:
        raise ValueError(f"{contract.qualified_name} is partitioned by {part.name}: name the partition to write")
    if part is None:
        path = table_file(settings, contract)
    else:
        path, frame = partition_file(settings, contract, key), frame.drop(part.name)
    staged = write_beside(path, lambda tmp: write_parquet(frame, tmp))
    return PendingPartition(contract.qualified_name, key, path, staged)


def publish_partition(settings: Settings, pending: PendingPartition) -> Path:
    """Rename a staged partition over the stored one (under the table's lock) and keep its checksum."""
    with table_lock(settings, pending.table):
        put_in_place(pending.staged, pending.path)
        clean_temp_files(pending.path.parent)
        record_checksum(settings, pending.path)
    return pending.path


def discard_partition(pending: PendingPartition) -> None:
    """Drop a staged partition: the stored one stays as it was (a folder made for it alone goes)."""
    pending.staged.unlink(missing_ok=True)
    try:
        pending.path.parent.rmdir()         # only when empty: a new partition that was refused
    except OSError:
        pass


def write_partition(settings: Settings, contract: Contract, key: str | None, frame: pl.DataFrame) -> Path:
    """Replace one partition (or the whole table when ``key`` is None) with ``frame``."""
    with table_lock(settings, contract.qualified_name):
        return publish_partition(settings, stage_partition(settings, contract, key, frame))


def record_checksum(settings: Settings, path: Path) -> None:
    """Keep the SHA-256 and size of a partition file just written, in meta.file_checksums.

    Called by every writer of a partition file, under the table's lock, after the rename.
    """
    described = describe_file(settings, path)
    if described is None:
        return
    sha, size = sha256_of(path)
    frame = pl.DataFrame({
        "file_path": [str(Path(path).relative_to(settings.home))], "table_name": [described[0]],
        "partition_path": [described[1]], "file_sha256": [sha], "file_bytes": [size],
        "written_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)]},
        schema={"file_path": pl.Utf8, "table_name": pl.Utf8, "partition_path": pl.Utf8, "file_sha256": pl.Utf8,
                "file_bytes": pl.Int64, "written_at": pl.Datetime("us")})
    write_parquet_atomic(frame, checksum_record_path(settings, path))


def write_file_with_checksum(settings: Settings, frame: pl.DataFrame, path: Path) -> int:
    """Replace a partition file that is not a contract's partition (the quarantine, a feed's meta
    table) with ``frame`` and keep its checksum. Returns bytes written."""
    written = write_parquet_atomic(frame, path)
    record_checksum(settings, path)
    return written


def write_table(settings: Settings, contract: Contract, frame: pl.DataFrame) -> Path:
    """Replace a whole table with ``frame``; of a partitioned table, every partition (one per value
    of the partition column in ``frame``, the others removed). Returns the table's folder for a
    partitioned table, its file otherwise."""
    part = contract.partition_column
    if part is None:
        return write_partition(settings, contract, None, frame)
    with table_lock(settings, contract.qualified_name):
        keys = {str(value) for value in frame.get_column(part.name).unique().to_list()}
        if "None" in keys:
            raise ValueError(f"{contract.qualified_name}: a row without {part.name} cannot be placed in a partition")
        for key in sorted(keys):
            write_partition(settings, contract, key, frame.filter(pl.col(part.name).cast(pl.Utf8) == key))
        for key, path in partition_files(settings, contract).items():
            if key not in keys:
                _remove_partition(settings, path)
    return table_dir(settings, contract)


def write_table_if_changed(settings: Settings, contract: Contract, frame: pl.DataFrame) -> tuple[Path, bool]:
    """Replace an unpartitioned table with ``frame`` unless its file already holds exactly these
    rows; returns the path and whether it was written. An unchanged file keeps its modification
    time, so what is built from it (the published role databases) need not be copied again."""
    path = table_file(settings, contract)
    try:
        if path.exists() and pl.read_parquet(path).equals(frame):
            return path, False
    except (OSError, pl.exceptions.PolarsError):
        pass
    return write_table(settings, contract, frame), True


def files_digest(settings: Settings, contract: Contract) -> str:
    """A digest of a table's files as they are now (relative path, size, modification time of each):
    it changes whenever any file of the table is written, added or removed."""
    base = table_dir(settings, contract)
    digest = hashlib.sha256()
    for path in sorted(data_files(settings, contract)):
        stat = path.stat()
        digest.update(f"{path.relative_to(base)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def partition_stamps(settings: Settings, contract: Contract) -> dict[str, list[int]]:
    """{partition date: [size, modification time in ns]} of a partitioned table's files."""
    stamps = {}
    for key, path in partition_files(settings, contract).items():
        stat = path.stat()
        stamps[key] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def copy_query_to_parquet(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    """Run ``sql`` and write its result to ``path`` atomically (DuckDB's own Parquet writer)."""
    write_atomic(path, lambda tmp: con.execute(f"COPY ({sql}) TO {sql_string(tmp)} (FORMAT parquet, COMPRESSION zstd)"))


def write_query_partitions(settings: Settings, contract: Contract, con: duckdb.DuckDBPyConnection, sql: str,
                           days: list[str]) -> dict[str, int]:
    """Replace the partitions ``days`` of a day-partitioned table with the rows of ``sql`` on those
    days, under the table's lock; a day without rows loses its partition. Returns the rows of each
    day written.

    DuckDB writes every day at once into a hidden folder beside the table (never read by the
    table's view), then each file is flushed and renamed into place: a failure leaves each
    partition either as it was or as it is now, never half-written.
    """
    base, part = table_dir(settings, contract), contract.partition_column
    if not days:
        return {}
    staging = base.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-{contract.table}"
    rows = {}
    with table_lock(settings, contract.qualified_name):
        try:
            staging.mkdir(parents=True)
            con.execute(f"COPY (SELECT * FROM ({sql}) WHERE {partition_filter(contract, days)}) "
                        f'TO {sql_string(staging)} (FORMAT parquet, PARTITION_BY ("{part.name}"), COMPRESSION zstd)')
            for day in days:
                path = partition_file(settings, contract, day)
                written = sorted((staging / f"{part.name}={day}").glob("*.parquet"))
                if not written:
                    if path.exists():
                        _remove_partition(settings, path)
                    continue
                if len(written) == 1:
                    write_atomic(path, lambda tmp, f=written[0]: os.replace(f, tmp))
                else:
                    files = ", ".join(sql_string(f) for f in written)
                    merged = f"SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
                    copy_query_to_parquet(con, merged, path)
                rows[day] = parquet_rows(path)
                clean_temp_files(path.parent)
                record_checksum(settings, path)
        except Exception as exc:
            # DuckDB wraps the OS error (a full disk, a read-only home) in its own exception type.
            cause = exc if isinstance(exc, OSError) else os_error_in(exc)
            if cause is not None and (clear := storage_error(cause, base)) is not None:
                raise clear from exc
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return rows


def write_query_table(settings: Settings, contract: Contract, con: duckdb.DuckDBPyConnection, sql: str) -> Path:
    """Replace a whole table with the result of ``sql`` (a model), under the table's lock."""
    path = table_file(settings, contract)
    with table_lock(settings, contract.qualified_name):
        copy_query_to_parquet(con, sql, path)
        clean_temp_files(path.parent)
        record_checksum(settings, path)
    return path


def _remove_partition(settings: Settings, path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)
    shutil.rmtree(checksum_record_path(settings, path).parent, ignore_errors=True)
    fsync_dir(path.parent.parent)


def remove_partitions(settings: Settings, contract: Contract, days: list[str]) -> None:
    """Remove the partitions ``days`` of a partitioned table (their inputs are gone), under its lock."""
    with table_lock(settings, contract.qualified_name):
        for day in days:
            _remove_partition(settings, partition_file(settings, contract, day))


def remove_table(settings: Settings, contract: Contract) -> None:
    folder = table_dir(settings, contract)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(checksums_root(settings) / folder.relative_to(settings.home), ignore_errors=True)
