"""Which COUNTER files a month is loaded from.

A COUNTER report covers a date range (a SUSHI request for a year returns one report), so a
file belongs to every month it reports on: the months of its Reporting_Period, of its rows and
of the exceptions it names; a file that says neither (a bare SUSHI exception) belongs to the
month in its name. Within a month, the same report (report, platform, institution, filters
and attributes) delivered more than once is loaded from its newest delivery — the latest
`Created`, then the latest to land — and the others are superseded; an answer that says the
usage is not ready (1010, 1011, 1020, 3031) or carries only exceptions replaces nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.eresources.counter import parse
from assets.eresources.exceptions import FILE_NAME, NO_USAGE, NOT_YET_CODES, UNAVAILABLE_CODES, months_named
from assets.ingest_log import EMPTY, EXCEPTIONS_ONLY, NOT_YET, SUPERSEDED, UNREADABLE
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason
from warehouse.textio import LandingFileError

__all__ = ["SUPERSEDED", "UNREADABLE", "delivery", "fates", "for_month", "months_of"]
# The meta tables written for a file that is not loaded in a month (it says why in its exceptions).
RECORDED_WHEN_HELD = {"counter_exceptions"}
_KEY = re.compile(r"_(\d{4}-\d{2})\.[A-Za-z]+(?:\.gz)?$")
# Parsed files kept for the months after the first (a year's report is read once per run).
_CACHE: OrderedDict[tuple, "Delivery"] = OrderedDict()
_CACHE_ROWS = 2_000_000


@dataclass
class Delivery:
    """One COUNTER landing file as read: what it reports on and how new it is."""

    path: Path
    result: ParseResult | None
    error: str | None = None                                  # why it could not be read
    months: tuple[str, ...] = ()                              # YYYY-MM it belongs to
    held: dict[str, str] = field(default_factory=dict)        # month → NOT_YET / EXCEPTIONS_ONLY
    report: tuple | None = None                               # which report it is a delivery of
    newness: tuple = ()


def _month_span(begin: str | None, end: str | None) -> list[str]:
    try:
        first, last = dt.date.fromisoformat(begin[:7] + "-01"), dt.date.fromisoformat(end[:7] + "-01")
    except (TypeError, ValueError):
        return []
    months, month = [], first
    while month <= last and len(months) < 1200:
        months.append(month.strftime("%Y-%m"))
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def _report_of(result: ParseResult, path: Path) -> tuple | None:
    """The report a file is a delivery of; None for an answer that is no report."""
    meta = result.metadata
    if not meta.get("report_id"):
        return None
    platforms = sorted(result.rows.get_column("platform").drop_nulls().unique().to_list())
    name = FILE_NAME.match(path.name)
    platform = "|".join(platforms) or (name.group("platform") if name else "")
    return (str(meta["report_id"]).upper(), platform, meta.get("institution_id") or "",
            json.dumps(meta.get("report_filters") or {}, sort_keys=True),
            json.dumps(meta.get("report_attributes") or {}, sort_keys=True))


def _read(path: Path, library) -> Delivery:
    stat = path.stat()
    newness_tail = (stat.st_mtime_ns, str(path))
    try:
        result = parse(path, library)
    except (LandingFileError, Exception) as exc:       # noqa: BLE001 - one bad report never stops the others
        error = str(exc) if isinstance(exc, LandingFileError) else (
            f"{path}: the counter parser failed ({type(exc).__name__}: {str(exc)[:200]}); "
            "check it with `shuku parse counter <file>` and report the failure with the file.")
        key = _KEY.search(path.name)
        return Delivery(path, None, error, (key.group(1),) if key else (), newness=("",) + newness_tail)
    meta = result.metadata
    period = meta.get("reporting_period") or {}
    row_months = sorted({m.strftime("%Y-%m") for m in result.rows.get_column("usage_month").unique().to_list()})
    exceptions = meta.get("exceptions") or []
    codes = {e.get("code") for e in exceptions}
    named = {m for e in exceptions for m in months_named(e.get("data"))}
    months = set(_month_span(period.get("begin"), period.get("end"))) | set(row_months) | named
    if not months and (key := _KEY.search(path.name)):
        months = {key.group(1)}
    held: dict[str, str] = {}
    if result.empty:
        # Nothing in it (usually a failed harvest): it replaces nothing.
        return Delivery(path, result, None, tuple(sorted(months)), {m: EMPTY for m in months}, None,
                        (str(meta.get("created") or ""),) + newness_tail)
    has_report = bool(meta.get("report_id")) and (result.rows.height or meta.get("item_lines") or codes <= {NO_USAGE})
    if not result.rows.height and not has_report:
        # No report, or one that says why there is none: it replaces nothing.
        status = NOT_YET if codes & NOT_YET_CODES else EXCEPTIONS_ONLY
        held = {m: status for m in months}
    else:
        for e in exceptions:
            code = e.get("code")
            if code in NOT_YET_CODES or code in UNAVAILABLE_CODES:
                concerned = months_named(e.get("data")) or [m for m in months if m not in row_months]
                for month in concerned:
                    if month not in row_months:
                        held[month] = NOT_YET if code in NOT_YET_CODES else EXCEPTIONS_ONLY
    return Delivery(path, result, None, tuple(sorted(months)), held, _report_of(result, path),
                    (str(meta.get("created") or ""),) + newness_tail)


def delivery(path: Path, library=None) -> Delivery:
    """The file as read, from the cache while it is unchanged (same size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    found = _read(path, library)
    _CACHE[key] = found
    while len(_CACHE) > 1 and sum(d.result.rows.height for d in _CACHE.values() if d.result) > _CACHE_ROWS:
        _CACHE.popitem(last=False)
    return found


def months_of(path: Path) -> tuple[str, ...]:
    """The months (YYYY-MM) a COUNTER landing file belongs to."""
    return delivery(path).months


def fates(key: str, paths: list[Path]) -> dict[Path, tuple[str | None, Path | None]]:
    """Per file of month ``key``: (None, None) when it is loaded, else (why not, the newer delivery)."""
    found = {p: delivery(p) for p in paths}
    out: dict[Path, tuple[str | None, Path | None]] = {}
    newest: dict[tuple, Delivery] = {}
    for path, d in found.items():
        if d.error is not None:
            out[path] = (UNREADABLE, None)
        elif key in d.held:
            out[path] = (d.held[key], None)
        elif d.report is not None and (d.report not in newest or d.newness > newest[d.report].newness):
            newest[d.report] = d
    for path, d in found.items():
        if path in out:
            continue
        winner = newest.get(d.report) if d.report is not None else None
        out[path] = (None, None) if winner is None or winner is d else (SUPERSEDED, winner.path)
    return out


def for_month(d: Delivery, key: str, first: str, last: str) -> ParseResult:
    """The file's rows of month ``key``; its rejected lines (and its rows of months outside first..last,
    which have no partition) go with the first month it belongs to, so they are counted once."""
    result = d.result
    month = dt.date.fromisoformat(f"{key}-01")
    rows = result.rows.filter(pl.col("usage_month") == month)
    inside = [m for m in d.months if first <= m <= last]
    rejects = result.rejects.clear()
    if inside and key == inside[0]:
        outside = result.rows.filter(~pl.col("usage_month").dt.strftime("%Y-%m").is_between(pl.lit(first), pl.lit(last)))
        rejects = pl.concat([result.rejects, _outside_rejects(outside, first, last)], how="vertical")
    exceptions = [e for e in result.metadata.get("exceptions") or ()
                  if not (named := months_named(e.get("data"))) or key in named]
    return ParseResult(rows, rejects, result.encoding, result.format, {**result.metadata, "exceptions": exceptions})


def _outside_rejects(rows: pl.DataFrame, first: str, last: str) -> pl.DataFrame:
    details = [f"usage_month {m:%Y-%m} is outside the COUNTER months kept ({first}..{last}: COUNTER Release 5 began "
               f"in January 2019, and a month is loaded once it has ended)" for m in rows.get_column("usage_month")]
    texts = [json.dumps(r, default=str, ensure_ascii=False) for r in rows.iter_rows(named=True)]
    return pl.DataFrame({"source_line": rows.get_column("source_line"), "raw_text": texts,
                         "reason": [Reason.WRONG_PARTITION.value] * rows.height, "detail": details},
                        schema=REJECT_SCHEMA)
