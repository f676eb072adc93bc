"""The retention sweep: each contract's ``slaProperties`` retention, enforced.

- A landing file older than the longest retention of the tables it feeds is deleted (the
  snapshot feeds' newest export is always kept: it is the one in use).
- Reader data older than its table's retention is de-linked, as Koha and FOLIO anonymise old
  loans: ``patron_pid`` and ``pid_key_version`` set to null, the row kept. Staging partitions
  are judged by their partition date, core and mart tables by their first DATE column.
- Aggregates (marts, counts) are left alone: they hold no reader.
Every action is a row of ``meta.retention_log``, and each sweep ends with a ``sweep_completed``
row, so ``shuku status`` shows when the last one ran. The clock is a parameter (``now``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Protocol

import polars as pl

from schemas.model import Contract, contract_for, load_contracts
from schemas.vocabulary import DATA_LAYERS
from warehouse.access import publish_afresh_next_time
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.partitions import record_checksum
from warehouse.lake.paths import partition_files, request_record, table_file
from warehouse.lake.views import files_connection, refresh_warehouse_views
from warehouse.privacy import append_rows, utc_now
from warehouse.settings import Settings

RETENTION_LOG = "meta.retention_log"
DAYS_PER_UNIT = {"d": 1, "day": 1, "days": 1, "m": 30, "month": 30, "months": 30, "y": 365, "year": 365, "years": 365}
READER_COLUMNS = ("patron_pid", "pid_key_version")


class LandingFeed(Protocol):
    """What the sweep needs of a landing feed (assets.feeds.Feed)."""

    tables: tuple[str, ...]
    partitioning: str | None

    def files(self, landing): ...
    def key_of(self, path): ...


def retention_days(contract: Contract) -> int | None:
    """The contract's retention in days (a year counted as 365 days), or None when it declares none."""
    for sla in contract.model.slaProperties or ():
        if sla.property == "retention" and sla.value is not None:
            unit = (sla.unit or "y").lower()
            if unit not in DAYS_PER_UNIT:
                raise ValueError(f"{contract.path}: slaProperties retention unit {sla.unit!r} is not one of d, m, y.")
            return int(float(sla.value) * DAYS_PER_UNIT[unit])
    return None


def _last_day(key: str) -> dt.date:
    """The last day a partition key (YYYY-MM-DD or YYYY-MM) covers."""
    if len(key) == 7:
        year, month = int(key[:4]), int(key[5:])
        return dt.date(year, month, calendar.monthrange(year, month)[1])
    return dt.date.fromisoformat(key)


@dataclass
class SweepOutcome:
    sweep_id: str
    swept_at: dt.datetime
    rows: list[dict] = field(default_factory=list)
    cutoffs: dict[str, str] = field(default_factory=dict)

    @property
    def files_deleted(self) -> int:
        return sum(1 for r in self.rows if r["action"] == "landing_file_deleted")

    @property
    def rows_delinked(self) -> int:
        return sum(r["row_count"] or 0 for r in self.rows if r["action"] == "rows_delinked")

    def summary(self) -> str:
        return (f"retention sweep {self.sweep_id[:8]}: {self.files_deleted} landing file(s) deleted, "
                f"{self.rows_delinked} row(s) de-linked from their reader")


def _delink(path, date_column: str | None, cutoff: dt.date) -> int:
    """Null the reader columns of rows before ``cutoff`` (all rows when no date column); rows changed."""
    frame = pl.read_parquet(path, hive_partitioning=False)
    old = frame.get_column("patron_pid").is_not_null()
    if date_column is not None:
        old &= (frame.get_column(date_column).cast(pl.Date) < cutoff).fill_null(False)
    changed = int(old.sum())
    if changed:
        frame = frame.with_columns([pl.when(old).then(None).otherwise(pl.col(c)).alias(c)
                                    for c in READER_COLUMNS if c in frame.columns])
        write_parquet_atomic(frame, path)
    return changed


