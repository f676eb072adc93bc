"""Reading a partition's landing files into its staging tables' sinks, a batch at a time.

Each file is parsed a batch of lines at a time (a report, or a JSON answer, as one), checked
against its partition, and its rows handed to ``assets/ingest_sink.TableSink``; its rejects,
ingest-log row and the feed's meta rows are gathered. A file delivered before (same bytes), an
empty file and one not recognised are logged and not loaded. The caller (assets/ingest.py)
finishes the partition or, on an error, discards what the sinks wrote.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import polars as pl

from assets.admission import refusal_for_file, unrecognised_message
from assets.feeds import Feed
from assets.ingest_log import (DUPLICATE_FILE, EMPTY, REJECTED, SNAPSHOT, UNREADABLE, UNRECOGNISED, FileLog,
                               delivered_elsewhere)
from assets.ingest_sink import TableSink
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason
from assets.partitions import month_range
from assets.refusal import FileRefusal
from schemas.model import contract_for
from schemas.vocabulary import DAY
from warehouse.lake.files import sha256_of
from warehouse.lake.paths import partition_date
from warehouse.library import Library
from warehouse.settings import Settings
from warehouse.textio import LandingFileError


class ParserFailure(RuntimeError):
    """A parser raised on a file instead of quarantining its bad rows (a bug to report)."""


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


def folder_of(feed: Feed, key: str | None) -> str | None:
    return partition_date(key, feed.partitioning).isoformat() if key else None


def _batches(feed: Feed, relative: str, key_text: str, batches: Iterator[ParseResult]) -> Iterator[ParseResult]:
    """A file's parsed batches; a parser's bug is a ParserFailure (a LandingFileError propagates as it is)."""
    try:
        yield from batches
    except LandingFileError:
        raise
    except (Exception, pl.exceptions.PanicException) as exc:
        raise ParserFailure(
            f"{relative}: the {feed.name} parser failed ({type(exc).__name__}); nothing of partition "
            f"{key_text or '(snapshot)'} was written and the file stays in landing. "
            f"Check it with `shuku parse {feed.source} <file>` and report the failure with the file.") from exc


def read_files(feed: Feed, key: str | None, files: list[Path], settings: Settings, library: Library, log,
                sinks: dict[str, TableSink], earlier: dict[str, str] | None):
    """Parse a partition's files a batch at a time into ``sinks``: (file logs, rejects, refusals, meta frames)."""
    key_text = key or ""
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
        # LandingFileError propagates (but for a feed of self-contained reports): nothing published yet.
        # A line-by-line file comes in batches of lines; a report (spans) is one result.
        batches = _batches(feed, relative, key_text, iter([spans.for_month(
            spans.delivery(path), key_text, *month_range(library))]) if spans else feed.parse_batches(path, library))
        result = next(batches)
        flog = FileLog(relative, sha, size, result.format, result.encoding)
        if original != relative or (spans is not None and fate == spans.SUPERSEDED):
            # Same bytes as a file already delivered, or an older delivery of the same report:
            # counted, not loaded a second time.
            flog.file_status, flog.duplicate_of = DUPLICATE_FILE, original
            if original == relative:
                flog.file_status, flog.duplicate_of = fate, str(newer.relative_to(settings.landing))
            for batch in chain([result], batches):
                for table, frame in feed.split(batch).items():
                    flog.rows_read[table] += frame.height
                flog.rows_read[feed.tables[0]] += batch.rejects.height
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
        if fate is not None:
            # An answer that says the usage is not there yet, or carries only exceptions: recorded, not loaded.
            _meta_rows(feed, meta_frames, relative, key_text, result, sha, spans.RECORDED_WHEN_HELD)
            flog.file_status = fate
            logs.append(flog)
            continue
        reasons, held = Counter(), []       # a report's rows wait for its verdict
        for batch in chain([result], batches):
            _meta_rows(feed, meta_frames, relative, key_text, batch, sha, None)
            file_frames, file_rejected = _rows_of(feed, batch, key, relative, flog)
            reasons.update(file_rejected.get_column("reason").to_list())
            rejects.append(file_rejected.with_columns(pl.lit(relative).alias("source_file")))
            if spans:
                held.append(file_frames)
                continue
            for table, frame in file_frames.items():
                sinks[table].add(frame)
        logs.append(flog)
        whole = spans.delivery(path).result if spans else None     # a report is refused whole, once
        refusal = refusal_for_file(
            feed, library, relative, whole.rows_read if whole else sum(flog.rows_read.values()),
            Counter(whole.rejects.get_column("reason").to_list()) if whole else reasons, key)
        if refusal is not None and spans:
            # One unreadable report never stops the others: it alone is left out, its lines quarantined.
            flog.file_status = REJECTED
            if log:
                log.warning(refusal.message)
            continue
        for file_frames in held:
            for table, frame in file_frames.items():
                sinks[table].add(frame)
        if refusal is not None:
            refusals.append(refusal)
    return logs, rejects, refusals, meta_frames


def _meta_rows(feed: Feed, meta_frames: dict, relative: str, key_text: str, result: ParseResult, sha: str,
               only: tuple | None) -> None:
    """The feed's meta rows of a file (``only``: of these meta tables alone)."""
    for table, hook in feed.meta_tables:
        if only is None or table in only:
            module, function = hook.split(":")
            meta_frames[table].append(getattr(importlib.import_module(module), function)(relative, key_text, result, sha))


def _rows_of(feed: Feed, result: ParseResult, key: str | None, relative: str,
             flog: FileLog) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """A batch's rows per staging table, and its rejects (rows dated outside the partition among them)."""
    file_rejects = [result.rejects.with_columns(pl.lit(feed.tables[0]).alias("staging_table"))]
    file_frames: dict[str, pl.DataFrame] = {}
    for table, frame in feed.split(result).items():
        frame = frame.with_columns(pl.lit(relative).alias("source_file"))
        part = contract_for(f"staging.{table}").partition_column
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
    return file_frames, file_rejected
