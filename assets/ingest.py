"""Landing file → staging partition: parse, check the partition, pseudonymise, deduplicate,
conform to the contract, write atomically; bad rows to quarantine; one ingest-log row per file.
Files are read a batch at a time (assets/ingest_files.py) and a large partition is written a
row group at a time beside the stored one (assets/ingest_sink.py), so memory does not grow with it.

For every file, rows read = rows loaded + rows quarantined + duplicates removed. A file that
cannot be read at all raises before anything of its partition is written, so what is
already stored stays as it was. A file whose bytes were already delivered under another
name (in this partition, or loaded into another partition) is logged as ``duplicate_file``
and not loaded again; re-running a partition with the same files reloads them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from assets.feeds import Feed
from assets.ingest_log import (DUPLICATE_FILE, EMPTY, LOADED, REJECTED, SNAPSHOT, UNRECOGNISED, FileLog,
                               write_ingest_log)
from assets.ingest_files import ParserFailure, folder_of, read_files  # noqa: F401 - callers catch it from here
from assets.ingest_sink import TableSink
from assets.parsing import REJECT_SCHEMA
from assets.refusal import FileRefusal
from schemas.model import conform, contract_for
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import (PendingPartition, discard_partition, publish_partition,
                                       write_file_with_checksum)
from warehouse.lake.paths import keyed_file, quarantine_file, restricted_quarantine_file
from warehouse.library import Library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

# Sources whose raw lines are personal data through and through: kept only in the restricted area.
RESTRICTED_RAW = {"patrons"}


@dataclass
class PartitionOutcome:
    """What one partition's ingest did, for metadata and the summary."""

    feed: str
    key: str
    files: list[FileLog]
    rows_loaded: dict[str, int]
    quarantined_by_reason: dict[str, int]
    duplicates: int
    written: bool
    meta_rows: dict[str, int] = field(default_factory=dict)   # rows written to each meta.<table>
    bytes_written: dict[str, int] = field(default_factory=dict)   # Parquet bytes written to each staging table
    refused: str | None = None      # why the new partition was not published (the stored one stays)
    refused_files: list[FileRefusal] = field(default_factory=list)   # its files refused whole
    staged: "Staged | None" = None  # written beside the stored data, until `settle_partition`

    @property
    def pending(self) -> dict[str, PendingPartition]:
        """Its staged partition of each staging table, until it is settled."""
        return self.staged.pending if self.staged is not None else {}

    @property
    def unrecognised_files(self) -> list[str]:
        return [f.source_file for f in self.files if f.file_status == UNRECOGNISED]

    @property
    def empty_files(self) -> list[str]:
        return [f.source_file for f in self.files if f.file_status == EMPTY]

    @property
    def duplicate_files(self) -> list[dict]:
        return [{"file": f.source_file, "duplicate_of": f.duplicate_of, "sha256": f.file_sha256}
                for f in self.files if f.file_status == DUPLICATE_FILE]


@dataclass
class Staged:
    """What a partition's ingest wrote or holds beside the stored data, waiting for its audit."""

    pending: dict[str, PendingPartition]          # staging table → its staged partition
    quarantine: pl.DataFrame
    meta_frames: dict[str, list[pl.DataFrame]]
    logs: list[FileLog]


class DeliveryRefused(dg.Failure):
    """A delivery was not loaded (its lines were mostly quarantined, or a blocking check failed on
    its rows); the stored partitions are as they were. A Dagster Failure: the run page shows its
    text and metadata (which file, how many lines, the commonest reason, what to do), not a trace."""


def ingest_partition(feed: Feed, key: str | None, settings: Settings, library: Library,
                     pseudonymiser: Pseudonymiser, run_id: str, log=None) -> PartitionOutcome:
    """Load one partition (or a snapshot feed's latest file) of ``feed``, without the audit of its
    checks (the staging assets run it: assets/admission.py); a file mostly quarantined is refused.

    Holds the write lock of the feed's staging tables throughout, so two runs loading the same
    partition take turns: its staging file, quarantine, meta rows and ingest log always come
    from one run.
    """
    with table_lock(settings, *(f"staging.{t}" for t in feed.tables)):
        outcome = prepare_partition(feed, key, settings, library, pseudonymiser, run_id, log)
        return settle_partition(settings, feed, outcome, run_id)


