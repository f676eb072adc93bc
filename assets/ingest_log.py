"""The ingest log (meta.ingest_log): one row per landing file and staging table of every partition
loaded, saying what became of the file's rows, and what the stored partitions were loaded from.

For every file, rows read = rows loaded + rows quarantined + duplicates removed. Each run of a
partition writes its own hash-chained file, ``<feed>/<partition>/run-<run id>.parquet``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.ingest_state import record_ingest
from assets.feeds import Feed
from schemas.model import conform, contract_for
from warehouse.audit import append_chained
from warehouse.lake.files import sha256_of
from warehouse.lake.paths import run_file, run_files, table_dir, table_file
from warehouse.settings import Settings

INGEST_LOG = "meta.ingest_log"
LOADED, DUPLICATE_FILE = "loaded", "duplicate_file"
# Not loaded: the delivery failed its audit (too many lines quarantined, a blocking check), or
# nothing of the file was understood (no row and no rejected line).
REJECTED, UNRECOGNISED = "rejected", "unrecognised"
# Not loaded: no bytes, or a header and no rows (usually a failed export); the stored partition stays.
EMPTY = "empty"
# COUNTER files, which cover a range of months (assets/eresources/deliveries.py): an older delivery of
# a report for the month; an answer that says the usage is not there yet, or holds only exceptions
# (recorded in meta.counter_exceptions); a file that cannot be read at all (quarantined).
SUPERSEDED, NOT_YET, EXCEPTIONS_ONLY, UNREADABLE = "superseded", "not_yet", "exceptions_only", "unreadable"
SNAPSHOT = "all"      # the partition folder of a snapshot feed's log


@dataclass
class FileLog:
    source_file: str
    file_sha256: str
    file_bytes: int
    file_format: str
    file_encoding: str
    rows_read: Counter = field(default_factory=Counter)        # per staging table
    rows_loaded: Counter = field(default_factory=Counter)
    rows_quarantined: Counter = field(default_factory=Counter)
    rows_duplicate: Counter = field(default_factory=Counter)
    file_status: str = LOADED
    duplicate_of: str | None = None    # the file delivered first with the same bytes


def _folder(settings: Settings, feed: Feed, key: str | None = None) -> Path:
    """The log of a feed, or of one of its partitions."""
    base = table_dir(settings, INGEST_LOG) / feed.name
    return base if key is None else base / key


# Ingest-log file → (mtime, [(sha256, source_file)] it loaded): a backfill reads each file once.
_LOADED_CACHE: dict[Path, tuple[int, list[tuple[str, str]] | None]] = {}


def _loaded_in(path: Path) -> list[tuple[str, str]] | None:
    """(sha256, file) loaded by one run of a partition; None when the run loaded nothing there
    (every file rejected or unrecognised: the partition holds an earlier run's files)."""
    stamp = path.stat().st_mtime_ns
    cached = _LOADED_CACHE.get(path)
    if cached is None or cached[0] != stamp:
        frame = pl.read_parquet(path)
        refused = False
        if "file_status" in frame.columns:     # logs written before the column existed loaded every file
            refused = frame.height > 0 and frame.get_column("file_status").is_in([REJECTED, UNRECOGNISED, EMPTY]).all()
            frame = frame.filter(pl.col("file_status") == LOADED)
        cached = (stamp, None if refused else list(set(frame.select("file_sha256", "source_file").iter_rows())))
        _LOADED_CACHE[path] = cached
    return cached[1]


def _latest_loaded(folder: Path) -> list[tuple[str, str]]:
    """What the partition's stored files were loaded from: its latest run that was not refused."""
    for path in sorted(run_files(folder), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        loaded = _loaded_in(path)
        if loaded is not None:
            return loaded
    return []


def delivered_elsewhere(settings: Settings, feed: Feed, key: str) -> dict[str, str]:
    """sha256 → file, for the files now loaded in the feed's other partitions (their latest run).

    The partition being loaded is left out: its stored rows are about to be replaced.
    """
    base = _folder(settings, feed)
    found: dict[str, str] = {}
    if not base.exists():
        return found
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name != key):
        for sha, source in _latest_loaded(folder):
            found.setdefault(sha, source)
    return found


def snapshot_is_loaded(settings: Settings, feed: Feed) -> bool:
    """Whether a snapshot feed's newest landing file is what its staging tables hold: the feed's
    latest ingest loaded a file of that name with the same SHA-256, and every table's file is there.

    A nightly run then leaves the snapshot alone (a university's catalogue takes more than a
    minute to parse); a changed, renamed or newer export, or a missing table, loads it again."""
    files = feed.files_for(settings.landing, None)
    base = _folder(settings, feed, SNAPSHOT)
    if feed.partitioning is not None or not files or not base.exists():
        return False
    if not all(table_file(settings, contract_for(f"staging.{t}")).exists() for t in feed.tables):
        return False
    sha, _ = sha256_of(files[0])
    return (sha, str(files[0].relative_to(settings.landing))) in _latest_loaded(base)


def write_ingest_log(settings: Settings, feed: Feed, key: str, logs: list[FileLog], run_id: str) -> None:
    """One run's rows of a partition's log (``key``: the partition, or ``all`` for a snapshot)."""
    contract = contract_for(INGEST_LOG)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for flog in logs:
        for table in feed.tables:
            rows.append({
                "run_id": run_id, "staging_table": table, "partition_key": key,
                "source_file": flog.source_file, "file_sha256": flog.file_sha256, "file_bytes": flog.file_bytes,
                "file_format": flog.file_format, "file_encoding": flog.file_encoding,
                "rows_read": flog.rows_read[table], "rows_loaded": flog.rows_loaded[table],
                "rows_quarantined": flog.rows_quarantined[table], "rows_duplicate": flog.rows_duplicate[table],
                "file_status": flog.file_status, "duplicate_of": flog.duplicate_of, "ingested_at": now,
            })
    frame = conform(pl.DataFrame(rows, schema=contract.polars_schema()), contract)
    append_chained(settings, INGEST_LOG, frame, run_file(_folder(settings, feed, key), run_id))
    record_ingest(settings, rows)


def not_loaded(settings: Settings, run_ids: list[str]) -> dict[tuple[str, str, str | None], list[str]]:
    """(file, status, the file loaded instead) → partition keys, for the files the runs logged but did not load."""
    base = table_dir(settings, INGEST_LOG)
    paths = [p for run_id in run_ids for p in base.glob(f"*/*/run-{run_id}.parquet")]
    if not paths:
        return {}
    frame = pl.concat([pl.read_parquet(p).select("partition_key", "source_file", "file_status", "duplicate_of")
                       for p in paths], how="vertical_relaxed")
    frame = frame.filter(~pl.col("file_status").is_in([LOADED, DUPLICATE_FILE])).unique()
    found: dict[tuple[str, str, str | None], list[str]] = {}
    for key, source, status, other in frame.sort("partition_key").iter_rows():
        found.setdefault((source, status, other), []).append(key)
    return found
