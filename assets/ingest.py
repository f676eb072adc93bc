"""Landing file → staging partition: parse, check the partition, pseudonymise, deduplicate,
conform to the contract, write atomically; bad rows to quarantine; one ingest-log row per file.

For every file, rows read = rows loaded + rows quarantined + duplicates removed. A file that
cannot be read at all raises before anything of its partition is written, so what is
already stored stays as it was. A file whose bytes were already delivered under another
name (in this partition, or loaded into another partition) is logged as ``duplicate_file``
and not loaded again; re-running a partition with the same files reloads them.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from assets.admission import refusal_for_file, unrecognised_message
from assets.feeds import Feed
from assets.ingest_log import (DUPLICATE_FILE, EMPTY, LOADED, REJECTED, SNAPSHOT, UNREADABLE, UNRECOGNISED, FileLog,
                               delivered_elsewhere, write_ingest_log)
from assets.parsing import REJECT_SCHEMA, Reason
from assets.partitions import month_range
from assets.refusal import FileRefusal
from assets.repeats import repeated_rows
from schemas.model import conform, contract_for
from schemas.vocabulary import DAY
from warehouse.lake.files import sha256_of, write_parquet_atomic
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import (PendingPartition, discard_partition, publish_partition, stage_partition,
                                       write_file_with_checksum)
from warehouse.lake.paths import keyed_file, partition_date, quarantine_file, restricted_quarantine_file
from warehouse.library import Library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
from warehouse.textio import LandingFileError

LINEAGE_COLUMNS = ("source_file", "source_line")
# Sources whose raw lines are personal data through and through: kept only in the restricted area.
RESTRICTED_RAW = {"patrons"}


class ParserFailure(RuntimeError):
    """A parser raised on a file instead of quarantining its bad rows (a bug to report)."""


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


def _wrong_partition(frame: pl.DataFrame, column: str, key: str, partitioning: str) -> pl.Series:
    """Rows dated outside the partition being loaded."""
    dates = frame.get_column(column)
    if partitioning != DAY:
        dates = dates.dt.truncate("1mo")
    return (dates != partition_date(key, partitioning)).fill_null(True)


def _unreadable(feed: Feed, relative: str, sha: str, size: int, error: str, rejects: list, log) -> FileLog:
    """A file that cannot be read at all, of a feed of self-contained reports: quarantined with its reason."""
    table = feed.tables[0]
    flog = FileLog(relative, sha, size, "unreadable", "", file_status=UNREADABLE)
    flog.rows_read[table] = flog.rows_quarantined[table] = 1
    rejects.append(pl.DataFrame({"source_line": [0], "raw_text": [None], "reason": [Reason.UNREADABLE_FILE.value],
                                 "detail": [error[:500]], "staging_table": [table], "source_file": [relative]},
                                schema={**REJECT_SCHEMA, "staging_table": pl.Utf8, "source_file": pl.Utf8}))
    if log:
        log.warning(f"{error} Quarantined (meta.ingest_log: unreadable); the other files are loaded.")
    return flog


def _row_as_text(frame: pl.DataFrame) -> pl.Series:
    return pl.Series([json.dumps(r, default=str, ensure_ascii=False) for r in frame.iter_rows(named=True)],
                     dtype=pl.Utf8)


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

    tables = {t: [] for t in feed.tables}
    meta_frames = {t: [] for t, _ in feed.meta_tables}
    rejects: list[pl.DataFrame] = []
    logs: list[FileLog] = []
    # A feed whose files cover several partitions (COUNTER) loads a file in each: no duplicate across them.
    spans = importlib.import_module(feed.coverage.split(":")[0]) if feed.coverage else None
    first_with = {} if spans else delivered_elsewhere(settings, feed, key_text or SNAPSHOT)
    for sha, source in ({} if spans else earlier or {}).items():
        first_with.setdefault(sha, source)
    fate_of = spans.fates(key_text, files) if spans else {}
    # The deliveries loaded come first: a copy of one (same bytes elsewhere) is its duplicate_file.
    files = sorted(files, key=lambda p: fate_of.get(p, (None,))[0] is not None)
    refusals: list[FileRefusal] = []
    for path in files:
        relative = str(path.relative_to(settings.landing))
        sha, size = sha256_of(path)
        original = first_with.setdefault(sha, relative)
        fate, newer = fate_of.get(path, (None, None))
        if spans and fate == spans.UNREADABLE:
            logs.append(_unreadable(feed, relative, sha, size, spans.delivery(path).error, rejects, log))
            continue
        try:
            # LandingFileError propagates (but for a feed of self-contained reports): nothing written yet
            result = spans.for_month(spans.delivery(path), key_text, *month_range(library)) if spans else \
                feed.parse(path, library)
        except LandingFileError:
            raise
        except (Exception, pl.exceptions.PanicException) as exc:
            raise ParserFailure(
                f"{relative}: the {feed.name} parser failed ({type(exc).__name__}); nothing of partition "
                f"{key_text or '(snapshot)'} was written and the file stays in landing. "
                f"Check it with `shuku parse {feed.source} <file>` and report the failure with the file.") from exc
        flog = FileLog(relative, sha, size, result.format, result.encoding)
        if original != relative or (spans is not None and fate == spans.SUPERSEDED):
            # Same bytes as a file already delivered, or an older delivery of the same report:
            # counted, not loaded a second time.
            flog.file_status, flog.duplicate_of = DUPLICATE_FILE, original
            if original == relative:
                flog.file_status, flog.duplicate_of = fate, str(newer.relative_to(settings.landing))
            for table, frame in feed.split(result).items():
                flog.rows_read[table] += frame.height
            flog.rows_read[feed.tables[0]] += result.rejects.height
            flog.rows_duplicate.update(flog.rows_read)
            logs.append(flog)
            if log:
                log.warning(f"{relative}: same bytes (SHA-256) as {original}, delivered before; "
                            "logged as duplicate_file and not loaded again." if original != relative else
                            f"{relative}: {key_text} superseded by the newer delivery {flog.duplicate_of}.")
            continue
        if why := (spans.delivery(path).result if spans else result).empty:
            # No bytes, or a header and no rows: usually a failed export. The stored partition stays.
            flog.file_status = EMPTY
            logs.append(flog)
            if log:
                log.warning(f"landing/{relative}: {why}: usually a failed export. Not loaded (meta.ingest_log: "
                            f"empty); ask for the file again, or check it with `shuku parse {feed.source} <file>`.")
            continue
        if not (spans.delivery(path).result if spans else result).recognised:
            # Neither a row nor a rejected line: the parser did not understand the file.
            flog.file_status = UNRECOGNISED
            logs.append(flog)
            if log:
                log.warning(unrecognised_message(feed, relative))
            continue
        for table, hook in feed.meta_tables:
            if fate is None or table in spans.RECORDED_WHEN_HELD:
                module, function = hook.split(":")
                hook_fn = getattr(importlib.import_module(module), function)
                meta_frames[table].append(hook_fn(relative, key_text, result, sha))
        if fate is not None:
            # An answer that says the usage is not there yet, or carries only exceptions: recorded, not loaded.
            flog.file_status = fate
            logs.append(flog)
            continue
        file_rejects = [result.rejects.with_columns(pl.lit(feed.tables[0]).alias("staging_table"))]
        file_frames: dict[str, pl.DataFrame] = {}
        for table, frame in feed.split(result).items():
            frame = frame.with_columns(pl.lit(relative).alias("source_file"))
            contract = contract_for(f"staging.{table}")
            part = contract.partition_column
            if part is not None and key is not None and frame.height:
                wrong = _wrong_partition(frame, part.name, key, feed.partitioning)
                if wrong.any():
                    bad = frame.filter(wrong)
                    file_rejects.append(pl.DataFrame({
                        "source_line": bad.get_column("source_line"),
                        "raw_text": _row_as_text(bad.drop("source_file")),
                        "reason": [Reason.WRONG_PARTITION.value] * bad.height,
                        "detail": [f"column {part.name}: {v} is outside partition {key}"
                                   for v in bad.get_column(part.name).to_list()],
                        "staging_table": [table] * bad.height,
                    }, schema={**REJECT_SCHEMA, "staging_table": pl.Utf8}))
                    frame = frame.filter(~wrong)
            flog.rows_read[table] += frame.height
            file_frames[table] = frame
        file_rejected = pl.concat(file_rejects, how="vertical")
        for table, count in Counter(file_rejected.get_column("staging_table").to_list()).items():
            flog.rows_read[table] += count
            flog.rows_quarantined[table] += count
        rejects.append(file_rejected.with_columns(pl.lit(relative).alias("source_file")))
        logs.append(flog)
        whole = spans.delivery(path).result if spans else None     # a report is refused whole, once
        refusal = refusal_for_file(
            feed, library, relative, whole.rows_read if whole else sum(flog.rows_read.values()),
            Counter((whole.rejects if whole else file_rejected).get_column("reason").to_list()), key)
        if refusal is not None and spans:
            # One unreadable report never stops the others: it alone is left out, its lines quarantined.
            flog.file_status = REJECTED
            if log:
                log.warning(refusal.message)
            continue
        for table, frame in file_frames.items():
            tables[table].append(frame)
        if refusal is not None:
            refusals.append(refusal)

    if logs and all(f.file_status in (UNRECOGNISED, EMPTY) for f in logs):
        # Nothing of the partition was understood: the stored partition stays; the log says why.
        outcome = PartitionOutcome(feed.name, key_text, logs, {}, {}, 0, written=False)
        outcome.staged = Staged({}, pl.DataFrame(), {}, logs)
        return outcome

    by_file = {f.source_file: f for f in logs}
    loaded: dict[str, int] = {}
    duplicates = 0
    staged: dict[str, pl.DataFrame] = {}
    for table, frames in tables.items():
        contract = contract_for(f"staging.{table}")
        frame = pl.concat(frames, how="vertical_relaxed") if frames else contract.empty_frame()
        frame = pseudonymiser.pseudonymise(frame)
        content = [c for c in frame.columns if c not in LINEAGE_COLUMNS]
        duplicate = repeated_rows(frame, content)
        if duplicate.any():
            for source, count in Counter(frame.filter(duplicate).get_column("source_file").to_list()).items():
                by_file[source].rows_duplicate[table] += count
            duplicates += int(duplicate.sum())
            frame = frame.filter(~duplicate)
        for source, count in frame.group_by("source_file").len().iter_rows():   # not 1 M Python strings
            by_file[source].rows_loaded[table] += count
        staged[table] = conform(frame, contract)
        loaded[table] = frame.height

    quarantine = _quarantine_frame(feed, key_text, rejects, settings, library, pseudonymiser, run_id)
    # Everything is parsed and conformed: written beside the stored partitions, replacing nothing yet.
    pending, bytes_written = {}, {}
    folder_key = partition_date(key, feed.partitioning).isoformat() if key else None
    try:
        for table, frame in staged.items():
            pending[table] = stage_partition(settings, contract_for(f"staging.{table}"), folder_key, frame)
            bytes_written[table] = pending[table].staged.stat().st_size
    except BaseException:
        for written in pending.values():
            discard_partition(written)
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
