"""The latest ingest of every landing file, in one small record (``ingest_state.json``) kept as the
ingest log is written.

meta.ingest_log holds one file per feed, partition and run: a university year is thousands of
files, and reading them all at every `shuku status` to find the deliveries not loaded took over
a second. The record keeps, per landing file, its latest write to the log: the partitions it was
logged in then, with their status and line counts summed over the staging tables. It is the log
replayed in the order it was written, so a home without it (an older version) gets it rebuilt
from meta.ingest_log at the next write, and `shuku status` replays the log meanwhile.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from warehouse.lake.files import read_record
from warehouse.lake.locks import update_record
from warehouse.lake.paths import data_files
from warehouse.lake.views import files_connection
from warehouse.settings import Settings

VERSION = 1
INGEST_LOG = "meta.ingest_log"
# One latest write per file: (partition, status, lines read, lines quarantined, run, when), the
# line counts summed over the staging tables the write logged.
FIELDS = ("partition", "status", "read", "quarantined", "run_id", "at")


def state_path(settings: Settings) -> Path:
    return settings.home / "ingest_state.json"


def _at(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def apply_write(files: dict[str, dict], rows: list[dict]) -> None:
    """Take one write of the ingest log (its rows: ``source_file``, ``partition_key``, ``file_status``,
    ``rows_read``, ``rows_quarantined``, ``run_id``, ``ingested_at`` as ISO text) into ``files``: a
    file's entry is replaced by a later write, and a write at the same time adds its partitions."""
    grouped: dict[tuple[str, str, str, str, str], list[int]] = {}
    for r in rows:
        key = (r["source_file"], r["partition_key"], r["file_status"], r["run_id"], r["ingested_at"])
        counts = grouped.setdefault(key, [0, 0])
        counts[0] += r["rows_read"] or 0
        counts[1] += r["rows_quarantined"] or 0
    for (source, partition, status, run_id, at), (read, quarantined) in grouped.items():
        entry = files.get(source)
        if entry is None or entry["at"] < at:
            entry = files[source] = {"at": at, "writes": []}
        elif entry["at"] > at:
            continue
        entry["writes"].append(dict(zip(FIELDS, (partition, status, read, quarantined, run_id, at))))


def replayed(settings: Settings) -> dict[str, dict]:
    """The record as the stored log gives it: every write, in the order it was written."""
    if next(data_files(settings, INGEST_LOG), None) is None:
        return {}
    con = files_connection(settings, [INGEST_LOG])
    try:
        rows = con.execute("SELECT source_file, partition_key, file_status, rows_read, rows_quarantined, run_id, "
                           "strftime(ingested_at, '%Y-%m-%dT%H:%M:%S.%f') FROM meta.ingest_log "
                           "ORDER BY ingested_at").fetchall()
    finally:
        con.close()
    files: dict[str, dict] = {}
    names = ("source_file", "partition_key", "file_status", "rows_read", "rows_quarantined", "run_id", "ingested_at")
    apply_write(files, [dict(zip(names, row)) for row in rows])
    return files


def read_ingest_state(settings: Settings) -> dict[str, dict] | None:
    return read_record(state_path(settings), VERSION, "files")


def record_ingest(settings: Settings, rows: list[dict]) -> None:
    """Take the rows just written to the ingest log (after their file) into the record, under its
    lock; a home without a record gets it from the whole log (these rows included)."""
    rows = [{**r, "ingested_at": _at(r["ingested_at"]) if isinstance(r["ingested_at"], dt.datetime)
             else r["ingested_at"]} for r in rows]
    update_record(settings, state_path(settings), VERSION, "files", lambda: replayed(settings),
                  lambda files: apply_write(files, rows))


def latest_writes(settings: Settings, statuses: tuple[str, ...]) -> list[dict]:
    """The latest write of each landing file whose status is one of ``statuses`` (one per partition
    it was logged in then), newest first: ``file`` and ``FIELDS``."""
    files = read_ingest_state(settings)
    files = replayed(settings) if files is None else files
    found = [{"file": source, **w} for source, entry in files.items() for w in entry["writes"] if w["status"] in statuses]
    return sorted(sorted(found, key=lambda w: w["file"]), key=lambda w: w["at"], reverse=True)
