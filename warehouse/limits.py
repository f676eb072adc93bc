"""How much of a landing file Shuku reads, and how much memory reading it may take.

The `landing_limits` section of the library config: a line (or a JSON string value) longer than
its source's ``max_line_bytes`` is quarantined with its length as ``line_too_long`` and never
held whole; a file whose content (decompressed) is over ``max_file_bytes`` is refused; a JSON
answer over ``max_json_bytes`` is refused before it is parsed (a JSON document is read whole), and
a tabular COUNTER report over ``max_report_bytes`` too (a report is one whole, months and all).
The limits live in the library config, not in the contracts, because they are about what the
library's systems send, not about the tables: a library whose EZproxy logs very long URLs raises
that source's limit, nothing else changes.

The memory bound is fixed here: line-by-line sources are parsed ``BATCH_BYTES`` of whole lines at
a time and loaded ``FLUSH_BYTES`` of rows at a time, MARC a record at a time, so parsing or
loading a file holds a few hundred MB whatever its size (``MEMORY_BOUND_MB``, measured by
benchmarks/bench_hostile.py and held by tests/test_landing_memory.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warehouse.textio import MAX_FILE_BYTES

# 64 KiB: hundreds of times the longest line of a real export (a Koha statistics line is about
# 150 bytes; EZproxy and Apache refuse request lines over 8 KB by default; a COUNTER row with a
# long title about 2 KB), and small enough that a line cut off by the limit costs nothing.
DEFAULT_MAX_LINE_BYTES = 64 << 10
# 512 MiB: a SUSHI answer for a year of a large platform's Item Report is a few hundred MB;
# parsing JSON costs about ten times its size in memory.
DEFAULT_MAX_JSON_BYTES = 512 << 20
# 4 MiB of text per batch: polars' reading, splitting and typing of a batch holds about 50 times
# its text at its peak (measured: 225 MB beyond the imports with 4 MiB, 430 MB with 16 MiB), while
# a larger batch gains no speed (a 400 MB file: 13.8 s in 4 MiB batches, 15 s in 16 MiB ones).
BATCH_BYTES = 4 << 20
# 8 MB of typed rows: a staging table's rows of a partition gather up to this size, then are
# pseudonymised, freed of repeated rows, conformed and written as one Parquet row group
# (assets/ingest_sink.py), which holds about ten times the group at its peak (measured on a
# 200 MB file: 370 MB beyond the imports with 8 MB groups, 455 MB with 16 MB, 980 MB with 64 MB).
FLUSH_BYTES = 8 << 20
# What DuckDB may hold while it finds rows repeated across the row groups of a large partition; the
# rest spills under the home's tmp/duckdb.
INGEST_DUCKDB_MEMORY = "256MB"
# The stated bound: what parsing or loading a landing file of any size may hold beyond the imported
# parsers, in MB (JSON answers and COUNTER reports aside: they are read whole, within their limits).
# Loading also keeps each quarantined line until the partition is settled, about 1 KB a line with
# its scrubbed copy (a 1 GB file with 1.9 % of its lines quarantined: 555 MB beyond the imports).
MEMORY_BOUND_MB = 500
# 128 MiB: a tabular COUNTER report is read whole, each line becoming a row per month, about 25
# times its size in memory (a 64 MB TR of 12 months: 1.8 GB); a year's TR of a large platform
# (100,000 titles, four metrics) is about 40 MB.
DEFAULT_MAX_REPORT_BYTES = 128 << 20
KEYS = ("max_line_bytes", "max_file_bytes", "max_json_bytes", "max_report_bytes")


class LimitError(ValueError):
    """A `landing_limits` value that cannot be used (the caller names the file)."""


@dataclass(frozen=True)
class LandingLimits:
    """The limits of every source: ``max_line_bytes`` per source (``default`` for the others)."""

    max_line_bytes: dict[str, int] = field(default_factory=lambda: {"default": DEFAULT_MAX_LINE_BYTES})
    max_file_bytes: int = MAX_FILE_BYTES
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES

    def line(self, source: str) -> int:
        """The longest line (or JSON string value) a file of ``source`` may hold, in bytes."""
        return self.max_line_bytes.get(source, self.max_line_bytes.get("default", DEFAULT_MAX_LINE_BYTES))


def _size(value, key: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise LimitError(f"`landing_limits.{key}` = {value!r} must be a whole number of bytes, at least {least:,}.")
    return value


def parse_limits(section, sources: tuple[str, ...], path: Path) -> LandingLimits:
    """``landing_limits`` of the library config: a number for every source, or a mapping per source."""
    section = section or {}
    if not isinstance(section, dict) or set(section) - set(KEYS):
        raise LimitError(f"{path}: `landing_limits` must be a mapping with keys {', '.join(KEYS)}.")
    lines = section.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
    if not isinstance(lines, dict):
        lines = {"default": lines}
    for source in lines:
        if source != "default" and source not in sources:
            raise LimitError(f"{path}: `landing_limits.max_line_bytes.{source}`: {source!r} is not a landing "
                             f"source; use default or one of {', '.join(sources)}.")
    try:
        per_source = {"default": DEFAULT_MAX_LINE_BYTES} | {
            str(s): _size(v, f"max_line_bytes.{s}", 1024) for s, v in lines.items()}
        return LandingLimits(per_source, _size(section.get("max_file_bytes", MAX_FILE_BYTES), "max_file_bytes", 1 << 20),
                             _size(section.get("max_json_bytes", DEFAULT_MAX_JSON_BYTES), "max_json_bytes", 1 << 20),
                             _size(section.get("max_report_bytes", DEFAULT_MAX_REPORT_BYTES), "max_report_bytes", 1 << 20))
    except LimitError as exc:
        raise LimitError(f"{path}: {exc}") from None
