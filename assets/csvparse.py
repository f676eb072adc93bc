"""Splitting a landing CSV into typed rows and rejected lines, shared by every CSV parser.

The header and its separator are assets/csvheader.py's. A file is split a batch of lines at a
time (``parse_csv_batches``), numbered as in the file. Lines over the
source's limit never reach the splitting: assets/reading.py empties them and they are
rejected as ``line_too_long``. The main path is vectorised: polars reads the bytes twice with quoting off, once as whole
lines and once as cells, so each row is exactly one physical line and lines with the
expected number of fields are cut into columns without a Python loop. Only lines holding
a double quote go through the ``csv`` module, one at a time, because a quoted field may
hold a comma. A record is one physical line: the library systems never write a newline
inside a field, so a line whose quotes do not close is damaged, not the start of a record.

A parser then states its checks (``required``, ``timestamp``, ``integer``, ``one_of``, or
its own ``Check``) and ``apply_checks`` sends each line that fails one to the rejects, with
the reason of the first check it fails. The rows take their staging table's types from the
contract; allowed values come from the contract too (``Contract.allowed_values``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from assets.csvheader import (QUOTE, SEPARATOR, TAB, CsvLayout, check_header, header_names,  # noqa: F401
                              matches, separator_of)
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, compact, row_schema, typed
from assets.reading import HEADER_ONLY, NO_BYTES, LandingText, empty_result, iter_landing_text, read_landing_text
from warehouse.library import Library

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
# How formats are named in details: the reader fixing the file knows these, not strftime.
FORMAT_WORDS = {DATETIME_FORMAT: "YYYY-MM-DD HH:MM:SS", DATE_FORMAT: "YYYY-MM-DD"}

# Column names of the frame ``split_csv`` returns beside the file's own columns.
LINE = "source_line"
RAW = "raw_text"


@dataclass
class SplitFile:
    """A landing CSV cut into string columns: the lines with the right field count, and the rest."""

    fields: pl.DataFrame              # kept columns as Utf8 ("" when empty), source_line, raw_text
    rejects: pl.DataFrame             # REJECT_SCHEMA: wrong field count, damaged quotes, lines too long
    encoding: str
    metadata: dict = field(default_factory=dict)


# --- lines --------------------------------------------------------------------------

def read_landing(path: Path, layout: CsvLayout, library: Library | None) -> LandingText:
    """A landing CSV as UTF-8 bytes with \\n line endings, within its source's bounds (assets/reading.py).

    The bytes are handed on (not the decoded text) because polars reads bytes fastest.
    """
    return read_landing_text(Path(path), layout.source, library)


def first_line(data: bytes) -> str | None:
    """The header line of a file's bytes, or None when the file is empty."""
    if not data:
        return None
    end = data.find(b"\n")
    return (data if end < 0 else data[:end]).decode("utf-8").rstrip("\r")


def _cells(data: bytes, width: int, sep: str) -> tuple[pl.Series, pl.DataFrame]:
    """Each physical line, and its first ``width`` comma-separated cells ("" when missing).

    Two multi-threaded polars reads with quoting off, so that a row is always exactly one
    line: one read for the whole line (separator NUL), one for the cells. Blank lines stay
    in both, which keeps them aligned; if they ever are not, the slower Python split is used.
    """
    cell_schema = {f"c{i}": pl.Utf8 for i in range(width)}
    if b"\x00" not in data:
        options = dict(has_header=False, quote_char=None, empty_string_is_null=False, truncate_ragged_lines=True)
        lines = pl.read_csv(data, separator="\x00", schema={RAW: pl.Utf8}, **options).to_series()
        cells = pl.read_csv(data, separator=sep, schema=cell_schema, missing_columns="insert", **options)
        if cells.height == lines.len():
            return lines, cells
    text = data.decode("utf-8")
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()       # a final newline adds no line
    lines = pl.Series(RAW, parts, dtype=pl.Utf8).str.strip_suffix("\r")
    split = lines.str.split(sep)
    cells = pl.DataFrame({name: split.list.get(i, null_on_oob=True).fill_null("") for i, name in enumerate(cell_schema)})
    return lines, cells


