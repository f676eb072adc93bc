"""What every parser returns, and the reasons a row is quarantined.

A parser turns one landing file into conformed rows and rejected lines. Every data line
(or record) of the file ends in exactly one of the two: nothing is dropped silently.
Rows keep the raw ``card_number`` where the source has one; the ingest step replaces it
by ``patron_pid`` before anything is stored. A parser's columns and their types are its
staging table's, from the contract (``row_schema``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from schemas.model import contract_for


CARD_NUMBER = "card_number"     # the raw card a parser's row carries; the ingest step pseudonymises it
# The contract columns a parser leaves to the ingest step: the pseudonym and its key version
# (in place of the card number), and the file a row came from.
PSEUDONYM_COLUMNS = ("patron_pid", "pid_key_version")
SOURCE_FILE = "source_file"


def row_schema(table: str) -> dict[str, pl.DataType]:
    """The columns and polars types of a parser's rows for ``staging.<table>``, in its contract's
    order: the card number where the contract has the pseudonym, no ``source_file``."""
    schema: dict[str, pl.DataType] = {}
    for column in contract_for(f"staging.{table}").columns:
        if column.name == PSEUDONYM_COLUMNS[0]:
            schema[CARD_NUMBER] = pl.Utf8()
        elif column.name not in (*PSEUDONYM_COLUMNS, SOURCE_FILE):
            schema[column.name] = column.polars_type
    return schema


def typed(rows: pl.DataFrame, table: str) -> pl.DataFrame:
    """``rows`` in the columns, order and types of ``row_schema(table)``; other columns are a parser's bug."""
    schema = row_schema(table)
    if set(rows.columns) != set(schema):
        raise ValueError(f"rows for staging.{table} have columns {sorted(rows.columns)}; its contract "
                         f"wants {sorted(schema)}")
    return rows.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` holding only its own text. Rows filtered from a batch share the batch's string
    buffers and would keep all of them alive as long as they are kept (a file's rejects would grow
    with the file); appending "" writes each value into new buffers of its own (``shrink_to_fit``
    and casts keep the shared ones)."""
    return frame.with_columns(pl.col(pl.String) + pl.lit("")) if frame.height else frame


class Reason(StrEnum):
    """Reason codes for quarantined rows (``quarantine.<source>.reason``)."""

    MALFORMED_LINE = "malformed_line"        # wrong number of fields, unbalanced quotes
    TRUNCATED_LINE = "truncated_line"        # last line cut off mid-record
    BAD_TIMESTAMP = "bad_timestamp"          # a date or time that cannot be read
    BAD_NUMBER = "bad_number"                # a number field that is not a number
    UNKNOWN_CODE = "unknown_code"            # a code outside its allowed values
    MISSING_REQUIRED = "missing_required"    # a required field is empty
    BAD_RECORD = "bad_record"                # a binary record (MARC) that does not decode
    WRONG_PARTITION = "wrong_partition"      # a row dated outside the file's day or month
    UNREADABLE_FILE = "unreadable_file"      # a whole file that cannot be read (a self-contained report)
    LINE_TOO_LONG = "line_too_long"          # a line over its source's limit: never read whole (assets/reading.py)


class RowRejected(ValueError):
    """One row or record cannot be used: its reason code and a detail naming the field."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


REJECT_SCHEMA = {
    "source_line": pl.Int64,   # 1-based line number in the file (MARC: record number)
    "raw_text": pl.Utf8,       # the line as read (MARC: the record's bytes, hex or decoded)
    "reason": pl.Utf8,         # a Reason value
    "detail": pl.Utf8,         # what exactly was wrong: the column and the value's problem
}


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


@dataclass
class ParseResult:
    """Rows parsed from one file, and the lines rejected from it."""

    rows: pl.DataFrame
    rejects: pl.DataFrame = field(default_factory=empty_rejects)
    encoding: str = "utf-8"
    format: str = ""                      # e.g. "koha-statistics-csv", "counter-r51-tsv"
    metadata: dict = field(default_factory=dict)  # file-level facts (COUNTER header, LogFormat…)

    @property
    def rows_read(self) -> int:
        return self.rows.height + self.rejects.height

    @property
    def empty(self) -> str | None:
        """Why the file holds nothing to load (no bytes, a header and no rows), or None: usually a failed export."""
        return self.metadata.get("empty")

    @property
    def recognised(self) -> bool:
        """Whether anything of the file was understood: a row, a rejected line, or file-level facts
        a parser states in place of rows (a COUNTER exception, report lines without usage). A file
        with none of these was not read as what it should be, whatever its name says."""
        return bool(self.rows_read or any(self.metadata.get(k) for k in CONTENT_METADATA))


# ParseResult.metadata keys that are content, not description: a file holding only these was understood.
CONTENT_METADATA = ("exceptions", "item_lines_without_usage", "events_on_other_days", "check_ins_not_circulation")
