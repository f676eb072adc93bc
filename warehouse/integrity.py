"""Damaged files: every partition file of the lake and the quarantine against the SHA-256 and
size kept in meta.file_checksums when it was written.

A file shorter than recorded is truncated; one of the right size with other bytes has been
altered (a bit flip, a bad sector); a file without a record is at least read whole as
Parquet. Damaged files are moved aside (never deleted) before they are rebuilt.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from warehouse.lake.files import sha256_of
from warehouse.lake.paths import PART_FILE, TMP_PREFIX, checksums_root, damaged_dir, describe_file
from warehouse.settings import Settings

TRUNCATED, ALTERED, MISSING, UNREADABLE = "truncated", "altered", "missing", "unreadable"


@dataclass(frozen=True)
class FileProblem:
    """One damaged partition file."""

    file_path: str          # relative to the home folder
    table_name: str         # layer.table
    partition_path: str     # the partition's folder under the table's folder ('' for a whole table)
    problem: str            # TRUNCATED, ALTERED, MISSING or UNREADABLE
    detail: str

    def path(self, settings: Settings) -> Path:
        return settings.home / self.file_path


def _readable(path: Path) -> str | None:
    """None when the file reads whole as Parquet, else why not."""
    try:
        pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any failure of the reader means the file is not whole
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return None


def _records(settings: Settings) -> tuple[dict[str, dict], list[str]]:
    """file_path → its checksum record, and the record files that cannot be read."""
    root = checksums_root(settings)
    records, broken = {}, []
    for record in sorted(root.rglob("*.parquet")) if root.exists() else []:
        if record.name.startswith(TMP_PREFIX):
            continue
        try:
            row = pl.read_parquet(record, hive_partitioning=False).row(0, named=True)
        except Exception:  # noqa: BLE001 - a damaged record: its data file is judged by reading it
            broken.append(str(record.relative_to(settings.home)))
            continue
        records[row["file_path"]] = row
    return records, broken


def partition_files(settings: Settings) -> list[Path]:
    """Every partition file (``part-0.parquet``) of the lake and the quarantine."""
    found = []
    for root in (settings.lake, settings.quarantine):
        if root.exists():
            found += [p for p in root.rglob(PART_FILE) if describe_file(settings, p) is not None]
    return sorted(found)


def verify(settings: Settings) -> tuple[list[FileProblem], int]:
    """The damaged partition files, and how many files were checked."""
    records, _ = _records(settings)
    problems: list[FileProblem] = []
    files = partition_files(settings)
    on_disk = {str(p.relative_to(settings.home)) for p in files}
    for relative, record in sorted(records.items()):
        if relative in on_disk:
            continue
        problems.append(FileProblem(relative, record["table_name"], record["partition_path"], MISSING,
                                    f"written {record['written_at']:%Y-%m-%d %H:%M} UTC ({record['file_bytes']:,} bytes), "
                                    "now gone"))
    for path in files:
        relative = str(path.relative_to(settings.home))
        table, partition = describe_file(settings, path)
        record = records.get(relative)
        if record is None:
            if (why := _readable(path)) is not None:
                problems.append(FileProblem(relative, table, partition, UNREADABLE, f"no checksum kept; {why}"))
            continue
        sha, size = sha256_of(path)
        if size < record["file_bytes"]:
            problems.append(FileProblem(relative, table, partition, TRUNCATED,
                                        f"{size:,} of {record['file_bytes']:,} bytes"))
        elif sha != record["file_sha256"]:
            problems.append(FileProblem(relative, table, partition, ALTERED,
                                        f"SHA-256 {sha[:12]}… where {record['file_sha256'][:12]}… was written"
                                        + ("" if size == record["file_bytes"] else
                                           f", {size:,} bytes where {record['file_bytes']:,} were written")))
    return problems, len(files)


def move_aside(settings: Settings, problem: FileProblem, stamp: str | None = None) -> Path | None:
    """Move a damaged file to ``damaged/<stamp>/<its path>`` (kept, out of the views' way); its new place."""
    path = problem.path(settings)
    if not path.exists():
        return None
    stamp = stamp or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = damaged_dir(settings) / stamp / problem.file_path
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target
