"""Disclosure control for published tables: small cells suppressed, and enough others with them
that no suppressed cell can be worked back out of its group's total.

What a contract declares, and what it means:
- a column's `minCellSize` (customProperty): a count from 1 to minCellSize − 1 is suppressed
  (published as null). Zero is published: it reveals nobody.
- a column's `suppressedWith` (a column name or a list): the column is derived from those
  counts (a mean, a ratio) and is suppressed wherever one of them is.
- the table's `suppressionGroups` (a list of column lists): rows that share these columns add
  up to a total someone can know (a zone's day). In a group where exactly one cell of a column
  is suppressed, the smallest other cell of that column is suppressed too (secondary
  suppression), so the total less the published cells does not give the suppressed one away.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from schemas.model import Contract

SUPPRESSED = "_suppressed"


@dataclass(frozen=True)
class Suppression:
    primary: int       # cells below their minCellSize
    secondary: int     # cells suppressed so a group total does not reveal a primary one
    derived: int       # derived cells hidden with the counts they come from


def protects(contract: Contract) -> bool:
    """Whether the table has any cell that disclosure control applies to."""
    return any(c.min_cell_size for c in contract.columns)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def suppress(frame: pl.DataFrame, contract: Contract) -> tuple[pl.DataFrame, Suppression]:
    """``frame`` (columns of ``contract``) with small cells and their giveaways set to null."""
    counts = {c.name: c.min_cell_size for c in contract.columns if c.min_cell_size and c.name in frame.columns}
    if not counts:
        return frame, Suppression(0, 0, 0)
    groups = [[g for g in _as_list(group) if g in frame.columns] for group in _as_list(contract.custom.get("suppressionGroups"))]
    groups = [g for g in groups if g]
    frame = frame.with_row_index(SUPPRESSED + "_row")
    masks = {name: (pl.col(name) > 0) & (pl.col(name) < size) for name, size in counts.items()}
    flagged = frame.select(**{f"{name}{SUPPRESSED}": mask.fill_null(False) for name, mask in masks.items()})
    frame = pl.concat([frame, flagged], how="horizontal")
    primary = int(sum(frame[f"{n}{SUPPRESSED}"].sum() for n in counts))

    secondary = 0
    for group in groups:
        for name in counts:
            flag = f"{name}{SUPPRESSED}"
            in_group = pl.col(flag).sum().over(group)
            size = pl.len().over(group)
            # Among the cells still shown, the smallest (then the first) of each group.
            candidate_rank = (pl.when(pl.col(flag) | pl.col(name).is_null()).then(None)
                              .otherwise(pl.struct(name, SUPPRESSED + "_row"))
                              .rank("ordinal").over(group))
            extra = (in_group == 1) & (size > 1) & (candidate_rank == 1)
            added = frame.select(extra.fill_null(False)).to_series()
            secondary += int(added.sum())
            frame = frame.with_columns((pl.col(flag) | added).alias(flag))

    hidden = {name: pl.col(f"{name}{SUPPRESSED}") for name in counts}
    derived_cols = {c.name: _as_list(c.custom.get("suppressedWith")) for c in contract.columns
                    if c.custom.get("suppressedWith") and c.name in frame.columns}
    derived = 0
    for name, sources in derived_cols.items():
        condition = pl.any_horizontal([hidden[s] for s in sources if s in hidden])
        derived += int(frame.select((condition & pl.col(name).is_not_null()).sum()).item())
        frame = frame.with_columns(pl.when(condition).then(None).otherwise(pl.col(name)).alias(name))
    frame = frame.with_columns(pl.when(hidden[n]).then(None).otherwise(pl.col(n)).alias(n) for n in counts)
    keep = [c for c in frame.columns if not c.endswith(SUPPRESSED) and c != SUPPRESSED + "_row"]
    return frame.select(keep), Suppression(primary, secondary, derived)
