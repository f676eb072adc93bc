"""The harvest coverage matrix, ``meta.counter_harvest``: platform × report × month, the latest outcome
of each (harvested, partial, no_usage, pending, failed) and why.

A harvest replaces the cells it asked for and keeps the others, so the table always says what the
warehouse holds of every platform's reports, month by month.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from schemas.model import conform, contract_for
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import write_table
from warehouse.lake.paths import PART_FILE, table_dir
from warehouse.settings import Settings

TABLE = "meta.counter_harvest"
HARVESTED, PARTIAL, NO_USAGE, PENDING, FAILED = "harvested", "partial", "no_usage", "pending", "failed"
STATUSES = (HARVESTED, PARTIAL, NO_USAGE, PENDING, FAILED)
KEY = ["platform", "report_id", "usage_month"]
# The harvest asset's metadata entry listing its failed cells (each one alert: credentials refused,
# a report the platform does not support, an answer that could not be loaded).
FAILED_CELLS = "failed_cells"
# One mark per status, for the matrix in a terminal and on the report page.
MARKS = {HARVESTED: "✓", PARTIAL: "◐", NO_USAGE: "0", PENDING: "…", FAILED: "✗"}


def stored(settings: Settings) -> pl.DataFrame:
    """The coverage table as it is (empty when nothing was ever harvested)."""
    path = table_dir(settings, TABLE) / PART_FILE          # read without its contract when it is there
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=contract_for(TABLE).polars_schema())


def record(settings: Settings, cells: list[dict]) -> pl.DataFrame:
    """Replace the cells given (by platform, report and month), keep the others; returns the new cells."""
    contract = contract_for(TABLE)
    frame = conform(pl.DataFrame(cells, schema=contract.polars_schema()), contract)
    if frame.height == 0:
        return frame
    with table_lock(settings, TABLE):
        kept = stored(settings).join(frame.select(KEY), on=KEY, how="anti")
        write_table(settings, contract, pl.concat([kept, frame]).sort(KEY))
    return frame


def pending_months(settings: Settings, platforms: list[str] | None = None) -> list[dt.date]:
    """The months some cell of which is still pending (asked again by the next harvest)."""
    frame = stored(settings).filter(pl.col("status") == PENDING)
    if platforms is not None:
        frame = frame.filter(pl.col("platform").is_in(platforms))
    return sorted(set(frame.get_column("usage_month").to_list()))


def matrix(frame: pl.DataFrame, months: int = 12) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """(the latest ``months`` months, [(platform, report, [mark per month])]) for display."""
    if frame.height == 0:
        return [], []
    shown = sorted({m.strftime("%Y-%m") for m in frame.get_column("usage_month").to_list()})[-months:]
    cells = {(p, r, m.strftime("%Y-%m")): s for p, r, m, s in frame.select(*KEY, "status").iter_rows()}
    rows = []
    for platform, report in sorted({(p, r) for p, r, _ in cells}):
        rows.append((platform, report, [MARKS.get(cells.get((platform, report, m)), "") for m in shown]))
    return shown, rows


def problems(frame: pl.DataFrame, limit: int = 20) -> list[dict]:
    """The cells not simply harvested, newest month first, with their reasons."""
    rows = (frame.filter(pl.col("status") != HARVESTED)
            .sort(["usage_month", "platform", "report_id"], descending=[True, False, False]).head(limit))
    return rows.select("platform", "report_id", "usage_month", "status", "code", "reason").to_dicts()


def failed_cells(cells: list[dict]) -> list[dict]:
    """The failed cells of a harvest, one per platform, report and reason, with the months they cover."""
    grouped: dict[tuple, list[str]] = {}
    for c in cells:
        if c["status"] == FAILED:
            grouped.setdefault((c["platform"], c["report_id"], c["code"], c["reason"]), []).append(
                c["usage_month"].strftime("%Y-%m"))
    return [{"platform": p, "report_id": r, "code": code, "reason": reason, "months": sorted(months)}
            for (p, r, code, reason), months in grouped.items()]
