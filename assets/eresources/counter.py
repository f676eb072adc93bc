"""COUNTER Release 5 and 5.1 reports, tabular (TSV, CSV, XLSX) or COUNTER_SUSHI JSON, stored long.

One row per report item × attribute set × metric × month. Empty month cells are
skipped (COUNTER leaves a cell empty where there was no usage to report; it is not 0).
The report header goes to ``ParseResult.metadata``, in one form whatever the format
(counter_header.py); SUSHI exceptions (3030 no usage, 3031 not ready, 3040 partial data,
3050 parameter not recognised, 3062 invalid report attribute …) are recorded there and never
raised. An XLSX report is read from its first sheet, cell by cell, through the same code as a TSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from assets.eresources.counter_header import SPACES, clean_heading, exceptions_from_json, header_of_json, header_of_table
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, row_schema
from warehouse.library import Library
from warehouse.textio import LandingFileError, decode, read_bytes

COUNTER_SCHEMA = row_schema("counter_usage")
CARDS = None            # COUNTER counts use, never a reader
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
MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MONTH_HEADING = re.compile(r"^([A-Za-z]{3})-(\d{4}|\d{2})$")
# A month heading typed as a date in a spreadsheet reaches us as `2022-01-01`.
_MONTH_ISO = re.compile(r"^(\d{4})-(\d{2})(?:-01)?$")
ZIP_MAGIC = b"PK\x03\x04"


def _value(column: str, raw) -> str | None:
    if raw is None:
        return None
    text = str(raw)
    text = SPACES.sub("", text) if column in IDENTIFIERS else text.strip()
    return text or None


def _month_of_heading(heading: str) -> dt.date | None:
    """`Jan-2022`, `Jan-22` (or a spreadsheet's `2022-01-01`) → 2022-01-01; anything else → None."""
    if (iso := _MONTH_ISO.match(heading)) and 1 <= int(iso.group(2)) <= 12:
        return dt.date(int(iso.group(1)), int(iso.group(2)), 1)
    m = _MONTH_HEADING.match(heading)
    if not m or m.group(1).lower() not in MONTHS:
        return None
    year = int(m.group(2))
    if year < 100:
        year += 2000  # COUNTER R5 began in 2019; two-digit years are this century
    return dt.date(year, MONTHS[m.group(1).lower()], 1)


def _month_of_period(value: str) -> dt.date:
    """`2022-01`, `2022-01-01` → 2022-01-01 (raises ValueError otherwise)."""
    year, month = value.strip()[:7].split("-")
    return dt.date(int(year), int(month), 1)


class _Rows:
    """Output columns as Python lists; one frame at the end."""

    def __init__(self) -> None:
        self.cols = {name: [] for name in COUNTER_SCHEMA}
        self.rejects = {name: [] for name in REJECT_SCHEMA}

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

    def reject(self, line: int, raw: str, reason: Reason, detail: str) -> None:
        for name, value in zip(REJECT_SCHEMA, (line, raw, str(reason), detail)):
            self.rejects[name].append(value)

    def result(self, encoding: str, fmt: str, metadata: dict) -> ParseResult:
        return ParseResult(rows=pl.DataFrame(self.cols, schema=COUNTER_SCHEMA),
                           rejects=pl.DataFrame(self.rejects, schema=REJECT_SCHEMA),
                           encoding=encoding, format=fmt, metadata=metadata)


def _count(cell: str) -> int:
    """A month cell; some exports group thousands (`1,234`)."""
    return int(cell.replace(",", ""))


def _parse_text(path: Path, text: str, encoding: str) -> ParseResult:
    """A TSV or CSV report (the delimiter is the one its first line uses more)."""
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") >= first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = ((reader.line_num, row) for row in reader)
    return _parse_tabular(path, rows, encoding, "tsv" if delimiter == "\t" else "csv", delimiter)


def _cell_text(value) -> str:
    """A spreadsheet cell as the text a TSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(path: Path, data: bytes) -> list[tuple[int, list[str]]]:
    """(row number, cells as text) of the first sheet of an XLSX workbook."""
    from openpyxl import load_workbook   # only XLSX reports need it
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            # The sheet's XML is read lazily: a damaged part shows only while its rows are read.
            return [(n, [_cell_text(v) for v in row])
                    for n, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)]
        finally:
            book.close()
    except Exception as exc:  # noqa: BLE001 - any failure inside the workbook reader means the file is damaged
        raise LandingFileError(
            f"{path}: a ZIP file but not a readable XLSX workbook ({type(exc).__name__}: {str(exc)[:200]}); "
            "save the report again as .xlsx (Excel 2007 or later), or download it as TSV.") from None


def _parse_tabular(path: Path, rows: Iterable[tuple[int, list[str]]], encoding: str, kind: str,
                   joiner: str) -> ParseResult:
    """A tabular report from its (line number, cells) rows; ``joiner`` rebuilds a rejected line."""
    rows: Iterator[tuple[int, list[str]]] = iter(rows)
    header: dict[str, str] = {}
    headings: list[str] | None = None
    for _, row in rows:
        cells = [c.strip() for c in row]
        if not any(cells):
            if header:
                break           # the blank row that ends the header block
            continue
        key = clean_heading(cells[0])
        if "Metric_Type" in (clean_heading(c) for c in cells):
            headings = row      # a report without its blank row: the headings came first
            break
        header[key] = cells[1] if len(cells) > 1 else ""
    if "Report_ID" not in header:
        raise LandingFileError(
            f"{path}: no COUNTER report header (a `Report_ID` row in the first rows); "
            "download the report again as a COUNTER R5/R5.1 TSV, CSV or JSON file.")
    if headings is None:
        headings = next((r for _, r in rows if any(c.strip() for c in r)), None)
    if headings is None:
        headings = []
    release, report_id = header.get("Release", ""), header["Report_ID"]
    metadata = header_of_table(header)
    # Map each heading to an item column or a month; Reporting_Period_Total and
    # attributes we do not keep (Publisher_ID, Parent_* …) are ignored.
    item_at: list[tuple[int, str]] = []
    month_at: list[tuple[int, dt.date, str]] = []
    for i, heading in enumerate(headings):
        key = clean_heading(heading)
        if key in HEADINGS and HEADINGS[key] not in (c for _, c in item_at):
            item_at.append((i, HEADINGS[key]))
        elif (month := _month_of_heading(key)) is not None:
            month_at.append((i, month, key))
    if not any(c == "metric_type" for _, c in item_at):
        raise LandingFileError(
            f"{path}: the report's column headings have no `Metric_Type` column; "
            "this is not a COUNTER R5/R5.1 report body — download the report again.")
    metadata["months"] = [m.isoformat() for _, m, _ in month_at]
    out = _Rows()
    lines = lines_without_usage = 0
    width = len(headings)
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue            # trailing blank rows are padding, not data
        lines += 1
        raw = joiner.join(row)
        values = {col: _value(col, row[i]) if i < len(row) else None for i, col in item_at}
        if len(row) > width and any(c.strip() for c in row[width:]):
            out.reject(line, raw, Reason.MALFORMED_LINE, f"{len(row)} fields where the headings have {width}")
            continue
        metric = values.get("metric_type")
        if not metric:
            out.reject(line, raw, Reason.MISSING_REQUIRED, "Metric_Type is empty")
            continue
        item = tuple(values.get(col) for col in ITEM_COLUMNS)
        counts = []
        try:
            for i, month, heading in month_at:
                cell = row[i].strip() if i < len(row) else ""
                if cell:
                    counts.append((month, _count(cell)))
        except ValueError:
            out.reject(line, raw, Reason.BAD_NUMBER, f"{heading}: {cell[:40]!r} is not a whole number")
            continue
        if not counts:
            lines_without_usage += 1
        for month, count in counts:
            out.add(month, release, report_id, item, metric, count, line)
    metadata["item_lines"] = lines
    metadata["item_lines_without_usage"] = lines_without_usage
    return out.result(encoding, f"counter-r{release.replace('.', '')}-{kind}", metadata)


def _item_ids(raw) -> dict[str, str]:
    """R5 `[{Type, Value}]` or R5.1 `{DOI: …, Proprietary: …}` → our id columns."""
    pairs = raw.items() if isinstance(raw, dict) else ((i.get("Type"), i.get("Value")) for i in raw or () if isinstance(i, dict))
    ids = {}
    for kind, value in pairs:
        col = HEADINGS.get(clean_heading(str(kind)))
        if col in IDENTIFIERS and col not in ids and (v := _value(col, value)):
            ids[col] = v
    return ids


def _parse_json(path: Path, text: str, encoding: str) -> ParseResult:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LandingFileError(f"{path}: is not valid JSON ({exc}); fetch the SUSHI report again.") from None
    if isinstance(doc, list) or (isinstance(doc, dict) and "Report_Header" not in doc and "Code" in doc):
        # A SUSHI server answers with bare exceptions when there is no report to give.
        exceptions = exceptions_from_json(doc)
        if exceptions and all(e["code"] is not None for e in exceptions):
            meta = {"release": None, "report_id": None, "exceptions": exceptions, "header": {}}
            return _Rows().result(encoding, "counter-sushi-json", meta)
    if not isinstance(doc, dict) or not isinstance(doc.get("Report_Header"), dict):
        raise LandingFileError(
            f"{path}: JSON without a COUNTER_SUSHI `Report_Header`; "
            "fetch the report again from the platform's SUSHI endpoint.")
    head = doc["Report_Header"]
    release, report_id = str(head.get("Release", "")), str(head.get("Report_ID", ""))
    metadata = header_of_json(head)
    out = _Rows()
    for number, item in enumerate(doc.get("Report_Items") or (), 1):
        try:
            _json_item(out, item, number, release, report_id)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raw = json.dumps(item, ensure_ascii=False)[:4096]
            reason = Reason.BAD_TIMESTAMP if isinstance(exc, _BadMonth) else Reason.BAD_NUMBER
            out.reject(number, raw, reason, f"Report_Items[{number}]: {exc}"[:500])
    fmt = f"counter-r{release.replace('.', '')}-json"
    return out.result(encoding, fmt, metadata)


class _BadMonth(ValueError):
    pass


def _json_month(value) -> dt.date:
    try:
        return _month_of_period(str(value))
    except ValueError:
        raise _BadMonth(f"period {value!r} is not a month (YYYY-MM)") from None


def _json_count(metric: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(f"{metric} count {value!r} is not a whole number")
    return int(value)


def _json_item(out: _Rows, item: dict, number: int, release: str, report_id: str) -> None:
    """Append every row of one Report_Item, or raise before appending any."""
    base = {col: _value(col, item.get(name)) for name, col in HEADINGS.items()
            if col not in IDENTIFIERS and col != "metric_type" and name in item}
    base.update(_item_ids(item.get("Item_ID")))
    staged = []
    if "Attribute_Performance" in item:            # R5.1
        for attrs in item["Attribute_Performance"] or ():
            merged = dict(base)
            merged.update({col: _value(col, attrs[name]) for name, col in HEADINGS.items()
                           if name in attrs and name != "Performance"})
            key = tuple(merged.get(col) for col in ITEM_COLUMNS)
            for metric, months in (attrs.get("Performance") or {}).items():
                for period, count in months.items():
                    staged.append((_json_month(period), key, metric, _json_count(metric, count)))
    else:                                           # R5
        key = tuple(base.get(col) for col in ITEM_COLUMNS)
        for perf in item.get("Performance") or ():
            month = _json_month((perf.get("Period") or {}).get("Begin_Date"))
            for inst in perf.get("Instance") or ():
                metric = inst["Metric_Type"]
                staged.append((month, key, metric, _json_count(metric, inst.get("Count"))))
    for month, key, metric, count in staged:
        out.add(month, release, report_id, key, metric, count, number)


def parse(path: Path, library: Library) -> ParseResult:
    """Rows of one COUNTER report file, tabular, XLSX or JSON (recognised from the content)."""
    path = Path(path)
    data = read_bytes(path)
    if data.startswith(ZIP_MAGIC):
        return _parse_tabular(path, _xlsx_rows(path, data), "utf-8", "xlsx", "\t")
    text, encoding = decode(data, path)
    text = text.lstrip("\ufeff")
    if text.lstrip()[:1] in ("{", "["):
        return _parse_json(path, text, encoding)
    return _parse_text(path, text, encoding)
