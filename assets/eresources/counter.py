"""COUNTER Release 5 and 5.1 reports, tabular (TSV, CSV, XLSX) or COUNTER_SUSHI JSON, stored long.

One row per report item × attribute set × metric × month. Empty month cells are
skipped (COUNTER leaves a cell empty where there was no usage to report; it is not 0).
The report header goes to ``ParseResult.metadata``, in one form whatever the format
(counter_header.py); SUSHI exceptions (3030 no usage, 3031 not ready, 3040 partial data,
3050 parameter not recognised, 3062 invalid report attribute …) are recorded there and never
raised. An XLSX report is read from its first sheet, cell by cell, through the same code as a TSV;
COUNTER_SUSHI JSON, and the answers a SUSHI server gives in place of a report, by counter_json.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from assets.eresources.counter_header import clean_heading, header_of_table
from assets.eresources.counter_json import parse_json
from assets.eresources.counter_rows import COUNTER_SCHEMA, HEADINGS, ITEM_COLUMNS, Rows, cell_value
from assets.parsing import ParseResult, Reason
from assets.reading import (EMPTY, HEADER_ONLY, NO_BYTES, check_json_values, empty_result, limits_of,
                            read_landing_text, sniff_text, table_rows, too_deep)
from warehouse.library import Library
from warehouse.textio import GZIP_MAGIC, LandingFileError, iter_bytes, read_bytes, read_head

CARDS = None            # COUNTER counts use, never a reader
MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MONTH_HEADING = re.compile(r"^([A-Za-z]{3})-(\d{4}|\d{2})$")
# A month heading typed as a date in a spreadsheet reaches us as `2022-01-01`.
_MONTH_ISO = re.compile(r"^(\d{4})-(\d{2})(?:-01)?$")
ZIP_MAGIC = b"PK\x03\x04"


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


def _count(cell: str) -> int:
    """A month cell; some exports group thousands (`1,234`)."""
    return int(cell.replace(",", ""))


def _parse_text(path: Path, text: str, encoding: str) -> ParseResult:
    """A TSV or CSV report (the delimiter is the one its first line uses more)."""
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") >= first.count(",") else ","
    rows = table_rows(text, delimiter)
    result = _parse_tabular(path, rows, encoding, "tsv" if delimiter == "\t" else "csv", delimiter)
    return rows.with_errors(result)


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
    out = Rows()
    lines = lines_without_usage = 0
    width = len(headings)
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue            # trailing blank rows are padding, not data
        lines += 1
        raw = joiner.join(row)
        values = {col: cell_value(col, row[i]) if i < len(row) else None for i, col in item_at}
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


def _json_text_of_json(text: str) -> bool:
    """A SUSHI answer some harvesters store as a JSON string of its JSON text (a CSV may start with `"` too)."""
    if text.lstrip()[:1] != '"':
        return False
    try:
        inner = json.loads(text)
    except ValueError:
        return False
    return isinstance(inner, str) and inner.lstrip()[:1] in ("{", "[")


def parse(path: Path, library: Library) -> ParseResult:
    """Rows of one COUNTER report file, tabular, XLSX or JSON (recognised from the content)."""
    path = Path(path)
    if read_head(path, len(ZIP_MAGIC)) == ZIP_MAGIC:
        _within_report_limit(path, library)
        data = read_bytes(path, limits_of(library).max_file_bytes)
        return _parse_tabular(path, _xlsx_rows(path, data), "utf-8", "xlsx", "\t")
    head = sniff_text(path).lstrip()
    whole = head[:1] in ("{", "[") or head[:1] == '"' and head[1:].lstrip()[:1] in ("{", "[", "\\")
    if not whole:
        _within_report_limit(path, library)
    landing = read_landing_text(path, "counter", library, whole=whole)
    text, encoding = landing.text, landing.encoding
    if landing.blank:
        return empty_result("counter", encoding, NO_BYTES, COUNTER_SCHEMA)
    if whole and (text.lstrip()[:1] in ("{", "[") or _json_text_of_json(text)):
        try:
            result = parse_json(path, text, encoding)
        except RecursionError:
            raise too_deep(path) from None
        check_json_values(landing, "COUNTER report or SUSHI answer")
        return _said_empty(result)
    if whole:       # a CSV whose first cell is quoted: read again, line by line within bounds
        landing = read_landing_text(path, "counter", library)
        text = landing.text
    with landing.explained():
        return _said_empty(landing.with_long_lines(_parse_text(path, text, encoding)))


def _within_report_limit(path: Path, library: Library) -> None:
    """Refuse a tabular report over ``max_report_bytes`` (decompressed) before reading it: a report is
    read whole, months and all, about 25 times its size in memory."""
    limits = limits_of(library)
    with path.open("rb") as raw:
        if path.stat().st_size <= limits.max_report_bytes and raw.read(2) != GZIP_MAGIC:
            return
    total = 0
    for piece in iter_bytes(path, limits.max_file_bytes):
        total += len(piece)
        if total > limits.max_report_bytes:
            raise LandingFileError(
                f"{path}: a COUNTER report of more than {limits.max_report_bytes:,} bytes (landing_limits.max_report_bytes "
                "in the library config): a report is read whole, about 25 times its size in memory. Ask for it a "
                "month or a platform at a time, or raise the limit where the memory is there.")


def _said_empty(result: ParseResult) -> ParseResult:
    """A report with its header and no item line, and no exception saying why, is empty (usually a failed harvest)."""
    if not result.recognised:
        result.metadata[EMPTY] = HEADER_ONLY
    return result
