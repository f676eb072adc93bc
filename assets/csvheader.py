"""The header of a landing CSV: its separator, its column names, and whether it is the layout's.

Koha and the other systems write commas; a file saved from Excel as "Unicode text" (UTF-16
with tabs) is read the same way, its separator told by its header line."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from warehouse.textio import LandingFileError

SEPARATOR = ","
TAB = "\t"                       # Excel's "Unicode text" and "Text (tab delimited)" exports
QUOTE = '"'
COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_ .-]{0,39}")

@dataclass(frozen=True)
class CsvLayout:
    """A landing CSV format: its name and header, the columns a parser takes from it, the staging
    table its rows go to and the column naming the reader."""

    format: str                       # ParseResult.format, e.g. "koha-statistics-csv"
    title: str                        # what people call it, for error messages
    columns: tuple[str, ...]          # the header as the system writes it
    table: str                        # the staging table of its rows (their columns and types)
    card: str | None = None           # the reader's card number (None: the format names no reader)
    keep: tuple[str, ...] | None = None  # columns to cut out (None: all); others are never read
    source: str = "default"           # the landing source (schemas/vocabulary.py), whose limits apply

    @property
    def kept(self) -> tuple[str, ...]:
        return self.columns if self.keep is None else self.keep


def separator_of(header: str | None) -> str:
    """Tab when the header line holds one (a tab-separated export), else comma."""
    return TAB if header and TAB in header else SEPARATOR


def header_names(line: str) -> list[str]:
    """Column names of a header line; stray spaces, a BOM and quotes are tolerated."""
    sep = separator_of(line)
    names = next(csv.reader([line], delimiter=sep), []) if QUOTE in line else line.split(sep)
    return [n.strip().lstrip("\ufeff").strip().strip(QUOTE).strip().lower() for n in names]


def matches(line: str, layout: CsvLayout) -> bool:
    """Whether a header line has exactly the layout's columns (in any order)."""
    names = header_names(line)
    return sorted(names) == sorted(layout.columns)


def check_header(line: str | None, layout: CsvLayout, path: Path) -> list[int]:
    """Position in the file of each kept column; LandingFileError when the header differs."""
    expected = ",".join(layout.columns)
    if len(line or "") > 4 * 1024:
        raise LandingFileError(
            f"{path}: line 1: {len(line):,} characters where a header is expected: not the header of a "
            f"{layout.title} ({expected!r}); check that the file belongs in this landing folder.")
    if line is None or not line.strip():
        raise LandingFileError(
            f"{path}: line 1: no header ({'the file is empty' if line is None else 'the line is blank'}). "
            f"Expected {expected!r}, the first line of a {layout.title}; ask for the file again, "
            "exported with its header.")
    names = header_names(line)
    missing = [c for c in layout.columns if c not in names]
    unexpected = [n for n in names if n not in layout.columns]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if not (missing or unexpected or doubled):
        return [names.index(c) for c in layout.kept]
    problems = []
    if missing:
        problems.append("missing columns " + ", ".join(missing))
    if len(unexpected) == len(names):
        # Most likely a data line in place of the header: its values (cards, names) stay out of the message.
        problems.append(f"none of its {len(names)} values is a column name, so the header may be missing")
    elif unexpected:
        # Only names that look like column names are shown, in case line 1 holds data after all.
        named = [n for n in unexpected if COLUMN_NAME.fullmatch(n)]
        others = len(unexpected) - len(named)
        problems.append("unexpected columns " + ", ".join(
            [repr(n) for n in named] + ([f"{others} value(s) that are not column names"] if others else [])))
    if doubled:
        problems.append("columns named twice " + ", ".join(doubled))
    raise LandingFileError(
        f"{path}: line 1: the header is not that of a {layout.title} ({'; '.join(problems)}). "
        f"Expected {expected!r}. Check the export settings of the system that wrote it "
        "and ask for the file again; do not edit landing files by hand.")