def prepare_partition(feed: Feed, key: str | None, settings: Settings, library: Library,
                      pseudonymiser: Pseudonymiser, run_id: str, log=None,
                      earlier: dict[str, str] | None = None) -> PartitionOutcome:
    """Parse a partition's files and write its staging tables beside the stored ones, replacing
    nothing: `settle_partition` publishes them, or keeps the stored ones when ``refused``.

    ``earlier``: sha256 → file of the files this run prepared for other partitions (not yet in
    the ingest log), so a file delivered twice within a run is loaded once. The caller holds the
    feed's table locks until the partition is settled.
    """
    files = feed.files_for(settings.landing, key)
    key_text = key or ""
    if not files:
        if log:
            log.warning(f"{feed.name}: no landing files for partition {key_text or '(snapshot)'} "
                        f"under landing/{feed.folder}; nothing written, the stored partition is unchanged.")
        return PartitionOutcome(feed.name, key_text, [], {}, {}, 0, written=False)

    sinks = {t: TableSink(settings, contract_for(f"staging.{t}"), folder_of(feed, key), pseudonymiser)
             for t in feed.tables}
    try:
        logs, rejects, refusals, meta_frames = read_files(feed, key, files, settings, library, log, sinks,
                                                            earlier)
    except BaseException:
        for sink in sinks.values():           # rows already written beside the stored partition go
            sink.discard()
        raise
    if logs and all(f.file_status in (UNRECOGNISED, EMPTY) for f in logs):
        # Nothing of the partition was understood: the stored partition stays; the log says why.
        outcome = PartitionOutcome(feed.name, key_text, logs, {}, {}, 0, written=False)
        outcome.staged = Staged({}, pl.DataFrame(), {}, logs)
        return outcome

    quarantine = _quarantine_frame(feed, key_text, rejects, settings, library, pseudonymiser, run_id)
    # Everything is parsed: the partitions are finished beside the stored ones, replacing nothing yet.
    by_file = {f.source_file: f for f in logs}
    pending, bytes_written, loaded, duplicates = {}, {}, {}, 0
    try:
        for table, sink in sinks.items():
            pending[table] = sink.finish()
            bytes_written[table] = pending[table].staged.stat().st_size
            for source, count in sink.loaded.items():
                by_file[source].rows_loaded[table] += count
            for source, count in sink.duplicates.items():
                by_file[source].rows_duplicate[table] += count
            loaded[table], duplicates = sink.rows, duplicates + sum(sink.duplicates.values())
    except BaseException:
        for sink in sinks.values():
            sink.discard()
        raise
    reasons = Counter(quarantine.get_column("reason").to_list())
    return PartitionOutcome(feed.name, key_text, logs, loaded, dict(reasons), duplicates, written=False,
                            bytes_written=bytes_written, refused="\n".join(r.message for r in refusals) or None,
                            refused_files=refusals,
                            staged=Staged(pending, quarantine, meta_frames, logs))


def settle_partition(settings: Settings, feed: Feed, outcome: PartitionOutcome, run_id: str) -> PartitionOutcome:
    """Publish a prepared partition, or, when ``outcome.refused``, drop it and keep the stored one.

    Either way its quarantined lines and its ingest-log rows are recorded (a refused delivery's
    files as ``rejected``, beside the quarantine of the partition it did not replace); the
    feed's meta tables change only with a published partition.
    """
    staged, key = outcome.staged, outcome.key or SNAPSHOT
    if staged is None:
        return outcome
    outcome.staged = None
    if not staged.pending:             # every file unrecognised: only the log
        write_ingest_log(settings, feed, key, staged.logs, run_id)
        return outcome
    if outcome.refused:
        for pending in staged.pending.values():
            discard_partition(pending)
        for flog in staged.logs:
            if flog.file_status == LOADED:
                flog.file_status = REJECTED
                flog.rows_loaded.clear()
        outcome.rows_loaded, outcome.bytes_written = {}, {}
        _write_quarantine(settings, feed, key, staged.quarantine, keep_stored=True)
        write_ingest_log(settings, feed, key, staged.logs, run_id)
        return outcome
    for pending in staged.pending.values():
        publish_partition(settings, pending)
    _write_quarantine(settings, feed, key, staged.quarantine)
    outcome.meta_rows = _write_meta_tables(settings, key, staged.meta_frames)
    write_ingest_log(settings, feed, key, staged.logs, run_id)
    outcome.written = True
    return outcome


def _write_quarantine(settings: Settings, feed: Feed, key: str, quarantine: pl.DataFrame,
                      keep_stored: bool = False) -> None:
    """Replace the partition's quarantine files; ``keep_stored``: add to them (a refused delivery's
    lines beside those of the delivery still loaded)."""
    for table in feed.tables:
        part = quarantine.filter(pl.col("staging_table") == table).drop("staging_table", "partition_key")
        path = quarantine_file(settings, feed.source, table, key)
        if keep_stored and path.exists():
            part = pl.concat([pl.read_parquet(path, hive_partitioning=False), part], how="vertical_relaxed")
        write_file_with_checksum(settings, part, path)


def _write_meta_tables(settings: Settings, key: str, frames: dict[str, list[pl.DataFrame]]) -> dict[str, int]:
    """Replace this partition's file of each feed-specific meta table (an empty file when nothing was found)."""
    written = {}
    for table, parts in frames.items():
        contract = contract_for(f"meta.{table}")
        frame = conform(pl.concat(parts, how="vertical_relaxed") if parts else contract.empty_frame(), contract)
        write_file_with_checksum(settings, frame, keyed_file(settings, f"meta.{table}", key))
        written[table] = frame.height
    return written


def _quarantine_frame(feed: Feed, key: str, rejects: list[pl.DataFrame], settings: Settings,
                      library: Library, pseudonymiser: Pseudonymiser, run_id: str) -> pl.DataFrame:
    contract = contract_for(f"quarantine.{feed.source}")
    frame = pl.concat(rejects, how="vertical") if rejects else pl.DataFrame(
        schema={**REJECT_SCHEMA, "staging_table": pl.Utf8, "source_file": pl.Utf8})
    frame = frame.with_columns(pl.lit(key or SNAPSHOT).alias("partition_key"), pl.lit(run_id).alias("run_id"))
    if feed.source in RESTRICTED_RAW:
        # The raw line holds names and contacts: keep it only in the restricted area.
        if frame.height:
            path = restricted_quarantine_file(settings, feed.source, key or SNAPSHOT)
            write_parquet_atomic(frame, path)
        frame = frame.with_columns(pl.lit(None, pl.Utf8).alias("raw_text"))
    else:
        frame = frame.with_columns(pseudonymiser.scrub(frame.get_column("raw_text"), library.card_number_pattern,
                                                       cut_tail=True))
    frame = frame.with_columns(pseudonymiser.scrub(frame.get_column("detail"), library.card_number_pattern))
    return conform(frame, contract)