def _row(outcome: SweepOutcome, action: str, target: str | None, key: str | None, cutoff: dt.date | None,
         days: int | None, rows: int | None) -> dict:
    return {"swept_at": outcome.swept_at, "sweep_id": outcome.sweep_id, "action": action, "target": target,
            "partition_key": key, "cutoff_date": cutoff, "retention_days": days, "row_count": rows}


def sweep(settings: Settings, feeds: Iterable[LandingFeed], now: dt.datetime | None = None) -> SweepOutcome:
    """Run one sweep as of ``now`` (UTC; default the current time) and log it."""
    outcome = SweepOutcome(uuid.uuid4().hex, now or utc_now())
    today = outcome.swept_at.date()
    for feed in feeds:
        spans = [retention_days(contract_for(f"staging.{t}")) for t in feed.tables]
        if any(s is None for s in spans):
            continue     # a table kept for ever keeps its files
        days = max(spans)
        cutoff = today - dt.timedelta(days=days)
        files = feed.files(settings.landing)
        in_use = set(files[-1:]) if feed.partitioning is None else set()
        for path in files:
            key = feed.key_of(path)
            if path in in_use or not key or _last_day(key) >= cutoff:
                continue
            path.unlink()
            request_record(path).unlink(missing_ok=True)
            outcome.rows.append(_row(outcome, "landing_file_deleted", str(path.relative_to(settings.landing)),
                                     key, cutoff, days, None))
    touched = []
    for contract in load_contracts().values():
        if contract.layer not in DATA_LAYERS or "patron_pid" not in contract.column_names:
            continue
        days = retention_days(contract)
        if days is None:
            continue
        cutoff = today - dt.timedelta(days=days)
        outcome.cutoffs[contract.qualified_name] = cutoff.isoformat()
        if contract.partition_column is not None:
            for key, path in partition_files(settings, contract).items():
                if _last_day(key[:10]) >= cutoff:
                    continue
                if changed := _delink(path, None, cutoff):
                    record_checksum(settings, path)
                    outcome.rows.append(_row(outcome, "rows_delinked", contract.qualified_name, key, cutoff, days, changed))
                    touched.append(contract)
        else:
            dated = next((c.name for c in contract.columns if c.physical_type == "DATE"), None)
            path = table_file(settings, contract)
            if dated is None or not path.exists():
                continue     # no date to judge a row's age by (dim_patron: the reader's current attributes)
            if changed := _delink(path, dated, cutoff):
                record_checksum(settings, path)
                outcome.rows.append(_row(outcome, "rows_delinked", contract.qualified_name, None, cutoff, days, changed))
                touched.append(contract)
    total = outcome.files_deleted + outcome.rows_delinked
    outcome.rows.append(_row(outcome, "sweep_completed", None, None, None, None, total))
    append_rows(settings, RETENTION_LOG, outcome.rows, outcome.swept_at)
    names = dict.fromkeys(c.qualified_name for c in touched)
    if touched:
        publish_afresh_next_time(settings)
    refresh_warehouse_views(settings, [contract_for(n) for n in (*names, RETENTION_LOG)])
    return outcome


def recent_sweeps(settings: Settings, limit: int = 5) -> list[dict]:
    """The latest sweeps, newest first: when, landing files deleted, rows de-linked."""
    con = files_connection(settings, [RETENTION_LOG])
    try:
        rows = con.execute("""
            select max(swept_at) as swept_at, sweep_id,
                   count(*) filter (where action = 'landing_file_deleted') as files_deleted,
                   coalesce(sum(row_count) filter (where action = 'rows_delinked'), 0) as rows_delinked
            from meta.retention_log group by sweep_id order by swept_at desc limit ?""", [limit]).fetchall()
    finally:
        con.close()
    return [dict(zip(("swept_at", "sweep_id", "files_deleted", "rows_delinked"), r)) for r in rows]
