"""Rows that repeat an earlier row, found fast and exactly.

Comparing every column of a million rows as one struct takes a second or more; hashing each
column (in parallel) and combining the hashes takes a fraction of that. Only rows whose combined
hash repeats are then compared column by column, so a hash collision never drops a row.
"""

from __future__ import annotations

import polars as pl

_MIX = 1_000_003   # an odd multiplier, so the order of the columns counts in the combined hash


def row_hash(columns: list[str]) -> pl.Expr:
    """One 64-bit hash of the row's values in ``columns`` (equal rows, equal hashes; not the reverse)."""
    return pl.reduce(lambda acc, h: acc * _MIX + h, [pl.col(c).hash() for c in columns])


def repeated_rows(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """True for each row equal in every one of ``columns`` to an earlier row of ``frame``."""
    if frame.height == 0 or not columns:
        return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).alias("repeat")
    maybe = frame.select(row_hash(columns).is_duplicated()).to_series()
    repeat = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).alias("repeat")
    if not maybe.any():
        return repeat
    candidates = frame.select(columns).with_row_index("__row").filter(maybe)
    exact = candidates.filter(pl.struct(columns).is_first_distinct().not_()).get_column("__row")
    return repeat.scatter(exact, True)