def split_csv(text: LandingText, layout: CsvLayout) -> SplitFile:
    """Cut a landing CSV into the layout's columns; lines with the wrong field count are rejected.

    Blank lines are skipped and not counted. A last line with no newline and too few fields
    is ``truncated_line`` (the file was cut off); any other wrong count is ``malformed_line``.
    """
    width, data, path = len(layout.columns), text.data, text.path
    header = first_line(data)
    with text.explained():
        positions = check_header(header, layout, path)
    sep = separator_of(header)
    ended = text.ends_with_newline
    lines, cells = _cells(data, width, sep)
    offset = text.first_line - 1        # a batch after the first: its header is the file's, put in front
    last_line = lines.len() + offset

    # A line holds exactly `width` fields when its cells and separators add up to its length
    # (missing cells read as "", extra ones are cut off): cheaper than counting commas.
    fits = lines.str.len_bytes().cast(pl.Int64) == (
        cells.select(pl.sum_horizontal(pl.all().str.len_bytes().cast(pl.Int64))).to_series() + (width - 1))
    frame = pl.DataFrame({
        **{name: cells.to_series(pos) for name, pos in zip(layout.kept, positions)},
        LINE: pl.int_range(1 + offset, last_line + 1, dtype=pl.Int64, eager=True),
        RAW: lines,
    })
    good = (fits & ~lines.str.contains(QUOTE, literal=True)).slice(1)
    frame = frame.slice(1)
    rejects = [pl.DataFrame(schema=REJECT_SCHEMA)]
    if good.all():
        fields, others = frame, frame.clear()
    else:
        fields, others = frame.filter(good), frame.filter(~good)
    # The other lines are few: blank ones, lines with quotes, lines with a wrong field count.
    blank = others[RAW].str.strip_chars().str.len_bytes() == 0
    quoted = others[RAW].str.contains(QUOTE, literal=True)
    # rechunk: polars 2.1 can panic evaluating when/then over the filtered slices
    wrong = others.filter(~blank & ~quoted).rechunk()
    if wrong.height:
        found = wrong[RAW].str.count_matches(sep, literal=True).cast(pl.Int64) + 1
        rejects.append(_count_rejects(wrong.select(LINE, RAW).with_columns(fields_found=found), width, last_line, ended))
    if quoted.any():
        quoted_fields, quoted_rejects = _split_quoted(others.filter(quoted & ~blank), layout, positions, last_line,
                                                      ended, sep)
        fields = pl.concat([fields, quoted_fields]).sort(LINE)
        rejects.append(quoted_rejects)
    blank_lines = int(blank.sum()) - len(text.long_lines)     # an over-long line is left empty
    rejects.append(text.rejects())
    return SplitFile(fields=fields, rejects=pl.concat(rejects).sort(LINE), encoding=text.encoding,
                     metadata={"blank_lines": blank_lines, "ends_with_newline": ended})


def _count_rejects(bad: pl.DataFrame, width: int, last_line: int, ended: bool) -> pl.DataFrame:
    """Rejects for lines whose field count is wrong."""
    found = pl.col("fields_found")
    cut_off = (pl.col(LINE) == last_line) & (not ended) & (found < width)
    return bad.select(
        pl.col(LINE),
        pl.col(RAW),
        reason=pl.when(cut_off).then(pl.lit(Reason.TRUNCATED_LINE.value)).otherwise(pl.lit(Reason.MALFORMED_LINE.value)),
        detail=pl.when(cut_off)
        .then(pl.format("last line has no newline and {} of {} fields: the file was cut off", found, pl.lit(width)))
        .otherwise(pl.format("expected {} fields, found {}", pl.lit(width), found)),
    ).cast(REJECT_SCHEMA)


