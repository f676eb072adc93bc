"""COUNTER/SUSHI exceptions of one report file as rows of ``meta.counter_exceptions``.

A report that says "3030 no usage" or "3040 partial data" is loaded, not failed; its
exceptions are kept per file so `shuku status` can show which months are incomplete.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePosixPath

import polars as pl

from assets.parsing import ParseResult
from schemas.model import contract_for

TABLE = "meta.counter_exceptions"
# Release 5 severities (Release 5.1 dropped the field); used when a report does not say.
SEVERITY = {3030: "Error", 3031: "Error", 3032: "Warning", 3040: "Warning", 3050: "Warning",
            3060: "Warning", 3061: "Warning", 3062: "Warning", 3063: "Warning"}
NO_USAGE = 3030
# Usage that is not there yet: service busy, report queued, too many requests, usage not ready.
NOT_YET_CODES = {1010, 1011, 1020, 3031}
UNAVAILABLE_CODES = {3032}       # usage no longer available for the requested dates
_MONTH = re.compile(r"(\d{4})-(\d{2})(?:-\d{2})?")
_RANGE = re.compile(r"(\d{4}-\d{2})(?:-\d{2})?\s*(?:to|–|—|/|\.\.)\s*(\d{4}-\d{2})(?:-\d{2})?")
# Landing names are `<platform>_<REPORT>_YYYY-MM.ext`: the platform of a report without rows.
FILE_NAME = re.compile(r"(?P<platform>.+?)_(?P<report>[A-Za-z]{2}(?:_[A-Za-z0-9]+)?)_\d{4}-\d{2}")


def months_named(data) -> list[str]:
    """The months (YYYY-MM) an exception's Data names: `2025-09`, `2025-01-01 to 2025-03-31`; [] if none."""
    text = str(data or "")
    months: set[str] = set()
    for begin, end in _RANGE.findall(text):
        year, month = int(begin[:4]), int(begin[5:])
        while f"{year:04d}-{month:02d}" <= end and len(months) < 1200:
            months.add(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for year, month in _MONTH.findall(_RANGE.sub(" ", text)):
        if 1 <= int(month) <= 12:
            months.add(f"{year}-{month}")
    return sorted(months)


def report_platform(source_file: str, result: ParseResult) -> str | None:
    """The report's one platform, from its rows or else from its file name."""
    platforms = result.rows.get_column("platform").drop_nulls().unique().to_list() if result.rows.height else []
    if len(platforms) == 1:
        return platforms[0]
    match = FILE_NAME.match(PurePosixPath(source_file).name)
    return match.group("platform") if match else None


def exception_rows(source_file: str, key: str, result: ParseResult, file_sha256: str) -> pl.DataFrame:
    """One row per exception the report carries (none for a clean report)."""
    month = dt.date.fromisoformat(f"{key}-01")
    platform = report_platform(source_file, result)
    rows = []
    for exc in result.metadata.get("exceptions") or ():
        code = exc.get("code")
        code = code if isinstance(code, int) else None
        rows.append({
            "usage_month": month, "source_file": source_file, "release": result.metadata.get("release") or None,
            "report_id": result.metadata.get("report_id") or None, "platform": platform, "code": code,
            "severity": exc.get("severity") or SEVERITY.get(code),
            "message": None if exc.get("message") is None else str(exc["message"]),
            "data": None if exc.get("data") is None else str(exc["data"]),
        })
    return pl.DataFrame(rows, schema=contract_for(TABLE).polars_schema())
