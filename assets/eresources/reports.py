"""The header of each loaded COUNTER report as one row of ``meta.counter_reports``.

TSV, CSV, XLSX and JSON headers are brought to one form by the parser, so the same report
gives the same row whatever format it was delivered in.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from assets.eresources.exceptions import report_platform
from assets.parsing import ParseResult
from schemas.model import contract_for

TABLE = "meta.counter_reports"


def _text(value) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _json(mapping: dict | None) -> str | None:
    # Sorted keys: the same filters give the same text, whatever order the platform wrote them in.
    return json.dumps(mapping, ensure_ascii=False, sort_keys=True) if mapping else None


def report_rows(source_file: str, key: str, result: ParseResult, file_sha256: str) -> pl.DataFrame:
    """One row for the report file: its header, its checksum and how many exceptions it carries."""
    meta = result.metadata
    period = meta.get("reporting_period") or {}
    row = {
        "usage_month": dt.date.fromisoformat(f"{key}-01"), "source_file": source_file, "file_sha256": file_sha256,
        **{name: _text(meta.get(name)) for name in (
            "release", "report_id", "report_name", "institution_name", "institution_id", "created", "created_by")},
        "platform": report_platform(source_file, result),
        "reporting_period_begin": _text(period.get("begin")), "reporting_period_end": _text(period.get("end")),
        "metric_types": "; ".join(meta.get("metric_types") or ()) or None,
        "report_filters": _json(meta.get("report_filters")),
        "report_attributes": _json(meta.get("report_attributes")),
        "exceptions_count": len(meta.get("exceptions") or ()),
    }
    return pl.DataFrame([row], schema=contract_for(TABLE).polars_schema())