def _split_quoted(quoted: pl.DataFrame, layout: CsvLayout, positions: list[int],
                  last_line: int, ended: bool, sep: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines holding a quote, read one by one with the csv module (there are few of them)."""
    width = len(layout.columns)
    kept: dict[str, list] = {name: [] for name in layout.kept}
    kept_lines, kept_raw = [], []
    rejects: dict[str, list] = {k: [] for k in REJECT_SCHEMA}
    for number, raw in zip(quoted[LINE].to_list(), quoted[RAW].to_list()):
        try:
            values = next(csv.reader([raw], delimiter=sep, strict=True))
        except csv.Error as exc:
            # An unclosed quote on the last, unended line is a cut-off file, not a bad export.
            cut = number == last_line and not ended and "end of data" in str(exc)
            reason = Reason.TRUNCATED_LINE if cut else Reason.MALFORMED_LINE
            detail = ("last line has no newline and ends inside a quoted field: the file was cut off"
                      if cut else f"quotes do not balance ({exc})")
            for key, value in zip(REJECT_SCHEMA, (number, raw, reason.value, detail)):
                rejects[key].append(value)
            continue
        if len(values) != width:
            cut = number == last_line and not ended and len(values) < width
            reason = Reason.TRUNCATED_LINE if cut else Reason.MALFORMED_LINE
            detail = (f"last line has no newline and {len(values)} of {width} fields: the file was cut off"
                      if cut else f"expected {width} fields, found {len(values)}")
            for key, value in zip(REJECT_SCHEMA, (number, raw, reason.value, detail)):
                rejects[key].append(value)
            continue
        for name, pos in zip(layout.kept, positions):
            kept[name].append(values[pos])
        kept_lines.append(number)
        kept_raw.append(raw)
    fields = pl.DataFrame({**kept, LINE: kept_lines, RAW: kept_raw},
                          schema={**{n: pl.Utf8 for n in layout.kept}, LINE: pl.Int64, RAW: pl.Utf8})
    return fields, pl.DataFrame(rejects, schema=REJECT_SCHEMA)


# --- checks -------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """A condition that sends a line to the rejects: when ``failed`` holds, with this reason."""

    reason: Reason
    failed: pl.Expr
    detail: pl.Expr


def value(column: str, show: bool = True) -> pl.Expr:
    """The value as it may appear in a detail: quoted, or only its length when it may identify a reader."""
    if show:
        return pl.format("'{}'", pl.col(column))
    return pl.format("a value of {} characters", pl.col(column).str.len_chars())


def empty(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column) == "")


def required(column: str, when: pl.Expr | None = None, why: str = "") -> Check:
    """An empty value is ``missing_required`` (optionally only where ``when`` holds)."""
    failed = empty(column) if when is None else empty(column) & when
    return Check(Reason.MISSING_REQUIRED, failed, pl.lit(f"column {column}: empty{why}"))


def parse_datetime(column: str, fmt: str = DATETIME_FORMAT) -> pl.Expr:
    dtype = pl.Date if fmt == DATE_FORMAT else pl.Datetime("us")
    return pl.col(column).str.strptime(dtype, fmt, strict=False)


def timestamp(column: str, fmt: str = DATETIME_FORMAT, show: bool = True) -> Check:
    """A non-empty value that does not parse with ``fmt`` is ``bad_timestamp``."""
    failed = ~empty(column) & parse_datetime(column, fmt).is_null()
    return Check(Reason.BAD_TIMESTAMP, failed,
                 pl.format("column {}: {} is not {}", pl.lit(column), value(column, show), pl.lit(FORMAT_WORDS.get(fmt, fmt))))


def parse_integer(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int64, strict=False)


def integer(column: str, minimum: int | None = 0, show: bool = True) -> Check:
    """A non-empty value that is not a whole number (at least ``minimum``) is ``bad_number``."""
    number = parse_integer(column)
    failed = ~empty(column) & number.is_null()
    words = "a whole number"
    if minimum is not None:
        failed = failed | (number < minimum)
        words = f"a whole number ≥ {minimum}"
    return Check(Reason.BAD_NUMBER, failed,
                 pl.format("column {}: {} is not {}", pl.lit(column), value(column, show), pl.lit(words)))


def one_of(column: str, allowed, show: bool = True) -> Check:
    """A non-empty value outside ``allowed`` is ``unknown_code``."""
    allowed = sorted(set(allowed))
    listed = ", ".join(allowed)
    failed = ~empty(column) & ~pl.col(column).is_in(allowed)
    return Check(Reason.UNKNOWN_CODE, failed,
                 pl.format("column {}: {} is not one of {}", pl.lit(column), value(column, show), pl.lit(listed)))


def null_if_empty(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column)).alias(column)


def apply_checks(fields: pl.DataFrame, checks: list[Check], rows: dict[str, pl.Expr],
                 library: Library | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Typed rows of the lines that pass every check, and a reject for each line that fails one.

    ``rows`` maps output column name → expression over the string columns, in output order;
    ``source_line`` is added last. A line fails with the reason of the first check it fails.
    Card numbers that a detail might quote by accident are masked with the library's pattern.
    """
    if not checks:
        return fields.select(**rows, **{LINE: pl.col(LINE)}), pl.DataFrame(schema=REJECT_SCHEMA)
    reason = pl.coalesce([pl.when(c.failed).then(pl.lit(c.reason.value)) for c in checks])
    detail = pl.coalesce([pl.when(c.failed).then(c.detail) for c in checks])
    # One chunk first: polars 2.1 panics ("i < self.len()") evaluating these when/then chains
    # over a frame assembled from filtered slices.
    judged = fields.rechunk().lazy().with_columns(_reason=reason)
    good = judged.filter(pl.col("_reason").is_null()).select(**rows, **{LINE: pl.col(LINE)})
    bad = judged.filter(pl.col("_reason").is_not_null()).select(
        pl.col(LINE), pl.col(RAW), reason=pl.col("_reason"), detail=detail)
    good, bad = pl.collect_all([good, bad])
    if library is not None and bad.height:
        bad = bad.with_columns(pl.col("detail").str.replace_all(library.card_number_pattern, "<card number>"))
    return good, bad.cast(REJECT_SCHEMA)


def all_rejects(*frames: pl.DataFrame) -> pl.DataFrame:
    """Rejects from the splitting and the checks, in file order."""
    return pl.concat([f.cast(REJECT_SCHEMA) for f in frames]).sort(LINE)


def duplicate_rows(rows: pl.DataFrame) -> int:
    """How many rows repeat an earlier row exactly (all columns but ``source_line``)."""
    if rows.height == 0:
        return 0
    values = rows.drop(LINE)
    return rows.height - values.n_unique()


def parse_csv(path: Path, layout: CsvLayout, checks: list[Check], rows: dict[str, pl.Expr], library: Library,
              text: LandingText | None = None) -> ParseResult:
    """Read a landing CSV and return its typed rows and rejects (the whole of a simple parser).

    ``checks`` run in order (the first failed one gives the reason); ``rows`` are the output
    columns. ``text`` is read_landing's when the caller has already read the file. A file with
    no bytes, or a header and no rows, is an empty result that says so (``ParseResult.empty``).
    """
    if text is not None:
        return _parse_text(text, None, layout, checks, rows, library)
    return combine(parse_csv_batches(path, layout, checks, rows, library))


def parse_csv_batches(path: Path, layout: CsvLayout, checks: list[Check], rows: dict[str, pl.Expr],
                      library: Library) -> Iterator[ParseResult]:
    """``parse_csv`` a batch of lines at a time (assets/reading.iter_landing_text), the file's line numbers
    kept: memory is one batch's, whatever the file's size. An empty file is one empty result."""
    header, found = None, False
    for text in iter_landing_text(Path(path), layout.source, library):
        if header is None:
            if text.blank:
                yield empty_result(layout.format, text.encoding, NO_BYTES, row_schema(layout.table))
                return
            header = first_line(text.data)
        else:
            # The file's header in front, numbered as the line before the batch's first.
            text = replace(text, data=header.encode("utf-8") + b"\n" + text.data, first_line=text.first_line - 1)
        result = _parse_text(text, header, layout, checks, rows, library)
        if result.empty is None:
            found = True
            # Each batch owns its values, so a batch kept (its rows until written, its rejects until
            # the end of the file) does not keep the whole batch's text alive.
            yield replace(result, rows=compact(result.rows), rejects=compact(result.rejects))
    if not found:
        yield empty_result(layout.format, text.encoding, HEADER_ONLY, row_schema(layout.table), {"blank_lines": 0})


def _parse_text(text: LandingText, header: str | None, layout: CsvLayout, checks: list[Check],
                rows: dict[str, pl.Expr], library: Library) -> ParseResult:
    if header is None and text.blank:
        return empty_result(layout.format, text.encoding, NO_BYTES, row_schema(layout.table))
    split = split_csv(text, layout)
    if split.fields.height == 0 and split.rejects.height == 0:
        return empty_result(layout.format, text.encoding, HEADER_ONLY, row_schema(layout.table), split.metadata)
    good, bad = apply_checks(split.fields, checks, rows, library)
    return ParseResult(rows=typed(good, layout.table), rejects=all_rejects(split.rejects, bad), encoding=text.encoding,
                       format=layout.format, metadata=dict(split.metadata))


def combine(results: Iterable[ParseResult]) -> ParseResult:
    """One result of a file's batches: rows and rejects in file order, blank lines added up."""
    results = list(results)
    if len(results) == 1:
        return results[0]
    last = results[-1]
    metadata = {**last.metadata, "blank_lines": sum(r.metadata.get("blank_lines", 0) for r in results)}
    return ParseResult(rows=pl.concat([r.rows for r in results]), rejects=pl.concat([r.rejects for r in results]),
                       encoding=last.encoding, format=last.format, metadata=metadata)
