"""What the tabular and the JSON COUNTER readers share: the output columns, the COUNTER
headings they come from, and the rows collected as they are read."""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets.eresources.counter_header import SPACES
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, row_schema

COUNTER_SCHEMA = row_schema("counter_usage")
# The columns that describe an item and its attributes (everything before the month).
ITEM_COLUMNS = tuple(COUNTER_SCHEMA)[3:18]

# COUNTER column heading (spaces removed) → our column.
HEADINGS = {
    "Platform": "platform", "Database": "database", "Title": "title", "Item": "title",
    "Publisher": "publisher", "DOI": "doi", "ISBN": "isbn", "Print_ISSN": "print_issn",
    "Online_ISSN": "online_issn", "Proprietary_ID": "proprietary_id", "Proprietary": "proprietary_id",
    "URI": "uri", "Data_Type": "data_type", "Section_Type": "section_type", "YOP": "yop",
    "Access_Type": "access_type", "Access_Method": "access_method", "Metric_Type": "metric_type",
}
# Identifiers never contain spaces; a space in one is a typing slip (10.1000/ xyz123).
IDENTIFIERS = {"doi", "isbn", "print_issn", "online_issn", "proprietary_id", "uri"}


def cell_value(column: str, raw) -> str | None:
    """A heading's value as stored: trimmed, identifiers without spaces, empty as None."""
    if raw is None:
        return None
    text = str(raw)
    text = SPACES.sub("", text) if column in IDENTIFIERS else text.strip()
    return text or None


def month_of_period(value: str) -> dt.date:
    """`2022-01`, `2022-01-01` → 2022-01-01 (raises ValueError otherwise)."""
    year, month = value.strip()[:7].split("-")
    return dt.date(int(year), int(month), 1)


class Rows:
    """Output columns as Python lists, turned into a frame every ``GROUP`` rows: a Python list holds a
    value in 8 bytes plus the object, about four times what the frame holds."""

    GROUP = 200_000

    def __init__(self) -> None:
        self.cols = {name: [] for name in COUNTER_SCHEMA}
        self.rejects = {name: [] for name in REJECT_SCHEMA}
        self.frames: list[pl.DataFrame] = []

    def add(self, month: dt.date, release: str, report_id: str, item: tuple, metric: str, count: int, line: int):
        c = self.cols
        c["usage_month"].append(month)
        c["release"].append(release)
        c["report_id"].append(report_id)
        for name, value in zip(ITEM_COLUMNS, item):
            c[name].append(value)
        c["metric_type"].append(metric)
        c["usage_count"].append(count)
        c["source_line"].append(line)
        if len(c["source_line"]) >= self.GROUP:
            self.frames.append(pl.DataFrame(c, schema=COUNTER_SCHEMA))
            self.cols = {name: [] for name in COUNTER_SCHEMA}

    def reject(self, line: int, raw: str, reason: Reason, detail: str) -> None:
        for name, value in zip(REJECT_SCHEMA, (line, raw, str(reason), detail)):
            self.rejects[name].append(value)

    def result(self, encoding: str, fmt: str, metadata: dict) -> ParseResult:
        rows = pl.concat([*self.frames, pl.DataFrame(self.cols, schema=COUNTER_SCHEMA)])
        return ParseResult(rows=rows, rejects=pl.DataFrame(self.rejects, schema=REJECT_SCHEMA),
                           encoding=encoding, format=fmt, metadata=metadata)
